/*
** embed.c: nub as a library, the README's example compiled and run by CI.
** Publishes a generic PVM blob as caps (Data, Image, Instance) in a guest
** kernel and invokes it with r7..r10 set from args.
**
**   embed PROGRAM.pvm [proc|inproc]
**   embed examples/add_regs.pvm        -> r7 = 20 + 22 = 42, "exit 0 r7 42"
**
** Build against an installed nub:
**   cc embed.c $(pkg-config --cflags --libs nub) -o embed
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nub/cap.h"
#include "nub/nub.h"

static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  unsigned char *buf = NULL;
  long size;
  if (!f) return NULL;
  if (!fseek(f, 0, SEEK_END) && (size = ftell(f)) > 0 && !fseek(f, 0, SEEK_SET) &&
      (buf = malloc((size_t)size)) && fread(buf, 1, (size_t)size, f) == (size_t)size) {
    *len = (size_t)size;
  } else {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  return buf;
}

int main(int argc, char **argv) {
  nub_options opt;
  nub *n = NULL;
  nub_error err;                      /* written only when a call fails */
  nub_cap_error cerr;
  nub_cap_bundle caps = {0};
  nub_invocation_result r;
  const uint64_t args[4] = {20, 22, 0, 0};   /* r7..r10 */
  size_t len = 0;
  int status = 1;
  unsigned char *program;

  if (argc < 2 || !(program = read_file(argv[1], &len))) {
    fprintf(stderr, "usage: embed PROGRAM.pvm [proc|inproc] (a generic blob)\n");
    return 2;
  }
  if (strcmp(NUB_VERSION_STRING, nub_version()))
    fprintf(stderr, "embed: headers %s, library %s\n", NUB_VERSION_STRING, nub_version());

  nub_options_init(&opt);             /* proc backend, best engine */
  if (argc > 2 && !strcmp(argv[2], "inproc")) opt.backend = NUB_BACKEND_INPROC;
  if (nub_cap_build_generic(PVM_PROFILE_GP07, program, len, NULL, 0, &caps, &cerr)) {
    fprintf(stderr, "embed: %s: %s (offset %llu)\n", argv[1], cerr.msg,
            (unsigned long long)cerr.offset);
    goto out;
  }
  if (nub_open(&opt, &n, &err)) goto fail;
  for (uint32_t i = 0; i < caps.count; i++) {
    nub_hash h;                       /* the same as caps.items[i].hash */
    if (nub_put_cap(n, caps.items[i].wire, caps.items[i].len, h, &err)) goto fail;
  }
  if (nub_invoke(n, caps.items[caps.instance].hash, /*endpoint*/ 0, args,
                 /*gas*/ 1000000, &r, &err))
    goto fail;
  /* exit_reason 0 = halt; return_value = r7; a kernel error is
  ** exit_reason NUB_EXIT_KERNEL_ERROR with its code in exit_arg. */
  printf("%s/%s: exit %u r7 %llu gas left %llu\n", nub_backend_name(n), nub_engine_name(n),
         r.exit_reason, (unsigned long long)r.return_value,
         (unsigned long long)r.gas_remaining);
  status = r.exit_reason == NUB_EXIT_HALT ? 0 : 1;
  goto out;
fail:
  fprintf(stderr, "embed: %s (%s)\n", err.msg, nub_errcode_name(err.code));
out:
  nub_close(n);
  nub_cap_bundle_free(&caps);
  free(program);
  return status;
}
