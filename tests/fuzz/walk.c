/*
 * walk.c — the bounded tree walk both fuzz harnesses run on whatever an
 * input opened to (see walk.h), checking the KV_RO contract of kvro.h as
 * it goes. Only the public API is used, so a finding is something a real
 * caller could hit.
 *
 * Bounds: sizes come from the archive and may be anything up to its
 * (uncompressed) length, so no buffer is sized from them: every read asks
 * at most BUF_MAX bytes, and the offsets a walk reads at add up to at most
 * READ_WORK, since a .tar.gz read inflates from an access point up to its
 * offset (a small gzip bomb may hold a member of a hundred megabytes).
 */
#include "walk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MAX (64 << 10)
#define CANARY 64
#define READ_WORK ((int64_t)256 << 20)
#define SMALL 100

_Noreturn void fz_broken(const char *file, int line, const char *what)
{
    fprintf(stderr, "kvro fuzz: invariant broken at %s:%d: %s\n", file, line, what);
    __builtin_trap();
}

void fz_error_poison(kvro_error *e)
{
    memset(e, 0x5a, sizeof *e);
}

void fz_check_error(kvro_status s, const kvro_error *e)
{
    if (s == KVRO_OK)
        return;
    FZ_CHECK((unsigned)s < KVRO_STATUS_COUNT);
    FZ_CHECK(e->status == s);
    FZ_CHECK(memchr(e->source, '\0', sizeof e->source) != NULL);
    FZ_CHECK(memchr(e->key, '\0', sizeof e->key) != NULL);
    FZ_CHECK(memchr(e->detail, '\0', sizeof e->detail) != NULL);
    char msg[KVRO_ERROR_SOURCE_MAX + KVRO_ERROR_KEY_MAX + KVRO_ERROR_DETAIL_MAX + 8];
    size_t n = kvro_error_format(e, msg, sizeof msg);
    FZ_CHECK(n < sizeof msg && strlen(msg) == n);
}

typedef struct walker {
    kvro *kv;
    const fz_walk_opts *o;
    int64_t entries, files, work;
    unsigned char *a, *b; /* BUF_MAX + CANARY bytes each */
} walker;

/* ------------------------------------------------------------ listing */

typedef struct names {
    char **v;
    kvro_kind *kind;
    size_t n, cap;
    int64_t limit; /* entries still allowed: the listing is stopped there */
} names;

static void names_free(names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    free(l->kind);
}

static int collect(void *arg, const char *name, kvro_kind kind)
{
    names *l = arg;
    FZ_CHECK(name != NULL && name[0] != '\0' && strchr(name, '/') == NULL);
    FZ_CHECK(strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
    FZ_CHECK(kind == KVRO_KIND_FILE || kind == KVRO_KIND_DIR);
    FZ_CHECK(l->n == 0 || strcmp(l->v[l->n - 1], name) < 0);
    if ((int64_t)l->n >= l->limit)
        return 1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        FZ_CHECK(v != NULL);
        l->v = v;
        kvro_kind *k = realloc(l->kind, cap * sizeof *k);
        FZ_CHECK(k != NULL);
        l->kind = k;
        l->cap = cap;
    }
    l->v[l->n] = strdup(name);
    FZ_CHECK(l->v[l->n] != NULL);
    l->kind[l->n++] = kind;
    return 0;
}

/* -------------------------------------------------------------- reads */

/* Reads LEN bytes of KEY at OFF into BUF, checking that no more than LEN
 * came back (by the status and by the canary after them). */
static kvro_status read_at(walker *w, const char *key, int64_t off, int64_t len, unsigned char *buf,
                           int64_t *got)
{
    kvro_error e;
    fz_error_poison(&e);
    memset(buf + len, 0xa5, CANARY);
    *got = -1;
    kvro_status s = kvro_read(w->kv, key, off, len, buf, got, &e);
    fz_check_error(s, &e);
    FZ_CHECK(*got >= 0 && *got <= len);
    FZ_CHECK(s == KVRO_OK || *got == 0);
    for (int i = 0; i < CANARY; i++)
        FZ_CHECK(buf[len + i] == 0xa5);
    if (s == KVRO_OK && *got > 0 && w->o->on_read)
        w->o->on_read(w->o->arg, key, off, buf, *got);
    return s;
}

/* Reads LEN at OFF, which the file of SIZE bytes must serve in full (up to
 * its end), and compares the bytes with the first read's (A[N0]) where the
 * ranges overlap. */
static void read_check(walker *w, const char *key, int64_t size, int64_t n0, int64_t off,
                       int64_t len)
{
    if (off > w->work)
        return;
    w->work -= off;
    int64_t got;
    kvro_status s = read_at(w, key, off, len, w->b, &got);
    if (s != KVRO_OK && w->o->lenient)
        return;
    FZ_CHECK(s == KVRO_OK);
    int64_t want = off >= size ? 0 : (len < size - off ? len : size - off);
    FZ_CHECK(got == want);
    int64_t end = off + got < n0 ? off + got : n0;
    if (off < end && !w->o->lenient)
        FZ_CHECK(memcmp(w->b, w->a + off, (size_t)(end - off)) == 0);
}

