/*
 * tar_gz.h — random access into a gzip-compressed tar (zran-style access
 * points, see tar_gz.c), the index cache file (tar_cache.c), and what a
 * tar handle can tell a test about how it was opened.
 */
#ifndef KVRO_TAR_GZ_H
#define KVRO_TAR_GZ_H

#include "tar_scan.h"

#include <pthread.h>
#include <stdatomic.h>

#define TAR_GZ_WINDOW 32768
/* Decompressed-read cursors kept per handle, so sequential reads continue
 * where the last one stopped instead of restarting at an access point. */
#define TAR_GZ_CURSORS 4

/* Where inflation can restart: at a deflate block boundary, IN bytes into
 * the file (plus BITS bits of the byte before), producing uncompressed
 * offset OUT, given the WIN_LEN bytes of output before it as dictionary.
 * That window is kept raw-deflated (WIN_ZLEN bytes, CRC-32 WIN_CRC) at WIN
 * in the window arena: in memory for a built index, in the cache file for
 * a loaded one. */
typedef struct tar_gz_point {
    int64_t out;
    int64_t in;
    uint64_t win;
    uint32_t win_zlen;
    uint32_t win_len;
    uint32_t win_crc;
    uint8_t bits;
} tar_gz_point;

/* What a point takes in the cache file besides its window (tar_cache.c),
 * counted against the index budget when building. */
#define TAR_GZ_POINT_RECORD 37
/* A stored window is level-1 deflate of at most TAR_GZ_WINDOW bytes; this
 * bounds it with room to spare (and bounds what a read pulls from the
 * cache file). */
#define TAR_GZ_WINDOW_ZMAX (2 * TAR_GZ_WINDOW)

typedef struct tar_gz_cursor tar_gz_cursor;

typedef struct tar_gz {
    kvro_io *io;   /* the compressed archive (not owned) */
    int64_t csize; /* compressed file size */
    int64_t usize; /* uncompressed size */
    tar_gz_point *points;
    size_t npoints, cap;
    unsigned char *wins; /* the window arena of a built index; NULL when loaded */
    size_t wins_len, wins_cap;
    /* A loaded index reads its windows from the cache file when a read
     * needs them, so opening costs only the metadata. */
    int index_fd;       /* the cache file (owned), or -1 */
    int64_t wins_off;   /* where the window arena starts in it */
    char *index_path;   /* unlinked once if a window in it is found damaged */
    int64_t index_read; /* bytes of the cache file read at open */
    atomic_bool index_dropped;
    atomic_llong damaged_windows;
    int64_t inflated;     /* bytes inflated at open (0 when the index came from the cache) */
    pthread_mutex_t lock; /* guards the cursors below, nothing else changes after open */
    tar_gz_cursor *cursors[TAR_GZ_CURSORS];
    uint64_t tick;
} tar_gz;

kvro_status kvro__tar_gz_init(tar_gz *gz, kvro_io *io, int64_t csize, kvro_error *err);
void kvro__tar_gz_free(tar_gz *gz);

/* Default access-point spacing in uncompressed bytes. A point is added at
 * the first block boundary at least this far past the previous one, and
 * only while the index stays within TAR_GZ_BUDGET_PCT percent of the
 * compressed bytes read so far; so the spacing grows with the archive's
 * compressibility and the index stays under 2% of the compressed size.
 * The trade-off: a read inflates half a spacing on average before its
 * first byte. Incompressible data has ~32 KiB windows, so 2% buys a point
 * every ~1.6 MiB: about 1 ms a read (stored blocks inflate at memcpy
 * speed, text at a few hundred MB/s), small next to starting a process;
 * halving it would double the index. */
#define TAR_GZ_SPACING (1 << 20)
#define TAR_GZ_BUDGET_PCT 2

/* The inflating source for kvro__tar_scan: adds access points as it goes and
 * reports progress (compressed bytes) to O. SPACING > 0; BUDGET false
 * turns the 2% rule off. */
typedef struct tar_gz_build tar_gz_build;
kvro_status kvro__tar_gz_build_begin(tar_gz *gz, const kvro_options *o, int64_t spacing, bool budget,
                               tar_gz_build **out, kvro_error *err);
tar_src *kvro__tar_gz_build_src(tar_gz_build *b);
/* Inflates the rest of the gzip stream (so every member's CRC is checked)
 * and records the uncompressed size. */
kvro_status kvro__tar_gz_build_finish(tar_gz_build *b, kvro_error *err);
void kvro__tar_gz_build_free(tar_gz_build *b);

/* Reads up to LEN bytes at uncompressed offset OFF. Thread-safe. */
kvro_status kvro__tar_gz_read(tar_gz *gz, int64_t off, void *buf, int64_t len, int64_t *got,
                        kvro_error *err);

/* Whether the head of a file (HEAD[N], starting with the gzip magic)
 * inflates to a valid tar header. */
bool kvro__tar_gz_probe(const unsigned char *head, size_t n);

/* Adds an access point to GZ when loading it from the cache (validated by
 * the caller; its window is read from GZ->index_fd when needed). */
kvro_status kvro__tar_gz_add_point(tar_gz *gz, const tar_gz_point *p, kvro_error *err);

/* ------------------------------------------------------------ the cache */

/* The cache file for the archive ID: O->index_path, else
 * $XDG_CACHE_HOME/kvro/ (or ~/.cache/kvro/) + a hash of the absolute path,
 * size, mtime and window. NULL if there is no home to put it in, or no
 * path to key on. free() it. */
char *kvro__tar_cache_path(const kvro__io_id *id, const kvro_options *o);

/* Adler-32 of all SIZE bytes of IO: what identifies an archive that has no
 * mtime (memory, callbacks). Not CRC-32: a gzip member's CRC-32 over its
 * data and trailer is the same constant whatever the data. */
kvro_status kvro__tar_cache_checksum(kvro_io *io, int64_t size, int64_t *sum, kvro_error *err);

/* Loads the index from CACHE if its metadata is intact and matches the
 * archive (IO, identity ID); fills IX (uninitialised), GZ (initialised, no
 * points) and W, reading none of the windows: GZ keeps the file open and
 * reads them when needed. false with a reason in NOTE (and IX/GZ empty
 * again) otherwise. */
bool kvro__tar_cache_load(const char *cache, kvro_io *io, const kvro__io_id *id, tar_index *ix,
                    tar_gz *gz, tar_warnings *w, char *note, size_t note_size);

/* Saves the index to CACHE (temp file + rename), first making its
 * directories if MAKE_DIRS. false if it could not: a cache that can not be
 * written only costs speed. */
bool kvro__tar_cache_save(const char *cache, bool make_dirs, kvro_io *io, const kvro__io_id *id,
                    const tar_index *ix, const tar_gz *gz, const tar_warnings *w, char *note,
                    size_t note_size);

#endif
