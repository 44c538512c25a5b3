/*
 * test_links.c — symbolic and hard links through the public API, over every
 * backend that has them: a host directory, and tar archives of that same
 * directory written by GNU tar (--format=gnu and pax, plain and .gz,
 * opened by path and from memory).
 *
 * No-follow calls (kvro_lstat, kvro_readlink, kvro_list_info with
 * KVRO_NOFOLLOW) describe every link as a link with its target as stored,
 * absolute and escaping ones included; the following calls stay confined
 * (an escaping link is KVRO_E_LINK, never the bytes outside). Hard links
 * share kvro_info.id and count their names in nlink.
 */
#include "support.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"

#define SECRET "the bytes outside the root\n"
#define LONG_TARGET_LEN 300

static char *scratch; /* scratch/src is the tree; scratch/outside.txt is not in it */

static void link_at(const char *rel, const char *target)
{
    char *p = t_fmt("%s/src/%s", scratch, rel);
    if (symlink(target, p) != 0)
        fail_msg("symlink %s: %s", p, strerror(errno));
    free(p);
}

static void put(const char *rel, const char *text)
{
    char *p = t_fmt("%s/%s", scratch, rel);
    t_write(p, text, strlen(text));
    free(p);
}

static int group_setup(void **state)
{
    (void)state;
    scratch = t_tempdir("links");
    put("outside.txt", SECRET);
    put("src/a.txt", "alpha");
    put("src/d/f.txt", "in d");
    link_at("rel", "a.txt");
    link_at("dlink", "d");
    link_at("d/up", "../a.txt");
    link_at("abs", "/etc/passwd");
    link_at("esc", "../outside.txt");
    link_at("d/esc2", "../../outside.txt");
    link_at("dang", "nowhere");
    link_at("loop1", "loop2");
    link_at("loop2", "loop1");
    char *lt = malloc(LONG_TARGET_LEN + 1);
    memset(lt, 'x', LONG_TARGET_LEN);
    lt[LONG_TARGET_LEN] = '\0';
    link_at("longl", lt);
    free(lt);
    require_tool("tar");
    char *cmd = t_fmt("cd '%s' && ln src/a.txt src/hard && "
                      "tar --format=gnu -cf gnu.tar -C src . && "
                      "tar --format=pax -cf pax.tar -C src . && "
                      "tar --format=gnu -czf gnu.tar.gz -C src . && "
                      "tar --format=pax -czf pax.tar.gz -C src .",
                      scratch);
    char *out, *err;
    if (t_run(cmd, &out, &err) != 0)
        fail_msg("%s: %s", cmd, err);
    free(cmd), free(out), free(err);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    t_rmrf(scratch);
    free(scratch);
    return 0;
}

/* The sources: the directory, and each archive by path and from memory. */
static const char *const sources[] = {"src", "gnu.tar", "pax.tar", "gnu.tar.gz", "pax.tar.gz"};
#define NSOURCES (sizeof sources / sizeof *sources)

static kvro *open_source(size_t i, bool memory, void **keep)
{
    char *p = t_join(scratch, sources[i]);
    kvro *kv = NULL;
    kvro_error err;
    *keep = NULL;
    if (!memory) {
        assert_status(kvro_open(p, &kv, &err), KVRO_OK, &err);
    } else {
        size_t n;
        *keep = t_slurp(p, &n);
        kvro_io *io = t_mem_io(*keep, n);
        kvro_options o = {0};
        assert_status(kvro_open_io(io, &o, &kv, &err), KVRO_OK, &err);
        kvro_io_close(io);
    }
    free(p);
    return kv;
}

/* Runs CHECK over every source, each archive also from memory. */
static void each_source(void (*check)(kvro *kv, const char *what))
{
    for (size_t i = 0; i < NSOURCES; i++)
        for (int memory = 0; memory < 2; memory++) {
            if (memory && i == 0)
                continue; /* a directory has no bytes to hold */
            void *keep;
            kvro *kv = open_source(i, memory, &keep);
            char *what = t_fmt("%s%s", sources[i], memory ? " (memory)" : "");
            print_message("  %s\n", what);
            check(kv, what);
            free(what);
            kvro_close(kv);
            free(keep);
        }
}

