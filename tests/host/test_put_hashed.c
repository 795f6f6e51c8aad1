/*
** nub_put_cap of a cap of a page or more: the host hashes its own copy
** (from 256 KiB on two threads, the handle's helper) and sends it as a
** one-record REPUBLISH frame; the guest stores it under that hash without
** hashing (docs/abi.md, "REPUBLISH").  What the guest stores must be what
** was put: the wire back through nub_lookup, its bytes through an
** invocation, its hash nub_cap_hash's; a second put of the same cap
** stores nothing new; a malformed one-record frame is refused naming its
** offset; many threads and handles publish at once; nub_close leaves no
** thread behind.  NUB_TEST_BACKEND=proc|inproc.
*/
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "host_test_util.h"

#define BASE 0x10000u
#define PAGE 4096u

static nub_options options(void) {
  nub_options o = ht_options(NULL);
  o.io_size = 4u << 20;
  o.heap_size = 96u << 20;
  return o;
}

/* Byte i of shape seed's memory; pages with (page % 8 == 3) stay zero in
** sparse shapes, so the Data cap leaves them out. */
static uint8_t byte_at(uint32_t seed, size_t i, bool sparse) {
  if (sparse && (i / PAGE) % 8 == 3) return 0;
  return (uint8_t)((i * 13 + i / PAGE * 7 + seed * 101) % 251 + 1);
}

/* Threads.  /proc/self/task counts this process's threads. */
static unsigned thread_count(void) {
  DIR *d = opendir("/proc/self/task");
  unsigned n = 0;
  struct dirent *e;
  assert_non_null(d);
  while ((e = readdir(d))) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* r7 = u64 at r7, then halt. */
static uint8_t *load_program(size_t *len) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint8_t *blob;
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IND_U64, 7, 7, 0, 0, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 12, 0, 0, (uint64_t)(int64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  if (nub_pvm_builder_finish(b, &blob, len, NULL)) fail_msg("builder");
  nub_pvm_builder_free(b);
  return blob;
}

static void a_large_cap_comes_back_byte_identical_under_the_hosts_hash(void **state) {
  /* dense: pages with bytes, from the first (0: all of them) */
  static const struct { const char *name; size_t pages; bool sparse; size_t dense; } shapes[] = {
    {"one page (the host hashes on one thread)", 1, false, 0},
    {"300 KiB (the helper hashes half)", 75, false, 0},
    {"1 MiB", 256, false, 0},
    {"1 MiB, every eighth page zero (sparse)", 256, true, 0},
    {"3 MiB", 768, false, 0},
    {"300 KiB of pages in the left half of 2 MiB (the helper copies, no half to hash)", 512,
     false, 75},
  };
  (void)state;
  nub_options o = options();
  nub *n = ht_open(&o);
  size_t plen;
  uint8_t *prog = load_program(&plen);
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    size_t size = shapes[s].pages * PAGE, got, data = SIZE_MAX;
    uint8_t *bytes = malloc(size);
    for (size_t i = 0; i < size; i++)
      bytes[i] = shapes[s].dense && i >= shapes[s].dense * PAGE ? 0
                                                                : byte_at((uint32_t)s, i, shapes[s].sparse);
    nub_cap_region region = {BASE, (uint32_t)size, CAP_ACCESS_RO, bytes, size};
    nub_cap_bundle b;
    nub_cap_error ce;
    nub_error err;
    nub_hash h, want;
    struct nub_kernel_stats before, after;
    if (nub_cap_build_generic(PVM_PROFILE_GP07, prog, plen, &region, 1, &b, &ce))
      fail_msg("build: %s", ce.msg);
    for (uint32_t i = 0; i < b.count; i++)
      if (b.items[i].wire[0] == CAP_DATA) data = i;
    assert_true(data != SIZE_MAX);
    const nub_cap_item *d = &b.items[data];
    assert_true(d->len >= PAGE);                   /* so it goes with the host's hash */
    print_message("    %s: %zu-byte wire\n", shapes[s].name, d->len);
    ht_publish(n, &b);
    /* the hash is nub_cap_hash's of the wire */
    assert_int_equal(nub_cap_hash_wire(d->wire, d->wire + d->len, want, NULL), CAP_OK);
    assert_memory_equal(want, d->hash, NUB_HASH_SIZE);
    /* the wire comes back whole, from the host's copy and from the guest's
    ** directory (a put raw of the same bytes finds them stored) */
    uint8_t *back = malloc(d->len);
    assert_int_equal(nub_lookup(n, want, back, d->len, &got, &err), NUB_OK);
    assert_int_equal(got, d->len);
    assert_memory_equal(back, d->wire, d->len);
    uint8_t reply[64];
    assert_int_equal(nub_call_raw(n, NUB_FN_PUT_CAP, d->wire, d->len, reply, sizeof reply, &got,
                                  &err), NUB_OK);
    assert_int_equal(got, NUB_HASH_SIZE);
    assert_memory_equal(reply, want, NUB_HASH_SIZE);
    /* the guest's page image holds the bytes: first, last and a zero page */
    size_t probes[] = {0, size - 8, 3 * PAGE + 16, size / 2 + 8};
    for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++) {
      if (probes[k] + 8 > size) continue;
      uint64_t expect;
      memcpy(&expect, bytes + probes[k], 8);
      const uint64_t args[4] = {BASE + probes[k], 0, 0, 0};
      nub_invocation_result r;
      if (nub_invoke(n, b.items[b.instance].hash, 0, args, 1000000, &r, &err))
        fail_msg("invoke: %s", err.msg);
      assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
      if (r.return_value != expect)
        fail_msg("%s: u64 at +%zu is 0x%llx, put 0x%llx", shapes[s].name, probes[k],
                 (unsigned long long)r.return_value, (unsigned long long)expect);
    }
    /* the same cap again: stored already, nothing new (inserted 0) */
    assert_int_equal(nub_kernel_stats(n, &before, NULL), NUB_OK);
    assert_int_equal(nub_put_cap(n, d->wire, d->len, h, &err), NUB_OK);
    assert_memory_equal(h, want, NUB_HASH_SIZE);
    assert_int_equal(nub_kernel_stats(n, &after, NULL), NUB_OK);
    assert_int_equal(after.caps_total, before.caps_total);
    assert_int_equal(after.caps_published, before.caps_published);
    assert_int_equal(after.put_cap_failures, 0);
    free(back);
    free(bytes);
    nub_cap_bundle_free(&b);
  }
  free(prog);
  nub_close(n);
}

