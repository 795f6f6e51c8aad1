/*
** The host side of a lane slot (include/nub/abi.h, "lanes"): post an
** invocation, wait for it, take the result.  The slot is shared with the
** guest, so everything read from it is read once and checked.  Which lane
** a call gets and what happens when the guest dies is nub.c's business.
*/
#include <errno.h>
#include <string.h>

#include "../chan/nk_chan.h"
#include "host.h"

#define LIVENESS_MS 50u          /* longest sleep between checks that the guest lives */

void host_lane_post(nub_lane_slot *s, const nub_invoke_packet *p, uint64_t job) {
  __atomic_store_n(&s->job_id, job, __ATOMIC_RELAXED);
  memcpy(&s->packet, p, sizeof *p);
  nk_store_sc(&s->status, NUB_LANE_READY);
  if (nk_load_sc(&s->lane_sleeping)) nk_futex_wake(&s->status);
}

static int died(uint32_t lane, nub_error *err) {
  return host_fail(err, NUB_ERR_GUEST_DIED, "lane %u: the guest process died during the "
                   "invocation", lane);
}

/* nk_spin_for's spin for DONE, with a prefetch of the slot's second
** line (result, error_len) in every round: the lane writes it just
** before DONE, and the host's first read of it after DONE was a second
** miss in a row.  Measured on a 2-vCPU KVM guest in its slow phase
** (ping ~470 ns), warm invoke 705-801 ns against 766-868 without it
** (four alternating pairs); in its fast phase no change.  A hint only:
** no ordering, the result is read after DONE as before. */
static bool spin_for_done(const nub_lane_slot *s) {
  uint64_t start = nk_now_ns();
  for (uint32_t i = 1;; i++) {
    __builtin_prefetch(&s->result);
    if (nk_load(&s->status) == NUB_LANE_DONE) return true;
    __builtin_ia32_pause();
    if (!(i & 63)) {
      if (nk_now_ns() - start > NK_SPIN_NS) return false;
      syscall(SYS_sched_yield);
    }
  }
}

/* Spin a while, then sleep on the owner word with FUTEX_WAITERS set (the
** lane clears it and wakes us after DONE; the guest's death sets
** FUTEX_OWNER_DIED in it and wakes us too).  A guest that neither answers
** nor dies is killed after b->call_timeout_ms; its death is checked at
** least every LIVENESS_MS.  The owner word is the guest's: whatever it
** holds only decides whether we sleep, never for how long. */
int host_lane_wait(host_backend *b, uint32_t lane, nub_lane_slot *s, nub_error *err) {
  if (spin_for_done(s)) return NUB_OK;
  uint64_t t0 = nk_now_ns();
  uint64_t deadline = b->call_timeout_ms ? t0 + (uint64_t)b->call_timeout_ms * 1000000u
                                         : UINT64_MAX;
  uint64_t liveness = 500000;
  for (;;) {
    uint32_t v = nk_load(&s->owner);
    if (nk_load(&s->status) == NUB_LANE_DONE) {
      if (v & FUTEX_WAITERS)     /* ours, unless the lane already cleared it */
        __atomic_compare_exchange_n(&s->owner, &v, v & ~FUTEX_WAITERS, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE);
      return NUB_OK;
    }
    if (v & FUTEX_OWNER_DIED) return died(lane, err);
    if (!(v & FUTEX_WAITERS)) {
      if (!__atomic_compare_exchange_n(&s->owner, &v, v | FUTEX_WAITERS, false,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        continue;
      if (b->ops->alive && !b->ops->alive(b)) return died(lane, err);
      continue;                  /* the status once more before sleeping */
    }
    uint64_t t = nk_now_ns();
    if (t >= deadline) {
      if (b->ops->kill) b->ops->kill(b);
      return host_fail(err, NUB_ERR_TIMEOUT, "lane %u: the guest did not answer within %u ms; "
                       "it was killed", lane, b->call_timeout_ms);
    }
    if (liveness < LIVENESS_MS * 1000000ull) liveness *= 2;
    uint64_t slice = deadline - t < liveness ? deadline - t : liveness;
    struct timespec ts = {(time_t)(slice / 1000000000u), (long)(slice % 1000000000u)};
    if (nk_futex_wait(&s->owner, v, &ts) && errno == ETIMEDOUT && b->ops->alive &&
        !b->ops->alive(b))
      return died(lane, err);
  }
}

/* After DONE: the result and the kernel error's text (printable ASCII,
** NUL-terminated in text[NUB_KERNEL_ERROR_TEXT_MAX + 1]), then the slot
** is the host's again (EMPTY). */
int host_lane_take(nub_lane_slot *s, uint32_t lane, nub_invocation_result *r, char *text,
                   nub_error *err) {
  uint32_t len = __atomic_load_n(&s->error_len, __ATOMIC_RELAXED);
  memcpy(r, &s->result, sizeof *r);
  int rc = NUB_OK;
  if (len > NUB_KERNEL_ERROR_TEXT_MAX) {
    rc = host_fail(err, NUB_ERR_PROTOCOL, "lane %u: error text of %u bytes, at most %u", lane,
                   len, NUB_KERNEL_ERROR_TEXT_MAX);
    len = 0;
  }
  memcpy(text, s->error, len);
  for (uint32_t i = 0; i < len; i++)
    if ((uint8_t)text[i] < 0x20 || (uint8_t)text[i] >= 0x7F) text[i] = '?';
  text[len] = 0;
  nk_store(&s->status, NUB_LANE_EMPTY);
  return rc;
}
