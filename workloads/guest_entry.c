/*
** The exported entry point of a workload program: endpoint 0 is
** nub_main(n, verbose), which runs WL_FN (set by the build) and returns
** its digest in phi7.
*/
#include "workload.h"

uint64_t nub_main(uint64_t n, uint64_t verbose);
uint64_t nub_main(uint64_t n, uint64_t verbose) { return WL_FN(n, verbose); }
NUB_EXPORT(0, nub_main);
