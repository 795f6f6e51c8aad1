/* The workload table (workloads.h), built natively only. */
#include "workload.h"
#include "workloads.h"

const wl_info wl_table[] = {
  {"sha256", wl_sha256, 1u << 20, 4096, "bytes"},
  {"blake2b", wl_blake2b, 1u << 20, 4096, "bytes"},
  {"json", wl_json, 1u << 20, 8192, "bytes"},
  {"qsort", wl_qsort, 1000000, 5000, "ints"},
  {"bytecode", wl_bytecode, 100000, 500, "iterations"},
  {"zlib", wl_zlib, 1u << 20, 16384, "bytes"},
  {"heap", wl_heap, 50000, 3000, "operations"},
  {"keccak", wl_keccak, 1u << 20, 4096, "bytes"},
  {"sieve", wl_sieve, 10000000, 10000, "numbers"},
  {"ed25519", wl_ed25519, 128, 8, "signatures"},
  {NULL, NULL, 0, 0, NULL},
};