static void read_file(walker *w, const char *key, int64_t size)
{
    int64_t n0 = size < BUF_MAX ? size : BUF_MAX, got;
    kvro_status s = read_at(w, key, 0, n0, w->a, &got);
    if (s != KVRO_OK && w->o->lenient)
        n0 = 0; /* nothing to compare the other reads with */
    else
        FZ_CHECK(s == KVRO_OK && got == n0);
    if (size > 0) {
        read_check(w, key, size, n0, size - 1, 16);
        read_check(w, key, size, n0, size / 2, SMALL);
        read_check(w, key, size, n0, size / 3, 1);
    }
    read_check(w, key, size, n0, n0 / 2, n0 - n0 / 2); /* a cursor mid-way */
    /* At and past the end: nothing, and no offset arithmetic overflows. */
    read_check(w, key, size, n0, size, 16);
    int64_t ends[] = {size + 1, INT64_MAX - 1, INT64_MAX};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        FZ_CHECK(read_at(w, key, ends[i], 16, w->b, &got) == KVRO_OK);
        FZ_CHECK(got == 0);
    }
    FZ_CHECK(read_at(w, key, 0, 0, w->b, &got) == KVRO_OK && got == 0);
    kvro_error e;
    fz_error_poison(&e);
    s = kvro_read(w->kv, key, 0, 0, NULL, &got, &e); /* no bytes, no buffer */
    fz_check_error(s, &e);
    FZ_CHECK(s == KVRO_OK && got == 0);
    s = kvro_read(w->kv, key, -1, 1, w->b, &got, &e);
    fz_check_error(s, &e);
    FZ_CHECK(s == KVRO_E_INVALID && got == 0);
    s = kvro_read(w->kv, key, 0, -1, w->b, &got, &e);
    fz_check_error(s, &e);
    FZ_CHECK(s == KVRO_E_INVALID && got == 0);
}

/* --------------------------------------------------------------- walk */

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *k = malloc(n);
    FZ_CHECK(k != NULL);
    snprintf(k, n, "%s%s%s", dir, *dir ? "/" : "", name);
    return k;
}

static void walk_dir(walker *w, const char *dir, int depth);

/* One listed entry: stat, mem and size agree with the listing and each
 * other; a file is read, a directory walked. */
static void visit(walker *w, const char *key, kvro_kind listed, int depth)
{
    kvro_info st;
    kvro_error e;
    fz_error_poison(&e);
    kvro_status s = kvro_stat(w->kv, key, &st, &e);
    fz_check_error(s, &e);
    if (strlen(key) > KVRO_KEY_MAX) { /* reached through links: no key names it */
        FZ_CHECK(s == KVRO_E_BAD_KEY);
        return;
    }
    if (s == KVRO_OK) {
        FZ_CHECK(st.kind == listed);
        FZ_CHECK(st.kind == KVRO_KIND_DIR ? st.size == 0 : st.size >= 0);
        FZ_CHECK(st.mtime_nsec >= 0 && st.mtime_nsec < 1000000000);
        FZ_CHECK(!st.has_mode || st.mode <= 07777);
    } else {
        /* The one kind listed but not served: a sparse member. */
        FZ_CHECK(s == KVRO_E_UNSUPPORTED && listed == KVRO_KIND_FILE);
    }
    if (w->o->on_entry)
        w->o->on_entry(w->o->arg, key, listed, s, &st);

    bool present = false;
    kvro_status m = kvro_mem(w->kv, key, &present, &e);
    fz_check_error(m, &e);
    FZ_CHECK(m == s && present == (s == KVRO_OK));

    int64_t size = -1;
    kvro_status z = kvro_size(w->kv, key, &size, &e);
    fz_check_error(z, &e);
    if (s != KVRO_OK)
        FZ_CHECK(z == s);
    else if (st.kind == KVRO_KIND_DIR)
        FZ_CHECK(z == KVRO_E_IS_DIR && size == 0);
    else
        FZ_CHECK(z == KVRO_OK && size == st.size);
    if (s != KVRO_OK)
        return;

    int64_t got;
    if (st.kind == KVRO_KIND_DIR) {
        FZ_CHECK(read_at(w, key, 0, 16, w->b, &got) == KVRO_E_IS_DIR);
        if (depth < w->o->max_depth)
            walk_dir(w, key, depth + 1);
        return;
    }
    s = kvro_list(w->kv, key, collect, &(names){.limit = 0}, &e);
    fz_check_error(s, &e);
    FZ_CHECK(s == KVRO_E_NOT_DIR);
    if (w->files < w->o->max_files) {
        w->files++;
        read_file(w, key, st.size);
    }
}