/* One-record REPUBLISH frames around a 1 MiB Data cap, each malformed one
** way: the guest names the record and its offset, stores nothing, serves on. */
static void a_malformed_hashed_frame_is_refused_naming_the_offset(void **state) {
  (void)state;
  nub_options o = options();
  nub *n = ht_open(&o);
  size_t size = 1u << 20, len, got;
  uint8_t *bytes = malloc(size), *wire;
  for (size_t i = 0; i < size; i++) bytes[i] = byte_at(7, i, false);
  assert_int_equal(nub_cap_encode_data_alloc(size, bytes, size, &wire, &len, NULL), CAP_OK);
  nub_republish_header hd = {1, 0};
  nub_republish_record rec;
  assert_int_equal(nub_cap_hash_wire(wire, wire + len, rec.hash, NULL), CAP_OK);
  uint8_t *frame = malloc(sizeof hd + sizeof rec + len + 16);
  char msg[4][128];
  snprintf(msg[0], sizeof msg[0], "record 0 at offset 8: length %zu exceeds the %zu bytes left",
           len, len - 1);
  snprintf(msg[1], sizeof msg[1], "record 0 at offset 8: ");
  snprintf(msg[2], sizeof msg[2], "5 bytes after record 1");
  snprintf(msg[3], sizeof msg[3], "reserved header word is 0x1");
  /* stored: caps in the directory after it (a record stays stored when
  ** only what follows it is wrong) */
  const struct { const char *what; uint64_t rec_len; size_t payload; uint32_t reserved; uint8_t flip; const char *msg; uint64_t stored; } bad[] = {
    {"wire one byte short of its length", len, len - 1, 0, 0, msg[0], 0},
    {"a wire that does not decode (its size field)", len, len, 0, 1, msg[1], 0},
    {"reserved word set", len, len, 1, 0, msg[3], 0},
    {"bytes after the record", len, len + 5, 0, 0, msg[2], 1},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    nub_republish_reply r;
    nub_error err;
    struct nub_kernel_stats ks;
    hd.reserved = bad[i].reserved;
    rec.len = bad[i].rec_len;
    memcpy(frame, &hd, sizeof hd);
    memcpy(frame + sizeof hd, &rec, sizeof rec);
    memcpy(frame + sizeof hd + sizeof rec, wire, len);
    memset(frame + sizeof hd + sizeof rec + len, 0, 16);
    if (bad[i].flip) frame[sizeof hd + sizeof rec + 1] ^= 0x10;   /* size no longer whole pages */
    int rc = nub_call_raw(n, NUB_FN_REPUBLISH, frame, sizeof hd + sizeof rec + bad[i].payload,
                          &r, sizeof r, &got, &err);
    print_message("    %s: %s\n", bad[i].what, rc ? err.msg : "accepted");
    if (rc != NUB_ERR_GUEST || !strstr(err.msg, bad[i].msg))
      fail_msg("%s: %s '%s', want '%s'", bad[i].what, nub_errcode_name(rc), err.msg, bad[i].msg);
    assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
    assert_int_equal(ks.caps_total, bad[i].stored);
  }
  /* the same frame, well formed: stored already, nothing new */
  for (int k = 0; k < 2; k++) {
    nub_republish_reply r;
    nub_error err;
    uint64_t v;
    assert_int_equal(nub_smoke(n, &v, NULL), NUB_OK);     /* serving on */
    hd.reserved = 0;
    rec.len = len;
    memcpy(frame, &hd, sizeof hd);
    memcpy(frame + sizeof hd, &rec, sizeof rec);
    memcpy(frame + sizeof hd + sizeof rec, wire, len);
    assert_int_equal(nub_call_raw(n, NUB_FN_REPUBLISH, frame, sizeof hd + sizeof rec + len, &r,
                                  sizeof r, &got, &err), NUB_OK);
    assert_int_equal(got, sizeof r);
    assert_int_equal(r.stored, 1);
    assert_int_equal(r.inserted, 0);
  }
  free(frame);
  free(wire);
  free(bytes);
  nub_close(n);
}

