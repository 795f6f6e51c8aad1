/*
** Fuzz the guest kernel's request decoding for every fn id: the first
** byte picks a function (or, above 0xF0, a raw frame with a fuzzed
** header), the rest is the payload.  The heap must stay consistent.
*/
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest/nk.h"
#include "guest/nk_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEAP (16u << 20)
#define IO (1u << 20)

static nk_kernel *kernel;
static void *heap;
static uint8_t in[IO], out[4096];
static unsigned served;

static void restart(void) {
  char err[200];
  nk_config cfg;
  if (kernel) nk_destroy(kernel);
  if (!heap) heap = aligned_alloc(4096, HEAP);
  cfg.heap_base = heap;
  cfg.heap_size = HEAP;
  cfg.engine = &pvm_engine_interp;
  if (nk_create(&cfg, &kernel, err, sizeof err)) abort();
  served = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!kernel || ++served > 5000) restart();   /* keep the heap from filling up */
  if (size == 0 || size > IO - sizeof(nub_request_header)) return 0;
  if (data[0] >= 0xF0) {                      /* raw frame, header included */
    memcpy(in, data + 1, size - 1);
    memset(in + size - 1, 0, sizeof(nub_request_header));
    nk_serve(kernel, in, size - 1, out, data[0] == 0xFF ? 20 : sizeof out);
  } else {
    nub_request_header req = {NUB_REQUEST_MAGIC, data[0] % 8u, size - 1};
    memcpy(in, &req, sizeof req);
    memcpy(in + sizeof req, data + 1, size - 1);
    if (req.fn_id == NUB_FN_INVOKE_CACHED && req.len == sizeof(nub_invoke_packet)) {
      nub_invoke_packet p;                    /* bound the run time of an invoke */
      memcpy(&p, in + sizeof req, sizeof p);
      p.initial_gas %= 100000;
      memcpy(in + sizeof req, &p, sizeof p);
    }
    size_t n = nk_serve(kernel, in, sizeof req + size - 1, out, sizeof out);
    nub_response_header resp;
    if (n < sizeof resp) __builtin_trap();
    memcpy(&resp, out, sizeof resp);
    if (resp.magic != NUB_RESPONSE_MAGIC || sizeof resp + resp.len != n) __builtin_trap();
  }
  if (!nk_heap_check(kernel->heap)) __builtin_trap();
  return 0;
}
