/*
 * tar_cache.c — the saved index of a .tar.gz, so that a second open
 * inflates nothing. The file is untrusted input like the archive: it is
 * used only if its magic, version, exact length and metadata CRC-32 check
 * out, it describes this archive (size, mtime to the nanosecond, CRC-32 of
 * the archive's first and last 64 KiB), and every record passes the same
 * bounds an index built from the archive would. Otherwise it is rebuilt.
 *
 * Open reads only the metadata (header, points, nodes, names): the windows
 * are most of the file (32 KiB of history per point, ~2% of the archive)
 * and a process that reads 64 KiB needs one of them. The file stays open
 * in the tar_gz and tar_gz_read.c preads a window when a read starts at its
 * point, checking the window's own CRC-32; a damaged one costs that read
 * some speed (it starts from an earlier point) and gets the file unlinked.
 *
 * Location: kvro_options.index_path, else the cache directory
 * (tar_cache_dir.c: $XDG_CACHE_HOME/kvro/, else ~/.cache/kvro/), file
 * "<hash>.tgzidx" where hash is FNV-1a 64 of the archive's absolute path,
 * size and mtime, and the window of the file it lies in (an archive inside
 * a bigger image). A source with no path (memory, callbacks, a descriptor)
 * is cached only in an explicit index_path; its mtime is 0, and the size
 * and edge CRCs identify it. Written to a temporary file and renamed, so
 * readers never see half a file; failure to write only costs the next open
 * its speed. The default directory is made if missing, kept under its cap
 * (least recently used entries go first: a load touches its entry's mtime)
 * and an entry larger than the whole cap is not saved.
 *
 * An explicit index_path is the user's file name, so it is never written
 * over anything but a kvro index (or an empty file): not over the archive
 * itself under any name (same device and inode), not over any other file,
 * and not into a missing directory (kvro__tar_cache_check_target).
 *
 * Layout, little-endian throughout:
 *   header (HEADER_SIZE bytes):
 *     "KVROTGZI" u32 version  u64 archive size  i64 mtime s  u32 mtime ns
 *     u32 crc of first 64 KiB  u32 crc of last 64 KiB  u64 uncompressed size
 *     u32 points  u32 nodes  u64 name arena bytes  u64 window bytes
 *     u64 skipped members  char[256] first warning (NUL-padded)
 *     u32 sparse maps  u64 sparse regions
 *   points  (37 bytes each): i64 out, i64 in, u64 window offset (in the
 *                            windows), u32 window bytes stored, u32 window
 *                            length, u32 CRC-32 of the stored window, u8 bits
 *   nodes   (44 bytes each): i64 off, i64 size, i64 mtime, u32 name, u32 link,
 *                            u32 parent, i32 nsec, u16 mode, u8 kind, u8 flags
 *   sparse maps (24 bytes each): u64 first region, u64 regions, i64 bytes stored
 *   regions (24 bytes each): i64 logical offset, i64 length, i64 offset in
 *                            the member's stored data
 *   the name arena, its last string the archive's absolute path ("" for a
 *     source without one), named by no node: the cache listing reads it
 *     (from the header and the end of the metadata) to prune entries of
 *     deleted archives, and the metadata's CRC covers it
 *   u32 CRC-32 of everything above (the metadata: all an open reads)
 *   the windows, each raw deflate, checked by its point's CRC when used.
 * The counts in the header give the exact file length, checked at open, so
 * a cut file is caught there. Versions 1 (one CRC over the whole file), 2
 * (no sparse maps: sparse members were refused) and 3 (no archive path)
 * are rebuilt as stale. Child lists and the hash table are rebuilt on
 * load, not trusted.
 */
#include "tar_gz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC "KVROTGZI"
#define VERSION 4
#define HEADER_SIZE (8 + 4 + 8 + 8 + 4 + 4 + 4 + 8 + 4 + 4 + 8 + 8 + 8 + TAR_WARNING_MAX + 4 + 8)
#define SPARSE_SIZE 24
#define REGION_SIZE 24
#define POINT_SIZE TAR_GZ_POINT_RECORD
#define NODE_SIZE 44
#define EDGE (64 << 10)
#define ARCHIVE_PATH_MAX 65536 /* far above PATH_MAX; bounds what a listing reads */

