/*
 * io.c — the I/O object every image backend reads through, and the one
 * read loop and the one write loop over the host's descriptors.
 *
 * Four kinds share one struct: a descriptor (opened by path or given), a
 * memory buffer, a window of another object, the caller's callbacks. What
 * is fixed at construction (the kind, the buffer, the window's bounds) is
 * never written again, so reads need no lock; the reference count is
 * atomic. A window resolves to its innermost object with its offset added,
 * which is also how zero-copy callers learn where a value's bytes lie.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum io_kind { IO_FD, IO_SINK, IO_MEMORY, IO_WINDOW, IO_CALLBACKS } io_kind;

struct kvro_io {
    atomic_int refs;
    io_kind kind;
    bool writable;
    char *name;
    /* IO_FD */
    int fd;
    bool own_fd;
    char *path; /* set by kvro_io_open_path: what the .tar.gz index cache keys on */
    /* IO_SINK (and its fd above) */
    int64_t written;
    /* IO_MEMORY */
    const unsigned char *mem;
    unsigned char *mem_rw; /* the same buffer, when writable */
    int64_t mem_len;
    /* IO_WINDOW */
    kvro_io *base;
    int64_t off, len;
    /* IO_CALLBACKS */
    kvro_io_callbacks cb;
    void *ctx;
};

/* ------------------------------------------------------- the host loops */