static void want_link(kvro *kv, const char *key, const char *target)
{
    kvro_info st;
    kvro_error err;
    assert_status(kvro_lstat(kv, key, &st, &err), KVRO_OK, &err);
    assert_int_equal(st.kind, KVRO_KIND_LINK);
    assert_int_equal(st.size, (int64_t)strlen(target));
    char buf[512];
    size_t len = 99;
    assert_status(kvro_readlink(kv, key, buf, sizeof buf, &len, &err), KVRO_OK, &err);
    assert_string_equal(buf, target);
    assert_int_equal(len, strlen(target));
}

/* ---------------------------------------------------------------- tests */

static void check_no_follow(kvro *kv, const char *what)
{
    (void)what;
    want_link(kv, "rel", "a.txt");
    want_link(kv, "dlink", "d");
    want_link(kv, "abs", "/etc/passwd");
    want_link(kv, "esc", "../outside.txt");
    want_link(kv, "d/esc2", "../../outside.txt");
    want_link(kv, "dang", "nowhere");
    want_link(kv, "loop1", "loop2");
    /* Links among the parents are followed; the last component is not. */
    want_link(kv, "dlink/up", "../a.txt");
    want_link(kv, "./dlink/esc2", "../../outside.txt");
    kvro_info st;
    kvro_error err;
    assert_status(kvro_lstat(kv, "dlink/f.txt", &st, &err), KVRO_OK, &err);
    assert_int_equal(st.kind, KVRO_KIND_FILE);
    assert_int_equal(st.size, 4);
    assert_status(kvro_lstat(kv, "a.txt", &st, &err), KVRO_OK, &err);
    assert_int_equal(st.kind, KVRO_KIND_FILE);
    assert_status(kvro_lstat(kv, "d", &st, &err), KVRO_OK, &err);
    assert_int_equal(st.kind, KVRO_KIND_DIR);
    /* A trailing '/' resolves the link (POSIX). */
    assert_status(kvro_lstat(kv, "dlink/", &st, &err), KVRO_OK, &err);
    assert_int_equal(st.kind, KVRO_KIND_DIR);
    assert_status(kvro_lstat(kv, "nope", &st, &err), KVRO_E_NOT_FOUND, &err);
    assert_status(kvro_lstat(kv, "esc/x", &st, &err), KVRO_E_LINK, &err);
}

static void test_lstat_readlink(void **state)
{
    (void)state;
    each_source(check_no_follow);
}

static void check_confined(kvro *kv, const char *what)
{
    (void)what;
    kvro_info st;
    kvro_error err;
    char buf[256];
    int64_t n;
    const char *out[] = {"abs", "esc", "d/esc2", "dlink/esc2", "loop1", "esc/x"};
    for (size_t i = 0; i < sizeof out / sizeof *out; i++) {
        assert_status(kvro_stat(kv, out[i], &st, &err), KVRO_E_LINK, &err);
        memset(buf, 0, sizeof buf);
        n = -1;
        assert_status(kvro_read(kv, out[i], 0, sizeof buf, buf, &n, &err), KVRO_E_LINK, &err);
        assert_int_equal(n, 0);
        assert_null(strstr(buf, "outside"));
        assert_string_equal(err.key, out[i]);
    }
    assert_status(kvro_stat(kv, "dang", &st, &err), KVRO_E_NOT_FOUND, &err);
    /* Inside, links are served as their targets. */
    assert_status(kvro_read(kv, "dlink/up", 0, sizeof buf, buf, &n, &err), KVRO_OK, &err);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "alpha", 5);
    assert_status(kvro_stat(kv, "dlink", &st, &err), KVRO_OK, &err);
    assert_int_equal(st.kind, KVRO_KIND_DIR);
    /* "../x" is never a key. */
    assert_status(kvro_lstat(kv, "../outside.txt", &st, &err), KVRO_E_BAD_KEY, &err);
    assert_status(kvro_readlink(kv, "d/../esc", buf, sizeof buf, NULL, &err), KVRO_E_BAD_KEY,
                  &err);
}

static void test_following_stays_confined(void **state)
{
    (void)state;
    each_source(check_confined);
}

typedef struct seen {
    char text[2048];
    int failed;
} seen;