/* ---------------------------------------------------------- identity */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ull;
    return h;
}

/* The real path of the archive that was opened, not of whatever its name
 * means by now (without /proc: the name's); NULL without a path. */
static char *archive_path(const kvro__io_id *id)
{
    if (!id->path)
        return NULL;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", id->fd);
    char *abs = realpath(proc, NULL);
    return abs ? abs : realpath(id->path, NULL);
}

char *kvro__tar_cache_path(const char *dir, const kvro__io_id *id)
{
    if (!id->path) /* memory, callbacks, a bare descriptor: nothing to key on */
        return NULL;
    char *abs = archive_path(id);
    if (!abs)
        return NULL;
    uint64_t h = fnv(0xcbf29ce484222325ull, abs, strlen(abs) + 1);
    /* The window too: two archives inside one disk image are two entries. */
    int64_t key[5] = {id->file_size, id->mtime, id->mtime_nsec, id->offset, id->length};
    unsigned char le[40];
    for (int i = 0; i < 40; i++)
        le[i] = (unsigned char)((uint64_t)key[i / 8] >> (8 * (i % 8)));
    h = fnv(h, le, sizeof le);
    size_t n = strlen(dir) + 32;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%016llx" TAR_CACHE_SUFFIX, dir, (unsigned long long)h);
    free(abs);
    return out;
}

/* Whole or nothing: false on an error or a file that ends early. */
static bool pread_all(int fd, void *buf, size_t n, int64_t off)
{
    size_t got;
    return kvro__pread(fd, buf, n, off, &got) == 0 && got == n;
}

/* ------------------------------------------------- where an index may go */

/* Whether the open file FD of SIZE bytes may be overwritten by an index:
 * it starts with the magic, or with as much of it as it holds (an index
 * cut short is still one, and an empty file has nothing to lose). */
static bool looks_like_index(int fd, int64_t size)
{
    unsigned char m[8];
    size_t n = size < 8 ? (size_t)size : 8;
    return pread_all(fd, m, n, 0) && memcmp(m, MAGIC, n) == 0;
}

/* PATH's directory exists (PATH itself does not). */
static kvro_status check_parent(const char *path, kvro_error *err)
{
    char *dir = strdup(path);
    if (!dir)
        return kvro_error_set(err, KVRO_E_NOMEM, "tar: out of memory");
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[slash == dir] = '\0'; /* "/x" lies in "/" */
    struct stat st;
    const char *in = slash ? dir : ".";
    kvro_status s = KVRO_OK;
    if (stat(in, &st) != 0)
        s = kvro_error_set(err, KVRO_E_NOT_FOUND,
                           "tar: index file %s: its directory %s does not exist; not written",
                           path, in);
    else if (!S_ISDIR(st.st_mode))
        s = kvro_error_set(err, KVRO_E_NOT_DIR,
                           "tar: index file %s: %s is not a directory; not written", path, in);
    free(dir);
    return s;
}

bool kvro__tar_cache_magic(int fd)
{
    unsigned char m[8];
    return pread_all(fd, m, sizeof m, 0) && memcmp(m, MAGIC, sizeof m) == 0;
}

kvro_status kvro__tar_cache_check_target(const char *path, kvro_io *io, kvro_error *err)
{
    struct stat st, src;
    if (lstat(path, &st) != 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return check_parent(path, err);
        return kvro_error_set(err, kvro_status_from_errno(e), "tar: index file %s: %s", path,
                              strerror(e));
    }
    if (stat(path, &st) != 0)
        return kvro_error_set(err, KVRO_E_EXISTS,
                              "tar: index file %s: a symbolic link that leads nowhere; not "
                              "overwritten",
                              path);
    /* The same file under any name (a hard or symbolic link, a window of
     * it): the descriptor the archive is read through decides, not names. */
    int64_t off;
    int afd = kvro_io_fd(io, &off);
    if (afd >= 0 && fstat(afd, &src) == 0 && src.st_dev == st.st_dev && src.st_ino == st.st_ino)
        return kvro_error_set(err, KVRO_E_EXISTS,
                              "tar: index file %s: is the archive itself; not overwritten", path);
    int fd = S_ISREG(st.st_mode) ? open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) : -1;
    bool ok = fd >= 0 && looks_like_index(fd, st.st_size);
    if (fd >= 0)
        close(fd);
    if (!ok)
        return kvro_error_set(err, KVRO_E_EXISTS,
                              "tar: index file %s: exists and is not a kvro index%s; not "
                              "overwritten",
                              path, S_ISDIR(st.st_mode) ? " (a directory)" : "");
    return KVRO_OK;
}

