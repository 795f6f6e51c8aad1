/*
** Starting nub-guest: a vfork-style clone into fresh namespaces (as many
** as the kernel allows, probed once per process), the memfd on fd 0 and
** nothing else, then execve.  docs/sandbox.md, "Process model".
*/
#ifndef NUB_HOST_SPAWN_H
#define NUB_HOST_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "host.h"

typedef struct host_child {
  pid_t pid;
  int pidfd;
  uint32_t namespaces;       /* NUB_NS_* the child was created in */
  char notes[200];           /* namespaces we could not have, and why */
} host_child;

/* Start the guest executable at path with mem_fd (channel and heap,
** nk_chan.h) as its fd NK_GUEST_FD and no other descriptor.  The child
** stores the NUB_NS_* set it was created in at *ns_out (shared memory the
** guest reads) before its execve.  Fails with NUB_ERR_SANDBOX naming the
** step (uid map, execve, ...) and errno. */
int host_spawn_guest(const char *path, int mem_fd, uint32_t *ns_out, host_child *out,
                     nub_error *err);

/* SIGKILL (harmless if already dead), then reap; fills a description of
** how the child ended ("exited with status 3", "killed by SIGSYS ...").
** Returns the waitid si_code (CLD_*) or -1. */
int host_reap_child(host_child *c, bool kill_first, char *how, size_t howlen);

#endif
