/*
 * tar_gz.c — random access into a gzip-compressed tar without inflating it
 * from the start: access points at deflate block boundaries, after the
 * technique of zlib's examples/zran.c (Mark Adler). A point records the
 * uncompressed and compressed offsets, the bits of a partly used byte, and
 * the 32 KiB of output before it, which inflateSetDictionary() needs to
 * resume; windows are kept raw-deflated (level 1), usually a few KiB each.
 *
 * Building: kvro__tar_scan() pulls the archive through tar_gz_build's source,
 * which inflates with Z_BLOCK so every block boundary is seen, and adds a
 * point when one is due (spacing and 2% budget: see tar_gz.h). The first
 * point is right after the first gzip header. Concatenated gzip members
 * (RFC 1952 section 2.2) are followed: after each member's trailer another
 * member may start; anything else after a member is ignored, as gzip -d
 * does with tape padding.
 *
 * Reading: each read takes a cursor — an inflate state positioned in the
 * stream — from a small per-handle cache (under the handle's mutex) if one
 * sits between the nearest point and the offset, else starts one at the
 * point; it skips forward, inflates into the caller's buffer and goes back
 * to the cache. Cursors use raw inflate and step over member trailers and
 * headers themselves; the CRCs were checked when the index was built.
 *
 * A loaded index keeps its windows in the cache file and preads one (at
 * most TAR_GZ_WINDOW_ZMAX bytes) when a cursor starts at its point, checking
 * the window's own CRC-32 first. A window that fails (damaged, or the file
 * cut since open) is not an error: the read starts from the point before
 * instead, down to point 0, which needs no window — slower, never wrong —
 * and the cache file is unlinked so the next open rebuilds it. The file is
 * read, never mapped: a truncation under a mapping would be a SIGBUS.
 */
#include "tar_gz.h"

#include "tar_format.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IN_BUF (128 << 10)
#define OUT_BUF (256 << 10)
#define CURSOR_IN (64 << 10)
#define REPORT_EVERY (16 << 20)

static kvro_status nomem(kvro_error *err)
{
    return kvro_error_set(err, KVRO_E_NOMEM, "gzip: out of memory");
}

static kvro_status zerror(kvro_error *err, const z_stream *z, int64_t at)
{
    return kvro_error_set(err, KVRO_E_CORRUPT, "gzip: %s at compressed offset %lld",
                          z->msg ? z->msg : "invalid data", (long long)at);
}

/* Appends to Z's input what follows in the archive at *READ_OFF, keeping
 * the unconsumed bytes. *got = bytes read, 0 at the end of the archive. */
static kvro_status refill(kvro_io *io, z_stream *z, unsigned char *in, size_t cap,
                          int64_t *read_off, size_t *got, kvro_error *err)
{
    size_t keep = z->avail_in;
    if (keep && z->next_in != in)
        memmove(in, z->next_in, keep);
    kvro_status s = kvro_io_read(io, *read_off, in + keep, cap - keep, got, err);
    if (s != KVRO_OK)
        return s;
    *read_off += (int64_t)*got;
    z->next_in = in;
    z->avail_in = (uInt)(keep + *got);
    return KVRO_OK;
}

kvro_status kvro__tar_gz_init(tar_gz *gz, kvro_io *io, int64_t csize, kvro_error *err)
{
    memset(gz, 0, sizeof *gz);
    gz->io = io;
    gz->csize = csize;
    gz->index_fd = -1;
    atomic_init(&gz->index_dropped, false);
    atomic_init(&gz->damaged_windows, 0);
    if (pthread_mutex_init(&gz->lock, NULL) != 0)
        return nomem(err);
    return KVRO_OK;
}

static void cursor_free(tar_gz_cursor *c);

