/*
 * tar_gz.h — random access into a gzip-compressed tar (zran-style access
 * points, see tar_gz_build.c; reading through them, tar_gz_read.c), the index
 * cache file (tar_cache.c), and what a tar handle can tell a test about how
 * it was opened.
 */
#ifndef KVRO_TAR_GZ_H
#define KVRO_TAR_GZ_H

#include "tar_scan.h"

#include <pthread.h>
#include <stdatomic.h>
#include <zlib.h>

#define TAR_GZ_WINDOW 32768

/* The read cache (tar_gz_read.c): aligned TAR_GZ_CHUNK-byte stretches of the
 * uncompressed stream, and inflate cursors parked at chunk boundaries, all
 * in one per-handle memory budget. 64 KiB: small files share a chunk, a
 * sequential stream costs one chunk plus one cursor (~104 KiB: 64 KiB of
 * compressed input, 32 KiB of window, ~7 KiB of zlib state), and a chunk
 * is large enough that its lock round trip is lost in its inflate. */
#define TAR_GZ_CHUNK (64 << 10)
/* The default budget. 64 MiB holds ~400 sequential streams at once (one
 * chunk and one cursor each), or 64 MiB of recently inflated data: the
 * stretch between two access points (1-4 MiB) many times over, so files
 * read in name order, whose members lie near each other in the archive but
 * not in order, inflate each stretch once. It is taken only as reads need
 * it, and is small next to the archive a server would keep open. */
#define TAR_GZ_READ_CACHE_DEFAULT ((int64_t)64 << 20)

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

typedef struct tar_gz_item tar_gz_item;

/* What the read cache holds. Everything in it is guarded by LOCK. */
typedef struct tar_gz_rcache {
    pthread_mutex_t lock;
    pthread_cond_t loaded; /* a chunk being inflated became ready (or failed) */
    int64_t budget;        /* bytes */
    int64_t used;          /* bytes of every live chunk and cursor, cached or in use */
    int64_t peak;          /* the most USED has been */
    tar_gz_item **items;   /* cached chunks and cursors, dense: eviction samples it */
    size_t n, cap;
    tar_gz_item **buckets; /* the same by (kind, chunk number); made at the first read */
    size_t nbuckets;
    uint64_t tick, rng;
} tar_gz_rcache;

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
    int64_t inflated; /* bytes inflated at open (0 when the index came from the cache) */
    /* Nothing above changes after open; the read cache has its own lock. */
    tar_gz_rcache rc;
    atomic_llong read_inflated; /* bytes inflated by reads */
} tar_gz;

/* READ_CACHE: the read cache's budget in bytes (kvro_options'
 * read_cache_bytes); <= 0 means $KVRO_READ_CACHE if set (bytes, or with a
 * K, M or G suffix), else TAR_GZ_READ_CACHE_DEFAULT. (tar_gz_read.c) */
kvro_status kvro__tar_gz_init(tar_gz *gz, kvro_io *io, int64_t csize, int64_t read_cache,
                              kvro_error *err);
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

/* Appends to Z's input (buffer IN of CAP bytes, unconsumed bytes kept)
 * what follows in IO at *READ_OFF, advancing it. *GOT = bytes read, 0 at
 * the end of the archive. */
kvro_status kvro__tar_gz_refill(kvro_io *io, z_stream *z, unsigned char *in, size_t cap,
                                int64_t *read_off, size_t *got, kvro_error *err);

/* Reads up to LEN bytes at uncompressed offset OFF (tar_gz_read.c).
 * Thread-safe. */
kvro_status kvro__tar_gz_read(tar_gz *gz, int64_t off, void *buf, int64_t len, int64_t *got,
                        kvro_error *err);

/* What the read cache holds now and has held (a test hook, and for
 * statistics). A read in progress needs one cursor and one chunk whatever
 * the budget: PEAK passes BUDGET only when the budget is below that for
 * the reads running at once (one ~170 KiB each). */
typedef struct tar_gz_usage {
    int64_t budget, used, peak;
    int64_t chunks, cursors; /* cached now */
    int64_t inflated;        /* bytes inflated by reads so far */
} tar_gz_usage;
void kvro__tar_gz_usage(tar_gz *gz, tar_gz_usage *u);