static int seen_entry(void *arg, const char *name, kvro_status s, const kvro_info *info)
{
    seen *v = arg;
    size_t o = strlen(v->text);
    char k = s != KVRO_OK ? '!'
             : info->kind == KVRO_KIND_DIR ? 'd'
             : info->kind == KVRO_KIND_LINK ? 'l'
                                             : 'f';
    snprintf(v->text + o, sizeof v->text - o, "%s:%c ", name, k);
    v->failed += s != KVRO_OK;
    return 0;
}

static int seen_kind(void *arg, const char *name, kvro_kind kind)
{
    kvro_info st = {.kind = kind};
    return seen_entry(arg, name, KVRO_OK, &st);
}

static void check_listing(kvro *kv, const char *what)
{
    (void)what;
    kvro_error err;
    seen v = {0};
    assert_status(kvro_list_info(kv, "", KVRO_NOFOLLOW, seen_entry, &v, &err), KVRO_OK, &err);
    assert_string_equal(v.text, "a.txt:f abs:l d:d dang:l dlink:l esc:l hard:f longl:l loop1:l "
                                "loop2:l rel:l ");
    /* Following: links as their targets; those that lead nowhere inside
     * are left out, as kvro_list always did. */
    memset(&v, 0, sizeof v);
    assert_status(kvro_list_info(kv, "", 0, seen_entry, &v, &err), KVRO_OK, &err);
    assert_string_equal(v.text, "a.txt:f d:d dlink:d hard:f rel:f ");
    memset(&v, 0, sizeof v);
    assert_status(kvro_list(kv, "", seen_kind, &v, &err), KVRO_OK, &err);
    assert_string_equal(v.text, "a.txt:f d:d dlink:d hard:f rel:f ");
    /* Through a link to a directory. */
    memset(&v, 0, sizeof v);
    assert_status(kvro_list_info(kv, "dlink", KVRO_NOFOLLOW, seen_entry, &v, &err), KVRO_OK,
                  &err);
    assert_string_equal(v.text, "esc2:l f.txt:f up:l ");
    memset(&v, 0, sizeof v);
    assert_status(kvro_list(kv, "dlink", seen_kind, &v, &err), KVRO_OK, &err);
    assert_string_equal(v.text, "f.txt:f up:f ");
    assert_status(kvro_list_info(kv, "esc", KVRO_NOFOLLOW, seen_entry, &v, &err), KVRO_E_LINK,
                  &err);
    assert_status(kvro_list_info(kv, "", 4, seen_entry, &v, &err), KVRO_E_INVALID, &err);
}

static void test_list_info(void **state)
{
    (void)state;
    each_source(check_listing);
}

static void check_hard_links(kvro *kv, const char *what)
{
    kvro_info a, h, f, d, r, l;
    kvro_error err;
    assert_status(kvro_stat(kv, "a.txt", &a, &err), KVRO_OK, &err);
    assert_status(kvro_lstat(kv, "hard", &h, &err), KVRO_OK, &err);
    assert_status(kvro_stat(kv, "d/f.txt", &f, &err), KVRO_OK, &err);
    assert_status(kvro_stat(kv, "d", &d, &err), KVRO_OK, &err);
    assert_status(kvro_stat(kv, "rel", &r, &err), KVRO_OK, &err);
    assert_status(kvro_lstat(kv, "rel", &l, &err), KVRO_OK, &err);
    if (a.id == 0 || a.id != h.id)
        fail_msg("%s: a.txt and hard have ids %llu and %llu", what, (unsigned long long)a.id,
                 (unsigned long long)h.id);
    assert_int_equal(a.nlink, 2);
    assert_int_equal(h.nlink, 2);
    assert_int_equal(h.kind, KVRO_KIND_FILE);
    assert_int_equal(h.size, 5);
    assert_int_equal(f.nlink, 1);
    assert_true(f.id != 0 && f.id != a.id && d.id != 0 && d.id != a.id && d.id != f.id);
    /* A followed link is its target; the link itself is its own entry. */
    assert_int_equal(r.id, a.id);
    assert_true(l.id != 0 && l.id != a.id);
    /* Stable for the handle's life. */
    kvro_info again;
    assert_status(kvro_stat(kv, "hard", &again, &err), KVRO_OK, &err);
    assert_int_equal(again.id, a.id);
}