/* CRC-32 of the archive's first and last 64 KiB: catches a rewrite that
 * kept the size and restored the mtime (and, for a memory or callback
 * source with no mtime, stands in for one), for the price of two reads. */
static bool edge_crcs(kvro_io *io, int64_t size, uint32_t crc[2])
{
    unsigned char *buf = calloc(1, EDGE);
    if (!buf)
        return false;
    size_t n = size < EDGE ? (size_t)size : EDGE, got = 0;
    kvro_error ignored;
    bool ok = kvro_io_read(io, 0, buf, n, &got, &ignored) == KVRO_OK && got == n;
    if (ok)
        crc[0] = (uint32_t)crc32(0, buf, (uInt)n);
    ok = ok && kvro_io_read(io, size - (int64_t)n, buf, n, &got, &ignored) == KVRO_OK && got == n;
    if (ok)
        crc[1] = (uint32_t)crc32(0, buf, (uInt)n);
    free(buf);
    return ok;
}

kvro_status kvro__tar_cache_checksum(kvro_io *io, int64_t size, int64_t *sum, kvro_error *err)
{
    uLong a = adler32(0, NULL, 0);
    size_t len = 0;
    const unsigned char *mem = kvro_io_memory(io, &len);
    if (mem && (int64_t)len >= size) {
        *sum = (int64_t)adler32_z(a, mem, (size_t)size);
        return KVRO_OK;
    }
    unsigned char *buf = malloc(1 << 20);
    kvro_status s = buf ? KVRO_OK : kvro_error_set(err, KVRO_E_NOMEM, "tar: out of memory");
    for (int64_t off = 0; s == KVRO_OK && off < size;) {
        size_t want = size - off < (1 << 20) ? (size_t)(size - off) : (1 << 20), got = 0;
        s = kvro_io_read(io, off, buf, want, &got, err);
        if (s == KVRO_OK && got < want)
            s = kvro_error_set(err, KVRO_E_IO, "tar: the archive ends at %lld, before its size",
                               (long long)(off + (int64_t)got));
        a = adler32_z(a, buf, got);
        off += (int64_t)got;
    }
    free(buf);
    *sum = (int64_t)a;
    return s;
}

/* --------------------------------------------------------------- writing */

typedef struct writer {
    int fd;
    bool failed;
    uLong crc;
    size_t n;
    unsigned char buf[65536];
} writer;

static void w_flush(writer *w)
{
    if (!w->failed && w->n && kvro__pwrite(w->fd, w->buf, w->n, -1) != 0)
        w->failed = true;
    w->n = 0;
}

static void w_bytes(writer *w, const void *p, size_t n)
{
    w->crc = crc32_z(w->crc, p, n);
    const unsigned char *s = p;
    while (n) {
        if (w->n == sizeof w->buf)
            w_flush(w);
        size_t k = sizeof w->buf - w->n < n ? sizeof w->buf - w->n : n;
        memcpy(w->buf + w->n, s, k);
        w->n += k;
        s += k;
        n -= k;
    }
}

static void w_u(writer *w, uint64_t v, int bytes)
{
    unsigned char le[8];
    for (int i = 0; i < bytes; i++)
        le[i] = (unsigned char)(v >> (8 * i));
    w_bytes(w, le, (size_t)bytes);
}