/* A Data cap of 256 KiB or more is streamed: its head and indexes are
** decoded on their own, its pages checked as they are hashed.  One the
** host refuses that way (an all-zero page, on either thread; indexes out
** of order) goes to the guest as PUT_CAP and is refused in the decoder's
** words (NUB_ERR_REJECTED); the host keeps nothing of it, and a good cap
** put after it comes back whole. */
static void a_large_cap_the_host_refuses_gets_the_decoders_words(void **state) {
  static const struct { const char *what; uint32_t zero, swap; const char *msg; } bad[] = {
    {"page 5 all zero (the calling thread's half)", 5, UINT32_MAX,
     "data.pages[5] (page 5) is all zero"},
    {"page 200 all zero (the helper's half)", 200, UINT32_MAX,
     "data.pages[200] (page 200) is all zero"},
    {"pages 10 and 11 swapped", UINT32_MAX, 10, "data.pages[11].index 10 is below page 11"},
  };
  (void)state;
  nub_options o = options();
  nub *n = ht_open(&o);
  size_t size = 1u << 20, len, got;
  uint8_t *bytes = malloc(size), *wire, *back;
  nub_hash h, want;
  nub_error err;
  for (size_t i = 0; i < size; i++) bytes[i] = byte_at(9, i, false);
  assert_int_equal(nub_cap_encode_data_alloc(size, bytes, size, &wire, &len, NULL), CAP_OK);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint8_t *w = malloc(len);
    memcpy(w, wire, len);
    if (bad[i].zero != UINT32_MAX) tu_data_zero_page(w, bad[i].zero);
    if (bad[i].swap != UINT32_MAX) tu_data_swap_indexes(w, bad[i].swap);
    int rc = nub_put_cap(n, w, len, h, &err);
    print_message("    %s: %s\n", bad[i].what, rc ? err.msg : "accepted");
    if (rc != NUB_ERR_REJECTED || !strstr(err.msg, bad[i].msg))
      fail_msg("%s: %s '%s', want '%s'", bad[i].what, nub_errcode_name(rc), err.msg, bad[i].msg);
    free(w);
  }
  struct nub_kernel_stats ks;
  assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.caps_total, 0);
  assert_int_equal(nub_put_cap(n, wire, len, h, &err), NUB_OK);
  assert_int_equal(nub_cap_hash_wire(wire, wire + len, want, NULL), CAP_OK);
  assert_memory_equal(h, want, NUB_HASH_SIZE);
  back = malloc(len);
  assert_int_equal(nub_lookup(n, h, back, len, &got, &err), NUB_OK);
  assert_int_equal(got, len);
  assert_memory_equal(back, wire, len);
  free(back);
  free(wire);
  free(bytes);
  nub_close(n);
}