static void test_hard_links(void **state)
{
    (void)state;
    each_source(check_hard_links);
}

static void check_readlink_contract(kvro *kv, const char *what)
{
    (void)what;
    kvro_error err;
    char buf[LONG_TARGET_LEN + 8];
    size_t len = 0;
    /* Too small: SIZE - 1 bytes and a NUL, *LEN the whole length. */
    assert_status(kvro_readlink(kv, "rel", buf, 3, &len, &err), KVRO_OK, &err);
    assert_string_equal(buf, "a.");
    assert_int_equal(len, 5);
    assert_status(kvro_readlink(kv, "rel", buf, 5, &len, &err), KVRO_OK, &err);
    assert_string_equal(buf, "a.tx");
    assert_int_equal(len, 5);
    assert_status(kvro_readlink(kv, "rel", buf, 6, &len, &err), KVRO_OK, &err);
    assert_string_equal(buf, "a.txt");
    /* Only the length. */
    len = 0;
    assert_status(kvro_readlink(kv, "longl", NULL, 0, &len, &err), KVRO_OK, &err);
    assert_int_equal(len, LONG_TARGET_LEN);
    assert_status(kvro_readlink(kv, "longl", buf, sizeof buf, NULL, &err), KVRO_OK, &err);
    assert_int_equal(strlen(buf), LONG_TARGET_LEN);
    assert_status(kvro_readlink(kv, "rel", NULL, 4, &len, &err), KVRO_E_INVALID, &err);
    /* Not a link: KVRO_E_INVALID, an empty buffer. */
    const char *not_links[] = {"a.txt", "d", "", "hard", "dlink/f.txt"};
    for (size_t i = 0; i < sizeof not_links / sizeof *not_links; i++) {
        strcpy(buf, "junk");
        len = 7;
        assert_status(kvro_readlink(kv, not_links[i], buf, sizeof buf, &len, &err),
                      KVRO_E_INVALID, &err);
        assert_string_equal(buf, "");
        assert_int_equal(len, 0);
    }
    assert_status(kvro_readlink(kv, "nope", buf, sizeof buf, &len, &err), KVRO_E_NOT_FOUND,
                  &err);
}

static void test_readlink_contract(void **state)
{
    (void)state;
    each_source(check_readlink_contract);
}

/* The .tar.gz index saved by the first open and loaded by the next gives
 * the same answers (the hard-link counts are rebuilt at load). */
static void test_targz_reopened(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        for (size_t i = 3; i < NSOURCES; i++) {
            void *keep;
            kvro *kv = open_source(i, false, &keep);
            check_hard_links(kv, sources[i]);
            check_no_follow(kv, sources[i]);
            kvro_close(kv);
        }
    }
}

/* The FS handle of a directory says the same. */
static void test_fs_handle(void **state)
{
    (void)state;
    char *p = t_join(scratch, "src");
    kvro_fs *fs;
    kvro_error err;
    kvro_options o = {0};
    assert_status(kvro_fs_open(p, KVRO_FS_RDONLY, &o, &fs, &err), KVRO_OK, &err);
    kvro_info st;
    assert_status(kvro_fs_lstat(fs, "esc", &st, &err), KVRO_OK, &err);
    assert_int_equal(st.kind, KVRO_KIND_LINK);
    assert_true(st.read_only);
    char buf[64];
    assert_status(kvro_fs_readlink(fs, "abs", buf, sizeof buf, NULL, &err), KVRO_OK, &err);
    assert_string_equal(buf, "/etc/passwd");
    seen v = {0};
    assert_status(kvro_fs_list_info(fs, "d", KVRO_NOFOLLOW, seen_entry, &v, &err), KVRO_OK,
                  &err);
    assert_string_equal(v.text, "esc2:l f.txt:f up:l ");
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lstat_readlink),
        cmocka_unit_test(test_following_stays_confined),
        cmocka_unit_test(test_list_info),
        cmocka_unit_test(test_hard_links),
        cmocka_unit_test(test_readlink_contract),
        cmocka_unit_test(test_targz_reopened),
        cmocka_unit_test(test_fs_handle),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
