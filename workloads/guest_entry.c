/*
** The exported entry point of a workload program: nub_main(n, verbose)
** runs WL_FN (set by the build) and returns its digest in phi7.
*/
#include "workload.h"

uint64_t NUB_EXPORT(nub_main)(uint64_t n, uint64_t verbose) { return WL_FN(n, verbose); }
