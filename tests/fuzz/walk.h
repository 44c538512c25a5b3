/*
 * walk.h — what both fuzz harnesses do with an opened source: walk the
 * whole tree through the public API (list, stat, mem, size, read) within
 * fixed bounds, asserting the KV_RO contract at every step (walk.c). A
 * broken invariant prints what broke and traps, which libFuzzer reports
 * as a crash with the input that caused it.
 */
#ifndef KVRO_FUZZ_WALK_H
#define KVRO_FUZZ_WALK_H

#include <kvro/kvro.h>

#include <stdbool.h>
#include <stdint.h>

/* Traps with a message when COND is false: a contract broken. */
#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fz_broken(__FILE__, __LINE__, #cond);                                                  \
    } while (0)

_Noreturn void fz_broken(const char *file, int line, const char *what);

/* A failing call's record: a known status equal to the one returned, and
 * NUL-terminated strings. S == KVRO_OK is not checked. */
void fz_check_error(kvro_status s, const kvro_error *e);

/* A record filled with garbage, so a field a call forgets to terminate
 * shows. */
void fz_error_poison(kvro_error *e);

typedef struct fz_walk_opts {
    int max_depth;       /* directories deeper than this are not listed */
    int64_t max_entries; /* entries visited in all */
    int64_t max_files;   /* files whose bytes are read */
    /* Reads may fail (with a clean error) and two reads of one file may
     * disagree: for a source that is allowed to be wrong, not unsafe. */
    bool lenient;
    /* Called for every listed entry with its stat result. */
    void (*on_entry)(void *arg, const char *key, kvro_kind listed, kvro_status s,
                     const kvro_info *st);
    /* Called with the bytes of every successful read of KEY at OFF. */
    void (*on_read)(void *arg, const char *key, int64_t off, const unsigned char *buf, int64_t n);
    void *arg;
} fz_walk_opts;

/* Walks KV from the root. Every listing is strictly sorted, every listed
 * entry stats as its listed kind (or is a sparse member: unsupported) and
 * is present to kvro_mem, and every file reads at 0, in the middle, at its
 * last byte, at and past its end, with no read returning more than asked
 * and the ranges agreeing where they overlap. */
void fz_walk(kvro *kv, const fz_walk_opts *o);

/* Keys no source may resolve: ".." and "." components, too long, NULL
 * arguments; and deep or odd keys that must fail cleanly. */
void fz_hostile_keys(kvro *kv);

#endif
