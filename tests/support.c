/*
 * support.c — see support.h.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "check.h"

static void die(const char *what, const char *path)
{
    fprintf(stderr, "test support: %s %s: %s\n", what, path ? path : "", strerror(errno));
    abort();
}

char *t_vfmt(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        die("vasprintf", NULL);
    return s;
}

char *t_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = t_vfmt(fmt, ap);
    va_end(ap);
    return s;
}

char *t_tempdir(const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    char *tmpl = t_fmt("%s/kvro-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag ? tag : "test");
    if (!mkdtemp(tmpl))
        die("mkdtemp", tmpl);
    return tmpl;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void t_rmrf(const char *path)
{
    /* Make every directory writable first so read-only ones can go. */
    char *cmd = t_fmt("chmod -R u+rwX '%s' 2>/dev/null", path);
    if (system(cmd) < 0)
        die("system", cmd);
    free(cmd);
    nftw(path, rm_one, 64, FTW_DEPTH | FTW_PHYS);
}

char *t_join(const char *a, const char *b)
{
    return t_fmt("%s/%s", a, b);
}

void t_mkdirs(const char *path)
{
    char *p = strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            die("mkdir", p);
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        die("mkdir", p);
    free(p);
}

static void mkparents(const char *path)
{
    char *p = strdup(path);
    char *slash = strrchr(p, '/');
    if (slash && slash != p) {
        *slash = '\0';
        t_mkdirs(p);
    }
    free(p);
}

void t_write(const char *path, const void *data, size_t n)
{
    mkparents(path);
    FILE *f = fopen(path, "wb");
    if (!f)
        die("fopen", path);
    if (n && fwrite(data, 1, n, f) != n)
        die("fwrite", path);
    if (fclose(f) != 0)
        die("fclose", path);
}

uint8_t t_pattern(uint64_t seed, uint64_t i)
{
    /* splitmix64 of (seed, i): cheap, and no period a block size divides. */
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint8_t)(z ^ (z >> 31));
}

void t_write_pattern(const char *path, uint64_t seed, uint64_t n)
{
    mkparents(path);
    FILE *f = fopen(path, "wb");
    if (!f)
        die("fopen", path);
    unsigned char buf[65536];
    for (uint64_t i = 0; i < n;) {
        size_t k = 0;
        while (k < sizeof buf && i < n)
            buf[k++] = t_pattern(seed, i++);
        if (fwrite(buf, 1, k, f) != k)
            die("fwrite", path);
    }
    if (fclose(f) != 0)
        die("fclose", path);
}

char *t_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("fopen", path);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        size_t k = fread(buf + len, 1, cap - len, f);
        len += k;
        if (len < cap)
            break;
        cap *= 2;
        buf = realloc(buf, cap + 1);
    }
    fclose(f);
    buf[len] = '\0';
    if (n)
        *n = len;
    return buf;
}

int t_run(const char *cmd, char **out, char **err)
{
    char *dir = t_tempdir("run");
    char *o = t_join(dir, "out"), *e = t_join(dir, "err");
    char *full = t_fmt("(%s) >'%s' 2>'%s' </dev/null", cmd, o, e);
    int st = system(full);
    int code = st < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (out)
        *out = t_slurp(o, NULL);
    if (err)
        *err = t_slurp(e, NULL);
    t_rmrf(dir);
    free(full);
    free(o);
    free(e);
    free(dir);
    return code;
}

void t_make_tree(const char *root, const t_entry *e, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        char *p = t_join(root, e[i].key);
        if (e[i].size < 0)
            t_mkdirs(p);
        else
            t_write_pattern(p, seed + i, (uint64_t)e[i].size);
        free(p);
    }
}

int t_vsh(const char *prefix, char **out, char **err, const char *fmt, va_list ap)
{
    char *body = t_vfmt(fmt, ap);
    char *cmd = t_fmt("%s%s", prefix ? prefix : "", body);
    int rc = t_run(cmd, out, err);
    free(cmd);
    free(body);
    return rc;
}

