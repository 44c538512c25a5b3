/*
 * kvro.h — the public API of libkvro.
 *
 * Two interfaces, after the MirageOS models:
 *   - KV_RO (mirage-kv): read-only key/value access to a tree of files.
 *     kvro_mem, kvro_size, kvro_read, kvro_stat, kvro_list.
 *   - FS (mirage-fs): a read-write filesystem. kvro_fs_* functions.
 *     kvro_of_fs() turns any FS into a KV_RO.
 *
 * Every call returns a kvro_status. A caller-provided kvro_error (may be NULL)
 * receives the status together with the source, the key and the cause; one
 * printer, kvro_error_format(), renders any of them. There is no global error
 * state, and every read-side call may be made concurrently on one handle from
 * many threads.
 *
 * Keys are '/'-separated. A leading '/' is optional, "//" collapses to "/",
 * a trailing '/' is ignored, and "" or "/" is the root directory. A key with
 * a "." or ".." component, or longer than KVRO_KEY_MAX bytes, is rejected
 * with KVRO_E_BAD_KEY and never resolved. (Keys are C strings, so a NUL can
 * not be part of one.)
 */
#ifndef KVRO_KVRO_H
#define KVRO_KVRO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVRO_VERSION_MAJOR 0
#define KVRO_VERSION_MINOR 1
#define KVRO_VERSION_PATCH 0
#define KVRO_VERSION_STRING "0.1.0"

/* Longest key accepted, in bytes, before normalisation (Linux's PATH_MAX
 * less its NUL). */
#define KVRO_KEY_MAX 4095

/* Symbolic links followed in one lookup before it is called a loop (Linux's
 * MAXSYMLINKS); a tar hard link counts as one too. */
#define KVRO_MAX_LINKS 40

#if defined(__GNUC__)
#define KVRO_EXPORT __attribute__((visibility("default")))
#define KVRO_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define KVRO_EXPORT
#define KVRO_PRINTF(f, a)
#endif

/* ---------------------------------------------------------------- errors */

typedef enum kvro_status {
    KVRO_OK = 0,
    KVRO_E_NOT_FOUND,   /* unknown key */
    KVRO_E_IS_DIR,      /* a value was expected, the key is a directory */
    KVRO_E_NOT_DIR,     /* a directory was expected (or a file in a key's path) */
    KVRO_E_INVALID,     /* invalid argument: negative offset, NULL pointer... */
    KVRO_E_BAD_KEY,     /* "." or "..", too long: rejected, never resolved */
    KVRO_E_CORRUPT,     /* the image is malformed */
    KVRO_E_IO,          /* the host reported an I/O error */
    KVRO_E_NOMEM,       /* out of memory */
    KVRO_E_UNSUPPORTED, /* a feature of the source kvro does not handle */
    KVRO_E_LINK,        /* a symbolic link loops or leads outside the root */
    KVRO_E_EXISTS,      /* FS: the key already exists */
    KVRO_E_NO_SPACE,    /* FS: the image is full */
    KVRO_E_NOT_EMPTY,   /* FS: the directory is not empty */
    KVRO_E_READ_ONLY,   /* FS: opened read-only */
    KVRO_STATUS_COUNT
} kvro_status;

#define KVRO_ERROR_SOURCE_MAX 256
#define KVRO_ERROR_KEY_MAX 512
#define KVRO_ERROR_DETAIL_MAX 512

/* Filled by a failing call; untouched fields stay empty strings. */
typedef struct kvro_error {
    kvro_status status;
    char source[KVRO_ERROR_SOURCE_MAX]; /* the source's name (kvro_source) */
    char key[KVRO_ERROR_KEY_MAX];       /* the key as the caller gave it */
    char detail[KVRO_ERROR_DETAIL_MAX]; /* the cause, e.g. "fat: cluster chain loop at cluster 1234" */
} kvro_error;

/* A short fixed phrase for a status, e.g. "no such key". */
KVRO_EXPORT const char *kvro_status_str(kvro_status s);

/* Renders an error as "SOURCE: KEY: DETAIL" (parts that are empty are left
 * out; DETAIL falls back to kvro_status_str). Always NUL-terminates; returns
 * the length the full message would have, like snprintf. */
