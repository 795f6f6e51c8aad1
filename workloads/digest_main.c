/*
** wl_digest NAME: the native digest of workload NAME at its test size,
** as 16 hex digits (for the qemu-user check, workloads/check_qemu.cmake).
*/
#include <stdio.h>
#include <string.h>

#include "workloads.h"

int main(int argc, char **argv) {
  for (const wl_info *w = wl_table; argc == 2 && w->name; w++)
    if (!strcmp(w->name, argv[1])) {
      printf("%016llx %llu\n", (unsigned long long)w->native(w->test_n, 0),
             (unsigned long long)w->test_n);
      return 0;
    }
  fprintf(stderr, "usage: wl_digest NAME (a workload of workloads/table.c)\n");
  return 2;
}
