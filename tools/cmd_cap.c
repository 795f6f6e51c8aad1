/*
** nub cap: wire-form capabilities.
**   nub cap hash FILE   the SHA-256 SSZ hash of the cap in FILE (wire bytes)
**   nub cap show FILE   a human dump of every field
**   nub cap build PROGRAM -o DIR   the Data/Image/Instance wire files
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static void print_slots(const nub_cap_slots *s) {
  printf("slots:     %u\n", s->count);
  for (uint32_t i = 0; i < s->count; i++) {
    nub_cap_slot slot;
    nub_cap_slots_get(s, i, &slot);
    printf("  [%u] key 0x", i);
    print_hex(slot.key, slot.key_len);
    printf("%s -> ", slot.key_len ? "" : " (empty)");
    print_hex(slot.hash, CAP_HASH_SIZE);
    printf("\n");
  }
}

static void show_data(const nub_cap_data_view *d) {
  printf("size:      %llu bytes (%llu pages, %u non-zero)\n", (unsigned long long)d->size,
         (unsigned long long)(d->size / CAP_PAGE_SIZE), d->page_count);
  for (uint32_t i = 0; i < d->page_count && i < SHOW_PAGES; i++) {
    nub_cap_page pg = nub_cap_data_page(d, i);
    printf("  page %-7u +0x%08llx  ", pg.index, (unsigned long long)pg.index * CAP_PAGE_SIZE);
    print_hex(pg.bytes, 16);
    printf("...\n");
  }
  if (d->page_count > SHOW_PAGES) printf("  ... %u more pages\n", d->page_count - SHOW_PAGES);
}

static void show_image(const nub_cap_image_view *im) {
  printf("profile:   %u (%s)\n", im->profile, nub_pvm_profile_name((nub_pvm_profile)im->profile));
  printf("heap:      top 0x%x limit 0x%x\n", im->heap_top, im->heap_limit);
  printf("code:      %u bytes: %u code bytes, %u jump entries of %u bytes\n", im->code_len,
         im->blob.code_len, im->blob.jump_count, im->blob.jump_entry_size);
  printf("endpoints: %u\n", im->endpoint_count);
  for (uint32_t i = 0; i < im->endpoint_count; i++) {
    nub_cap_endpoint ep;
    nub_cap_image_endpoint(im, i, &ep);
    printf("  [%u] key %u entry_pc %u stack_top 0x%x\n", i, ep.key, ep.entry_pc, ep.stack_top);
    print_regs("      ", ep.regs);
  }
  printf("mappings:  %u\n", im->mapping_count);
  for (uint32_t i = 0; i < im->mapping_count; i++) {
    nub_cap_mapping m;
    nub_cap_image_mapping(im, i, &m);
    printf("  [%u] 0x%08x+0x%x %s ", i, m.start, m.size, m.access == CAP_ACCESS_RO ? "RO" : "RW");
    print_hash("source ", m.source);
  }
  print_slots(&im->slots);
}

static void show_instance(const nub_cap_instance_view *in) {
  print_hash("image:     ", in->image_hash);
  print_hash("chain:     ", in->image_hash_chain);
  print_hash("cnode:     ", in->root_cnode);
  printf("pc:        %u\ngas:       %llu\n", in->pc, (unsigned long long)in->gas);
  print_regs("", in->regs);
  printf("overlays:  %u\n", in->overlay_count);
  for (uint32_t i = 0; i < in->overlay_count; i++) {
    nub_cap_overlay o;
    nub_cap_instance_overlay(in, i, &o);
    printf("  [%u] 0x%08x ", i, o.address);
    print_hash("data ", o.data);
  }
}

static void show(const nub_cap_view *v, const uint8_t hash[CAP_HASH_SIZE]) {
  printf("kind:      %s\nbytes:     %zu\n", nub_cap_kind_name(v->kind), v->len);
  print_hash("hash:      ", hash);
  switch (v->kind) {
  case CAP_DATA: show_data(&v->data); break;
  case CAP_IMAGE: show_image(&v->image); break;
  case CAP_INSTANCE: show_instance(&v->instance); break;
  default: print_slots(&v->cnode.slots); break;
  }
}

static const cli_opt cap_opts[] = {
  {"out", 'o', "DIR", NULL, "build: directory the wire files go to (created if missing)"},
  {"format", 0, CLI_FORMATS, "auto", "build: program format"},
  {"profile", 0, CLI_PROFILES, "gp07", "build: ISA profile the Image declares"},
  {"data", 0, "HEX", NULL, "build: argument bytes of an SPI program (a Data cap mapped as the argument region)"},
  {0}};

const cli_spec cli_cap_spec = {
  "cap", "hash FILE | show FILE | build PROGRAM -o DIR",
  "capabilities in their SSZ wire form (docs/wire.md): hash, dump, or build from a program",
  "build writes data-N.cap, image.cap and instance.cap (what nub exec builds) to DIR\n"
  "and prints kind, hash and path of each; nub exec DIR invokes them.\n"
  "Exit code: 0 done, 1 on a malformed cap or program, 2 on a usage error.",
  2, 2, cap_opts};

/* nub cap build: the caps nub exec would publish, one wire file each. */
static int cap_build(const cli_args *a) {
  const char *dir = cli_get(a, "out"), *hex = cli_get(a, "data");
  uint8_t *data = NULL;
  size_t data_len = 0;
  nub_cap_bundle b = {0};
  char path[4096];
  unsigned data_n = 0;
  int rc;
  if (!dir) return cli_usage_error("cap", "build needs an output directory (-o DIR)");
  if (hex && (rc = cli_parse_data("cap", hex, &data, &data_len))) return rc;
  rc = cli_build_caps("cap", a->pos[1], cli_choice(a, "format"),
                      (nub_pvm_profile)cli_choice(a, "profile"), data, data_len, 0, &b);
  free(data);
  if (rc) return rc;
  if (mkdir(dir, 0777) && errno != EEXIST) {
    fprintf(stderr, "nub cap: cannot create %s: %s\n", dir, strerror(errno));
    rc = 1;
  }
  for (uint32_t i = 0; !rc && i < b.count; i++) {
    const nub_cap_item *it = &b.items[i];
    if (it->kind == CAP_DATA) snprintf(path, sizeof path, "%s/data-%u.cap", dir, data_n++);
    else snprintf(path, sizeof path, "%s/%s.cap", dir, it->kind == CAP_IMAGE ? "image" : "instance");
    if (cli_write_file(path, it->wire, it->len)) { rc = 1; break; }
    printf("%-9s ", nub_cap_kind_name(it->kind));
    print_hex(it->hash, CAP_HASH_SIZE);
    printf("  %s\n", path);
  }
  nub_cap_bundle_free(&b);
  return rc;
}

int cmd_cap(int argc, char **argv) {
  uint8_t *wire = NULL, hash[CAP_HASH_SIZE];
  size_t len;
  nub_cap_view v;
  nub_cap_error err;
  cli_args a;
  int rc = cli_parse(&cli_cap_spec, argc, argv, &a);
  if (rc) return rc == CLI_HELP ? 0 : rc;
  const char *sub = a.pos[0], *file = a.pos[1];
  if (!strcmp(sub, "build")) return cap_build(&a);
  if (strcmp(sub, "hash") && strcmp(sub, "show"))
    return cli_usage_error("cap", "unknown subcommand '%s' (hash, show or build)", sub);
  if (cli_read_file(file, &wire, &len)) return 1;
  if (nub_cap_decode(wire, wire + len, &v, &err) || nub_cap_hash(&v, hash, &err)) {
    fprintf(stderr, "nub cap %s: %s: %s (%s error at byte %llu)\n", sub, file, err.msg,
            nub_cap_errcode_name(err.code), (unsigned long long)err.offset);
    free(wire);
    return 1;
  }
  if (!strcmp(sub, "show")) show(&v, hash);
  else {
    print_hex(hash, CAP_HASH_SIZE);
    printf("\n");
  }
  free(wire);
  return 0;
}
