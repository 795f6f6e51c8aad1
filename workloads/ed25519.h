/* Ed25519 (RFC 8032, pure variant) of the ed25519 workload (ed25519.c):
** exported for the native cross-check against libsodium (tests/programs). */
#ifndef NUB_WL_ED25519_H
#define NUB_WL_ED25519_H

#include <stddef.h>
#include <stdint.h>

/* SHA-512 (FIPS 180-4) of n bytes. */
void wl_sha512(uint8_t out[64], const uint8_t *msg, size_t n);
/* The public key of a 32-byte secret key (RFC 8032 5.1.5). */
void wl_ed25519_public_key(uint8_t pk[32], const uint8_t sk[32]);
/* A signature of msg by the key pair (sk, pk) (RFC 8032 5.1.6). */
void wl_ed25519_sign(uint8_t sig[64], const uint8_t *msg, size_t n, const uint8_t sk[32],
                     const uint8_t pk[32]);
/* 1 if sig is a valid signature of msg under pk (RFC 8032 5.1.7), else 0. */
int wl_ed25519_verify(const uint8_t sig[64], const uint8_t *msg, size_t n, const uint8_t pk[32]);

#endif