KVRO_EXPORT size_t kvro_error_format(const kvro_error *err, char *buf, size_t size);

/* Writes "PREFIX: <kvro_error_format>\n" to f (no prefix if NULL). */
KVRO_EXPORT void kvro_error_print(FILE *f, const char *prefix, const kvro_error *err);

/* Starts an error record: status S, detail from FMT, source and key empty
 * (for backends and front ends; add those with kvro_error_context). */
KVRO_EXPORT kvro_status kvro_error_set(kvro_error *err, kvro_status s, const char *fmt, ...)
    KVRO_PRINTF(3, 4);

/* Adds SOURCE and KEY to a failing record where those fields are still
 * empty (an empty KEY is shown as "/"); returns S. A record whose status is
 * not S takes S and loses its detail, so the record always agrees with the
 * status returned. Front ends use it to name what they were doing. */
KVRO_EXPORT kvro_status kvro_error_context(kvro_error *err, kvro_status s, const char *source,
                                           const char *key);

/* errno <-> status: what a host call's failure means for a key (ENOENT is
 * KVRO_E_NOT_FOUND, ...; anything unknown is KVRO_E_IO), and the errno a
 * POSIX front end (a FUSE mount) returns for a status (KVRO_E_CORRUPT and
 * KVRO_E_IO are EIO, KVRO_E_UNSUPPORTED is EOPNOTSUPP, ...). */
KVRO_EXPORT kvro_status kvro_status_from_errno(int e);
KVRO_EXPORT int kvro_status_to_errno(kvro_status s);

/* ------------------------------------------------------------------ keys */

/* Normalises KEY into OUT (at least KVRO_KEY_MAX + 1 bytes): no leading,
 * trailing or doubled '/', no "." component, "" for the root. ".." is
 * KVRO_E_BAD_KEY. (Every call below also accepts a trailing '/', which
 * then requires a directory, as POSIX path resolution does: "index.html/"
 * is KVRO_E_NOT_DIR.) */
KVRO_EXPORT kvro_status kvro_key_normalise(const char *key, char *out, kvro_error *err);

/* ------------------------------------------------------------ stat, list */

typedef enum kvro_kind {
    KVRO_KIND_FILE = 1,
    KVRO_KIND_DIR = 2,
    /* A symbolic link. Only the no-follow calls (kvro_lstat,
     * kvro_list_info with KVRO_NOFOLLOW) report it; everything else follows
     * links, never out of the root. */
    KVRO_KIND_LINK = 3,
} kvro_kind;

typedef struct kvro_info {
    kvro_kind kind;
    int64_t size;        /* bytes for a file, of the target text for a link; 0 for a directory */
    int64_t mtime;       /* seconds since the epoch; 0 if the source has none */
    int32_t mtime_nsec;  /* 0 if the source has no fraction */
    uint32_t mode;       /* permission bits (07777) if has_mode */
    bool has_mode;
    bool read_only;      /* FS only: the entry can not be written */
    /* Which stored entry this is, for as long as the handle is open: keys
     * with the same id are hard links of one file (and NLINK says how many
     * keys name it). 0 / 0 where the source cannot tell. */
    uint64_t id;
    uint32_t nlink;
} kvro_info;

/* Called once per entry of a directory, in byte order of NAME. Return
 * non-zero to stop the listing (kvro_list then returns KVRO_OK). Links are
 * followed: KIND is the target's, and a link that leads nowhere inside the
 * root (dangling, a loop, absolute or escaping) is left out. */
typedef int (*kvro_list_fn)(void *arg, const char *name, kvro_kind kind);

/* kvro_list_info's callback: NAME with STATUS KVRO_OK and its INFO, or
 * the status of a failed stat of that one entry (INFO NULL) — a listing
 * goes on past an entry it cannot describe. Non-zero stops the listing. */
typedef int (*kvro_list_info_fn)(void *arg, const char *name, kvro_status status,
                                 const kvro_info *info);