int kvro__pread(int fd, void *buf, size_t n, int64_t off, size_t *got)
{
    *got = 0;
    while (*got < n) {
        /* Linux moves at most ~2 GiB a call: ask in 1 GiB pieces. */
        size_t want = n - *got < ((size_t)1 << 30) ? n - *got : (size_t)1 << 30;
        ssize_t r = pread(fd, (char *)buf + *got, want, (off_t)(off + (int64_t)*got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

int kvro__pwrite(int fd, const void *buf, size_t n, int64_t off)
{
    size_t done = 0;
    while (done < n) {
        size_t want = n - done < ((size_t)1 << 30) ? n - done : (size_t)1 << 30;
        ssize_t r = off < 0 ? write(fd, (const char *)buf + done, want)
                            : pwrite(fd, (const char *)buf + done, want,
                                     (off_t)(off + (int64_t)done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            return EIO; /* a write that makes no progress would spin */
        done += (size_t)r;
    }
    return 0;
}

/* ---------------------------------------------------------- construction */

static kvro_status io_new(io_kind kind, int flags, kvro_io **out, kvro_error *err)
{
    *out = NULL; /* set on every path: callers' pointers are never left undefined */
    kvro_io *io = calloc(1, sizeof *io);
    if (!io)
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    atomic_init(&io->refs, 1);
    io->kind = kind;
    io->writable = (flags & KVRO_IO_RDWR) != 0;
    io->fd = -1;
    *out = io;
    return KVRO_OK;
}

static kvro_status io_named(kvro_io *io, kvro_io **out, kvro_error *err, const char *fmt, ...)
    KVRO_PRINTF(4, 5);
static kvro_status io_named(kvro_io *io, kvro_io **out, kvro_error *err, const char *fmt, ...)
{
    char name[KVRO_ERROR_SOURCE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (!(io->name = strdup(name))) {
        kvro_io_close(io);
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    }
    *out = io;
    return KVRO_OK;
}

/* Only what pread can serve is an image: a regular file or a block
 * device. A FIFO or a terminal would block or lose what was read. */
static kvro_status check_fd(int fd, kvro_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return kvro_error_set(err, kvro_status_from_errno(errno), "cannot stat: %s",
                              strerror(errno));
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
        return KVRO_OK;
    if (S_ISDIR(st.st_mode))
        return kvro_error_set(err, KVRO_E_IS_DIR, "is a directory, not an image");
    return kvro_error_set(err, KVRO_E_UNSUPPORTED,
                          "not a regular file or block device (a pipe can be read into memory "
                          "first)");
}

/* An object of KIND over FD, if the checks so far (S) passed; an owned FD
 * is closed on any failure, as the constructors promise. */
static kvro_status wrap_fd(io_kind kind, int fd, int flags, bool own, kvro_status s,
                           kvro_io **out, kvro_error *err)
{
    kvro_io *io = NULL;
    if (s == KVRO_OK)
        s = io_new(kind, flags, &io, err);
    if (s != KVRO_OK) {
        if (own && fd >= 0)
            close(fd);
        return s;
    }
    io->fd = fd;
    io->own_fd = own;
    return io_named(io, out, err, "fd:%d", fd);
}

kvro_status kvro_io_from_fd(int fd, int flags, kvro_io **out, kvro_error *err)
{
    kvro__error_clear(err);
    if (out)
        *out = NULL;
    bool own = (flags & KVRO_IO_OWN_FD) != 0;
    kvro_status s = KVRO_OK;
    if (!out || fd < 0 || (flags & ~(KVRO_IO_RDWR | KVRO_IO_OWN_FD)))
        s = kvro_error_set(err, KVRO_E_INVALID, "bad arguments (fd %d, flags %d)", fd, flags);
    else
        s = check_fd(fd, err);
    return wrap_fd(IO_FD, fd, flags, own, s, out, err);
}

kvro_status kvro__io_from_path_fd(int fd, const char *path, int flags, kvro_io **out,
                                  kvro_error *err)
{
    kvro_io *io;
    kvro_status s = kvro_io_from_fd(fd, flags | KVRO_IO_OWN_FD, &io, err);
    if (s == KVRO_OK && !(io->path = strdup(path)))
        s = kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    if (s == KVRO_OK)
        s = kvro_io_set_name(io, path, err);
    if (s != KVRO_OK && io) {
        kvro_io_close(io);
        io = NULL;
    }
    *out = io;
    return kvro_error_context(err, s, path, NULL);
}

kvro_status kvro_io_open_path(const char *path, int flags, kvro_io **out, kvro_error *err)
{
    kvro__error_clear(err);
    if (!path || !out || (flags & ~KVRO_IO_RDWR))
        return kvro_error_set(err, KVRO_E_INVALID, "bad arguments");
    *out = NULL;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (check_fd then
     * refuses it); it changes nothing for files and block devices. */
    int fd = open(path, ((flags & KVRO_IO_RDWR) ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY |
                            O_NONBLOCK);
    if (fd < 0)
        return kvro_error_context(err,
                                  kvro_error_set(err, kvro_status_from_errno(errno),
                                                 "cannot open: %s", strerror(errno)),
                                  path, NULL);
    return kvro__io_from_path_fd(fd, path, flags, out, err);
}

kvro_status kvro_io_sink_fd(int fd, int flags, kvro_io **out, kvro_error *err)
{
    kvro__error_clear(err);
    if (out)
        *out = NULL;
    bool own = (flags & KVRO_IO_OWN_FD) != 0;
    kvro_status s = !out || fd < 0 || (flags & ~KVRO_IO_OWN_FD)
                        ? kvro_error_set(err, KVRO_E_INVALID, "bad arguments (fd %d)", fd)
                        : KVRO_OK;
    return wrap_fd(IO_SINK, fd, KVRO_IO_RDWR, own, s, out, err);
}

static kvro_status memory(const void *data, void *rw, size_t len, kvro_io **out,
                          kvro_error *err)
{
    kvro__error_clear(err);
    if (out)
        *out = NULL;
    if (!out || (!data && len) || len > INT64_MAX)
        return kvro_error_set(err, KVRO_E_INVALID, "bad arguments");
    kvro_io *io;
    kvro_status s = io_new(IO_MEMORY, rw ? KVRO_IO_RDWR : 0, &io, err);
    if (s != KVRO_OK)
        return s;
    io->mem = data;
    io->mem_rw = rw;
    io->mem_len = (int64_t)len;
    return io_named(io, out, err, "memory:%p+%zu", data, len);
}

kvro_status kvro_io_from_memory(const void *data, size_t len, kvro_io **out, kvro_error *err)
{
    return memory(data, NULL, len, out, err);
}

kvro_status kvro_io_from_memory_rw(void *data, size_t len, kvro_io **out, kvro_error *err)
{
    return memory(data, data, len, out, err);
}

kvro_status kvro_io_window(kvro_io *base, int64_t offset, int64_t length, kvro_io **out,
                           kvro_error *err)
{
    kvro__error_clear(err);
    if (out)
        *out = NULL;
    if (!base || !out || offset < 0 || length < -1)
        return kvro_error_set(err, KVRO_E_INVALID, "bad window arguments");
    int64_t size;
    kvro_status s = kvro_io_size(base, &size, err);
    if (s != KVRO_OK)
        return s;
    if (offset > size)
        return kvro_error_context(err,
                                  kvro_error_set(err, KVRO_E_INVALID,
                                                 "the window at %lld starts past the end (%lld "
                                                 "bytes)",
                                                 (long long)offset, (long long)size),
                                  base->name, NULL);
    if (length >= 0 && length > size - offset)
        return kvro_error_context(err,
                                  kvro_error_set(err, KVRO_E_INVALID,
                                                 "the window of %lld bytes at %lld ends past "
                                                 "the end (%lld bytes)",
                                                 (long long)length, (long long)offset,
                                                 (long long)size),
                                  base->name, NULL);
    kvro_io *io;
    s = io_new(IO_WINDOW, base->writable ? KVRO_IO_RDWR : 0, &io, err);
    if (s != KVRO_OK)
        return s;
    io->base = kvro_io_ref(base);
    io->off = offset;
    io->len = length >= 0 ? length : size - offset;
    return io_named(io, out, err, "%s@%lld+%lld", base->name, (long long)offset,
                    (long long)io->len);
}

kvro_status kvro_io_from_callbacks(const kvro_io_callbacks *cb, void *ctx, const char *name,
                                   int flags, kvro_io **out, kvro_error *err)
{
    kvro__error_clear(err);
    if (out)
        *out = NULL;
    if (!cb || !out || !cb->read || !cb->size || (flags & ~KVRO_IO_RDWR))
        return kvro_error_set(err, KVRO_E_INVALID, "callbacks need read and size");
    if ((flags & KVRO_IO_RDWR) && !cb->write)
        return kvro_error_set(err, KVRO_E_INVALID, "read-write callbacks need write");
    kvro_io *io;
    kvro_status s = io_new(IO_CALLBACKS, flags, &io, err);
    if (s != KVRO_OK)
        return s;
    io->cb = *cb;
    io->ctx = ctx;
    if (name)
        return io_named(io, out, err, "%s", name);
    return io_named(io, out, err, "callbacks:%p", ctx);
}

kvro_io *kvro_io_ref(kvro_io *io)
{
    if (io)
        atomic_fetch_add(&io->refs, 1);
    return io;
}

void kvro_io_close(kvro_io *io)
{
    if (!io || atomic_fetch_sub(&io->refs, 1) != 1)
        return;
    if (io->own_fd && io->fd >= 0)
        close(io->fd);
    if (io->kind == IO_CALLBACKS && io->cb.close)
        io->cb.close(io->ctx);
    kvro_io_close(io->base);
    free(io->path);
    free(io->name);
    free(io);
}

kvro_status kvro_io_set_name(kvro_io *io, const char *name, kvro_error *err)
{
    kvro__error_clear(err);
    if (!io || !name)
        return kvro_error_set(err, KVRO_E_INVALID, "NULL argument");
    char *n = strdup(name);
    if (!n)
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    free(io->name);
    io->name = n;
    return KVRO_OK;
}

const char *kvro_io_name(const kvro_io *io)
{
    return io ? io->name : NULL;
}

bool kvro_io_writable(const kvro_io *io)
{
    return io && io->writable;
}

/* ------------------------------------------------------------ operations */

static kvro_status io_fail(kvro_error *err, int e, const char *what, int64_t off)
{
    return kvro_error_set(err, KVRO_E_IO, "cannot %s at offset %lld: %s", what, (long long)off,
                          strerror(e));
}

kvro_status kvro_io_size(kvro_io *io, int64_t *size, kvro_error *err)
{
    if (!io || !size)
        return kvro_error_set(err, KVRO_E_INVALID, "NULL argument");
    *size = 0;
    struct stat st;
    int e = 0;
    switch (io->kind) {
    case IO_FD:
        if (fstat(io->fd, &st) != 0)
            return kvro_error_set(err, KVRO_E_IO, "cannot stat: %s", strerror(errno));
        if (S_ISBLK(st.st_mode)) {
            uint64_t bytes;
            if (ioctl(io->fd, BLKGETSIZE64, &bytes) != 0)
                return kvro_error_set(err, KVRO_E_IO, "cannot size the device: %s",
                                      strerror(errno));
            *size = (int64_t)bytes;
        } else {
            *size = (int64_t)st.st_size;
        }
        return KVRO_OK;
    case IO_SINK:
        *size = io->written;
        return KVRO_OK;
    case IO_MEMORY:
        *size = io->mem_len;
        return KVRO_OK;
    case IO_WINDOW:
        *size = io->len;
        return KVRO_OK;
    case IO_CALLBACKS:
        if ((e = io->cb.size(io->ctx, size)) != 0 || *size < 0) {
            *size = 0;
            return kvro_error_set(err, KVRO_E_IO, "cannot size the device: %s",
                                  e ? strerror(e) : "negative size");
        }
        return KVRO_OK;
    }
    return KVRO_E_INVALID;
}

kvro_status kvro_io_read(kvro_io *io, int64_t off, void *buf, size_t n, size_t *got,
                         kvro_error *err)
{
    if (!io || !got || (!buf && n))
        return kvro_error_set(err, KVRO_E_INVALID, "NULL argument");
    *got = 0;
    if (off < 0 || (int64_t)n < 0 || (int64_t)n > INT64_MAX - off)
        return kvro_error_set(err, KVRO_E_INVALID, "read of %zu bytes at %lld", n,
                              (long long)off);
    int e;
    switch (io->kind) {
    case IO_FD:
        if ((e = kvro__pread(io->fd, buf, n, off, got)) != 0)
            return io_fail(err, e, "read", off + (int64_t)*got);
        return KVRO_OK;
    case IO_SINK:
        return kvro_error_set(err, KVRO_E_UNSUPPORTED, "write-only (a sink)");
    case IO_MEMORY:
        if (off < io->mem_len) {
            *got = (int64_t)n < io->mem_len - off ? n : (size_t)(io->mem_len - off);
            if (*got) /* BUF may be NULL for an empty read */
                memcpy(buf, io->mem + off, *got);
        }
        return KVRO_OK;
    case IO_WINDOW:
        if (off >= io->len)
            return KVRO_OK;
        return kvro_io_read(io->base, io->off + off, buf,
                            (int64_t)n < io->len - off ? n : (size_t)(io->len - off), got, err);
    case IO_CALLBACKS:
        while (*got < n) {
            size_t k = 0;
            if ((e = io->cb.read(io->ctx, off + (int64_t)*got, (char *)buf + *got, n - *got, &k)))
                return io_fail(err, e, "read", off + (int64_t)*got);
            if (k == 0)
                break;
            if (k > n - *got) /* a callback that claims more than asked is broken */
                return io_fail(err, EIO, "read", off + (int64_t)*got);
            *got += k;
        }
        return KVRO_OK;
    }
    return KVRO_E_INVALID;
}

kvro_status kvro_io_write(kvro_io *io, int64_t off, const void *buf, size_t n, kvro_error *err)
{
    if (!io || (!buf && n))
        return kvro_error_set(err, KVRO_E_INVALID, "NULL argument");
    if (!io->writable)
        return kvro_error_set(err, KVRO_E_READ_ONLY, "opened read-only");
    if (off < 0 || (int64_t)n < 0 || (int64_t)n > INT64_MAX - off)
        return kvro_error_set(err, KVRO_E_INVALID, "write of %zu bytes at %lld", n,
                              (long long)off);
    int e;
    switch (io->kind) {
    case IO_FD:
        if ((e = kvro__pwrite(io->fd, buf, n, off)) != 0)
            return kvro_error_set(err, kvro_status_from_errno(e) == KVRO_E_NO_SPACE
                                           ? KVRO_E_NO_SPACE
                                           : KVRO_E_IO,
                                  "cannot write at offset %lld: %s", (long long)off, strerror(e));
        return KVRO_OK;
    case IO_SINK:
        if (off != io->written)
            return kvro_error_set(err, KVRO_E_INVALID,
                                  "a sink is written in order: %lld bytes were written, not %lld",
                                  (long long)io->written, (long long)off);
        if ((e = kvro__pwrite(io->fd, buf, n, -1)) != 0)
            return kvro_error_set(err, e == ENOSPC || e == EDQUOT ? KVRO_E_NO_SPACE : KVRO_E_IO,
                                  "cannot write at offset %lld: %s", (long long)off, strerror(e));
        io->written += (int64_t)n;
        return KVRO_OK;
    case IO_MEMORY:
    case IO_WINDOW: {
        int64_t end = io->kind == IO_MEMORY ? io->mem_len : io->len;
        if ((int64_t)n > end || off > end - (int64_t)n)
            return kvro_error_set(err, KVRO_E_NO_SPACE,
                                  "write of %zu bytes at %lld past the end (%lld bytes)", n,
                                  (long long)off, (long long)end);
        if (io->kind == IO_WINDOW)
            return kvro_io_write(io->base, io->off + off, buf, n, err);
        if (n)
            memcpy(io->mem_rw + off, buf, n);
        return KVRO_OK;
    }
    case IO_CALLBACKS:
        for (size_t done = 0; done < n;) {
            size_t k = 0;
            e = io->cb.write(io->ctx, off + (int64_t)done, (const char *)buf + done, n - done, &k);
            if (!e && (k == 0 || k > n - done))
                e = EIO;
            if (e == ENOSPC || e == EDQUOT)
                return kvro_error_set(err, KVRO_E_NO_SPACE, "cannot write at offset %lld: %s",
                                      (long long)(off + (int64_t)done), strerror(e));
            if (e)
                return io_fail(err, e, "write", off + (int64_t)done);
            done += k;
        }
        return KVRO_OK;
    }
    return KVRO_E_INVALID;
}

kvro_status kvro_io_flush(kvro_io *io, kvro_error *err)
{
    if (!io)
        return kvro_error_set(err, KVRO_E_INVALID, "NULL argument");
    int e = 0;
    switch (io->kind) {
    case IO_FD:
    case IO_SINK: /* a pipe has nothing to sync: EINVAL */
        if (io->writable && fsync(io->fd) != 0 && errno != EINVAL && errno != EROFS)
            e = errno;
        break;
    case IO_MEMORY:
        break;
    case IO_WINDOW:
        return kvro_io_flush(io->base, err);
    case IO_CALLBACKS:
        if (io->writable && io->cb.flush)
            e = io->cb.flush(io->ctx);
        break;
    }
    return e ? kvro_error_set(err, KVRO_E_IO, "cannot flush: %s", strerror(e)) : KVRO_OK;
}

/* ------------------------------------------------------------- zero copy */

const void *kvro_io_memory(const kvro_io *io, size_t *len)
{
    const kvro_io *top = io;
    int64_t off = 0;
    while (io && io->kind == IO_WINDOW) {
        off += io->off;
        io = io->base;
    }
    if (!io || io->kind != IO_MEMORY)
        return NULL;
    if (len)
        *len = (size_t)(top->kind == IO_WINDOW ? top->len : io->mem_len);
    return io->mem + off;
}

int kvro_io_fd(const kvro_io *io, int64_t *offset)
{
    int64_t off = 0;
    while (io && io->kind == IO_WINDOW) {
        off += io->off;
        io = io->base;
    }
    if (!io || io->kind != IO_FD)
        return -1;
    if (offset)
        *offset = off;
    return io->fd;
}

bool kvro__io_identity(const kvro_io *io, kvro__io_id *id)
{
    memset(id, 0, sizeof *id);
    const kvro_io *top = io;
    while (io && io->kind == IO_WINDOW) {
        id->offset += io->off;
        io = io->base;
    }
    if (!io || io->kind != IO_FD)
        return false;
    struct stat st;
    if (fstat(io->fd, &st) != 0)
        return false;
    id->path = io->path;
    id->fd = io->fd;
    id->file_size = (int64_t)st.st_size;
    id->mtime = (int64_t)st.st_mtim.tv_sec;
    id->mtime_nsec = (int32_t)st.st_mtim.tv_nsec;
    id->length = top->kind == IO_WINDOW ? top->len : id->file_size;
    return true;
}