static void w_header(writer *w, const kvro__io_id *id, const uint32_t crc[2], const tar_index *ix,
                     const tar_gz *gz, const tar_warnings *warn, size_t path_len)
{
    w_bytes(w, MAGIC, 8);
    w_u(w, VERSION, 4);
    w_u(w, (uint64_t)id->length, 8);
    w_u(w, (uint64_t)id->mtime, 8);
    w_u(w, (uint64_t)id->mtime_nsec, 4);
    w_u(w, crc[0], 4);
    w_u(w, crc[1], 4);
    w_u(w, (uint64_t)gz->usize, 8);
    w_u(w, gz->npoints, 4);
    w_u(w, ix->n, 4);
    w_u(w, ix->arena_len + path_len + 1, 8);
    w_u(w, gz->wins_len, 8);
    w_u(w, (uint64_t)warn->count, 8);
    char first[TAR_WARNING_MAX] = {0};
    memcpy(first, warn->first, strnlen(warn->first, sizeof first - 1));
    w_bytes(w, first, sizeof first);
    w_u(w, ix->nsparse, 4);
    w_u(w, ix->nregions, 8);
}

static void w_meta(writer *w, const tar_index *ix, const tar_gz *gz, const char *path,
                   size_t path_len)
{
    for (size_t i = 0; i < gz->npoints; i++) {
        const tar_gz_point *p = &gz->points[i];
        w_u(w, (uint64_t)p->out, 8);
        w_u(w, (uint64_t)p->in, 8);
        w_u(w, p->win, 8);
        w_u(w, p->win_zlen, 4);
        w_u(w, p->win_len, 4);
        w_u(w, p->win_crc, 4);
        w_u(w, p->bits, 1);
    }
    for (uint32_t i = 0; i < ix->n; i++) {
        const tar_node *d = &ix->nodes[i];
        w_u(w, (uint64_t)d->off, 8);
        w_u(w, (uint64_t)d->size, 8);
        w_u(w, (uint64_t)d->mtime, 8);
        w_u(w, d->name, 4);
        w_u(w, d->link, 4);
        w_u(w, d->parent, 4);
        w_u(w, (uint32_t)d->nsec, 4);
        w_u(w, d->mode, 2);
        w_u(w, d->kind, 1);
        w_u(w, d->flags, 1);
    }
    for (uint32_t i = 0; i < ix->nsparse; i++) {
        w_u(w, ix->sparse[i].first, 8);
        w_u(w, ix->sparse[i].count, 8);
        w_u(w, (uint64_t)ix->sparse[i].stored, 8);
    }
    for (uint64_t i = 0; i < ix->nregions; i++) {
        w_u(w, (uint64_t)ix->regions[i].off, 8);
        w_u(w, (uint64_t)ix->regions[i].len, 8);
        w_u(w, (uint64_t)ix->regions[i].data, 8);
    }
    w_bytes(w, ix->arena, ix->arena_len);
    w_bytes(w, path, path_len + 1);
}

static void note_set(char *note, size_t size, const char *fmt, ...) KVRO_PRINTF(3, 4);
static void note_set(char *note, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note, size, fmt, ap);
    va_end(ap);
}

/* mkdir -p of CACHE's directory, private to the user as XDG asks. */
static void make_parents(const char *cache)
{
    char *dir = strdup(cache);
    if (!dir)
        return;
    for (char *s = dir + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        mkdir(dir, 0700);
        *s = '/';
    }
    free(dir);
}

/* Writes the whole index to the new file W->fd; its size into *SIZE. */
static bool w_all(writer *w, const kvro__io_id *id, const uint32_t crc[2], const tar_index *ix,
                  const tar_gz *gz, const tar_warnings *warn, int64_t *size)
{
    char *abs = archive_path(id);
    const char *path = abs && strlen(abs) < ARCHIVE_PATH_MAX ? abs : "";
    w->failed = false;
    w->n = 0;
    w->crc = crc32(0, NULL, 0);
    w_header(w, id, crc, ix, gz, warn, strlen(path));
    w_meta(w, ix, gz, path, strlen(path));
    free(abs);
    uint32_t sum = (uint32_t)w->crc;
    w_u(w, sum, 4);
    if (gz->wins_len)
        w_bytes(w, gz->wins, gz->wins_len); /* their CRCs are in the points */
    w_flush(w);
    struct stat st;
    if (w->failed || fstat(w->fd, &st) != 0)
        return false;
    *size = st.st_size;
    return true;
}