/* Flags for kvro_list_info. */
enum {
    KVRO_NOFOLLOW = 1, /* describe links as links (KVRO_KIND_LINK), listing every one */
};

/* ------------------------------------------------------------ I/O objects */

/* An I/O object is where an image's bytes come from: a file, a memory
 * buffer, a window of another I/O object, or the caller's own callbacks.
 * Every image backend reads through one. Reads are positional (pread
 * semantics): any number of threads may read one object at once, and no
 * call moves a shared file position.
 *
 * I/O objects are reference-counted. Each constructor returns one
 * reference; kvro_io_close drops one. A handle opened on an I/O object
 * (kvro_open_io) and a window (kvro_io_window) take their own reference,
 * so the caller may close its reference right after. */
typedef struct kvro_io kvro_io;

enum {
    KVRO_IO_RDONLY = 0,
    KVRO_IO_RDWR = 1,   /* writes allowed (a filesystem opened read-write) */
    KVRO_IO_OWN_FD = 2, /* kvro_io_from_fd: close the descriptor with the object */
};

/* The caller's own device. READ and SIZE are required; WRITE and FLUSH
 * only for an object opened KVRO_IO_RDWR; CLOSE (optional) is called once
 * when the last reference goes. READ and WRITE may move fewer bytes than
 * asked (kvro calls again for the rest); READ moves 0 only at the end of
 * the device. Each returns 0 or an errno value. READ must be safe to call
 * from several threads at once, like pread. */
typedef struct kvro_io_callbacks {
    int (*read)(void *ctx, int64_t off, void *buf, size_t n, size_t *got);
    int (*size)(void *ctx, int64_t *size);
    int (*write)(void *ctx, int64_t off, const void *buf, size_t n, size_t *done);
    int (*flush)(void *ctx);
    void (*close)(void *ctx);
} kvro_io_callbacks;

/* A file (or block device) opened by path. FLAGS: KVRO_IO_RDONLY or
 * KVRO_IO_RDWR. Named PATH. */
KVRO_EXPORT kvro_status kvro_io_open_path(const char *path, int flags, kvro_io **io,
                                          kvro_error *err);
/* A regular file or block device already open as FD, borrowed unless FLAGS
 * has KVRO_IO_OWN_FD (then closed with the object, even when this call
 * fails). Add KVRO_IO_RDWR to allow writes. Named "fd:N". */
KVRO_EXPORT kvro_status kvro_io_from_fd(int fd, int flags, kvro_io **io, kvro_error *err);
/* A write-only sink over FD, which may be a pipe or a terminal as well as a
 * file (a builder writing to standard output): each write must start where
 * the last one ended (at 0 first); reads fail with KVRO_E_UNSUPPORTED, the
 * size is what was written, flush is fsync where the descriptor has one.
 * FLAGS: 0, or KVRO_IO_OWN_FD. Named "fd:N". */
KVRO_EXPORT kvro_status kvro_io_sink_fd(int fd, int flags, kvro_io **io, kvro_error *err);
/* LEN bytes at DATA, borrowed: never copied, never freed, and it must
 * outlive the object. Named "memory:0xADDR+LEN". */
KVRO_EXPORT kvro_status kvro_io_from_memory(const void *data, size_t len, kvro_io **io,
                                            kvro_error *err);
/* The same over a buffer that filesystems opened read-write may change
 * (a FAT image built in memory). */
KVRO_EXPORT kvro_status kvro_io_from_memory_rw(void *data, size_t len, kvro_io **io,
                                               kvro_error *err);
/* Bytes [OFFSET, OFFSET + LENGTH) of BASE: a partition in a disk image, an
 * archive appended to a program. LENGTH -1 means up to BASE's end. The
 * window may not reach past BASE's end when made; it is writable if BASE
 * is, and never writes outside itself. Named "BASE-NAME@OFFSET+LENGTH". */
KVRO_EXPORT kvro_status kvro_io_window(kvro_io *base, int64_t offset, int64_t length,
                                       kvro_io **io, kvro_error *err);
/* The caller's device: CB (copied) called with CTX. NAME (copied; NULL
 * gives "callbacks:0xCTX") is what messages show. FLAGS: KVRO_IO_RDONLY or
 * KVRO_IO_RDWR. If this call fails, CB->close is not called. */