int t_sh(char **out, char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = t_vsh(NULL, out, err, fmt, ap);
    va_end(ap);
    return rc;
}

void t_sh_ok(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = t_vfmt(fmt, ap);
    va_end(ap);
    char *out = NULL, *err = NULL;
    int rc = t_run(cmd, &out, &err);
    if (rc != 0)
        fail_msg("'%s' failed (%d): %s%s", cmd, rc, out, err);
    free(out);
    free(err);
    free(cmd);
}

int t_mkkv(char **out, char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = t_vsh("'" KVRO_TEST_MKKV "' ", out, err, fmt, ap);
    va_end(ap);
    return rc;
}

void t_put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> 8 * i);
}

void t_mbr_entry(unsigned char *d, int slot, uint8_t type, uint32_t lba, uint32_t count)
{
    unsigned char *e = d + 446 + 16 * slot;
    e[4] = type;
    t_put_le32(e + 8, lba);
    t_put_le32(e + 12, count);
    d[510] = 0x55;
    d[511] = 0xAA;
}

int t_have(const char *prog)
{
    char *cmd = t_fmt("command -v '%s' >/dev/null 2>&1", prog);
    int ok = system(cmd) == 0;
    free(cmd);
    return ok;
}

/* ------------------------------------------------ a fault-injecting I/O object */

static void die_kvro(const char *what, const kvro_error *e)
{
    char msg[1400] = "";
    if (e)
        kvro_error_format(e, msg, sizeof msg);
    fprintf(stderr, "test support: %s: %s\n", what, msg);
    abort();
}

void t_fault_reset(t_fault *f)
{
    atomic_store(&f->reads, 0);
    atomic_store(&f->writes, 0);
    atomic_store(&f->flushes, 0);
    atomic_store(&f->sizes, 0);
    atomic_store(&f->read_bytes, 0);
    atomic_store(&f->write_bytes, 0);
    atomic_store(&f->injected, 0);
    atomic_store(&f->closes, 0);
}

void t_fault_init(t_fault *f)
{
    memset(f, 0, sizeof *f);
    f->fail_read = f->fail_write = f->fail_flush = f->fail_size = -1;
    atomic_init(&f->reads, 0);
    atomic_init(&f->writes, 0);
    atomic_init(&f->flushes, 0);
    atomic_init(&f->sizes, 0);
    atomic_init(&f->read_bytes, 0);
    atomic_init(&f->write_bytes, 0);
    atomic_init(&f->injected, 0);
    atomic_init(&f->closes, 0);
}

/* Whether call INDEX (of the kind whose failing index is AT) fails: the
 * errno, or 0. *FIRST (if given): whether it is the call at AT itself,
 * rather than one failing after it (sticky). */
static int fault_hit(t_fault *f, long long index, int64_t at, bool *first)
{
    bool hit = at >= 0 && index == at;
    if (first)
        *first = hit;
    if (hit || (f->sticky && atomic_load(&f->injected) > 0)) {
        atomic_fetch_add(&f->injected, 1);
        return f->error ? f->error : EIO;
    }
    return 0;
}

static int fault_errno(kvro_status s)
{
    return s == KVRO_E_NO_SPACE ? ENOSPC : s == KVRO_E_READ_ONLY ? EROFS : EIO;
}

static int fault_read(void *ctx, int64_t off, void *buf, size_t n, size_t *got)
{
    t_fault *f = ctx;
    *got = 0;
    int e = fault_hit(f, atomic_fetch_add(&f->reads, 1), f->fail_read, NULL);
    if (e)
        return e;
    if (f->max_read && n > f->max_read)
        n = f->max_read;
    kvro_status s = kvro_io_read(f->inner, off, buf, n, got, NULL);
    if (s != KVRO_OK)
        return fault_errno(s);
    atomic_fetch_add(&f->read_bytes, (long long)*got);
    return 0;
}

static int fault_size(void *ctx, int64_t *size)
{
    t_fault *f = ctx;
    int e = fault_hit(f, atomic_fetch_add(&f->sizes, 1), f->fail_size, NULL);
    if (e)
        return e;
    return kvro_io_size(f->inner, size, NULL) == KVRO_OK ? 0 : EIO;
}

