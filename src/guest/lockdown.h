/*
** Lockdown of the nub-guest process after setup (docs/sandbox.md): drop
** the filesystem, the capability bounding set, root (without a user
** namespace), descriptors, capabilities and resource limits, then
** install the seccomp allow-list.  Everything attempted is recorded in an
** nk_chan_report; only a failure of no_new_privs or seccomp is fatal.
*/
#ifndef NUB_LOCKDOWN_H
#define NUB_LOCKDOWN_H

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>

#include "../chan/nk_chan.h"

/* One syscall of the allow-list and the argument check applied to it. */
typedef enum nk_arg_check {
  NK_ARGS_ANY,        /* no check */
  NK_ARGS_W_XOR_X,    /* prot (arg 2) never both PROT_WRITE and PROT_EXEC */
  NK_ARGS_FUTEX,      /* op (arg 1), private and clock flags ignored: FUTEX_WAIT, FUTEX_WAKE
                         and their _BITSET forms (the C library's mutexes, rwlocks and
                         condition variables, which lanes contend on) */
  NK_ARGS_FD0,        /* fd (arg 0) is 0, the guest's memfd (NK_GUEST_FD) */
  NK_ARGS_POPULATE,   /* advice (arg 2) is MADV_POPULATE_READ or MADV_POPULATE_WRITE: fill
                         page tables of memory the guest may touch anyway, nothing else */
} nk_arg_check;

typedef struct nk_syscall_rule {
  int nr;
  const char *name;
  uint8_t check;      /* nk_arg_check */
} nk_syscall_rule;

/* The allow-list; *count receives its length. */
const nk_syscall_rule *nk_seccomp_rules(size_t *count);

/* Builds the filter program into out (cap instructions); returns its
** length, 0 if it does not fit.  kill_action is the return value for
** everything not allowed (SECCOMP_RET_KILL_PROCESS normally). */
size_t nk_seccomp_build(struct sock_filter *out, size_t cap, uint32_t kill_action);

/* no_new_privs + the filter (recorded in rep).  Returns 0 or -1 with a
** message. */
int nk_seccomp_install(nk_chan_report *rep, char *err, size_t errlen);

/* The whole lockdown.  namespaces: NUB_NS_* the host created the guest
** in.  Every descriptor is closed but keep_fd (-1: none; the heap memfd,
** which invocations map copy-on-write).  Fills rep; returns 0, or -1 with
** a message when the process must not go on (no seccomp). */
int nk_lockdown(uint32_t namespaces, int keep_fd, nk_chan_report *rep,
                int (*make_threads)(void *ud, char *err, size_t errlen), void *ud, char *err,
                size_t errlen);

#endif