KVRO_EXPORT kvro_status kvro_io_from_callbacks(const kvro_io_callbacks *cb, void *ctx,
                                               const char *name, int flags, kvro_io **io,
                                               kvro_error *err);

/* Another reference to IO (returned); drop it with kvro_io_close. */
KVRO_EXPORT kvro_io *kvro_io_ref(kvro_io *io);
/* Drops a reference; the last one frees the object (closing an owned
 * descriptor, calling the callbacks' CLOSE). NULL is ignored. */
KVRO_EXPORT void kvro_io_close(kvro_io *io);

/* Renames IO for messages (e.g. "standard input"); NAME is copied. Do it
 * before opening a handle on IO or sharing it: the name is not locked, and
 * a handle keeps the name it was opened with. */
KVRO_EXPORT kvro_status kvro_io_set_name(kvro_io *io, const char *name, kvro_error *err);
KVRO_EXPORT const char *kvro_io_name(const kvro_io *io);
KVRO_EXPORT bool kvro_io_writable(const kvro_io *io);

/* The current size in bytes. */
KVRO_EXPORT kvro_status kvro_io_size(kvro_io *io, int64_t *size, kvro_error *err);
/* Reads N bytes at OFF, retrying short reads: *GOT < N only at the end. */
KVRO_EXPORT kvro_status kvro_io_read(kvro_io *io, int64_t off, void *buf, size_t n, size_t *got,
                                     kvro_error *err);
/* Writes all N bytes at OFF or fails (KVRO_E_READ_ONLY on a read-only
 * object, KVRO_E_NO_SPACE past the end of a memory buffer or a window). */
KVRO_EXPORT kvro_status kvro_io_write(kvro_io *io, int64_t off, const void *buf, size_t n,
                                      kvro_error *err);
/* Makes what was written durable (fsync for a file). */
KVRO_EXPORT kvro_status kvro_io_flush(kvro_io *io, kvro_error *err);

/* Where IO's bytes lie, for zero-copy access: the memory a memory object
 * (or a window of one) reads from, with its length; NULL otherwise. */
KVRO_EXPORT const void *kvro_io_memory(const kvro_io *io, size_t *len);
/* The descriptor a file object (or a window of one) reads from and where
 * IO's byte 0 lies in it; -1 otherwise. The descriptor stays IO's. */
KVRO_EXPORT int kvro_io_fd(const kvro_io *io, int64_t *offset);

/* --------------------------------------------------------------- sources */

/* Options for opening a source; zero-initialise, set what you need. */
typedef struct kvro_options {
    const char *backend;   /* force a backend by name (see kvro_backend_name) */
    const char *index_path;/* tar.gz: where to keep the access-point index */
    bool no_index_cache;   /* tar.gz: do not save the index */
    void (*progress)(void *arg, const char *what, int64_t done, int64_t total);
    void *progress_arg;    /* long work at open time (indexing) reports here */
    /* Problems that do not stop the open, e.g. tar members skipped because
     * their names would leave the root: called during kvro_open with a
     * message naming the cause. */
    void (*warning)(void *arg, const char *message);
    void *warning_arg;
    /* tar.gz: the cap on the shared index cache ($XDG_CACHE_HOME/kvro) in
     * bytes, least recently used entries evicted first; 0 = $KVRO_CACHE_MAX
     * if set, else 1 GiB. */
    int64_t index_cache_max;
    /* tar.gz: memory a handle may keep for fast reads (inflate cursors,
     * recently inflated data) in bytes; 0 = $KVRO_READ_CACHE if set, else
     * the default (see README). */
    int64_t read_cache_bytes;
    /* Whole-disk images (an MBR or GPT partition table): which partition
     * to open, numbered from 1 as the table lists them; 0 opens the one FAT
     * partition when there is exactly one. */
    int partition;
} kvro_options;

/* Backends in the registry, in bidding order. */
KVRO_EXPORT size_t kvro_backend_count(void);
KVRO_EXPORT const char *kvro_backend_name(size_t i);
KVRO_EXPORT const char *kvro_backend_description(size_t i);

