/*
 * backend.h — the one seam between libkvro's core and its backends.
 *
 * A backend is a folder (or a file) that fills one const kvro_backend table
 * and adds it to the registry (kvro/registry.c). Nothing else knows its
 * insides. The core does everything that is the same for every backend:
 * key validation and normalisation, argument checks, mem/size from stat,
 * sorting listings, filling the source and key into errors. So a backend
 * only ever sees normalised keys ("" is the root, no leading, trailing or
 * doubled '/', no "." or "..").
 *
 * Two kinds of backend, like MirageOS' KV_RO and FS:
 *   - KV_RO backends (tar, crunch) set .open and the read-side operations.
 *   - FS backends (the host directory, FAT) set .fs_open, the read-side
 *     operations and the write-side ones; kvro_open() reaches them through
 *     the FS->KV_RO adaptor (kvro_of_fs).
 *
 * Thread safety: after open, the read-side operations may be called
 * concurrently on one handle (kvfuse does); write-side operations are
 * serialised by the caller.
 */
#ifndef KVRO_BACKEND_H
#define KVRO_BACKEND_H

#include "kvro/kvro.h"

#include <sys/stat.h>

/* What a backend bids on: a host directory (DIR_FD/DIR_PATH) or an image
 * (IO), never both. The probe opened it; a backend that keeps the image
 * takes its own reference (kvro_io_ref), a directory backend dup()s. */
typedef struct kvro_probe {
    const char *name;          /* the source's name: the path, or the I/O object's name */
    const char *dir_path;      /* a host directory: its path */
    int dir_fd;                /* ... and a descriptor of it; else -1 */
    kvro_io *io;               /* an image, else NULL */
    int64_t size;              /* the image's size */
    const unsigned char *head; /* the image's first bytes, else NULL */
    size_t head_len;
} kvro_probe;

/* How many bytes of a regular file the probe reads for bidding. */
#define KVRO_PROBE_HEAD 8192

/* Bids: 0 = not mine. Stronger evidence bids higher, e.g. a checked tar
 * header beats a mere "some file". */
enum {
    KVRO_BID_NONE = 0,
    KVRO_BID_WEAK = 10,    /* could be, no signature */
    KVRO_BID_MAGIC = 50,   /* a signature matched */
    KVRO_BID_CHECKED = 90, /* a signature and a checksum matched */
    KVRO_BID_CERTAIN = 100,
};

typedef struct kvro_backend {
    const char *name;        /* what kvro_options.backend names */
    const char *description; /* one line for --help */
    int (*bid)(const kvro_probe *p);

    /* Exactly one of these two. */
    kvro_status (*open)(const kvro_probe *p, const kvro_options *o, void **self, kvro_error *err);
    kvro_status (*fs_open)(const kvro_probe *p, const kvro_options *o, bool writable, void **self,
                           kvro_error *err);
    kvro_status (*close)(void *self, kvro_error *err);

    /* Read side. KVRO_E_IS_DIR from read of a directory, KVRO_E_NOT_DIR from
     * list of a file or when a key's parent is a file. read gets 0 <= off and
     * 0 <= len and must not return more than len bytes. list may call FN in
     * any order: the core sorts. */
    kvro_status (*stat)(void *self, const char *key, kvro_info *st, kvro_error *err);
    kvro_status (*read)(void *self, const char *key, int64_t off, int64_t len, void *buf,
                        int64_t *nread, kvro_error *err);
    kvro_status (*list)(void *self, const char *dir, kvro_list_fn fn, void *arg,
                        kvro_error *err);

    /* Symbolic links (optional: a backend whose sources have none leaves
     * both NULL). stat follows links, never out of the root, and fails
     * with KVRO_E_LINK where a link leads outside or loops. A backend with
     * links reports them from list as they are stored, KVRO_KIND_LINK, and
     * the core resolves them for callers that follow. lstat is stat without
     * following KEY's last component; readlink gives a link's target text
     * (not resolved) in BUF, as kvro_readlink does. */
    kvro_status (*lstat)(void *self, const char *key, kvro_info *st, kvro_error *err);
    kvro_status (*readlink)(void *self, const char *key, char *buf, size_t size, size_t *len,
                            kvro_error *err);

    /* Optional. Where value KEY lies uncompressed and contiguous: LEN bytes
     * of *IO (not a new reference; valid until close) at *OFF. The core
     * turns that into a pointer (kvro_map) or a descriptor range
     * (kvro_file_extent). KVRO_E_IS_DIR for a directory (the core does
     * not stat first: one lookup), KVRO_E_UNSUPPORTED when the value is
     * compressed, fragmented or generated. */
    kvro_status (*locate)(void *self, const char *key, kvro_io **io, int64_t *off, int64_t *len,
                          kvro_error *err);
    /* Optional: the data regions of value KEY (see kvro_regions), for a
     * backend whose values may have holes; without it a value is one
     * region, placed by locate where it can be. */
    kvro_status (*regions)(void *self, const char *key, kvro_region_fn fn, void *arg,
                           kvro_error *err);
    /* Optional: every entry in storage order (see kvro_each: full keys,
     * links not followed, each directory before its contents). Without
     * it the core walks the tree sorted, depth first. */
    kvro_status (*each)(void *self, kvro_list_info_fn fn, void *arg, kvro_error *err);
    /* Optional: DIR's entries (in any order: the core sorts), each with
     * what lstat would say of it, or the status of that entry's failed
     * stat (INFO NULL), in one pass: for a backend that gets both cheaper
     * together (a host directory: one fstatat per entry). Without it the
     * core lists, then lstats each key. */
    kvro_status (*list_info)(void *self, const char *dir, kvro_list_info_fn fn, void *arg,
                             kvro_error *err);
    /* Optional: fills what the backend knows (the core zeroed ST). */
    void (*stats)(void *self, kvro_stats *st);

    /* Write side (FS backends; the core checks read-only and arguments). */
    kvro_status (*create)(void *self, const char *key, kvro_error *err);
    kvro_status (*mkdir)(void *self, const char *key, kvro_error *err);
    kvro_status (*write)(void *self, const char *key, int64_t off, const void *buf, int64_t len,
                         kvro_error *err);
    kvro_status (*destroy)(void *self, const char *key, kvro_error *err);
    /* Optional: FROM becomes TO, as kvro_fs_rename says. Without it,
     * kvro_fs_rename is KVRO_E_UNSUPPORTED. */
    kvro_status (*rename)(void *self, const char *from, const char *to, kvro_error *err);
} kvro_backend;

