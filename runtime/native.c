/*
** The host side of the runtime for native builds of guest sources (the
** reference results and `nub bench programs`): host calls are plain
** functions.  The log goes to nub_native_log_sink if set, else nowhere.
*/
#include <stdio.h>

#include "nub_guest.h"

void (*nub_native_log_sink)(uint64_t level, const char *msg, uint64_t len);

uint64_t nub_host_log(uint64_t level, const char *target, uint64_t target_len,
                      const char *msg, uint64_t msg_len) {
  (void)target; (void)target_len;
  if (nub_native_log_sink) nub_native_log_sink(level, msg, msg_len);
  return 0;
}

void nub_heap_stats_get(nub_heap_stats *out) {
  out->used = out->peak = out->capacity = 0;
}
