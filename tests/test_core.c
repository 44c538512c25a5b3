/*
 * test_core.c — unit tests of the core that every backend shares: key
 * normalisation, status phrases, the error record and its printer, the
 * checks the core makes before any backend is called (seen through a fake
 * backend), opening by bidding, and the backend registry. Backend behaviour
 * is in test_conformance.c and test_<backend>.c.
 */
#include "core.h"
#include "support.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"

/* A record with the three parts set directly, so the printer is tested
 * apart from the code that fills records. */
static kvro_error record(kvro_status s, const char *source, const char *key, const char *detail)
{
    kvro_error e;
    memset(&e, 0, sizeof e);
    e.status = s;
    snprintf(e.source, sizeof e.source, "%s", source);
    snprintf(e.key, sizeof e.key, "%s", key);
    snprintf(e.detail, sizeof e.detail, "%s", detail);
    return e;
}

/* ------------------------------------------------------------------ keys */

typedef struct key_case {
    const char *in;
    kvro_status status;
    const char *out; /* when status is KVRO_OK */
} key_case;

static const key_case key_cases[] = {
    {"", KVRO_OK, ""},
    {"/", KVRO_OK, ""},
    {"///", KVRO_OK, ""},
    {"a", KVRO_OK, "a"},
    {"/a", KVRO_OK, "a"},
    {"a/", KVRO_OK, "a"},
    {"//a///b//", KVRO_OK, "a/b"},
    {"a/b/c", KVRO_OK, "a/b/c"},
    /* Dots are only special as a whole component. */
    {".a", KVRO_OK, ".a"},
    {"a.", KVRO_OK, "a."},
    {"..a", KVRO_OK, "..a"},
    {"...", KVRO_OK, "..."},
    {"a/.b/c./...", KVRO_OK, "a/.b/c./..."},
    /* Only '/' separates: a backslash, a space or UTF-8 are name bytes. */
    {"a\\b", KVRO_OK, "a\\b"},
    {" / ", KVRO_OK, " / "},
    {"/données//été.txt/", KVRO_OK, "données/été.txt"},
    /* "." is harmless: dropped, as `tar -tf` prints "./usr/bin/hello". */
    {".", KVRO_OK, ""},
    {"/./", KVRO_OK, ""},
    {"./a", KVRO_OK, "a"},
    {"./usr/bin/hello", KVRO_OK, "usr/bin/hello"},
    {"a/.", KVRO_OK, "a"},
    {"a/./b", KVRO_OK, "a/b"},
    {"a//.//b", KVRO_OK, "a/b"},
    {"..", KVRO_E_BAD_KEY, NULL},
    {"./..", KVRO_E_BAD_KEY, NULL},
    {"../x", KVRO_E_BAD_KEY, NULL},
    {"a/../x", KVRO_E_BAD_KEY, NULL},
    {"a/..", KVRO_E_BAD_KEY, NULL},
    {"/../", KVRO_E_BAD_KEY, NULL},
};

static void test_key_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof key_cases / sizeof key_cases[0]; i++) {
        const key_case *c = &key_cases[i];
        char out[KVRO_KEY_MAX + 1];
        kvro_error err;
        memset(out, 'Z', sizeof out);
        kvro_status s = kvro_key_normalise(c->in, out, &err);
        if (s != c->status)
            fail_msg("'%s': got '%s', want '%s'", c->in, kvro_status_str(s),
                     kvro_status_str(c->status));
        if (s != KVRO_OK) {
            assert_int_equal(err.status, c->status);
            assert_true(err.detail[0] != '\0');
            continue;
        }
        if (strcmp(out, c->out) != 0)
            fail_msg("'%s' normalised to '%s', want '%s'", c->in, out, c->out);
        /* Nothing written past the terminating NUL. */
        for (size_t j = strlen(c->out) + 1; j < sizeof out; j++)
            assert_int_equal(out[j], 'Z');
        /* Normalising is idempotent, and works without a record. */
        char again[KVRO_KEY_MAX + 1];
        assert_status(kvro_key_normalise(out, again, NULL), KVRO_OK, NULL);
        assert_string_equal(again, c->out);
    }
}