/* ----------------------------------------------------------------- KV_RO */

typedef struct kvro kvro;

/* Opens PATH: each registered backend bids on it (a directory, or the
 * first bytes of a file) and the highest bid opens it. The path is opened
 * once; an image is then read through that one descriptor. */
KVRO_EXPORT kvro_status kvro_open(const char *path, kvro **kv, kvro_error *err);
KVRO_EXPORT kvro_status kvro_open_opts(const char *path, const kvro_options *opts, kvro **kv,
                                       kvro_error *err);
/* Opens the image IO (the handle takes its own reference): the same
 * bidding, among the image backends (never "dir"). Without a path the
 * .tar.gz index is built in memory, or kept in opts->index_path if set. */
KVRO_EXPORT kvro_status kvro_open_io(kvro_io *io, const kvro_options *opts, kvro **kv,
                                     kvro_error *err);
KVRO_EXPORT void kvro_close(kvro *kv);

/* The backend that serves KV (e.g. "dir", "tar"), and its source's name:
 * the path, or the I/O object's name. */
KVRO_EXPORT const char *kvro_backend_of(const kvro *kv);
KVRO_EXPORT const char *kvro_source(const kvro *kv);

/* *present = whether KEY exists (a file or a directory). An unknown key is
 * not an error here. */
KVRO_EXPORT kvro_status kvro_mem(kvro *kv, const char *key, bool *present, kvro_error *err);

/* Size of a value in bytes; KVRO_E_IS_DIR for a directory. */
KVRO_EXPORT kvro_status kvro_size(kvro *kv, const char *key, int64_t *size, kvro_error *err);

/* Reads up to LENGTH bytes of KEY from OFFSET into BUF (room for LENGTH
 * bytes). *nread < LENGTH means the end of the value; at or past the end it
 * is 0 with KVRO_OK. Negative OFFSET or LENGTH: KVRO_E_INVALID. */
KVRO_EXPORT kvro_status kvro_read(kvro *kv, const char *key, int64_t offset, int64_t length,
                                  void *buf, int64_t *nread, kvro_error *err);

KVRO_EXPORT kvro_status kvro_stat(kvro *kv, const char *key, kvro_info *st, kvro_error *err);

/* Lists directory DIR, sorted by name. */
KVRO_EXPORT kvro_status kvro_list(kvro *kv, const char *dir, kvro_list_fn fn, void *arg,
                                  kvro_error *err);

/* Lists directory DIR, sorted by name, with each entry's stat in the same
 * pass (ls -l, a FUSE readdirplus). FLAGS: 0 follows links as kvro_list
 * does; KVRO_NOFOLLOW describes each link as a link and lists them all,
 * those that leave the root included. */
KVRO_EXPORT kvro_status kvro_list_info(kvro *kv, const char *dir, int flags,
                                       kvro_list_info_fn fn, void *arg, kvro_error *err);

/* Every entry of KV once (the root excluded), in the order the values'
 * bytes lie in the image, so that a caller reading each value as it comes
 * reads the image once, front to back: a .tar.gz is inflated once, a plain
 * tar read sequentially (mkkv verify, copying a whole archive, warming a
 * cache). A directory comes before anything in it. A source without a
 * storage order of its own (a host directory) gives its tree depth first,
 * each directory's entries sorted by name. FN gets each entry's full key,
 * as kvro_list_info with KVRO_NOFOLLOW gives it: links as links, never
 * followed; an entry whose stat failed has its status and INFO NULL. */
KVRO_EXPORT kvro_status kvro_each(kvro *kv, kvro_list_info_fn fn, void *arg, kvro_error *err);

/* ------------------------------------------------------- symbolic links */

/* Like kvro_stat, but when KEY itself is a symbolic link it describes the
 * link (KVRO_KIND_LINK, size = length of the target text, the link's own
 * mtime and mode). Links among KEY's parent directories are followed, as
 * always inside the root. Sources without links behave as kvro_stat. */