void kvro__tar_gz_free(tar_gz *gz)
{
    for (size_t i = 0; i < TAR_GZ_CURSORS; i++)
        cursor_free(gz->cursors[i]);
    pthread_mutex_destroy(&gz->lock);
    if (gz->index_fd >= 0)
        close(gz->index_fd);
    free(gz->index_path);
    free(gz->points);
    free(gz->wins);
    memset(gz, 0, sizeof *gz);
}

static kvro_status add_point(tar_gz *gz, const tar_gz_point *p, const unsigned char *zwin,
                             kvro_error *err)
{
    if (gz->npoints == gz->cap) {
        size_t cap = gz->cap ? gz->cap * 2 : 64;
        tar_gz_point *v = realloc(gz->points, cap * sizeof *v);
        if (!v)
            return nomem(err);
        gz->points = v;
        gz->cap = cap;
    }
    if (zwin) {
        if (gz->wins_len + p->win_zlen > gz->wins_cap) {
            size_t cap = gz->wins_cap ? gz->wins_cap : 65536;
            while (cap < gz->wins_len + p->win_zlen)
                cap *= 2;
            unsigned char *w = realloc(gz->wins, cap);
            if (!w)
                return nomem(err);
            gz->wins = w;
            gz->wins_cap = cap;
        }
        memcpy(gz->wins + gz->wins_len, zwin, p->win_zlen);
        gz->wins_len += p->win_zlen;
    }
    gz->points[gz->npoints++] = *p;
    return KVRO_OK;
}

kvro_status kvro__tar_gz_add_point(tar_gz *gz, const tar_gz_point *p, kvro_error *err)
{
    return add_point(gz, p, NULL, err);
}

/* ------------------------------------------------------------- building */

struct tar_gz_build {
    tar_src base;
    tar_gz *gz;
    const kvro_options *opts;
    z_stream strm, def;
    bool strm_live, def_live;
    unsigned char *in, *out, *win, *zwin;
    size_t zwin_cap;
    int64_t read_off;          /* next compressed byte to read from the file */
    size_t out_start, out_len; /* output kept: [out_base, out_base + out_len) */
    int64_t out_base;
    int64_t totin, totout; /* consumed and produced by inflate, over all members */
    bool done;             /* the last gzip member ended */
    int64_t last_point, spacing, index_bytes;
    bool budget;
    uint32_t est_zlen; /* expected size of the next stored window */
    int64_t next_report;
};

static kvro_status maybe_point(tar_gz_build *b, kvro_error *err)
{
    tar_gz *gz = b->gz;
    bool first = gz->npoints == 0;
    int64_t allowed = b->totin / 100 * TAR_GZ_BUDGET_PCT;
    if (!first && b->totout - b->last_point < b->spacing)
        return KVRO_OK;
    if (!first && b->budget && b->index_bytes + b->est_zlen + TAR_GZ_POINT_RECORD > allowed)
        return KVRO_OK;
    uInt wlen = 0;
    if (inflateGetDictionary(&b->strm, b->win, &wlen) != Z_OK || wlen > TAR_GZ_WINDOW)
        return kvro_error_set(err, KVRO_E_CORRUPT, "gzip: cannot take the inflate window");
    deflateReset(&b->def);
    b->def.next_in = b->win;
    b->def.avail_in = wlen;
    b->def.next_out = b->zwin;
    b->def.avail_out = (uInt)b->zwin_cap;
    if (deflate(&b->def, Z_FINISH) != Z_STREAM_END)
        return nomem(err);
    uint32_t zlen = (uint32_t)(b->zwin_cap - b->def.avail_out);
    b->est_zlen = zlen;
    if (!first && b->budget && b->index_bytes + zlen + TAR_GZ_POINT_RECORD > allowed)
        return KVRO_OK; /* this window compressed worse than the last: wait */
    tar_gz_point p = {.out = b->totout,
                      .in = b->totin,
                      .win = gz->wins_len,
                      .win_zlen = zlen,
                      .win_len = wlen,
                      .win_crc = (uint32_t)crc32(0, b->zwin, zlen),
                      .bits = (uint8_t)(b->strm.data_type & 7)};
    kvro_status s = add_point(gz, &p, b->zwin, err);
    if (s == KVRO_OK) {
        b->index_bytes += zlen + TAR_GZ_POINT_RECORD;
        b->last_point = b->totout;
    }
    return s;
}

