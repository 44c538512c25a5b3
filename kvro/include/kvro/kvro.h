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
    char source[KVRO_ERROR_SOURCE_MAX]; /* path of the image or directory */
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

/* Sets an error record (for backends and front ends that add detail). */
KVRO_EXPORT kvro_status kvro_error_set(kvro_error *err, kvro_status s, const char *fmt, ...)
    KVRO_PRINTF(3, 4);

/* ------------------------------------------------------------------ keys */

/* Normalises KEY into OUT (at least KVRO_KEY_MAX + 1 bytes): no leading,
 * trailing or doubled '/', "" for the root. */
KVRO_EXPORT kvro_status kvro_key_normalise(const char *key, char *out, kvro_error *err);

/* ------------------------------------------------------------ stat, list */

typedef enum kvro_kind {
    KVRO_KIND_FILE = 1,
    KVRO_KIND_DIR = 2,
} kvro_kind;

typedef struct kvro_info {
    kvro_kind kind;
    int64_t size;        /* bytes for a file; 0 for a directory */
    int64_t mtime;       /* seconds since the epoch; 0 if the source has none */
    int32_t mtime_nsec;  /* 0 if the source has no fraction */
    uint32_t mode;       /* permission bits (07777) if has_mode */
    bool has_mode;
    bool read_only;      /* FS only: the entry can not be written */
} kvro_info;

/* Called once per entry of a directory, in byte order of NAME. Return
 * non-zero to stop the listing (kvro_list then returns KVRO_OK). */
typedef int (*kvro_list_fn)(void *arg, const char *name, kvro_kind kind);

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
} kvro_options;

/* Backends in the registry, in bidding order. */
KVRO_EXPORT size_t kvro_backend_count(void);
KVRO_EXPORT const char *kvro_backend_name(size_t i);
KVRO_EXPORT const char *kvro_backend_description(size_t i);

/* ----------------------------------------------------------------- KV_RO */

typedef struct kvro kvro;

/* Opens PATH: each registered backend bids on it (directory, first bytes)
 * and the highest bid opens it. */
KVRO_EXPORT kvro_status kvro_open(const char *path, kvro **kv, kvro_error *err);
KVRO_EXPORT kvro_status kvro_open_opts(const char *path, const kvro_options *opts, kvro **kv,
                                       kvro_error *err);
KVRO_EXPORT void kvro_close(kvro *kv);

/* The backend that serves KV (e.g. "dir", "tar"), and its source path. */
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

/* -------------------------------------------------------------------- FS */

typedef struct kvro_fs kvro_fs;

enum {
    KVRO_FS_RDONLY = 0,
    KVRO_FS_RDWR = 1,
};

/* Opens PATH as a filesystem (a host directory, a FAT image): only backends
 * that implement FS bid. FLAGS: KVRO_FS_RDONLY or KVRO_FS_RDWR. */
KVRO_EXPORT kvro_status kvro_fs_open(const char *path, int flags, const kvro_options *opts,
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

/* Turns FS into a KV_RO handle: mem and size via stat, read, list. With
 * KVRO_OF_FS_OWN the handle owns FS and kvro_close closes it; otherwise FS
 * must outlive the handle. */
enum { KVRO_OF_FS_OWN = 1 };
KVRO_EXPORT kvro_status kvro_of_fs(kvro_fs *fs, int flags, kvro **kv, kvro_error *err);

#ifdef __cplusplus
}
#endif
#endif