KVRO_EXPORT kvro_status kvro_lstat(kvro *kv, const char *key, kvro_info *st, kvro_error *err);

/* The target text of symbolic link KEY, as stored: never resolved, so an
 * absolute or escaping target is returned as it is, not followed. Copies
 * at most SIZE - 1 bytes and a NUL into BUF; *LEN (optional) is the
 * whole target's length, so *LEN >= SIZE means BUF was too small.
 * KVRO_E_INVALID if KEY is not a symbolic link. */
KVRO_EXPORT kvro_status kvro_readlink(kvro *kv, const char *key, char *buf, size_t size,
                                      size_t *len, kvro_error *err);

/* ------------------------------------------------------------- zero copy */

/* The bytes of value KEY without copying, when they lie uncompressed and
 * contiguous in memory (a plain tar opened from a memory buffer, compiled-in
 * data): *DATA and *SIZE stay valid until kvro_close. KVRO_E_UNSUPPORTED
 * where that is not so (a .tar.gz, a file on disk, a fragmented file):
 * use kvro_read then. */
KVRO_EXPORT kvro_status kvro_map(kvro *kv, const char *key, const void **data, int64_t *size,
                                 kvro_error *err);

/* Where value KEY lies in a file, when it is stored there uncompressed and
 * contiguous (a plain tar on disk): LENGTH bytes of descriptor FD at OFFSET,
 * ready for sendfile(2), splice(2) or copy_file_range(2). FD is the handle's:
 * do not close it, use positional calls only, and only until kvro_close.
 * KVRO_E_UNSUPPORTED otherwise (use kvro_read). */
typedef struct kvro_extent {
    int fd;
    int64_t offset;
    int64_t length;
} kvro_extent;
KVRO_EXPORT kvro_status kvro_file_extent(kvro *kv, const char *key, kvro_extent *ext,
                                         kvro_error *err);

/* The data regions of value KEY, in order of OFFSET, neither overlapping
 * nor empty: LENGTH bytes at OFFSET in the value are stored data; every
 * other byte of the value is a hole and reads as zero (a sparse tar
 * member). A value without holes is one region [0, size); an empty one has
 * none. IMAGE_OFFSET is where a region's bytes lie, uncompressed and
 * contiguous, in the image the handle was opened on (-1 if they do not:
 * compressed, or not an image). For SEEK_DATA/SEEK_HOLE in a mount and
 * for copying sparse files sparse. FN returns non-zero to stop. */
typedef struct kvro_region {
    int64_t offset;
    int64_t length;
    int64_t image_offset;
} kvro_region;
typedef int (*kvro_region_fn)(void *arg, const kvro_region *region);
KVRO_EXPORT kvro_status kvro_regions(kvro *kv, const char *key, kvro_region_fn fn, void *arg,
                                     kvro_error *err);

/* ------------------------------------------------------------ statistics */

/* What a handle knows about how it was opened and how its reads went: for
 * tools (mkkv stat -v) and for tests that must prove, say, that a second
 * open of a .tar.gz inflated nothing. Fields a backend has no use for stay
 * 0 / false / "". */
typedef struct kvro_stats {
    int64_t entries;          /* index entries (the root and implied directories included) */
    int64_t skipped;          /* members never served (unsafe names...) */
    char first_skipped[256];  /* why the first one was skipped */
    bool compressed;          /* the image is compressed (gzip) */
    bool index_loaded;        /* the access index came from a saved file: nothing inflated */
    bool index_saved;         /* ... or was built and saved */
    char index_note[160];     /* why the saved index was or was not used */
    int64_t inflated_at_open; /* uncompressed bytes produced while opening */
    int64_t access_points;    /* random-access points in the compressed stream */
    int64_t index_bytes;      /* the access index's size as stored */
    int64_t index_bytes_read; /* bytes of the saved index read at open */
    int64_t damaged_windows;  /* saved-index windows found damaged by reads (then dropped) */
    /* Disk images: the filesystem found (e.g. "FAT16, 4084 clusters of 2048
     * bytes, 512-byte sectors"), then one line per partition of a partition
     * table, the one opened marked '*' ("* MBR1: FAT32 LBA (0x0c) at byte
     * 1048576, 33554432 bytes, FAT"). */
    char layout[512];
} kvro_stats;
KVRO_EXPORT kvro_status kvro_get_stats(kvro *kv, kvro_stats *st, kvro_error *err);