bool kvro__tar_cache_save(const char *cache, int64_t cap, kvro_io *io, const kvro__io_id *id,
                          const tar_index *ix, const tar_gz *gz, const tar_warnings *warn,
                          char *note, size_t note_size)
{
    uint32_t crc[2];
    if (gz->wins_len && !gz->wins) { /* a loaded index: its windows are not in memory */
        note_set(note, note_size, "not saved: the index was loaded");
        return false;
    }
    if (!edge_crcs(io, id->length, crc)) {
        note_set(note, note_size, "not saved: cannot read the archive");
        return false;
    }
    if (cap > 0)
        make_parents(cache);
    size_t n = strlen(cache);
    char *tmp = malloc(n + 8);
    writer *w = malloc(sizeof *w);
    if (!tmp || !w) {
        free(tmp);
        free(w);
        note_set(note, note_size, "not saved: out of memory");
        return false;
    }
    snprintf(tmp, n + 8, "%s.XXXXXX", cache);
    w->fd = mkstemp(tmp);
    if (w->fd < 0) {
        note_set(note, note_size, "not saved: %s", strerror(errno));
        free(tmp);
        free(w);
        return false;
    }
    int64_t size = 0;
    bool ok = w_all(w, id, crc, ix, gz, warn, &size);
    int e = ok ? 0 : errno ? errno : EIO;
    if (close(w->fd) != 0 && ok)
        ok = false, e = errno;
    kvro_error why;
    if (!ok) {
        note_set(note, note_size, "not saved: %s", strerror(e));
    } else if (cap > 0 && size > cap) { /* it would evict everything, itself last */
        ok = false;
        note_set(note, note_size, "not saved: its %lld bytes exceed the cache's cap of %lld",
                 (long long)size, (long long)cap);
    } else if (kvro__tar_cache_check_target(cache, io, &why) != KVRO_OK) {
        /* Checked at open, and again here: the build took a while. */
        ok = false;
        note_set(note, note_size, "not saved: %s", why.detail);
    } else if (rename(tmp, cache) != 0) {
        ok = false;
        note_set(note, note_size, "not saved: %s", strerror(errno));
    }
    if (!ok)
        unlink(tmp);
    free(tmp);
    free(w);
    return ok;
}

/* --------------------------------------------------------------- reading */

typedef struct reader {
    const unsigned char *p;
} reader;

static uint64_t r_u(reader *r, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += bytes;
    return v;
}

/* The header's fields, as read (not yet trusted). */
typedef struct header {
    uint64_t csize, sec, nsec, usize, npoints, nnodes, arena, wins, skipped, nsparse, nregions;
    uint32_t crc[2];
} header;

static void decode_header(const unsigned char *buf, header *h)
{
    reader r = {buf + 12}; /* past the magic and the version */
    h->csize = r_u(&r, 8);
    h->sec = r_u(&r, 8);
    h->nsec = r_u(&r, 4);
    h->crc[0] = (uint32_t)r_u(&r, 4);
    h->crc[1] = (uint32_t)r_u(&r, 4);
    h->usize = r_u(&r, 8);
    h->npoints = r_u(&r, 4);
    h->nnodes = r_u(&r, 4);
    h->arena = r_u(&r, 8);
    h->wins = r_u(&r, 8);
    h->skipped = r_u(&r, 8);
    r.p += TAR_WARNING_MAX;
    h->nsparse = r_u(&r, 4);
    h->nregions = r_u(&r, 8);
}

/* The length of the metadata (up to and with its CRC) the counts imply,
 * or 0 if it overflows. */
static uint64_t meta_len(const header *h)
{
    uint64_t max = (uint64_t)1 << 48; /* far above any real index; keeps sums exact */
    if (h->npoints > max / POINT_SIZE || h->nnodes > max / NODE_SIZE || h->arena > max ||
        h->nsparse > max / SPARSE_SIZE || h->nregions > max / REGION_SIZE)
        return 0;
    return HEADER_SIZE + h->npoints * POINT_SIZE + h->nnodes * NODE_SIZE +
           h->nsparse * SPARSE_SIZE + h->nregions * REGION_SIZE + h->arena + 4;
}

