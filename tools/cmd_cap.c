/*
** nub cap: wire-form capabilities.
**   nub cap hash FILE   the SHA-256 SSZ hash of the cap in FILE (wire bytes)
**   nub cap show FILE   a human dump of every field
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nub/cap.h"

#define SHOW_PAGES 32

static void print_hex(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
}

static void print_hash(const char *label, const uint8_t *h) {
  static const uint8_t zero[CAP_HASH_SIZE];
  printf("%s", label);
  if (!memcmp(h, zero, CAP_HASH_SIZE)) printf("(none)");
  else print_hex(h, CAP_HASH_SIZE);
  printf("\n");
}

static void print_regs(const char *indent, const uint64_t *regs) {
  printf("%sregs:", indent);
  for (int r = 0; r < CAP_REGS; r++)
    if (regs[r]) printf(" r%d=0x%llx", r, (unsigned long long)regs[r]);
  printf("\n");
}

static void print_slots(const cap_slots *s) {
  printf("slots:     %u\n", s->count);
  for (uint32_t i = 0; i < s->count; i++) {
    cap_slot slot;
    cap_slots_get(s, i, &slot);
    printf("  [%u] key 0x", i);
    print_hex(slot.key, slot.key_len);
    printf("%s -> ", slot.key_len ? "" : " (empty)");
    print_hex(slot.hash, CAP_HASH_SIZE);
    printf("\n");
  }
}

static void show_data(const cap_data_view *d) {
  printf("size:      %llu bytes (%llu pages, %u non-zero)\n", (unsigned long long)d->size,
         (unsigned long long)(d->size / CAP_PAGE_SIZE), d->page_count);
  for (uint32_t i = 0; i < d->page_count && i < SHOW_PAGES; i++) {
    cap_page pg = cap_data_page(d, i);
    printf("  page %-7u +0x%08llx  ", pg.index, (unsigned long long)pg.index * CAP_PAGE_SIZE);
    print_hex(pg.bytes, 16);
    printf("...\n");
  }
  if (d->page_count > SHOW_PAGES) printf("  ... %u more pages\n", d->page_count - SHOW_PAGES);
}

static void show_image(const cap_image_view *im) {
  printf("profile:   %u (%s)\n", im->profile, pvm_profile_name((pvm_profile)im->profile));
  printf("heap:      top 0x%x limit 0x%x\n", im->heap_top, im->heap_limit);
  printf("code:      %u bytes: %u code bytes, %u jump entries of %u bytes\n", im->code_len,
         im->blob.code_len, im->blob.jump_count, im->blob.jump_entry_size);
  printf("endpoints: %u\n", im->endpoint_count);
  for (uint32_t i = 0; i < im->endpoint_count; i++) {
    cap_endpoint ep;
    cap_image_endpoint(im, i, &ep);
    printf("  [%u] key %u entry_pc %u stack_top 0x%x\n", i, ep.key, ep.entry_pc, ep.stack_top);
    print_regs("      ", ep.regs);
  }
  printf("mappings:  %u\n", im->mapping_count);
  for (uint32_t i = 0; i < im->mapping_count; i++) {
    cap_mapping m;
    cap_image_mapping(im, i, &m);
    printf("  [%u] 0x%08x+0x%x %s ", i, m.start, m.size, m.access == CAP_ACCESS_RO ? "RO" : "RW");
    print_hash("source ", m.source);
  }
  print_slots(&im->slots);
}

static void show_instance(const cap_instance_view *in) {
  print_hash("image:     ", in->image_hash);
  print_hash("chain:     ", in->image_hash_chain);
  print_hash("cnode:     ", in->root_cnode);
  printf("pc:        %u\ngas:       %llu\n", in->pc, (unsigned long long)in->gas);
  print_regs("", in->regs);
  printf("overlays:  %u\n", in->overlay_count);
  for (uint32_t i = 0; i < in->overlay_count; i++) {
    cap_overlay o;
    cap_instance_overlay(in, i, &o);
    printf("  [%u] 0x%08x ", i, o.address);
    print_hash("data ", o.data);
  }
}

static void show(const cap_view *v, const uint8_t hash[CAP_HASH_SIZE]) {
  printf("kind:      %s\nbytes:     %zu\n", cap_kind_name(v->kind), v->len);
  print_hash("hash:      ", hash);
  switch (v->kind) {
  case CAP_DATA: show_data(&v->data); break;
  case CAP_IMAGE: show_image(&v->image); break;
  case CAP_INSTANCE: show_instance(&v->instance); break;
  default: print_slots(&v->cnode.slots); break;
  }
}

int cmd_cap(int argc, char **argv) {
  uint8_t *wire = NULL, hash[CAP_HASH_SIZE];
  size_t len;
  cap_view v;
  cap_error err;
  bool do_show;
  if (argc != 3 || (strcmp(argv[1], "hash") && strcmp(argv[1], "show")))
    return cli_usage_error("cap", "usage: nub cap hash FILE | nub cap show FILE");
  do_show = !strcmp(argv[1], "show");
  if (cli_read_file(argv[2], &wire, &len)) return 1;
  if (cap_decode(wire, wire + len, &v, &err) || cap_hash(&v, hash, &err)) {
    fprintf(stderr, "nub cap %s: %s: %s (%s error at byte %llu)\n", argv[1], argv[2], err.msg,
            cap_errcode_name(err.code), (unsigned long long)err.offset);
    free(wire);
    return 1;
  }
  if (do_show) show(&v, hash);
  else {
    print_hex(hash, CAP_HASH_SIZE);
    printf("\n");
  }
  free(wire);
  return 0;
}
