/*
 * crunch_sha256.h — SHA-256 for mkkv crunch (crunch_sha256.c).
 */
#ifndef KVRO_CLI_CRUNCH_SHA256_H
#define KVRO_CLI_CRUNCH_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct sha256 {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t used;
} sha256;

void sha_init(sha256 *s);
void sha_update(sha256 *s, const unsigned char *p, size_t n);
void sha_final(sha256 *s, unsigned char out[32]);

#endif