static void test_key_bad_and_null(void **state)
{
    (void)state;
    char out[KVRO_KEY_MAX + 1];
    kvro_error err;
    /* The detail names the offending component. */
    assert_status(kvro_key_normalise("a/../b", out, &err), KVRO_E_BAD_KEY, &err);
    assert_non_null(strstr(err.detail, "'..'"));
    assert_status(kvro_key_normalise(NULL, out, &err), KVRO_E_INVALID, &err);
    assert_int_equal(err.status, KVRO_E_INVALID);
    assert_status(kvro_key_normalise("a", NULL, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_key_normalise(NULL, out, NULL), KVRO_E_INVALID, NULL);
}

/* The bound applies to the key as given, before '/' collapses. */
static void test_key_length_limit(void **state)
{
    (void)state;
    char *key = malloc(KVRO_KEY_MAX + 2);
    char out[KVRO_KEY_MAX + 1];
    kvro_error err;
    assert_non_null(key);

    memset(key, 'k', KVRO_KEY_MAX);
    key[KVRO_KEY_MAX] = '\0';
    assert_status(kvro_key_normalise(key, out, &err), KVRO_OK, &err);
    assert_int_equal(strlen(out), KVRO_KEY_MAX);
    assert_memory_equal(out, key, KVRO_KEY_MAX + 1);

    memset(key, '/', KVRO_KEY_MAX);
    key[KVRO_KEY_MAX - 1] = 'k';
    assert_status(kvro_key_normalise(key, out, &err), KVRO_OK, &err);
    assert_string_equal(out, "k");

    memset(key, '/', KVRO_KEY_MAX + 1);
    key[KVRO_KEY_MAX] = 'k';
    key[KVRO_KEY_MAX + 1] = '\0';
    assert_status(kvro_key_normalise(key, out, &err), KVRO_E_BAD_KEY, &err);
    assert_non_null(strstr(err.detail, "4096"));
    free(key);
}

/* --------------------------------------------------------------- status */

static void test_status_str(void **state)
{
    (void)state;
    const char *unknown = kvro_status_str(KVRO_STATUS_COUNT);
    assert_non_null(unknown);
    assert_true(unknown[0] != '\0');
    assert_string_equal(kvro_status_str((kvro_status)-1), unknown);
    for (int i = 0; i < KVRO_STATUS_COUNT; i++) {
        const char *a = kvro_status_str((kvro_status)i);
        assert_non_null(a);
        assert_true(a[0] != '\0');
        if (strcmp(a, unknown) == 0)
            fail_msg("status %d has no phrase of its own", i);
        for (int j = 0; j < i; j++)
            if (strcmp(a, kvro_status_str((kvro_status)j)) == 0)
                fail_msg("statuses %d and %d share the phrase '%s'", j, i, a);
    }
    /* The one the header quotes. */
    assert_string_equal(kvro_status_str(KVRO_E_NOT_FOUND), "no such key");
}

typedef struct errno_case {
    int e;
    kvro_status s;
} errno_case;

static void test_status_of_errno(void **state)
{
    (void)state;
    static const errno_case cases[] = {
        {ENOENT, KVRO_E_NOT_FOUND},    {ENOTDIR, KVRO_E_NOT_DIR},
        {EISDIR, KVRO_E_IS_DIR},       {ELOOP, KVRO_E_LINK},
        {EEXIST, KVRO_E_EXISTS},       {ENOSPC, KVRO_E_NO_SPACE},
        {ENOTEMPTY, KVRO_E_NOT_EMPTY}, {EROFS, KVRO_E_READ_ONLY},
        {ENOMEM, KVRO_E_NOMEM},        {EIO, KVRO_E_IO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_status(kvro_status_from_errno(cases[i].e), cases[i].s, NULL);
}

/* ---------------------------------------------------------- error record */

static void test_format_parts(void **state)
{
    (void)state;
    char buf[256];
    kvro_error e = record(KVRO_E_CORRUPT, "img.tar", "a/b", "bad checksum");
    assert_int_equal(kvro_error_format(&e, buf, sizeof buf), strlen("img.tar: a/b: bad checksum"));
    assert_string_equal(buf, "img.tar: a/b: bad checksum");

    e = record(KVRO_E_CORRUPT, "", "a/b", "bad checksum");
    assert_int_equal(kvro_error_format(&e, buf, sizeof buf), strlen("a/b: bad checksum"));
    assert_string_equal(buf, "a/b: bad checksum");

    e = record(KVRO_E_CORRUPT, "img.tar", "", "bad checksum");
    kvro_error_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "img.tar: bad checksum");

    e = record(KVRO_E_CORRUPT, "", "", "bad checksum");
    kvro_error_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "bad checksum");

    /* No detail: the status phrase stands in. */
    e = record(KVRO_E_NOT_FOUND, "img.tar", "x", "");
    kvro_error_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "img.tar: x: no such key");

    e = record(KVRO_OK, "", "", "");
    kvro_error_format(&e, buf, sizeof buf);
    assert_string_equal(buf, kvro_status_str(KVRO_OK));

    /* No record: still a message, and its length. */
    size_t n = kvro_error_format(NULL, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(n, strlen(buf));
}

static void test_format_truncates_like_snprintf(void **state)
{
    (void)state;
    const char *full = "src: key: detail";
    kvro_error e = record(KVRO_E_IO, "src", "key", "detail");
    char buf[32];

    memset(buf, '#', sizeof buf);
    assert_int_equal(kvro_error_format(&e, buf, 8), strlen(full));
    assert_string_equal(buf, "src: ke");
    for (size_t i = 8; i < sizeof buf; i++)
        assert_int_equal(buf[i], '#');

    memset(buf, '#', sizeof buf);
    assert_int_equal(kvro_error_format(&e, buf, 1), strlen(full));
    assert_int_equal(buf[0], '\0');
    assert_int_equal(buf[1], '#');

    /* Size 0 writes nothing at all, so NULL is fine: the sizing call. */
    assert_int_equal(kvro_error_format(&e, NULL, 0), strlen(full));

    /* Exactly enough room. */
    memset(buf, '#', sizeof buf);
    assert_int_equal(kvro_error_format(&e, buf, strlen(full) + 1), strlen(full));
    assert_string_equal(buf, full);
}

static void test_format_longest_record(void **state)
{
    (void)state;
    kvro_error e;
    memset(&e, 0, sizeof e);
    e.status = KVRO_E_IO;
    memset(e.source, 's', sizeof e.source - 1);
    memset(e.key, 'k', sizeof e.key - 1);
    memset(e.detail, 'd', sizeof e.detail - 1);
    size_t want = (sizeof e.source - 1) + 2 + (sizeof e.key - 1) + 2 + (sizeof e.detail - 1);
    char *buf = malloc(want + 1);
    assert_non_null(buf);
    assert_int_equal(kvro_error_format(&e, buf, want + 1), want);
    assert_int_equal(strlen(buf), want);
    assert_int_equal(buf[sizeof e.source - 1], ':');
    assert_int_equal(buf[want - 1], 'd');
    free(buf);
}

static void test_error_print(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    kvro_error e = record(KVRO_E_LINK, "root", "k", "loops");
    kvro_error_print(f, "mkkv", &e);
    kvro_error_print(f, NULL, &e);
    assert_int_equal(fclose(f), 0);
    assert_string_equal(text, "mkkv: root: k: loops\nroot: k: loops\n");
    free(text);
}

static void test_error_set(void **state)
{
    (void)state;
    kvro_error e = record(KVRO_OK, "src", "key", "old");
    assert_int_equal(kvro_error_set(&e, KVRO_E_CORRUPT, "chain loop at %d", 1234), KVRO_E_CORRUPT);
    assert_int_equal(e.status, KVRO_E_CORRUPT);
    assert_string_equal(e.detail, "chain loop at 1234");
    /* Setting starts a fresh record: no source or key left over from an
     * earlier error (or from garbage in a record never used). */
    assert_string_equal(e.source, "");
    assert_string_equal(e.key, "");
    kvro_error fresh;
    memset(&fresh, 'x', sizeof fresh);
    kvro_error_set(&fresh, KVRO_E_NOT_FOUND, "no such key");
    assert_int_equal(kvro_error_context(&fresh, KVRO_E_NOT_FOUND, "img", "a/b"),
                     KVRO_E_NOT_FOUND);
    char line[1600];
    kvro_error_format(&fresh, line, sizeof line);
    assert_string_equal(line, "img: a/b: no such key");

    assert_int_equal(kvro_error_set(&e, KVRO_E_IO, NULL), KVRO_E_IO);
    assert_string_equal(e.detail, "");
    assert_int_equal(kvro_error_set(NULL, KVRO_E_NOMEM, "x"), KVRO_E_NOMEM);

    /* A detail too long for the record is cut, visibly. */
    char *longer = malloc(2 * KVRO_ERROR_DETAIL_MAX);
    assert_non_null(longer);
    memset(longer, 'x', 2 * KVRO_ERROR_DETAIL_MAX - 1);
    longer[2 * KVRO_ERROR_DETAIL_MAX - 1] = '\0';
    kvro_error_set(&e, KVRO_E_IO, "%s", longer);
    assert_int_equal(strlen(e.detail), KVRO_ERROR_DETAIL_MAX - 1);
    assert_string_equal(e.detail + KVRO_ERROR_DETAIL_MAX - 4, "...");
    free(longer);
}

static void test_error_context(void **state)
{
    (void)state;
    kvro_error e;
    kvro__error_clear(&e);
    kvro_error_set(&e, KVRO_E_NOT_FOUND, "no such directory 'x'");
    assert_int_equal(kvro_error_context(&e, KVRO_E_NOT_FOUND, "/srv/img", "x/y"),
                     KVRO_E_NOT_FOUND);
    assert_string_equal(e.source, "/srv/img");
    assert_string_equal(e.key, "x/y");
    assert_string_equal(e.detail, "no such directory 'x'");

    /* An outer layer does not overwrite what an inner one filled in. */
    kvro_error_context(&e, KVRO_E_NOT_FOUND, "other", "other");
    assert_string_equal(e.source, "/srv/img");
    assert_string_equal(e.key, "x/y");

    /* The root is shown as "/", not as an empty part that would vanish. */
    kvro__error_clear(&e);
    kvro_error_context(&e, KVRO_E_IS_DIR, "src", "");
    assert_string_equal(e.key, "/");
    assert_int_equal(e.status, KVRO_E_IS_DIR);

    /* A status nobody described gets no stale detail. */
    kvro__error_clear(&e);
    kvro_error_set(&e, KVRO_E_IO, "stale");
    kvro_error_context(&e, KVRO_E_CORRUPT, "src", "k");
    assert_int_equal(e.status, KVRO_E_CORRUPT);
    assert_string_equal(e.detail, "");

    /* Success leaves the record alone; NULL records are fine. */
    kvro__error_clear(&e);
    assert_int_equal(kvro_error_context(&e, KVRO_OK, "src", "k"), KVRO_OK);
    assert_string_equal(e.source, "");
    assert_int_equal(kvro_error_context(NULL, KVRO_E_IO, "src", "k"), KVRO_E_IO);

    /* A key too long for the record is cut with a mark, so it can not be
     * mistaken for a shorter key that exists. */
    char *key = malloc(KVRO_KEY_MAX + 1);
    assert_non_null(key);
    memset(key, 'k', KVRO_KEY_MAX);
    key[KVRO_KEY_MAX] = '\0';
    kvro__error_clear(&e);
    kvro_error_context(&e, KVRO_E_NOT_FOUND, "src", key);
    assert_int_equal(strlen(e.key), KVRO_ERROR_KEY_MAX - 1);
    assert_string_equal(e.key + KVRO_ERROR_KEY_MAX - 4, "...");
    assert_memory_equal(e.key, key, KVRO_ERROR_KEY_MAX - 4);
    free(key);
}

/* ------------------------------------------------- the core over a fake */

/* A backend that records what reaches it, so the checks the core promises
 * to make for every backend (backend.h) are seen to happen before it. */
typedef struct fake {
    int calls;
    char key[KVRO_KEY_MAX + 1];
    int64_t off, len;
    kvro_status read_fails; /* read: this status, after filling 5 bytes */
} fake;

static void fake_saw(fake *f, const char *key)
{
    f->calls++;
    snprintf(f->key, sizeof f->key, "%s", key);
}

static kvro_status fake_open(const kvro_probe *p, const kvro_options *o, bool writable, void **self,
                             kvro_error *err)
{
    (void)p, (void)o, (void)writable, (void)err;
    *self = calloc(1, sizeof(fake));
    return *self ? KVRO_OK : KVRO_E_NOMEM;
}

static kvro_status fake_close(void *self, kvro_error *err)
{
    (void)err;
    free(self);
    return KVRO_OK;
}

/* "" and "d" are directories, "f" a 10-byte file, "f/..." through it. */
static kvro_status fake_stat(void *self, const char *key, kvro_info *st, kvro_error *err)
{
    (void)err;
    fake_saw(self, key);
    if (!strcmp(key, "") || !strcmp(key, "d"))
        st->kind = KVRO_KIND_DIR;
    else if (!strcmp(key, "f"))
        *st = (kvro_info){.kind = KVRO_KIND_FILE, .size = 10};
    else
        return strncmp(key, "f/", 2) ? KVRO_E_NOT_FOUND : KVRO_E_NOT_DIR;
    return KVRO_OK;
}

static kvro_status fake_read(void *self, const char *key, int64_t off, int64_t len, void *buf,
                             int64_t *nread, kvro_error *err)
{
    (void)err;
    fake *f = self;
    fake_saw(f, key);
    f->off = off;
    f->len = len;
    *nread = len < 5 ? len : 5;
    memset(buf, 'x', (size_t)*nread);
    return f->read_fails;
}

/* Unsorted, and one status left undescribed: the core sorts and explains. */
static kvro_status fake_list(void *self, const char *dir, kvro_list_fn fn, void *arg,
                             kvro_error *err)
{
    (void)err;
    fake_saw(self, dir);
    if (strcmp(dir, "d") != 0)
        return KVRO_E_CORRUPT;
    static const char *const names[] = {"zeta", "Alpha", "beta", "_u"};
    for (size_t i = 0; i < 4; i++)
        if (fn(arg, names[i], i == 2 ? KVRO_KIND_DIR : KVRO_KIND_FILE))
            break;
    return KVRO_OK;
}

static kvro_status fake_key_op(void *self, const char *key, kvro_error *err)
{
    (void)err;
    fake_saw(self, key);
    return KVRO_OK;
}

static kvro_status fake_write(void *self, const char *key, int64_t off, const void *buf,
                              int64_t len, kvro_error *err)
{
    (void)buf, (void)err;
    fake *f = self;
    fake_saw(f, key);
    f->off = off;
    f->len = len;
    return KVRO_OK;
}

static const kvro_backend fake_backend = {
    .name = "fake",
    .description = "records what reaches it",
    .fs_open = fake_open,
    .close = fake_close,
    .stat = fake_stat,
    .read = fake_read,
    .list = fake_list,
    .create = fake_key_op,
    .mkdir = fake_key_op,
    .write = fake_write,
    .destroy = fake_key_op,
};

static kvro_fs *fake_fs(bool writable)
{
    kvro_probe p = {.name = "fake-src", .dir_fd = -1};
    kvro_options o = {0};
    kvro_fs *fs = NULL;
    kvro_error err;
    assert_status(kvro__fs_new(&fake_backend, &p, &o, writable, &fs, &err), KVRO_OK, &err);
    return fs;
}

static fake *fake_of(kvro_fs *fs)
{
    return fs->h.self;
}

typedef struct names {
    size_t n;
    char v[8][16];
} names;

static int add_name(void *arg, const char *name, kvro_kind kind)
{
    names *l = arg;
    (void)kind;
    if (l->n < 8)
        snprintf(l->v[l->n], sizeof l->v[0], "%s", name);
    l->n++;
    return 0;
}

static void test_core_over_fake_read_side(void **state)
{
    (void)state;
    kvro_fs *fs = fake_fs(false);
    fake *f = fake_of(fs);
    kvro *kv = NULL;
    kvro_error err;
    assert_status(kvro_of_fs(fs, KVRO_OF_FS_OWN, &kv, &err), KVRO_OK, &err);
    assert_string_equal(kvro_backend_of(kv), "fake");
    assert_string_equal(kvro_source(kv), "fake-src");

    /* Keys arrive normalised; bad ones never arrive. */
    kvro_info st;
    assert_status(kvro_stat(kv, "//d//", &st, &err), KVRO_OK, &err);
    assert_string_equal(f->key, "d");
    int calls = f->calls;
    assert_status(kvro_stat(kv, "d/../f", &st, &err), KVRO_E_BAD_KEY, &err);
    assert_int_equal(f->calls, calls);

    /* Sizes and presence come from stat. */
    int64_t n;
    bool present;
    assert_status(kvro_size(kv, "d", &n, &err), KVRO_E_IS_DIR, &err);
    assert_status(kvro_size(kv, "/f", &n, &err), KVRO_OK, &err);
    assert_int_equal(n, 10);
    assert_status(kvro_mem(kv, "f/g", &present, &err), KVRO_OK, &err);
    assert_false(present);

    /* Bad ranges never arrive; a failing read reports no bytes. */
    char buf[16];
    calls = f->calls;
    assert_status(kvro_read(kv, "f", -1, 4, buf, &n, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_read(kv, "f", 0, -4, buf, &n, &err), KVRO_E_INVALID, &err);
    assert_int_equal(f->calls, calls);
    assert_status(kvro_read(kv, "f/", 3, 16, buf, &n, &err), KVRO_E_NOT_DIR, &err);
    assert_status(kvro_read(kv, "./f", 3, 16, buf, &n, &err), KVRO_OK, &err);
    assert_string_equal(f->key, "f");
    assert_int_equal(f->off, 3);
    assert_int_equal(f->len, 16);
    assert_int_equal(n, 5);
    f->read_fails = KVRO_E_IO;
    assert_status(kvro_read(kv, "f", 0, 16, buf, &n, &err), KVRO_E_IO, &err);
    assert_int_equal(n, 0);

    /* The core sorts by bytes, whatever order the backend lists in. */
    names l = {0};
    assert_status(kvro_list(kv, "/d/", add_name, &l, &err), KVRO_OK, &err);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.v[0], "Alpha");
    assert_string_equal(l.v[1], "_u");
    assert_string_equal(l.v[2], "beta");
    assert_string_equal(l.v[3], "zeta");

    /* A status the backend did not describe still makes a whole record. */
    assert_status(kvro_list(kv, "", add_name, &l, &err), KVRO_E_CORRUPT, &err);
    assert_string_equal(err.source, "fake-src");
    assert_string_equal(err.key, "/");
    char msg[256];
    kvro_error_format(&err, msg, sizeof msg);
    assert_string_equal(msg, "fake-src: /: corrupt image");
    kvro_close(kv);
}

static void test_core_over_fake_write_side(void **state)
{
    (void)state;
    kvro_fs *fs = fake_fs(true);
    fake *f = fake_of(fs);
    kvro_error err;
    assert_status(kvro_fs_write(fs, "//f", 7, "ab", 2, &err), KVRO_OK, &err);
    assert_string_equal(f->key, "f");
    assert_int_equal(f->off, 7);
    assert_int_equal(f->len, 2);
    int calls = f->calls;
    /* offset + length past INT64_MAX would wrap in a backend's arithmetic. */
    assert_status(kvro_fs_write(fs, "f", INT64_MAX - 1, "ab", 2, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_fs_write(fs, "f", INT64_MAX, "a", 1, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_fs_write(fs, "f", -1, "a", 1, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_fs_write(fs, "f", 0, NULL, 1, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_fs_create(fs, "a/../b", &err), KVRO_E_BAD_KEY, &err);
    /* A trailing '/' names a directory: never a file to create or write. */
    assert_status(kvro_fs_create(fs, "g/", &err), KVRO_E_NOT_DIR, &err);
    assert_status(kvro_fs_write(fs, "f/", 0, "a", 1, &err), KVRO_E_NOT_DIR, &err);
    /* The root is settled by the core. */
    assert_status(kvro_fs_create(fs, "/", &err), KVRO_E_EXISTS, &err);
    assert_status(kvro_fs_mkdir(fs, "", &err), KVRO_OK, &err);
    assert_status(kvro_fs_destroy(fs, "//", &err), KVRO_E_INVALID, &err);
    assert_int_equal(f->calls, calls);
    assert_status(kvro_fs_write(fs, "f", INT64_MAX - 2, "ab", 2, &err), KVRO_OK, &err);
    assert_status(kvro_fs_mkdir(fs, "/x/y/", &err), KVRO_OK, &err);
    assert_string_equal(f->key, "x/y");
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);

    /* Read-only: nothing written reaches the backend. */
    fs = fake_fs(false);
    f = fake_of(fs);
    assert_status(kvro_fs_create(fs, "n", &err), KVRO_E_READ_ONLY, &err);
    assert_status(kvro_fs_mkdir(fs, "n", &err), KVRO_E_READ_ONLY, &err);
    assert_status(kvro_fs_write(fs, "f", 0, "a", 1, &err), KVRO_E_READ_ONLY, &err);
    assert_status(kvro_fs_destroy(fs, "f", &err), KVRO_E_READ_ONLY, &err);
    assert_int_equal(f->calls, 0);
    kvro_info st;
    assert_status(kvro_fs_stat(fs, "f", &st, &err), KVRO_OK, &err);
    assert_true(st.read_only);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
}

/* ------------------------------------------------------------------ open */

/* A scratch directory per test, removed even when the test fails. */
static int scratch_setup(void **state)
{
    *state = t_tempdir("core");
    return 0;
}

static int scratch_teardown(void **state)
{
    t_rmrf(*state);
    free(*state);
    return 0;
}

static void test_open_missing(void **state)
{
    const char *dir = *state;
    char *path = t_join(dir, "no-such-image.tar");
    static int sentinel; /* *kv must be reset, not left as it was */
    kvro *kv = (kvro *)&sentinel;
    kvro_error err;
    assert_status(kvro_open(path, &kv, &err), KVRO_E_NOT_FOUND, &err);
    assert_null(kv);
    assert_int_equal(err.status, KVRO_E_NOT_FOUND);
    assert_string_equal(err.source, path);
    char msg[1400];
    kvro_error_format(&err, msg, sizeof msg);
    assert_non_null(strstr(msg, path));
    assert_status(kvro_open(path, &kv, NULL), KVRO_E_NOT_FOUND, NULL);

    kvro_fs *fs = (kvro_fs *)&sentinel;
    assert_status(kvro_fs_open(path, KVRO_FS_RDONLY, NULL, &fs, &err), KVRO_E_NOT_FOUND, &err);
    assert_null(fs);
    assert_string_equal(err.source, path);
    free(path);
}

static void test_open_garbage(void **state)
{
    const char *dir = *state;
    char *path = t_join(dir, "garbage.bin");
    /* Pattern bytes carry no format's signature. */
    t_write_pattern(path, 99, 3 * 4096 + 17);
    kvro *kv = NULL;
    kvro_error err;
    assert_status(kvro_open(path, &kv, &err), KVRO_E_UNSUPPORTED, &err);
    assert_null(kv);
    assert_string_equal(err.source, path);
    char msg[1400];
    kvro_error_format(&err, msg, sizeof msg);
    assert_non_null(strstr(msg, path));

    kvro_fs *fs = NULL;
    assert_status(kvro_fs_open(path, KVRO_FS_RDWR, NULL, &fs, &err), KVRO_E_UNSUPPORTED, &err);
    assert_null(fs);
    free(path);
}

static void test_open_unknown_backend(void **state)
{
    const char *dir = *state;
    kvro_options o = {.backend = "no-such-backend"};
    kvro *kv = NULL;
    kvro_error err;
    assert_status(kvro_open_opts(dir, &o, &kv, &err), KVRO_E_INVALID, &err);
    assert_null(kv);
    assert_non_null(strstr(err.detail, "no-such-backend"));
    for (size_t i = 0; i < kvro_backend_count(); i++)
        if (!strstr(err.detail, kvro_backend_name(i)))
            fail_msg("'%s' does not name backend '%s'", err.detail, kvro_backend_name(i));

    kvro_fs *fs = NULL;
    assert_status(kvro_fs_open(dir, KVRO_FS_RDONLY, &o, &fs, &err), KVRO_E_INVALID, &err);
    assert_null(fs);
}

static void test_open_forced_and_probed(void **state)
{
    const char *dir = *state;
    kvro_options o = {.backend = "dir"};
    kvro *kv = NULL;
    kvro_error err;
    assert_status(kvro_open_opts(dir, &o, &kv, &err), KVRO_OK, &err);
    assert_string_equal(kvro_backend_of(kv), "dir");
    assert_string_equal(kvro_source(kv), dir);
    kvro_close(kv);

    assert_status(kvro_open(dir, &kv, &err), KVRO_OK, &err);
    assert_string_equal(kvro_backend_of(kv), "dir");
    assert_string_equal(kvro_source(kv), dir);
    kvro_close(kv);

    /* Forcing a backend that can not read the source fails cleanly. */
    char *file = t_join(dir, "f");
    t_write(file, "x", 1);
    assert_status(kvro_open_opts(file, &o, &kv, &err), KVRO_E_NOT_DIR, &err);
    assert_null(kv);
    assert_string_equal(err.source, file);
    free(file);
}

static void test_open_bad_arguments(void **state)
{
    const char *dir = *state;
    kvro *kv = NULL;
    kvro_fs *fs = NULL;
    kvro_error err;
    assert_status(kvro_open(NULL, &kv, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_open(dir, NULL, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_fs_open(dir, 7, NULL, &fs, &err), KVRO_E_INVALID, &err);
    assert_null(fs);
    assert_status(kvro_fs_open(NULL, KVRO_FS_RDONLY, NULL, &fs, NULL), KVRO_E_INVALID, NULL);
    assert_status(kvro_of_fs(NULL, 0, &kv, &err), KVRO_E_INVALID, &err);

    /* Every operation refuses a NULL handle rather than crashing. */
    bool present;
    int64_t n;
    kvro_info st;
    char buf[4];
    assert_status(kvro_mem(NULL, "a", &present, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_size(NULL, "a", &n, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_stat(NULL, "a", &st, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_read(NULL, "a", 0, 4, buf, &n, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_fs_create(NULL, "a", &err), KVRO_E_INVALID, &err);
    assert_null(kvro_backend_of(NULL));
    assert_null(kvro_source(NULL));
    kvro_close(NULL);
    assert_status(kvro_fs_close(NULL, &err), KVRO_OK, &err);
}

/* -------------------------------------------------------------- registry */

static void test_registry(void **state)
{
    (void)state;
    size_t n = kvro_backend_count();
    assert_true(n >= 1);
    bool have_dir = false;
    for (size_t i = 0; i < n; i++) {
        const char *name = kvro_backend_name(i);
        const char *desc = kvro_backend_description(i);
        assert_non_null(name);
        assert_non_null(desc);
        assert_true(name[0] != '\0');
        assert_true(desc[0] != '\0');
        have_dir |= strcmp(name, "dir") == 0;
        for (size_t j = 0; j < i; j++)
            if (strcmp(name, kvro_backend_name(j)) == 0)
                fail_msg("backend '%s' registered twice", name);
        /* Each one is what the internal table holds, and is well-formed:
         * exactly one of open / fs_open, and the read side complete. */
        const kvro_backend *b = kvro__backends[i];
        assert_string_equal(b->name, name);
        assert_true((b->open != NULL) != (b->fs_open != NULL));
        assert_non_null(b->bid);
        assert_non_null(b->close);
        assert_non_null(b->stat);
        assert_non_null(b->read);
        assert_non_null(b->list);
        if (b->fs_open) {
            assert_non_null(b->create);
            assert_non_null(b->mkdir);
            assert_non_null(b->write);
            assert_non_null(b->destroy);
        }
    }
    assert_true(have_dir);
    assert_null(kvro__backends[n]);
    assert_null(kvro_backend_name(n));
    assert_null(kvro_backend_description(n));
    assert_null(kvro_backend_name((size_t)-1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_table),
        cmocka_unit_test(test_key_bad_and_null),
        cmocka_unit_test(test_key_length_limit),
        cmocka_unit_test(test_status_str),
        cmocka_unit_test(test_status_of_errno),
        cmocka_unit_test(test_format_parts),
        cmocka_unit_test(test_format_truncates_like_snprintf),
        cmocka_unit_test(test_format_longest_record),
        cmocka_unit_test(test_error_print),
        cmocka_unit_test(test_error_set),
        cmocka_unit_test(test_error_context),
        cmocka_unit_test(test_core_over_fake_read_side),
        cmocka_unit_test(test_core_over_fake_write_side),
        cmocka_unit_test_setup_teardown(test_open_missing, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_open_garbage, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_open_unknown_backend, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_open_forced_and_probed, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_open_bad_arguments, scratch_setup, scratch_teardown),
        cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
