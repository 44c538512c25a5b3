/*
 * tar_gz_build.c — random access into a gzip-compressed tar without inflating it
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
 * Reading (the read cache, cursors, damaged windows): tar_gz_read.c.
 */
#include "tar_gz.h"

#include "tar_format.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IN_BUF (128 << 10)
#define OUT_BUF (256 << 10)
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
    return kvro__tar_gz_refill(b->gz->io, &b->strm, b->in, IN_BUF, &b->read_off, got, err);
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