static void walk_dir(walker *w, const char *dir, int depth)
{
    names l = {.limit = w->o->max_entries - w->entries};
    kvro_error e;
    fz_error_poison(&e);
    kvro_status s = kvro_list(w->kv, dir, collect, &l, &e);
    fz_check_error(s, &e);
    /* It stat'ed as a directory, so it lists (memory permitting). */
    FZ_CHECK(s == KVRO_OK || s == KVRO_E_NOMEM);
    w->entries += (int64_t)l.n;
    for (size_t i = 0; i < l.n; i++) {
        char *key = join(dir, l.v[i]);
        visit(w, key, l.kind[i], depth);
        free(key);
    }
    names_free(&l);
}

void fz_walk(kvro *kv, const fz_walk_opts *o)
{
    walker w = {.kv = kv, .o = o, .work = READ_WORK};
    w.a = malloc(BUF_MAX + CANARY);
    w.b = malloc(BUF_MAX + CANARY);
    FZ_CHECK(w.a && w.b);
    kvro_info st;
    kvro_error e;
    fz_error_poison(&e);
    kvro_status s = kvro_stat(kv, "", &st, &e);
    fz_check_error(s, &e);
    FZ_CHECK(s == KVRO_OK && st.kind == KVRO_KIND_DIR && st.size == 0);
    walk_dir(&w, "", 0);
    free(w.a);
    free(w.b);
}

/* ------------------------------------------------------ hostile keys */

/* KEY is refused as a key before any lookup, by every call. */
static void bad_key(kvro *kv, const char *key)
{
    kvro_error e;
    kvro_info st;
    bool present = true;
    int64_t n = 1;
    unsigned char buf[8];
    kvro_status s = kvro_stat(kv, key, &st, &e);
    fz_check_error(s, &e);
    FZ_CHECK(s == KVRO_E_BAD_KEY);
    s = kvro_mem(kv, key, &present, &e);
    fz_check_error(s, &e);
    FZ_CHECK(s == KVRO_E_BAD_KEY);
    s = kvro_size(kv, key, &n, &e);
    fz_check_error(s, &e);
    FZ_CHECK(s == KVRO_E_BAD_KEY);
    s = kvro_read(kv, key, 0, sizeof buf, buf, &n, &e);
    fz_check_error(s, &e);
    /* A key refused before the lookup leaves *nread as it was (core.c's
     * BEGIN returns first); kvro.h promises nothing about it on failure. */
    FZ_CHECK(s == KVRO_E_BAD_KEY);
    s = kvro_list(kv, key, collect, &(names){.limit = 0}, &e);
    fz_check_error(s, &e);
    FZ_CHECK(s == KVRO_E_BAD_KEY);
}

/* KEY may or may not exist; whatever the answer, it is a clean one. */
static void odd_key(kvro *kv, const char *key)
{
    kvro_error e;
    kvro_info st;
    fz_error_poison(&e);
    kvro_status s = kvro_stat(kv, key, &st, &e);
    fz_check_error(s, &e);
    unsigned char buf[32 + CANARY];
    int64_t n;
    memset(buf + 32, 0xa5, CANARY);
    s = kvro_read(kv, key, 0, 32, buf, &n, &e);
    fz_check_error(s, &e);
    FZ_CHECK(n >= 0 && n <= 32 && (s == KVRO_OK || n == 0));
    for (int i = 0; i < CANARY; i++)
        FZ_CHECK(buf[32 + i] == 0xa5);
    names l = {.limit = 4};
    s = kvro_list(kv, key, collect, &l, &e);
    fz_check_error(s, &e);
    names_free(&l);
}

void fz_hostile_keys(kvro *kv)
{
    static const char *const bad[] = {
        "a/../b", "..", "./..", "/..", "a/./..", "../../etc/passwd", "//..//", "a/.."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        bad_key(kv, bad[i]);
    /* With names the seeds use for what listings leave out (devices,
     * FIFOs, links that lead nowhere), so those lookups are fuzzed too. */
    static const char *const odd[] = {"",      "/",    "//",       "a",   "a/",  "/a//b/", "...",
                                      "a/...", "\x01", "\xff\xfe", " ",   "dev", "fifo",   "loop",
                                      "d/up",  "h",    "h1",       "esc", "sym"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        odd_key(kv, odd[i]);

    char *deep = malloc(KVRO_KEY_MAX + 2);
    FZ_CHECK(deep != NULL);
    for (size_t i = 0; i < KVRO_KEY_MAX + 1; i++)
        deep[i] = i % 2 ? '/' : 'a';
    deep[KVRO_KEY_MAX + 1] = '\0';
    bad_key(kv, deep); /* one byte too long */
    deep[KVRO_KEY_MAX] = '\0';
    odd_key(kv, deep); /* the longest key: 2048 components */
    free(deep);

    kvro_error e;
    kvro_info st;
    bool present;
    kvro_status s = kvro_stat(kv, NULL, &st, &e);
    fz_check_error(s, &e);
    FZ_CHECK(s == KVRO_E_INVALID);
    s = kvro_mem(kv, "", NULL, &e);
    fz_check_error(s, &e);
    FZ_CHECK(s == KVRO_E_INVALID);
    s = kvro_mem(kv, "", &present, NULL); /* no error record at all */
    FZ_CHECK(s == KVRO_OK && present);
}
