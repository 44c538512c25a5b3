/*
 * crunch.h — trees compiled into a program: `mkkv crunch DIR out.c` turns a
 * source into C data (out.c) and a header (out.h) declaring one table,
 *
 *     extern const kvro_crunch IDENT;
 *
 * and kvro_open_crunch(&IDENT, &kv, &err) serves it as an ordinary KV_RO
 * handle: kvro_read, kvro_stat, kvro_list, kvro_map (zero-copy for values
 * stored uncompressed) and kvro_sha256 (the hash computed at generation).
 *
 * The table's layout below is written by mkkv as C initialisers, so it is
 * versioned: a table records the KVRO_CRUNCH_VERSION it was generated for,
 * the generated .c refuses to compile against a header of another layout,
 * and kvro_open_crunch refuses (KVRO_E_UNSUPPORTED, naming both versions) a
 * table of another layout that reached the linker anyway. The first two
 * fields (magic, version) never move.
 *
 * Programs use only the two names kvro_crunch and kvro_open_crunch (and
 * kvro_sha256); everything else here is for the generated code.
 */
#ifndef KVRO_CRUNCH_H
#define KVRO_CRUNCH_H

#include <kvro/kvro.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVRO_CRUNCH_MAGIC 0x6b76636eu /* "kvcn" */
#define KVRO_CRUNCH_VERSION 1

/* Compressed values are cut into independent deflate streams of this many
 * uncompressed bytes (the last one shorter): a read inflates only the
 * blocks it touches. */
#define KVRO_CRUNCH_BLOCK 65536

/* kvro_crunch_entry.flags */
enum {
    KVRO_CRUNCH_DIR = 1,     /* a directory (explicit or implied by a key under it) */
    KVRO_CRUNCH_DEFLATE = 2, /* the value is stored in blocks (see blocks below) */
};

/* One file or directory. Entries are in depth-first order, each
 * directory's entries sorted by name (bytes, as strcmp): that is, sorted by
 * key with '/' ordered before every other byte, so a directory's whole
 * subtree follows it and ends at END. */
typedef struct kvro_crunch_entry {
    uint32_t key;   /* offset of the NUL-terminated, normalised key in names */
    uint32_t end;   /* index of the first entry after this one's subtree */
    uint32_t flags; /* KVRO_CRUNCH_* */
    uint32_t mode;  /* permission bits (07777) */
    int64_t size;   /* a file's bytes; 0 for a directory */
    int64_t mtime;  /* seconds since the epoch */
    uint64_t data;  /* offset of the stored bytes in the table's data */
    uint32_t block; /* KVRO_CRUNCH_DEFLATE: first of its entries in blocks */
    uint32_t mtime_nsec;
    unsigned char sha256[32]; /* of a file's bytes; zeros for a directory */
} kvro_crunch_entry;

/* Inflates the raw deflate stream IN (IN_LEN bytes) into exactly OUT_LEN
 * bytes at OUT. Generated tables with compressed values point at
 * kvro_crunch_inflate; tables without leave it NULL, so that a program
 * whose tables are all uncompressed never links zlib. */
typedef kvro_status (*kvro_crunch_inflate_fn)(const unsigned char *in, size_t in_len,
                                              unsigned char *out, size_t out_len,
                                              kvro_error *err);

typedef struct kvro_crunch {
    uint32_t magic;   /* KVRO_CRUNCH_MAGIC */
    uint32_t version; /* KVRO_CRUNCH_VERSION of the generator */
    const char *name; /* the table's identifier, for messages ("crunch:NAME") */
    uint32_t count;   /* entries, the root excluded */
    const kvro_crunch_entry *entries;
    const char *names;
    const unsigned char *data; /* every stored value, back to back */
    uint64_t data_size;
    /* For KVRO_CRUNCH_DEFLATE values: entry.block is the index of N + 1
     * offsets, relative to entry.data, where its N blocks start and the
     * last one ends. A block whose stored length equals its uncompressed
     * length is stored raw (deflate did not shrink it). */
    const uint32_t *blocks;
    kvro_crunch_inflate_fn inflate;
} kvro_crunch;

/* Opens TABLE (which must outlive the handle) as a KV_RO handle, backend
 * "crunch". Nothing proportional to the data is allocated or checked: a
 * table is trusted as its generator wrote it, once its magic and version
 * match. */
KVRO_EXPORT kvro_status kvro_open_crunch(const kvro_crunch *table, kvro **kv, kvro_error *err);

/* The SHA-256 of value KEY, as stored with it: a crunched table keeps one
 * per file. KVRO_E_UNSUPPORTED for a source that stores none (every other
 * backend today), KVRO_E_IS_DIR for a directory. (For any backend, so it
 * belongs in kvro.h; it lives here until the backend seam grows a slot.) */
KVRO_EXPORT kvro_status kvro_sha256(kvro *kv, const char *key, unsigned char out[32],
                                    kvro_error *err);

/* The inflater generated tables with compressed values point at (links
 * zlib). Not for programs. */
KVRO_EXPORT kvro_status kvro_crunch_inflate(const unsigned char *in, size_t in_len,
                                            unsigned char *out, size_t out_len, kvro_error *err);

#ifdef __cplusplus
}
#endif
#endif
