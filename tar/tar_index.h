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
    TAR_K_SPARSE,   /* a GNU sparse file: size is the logical size, link its tar_sparse */
    TAR_K_LAST = TAR_K_SPARSE,
} tar_kind;

enum {
    TAR_F_EXPLICIT = 1, /* a directory that had its own member (else implied by a path) */
};

/* 56 bytes a node. Offsets and sizes of the member's data are in the
 * (uncompressed) archive. A sparse member's off is where its stored data
 * starts (after a 1.0 map), its size the logical size, and its link the
 * index of its tar_sparse record. */
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

/* One data region of a sparse member: LEN bytes of the logical file at
 * OFF are stored at DATA bytes into the member's stored data. Regions are
 * in order, never overlap and are never empty; the rest reads as zeros. */
typedef struct tar_region {
    int64_t off, len, data;
} tar_region;

/* A sparse member's map: COUNT regions from ix->regions[FIRST], STORED
 * bytes of data in the archive. */
typedef struct tar_sparse {
    uint64_t first, count;
    int64_t stored;
} tar_sparse;

typedef struct tar_index {
    tar_node *nodes;
    uint32_t n, cap;
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *buckets;
    uint32_t nbuckets; /* a power of two, >= n */
    /* Per node (cap of them): its hash on (parent, name), so that growing
     * the table never hashes a name again and a chain is walked comparing
     * numbers, touching a name only on a real match. */
    uint32_t *hash;
    /* While members are added: the directory the last one went into and
     * that directory's path. Archivers write a directory's members
     * together, so most members find their parent here without a walk. */
    uint32_t last_dir;
    char *last_path;
    size_t last_len, last_cap;
    tar_sparse *sparse; /* sparse members' maps; memory is proportional to regions */
    uint32_t nsparse, sparse_cap;
    tar_region *regions;
    uint64_t nregions, regions_cap;
    /* For kvro_info.nlink: the node each hard link's data belongs to, one
     * entry per hard link, sorted (kvro__tar_index_links; not saved in the
     * cache, rebuilt at every open). NULL when there are none. */
    uint32_t *hl_owner;
    uint32_t nhl;
} tar_index;

/* One archive member as the scanner decoded it. */
typedef struct tar_member {
    const char *path; /* normalised: no leading '/' or "./", no "//" */
    const char *link; /* link target (a hard link's is normalised) or NULL */
    tar_kind kind;
    int64_t off, size, mtime;
    int32_t nsec;
    uint32_t mode;
    /* TAR_K_SPARSE: SIZE is the logical size, OFF and STORED the data in
     * the archive, REGIONS[NREGIONS] its map (checked: kvro__tar_sparse_check). */
    const tar_region *regions;
    size_t nregions;
    int64_t stored;
} tar_member;

/* An empty index holding only the root directory. */
kvro_status kvro__tar_index_init(tar_index *ix, kvro_error *err);

/* Makes room for the nodes of up to MEMBERS members before a scan (an
 * archive of SIZE bytes holds at most SIZE / 512), so that a big node
 * table is placed once, on huge pages, and never copied. Only address
 * space is taken: pages are backed as nodes fill them. A hint: without the
 * room, or for a small table, the table doubles as it fills. */
void kvro__tar_index_reserve(tar_index *ix, uint64_t members);
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

/* Checks the map R[N] of the sparse member NAME (for messages) against its
 * logical SIZE and STORED bytes of data, and fills each region's data
 * offset: regions in order, not overlapping, within SIZE, their lengths
 * adding up to STORED. Empty regions are dropped (*N shrinks): GNU tar
 * ends every map with one at the logical end. KVRO_E_CORRUPT naming the
 * member otherwise. */
kvro_status kvro__tar_sparse_check(tar_region *r, size_t *n, int64_t size, int64_t stored,
                                   const char *name, kvro_error *err);

/* The index of the region of map SP that holds logical offset OFF, or of
 * the first region after it (SP->count if none): a binary search. */
uint64_t kvro__tar_sparse_find(const tar_index *ix, const tar_sparse *sp, int64_t off);

/* Resolves normalised KEY to a node that is a directory, a file or sparse
 * (symlinks and hard links followed, up to KVRO_MAX_LINKS). */
kvro_status kvro__tar_index_resolve(const tar_index *ix, const char *key, uint32_t *node,
                              kvro_error *err);

/* Resolves normalised KEY without following a symbolic link in its last
 * component (kvro_lstat): *NODE may be a symlink. A hard link is the entry
 * it names, as two names of one file are. */
kvro_status kvro__tar_index_lookup(const tar_index *ix, const char *key, uint32_t *node,
                                   kvro_error *err);

/* The node that holds hard link NODE's data (NODE itself if it is not a
 * hard link): its target, through hard links to hard links. */
kvro_status kvro__tar_index_owner(const tar_index *ix, uint32_t node, uint32_t *owner,
                                  kvro_error *err);

/* Fills ix->hl_owner once the index is whole (scanned or loaded), so that
 * kvro__tar_index_nlink answers without a walk. A hard link that names no
 * member counts for nothing (it is never served). */
kvro_status kvro__tar_index_links(tar_index *ix, kvro_error *err);

/* How many names NODE's data has: 1 + the hard links to it. */
uint32_t kvro__tar_index_nlink(const tar_index *ix, uint32_t node);

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
