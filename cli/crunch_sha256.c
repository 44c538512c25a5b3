/*
 * crunch_sha256.c — SHA-256 (FIPS 180-4, section 6.2), the hash mkkv crunch
 * stores with each value so that a program serves an ETag or a
 * Subresource-Integrity value without hashing at run time.
 */
#include "crunch_sha256.h"

#include <string.h>

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(sha256 *s, const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    /* Eight named variables rotated by renaming, not an array shifted by
     * memmove: it keeps them in registers (twice as fast at -O2). */
    uint32_t A = s->h[0], B = s->h[1], C = s->h[2], D = s->h[3];
    uint32_t E = s->h[4], F = s->h[5], G = s->h[6], H = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = H + (ROR(E, 6) ^ ROR(E, 11) ^ ROR(E, 25)) + ((E & F) ^ (~E & G)) +
                      sha_k[i] + w[i];
        uint32_t t2 = (ROR(A, 2) ^ ROR(A, 13) ^ ROR(A, 22)) + ((A & B) ^ (A & C) ^ (B & C));
        H = G, G = F, F = E, E = D + t1;
        D = C, C = B, B = A, A = t1 + t2;
    }
    s->h[0] += A, s->h[1] += B, s->h[2] += C, s->h[3] += D;
    s->h[4] += E, s->h[5] += F, s->h[6] += G, s->h[7] += H;
}

void sha_init(sha256 *s)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
    s->used = 0;
}

void sha_update(sha256 *s, const unsigned char *p, size_t n)
{
    s->len += n;
    while (n) {
        if (!s->used && n >= 64) {
            sha_block(s, p);
            p += 64, n -= 64;
            continue;
        }
        size_t k = 64 - s->used < n ? 64 - s->used : n;
        memcpy(s->buf + s->used, p, k);
        s->used += k, p += k, n -= k;
        if (s->used == 64) {
            sha_block(s, s->buf);
            s->used = 0;
        }
    }
}

void sha_final(sha256 *s, unsigned char out[32])
{
    uint64_t bits = s->len * 8;
    unsigned char pad[72] = {0x80};
    size_t k = (s->used < 56 ? 56 : 120) - s->used;
    for (int i = 0; i < 8; i++)
        pad[k + (size_t)i] = (unsigned char)(bits >> (56 - 8 * i));
    sha_update(s, pad, k + 8);
    for (int i = 0; i < 32; i++)
        out[i] = (unsigned char)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

