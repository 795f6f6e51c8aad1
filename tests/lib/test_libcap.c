/*
** nub beside libcap in one program (both shared libraries): libcap's
** cap_init and cap_get_proc must be libcap's, nub's calls must work.
** nub once exported its own cap_init, and libcap's cap_get_proc (which
** calls cap_init) returned NULL in such a program.
*/
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>

#include "nub/cap.h"
#include "nub/nub.h"

static int failures, checks;

static void check(int ok, const char *what) {
  checks++;
  if (!ok) {
    failures++;
    printf("FAIL: %s\n", what);
  }
}

int main(void) {
  /* libcap first, before nub has started anything. */
  cap_t empty = cap_init();
  check(empty != NULL, "libcap cap_init returns a capability set");
  cap_t self = cap_get_proc();
  check(self != NULL, "libcap cap_get_proc returns this process's set");
  char *text = self ? cap_to_text(self, NULL) : NULL;
  check(text != NULL, "libcap cap_to_text names it");
  if (text) printf("libcap: this process has \"%s\"\n", text);
  cap_free(text);
  cap_free(self);
  cap_free(empty);

  /* nub: start the hash layer, build and hash caps. */
  check(nub_cap_init() == CAP_OK, "nub_cap_init succeeds");
  static const uint8_t blob[] = {0, 0, 1, 0, 1};   /* generic blob: one trap */
  nub_cap_bundle b = {0};
  nub_cap_error cerr;
  int rc = nub_cap_build_generic(PVM_PROFILE_GP07, blob, sizeof blob, NULL, 0, &b, &cerr);
  check(rc == CAP_OK && b.count >= 2, "nub nub_cap_build_generic builds a bundle");
  for (uint32_t i = 0; rc == CAP_OK && i < b.count; i++) {
    uint8_t h[CAP_HASH_SIZE];
    check(nub_cap_hash_wire(b.items[i].wire, b.items[i].wire + b.items[i].len, h, &cerr) == CAP_OK &&
              !memcmp(h, b.items[i].hash, sizeof h),
          "nub nub_cap_hash_wire gives the bundle's hash");
  }
  nub_cap_bundle_free(&b);
  check(!strcmp(nub_version(), NUB_VERSION_STRING), "nub_version matches the headers");

  /* libcap again, after nub. */
  self = cap_get_proc();
  check(self != NULL, "libcap cap_get_proc still works after nub ran");
  cap_free(self);

  printf("%d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