static bool read_points(reader *r, tar_gz *gz, uint32_t n, uint64_t wins_len, char *note,
                        size_t size)
{
    tar_gz_point prev = {.out = -1, .in = 0};
    for (uint32_t i = 0; i < n; i++) {
        tar_gz_point p;
        p.out = (int64_t)r_u(r, 8);
        p.in = (int64_t)r_u(r, 8);
        p.win = r_u(r, 8);
        p.win_zlen = (uint32_t)r_u(r, 4);
        p.win_len = (uint32_t)r_u(r, 4);
        p.win_crc = (uint32_t)r_u(r, 4);
        p.bits = (uint8_t)r_u(r, 1);
        /* Strictly increasing, inside both streams, windows inside the
         * arena; a gzip header takes at least 10 bytes. Point 0 is the
         * stream's start and has no history: a read whose window turns out
         * damaged can always fall back to it. */
        bool ok = (i == 0 ? p.out == 0 && p.win_len == 0 : p.out > prev.out) &&
                  p.out <= gz->usize && p.in > prev.in && p.in >= 10 && p.in <= gz->csize &&
                  p.bits <= 7 && p.win_len <= TAR_GZ_WINDOW && p.win <= wins_len &&
                  p.win_zlen <= wins_len - p.win && p.win_zlen <= TAR_GZ_WINDOW_ZMAX;
        if (!ok) {
            note_set(note, size, "damaged: bad access point %u", i);
            return false;
        }
        kvro_error err;
        if (kvro__tar_gz_add_point(gz, &p, &err) != KVRO_OK) {
            note_set(note, size, "out of memory");
            return false;
        }
        prev = p;
    }
    return true;
}

static bool read_nodes(reader *r, tar_index *ix, const header *h, char *note, size_t size)
{
    uint32_t n = (uint32_t)h->nnodes;
    uint64_t arena_len = h->arena;
    ix->nodes = malloc((size_t)n * sizeof *ix->nodes);
    ix->arena = malloc(arena_len ? (size_t)arena_len : 1);
    ix->sparse = malloc(h->nsparse ? (size_t)h->nsparse * sizeof *ix->sparse : 1);
    ix->regions = malloc(h->nregions ? (size_t)h->nregions * sizeof *ix->regions : 1);
    if (!ix->nodes || !ix->arena || !ix->sparse || !ix->regions) {
        note_set(note, size, "out of memory");
        return false;
    }
    ix->n = ix->cap = n;
    for (uint32_t i = 0; i < n; i++) {
        tar_node *d = &ix->nodes[i];
        d->off = (int64_t)r_u(r, 8);
        d->size = (int64_t)r_u(r, 8);
        d->mtime = (int64_t)r_u(r, 8);
        d->name = (uint32_t)r_u(r, 4);
        d->link = (uint32_t)r_u(r, 4);
        d->parent = (uint32_t)r_u(r, 4);
        d->nsec = (int32_t)(uint32_t)r_u(r, 4);
        d->mode = (uint16_t)r_u(r, 2);
        d->kind = (uint8_t)r_u(r, 1);
        d->flags = (uint8_t)r_u(r, 1);
        d->child = d->sibling = d->hnext = TAR_NONE; /* rebuilt by kvro__tar_index_relink */
    }
    ix->nsparse = ix->sparse_cap = (uint32_t)h->nsparse;
    for (uint32_t i = 0; i < ix->nsparse; i++) {
        ix->sparse[i].first = r_u(r, 8);
        ix->sparse[i].count = r_u(r, 8);
        ix->sparse[i].stored = (int64_t)r_u(r, 8);
    }
    ix->nregions = ix->regions_cap = h->nregions;
    for (uint64_t i = 0; i < ix->nregions; i++) {
        ix->regions[i].off = (int64_t)r_u(r, 8);
        ix->regions[i].len = (int64_t)r_u(r, 8);
        ix->regions[i].data = (int64_t)r_u(r, 8);
    }
    memcpy(ix->arena, r->p, (size_t)arena_len);
    r->p += arena_len;
    ix->arena_len = ix->arena_cap = (size_t)arena_len;
    return true;
}