/* The registry, NULL-terminated (registry.c). */
extern const kvro_backend *const kvro__backends[];

/* The next component of the '/'-separated PATH at *P, for every walk over
 * keys and link targets: skips slashes, points *C at the component and
 * returns its length (0 at the end), leaving *P just after it. *LAST (if
 * given) says whether only slashes follow. */
static inline size_t kvro__component(const char **p, const char **c, bool *last)
{
    const char *s = *p;
    while (*s == '/')
        s++;
    *c = s;
    while (*s && *s != '/')
        s++;
    *p = s;
    size_t n = (size_t)(s - *c);
    if (last) {
        while (*s == '/')
            s++;
        *last = !*s;
    }
    return n;
}

/* The one read loop over a host descriptor: N bytes of FD at OFF, retrying
 * short reads and EINTR, stopping early only at the end of the file: *GOT
 * < N means the end. Returns 0 or the errno of a failed read. */
int kvro__pread(int fd, void *buf, size_t n, int64_t off, size_t *got);
/* The one write loop: all N bytes at OFF (at the file position if OFF <
 * 0), retrying short writes and EINTR. Returns 0 or an errno. */
int kvro__pwrite(int fd, const void *buf, size_t n, int64_t off);

/* What a file-backed I/O object is, for caches keyed on it (the .tar.gz
 * index): the file's path (NULL if it was given as a descriptor), its
 * size and mtime, and the window of it the object covers. */
typedef struct kvro__io_id {
    const char *path;
    int fd; /* the file's descriptor (its real path is /proc/self/fd/FD's) */
    int64_t file_size, mtime;
    int32_t mtime_nsec;
    int64_t offset, length;
} kvro__io_id;
/* false for memory and callback objects. */
bool kvro__io_identity(const kvro_io *io, kvro__io_id *id);

/* Clears an error record (NULL is fine). */
void kvro__error_clear(kvro_error *err);

/* Listing helper: collects entries, sorts them by name and replays them,
 * resolving links (KVRO_KIND_LINK from the backend) to their targets' kind
 * and leaving out those that lead nowhere inside the root. */
kvro_status kvro__list_sorted(const kvro_backend *b, void *self, const char *dir,
                              kvro_list_fn fn, void *arg, kvro_error *err);
/* The same with each entry's stat (kvro_list_info), FLAGS as there. */
kvro_status kvro__list_info(const kvro_backend *b, void *self, const char *dir, int flags,
                            kvro_list_info_fn fn, void *arg, kvro_error *err);

#endif