/* A full heap refuses a hashed put as PUT_CAP's would: NUB_ERR_NOMEM, the
** guest lives on and publishes what fits. */
static void a_full_heap_refuses_a_hashed_put_with_nomem(void **state) {
  (void)state;
  nub_options o = options();
  o.heap_size = 4u << 20;
  nub *n = ht_open(&o);
  size_t size = 3u << 20, len;
  uint8_t *bytes = malloc(size), *wire;
  nub_hash h;
  nub_error err;
  for (int k = 0; k < 2; k++) {
    for (size_t i = 0; i < size; i++) bytes[i] = byte_at((uint32_t)k + 20, i, false);
    assert_int_equal(nub_cap_encode_data_alloc(size, bytes, size, &wire, &len, NULL), CAP_OK);
    int rc = nub_put_cap(n, wire, len, h, &err);
    free(wire);
    if (k == 0) { assert_int_equal(rc, NUB_OK); continue; }
    assert_int_equal(rc, NUB_ERR_NOMEM);
    print_message("    %s\n", err.msg);
    char want[96];
    snprintf(want, sizeof want, "the guest has no memory for the %zu-byte cap", len);
    if (!strstr(err.msg, want)) fail_msg("'%s' lacks '%s'", err.msg, want);
    if (!strstr(err.msg, "(full)") && !strstr(err.msg, "the heap has no"))
      fail_msg("'%s' does not say the heap is full", err.msg);
  }
  uint64_t v;
  assert_int_equal(nub_smoke(n, &v, NULL), NUB_OK);
  free(bytes);
  nub_close(n);
}

/* Records of every size come back whole: small ones held in memory, Data
** caps from 256 KiB in the record file (read back by pread), before and
** after the guest is replaced (re-publication reads every record). */
static void records_of_changing_sizes_come_back_whole(void **state) {
  static const size_t pages[] = {256, 75, 512, 512, 100, 1, 300};
  enum { COUNT = sizeof pages / sizeof pages[0] };
  (void)state;
  nub_options o = options();
  nub *n = ht_open(&o);
  uint8_t *wires[COUNT];
  size_t lens[COUNT], got;
  nub_hash hashes[COUNT];
  nub_error err;
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; round == 0 && i < COUNT; i++) {
      size_t size = pages[i] * PAGE;
      uint8_t *bytes = malloc(size);
      for (size_t k = 0; k < size; k++) bytes[k] = byte_at((uint32_t)i + 40, k, i % 2);
      assert_int_equal(nub_cap_encode_data_alloc(size, bytes, size, &wires[i], &lens[i], NULL), CAP_OK);
      free(bytes);
      if (nub_put_cap(n, wires[i], lens[i], hashes[i], &err)) fail_msg("put %zu: %s", i, err.msg);
    }
    for (size_t i = 0; i < COUNT; i++) {
      uint8_t *back = malloc(lens[i]);
      nub_hash want;
      assert_int_equal(nub_cap_hash_wire(wires[i], wires[i] + lens[i], want, NULL), CAP_OK);
      assert_memory_equal(hashes[i], want, NUB_HASH_SIZE);
      assert_int_equal(nub_lookup(n, want, back, lens[i], &got, &err), NUB_OK);
      assert_int_equal(got, lens[i]);
      assert_memory_equal(back, wires[i], lens[i]);
      free(back);
    }
    if (round == 0 && o.backend == NUB_BACKEND_PROC) {   /* replace the guest */
      struct nub_sandbox_report r;
      uint64_t v;
      assert_int_equal(nub_sandbox_report(n, &r, NULL), NUB_OK);
      assert_int_equal(kill(r.guest_pid, SIGKILL), 0);
      assert_int_equal(nub_smoke(n, &v, &err), NUB_ERR_GUEST_DIED);
      assert_non_null(strstr(err.msg, "guest restarted with 7 caps re-published"));
    }
  }
  /* the guest's directory holds them too: a raw put finds each stored */
  for (size_t i = 0; i < COUNT; i++) {
    uint8_t reply[64];
    assert_int_equal(nub_call_raw(n, NUB_FN_PUT_CAP, wires[i], lens[i], reply, sizeof reply, &got,
                                  &err), NUB_OK);
    assert_memory_equal(reply, hashes[i], NUB_HASH_SIZE);
    free(wires[i]);
  }
  struct nub_kernel_stats ks;
  assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.caps_total, COUNT);
  nub_close(n);
}

