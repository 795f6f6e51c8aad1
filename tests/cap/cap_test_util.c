/*
** Shared helpers for the capability tests (see cap_test_util.h).
*/
#include "cap_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) abort();
  return p;
}

void tu_hash(uint8_t h[CAP_HASH_SIZE], uint8_t seed) {
  for (int i = 0; i < CAP_HASH_SIZE; i++) h[i] = (uint8_t)(seed * 31 + i * 7 + 1);
}

char *tu_hex(const uint8_t *p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  char *s = xmalloc(2 * n + 1);
  for (size_t i = 0; i < n; i++) {
    s[2 * i] = digits[p[i] >> 4];
    s[2 * i + 1] = digits[p[i] & 15];
  }
  s[2 * n] = 0;
  return s;
}

static int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

uint8_t *tu_unhex(const char *s, size_t *len) {
  size_t n = strlen(s);
  uint8_t *b;
  if (n % 2) return NULL;
  b = xmalloc(n / 2);
  for (size_t i = 0; i < n / 2; i++) {
    int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
    if (hi < 0 || lo < 0) { free(b); return NULL; }
    b[i] = (uint8_t)(hi << 4 | lo);
  }
  *len = n / 2;
  return b;
}

uint8_t *tu_min_blob(size_t *len) {
  static const uint8_t blob[] = {0x00, 0x00, 0x01, 0x00, 0x01};  /* trap */
  uint8_t *b = xmalloc(sizeof blob);
  memcpy(b, blob, sizeof blob);
  *len = sizeof blob;
  return b;
}

/* A blob with a one-entry jump table: fallthrough, fallthrough, trap. */
static const uint8_t jump_blob[] = {0x01, 0x01, 0x03, 0x02, 0x01, 0x01, 0x00, 0x07};

