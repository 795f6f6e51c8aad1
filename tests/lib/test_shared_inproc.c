/*
** inproc through libnub.so: the kernel, and its .boot_info section, live
** in the shared library, not in the program; nub_boot_info_elf must find
** them there and agree with the running kernel's BootInfo.
*/
#include <stdio.h>
#include <string.h>

#include "nub/nub.h"

int main(void) {
  nub_options opt;
  nub *n;
  nub_error err;
  struct nub_boot_info live, elf;
  nub_options_init(&opt);
  opt.backend = NUB_BACKEND_INPROC;
  if (nub_open(&opt, &n, &err)) { printf("nub_open: %s\n", err.msg); return 1; }
  int rc = nub_boot_info(n, &live, &err) || nub_boot_info_elf(n, &elf, &err);
  if (rc) printf("boot info: %s\n", err.msg);
  nub_close(n);
  if (rc) return 1;
  int same = live.magic == NUB_BOOT_MAGIC && elf.magic == NUB_BOOT_MAGIC &&
             live.directory_type_id == elf.directory_type_id;
  printf("boot info: live magic %llx, .boot_info magic %llx, layout %s\n",
         (unsigned long long)live.magic, (unsigned long long)elf.magic,
         same ? "the same" : "different");
  return same ? 0 : 1;
}