/* Whether the head of a file (HEAD[N], starting with the gzip magic)
 * inflates to a valid tar header. */
bool kvro__tar_gz_probe(const unsigned char *head, size_t n);

/* Adds an access point to GZ when loading it from the cache (validated by
 * the caller; its window is read from GZ->index_fd when needed). */
kvro_status kvro__tar_gz_add_point(tar_gz *gz, const tar_gz_point *p, kvro_error *err);

/* ------------------------------------------------------------ the cache */

/* Index files in the cache directory are "<16 hex digits>" this. */
#define TAR_CACHE_SUFFIX ".tgzidx"

/* The entry in the cache directory DIR for the archive ID: a hash of its
 * absolute path, size, mtime and window. NULL if there is no path to key
 * on (or out of memory). free() it. */
char *kvro__tar_cache_path(const char *dir, const kvro__io_id *id);

/* The cache directory: $XDG_CACHE_HOME/kvro, else ~/.cache/kvro; NULL if
 * there is neither (or out of memory). free() it. (tar_cache_dir.c) */
char *kvro__tar_cache_dir(void);

/* Whether an index may be written at PATH, an explicit index_path, for the
 * archive read through IO: only where nothing is (in a directory that
 * exists) or over a kvro index; never over the archive itself under any
 * name, nor over anything else. The error names PATH and says why. */
kvro_status kvro__tar_cache_check_target(const char *path, kvro_io *io, kvro_error *err);

/* Adler-32 of all SIZE bytes of IO: what identifies an archive that has no
 * mtime (memory, callbacks). Not CRC-32: a gzip member's CRC-32 over its
 * data and trailer is the same constant whatever the data. */
kvro_status kvro__tar_cache_checksum(kvro_io *io, int64_t size, int64_t *sum, kvro_error *err);

/* Loads the index from CACHE if its metadata is intact and matches the
 * archive (IO, identity ID); fills IX (uninitialised), GZ (initialised, no
 * points) and W, reading none of the windows: GZ keeps the file open and
 * reads them when needed. TOUCH: mark the file used now (its mtime), for
 * the cache's LRU. false with a reason in NOTE (and IX/GZ empty again)
 * otherwise. */
bool kvro__tar_cache_load(const char *cache, bool touch, kvro_io *io, const kvro__io_id *id,
                          tar_index *ix, tar_gz *gz, tar_warnings *w, char *note,
                          size_t note_size);

/* Saves the index to CACHE (temp file + rename). CAP > 0: CACHE is an
 * entry of the cache directory, which is made if missing (one larger than
 * CAP is not saved; trimming the rest is the caller's, with
 * kvro__tar_cache_evict). CAP 0: an explicit index_path, checked again
 * before the rename. false if it could not: a cache that can not be
 * written only costs speed. */
bool kvro__tar_cache_save(const char *cache, int64_t cap, kvro_io *io, const kvro__io_id *id,
                          const tar_index *ix, const tar_gz *gz, const tar_warnings *w,
                          char *note, size_t note_size);

/* Whether the file FD starts with the index magic. */
bool kvro__tar_cache_magic(int fd);

/* What the cache directory needs to know of an index file, read from its
 * header and the end of its metadata only (neither is checked against the
 * CRC: a listing does not read the whole metadata). */
typedef struct tar_cache_info {
    bool current;     /* this format, intact enough to name its archive */
    char *archive;    /* malloc'd absolute path ("" for no path); NULL unless current */
    int64_t size;     /* the archive's, and its mtime, when indexed */
    int64_t mtime;
    int32_t mtime_nsec;
} tar_cache_info;
/* false if FD is not an index file (no magic); else fills INFO. */
bool kvro__tar_cache_info(int fd, tar_cache_info *info);

/* Removes the least recently used entries of the cache directory that
 * holds KEEP, other than KEEP, until the entries take at most CAP bytes.
 * (tar_cache_dir.c) */
void kvro__tar_cache_evict(const char *keep, int64_t cap);

#endif
