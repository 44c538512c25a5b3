/*
 * tar_src.c — a plain (uncompressed) archive as the scan's byte source
 * (tar_scan.h): large buffered reads through the image's I/O object, so a
 * header next to the previous member is usually in the buffer already and
 * a large member's data is skipped by position, never read; an image in
 * memory is read in place. Progress is reported every 64 MiB scanned. The
 * gzip source, which inflates as it goes, is tar_gz_build.c's.
 */
#include "tar_scan.h"

#include <stdlib.h>
#include <string.h>

#define FILE_BUF (256 << 10)
#define REPORT_EVERY (64 << 20)

static kvro_status file_pread(tar_file_src *f, void *buf, size_t n, int64_t off, size_t *got,
                              kvro_error *err)
{
    return kvro_io_read(f->io, off, buf, n, got, err);
}

static void report_progress(tar_file_src *f, int64_t done)
{
    if (f->opts->progress && done >= f->next_report) {
        f->opts->progress(f->opts->progress_arg, "indexing", done, f->size);
        f->next_report = done + REPORT_EVERY;
    }
}

static kvro_status file_read(tar_src *s, int64_t off, void *buf, size_t n, size_t *got,
                             kvro_error *err)
{
    tar_file_src *f = (tar_file_src *)s;
    size_t done = 0;
    *got = 0;
    if (f->mem) { /* only what the scan asks for is copied: headers, never data */
        if (off < f->size) {
            done = (int64_t)n < f->size - off ? n : (size_t)(f->size - off);
            memcpy(buf, f->mem + off, done);
        }
        *got = done;
        return KVRO_OK;
    }
    while (done < n && off < f->size) {
        if (off >= f->buf_off && off < f->buf_off + (int64_t)f->buf_len) {
            size_t at = (size_t)(off - f->buf_off);
            size_t k = f->buf_len - at < n - done ? f->buf_len - at : n - done;
            memcpy((char *)buf + done, f->buf + at, k);
            done += k;
            off += (int64_t)k;
            continue;
        }
        report_progress(f, off);
        size_t k;
        kvro_status st;
        if (n - done >= FILE_BUF) { /* large: straight into the caller's buffer */
            st = file_pread(f, (char *)buf + done, n - done, off, &k, err);
            done += k;
            off += (int64_t)k;
        } else {
            st = file_pread(f, f->buf, FILE_BUF, off, &k, err);
            f->buf_off = off;
            f->buf_len = k;
        }
        if (st != KVRO_OK)
            return st;
        if (k == 0) /* shorter than fstat said: it shrank under us */
            break;
    }
    *got = done;
    return KVRO_OK;
}

static kvro_status file_has(tar_src *s, int64_t end, bool *ok, kvro_error *err)
{
    (void)err;
    *ok = end <= ((tar_file_src *)s)->size;
    return KVRO_OK;
}

kvro_status kvro__tar_file_src_init(tar_file_src *f, kvro_io *io, int64_t size, const kvro_options *o,
                              kvro_error *err)
{
    memset(f, 0, sizeof *f);
    f->base.read = file_read;
    f->base.has = file_has;
    f->io = io;
    f->size = size;
    f->opts = o;
    size_t len = 0;
    f->mem = kvro_io_memory(io, &len);
    if (f->mem && (int64_t)len < size)
        f->mem = NULL; /* cannot be, but a short view must not be read past */
    if (f->mem)
        return KVRO_OK;
    f->buf = malloc(FILE_BUF);
    if (!f->buf)
        return kvro_error_set(err, KVRO_E_NOMEM, "tar: out of memory");
    return KVRO_OK;
}

void kvro__tar_file_src_done(tar_file_src *f)
{
    if (f->opts && f->opts->progress)
        f->opts->progress(f->opts->progress_arg, "indexing", f->size, f->size);
    free(f->buf);
    f->buf = NULL;
}