static kvro_status build_refill(tar_gz_build *b, size_t *got, kvro_error *err)
{
    const kvro_options *o = b->opts;
    if (o->progress && b->read_off >= b->next_report) {
        o->progress(o->progress_arg, "indexing", b->read_off, b->gz->csize);
        b->next_report = b->read_off + REPORT_EVERY;
    }
    return refill(b->gz->io, &b->strm, b->in, IN_BUF, &b->read_off, got, err);
}

/* A gzip member ended (zlib checked its CRC and length): another may
 * follow. */
static kvro_status member_end(tar_gz_build *b, kvro_error *err)
{
    if (b->strm.avail_in < 2) {
        size_t got;
        kvro_status s = build_refill(b, &got, err);
        if (s != KVRO_OK)
            return s;
    }
    const unsigned char *p = b->strm.next_in;
    if (b->strm.avail_in >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
        if (inflateReset(&b->strm) != Z_OK)
            return zerror(err, &b->strm, b->totin);
        return KVRO_OK;
    }
    b->done = true;
    return KVRO_OK;
}

/* One inflate call: more output, maybe an access point. */
static kvro_status step(tar_gz_build *b, kvro_error *err)
{
    z_stream *z = &b->strm;
    if (z->avail_in == 0) {
        size_t got;
        kvro_status s = build_refill(b, &got, err);
        if (s != KVRO_OK)
            return s;
        if (got == 0)
            return kvro_error_set(err, KVRO_E_CORRUPT,
                                  "gzip: the compressed data ends early (truncated at %lld bytes)",
                                  (long long)b->read_off);
    }
    if (b->out_start + b->out_len == OUT_BUF) {
        memmove(b->out, b->out + b->out_start, b->out_len);
        b->out_start = 0;
    }
    z->next_out = b->out + b->out_start + b->out_len;
    z->avail_out = (uInt)(OUT_BUF - b->out_start - b->out_len);
    uInt in0 = z->avail_in, out0 = z->avail_out;
    int ret = inflate(z, Z_BLOCK);
    b->totin += in0 - z->avail_in;
    b->totout += out0 - z->avail_out;
    b->out_len += out0 - z->avail_out;
    if (ret == Z_STREAM_END)
        return member_end(b, err);
    if (ret == Z_MEM_ERROR)
        return nomem(err);
    if (ret != Z_OK && ret != Z_BUF_ERROR)
        return zerror(err, z, b->totin);
    /* At a block boundary (or just after a header), unless that block was
     * the member's last: a point there would only precede the trailer. */
    if ((z->data_type & 128) && !(z->data_type & 64))
        return maybe_point(b, err);
    return KVRO_OK;
}

/* Inflates until the kept output covers [OFF, OFF + N) or the stream ends;
 * output before OFF is dropped. */
static kvro_status fill(tar_gz_build *b, int64_t off, size_t n, kvro_error *err)
{
    if (off < b->out_base || n > OUT_BUF / 2)
        return kvro_error_set(err, KVRO_E_INVALID, "gzip: internal error: read out of order");
    for (;;) {
        int64_t drop =
            off - b->out_base < (int64_t)b->out_len ? off - b->out_base : (int64_t)b->out_len;
        b->out_start = b->out_len == (size_t)drop ? 0 : b->out_start + (size_t)drop;
        b->out_len -= (size_t)drop;
        b->out_base += drop;
        if (b->out_base + (int64_t)b->out_len >= off + (int64_t)n || b->done)
            return KVRO_OK;
        kvro_status s = step(b, err);
        if (s != KVRO_OK)
            return s;
    }
}

