/*
** The CALL/HALT kernel (docs/kernel.md): an invocation is a stack of
** frames, each an Instance's registers, pc, slots and memory.  Programs
** reach the kernel through `ecalli` with the ids below; every other id
** ends the invocation as a host call, as before.
*/
#ifndef NUB_NK_FRAMES_H
#define NUB_NK_FRAMES_H

#include <stdint.h>

/* kernel operations: the `ecalli` immediate */
#define NK_OP_REPLY           0u    /* = HALT of a called frame */
#define NK_OP_HOST_YIELD      16u
#define NK_OP_DERIVE_SPAWN    18u
#define NK_OP_IMAGE_HASH_CHAIN 20u
#define NK_OP_HOST_CALL       26u
#define NK_OP_CALL_RESUME     27u
#define NK_OP_DROP_RESUME     28u

#define NK_SLOTS          256u     /* one-byte slot keys */
#define NK_SCRATCHPAD     0u       /* moves caller <-> callee on CALL / HALT */
#define NK_SELF_IMAGE     UINT64_MAX  /* DERIVE_SPAWN image operand: the running Image */
#define NK_NO_SLOT        UINT64_MAX  /* IMAGE_HASH_CHAIN destination: none */

/* status a caller sees in phi8 after HOST_CALL / CALL_RESUME returns */
#define NK_STATUS_OK      0u
#define NK_STATUS_YIELDED 1u

/* ---- limits: what one invocation may make the guest hold ---- */
#define NK_MAX_DEPTH      256u     /* frames on the stack (root included): error 51 */
#define NK_MAX_MEMORIES   1024u    /* Instances with an address space (4 GiB of
                                      reserved addresses each): error 27 beyond */
#define NK_MEM_POOL       64u      /* reset address spaces kept for the next frame */

/* ---- gas: one table (docs/kernel.md, "Gas") ----
** The reference's figures (its "category 3" constants, themselves marked
** placeholders there) except where nub's memory differs:
**  KERNEL_CALL  floor of every kernel operation the kernel serves
**               (reference: HOST_CALL_FLOOR = 100)
**  CALL_FRAME   a HOST_CALL or CALL_RESUME entering a frame (reference 1024)
**  CODE_PAGE    per started 4 KiB of the callee's code, every CALL: the
**               compile/page-table work it stands for (reference 512)
**  RO_UNIT      per started 2 MiB of code and of each read-only mapping
**               (reference PAGE_IN_COST = 64)
**  COW_PAGE     per page of Data placed where the frame may write it (a
**               read-write mapping or an overlay), paid when the
**               Instance's memory is built (its first CALL): the kernel
**               copies such a page at most once, on the first write; nub's
**               engines write through host mappings, so the copy has no
**               fault of its own to charge (reference COW_COST = 256 per
**               first write) */
#define NK_GAS_KERNEL_CALL 100u
#define NK_GAS_CALL_FRAME  1024u
#define NK_GAS_CODE_PAGE   512u
#define NK_GAS_RO_UNIT     64u
#define NK_GAS_COW_PAGE    256u

#endif
