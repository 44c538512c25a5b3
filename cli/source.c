/*
 * source.c — opening mkkv's SOURCE operand: a path (kvro_open), standard
 * input ("-"), or a window of either (--image-offset, --image-length) for
 * an image inside a bigger file. The last two become a kvro I/O object
 * opened with kvro_open_io, so the library sees one image whatever it
 * came from.
 *
 * Standard input: a regular file or block device redirected there is read
 * in place through the descriptor (from its current position, as a reader
 * of the stream would); a pipe is read whole, into memory up to
 * STDIN_MEMORY_MAX (or $KVRO_STDIN_MEMORY_MAX) and past that into an
 * unlinked temporary file, since an image is read at random and a pipe
 * can not be.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STDIN_NAME "standard input"
/* What a pipe may take in memory before it goes to a temporary file; the
 * help text says 64 MiB. */
#define STDIN_MEMORY_MAX ((int64_t)64 << 20)
enum { COPY_CHUNK = 64 << 10 };

bool source_is_stdin(const char *source)
{
    return !strcmp(source, "-");
}

const char *source_name(const char *source)
{
    return source_is_stdin(source) ? STDIN_NAME : source;
}

/* Reports ERR (status S) as a failure of SOURCE itself. */
static int fail(kvro_error *err, kvro_status s, const char *source)
{
    err->status = s;
    error_about(err, source, NULL);
    return report(err);
}

static int fail_errno(const char *what, const char *where)
{
    kvro_error err;
    int e = errno;
    kvro_error_set(&err, kvro_status_from_errno(e), "%s%s%s: %s", what, where ? " " : "",
                   where ? where : "", strerror(e));
    return fail(&err, err.status, STDIN_NAME);
}

/* ------------------------------------------------------- a pipe in memory */

/* Standard input read into memory, served through callbacks rather than
 * kvro_io_from_memory (which borrows its buffer): the buffer is then the
 * object's and is freed when the last reference goes, whoever holds it. */
typedef struct membuf {
    unsigned char *data;
    size_t len;
} membuf;

static int mem_read(void *ctx, int64_t off, void *buf, size_t n, size_t *got)
{
    const membuf *m = ctx;
    *got = 0;
    if ((uint64_t)off < m->len) {
        *got = n < m->len - (size_t)off ? n : m->len - (size_t)off;
        memcpy(buf, m->data + off, *got);
    }
    return 0;
}

static int mem_size(void *ctx, int64_t *size)
{
    *size = (int64_t)((const membuf *)ctx)->len;
    return 0;
}

static void mem_close(void *ctx)
{
    membuf *m = ctx;
    free(m->data);
    free(m);
}

/* Reads into *M what remains of standard input, up to MAX bytes; *MORE
 * tells whether there is more after that. Returns 0, or an errno value. */
static int read_upto(membuf *m, size_t max, bool *more)
{
    size_t cap = 0;
    *more = false;
    for (;;) {
        if (m->len == cap) {
            if (cap == max) {
                /* Full: one byte more says whether the input goes on. */
                unsigned char probe;
                ssize_t r;
                while ((r = read(STDIN_FILENO, &probe, 1)) < 0 && errno == EINTR)
                    ;
                if (r < 0)
                    return errno;
                if (r == 1) {
                    *more = true;
                    unsigned char *d = realloc(m->data, m->len + 1);
                    if (!d)
                        return ENOMEM;
                    m->data = d;
                    m->data[m->len++] = probe;
                }
                return 0;
            }
            size_t c =
                cap ? (cap < max / 2 ? 2 * cap : max) : (max < COPY_CHUNK ? max : COPY_CHUNK);
            unsigned char *d = realloc(m->data, c ? c : 1);
            if (!d)
                return ENOMEM;
            m->data = d;
            cap = c;
            continue;
        }
        ssize_t r = read(STDIN_FILENO, m->data + m->len, cap - m->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            return 0;
        m->len += (size_t)r;
    }
}

/* The limit for memory: STDIN_MEMORY_MAX unless $KVRO_STDIN_MEMORY_MAX. */
static int memory_max(const common_opts *o, size_t *max)
{
    int64_t v = STDIN_MEMORY_MAX;
    const char *env = getenv("KVRO_STDIN_MEMORY_MAX");
    if (env && *env && !parse_size(env, &v))
        return usage_error(o->cmd,
                           "invalid KVRO_STDIN_MEMORY_MAX '%s': want a byte count (digits, "
                           "optional K/M/G/T)",
                           env);
    *max = (uint64_t)v > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)v;
    return EXIT_OK;
}

