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

static void die(const char *what, const char *path)
{
    fprintf(stderr, "test support: %s %s: %s\n", what, path ? path : "", strerror(errno));
    abort();
}

char *t_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        die("vasprintf", NULL);
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

int t_have(const char *prog)
{
    char *cmd = t_fmt("command -v '%s' >/dev/null 2>&1", prog);
    int ok = system(cmd) == 0;
    free(cmd);
    return ok;
}
