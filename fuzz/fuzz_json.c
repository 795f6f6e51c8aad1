/*
** Fuzz the JSON reader, and the vector loader on top of it.
*/
#include <stddef.h>
#include <stdint.h>

#include "util/json.h"
#include "vector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_doc *doc;
  json_error err;
  pvm_vector v;
  char why[256];
  if (json_parse((const char *)data, (const char *)data + size, &doc, &err) == 0) {
    const json_value *root = json_root(doc);
    uint64_t u;
    int64_t i;
    if (root->type == JSON_INT && !json_to_u64(root, &u) && !json_to_i64(root, &i) && !root->negative)
      __builtin_trap();     /* a non-negative integer always fits one of them */
    json_free(doc);
  }
  if (vector_parse((const char *)data, size, &v, why, sizeof why) == 0) vector_free(&v);
  return 0;
}