/* ------------------------------------------------ a pipe in a temporary file */

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* An unlinked temporary file in $TMPDIR (else /tmp), or -1 with errno. */
static int temp_file(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    /* No O_TMPFILE on that filesystem: a named file, unlinked at once. */
    char *tmpl = NULL;
    if (asprintf(&tmpl, "%s/mkkv-stdin-XXXXXX", dir) < 0) {
        errno = ENOMEM;
        return -1;
    }
    fd = mkostemp(tmpl, O_CLOEXEC);
    if (fd >= 0)
        unlink(tmpl);
    free(tmpl);
    return fd;
}

/* Writes HEAD (what was read so far) and the rest of standard input to a
 * temporary file, which becomes *IO. */
static int spill(membuf *head, kvro_io **io)
{
    const char *env = getenv("TMPDIR");
    const char *dir = env && *env ? env : "/tmp";
    int fd = temp_file(dir);
    if (fd < 0)
        return fail_errno("cannot create a temporary file in", dir);
    int rc = EXIT_OK;
    if (write_all(fd, head->data, head->len) != 0)
        rc = fail_errno("cannot write a temporary copy in", dir);
    /* The head's buffer is no longer needed: copy through a small one. */
    free(head->data);
    head->data = NULL;
    head->len = 0;
    unsigned char buf[COPY_CHUNK];
    while (rc == EXIT_OK) {
        ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = fail_errno("cannot read", NULL);
        else if (r == 0)
            break;
        else if (write_all(fd, buf, (size_t)r) != 0)
            rc = fail_errno("cannot write a temporary copy in", dir);
    }
    if (rc != EXIT_OK) {
        close(fd);
        return rc;
    }
    kvro_error err;
    if (kvro_io_from_fd(fd, KVRO_IO_OWN_FD, io, &err) != KVRO_OK) /* closes fd */
        return fail(&err, err.status, STDIN_NAME);
    return EXIT_OK;
}

/* ---------------------------------------------------------- standard input */

/* A file or block device on standard input: read in place, from its
 * current position. */
static int stdin_file(kvro_io **io)
{
    kvro_error err;
    kvro_io *whole;
    if (kvro_io_from_fd(STDIN_FILENO, KVRO_IO_RDONLY, &whole, &err) != KVRO_OK)
        return fail(&err, err.status, STDIN_NAME);
    off_t pos = lseek(STDIN_FILENO, 0, SEEK_CUR);
    if (pos <= 0) {
        *io = whole;
        return EXIT_OK;
    }
    kvro_status s = kvro_io_window(whole, (int64_t)pos, -1, io, &err);
    kvro_io_close(whole);
    return s == KVRO_OK ? EXIT_OK : fail(&err, s, STDIN_NAME);
}

static int stdin_pipe(const common_opts *o, kvro_io **io)
{
    size_t max = 0;
    int rc = memory_max(o, &max);
    if (rc != EXIT_OK)
        return rc;
    membuf *m = calloc(1, sizeof *m);
    bool more = false;
    int e = m ? read_upto(m, max, &more) : ENOMEM;
    if (e) {
        errno = e;
        rc = fail_errno(e == ENOMEM ? "cannot hold it in memory" : "cannot read", NULL);
    } else if (more) {
        rc = spill(m, io);
    } else {
        static const kvro_io_callbacks cb = {
            .read = mem_read, .size = mem_size, .close = mem_close};
        kvro_error err;
        if (kvro_io_from_callbacks(&cb, m, STDIN_NAME, KVRO_IO_RDONLY, io, &err) != KVRO_OK)
            rc = fail(&err, err.status, STDIN_NAME);
        else
            m = NULL; /* the object's now */
    }
    if (m)
        mem_close(m);
    return rc;
}