/* ----------------------------------------------------------- index cache */

/* A .tar.gz opened by path keeps its access index in a shared cache: one
 * file per archive (its path, size and mtime), "<16 hex digits>.tgzidx" in
 * the cache directory. Saving an entry trims the cache to its cap
 * (kvro_options.index_cache_max, see kvro_cache_cap), least recently used
 * entries first; an entry is used when it is written or loaded (its mtime
 * says when). Only files named so that start with the index's magic are
 * ever removed, by these calls or by a save. A process that opened an
 * entry before it was removed reads it on, whole.
 *
 * An explicit kvro_options.index_path is the caller's file, never part of
 * the cache, and is written only where nothing is (in a directory that
 * exists) or over a kvro index: an open that would write it over the
 * archive itself (under any name: the same device and inode), over any
 * other file or into a missing directory fails before inflating anything,
 * with KVRO_E_EXISTS or KVRO_E_NOT_FOUND and a detail naming the file and
 * why. With no_index_cache set nothing is written, so nothing is refused. */

/* The cache directory: $XDG_CACHE_HOME/kvro if that is an absolute path,
 * else $HOME/.cache/kvro. It may not exist yet. *DIR is malloc'd: free()
 * it. KVRO_E_NOT_FOUND if neither variable is usable. */
KVRO_EXPORT kvro_status kvro_cache_dir(char **dir, kvro_error *err);

/* The cap in bytes that kvro_options.index_cache_max MAX stands for: MAX
 * if > 0, else $KVRO_CACHE_MAX if it is a positive byte count (decimal,
 * with an optional K, M, G or T suffix, x1024), else 1 GiB. */
#define KVRO_CACHE_MAX_DEFAULT ((int64_t)1 << 30)
KVRO_EXPORT int64_t kvro_cache_cap(int64_t max);

typedef struct kvro_cache_entry {
    const char *file;      /* the entry's path */
    const char *archive;   /* the absolute path of the archive it indexes; "" if it does not
                              say (an entry of an older format, never loaded again) */
    int64_t bytes;         /* the entry's size */
    int64_t last_used;     /* when it was last written or loaded: seconds since the epoch */
    int32_t last_used_nsec;
    bool archive_exists;   /* ARCHIVE names a file now */
    bool usable;           /* ... with the size and mtime it was indexed with: an open of
                              ARCHIVE would load this entry. One that is not usable never
                              will be again. */
} kvro_cache_entry;

/* Called per entry, most recently used first; non-zero stops the listing.
 * ENTRY and its strings are valid during the call only. */
typedef int (*kvro_cache_fn)(void *arg, const kvro_cache_entry *entry);

/* Lists the cache's entries. A missing cache directory is an empty cache. */
KVRO_EXPORT kvro_status kvro_cache_list(kvro_cache_fn fn, void *arg, kvro_error *err);

/* What kvro_cache_trim or kvro_cache_clear did. */
typedef struct kvro_cache_result {
    int64_t removed, removed_bytes; /* entries (and temporaries left behind) removed */
    int64_t kept, kept_bytes;       /* entries left */
} kvro_cache_result;

/* kvro_cache_trim's flags. */
enum {
    KVRO_CACHE_STALE = 1, /* first remove the entries that are not usable */
};

/* Removes the least recently used entries until the others take at most
 * kvro_cache_cap(MAX) bytes; with KVRO_CACHE_STALE first every entry that
 * is not usable (its archive deleted or changed, an older format). Also
 * removes temporaries that writers left behind (an hour old). RES
 * (optional) says what went and what is left. */
KVRO_EXPORT kvro_status kvro_cache_trim(int64_t max, int flags, kvro_cache_result *res,
                                        kvro_error *err);

/* Removes every entry (a writer's temporary only once left behind). */
KVRO_EXPORT kvro_status kvro_cache_clear(kvro_cache_result *res, kvro_error *err);

