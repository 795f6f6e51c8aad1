/*
** Guest memory: one reserved 4 GiB host window per address space, with a
** byte of access state per page.  Host page protections mirror the
** access table so the JIT can rely on hardware faults while the
** interpreter checks the table.  Zero pages are fresh anonymous memory
** nobody touches; pages with contents can be mapped copy-on-write from a
** shared file (the guest heap memfd), so setting up an address space
** costs system calls per run of pages, not work per byte.
*/
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "pvm_internal.h"

#define WINDOW_BYTES (PVM_MEM_WINDOW + PVM_MEM_GUARD)

static int prot_of(nub_pvm_access acc) {
  return acc == PVM_ACCESS_RW ? PROT_READ | PROT_WRITE
       : acc == PVM_ACCESS_RO ? PROT_READ : PROT_NONE;
}

int nub_pvm_mem_new(nub_pvm_mem **out, nub_pvm_error *err) {
  nub_pvm_mem *m = calloc(1, sizeof *m);
  *out = NULL;
  if (!m) return pvm_fail(err, PVM_ERR_NOMEM, 0, "mem: no memory");
  m->access = calloc(PVM_PAGE_COUNT + 1, 1);  /* +1: wide accesses at the top */
  m->base = mmap(NULL, WINDOW_BYTES, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (!m->access || m->base == MAP_FAILED) {
    int e = errno;
    if (m->base == MAP_FAILED) m->base = NULL;
    nub_pvm_mem_free(m);
    return pvm_fail(err, PVM_ERR_SYS, 0, "mem: cannot reserve the 4 GiB window: %s",
                    strerror(e));
  }
  m->lo_page = PVM_PAGE_COUNT;
  m->backing_fd = -1;
  *out = m;
  return PVM_OK;
}

void nub_pvm_mem_free(nub_pvm_mem *m) {
  if (!m) return;
  if (m->base) munmap(m->base, WINDOW_BYTES);
  free(m->access);
  free(m);
}

static int check_range(uint32_t addr, uint64_t len, const char *what,
                       nub_pvm_error *err) {
  if (addr % PVM_PAGE_SIZE || len % PVM_PAGE_SIZE)
    return pvm_fail(err, PVM_ERR_ALIGN, addr,
                    "mem: %s of 0x%x+0x%llx is not page aligned", what, addr,
                    (unsigned long long)len);
  if ((uint64_t)addr + len > PVM_MEM_WINDOW)
    return pvm_fail(err, PVM_ERR_RANGE, addr,
                    "mem: %s of 0x%x+0x%llx runs past 2^32", what, addr,
                    (unsigned long long)len);
  if (len && addr < PVM_GUARD_END)
    return pvm_fail(err, PVM_ERR_RANGE, addr,
                    "mem: %s at 0x%x is below 0x%x, where every access panics",
                    what, addr, PVM_GUARD_END);
  return PVM_OK;
}

/* Accessible pages among count table bytes, 8 at a time (values 0..2). */
static uint32_t count_accessible(const uint8_t *a, uint32_t count) {
  uint32_t n = 0, i = 0;
  for (; i + 8 <= count; i += 8) {
    uint64_t w;
    memcpy(&w, a + i, 8);
    n += (uint32_t)((((w | w >> 1) & 0x0101010101010101ull) * 0x0101010101010101ull) >> 56);
  }
  for (; i < count; i++) n += a[i] != PVM_ACCESS_NONE;
  return n;
}

/* A byte per page: count, then memset (a 4 GiB mapping is 1 MiB of table). */
static void set_access(nub_pvm_mem *m, uint32_t first, uint32_t count, nub_pvm_access acc) {
  uint32_t before = count_accessible(m->access + first, count);
  memset(m->access + first, (int)acc, count);
  m->mapped_pages += (acc != PVM_ACCESS_NONE ? count : 0) - before;
  if (count && acc != PVM_ACCESS_NONE) {
    if (first < m->lo_page) m->lo_page = first;
    if (first + count > m->hi_page) m->hi_page = first + count;
  }
}

int nub_pvm_mem_map(nub_pvm_mem *m, uint32_t addr, uint64_t len, nub_pvm_access acc,
                nub_pvm_error *err) {
  int rc = check_range(addr, len, "map", err);
  if (rc) return rc;
  if (acc > PVM_ACCESS_RW) return pvm_fail(err, PVM_ERR_ARG, addr, "mem: bad access %d", (int)acc);
  if (!len) return PVM_OK;
  /* a fresh anonymous mapping replaces old contents with zeros */
  void *p = mmap(m->base + addr, len, prot_of(acc),
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  m->work.mmaps++;
  if (p == MAP_FAILED)
    return pvm_fail(err, PVM_ERR_SYS, addr, "mem: mmap 0x%x+0x%llx: %s", addr,
                    (unsigned long long)len, strerror(errno));
  set_access(m, addr >> PVM_PAGE_SHIFT, (uint32_t)(len >> PVM_PAGE_SHIFT), acc);
  return PVM_OK;
}

int nub_pvm_mem_protect(nub_pvm_mem *m, uint32_t addr, uint64_t len, nub_pvm_access acc,
                    nub_pvm_error *err) {
  int rc = check_range(addr, len, "protect", err);
  if (rc) return rc;
  if (acc > PVM_ACCESS_RW) return pvm_fail(err, PVM_ERR_ARG, addr, "mem: bad access %d", (int)acc);
  if (!len) return PVM_OK;
  m->work.mprotects++;
  if (mprotect(m->base + addr, len, prot_of(acc)))
    return pvm_fail(err, PVM_ERR_SYS, addr, "mem: mprotect 0x%x+0x%llx: %s", addr,
                    (unsigned long long)len, strerror(errno));
  set_access(m, addr >> PVM_PAGE_SHIFT, (uint32_t)(len >> PVM_PAGE_SHIFT), acc);
  return PVM_OK;
}

nub_pvm_access nub_pvm_mem_access(const nub_pvm_mem *m, uint32_t addr) {
  return (nub_pvm_access)m->access[addr >> PVM_PAGE_SHIFT];
}

/* Host copies must stay inside accessible pages; the guard past 2^32 is
** never host-visible. */
static int host_range(const nub_pvm_mem *m, uint32_t addr, uint64_t len,
                      const char *what, bool *has_ro, nub_pvm_error *err) {
  if ((uint64_t)addr + len > PVM_MEM_WINDOW)
    return pvm_fail(err, PVM_ERR_RANGE, addr, "mem: %s 0x%x+0x%llx runs past 2^32",
                    what, addr, (unsigned long long)len);
  *has_ro = false;
  if (!len) return PVM_OK;
  for (uint64_t pg = addr >> PVM_PAGE_SHIFT; pg <= ((uint64_t)addr + len - 1) >> PVM_PAGE_SHIFT; pg++) {
    if (m->access[pg] == PVM_ACCESS_NONE)
      return pvm_fail(err, PVM_ERR_UNMAPPED, pg << PVM_PAGE_SHIFT,
                      "mem: %s 0x%x+0x%llx touches unmapped page 0x%llx", what,
                      addr, (unsigned long long)len,
                      (unsigned long long)(pg << PVM_PAGE_SHIFT));
    if (m->access[pg] == PVM_ACCESS_RO) *has_ro = true;
  }
  return PVM_OK;
}

/* Re-apply host protections for the pages of [addr, addr+len). */
static void restore_prot(nub_pvm_mem *m, uint32_t addr, uint64_t len) {
  uint64_t pg = addr >> PVM_PAGE_SHIFT, last = ((uint64_t)addr + len - 1) >> PVM_PAGE_SHIFT;
  while (pg <= last) {
    uint64_t run = pg;
    while (run + 1 <= last && m->access[run + 1] == m->access[pg]) run++;
    mprotect(m->base + (pg << PVM_PAGE_SHIFT), (run - pg + 1) << PVM_PAGE_SHIFT,
             prot_of((nub_pvm_access)m->access[pg]));
    m->work.mprotects++;
    pg = run + 1;
  }
}

int nub_pvm_mem_write(nub_pvm_mem *m, uint32_t addr, const void *src, uint64_t len,
                  nub_pvm_error *err) {
  bool has_ro;
  int rc = host_range(m, addr, len, "write", &has_ro, err);
  if (rc || !len) return rc;
  m->work.pages_copied += (len + PVM_PAGE_SIZE - 1) / PVM_PAGE_SIZE;
  if (has_ro) {
    uint64_t first = addr & ~(uint64_t)(PVM_PAGE_SIZE - 1);
    uint64_t span = ((uint64_t)addr + len + PVM_PAGE_SIZE - 1) / PVM_PAGE_SIZE * PVM_PAGE_SIZE - first;
    m->work.mprotects++;
    if (mprotect(m->base + first, span, PROT_READ | PROT_WRITE))
      return pvm_fail(err, PVM_ERR_SYS, addr, "mem: mprotect for write: %s", strerror(errno));
    memcpy(m->base + addr, src, len);
    restore_prot(m, (uint32_t)first, span);
    return PVM_OK;
  }
  memcpy(m->base + addr, src, len);
  return PVM_OK;
}

int nub_pvm_mem_read(const nub_pvm_mem *m, uint32_t addr, void *dst, uint64_t len,
                 nub_pvm_error *err) {
  bool has_ro;
  int rc = host_range(m, addr, len, "read", &has_ro, err);
  if (rc || !len) return rc;
  memcpy(dst, m->base + addr, len);
  return PVM_OK;
}

int nub_pvm_mem_reset(nub_pvm_mem *m, nub_pvm_error *err) {
  if (m->lo_page < m->hi_page) {
    uint64_t off = (uint64_t)m->lo_page << PVM_PAGE_SHIFT;
    uint64_t len = (uint64_t)(m->hi_page - m->lo_page) << PVM_PAGE_SHIFT;
    void *p = mmap(m->base + off, len, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    m->work.mmaps++;
    if (p == MAP_FAILED)
      return pvm_fail(err, PVM_ERR_SYS, off, "mem: reset: %s", strerror(errno));
    memset(m->access + m->lo_page, 0, m->hi_page - m->lo_page);
  }
  m->lo_page = PVM_PAGE_COUNT;
  m->hi_page = 0;
  m->mapped_pages = 0;
  m->heap_top = m->heap_limit = 0;
  return PVM_OK;
}

void nub_pvm_mem_set_heap(nub_pvm_mem *m, uint32_t top, uint32_t limit) {
  m->heap_top = top;
  m->heap_limit = limit;
}

uint32_t nub_pvm_mem_heap_top(const nub_pvm_mem *m) { return m->heap_top; }
void nub_pvm_mem_get_work(const nub_pvm_mem *m, nub_pvm_mem_work *out) { *out = m->work; }

int nub_pvm_mem_set_backing(nub_pvm_mem *m, int fd, uint64_t offset, const void *base, uint64_t size,
                        nub_pvm_error *err) {
  if (fd >= 0 && (!base || (uintptr_t)base % PVM_PAGE_SIZE || size % PVM_PAGE_SIZE ||
                  offset % PVM_PAGE_SIZE))
    return pvm_fail(err, PVM_ERR_ALIGN, 0,
                    "mem: backing %p + 0x%llx at file offset 0x%llx is not page aligned", base,
                    (unsigned long long)size, (unsigned long long)offset);
  m->backing_fd = fd < 0 ? -1 : fd;
  m->backing_off = fd < 0 ? 0 : offset;
  m->backing = fd < 0 ? NULL : base;
  m->backing_size = fd < 0 ? 0 : size;
  return PVM_OK;
}

bool nub_pvm_mem_find_unmapped(const nub_pvm_mem *m, uint32_t addr, uint64_t len, uint32_t *page) {
  if (!len) return false;
  uint64_t first = addr >> PVM_PAGE_SHIFT, last = ((uint64_t)addr + len - 1) >> PVM_PAGE_SHIFT;
  if (last >= PVM_PAGE_COUNT) last = PVM_PAGE_COUNT - 1;
  const uint8_t *hole = memchr(m->access + first, PVM_ACCESS_NONE, last - first + 1);
  if (!hole) return false;
  *page = (uint32_t)(hole - m->access) << PVM_PAGE_SHIFT;
  return true;
}

/* The checks shared by _place and _clear: aligned, inside, all mapped. */
static int mapped_range(const nub_pvm_mem *m, uint32_t addr, uint64_t len, const char *what,
                        nub_pvm_error *err) {
  uint32_t hole;
  int rc = check_range(addr, len, what, err);
  if (rc) return rc;
  if (nub_pvm_mem_find_unmapped(m, addr, len, &hole))
    return pvm_fail(err, PVM_ERR_UNMAPPED, hole, "mem: %s of 0x%x+0x%llx: page 0x%x is not mapped",
                    what, addr, (unsigned long long)len, hole);
  return PVM_OK;
}

/* The first page in (pg, end) whose access differs from pg's, else end;
** 8 table bytes at a time. */
static uint32_t run_end(const uint8_t *a, uint32_t pg, uint32_t end) {
  uint64_t same = a[pg] * 0x0101010101010101ull, w;
  uint32_t i = pg + 1;
  while (i + 8 <= end && (memcpy(&w, a + i, 8), w == same)) i += 8;
  while (i < end && a[i] == a[pg]) i++;
  return i;
}

/* mmap over each run of equal access in [addr, addr+len): fd -1 maps
** fresh zeros, else fd's bytes from off copy-on-write.  A failed MAP_FIXED
** may have unmapped the range: it is reserved again (PROT_NONE) so that
** nothing else can be placed inside the window. */
static int map_runs(nub_pvm_mem *m, uint32_t addr, uint64_t len, int fd, uint64_t off,
                    nub_pvm_error *err) {
  uint32_t pg = addr >> PVM_PAGE_SHIFT, end = (uint32_t)(((uint64_t)addr + len) >> PVM_PAGE_SHIFT);
  int flags = MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE | (fd < 0 ? MAP_ANONYMOUS : 0);
  while (pg < end) {
    uint32_t run = run_end(m->access, pg, end);
    uint64_t at = (uint64_t)pg << PVM_PAGE_SHIFT, n = (uint64_t)(run - pg) << PVM_PAGE_SHIFT;
    void *p = mmap(m->base + at, n, prot_of((nub_pvm_access)m->access[pg]), flags, fd,
                   (off_t)(fd < 0 ? 0 : off + (at - addr)));
    m->work.mmaps++;
    if (p == MAP_FAILED) {
      int e = errno;
      mmap(m->base + addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
           -1, 0);
      set_access(m, addr >> PVM_PAGE_SHIFT, (uint32_t)(len >> PVM_PAGE_SHIFT), PVM_ACCESS_NONE);
      return pvm_fail(err, PVM_ERR_SYS, (uint32_t)at, "mem: mmap 0x%llx+0x%llx: %s",
                      (unsigned long long)at, (unsigned long long)n, strerror(e));
    }
    pg = run;
  }
  return PVM_OK;
}

int nub_pvm_mem_place(nub_pvm_mem *m, uint32_t addr, const void *src, uint64_t len, nub_pvm_error *err) {
  const uint8_t *s = src;
  int rc = mapped_range(m, addr, len, "place", err);
  if (rc || !len) return rc;
  if (m->backing_fd >= 0 && (uintptr_t)s % PVM_PAGE_SIZE == 0 && s >= m->backing &&
      len <= m->backing_size && (uint64_t)(s - m->backing) <= m->backing_size - len)
    return map_runs(m, addr, len, m->backing_fd, m->backing_off + (uint64_t)(s - m->backing), err);
  return nub_pvm_mem_write(m, addr, src, len, err);
}

int nub_pvm_mem_clear(nub_pvm_mem *m, uint32_t addr, uint64_t len, nub_pvm_error *err) {
  int rc = mapped_range(m, addr, len, "clear", err);
  return rc || !len ? rc : map_runs(m, addr, len, -1, 0, err);
}
uint32_t nub_pvm_mem_mapped_pages(const nub_pvm_mem *m) { return m->mapped_pages; }

void nub_pvm_mem_ranges(const nub_pvm_mem *m, nub_pvm_mem_range_fn fn, void *ud) {
  uint32_t pg = m->lo_page;
  while (pg < m->hi_page) {
    if (m->access[pg] == PVM_ACCESS_NONE) { pg++; continue; }
    uint32_t run = pg;
    while (run + 1 < m->hi_page && m->access[run + 1] == m->access[pg]) run++;
    fn(ud, pg << PVM_PAGE_SHIFT, (uint64_t)(run - pg + 1) << PVM_PAGE_SHIFT,
       (nub_pvm_access)m->access[pg]);
    pg = run + 1;
  }
}

/* Exact A.7/A.8 outcome of a guest access of len bytes at addr: bytes are
** examined in address order (wrapping at 2^32); the first that is not
** allowed decides.  Below 2^16 -> panic; a write to a read-only page ->
** a fault under GP 0.8.0 (ro_store_faults), a panic under GP 0.7 and the
** 0.8 draft (PolkaVM's behaviour then); otherwise a fault at that page. */
int pvm_mem_check(const nub_pvm_mem *m, uint32_t addr, uint32_t len, bool write,
                  bool ro_store_faults, uint32_t *fault) {
  for (uint32_t i = 0; i < len; i++) {
    uint32_t x = addr + i;   /* mod 2^32 */
    nub_pvm_access acc = (nub_pvm_access)m->access[x >> PVM_PAGE_SHIFT];
    bool ok = write ? acc == PVM_ACCESS_RW : acc != PVM_ACCESS_NONE;
    if (ok) continue;
    if (x < PVM_GUARD_END || (write && acc == PVM_ACCESS_RO && !ro_store_faults))
      return PVM_PANIC;
    *fault = x & ~(PVM_PAGE_SIZE - 1);
    return PVM_FAULT;
  }
  return 0;
}

/* sbrk: grow the heap by size bytes, mapping new pages read-write.
** Returns the old top, or 0 when the heap cannot grow that far. */
uint64_t pvm_mem_sbrk(nub_pvm_mem *m, uint64_t size) {
  if (size == 0) return m->heap_top;
  if (m->heap_limit <= m->heap_top || size > (uint64_t)(m->heap_limit - m->heap_top))
    return 0;
  uint64_t old = m->heap_top, top = old + size;
  uint64_t from = (old + PVM_PAGE_SIZE - 1) & ~(uint64_t)(PVM_PAGE_SIZE - 1);
  uint64_t to = (top + PVM_PAGE_SIZE - 1) & ~(uint64_t)(PVM_PAGE_SIZE - 1);
  for (uint64_t pg = from; pg < to;) {   /* one mapping per run of unmapped pages */
    uint64_t run = pg;
    while (run < to && m->access[run >> PVM_PAGE_SHIFT] == PVM_ACCESS_NONE) run += PVM_PAGE_SIZE;
    if (run > pg && nub_pvm_mem_map(m, (uint32_t)pg, run - pg, PVM_ACCESS_RW, NULL)) return 0;
    pg = run == pg ? pg + PVM_PAGE_SIZE : run;
  }
  m->heap_top = (uint32_t)top;
  return old;
}