/* Standard input as an I/O object named "standard input". */
static int stdin_io(const common_opts *o, kvro_io **io)
{
    *io = NULL;
    struct stat st;
    if (fstat(STDIN_FILENO, &st) != 0)
        return fail_errno("cannot use it", NULL);
    /* An image is never typed: a terminal would only wait for one. */
    if (isatty(STDIN_FILENO))
        return usage_error(o->cmd,
                           "refusing to read an image from a terminal: pipe or redirect one to "
                           "standard input (mkkv %s - < IMAGE)",
                           o->cmd->name);
    int rc = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) ? stdin_file(io) : stdin_pipe(o, io);
    if (rc != EXIT_OK)
        return rc;
    kvro_error err;
    int64_t size;
    kvro_status s = kvro_io_set_name(*io, STDIN_NAME, &err);
    if (s == KVRO_OK)
        s = kvro_io_size(*io, &size, &err);
    if (s == KVRO_OK && size == 0)
        s = kvro_error_set(&err, KVRO_E_INVALID, "empty: nothing was piped or redirected to it");
    if (s != KVRO_OK) {
        kvro_io_close(*io);
        *io = NULL;
        return fail(&err, s, STDIN_NAME);
    }
    return EXIT_OK;
}

/* ------------------------------------------------------------------ windows */

/* Replaces *IO (named NAME) by the window --image-offset/--image-length
 * pick, after checking that it lies inside. */
static int image_window(const common_opts *o, const char *name, kvro_io **io)
{
    kvro_error err;
    int64_t size, off = o->image_offset, len = o->image_length;
    kvro_status s = kvro_io_size(*io, &size, &err);
    if (s != KVRO_OK)
        return fail(&err, s, name);
    if (off > size)
        return fail(&err,
                    kvro_error_set(&err, KVRO_E_INVALID,
                                   "--image-offset %lld is past its end (%lld bytes)",
                                   (long long)off, (long long)size),
                    name);
    if (len >= 0 && len > size - off)
        return fail(&err,
                    kvro_error_set(&err, KVRO_E_INVALID,
                                   "--image-offset %lld with --image-length %lld ends at byte "
                                   "%lld, past its end (%lld bytes)",
                                   (long long)off, (long long)len, (long long)off + len,
                                   (long long)size),
                    name);
    kvro_io *w;
    s = kvro_io_window(*io, off, len, &w, &err);
    if (s != KVRO_OK)
        return fail(&err, s, name);
    kvro_io_close(*io);
    *io = w;
    return EXIT_OK;
}

/* SOURCE (a path, or "-") as an I/O object, windowed if asked. */
static int source_io(const char *source, const common_opts *o, kvro_io **io)
{
    const char *name = source_name(source);
    int rc = EXIT_OK;
    if (source_is_stdin(source)) {
        rc = stdin_io(o, io);
    } else {
        kvro_error err;
        kvro_status s = kvro_io_open_path(source, KVRO_IO_RDONLY, io, &err);
        if (s == KVRO_E_IS_DIR)
            kvro_error_set(&err, s,
                           "is a directory: --image-offset and --image-length pick an image "
                           "inside a file");
        if (s != KVRO_OK)
            rc = fail(&err, s, name);
    }
    if (rc == EXIT_OK && o->window && (rc = image_window(o, name, io)) != EXIT_OK) {
        kvro_io_close(*io);
        *io = NULL;
    }
    return rc;
}

/* ------------------------------------------------------------------ opening */

/* Progress reported by the library while opening (e.g. indexing a tar.gz). */
static void open_progress(void *arg, const char *what, int64_t done, int64_t total)
{
    progress_line *p = arg;
    if (!p->what)
        progress_start(p, what, false);
    progress_update(p, -1, done, total);
}

static void open_warning(void *arg, const char *message)
{
    fprintf(stderr, "mkkv: warning: %s: %s\n", quoted(arg), quoted(message));
}

int open_source(const char *source, const common_opts *o, kvro **kv)
{
    *kv = NULL;
    const char *name = source_name(source);
    kvro_io *io = NULL;
    if (source_is_stdin(source) || o->window) {
        int rc = source_io(source, o, &io);
        if (rc != EXIT_OK)
            return rc;
    }
    kvro_error err;
    kvro_options opts = o->open;
    opts.warning = open_warning;
    opts.warning_arg = (void *)name;
    progress_line p = {0};
    if (!o->quiet && isatty(STDERR_FILENO)) {
        opts.progress = open_progress;
        opts.progress_arg = &p;
    }
    kvro_status s =
        io ? kvro_open_io(io, &opts, kv, &err) : kvro_open_opts(source, &opts, kv, &err);
    kvro_io_close(io);
    if (p.what)
        progress_done(&p);
    return s == KVRO_OK ? EXIT_OK : report(&err);
}
