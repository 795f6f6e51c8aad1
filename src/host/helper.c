/*
** A handle's put helper: a second thread that does half of the host's
** work on a large cap (populating and filling half of the record, copying
** half of it into the request buffer, hashing half of its pages) while
** the calling thread does the other half (nub.c, nub_put_cap).  The
** thread is started at the first large put and joined by
** host_helper_stop (nub_close), so a handle that never publishes a large
** cap has no thread.  One put holds it at a time: another put that finds
** it claimed does all its work on its own thread.
**
** The handle belongs to the process that opened it: in a forked child
** (the review of this file found a child's large put waiting forever on
** the parent's thread) claim refuses, so the put works alone, and stop
** leaves the parent's thread and locks alone.  A thread that cannot be
** made is not asked for again: the puts work alone.
*/
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "host.h"

static void *helper_main(void *arg) {
  host_helper *h = arg;
  pthread_mutex_lock(&h->mx);
  for (;;) {
    while (h->taken == h->posted && !h->stop) pthread_cond_wait(&h->work, &h->mx);
    if (h->taken == h->posted) break;              /* stopping, nothing left */
    host_helper_job job = h->jobs[h->taken % HOST_HELPER_JOBS];
    h->taken++;
    pthread_mutex_unlock(&h->mx);
    job.fn(job.arg);
    pthread_mutex_lock(&h->mx);
    h->done++;
    if (h->done == h->posted) pthread_cond_signal(&h->idle);
  }
  pthread_mutex_unlock(&h->mx);
  return NULL;
}

void host_helper_init(host_helper *h) {
  memset(h, 0, sizeof *h);
  pthread_mutex_init(&h->mx, NULL);
  pthread_cond_init(&h->work, NULL);
  pthread_cond_init(&h->idle, NULL);
  h->owner = getpid();
}

/* Every signal blocked but the ones a fault raises: the helper reads the
** caller's buffer, and a SIGBUS or SIGSEGV there must reach the caller's
** handler as it would on the caller's thread (blocked, the kernel kills
** the process without it). */
static void helper_mask(sigset_t *set) {
  static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
  sigfillset(set);
  for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) sigdelset(set, faults[i]);
}

bool host_helper_claim(host_helper *h) {
  bool ok = false;
  if (getpid() != h->owner) return false;  /* a forked child: its lock may be held for good */
  pthread_mutex_lock(&h->mx);
  if (!h->claimed && !h->stop) {
    if (!h->started && !h->failed) {  /* the caller's signals are not for this thread */
      sigset_t set, old;
      helper_mask(&set);
      pthread_sigmask(SIG_SETMASK, &set, &old);
      h->started = !pthread_create(&h->thread, NULL, helper_main, h);
      h->failed = !h->started;
      pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    h->claimed = ok = h->started;
  }
  pthread_mutex_unlock(&h->mx);
  return ok;
}

void host_helper_release(host_helper *h) {
  pthread_mutex_lock(&h->mx);
  h->claimed = false;
  pthread_mutex_unlock(&h->mx);
}

void host_helper_post(host_helper *h, void (*fn)(void *), void *arg) {
  pthread_mutex_lock(&h->mx);
  if (h->posted - h->taken == HOST_HELPER_JOBS) {  /* never: a put posts one at a time, or two */
    pthread_mutex_unlock(&h->mx);
    host_helper_wait(h);
    pthread_mutex_lock(&h->mx);
  }
  h->jobs[h->posted % HOST_HELPER_JOBS] = (host_helper_job){fn, arg};
  h->posted++;
  pthread_cond_signal(&h->work);
  pthread_mutex_unlock(&h->mx);
}

void host_helper_wait(host_helper *h) {
  pthread_mutex_lock(&h->mx);
  while (h->done != h->posted) pthread_cond_wait(&h->idle, &h->mx);
  pthread_mutex_unlock(&h->mx);
}

void host_helper_stop(host_helper *h) {
  if (getpid() != h->owner) return;  /* the thread and its locks are the parent's */
  pthread_mutex_lock(&h->mx);
  h->stop = true;
  pthread_cond_signal(&h->work);
  bool started = h->started;
  pthread_mutex_unlock(&h->mx);
  if (started) pthread_join(h->thread, NULL);
  pthread_cond_destroy(&h->idle);
  pthread_cond_destroy(&h->work);
  pthread_mutex_destroy(&h->mx);
}

/* nub_cap_hash_with's helper: the right half of a Data root as one job. */
static int cap_start(void *ud, void (*fn)(void *), void *arg) {
  host_helper_post(ud, fn, arg);
  return 0;
}

static void cap_wait(void *ud) { host_helper_wait(ud); }

nub_cap_helper host_helper_for_hash(host_helper *h) {
  return (nub_cap_helper){cap_start, cap_wait, h, 2};
}