static kvro_status build_read(tar_src *src, int64_t off, void *buf, size_t n, size_t *got,
                              kvro_error *err)
{
    tar_gz_build *b = (tar_gz_build *)src;
    *got = 0;
    while (*got < n) {
        size_t k = n - *got < 65536 ? n - *got : 65536;
        int64_t at = off + (int64_t)*got;
        kvro_status s = fill(b, at, k, err);
        if (s != KVRO_OK)
            return s;
        int64_t have = b->out_base + (int64_t)b->out_len - at;
        if (have <= 0)
            break;
        if ((int64_t)k > have)
            k = (size_t)have;
        memcpy((char *)buf + *got, b->out + b->out_start + (at - b->out_base), k);
        *got += k;
    }
    return KVRO_OK;
}

static kvro_status build_has(tar_src *src, int64_t end, bool *ok, kvro_error *err)
{
    tar_gz_build *b = (tar_gz_build *)src;
    kvro_status s = fill(b, end, 0, err);
    *ok = s == KVRO_OK && b->totout >= end;
    return s;
}

kvro_status kvro__tar_gz_build_begin(tar_gz *gz, const kvro_options *o, int64_t spacing, bool budget,
                               tar_gz_build **out, kvro_error *err)
{
    tar_gz_build *b = calloc(1, sizeof *b);
    if (!b)
        return nomem(err);
    b->base.read = build_read;
    b->base.has = build_has;
    b->gz = gz;
    b->opts = o;
    b->spacing = spacing > 0 ? spacing : TAR_GZ_SPACING;
    b->budget = budget;
    b->est_zlen = TAR_GZ_WINDOW;
    b->in = malloc(IN_BUF);
    b->out = malloc(OUT_BUF);
    b->win = malloc(TAR_GZ_WINDOW);
    *out = b;
    if (!b->in || !b->out || !b->win)
        return nomem(err);
    if (inflateInit2(&b->strm, 15 + 16) != Z_OK) /* gzip wrapper only */
        return nomem(err);
    b->strm_live = true;
    if (deflateInit2(&b->def, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return nomem(err);
    b->def_live = true;
    b->zwin_cap = deflateBound(&b->def, TAR_GZ_WINDOW);
    b->zwin = malloc(b->zwin_cap);
    return b->zwin ? KVRO_OK : nomem(err);
}

tar_src *kvro__tar_gz_build_src(tar_gz_build *b)
{
    return &b->base;
}

kvro_status kvro__tar_gz_build_finish(tar_gz_build *b, kvro_error *err)
{
    while (!b->done) {
        b->out_base += (int64_t)b->out_len;
        b->out_start = b->out_len = 0;
        kvro_status s = step(b, err);
        if (s != KVRO_OK)
            return s;
    }
    b->gz->usize = b->totout;
    b->gz->inflated = b->totout;
    if (b->gz->npoints == 0)
        return kvro_error_set(err, KVRO_E_CORRUPT, "gzip: no deflate data");
    if (b->opts->progress)
        b->opts->progress(b->opts->progress_arg, "indexing", b->gz->csize, b->gz->csize);
    return KVRO_OK;
}

void kvro__tar_gz_build_free(tar_gz_build *b)
{
    if (!b)
        return;
    if (b->strm_live)
        inflateEnd(&b->strm);
    if (b->def_live)
        deflateEnd(&b->def);
    free(b->in);
    free(b->out);
    free(b->win);
    free(b->zwin);
    free(b);
}

/* -------------------------------------------------------------- reading */

struct tar_gz_cursor {
    z_stream strm;
    int64_t out;      /* uncompressed offset of the next byte it produces */
    int64_t read_off; /* next compressed byte to read */
    bool end;         /* past the last gzip member */
    uint64_t used;
    unsigned char in[CURSOR_IN];
};

static void cursor_free(tar_gz_cursor *c)
{
    if (!c)
        return;
    inflateEnd(&c->strm);
    free(c);
}

static kvro_status cursor_refill(tar_gz *gz, tar_gz_cursor *c, size_t *got, kvro_error *err)
{
    return refill(gz->io, &c->strm, c->in, CURSOR_IN, &c->read_off, got, err);
}

static kvro_status damaged(kvro_error *err, const char *what, int64_t at)
{
    return kvro_error_set(err, KVRO_E_CORRUPT,
                          "gzip: %s at compressed offset %lld (did the archive change after "
                          "it was indexed?)",
                          what, (long long)at);
}

/* Inflates point P's stored window into WIN, reading it from the cache
 * file into BUF (TAR_GZ_WINDOW_ZMAX bytes) if it is not in memory. false
 * if it cannot be read, fails its CRC or does not inflate to its length. */
static bool load_window(const tar_gz *gz, const tar_gz_point *p, unsigned char *buf,
                        unsigned char *win)
{
    const unsigned char *zwin = buf;
    size_t got = 0;
    if (gz->wins)
        zwin = gz->wins + p->win;
    else if (gz->index_fd < 0 || p->win_zlen > TAR_GZ_WINDOW_ZMAX ||
             kvro__pread(gz->index_fd, buf, p->win_zlen, gz->wins_off + (int64_t)p->win, &got) ||
             got != p->win_zlen)
        return false;
    if ((uint32_t)crc32(0, zwin, p->win_zlen) != p->win_crc)
        return false;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK)
        return false;
    z.next_in = (unsigned char *)zwin;
    z.avail_in = p->win_zlen;
    z.next_out = win;
    z.avail_out = TAR_GZ_WINDOW;
    int ret = inflate(&z, Z_FINISH);
    bool ok = ret == Z_STREAM_END && TAR_GZ_WINDOW - z.avail_out == p->win_len;
    inflateEnd(&z);
    return ok;
}

/* A window of the loaded index is damaged: counted, and the cache file
 * unlinked (once) so that the next open rebuilds it — but only if its path
 * still names the file we read, which another process may have replaced
 * with a good one already. */
static void window_damaged(tar_gz *gz)
{
    atomic_fetch_add(&gz->damaged_windows, 1);
    if (!gz->index_path || atomic_exchange(&gz->index_dropped, true))
        return;
    struct stat ours, named;
    if (fstat(gz->index_fd, &ours) == 0 && stat(gz->index_path, &named) == 0 &&
        ours.st_dev == named.st_dev && ours.st_ino == named.st_ino)
        unlink(gz->index_path);
}

/* A cursor at point P; *BAD_WINDOW (with KVRO_E_CORRUPT) if P's window is
 * unusable, so the caller may start from an earlier point instead. */
static kvro_status cursor_open(tar_gz *gz, const tar_gz_point *p, tar_gz_cursor **out,
                               bool *bad_window, kvro_error *err)
{
    *bad_window = false;
    tar_gz_cursor *c = calloc(1, sizeof *c);
    if (!c)
        return nomem(err);
    if (inflateInit2(&c->strm, -15) != Z_OK) {
        free(c);
        return nomem(err);
    }
    c->out = p->out;
    c->read_off = p->in;
    *out = c;
    if (p->bits) {
        /* The block starts inside the byte before IN: its top BITS bits. */
        unsigned char byte;
        size_t got = 0;
        kvro_status s = kvro_io_read(gz->io, p->in - 1, &byte, 1, &got, err);
        if (s != KVRO_OK) /* the device failed: say so, the archive may be fine */
            return s;
        if (got != 1)
            return damaged(err, "cannot read the access point", p->in - 1);
        inflatePrime(&c->strm, p->bits, byte >> (8 - p->bits));
    }
    if (p->win_len) {
        unsigned char *win = malloc(TAR_GZ_WINDOW);
        if (!win)
            return nomem(err);
        /* The cursor's input buffer is empty yet: it holds the stored window. */
        _Static_assert(CURSOR_IN >= TAR_GZ_WINDOW_ZMAX, "a stored window fits the input");
        kvro_status s = KVRO_OK;
        if (!load_window(gz, p, c->in, win) ||
            inflateSetDictionary(&c->strm, win, p->win_len) != Z_OK) {
            *bad_window = true;
            s = damaged(err, "damaged access-point window", p->in);
        }
        free(win);
        return s;
    }
    return KVRO_OK;
}

/* The raw deflate data of a member ended: step over its 8-byte trailer
 * and, if another member follows, over that member's header. */
static kvro_status cursor_next_member(tar_gz *gz, tar_gz_cursor *c, kvro_error *err)
{
    z_stream *z = &c->strm;
    size_t got;
    for (uInt skip = 8; skip;) {
        if (z->avail_in == 0) {
            kvro_status s = cursor_refill(gz, c, &got, err);
            if (s != KVRO_OK)
                return s;
            if (!got)
                return damaged(err, "truncated gzip trailer", c->read_off);
        }
        uInt k = z->avail_in < skip ? z->avail_in : skip;
        z->next_in += k;
        z->avail_in -= k;
        skip -= k;
    }
    if (z->avail_in < 2) {
        kvro_status s = cursor_refill(gz, c, &got, err);
        if (s != KVRO_OK)
            return s;
    }
    if (z->avail_in < 2 || z->next_in[0] != 0x1f || z->next_in[1] != 0x8b) {
        c->end = true;
        return KVRO_OK;
    }
    if (inflateReset2(z, 15 + 16) != Z_OK)
        return nomem(err);
    unsigned char none;
    do { /* Z_BLOCK stops right after the header, before any output */
        if (z->avail_in == 0) {
            kvro_status s = cursor_refill(gz, c, &got, err);
            if (s != KVRO_OK)
                return s;
            if (!got)
                return damaged(err, "truncated gzip header", c->read_off);
        }
        z->next_out = &none;
        z->avail_out = 1;
        int ret = inflate(z, Z_BLOCK);
        if (ret != Z_OK && ret != Z_BUF_ERROR)
            return damaged(err, z->msg ? z->msg : "bad gzip header", c->read_off);
    } while (!(z->data_type & 128));
    return inflateReset2(z, -15) == Z_OK ? KVRO_OK : nomem(err);
}

/* Inflates up to N bytes into DST (fewer only at the end of the stream). */
static kvro_status cursor_inflate(tar_gz *gz, tar_gz_cursor *c, unsigned char *dst, int64_t n,
                                  int64_t *produced, kvro_error *err)
{
    z_stream *z = &c->strm;
    *produced = 0;
    while (*produced < n && !c->end) {
        if (z->avail_in == 0) {
            size_t got;
            kvro_status s = cursor_refill(gz, c, &got, err);
            if (s != KVRO_OK)
                return s;
            if (!got)
                return damaged(err, "compressed data ends early", c->read_off);
        }
        int64_t want = n - *produced < (1 << 30) ? n - *produced : (1 << 30);
        z->next_out = dst + *produced;
        z->avail_out = (uInt)want;
        int ret = inflate(z, Z_NO_FLUSH);
        int64_t k = want - z->avail_out;
        *produced += k;
        c->out += k;
        if (ret == Z_STREAM_END) {
            kvro_status s = cursor_next_member(gz, c, err);
            if (s != KVRO_OK)
                return s;
        } else if (ret == Z_MEM_ERROR) {
            return nomem(err);
        } else if (ret != Z_OK && !(ret == Z_BUF_ERROR && z->avail_in == 0)) {
            return damaged(err, z->msg ? z->msg : "invalid compressed data", c->read_off);
        }
    }
    return KVRO_OK;
}

/* Takes the cached cursor closest below OFF, if it is no further from OFF
 * than the access point at FLOOR. */
static tar_gz_cursor *take_cursor(tar_gz *gz, int64_t off, int64_t floor)
{
    tar_gz_cursor *c = NULL;
    pthread_mutex_lock(&gz->lock);
    size_t best = TAR_GZ_CURSORS;
    for (size_t i = 0; i < TAR_GZ_CURSORS; i++) {
        tar_gz_cursor *k = gz->cursors[i];
        if (k && !k->end && k->out <= off && k->out >= floor &&
            (best == TAR_GZ_CURSORS || k->out > gz->cursors[best]->out))
            best = i;
    }
    if (best < TAR_GZ_CURSORS) {
        c = gz->cursors[best];
        gz->cursors[best] = NULL;
    }
    pthread_mutex_unlock(&gz->lock);
    return c;
}

static void put_cursor(tar_gz *gz, tar_gz_cursor *c)
{
    tar_gz_cursor *evicted = NULL;
    pthread_mutex_lock(&gz->lock);
    c->used = ++gz->tick;
    size_t slot = 0;
    for (size_t i = 0; i < TAR_GZ_CURSORS; i++) {
        if (!gz->cursors[i]) {
            slot = i;
            break;
        }
        if (gz->cursors[i]->used < gz->cursors[slot]->used)
            slot = i;
    }
    evicted = gz->cursors[slot];
    gz->cursors[slot] = c;
    pthread_mutex_unlock(&gz->lock);
    cursor_free(evicted);
}

kvro_status kvro__tar_gz_read(tar_gz *gz, int64_t off, void *buf, int64_t len, int64_t *got,
                        kvro_error *err)
{
    *got = 0;
    if (off >= gz->usize || len <= 0)
        return KVRO_OK;
    if (len > gz->usize - off)
        len = gz->usize - off;
    size_t lo = 0, hi = gz->npoints; /* the last point at or before OFF */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (gz->points[mid].out <= off)
            lo = mid;
        else
            hi = mid;
    }
    tar_gz_cursor *c = take_cursor(gz, off, gz->points[lo].out);
    kvro_status s = KVRO_OK;
    while (!c) {
        bool bad_window;
        s = cursor_open(gz, &gz->points[lo], &c, &bad_window, err);
        if (s == KVRO_OK || !bad_window || lo == 0)
            break;
        /* Point 0 has no window, so this ends; each step back costs
         * inflating one more spacing, never a wrong byte. */
        cursor_free(c);
        c = NULL;
        window_damaged(gz);
        lo--;
        c = take_cursor(gz, off, gz->points[lo].out);
        s = KVRO_OK;
    }
    unsigned char discard[16384];
    while (s == KVRO_OK && c->out < off && !c->end) {
        int64_t k = off - c->out < (int64_t)sizeof discard ? off - c->out : (int64_t)sizeof discard;
        int64_t done;
        s = cursor_inflate(gz, c, discard, k, &done, err);
    }
    if (s == KVRO_OK && c->out == off)
        s = cursor_inflate(gz, c, buf, len, got, err);
    if (s != KVRO_OK) {
        cursor_free(c);
        return s;
    }
    put_cursor(gz, c);
    return KVRO_OK;
}

/* ---------------------------------------------------------------- probe */

bool kvro__tar_gz_probe(const unsigned char *head, size_t n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return false;
    unsigned char out[TAR_BLOCK];
    z.next_in = (unsigned char *)head;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = sizeof out;
    for (;;) {
        int ret = inflate(&z, Z_NO_FLUSH);
        /* A first member too short for a header may be followed by more. */
        if (ret == Z_STREAM_END && z.avail_out && z.avail_in >= 2 && z.next_in[0] == 0x1f &&
            z.next_in[1] == 0x8b && inflateReset(&z) == Z_OK)
            continue;
        break;
    }
    bool ok = z.avail_out == 0 && kvro__tar_header_valid(out) && !kvro__tar_block_is_zero(out);
    inflateEnd(&z);
    return ok;
}
