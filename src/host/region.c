/*
** The guest heap region sits at a fixed virtual address, the same in the
** guest and (read-only) in the host, so pointers into it mean the same on
** both sides.  With no explicit base we take the default, or the next
** free slot above it when another nub in this process holds it.
*/
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "host.h"

#define SLOT_STRIDE (1ull << 36)   /* 64 GiB between automatic slots */
#define SLOTS 64

void *host_map_guest_region(uint64_t requested, size_t size, int prot, int flags, int fd,
                            off_t offset, nub_error *err) {
  uint64_t base = requested ? requested : NUB_GUEST_VA_BASE_DEFAULT;
  int tries = requested ? 1 : SLOTS;
  if (base % 4096 || size % 4096 || !size) {
    host_fail(err, NUB_ERR_ARG, "guest region 0x%llx + 0x%zx is not page aligned",
              (unsigned long long)base, size);
    return NULL;
  }
  for (int i = 0; i < tries; i++, base += SLOT_STRIDE) {
    void *want = (void *)(uintptr_t)base;
    void *p = mmap(want, size, prot, flags | MAP_FIXED_NOREPLACE, fd, offset);
    if (p == want) return p;
    if (p != MAP_FAILED) munmap(p, size);         /* kernels without NOREPLACE */
    else if (errno != EEXIST) {
      host_fail(err, NUB_ERR_SYSTEM, "mapping the guest region at 0x%llx (%zu bytes): %s",
                (unsigned long long)base, size, strerror(errno));
      return NULL;
    }
  }
  host_fail(err, NUB_ERR_SYSTEM, "no free address for the guest region at 0x%llx%s",
            (unsigned long long)(requested ? requested : NUB_GUEST_VA_BASE_DEFAULT),
            requested ? " (requested explicitly)" : " or the next 63 slots");
  return NULL;
}
