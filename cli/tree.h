/*
 * tree.h — a walk over a SOURCE tree in a fixed order, for mkkv's builders
 * (tar now; fat and crunch are meant to reuse it).
 *
 * A host directory is walked natively (openat/fdopendir, one descriptor per
 * level), so its symbolic links can be kept as links and its special files
 * reported; any other source goes through kvro_open and the KV_RO API.
 * Either way the builder sees one stream of entries in an order that
 * depends only on the source, never on readdir, with every directory
 * before anything in it. A host directory (and any source walked with
 * TREE_FOLLOW or TREE_SORTED) comes sorted: each directory's entries by name in byte
 * order (strcmp), each directory immediately followed by its contents (a
 * pre-order depth-first walk). Any other source comes in the order it
 * stores its values (kvro_each): a tar's or .tar.gz's own member order, so
 * that the archive is read, or inflated, once from front to back (bsdtar
 * keeps an archive's order the same way when it copies one); a source with
 * no order of its own (a FAT image, a crunched tree) gives the sorted walk.
 * The root itself is not an entry.
 *
 * Symbolic links, from every source that has them, are yielded as links
 * with their target as stored: nothing is followed, so a link that leads
 * outside the root is data like any other (and never a way out). With
 * TREE_FOLLOW they are followed instead, inside the root only (the
 * library's confined resolution): a link that leads outside, dangles or
 * loops is then an error naming it. Hard links are yielded as what they
 * are, with the identity that tells names of one file apart (id, nlink),
 * for a builder to store them as hard links. FIFOs, sockets and devices of
 * a host directory are skipped with a warning.
 *
 * Memory: one directory listing per level of depth, reused as the walk
 * goes; no allocation per file once the buffers have grown.
 */
#ifndef KVRO_CLI_TREE_H
#define KVRO_CLI_TREE_H

#include "cli.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum tree_kind {
    TREE_FILE = 1,
    TREE_DIR,
    TREE_SYMLINK,
} tree_kind;

/* One entry. Its strings stay valid until the next tree_next. */
typedef struct tree_entry {
    const char *path; /* '/'-separated, relative to the root, never "" */
    size_t path_len;
    const char *name; /* the last component of path */
    size_t depth;     /* 0 for the root's own entries */
    tree_kind kind;
    int64_t size;  /* a file's bytes; 0 otherwise */
    uint32_t mode; /* permission bits (07777) as the source has them */
    bool has_mode; /* false if the source keeps none (then mode is 0) */
    int64_t mtime; /* seconds since the epoch; 0 if the source has none */
    int32_t mtime_nsec;
    const char *link; /* TREE_SYMLINK: the target, as stored */
    /* Which stored file this is: entries with the same non-zero id are
     * names of one file (hard links), NLINK names in all, some of which
     * may lie outside the walk. {0, 0} where the source cannot tell. */
    uint64_t id[2];
    uint32_t nlink;
} tree_entry;

/* Called for each skipped entry (a FIFO...). W names the source, the key
 * and why; the default (NULL) prints "mkkv: SOURCE: KEY: reason". */
typedef void (*tree_warn_fn)(void *arg, const kvro_error *w);

typedef struct tree tree;

enum {
    TREE_FOLLOW = 1, /* follow symbolic links inside the root (mkkv tar -L) */
    TREE_SORTED = 2, /* the sorted walk from any source (mkkv tar --sort=name) */
};

/* Opens SOURCE: a host directory, walked natively, unless O->open.backend
 * forces a backend or FLAGS has TREE_FOLLOW (then kvro's "dir" backend
 * does the confined following); anything else (or with a backend forced,
 * even "dir"), standard input ("-") and a window of a file (O->window)
 * through open_source with O.
 * Returns EXIT_OK, or an exit code after reporting why. */
int tree_open(const char *source, const common_opts *o, int flags, tree_warn_fn warn,
              void *warn_arg, tree **out);

/* Whether SOURCE is walked as a host directory, and its real path (for a
 * source that is a file: the file's real path; NULL for standard input). */
bool tree_is_host_dir(const tree *t);
const char *tree_real_path(const tree *t);
/* The device and inode of the file SOURCE names (the directory, the image
 * file; a regular file redirected to standard input), so a builder can
 * refuse to replace it under another name; false if there is none (a
 * pipe). */
bool tree_source_id(const tree *t, dev_t *dev, ino_t *ino);

/* The next entry: 1 and *E filled, 0 at the end, -1 on an error (in *ERR,
 * not printed; the walk can not go on). */
int tree_next(tree *t, tree_entry *e, kvro_error *err);

/* Reads up to LEN bytes of the current entry (a TREE_FILE) from OFFSET
 * into BUF (one pread for a host file); *N is 0 at the end of the file.
 * Returns 0, or -1 with *ERR set. */
int tree_read(tree *t, int64_t offset, void *buf, size_t len, size_t *n, kvro_error *err);

void tree_close(tree *t);

#endif