static void put_le(uint8_t *p, uint64_t v, unsigned n) {
  for (unsigned i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

uint8_t *tu_spi(uint32_t ro_len, uint32_t rw_len, uint16_t heap_pages,
                uint32_t stack_size, size_t *len) {
  size_t code_len, n;
  uint8_t *code = tu_min_blob(&code_len), *b, *p;
  n = 11 + ro_len + rw_len + 4 + code_len;
  p = b = xmalloc(n);
  put_le(p, ro_len, 3); p += 3;
  put_le(p, rw_len, 3); p += 3;
  put_le(p, heap_pages, 2); p += 2;
  put_le(p, stack_size, 3); p += 3;
  for (uint32_t i = 0; i < ro_len; i++) *p++ = (uint8_t)(i * 7 + 3);
  for (uint32_t i = 0; i < rw_len; i++) *p++ = (uint8_t)(i * 13 + 5);
  put_le(p, code_len, 4); p += 4;
  memcpy(p, code, code_len);
  free(code);
  *len = n;
  return b;
}

uint8_t *tu_encode(const nub_cap_spec *spec, size_t *len) {
  uint8_t *wire;
  nub_cap_error err;
  if (nub_cap_encode_alloc(spec, &wire, len, &err)) {
    fprintf(stderr, "tu_encode: %s (%s at %llu)\n", err.msg, nub_cap_errcode_name(err.code),
            (unsigned long long)err.offset);
    abort();
  }
  return wire;
}

/* ---- samples ---- */

typedef struct sample_list {
  tu_sample *s;
  size_t n;
} sample_list;

static void add(sample_list *l, const char *name, uint8_t *wire, size_t len) {
  l->s = realloc(l->s, (l->n + 1) * sizeof *l->s);
  if (!l->s) abort();
  l->s[l->n].name = name;
  l->s[l->n].wire = wire;
  l->s[l->n].len = len;
  l->n++;
}

static void add_spec(sample_list *l, const char *name, const nub_cap_spec *spec) {
  size_t len;
  uint8_t *wire = tu_encode(spec, &len);
  add(l, name, wire, len);
}

static void pattern_page(uint8_t *page, unsigned seed) {
  for (unsigned i = 0; i < CAP_PAGE_SIZE; i++) page[i] = (uint8_t)(i * seed + seed);
}

static void data_samples(sample_list *l) {
  static uint8_t pages[4][CAP_PAGE_SIZE];
  uint8_t content[5000];
  nub_cap_page pg[3];
  nub_cap_spec s = {.kind = CAP_DATA};
  uint8_t *wire;
  size_t len;
  nub_cap_error err;
  for (int i = 0; i < 4; i++) pattern_page(pages[i], (unsigned)(i + 3));
  add_spec(l, "data_empty", &s);
  s.data.size = 3 * CAP_PAGE_SIZE;
  add_spec(l, "data_zero_pages", &s);
  s.data.size = CAP_PAGE_SIZE;
  pg[0].index = 0;
  pg[0].bytes = pages[0];
  s.data.pages = pg;
  s.data.page_count = 1;
  add_spec(l, "data_one_page", &s);
  s.data.size = 5 * CAP_PAGE_SIZE;
  pg[0].index = 1;
  pg[1].index = 4;
  pg[1].bytes = pages[1];
  s.data.page_count = 2;
  add_spec(l, "data_odd_pages", &s);
  s.data.size = CAP_MAX_DATA_SIZE;
  pg[0].index = 0;
  pg[1].index = 0x7FFFF;
  pg[2].index = 0xFFFFF;
  pg[2].bytes = pages[2];
  s.data.page_count = 3;
  add_spec(l, "data_sparse_4gib", &s);
  for (size_t i = 0; i < sizeof content; i++) content[i] = (uint8_t)(i % 251 + 1);
  if (nub_cap_encode_data_alloc(2 * CAP_PAGE_SIZE, content, sizeof content, &wire, &len, &err))
    abort();
  add(l, "data_partial_page", wire, len);
}

static void image_samples(sample_list *l) {
  static nub_cap_endpoint eps[CAP_MAX_ENDPOINTS];
  static nub_cap_mapping maps[3];
  static nub_cap_slot slots[5];
  static const uint8_t keys[5][9] = {{0}, {1, 0x00}, {2, 0x00, 0x00}, {1, 0x01},
                                     {8, 1, 2, 3, 4, 5, 6, 7, 8}};
  size_t blob_len;
  uint8_t *blob = tu_min_blob(&blob_len);
  nub_cap_spec s = {.kind = CAP_IMAGE};
  s.image.code = blob;
  s.image.code_len = blob_len;
  add_spec(l, "image_minimal", &s);
  s.image.profile = PVM_PROFILE_GP08_DRAFT;   /* the same Image for the other ISA profiles */
  add_spec(l, "image_minimal_gp08_draft", &s);
  s.image.profile = PVM_PROFILE_JAMV1;
  add_spec(l, "image_minimal_jamv1", &s);
  s.image.profile = PVM_PROFILE_GP07;
  for (unsigned i = 0; i < CAP_MAX_ENDPOINTS; i++) {
    eps[i].key = (uint8_t)i;
    eps[i].entry_pc = i % 3 == 0 ? 0 : i;
    eps[i].stack_top = 0xFEFE0000u - i * CAP_PAGE_SIZE;
    for (int r = 0; r < CAP_REGS; r++) eps[i].regs[r] = (uint64_t)i << r ^ (uint64_t)r * 0x0101010101010101ull;
  }
  maps[0] = (nub_cap_mapping){0x10000, 0x2000, CAP_ACCESS_RO, {0}};
  tu_hash(maps[0].source, 1);
  maps[1] = (nub_cap_mapping){0x20000, 0x1000, CAP_ACCESS_RW, {0}};
  maps[2] = (nub_cap_mapping){0xFFFFF000u, 0x1000, CAP_ACCESS_RW, {0}};
  tu_hash(maps[2].source, 2);
  for (int i = 0; i < 5; i++) {
    slots[i].key_len = keys[i][0];
    memcpy(slots[i].key, keys[i] + 1, keys[i][0]);
    tu_hash(slots[i].hash, (uint8_t)(10 + i));
  }
  s.image.code = jump_blob;
  s.image.code_len = sizeof jump_blob;
  s.image.heap_top = 0x30000;
  s.image.heap_limit = 0x80000;
  s.image.endpoints = eps + 250;
  s.image.endpoint_count = 3;
  s.image.mappings = maps;
  s.image.mapping_count = 3;
  s.image.slots = slots;
  s.image.slot_count = 5;
  add_spec(l, "image_full", &s);
  s.image.endpoints = eps;
  s.image.endpoint_count = CAP_MAX_ENDPOINTS;
  s.image.mapping_count = 0;
  s.image.slot_count = 0;
  add_spec(l, "image_max_endpoints", &s);
  free(blob);
}

static void spi_samples(sample_list *l) {
  static const char *names[] = {"spi_data_ro", "spi_data_rw", "spi_data_args"};
  static const uint8_t args[] = "hello, nub";
  size_t len;
  uint8_t *spi = tu_spi(5000, 100, 2, 8192, &len);
  nub_cap_bundle b;
  nub_cap_error err;
  if (nub_cap_build_spi(PVM_PROFILE_GP07, spi, len, args, sizeof args - 1, &b, &err)) {
    fprintf(stderr, "spi sample: %s\n", err.msg);
    abort();
  }
  for (uint32_t i = 0; i < b.count; i++) {
    const char *name = i == b.image ? "spi_image" : i == b.instance ? "spi_instance_fresh"
                     : i < 3 ? names[i] : "spi_data";
    add(l, name, b.items[i].wire, b.items[i].len);
    b.items[i].wire = NULL;
  }
  nub_cap_bundle_free(&b);
  /* the same program for jamv1: only the Image differs */
  if (nub_cap_build_spi(PVM_PROFILE_JAMV1, spi, len, args, sizeof args - 1, &b, &err)) {
    fprintf(stderr, "spi sample: %s\n", err.msg);
    abort();
  }
  add(l, "spi_image_jamv1", b.items[b.image].wire, b.items[b.image].len);
  b.items[b.image].wire = NULL;
  nub_cap_bundle_free(&b);
  free(spi);
}

static void instance_samples(sample_list *l) {
  nub_cap_overlay ov[3] = {{0x10000, {0}}, {0x12000, {0}}, {0xFFFFF000u, {0}}};
  nub_cap_spec s = {.kind = CAP_INSTANCE};
  uint8_t image[CAP_HASH_SIZE];
  tu_hash(image, 40);
  nub_cap_instance_fresh(image, &s.instance);
  for (int i = 0; i < 3; i++) tu_hash(ov[i].data, (uint8_t)(41 + i));
  tu_hash(s.instance.root_cnode, 44);
  for (int r = 0; r < CAP_REGS; r++) s.instance.regs[r] = ~0ull - (uint64_t)r;
  s.instance.pc = 0xDEADBEEF;
  s.instance.gas = INT64_MAX;
  s.instance.overlays = ov;
  s.instance.overlay_count = 3;
  add_spec(l, "instance_full", &s);
}

static void cnode_samples(sample_list *l) {
  enum { MANY = 1000 };
  static nub_cap_slot slots[MANY];
  nub_cap_spec s = {.kind = CAP_CNODE};
  add_spec(l, "cnode_empty", &s);
  for (unsigned i = 0; i <= CAP_MAX_KEY_LEN; i++) {   /* keys "", 0x61, 0x6161, ... */
    slots[i].key_len = (uint8_t)i;
    memset(slots[i].key, 0x61, i);
    tu_hash(slots[i].hash, (uint8_t)(60 + i));
  }
  s.cnode.slots = slots;
  s.cnode.slot_count = CAP_MAX_KEY_LEN + 1;
  add_spec(l, "cnode_key_lengths", &s);
  for (unsigned i = 0; i < MANY; i++) {   /* two-byte big-endian keys sort numerically */
    slots[i].key_len = 2;
    slots[i].key[0] = (uint8_t)(i >> 8);
    slots[i].key[1] = (uint8_t)i;
    tu_hash(slots[i].hash, (uint8_t)(i % 200 + 1));
  }
  s.cnode.slot_count = MANY;
  add_spec(l, "cnode_many", &s);
}

size_t tu_samples(tu_sample **out) {
  sample_list l = {NULL, 0};
  data_samples(&l);
  image_samples(&l);
  spi_samples(&l);
  instance_samples(&l);
  cnode_samples(&l);
  *out = l.s;
  return l.n;
}

void tu_samples_free(tu_sample *s, size_t n) {
  for (size_t i = 0; i < n; i++) free(s[i].wire);
  free(s);
}
