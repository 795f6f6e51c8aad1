/*
** Shared helpers for the capability tests, the vector generator and the
** fuzz seeds: sample caps of every kind and small program blobs.
*/
#ifndef CAP_TEST_UTIL_H
#define CAP_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "nub/cap.h"

/* A 32-byte hash filled with seed (never zero, never the sentinel). */
void tu_hash(uint8_t h[CAP_HASH_SIZE], uint8_t seed);
/* Lower-case hex of n bytes into a malloc'd string. */
char *tu_hex(const uint8_t *p, size_t n);
/* Decode hex (no prefix); NULL on a bad digit.  Caller frees. */
uint8_t *tu_unhex(const char *s, size_t *len);

/* A valid generic blob: one trap instruction. */
uint8_t *tu_min_blob(size_t *len);
/* A GP standard program around tu_min_blob with o, w (patterned bytes),
** z heap pages and s stack bytes. */
uint8_t *tu_spi(uint32_t ro_len, uint32_t rw_len, uint16_t heap_pages,
                uint32_t stack_size, size_t *len);

/* Sample caps (the wire is malloc'd; abort on failure). */
typedef struct tu_sample {
  const char *name;
  uint8_t *wire;
  size_t len;
} tu_sample;

/* Every sample cap the tests and vectors use; returns the count.
** Free with tu_samples_free. */
size_t tu_samples(tu_sample **out);
void tu_samples_free(tu_sample *s, size_t n);

/* Encode a spec or abort with the error. */
uint8_t *tu_encode(const nub_cap_spec *spec, size_t *len);

#endif