/* -------------------------------------------------------------------- FS */

typedef struct kvro_fs kvro_fs;

enum {
    KVRO_FS_RDONLY = 0,
    KVRO_FS_RDWR = 1,
};

/* Opens PATH as a filesystem (a host directory today): only backends
 * that implement FS bid. FLAGS: KVRO_FS_RDONLY or KVRO_FS_RDWR. */
KVRO_EXPORT kvro_status kvro_fs_open(const char *path, int flags, const kvro_options *opts,
                                     kvro_fs **fs, kvro_error *err);
/* Opens the image IO as a filesystem (the handle takes its own reference);
 * KVRO_FS_RDWR needs a writable IO. */
KVRO_EXPORT kvro_status kvro_fs_open_io(kvro_io *io, int flags, const kvro_options *opts,
                                        kvro_fs **fs, kvro_error *err);
/* Closes FS, flushing what was written; a failed flush is reported. */
KVRO_EXPORT kvro_status kvro_fs_close(kvro_fs *fs, kvro_error *err);

KVRO_EXPORT kvro_status kvro_fs_stat(kvro_fs *fs, const char *key, kvro_info *st,
                                     kvro_error *err);
KVRO_EXPORT kvro_status kvro_fs_size(kvro_fs *fs, const char *key, int64_t *size,
                                     kvro_error *err);
KVRO_EXPORT kvro_status kvro_fs_read(kvro_fs *fs, const char *key, int64_t offset,
                                     int64_t length, void *buf, int64_t *nread, kvro_error *err);
KVRO_EXPORT kvro_status kvro_fs_listdir(kvro_fs *fs, const char *dir, kvro_list_fn fn,
                                        void *arg, kvro_error *err);
KVRO_EXPORT kvro_status kvro_fs_list_info(kvro_fs *fs, const char *dir, int flags,
                                          kvro_list_info_fn fn, void *arg, kvro_error *err);
KVRO_EXPORT kvro_status kvro_fs_lstat(kvro_fs *fs, const char *key, kvro_info *st,
                                      kvro_error *err);
KVRO_EXPORT kvro_status kvro_fs_readlink(kvro_fs *fs, const char *key, char *buf, size_t size,
                                         size_t *len, kvro_error *err);
/* Creates an empty file, and any missing parent directories.
 * KVRO_E_EXISTS if KEY exists. */
KVRO_EXPORT kvro_status kvro_fs_create(kvro_fs *fs, const char *key, kvro_error *err);
/* Creates a directory and its missing parents; an existing directory is ok. */
KVRO_EXPORT kvro_status kvro_fs_mkdir(kvro_fs *fs, const char *key, kvro_error *err);
/* Writes LENGTH bytes at OFFSET of an existing file, extending it (a gap
 * reads as zeros). */
KVRO_EXPORT kvro_status kvro_fs_write(kvro_fs *fs, const char *key, int64_t offset,
                                      const void *buf, int64_t length, kvro_error *err);
/* Removes a file or an empty directory. */
KVRO_EXPORT kvro_status kvro_fs_destroy(kvro_fs *fs, const char *key, kvro_error *err);
/* FROM becomes TO; TO's parent must exist. A file replaces a file TO (a
 * directory at TO is KVRO_E_IS_DIR); a directory moves to a name that is
 * free (else KVRO_E_EXISTS) and not inside itself (KVRO_E_INVALID). Write
 * a new version under a temporary name, then rename it over the old one:
 * a failure before the rename leaves the old one whole. */
KVRO_EXPORT kvro_status kvro_fs_rename(kvro_fs *fs, const char *from, const char *to,
                                       kvro_error *err);

/* Turns FS into a KV_RO handle: mem and size via stat, read, list. With
 * KVRO_OF_FS_OWN the handle owns FS and kvro_close closes it; otherwise FS
 * must outlive the handle. */
enum { KVRO_OF_FS_OWN = 1 };
KVRO_EXPORT kvro_status kvro_of_fs(kvro_fs *fs, int flags, kvro **kv, kvro_error *err);

#ifdef __cplusplus
}
#endif
#endif