/* The archive's path: the arena's last string, which ends the metadata
 * but for its CRC (at META - 4). malloc'd, or NULL if it is not there. */
static char *read_archive_path(int fd, const header *h, uint64_t meta)
{
    size_t n = h->arena < ARCHIVE_PATH_MAX + 1 ? (size_t)h->arena : ARCHIVE_PATH_MAX + 1;
    char *buf = malloc(n + 1);
    if (!buf || n < 2 || !pread_all(fd, buf, n, (int64_t)(meta - 4 - n)) || buf[n - 1]) {
        free(buf);
        return NULL;
    }
    /* The root's name ("", at offset 0) comes first: a NUL always precedes
     * the path in an arena, unless the path is too long to be one. */
    size_t at = n - 1;
    while (at > 0 && buf[at - 1])
        at--;
    if (at == 0 && n == ARCHIVE_PATH_MAX + 1) {
        free(buf);
        return NULL;
    }
    memmove(buf, buf + at, n - at);
    return buf;
}

bool kvro__tar_cache_info(int fd, tar_cache_info *info)
{
    memset(info, 0, sizeof *info);
    struct stat st;
    unsigned char head[HEADER_SIZE];
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 8 ||
        !pread_all(fd, head, 8, 0) || memcmp(head, MAGIC, 8) != 0)
        return false;
    uint64_t len = (uint64_t)st.st_size;
    reader r = {head + 8};
    if (len < HEADER_SIZE + 4 || !pread_all(fd, head, HEADER_SIZE, 0) || r_u(&r, 4) != VERSION)
        return true; /* an index, of another version or cut: never loaded again */
    header h;
    decode_header(head, &h);
    uint64_t meta = meta_len(&h);
    if (meta == 0 || h.wins > len || meta + h.wins != len ||
        !(info->archive = read_archive_path(fd, &h, meta)))
        return true;
    info->current = true;
    info->size = (int64_t)h.csize;
    info->mtime = (int64_t)h.sec;
    info->mtime_nsec = (int32_t)h.nsec;
    return true;
}

/* Reads the metadata of the cache file CFD (FILE_LEN bytes) into *BUF
 * (*LEN bytes, CRC checked) and its header into H. Nothing past the
 * metadata is read, and nothing is allocated before the counts agree
 * with the file's length. */
static bool read_meta(int cfd, uint64_t file_len, header *h, unsigned char **buf, size_t *len,
                      char *note, size_t size)
{
    unsigned char head[HEADER_SIZE];
    if (file_len < HEADER_SIZE + 4 || !pread_all(cfd, head, HEADER_SIZE, 0) ||
        memcmp(head, MAGIC, 8) != 0) {
        note_set(note, size, "damaged: not an index file");
        return false;
    }
    reader r = {head + 8};
    if (r_u(&r, 4) != VERSION) {
        note_set(note, size, "stale: other format version");
        return false;
    }
    decode_header(head, h);
    uint64_t meta = meta_len(h);
    if (meta == 0 || h->wins > file_len || meta + h->wins != file_len) {
        note_set(note, size, "damaged: bad length for its counts");
        return false;
    }
    *len = (size_t)meta;
    *buf = malloc(*len);
    if (!*buf) {
        note_set(note, size, "out of memory");
        return false;
    }
    memcpy(*buf, head, HEADER_SIZE);
    if (!pread_all(cfd, *buf + HEADER_SIZE, *len - HEADER_SIZE, HEADER_SIZE)) {
        note_set(note, size, "cannot read the index file");
        return false;
    }
    const unsigned char *c = *buf + *len - 4;
    uint32_t sum = (uint32_t)(c[0] | c[1] << 8 | c[2] << 16 | (uint32_t)c[3] << 24);
    if ((uint32_t)crc32_z(0, *buf, *len - 4) != sum) {
        note_set(note, size, "damaged: bad checksum");
        return false;
    }
    return true;
}