static int fault_write(void *ctx, int64_t off, const void *buf, size_t n, size_t *done)
{
    t_fault *f = ctx;
    *done = 0;
    bool first;
    int e = fault_hit(f, atomic_fetch_add(&f->writes, 1), f->fail_write, &first);
    if (e) {
        size_t k = !first ? 0 : f->torn < n ? f->torn : n;
        if (k && kvro_io_write(f->inner, off, buf, k, NULL) == KVRO_OK)
            atomic_fetch_add(&f->write_bytes, (long long)k);
        return e;
    }
    if (f->max_write && n > f->max_write)
        n = f->max_write;
    kvro_status s = kvro_io_write(f->inner, off, buf, n, NULL);
    if (s != KVRO_OK)
        return fault_errno(s);
    atomic_fetch_add(&f->write_bytes, (long long)n);
    *done = n;
    return 0;
}

static int fault_flush(void *ctx)
{
    t_fault *f = ctx;
    int e = fault_hit(f, atomic_fetch_add(&f->flushes, 1), f->fail_flush, NULL);
    if (e)
        return e;
    return kvro_io_flush(f->inner, NULL) == KVRO_OK ? 0 : EIO;
}

static void fault_close(void *ctx)
{
    t_fault *f = ctx;
    atomic_fetch_add(&f->closes, 1);
    kvro_io_close(f->inner);
    f->inner = NULL;
}

kvro_io *t_fault_io(t_fault *f, kvro_io *inner, int flags, const char *name)
{
    static const kvro_io_callbacks cb = {
        .read = fault_read,
        .size = fault_size,
        .write = fault_write,
        .flush = fault_flush,
        .close = fault_close,
    };
    if (f->inner) {
        fprintf(stderr, "test support: t_fault_io: this t_fault already wraps an object\n");
        abort();
    }
    f->inner = kvro_io_ref(inner);
    kvro_io *io = NULL;
    kvro_error e;
    if (kvro_io_from_callbacks(&cb, f, name, flags, &io, &e) != KVRO_OK) {
        kvro_io_close(f->inner);
        die_kvro("t_fault_io", &e);
    }
    return io;
}

kvro_io *t_fault_memory(t_fault *f, const void *data, size_t len, const char *name)
{
    kvro_io *mem = NULL;
    kvro_error e;
    if (kvro_io_from_memory(data, len, &mem, &e) != KVRO_OK)
        die_kvro("t_fault_memory", &e);
    kvro_io *io = t_fault_io(f, mem, KVRO_IO_RDONLY, name);
    kvro_io_close(mem);
    return io;
}

kvro_io *t_fault_memory_rw(t_fault *f, void *data, size_t len, const char *name)
{
    kvro_io *mem = NULL;
    kvro_error e;
    if (kvro_io_from_memory_rw(data, len, &mem, &e) != KVRO_OK)
        die_kvro("t_fault_memory_rw", &e);
    kvro_io *io = t_fault_io(f, mem, KVRO_IO_RDWR, name);
    kvro_io_close(mem);
    return io;
}

kvro_io *t_mem_io(const void *data, size_t len)
{
    kvro_io *io = NULL;
    kvro_error e;
    assert_status(kvro_io_from_memory(data, len, &io, &e), KVRO_OK, &e);
    assert_non_null(io);
    return io;
}

kvro_io *t_window(kvro_io *base, int64_t off, int64_t len)
{
    kvro_io *io = NULL;
    kvro_error e;
    assert_status(kvro_io_window(base, off, len, &io, &e), KVRO_OK, &e);
    assert_non_null(io);
    return io;
}

bool t_fd_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

bool t_fd_closed(int fd)
{
    return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

void t_want_detail(const kvro_error *e, const char *needle)
{
    if (!strstr(e->detail, needle))
        fail_msg("detail '%s' does not mention '%s'", e->detail, needle);
}