/* A cap that fits the request buffer but not with the 48 bytes of a
** record frame goes by PUT_CAP (the guest hashes it) and still publishes:
** 1009 pages are a 4 136 913-byte wire, 31 bytes short of the room of a
** 1010-page buffer. */
static void a_cap_too_large_for_a_record_frame_goes_by_put_cap(void **state) {
  (void)state;
  nub_options o = options();
  o.io_size = 1010u * PAGE;                /* a whole number of pages: the same on both */
  nub *n = ht_open(&o);
  const size_t room = o.io_size - sizeof(nub_request_header), size = 1009u * PAGE;
  const size_t frame = sizeof(nub_republish_header) + sizeof(nub_republish_record);
  uint8_t *bytes = malloc(size), *wire, *back;
  size_t len, got;
  nub_hash h, expect;
  nub_error err;
  struct nub_kernel_stats ks;
  for (size_t i = 0; i < size; i++) bytes[i] = byte_at(77, i, false);
  assert_int_equal(nub_cap_encode_data_alloc(size, bytes, size, &wire, &len, NULL), CAP_OK);
  assert_true(len <= room && len > room - frame);
  assert_int_equal(nub_cap_hash_wire(wire, wire + len, expect, NULL), CAP_OK);
  if (nub_put_cap(n, wire, len, h, &err)) fail_msg("put of %zu bytes: %s", len, err.msg);
  assert_memory_equal(h, expect, NUB_HASH_SIZE);
  back = malloc(len);
  assert_int_equal(nub_lookup(n, h, back, len, &got, &err), NUB_OK);
  assert_memory_equal(back, wire, len);
  assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.caps_total, 1);
  free(back);
  free(wire);
  free(bytes);
  nub_close(n);
}

/* Threads putting caps of 300 KiB on two handles, four on the first: the
** helper serves one put at a time, the others work alone; every cap is
** recorded once under nub_cap_hash's hash and comes back whole. */
#define PUTTERS 5u
#define CAPS_EACH 4u
typedef struct putter { nub *n; uint32_t id; int failures; char msg[320]; } putter;

static void *put_many(void *arg) {
  putter *p = arg;
  size_t size = 75u * PAGE, len, got;
  uint8_t *bytes = malloc(size), *wire, *back = malloc(2 * size);
  for (uint32_t c = 0; c < CAPS_EACH; c++) {
    nub_hash h, want;
    nub_error err;
    for (size_t i = 0; i < size; i++) bytes[i] = byte_at(p->id * 100 + c, i, false);
    if (nub_cap_encode_data_alloc(size, bytes, size, &wire, &len, NULL)) { p->failures++; continue; }
    nub_cap_hash_wire(wire, wire + len, want, NULL);
    if (nub_put_cap(p->n, wire, len, h, &err)) {
      snprintf(p->msg, sizeof p->msg, "put %u/%u: %s", p->id, c, err.msg);
      p->failures++;
    } else if (memcmp(h, want, NUB_HASH_SIZE) ||
               nub_lookup(p->n, want, back, 2 * size, &got, &err) || got != len ||
               memcmp(back, wire, len)) {
      snprintf(p->msg, sizeof p->msg, "cap %u/%u does not come back", p->id, c);
      p->failures++;
    }
    free(wire);
  }
  free(back);
  free(bytes);
  return NULL;
}

static void many_threads_and_handles_put_at_once(void **state) {
  (void)state;
  unsigned threads_before = thread_count();
  nub_options o = options();
  nub *n[2] = {ht_open(&o), ht_open(&o)};
  pthread_t t[PUTTERS];
  putter p[PUTTERS];
  for (uint32_t i = 0; i < PUTTERS; i++) {
    p[i] = (putter){n[i == PUTTERS - 1], i, 0, ""};
    assert_int_equal(pthread_create(&t[i], NULL, put_many, &p[i]), 0);
  }
  for (uint32_t i = 0; i < PUTTERS; i++) pthread_join(t[i], NULL);   /* all, before a failure */
  for (uint32_t i = 0; i < PUTTERS; i++)
    if (p[i].failures) fail_msg("putter %u: %d failures, %s", i, p[i].failures, p[i].msg);
  for (int k = 0; k < 2; k++) {
    struct nub_kernel_stats ks;
    assert_int_equal(nub_kernel_stats(n[k], &ks, NULL), NUB_OK);
    assert_int_equal(ks.caps_total, k ? CAPS_EACH : (PUTTERS - 1) * CAPS_EACH);
    nub_close(n[k]);
  }
  /* each handle's helper thread (and proc's guest keeper) ended with it */
  assert_int_equal(thread_count(), threads_before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_large_cap_comes_back_byte_identical_under_the_hosts_hash),
    cmocka_unit_test(a_malformed_hashed_frame_is_refused_naming_the_offset),
    cmocka_unit_test(a_full_heap_refuses_a_hashed_put_with_nomem),
    cmocka_unit_test(a_large_cap_the_host_refuses_gets_the_decoders_words),
    cmocka_unit_test(a_cap_too_large_for_a_record_frame_goes_by_put_cap),
    cmocka_unit_test(records_of_changing_sizes_come_back_whole),
    cmocka_unit_test(many_threads_and_handles_put_at_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