/* Checks and decodes the metadata BUF (header H) against the archive. */
static bool decode(const unsigned char *buf, const header *h, kvro_io *io, const kvro__io_id *id,
                   tar_index *ix, tar_gz *gz, tar_warnings *w, char *note, size_t size)
{
    uint32_t now[2];
    if (h->csize != (uint64_t)id->length || h->sec != (uint64_t)id->mtime ||
        h->nsec != (uint64_t)id->mtime_nsec) {
        note_set(note, size, "stale: the archive's size or mtime changed");
        return false;
    }
    if (!edge_crcs(io, id->length, now) || now[0] != h->crc[0] || now[1] != h->crc[1]) {
        note_set(note, size, "stale: the archive's contents changed");
        return false;
    }
    /* Deflate expands at most 1032:1 (RFC 1951's longest match per bit);
     * a larger claim is a lie. Every member but the root needs a name. */
    const unsigned char *first = buf + HEADER_SIZE - 12 - TAR_WARNING_MAX;
    if (h->usize > (uint64_t)id->length * 1032 || h->npoints == 0 || h->nnodes == 0 ||
        h->nnodes > h->arena || h->skipped > (uint64_t)INT64_MAX ||
        first[TAR_WARNING_MAX - 1] != '\0') {
        note_set(note, size, "damaged: bad counts");
        return false;
    }
    w->count = (int64_t)h->skipped;
    memcpy(w->first, first, TAR_WARNING_MAX);
    gz->usize = (int64_t)h->usize;
    reader r = {buf + HEADER_SIZE};
    if (!read_points(&r, gz, (uint32_t)h->npoints, h->wins, note, size) ||
        !read_nodes(&r, ix, h, note, size))
        return false;
    kvro_error err;
    if (kvro__tar_index_relink(ix, gz->usize, &err) != KVRO_OK) {
        note_set(note, size, "damaged: %s", err.detail);
        return false;
    }
    return true;
}

bool kvro__tar_cache_load(const char *cache, bool touch, kvro_io *io, const kvro__io_id *id,
                          tar_index *ix, tar_gz *gz, tar_warnings *w, char *note,
                          size_t note_size)
{
    memset(ix, 0, sizeof *ix);
    int cfd = open(cache, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat cst;
    if (cfd < 0 || fstat(cfd, &cst) != 0 || !S_ISREG(cst.st_mode)) {
        note_set(note, note_size, "no index file: %s", cfd < 0 ? strerror(errno) : "not a file");
        if (cfd >= 0)
            close(cfd);
        return false;
    }
    /* Bounded before allocating: names and nodes come from tar headers of
     * at least 512 uncompressed bytes each, and deflate expands at most
     * 1032:1; so no honest index is this much larger than its archive. */
    uint64_t limit = (uint64_t)id->length * 128 + (64 << 20);
    if ((uint64_t)cst.st_size > limit || (uint64_t)cst.st_size > SIZE_MAX / 2) {
        close(cfd);
        note_set(note, note_size, "damaged: the index file is too large");
        return false;
    }
    header h;
    unsigned char *buf = NULL;
    size_t len = 0;
    bool ok = read_meta(cfd, (uint64_t)cst.st_size, &h, &buf, &len, note, note_size) &&
              decode(buf, &h, io, id, ix, gz, w, note, note_size);
    free(buf);
    char *path = ok ? strdup(cache) : NULL;
    if (ok && !path)
        note_set(note, note_size, "out of memory");
    if (!path) {
        close(cfd);
        kvro__tar_index_free(ix);
        free(gz->points);
        gz->points = NULL;
        gz->npoints = gz->cap = 0;
        gz->usize = 0;
        w->count = 0;
        w->first[0] = '\0';
        return false;
    }
    /* Its mtime says when it was last used, for the cache's LRU eviction:
     * atime would say so too, but not on a noatime or relatime mount. */
    if (touch)
        futimens(cfd, NULL);
    /* The windows stay in the file: tar_gz_read.c reads one when it needs it. */
    gz->index_fd = cfd;
    gz->index_path = path;
    gz->wins_off = (int64_t)len;
    gz->wins_len = (size_t)h.wins;
    gz->index_read = (int64_t)len;
    note_set(note, note_size, "loaded from %s", cache);
    return true;
}
