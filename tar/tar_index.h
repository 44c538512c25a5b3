/*
 * tar_index.h — the in-memory member table of a tar archive: a tree of
 * nodes, one per path component, with names in one arena, a hash table on
 * (parent, name) for lookup and a child list per directory for listing.
 * Built once at open (tar_scan.c) or loaded from the cache (tar_cache.c),
 * then read-only, so any number of threads may look keys up at once.
 */
#ifndef KVRO_TAR_INDEX_H
#define KVRO_TAR_INDEX_H

#include "backend.h"

#define TAR_NONE UINT32_MAX

typedef enum tar_kind {
    TAR_K_DIR = 1,
    TAR_K_FILE,
    TAR_K_HARDLINK, /* served as its target's bytes */
    TAR_K_SYMLINK,  /* resolved inside the archive at lookup */
    TAR_K_SPECIAL,  /* device, FIFO, continuation: not a value, not listed */
    TAR_K_SPARSE,   /* listed, but stat and read say KVRO_E_UNSUPPORTED */
    TAR_K_LAST = TAR_K_SPARSE,
} tar_kind;

enum {
    TAR_F_EXPLICIT = 1, /* a directory that had its own member (else implied by a path) */
};

/* 56 bytes a node. Offsets and sizes of the member's data are in the
 * (uncompressed) archive. */
typedef struct tar_node {
    int64_t off;
    int64_t size;
    int64_t mtime;
    uint32_t name;    /* arena offset of this component's name, NUL-terminated */
    uint32_t link;    /* arena offset of the link target, or TAR_NONE */
    uint32_t parent;  /* the root (node 0) is its own parent */
    uint32_t child;   /* first child of a directory, or TAR_NONE */
    uint32_t sibling; /* next child of the same parent, or TAR_NONE */
    uint32_t hnext;   /* next node in the same hash bucket, or TAR_NONE */
    int32_t nsec;
    uint16_t mode;
    uint8_t kind; /* tar_kind */
    uint8_t flags;
} tar_node;

typedef struct tar_index {
    tar_node *nodes;
    uint32_t n, cap;
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *buckets;
    uint32_t nbuckets; /* a power of two, >= n */
} tar_index;

/* One archive member as the scanner decoded it. */
typedef struct tar_member {
    const char *path; /* normalised: no leading '/' or "./", no "//" */
    const char *link; /* link target (a hard link's is normalised) or NULL */
    tar_kind kind;
    int64_t off, size, mtime;
    int32_t nsec;
    uint32_t mode;
} tar_member;

/* An empty index holding only the root directory. */
kvro_status kvro__tar_index_init(tar_index *ix, kvro_error *err);
void kvro__tar_index_free(tar_index *ix);

typedef enum tar_path_check {
    TAR_PATH_OK,
    TAR_PATH_DOT, /* has a "." or ".." component: never served */
} tar_path_check;

/* Normalises a member name IN[N] into OUT (room for N + 1): leading "/"
 * and "./" dropped, "//" collapsed, trailing '/' dropped; "" is the root. */
tar_path_check kvro__tar_path_normalise(const char *in, size_t n, char *out);

/* Adds member M (whose header is at archive offset HDR for messages):
 * missing parent directories are implied, a later member replaces an
 * earlier one of the same name. KVRO_E_CORRUPT if a file would have to be a
 * directory or the reverse. The root's own member ("./") only sets its
 * metadata. */
kvro_status kvro__tar_index_add(tar_index *ix, const tar_member *m, int64_t hdr, kvro_error *err);

/* Resolves normalised KEY to a node that is a directory, a file or sparse
 * (symlinks and hard links followed, up to KVRO_MAX_LINKS). */
kvro_status kvro__tar_index_resolve(const tar_index *ix, const char *key, uint32_t *node,
                              kvro_error *err);

/* The full path of NODE into BUF[SIZE] (cut if too long), for messages. */
void kvro__tar_index_path(const tar_index *ix, uint32_t node, char *buf, size_t size);

/* After tar_cache.c filled nodes and arena from a file: checks every field
 * of every node (they are untrusted) and rebuilds the hash table and the
 * child lists. KVRO_E_CORRUPT if anything is off. */
kvro_status kvro__tar_index_relink(tar_index *ix, int64_t data_end, kvro_error *err);

static inline const char *tar_node_name(const tar_index *ix, uint32_t node)
{
    return ix->arena + ix->nodes[node].name;
}

#endif
