/*
 * test_tar_crafted.c — the tar backend on archives written block by block
 * here (tb_* in tar_test.c), so each case is exactly the bytes it claims:
 * name rules, links, pax and GNU extensions, members over 8 GiB, special
 * members (sparse ones: test_tar_sparse.c), end markers, checksums,
 * truncation at every block and garbage.
 */
#include "tar_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"

static void test_file_then_dir_conflict(void **state)
{
    (void)state;
    tarbuf t = {0};
    tb_file(&t, "a", "x");
    tb_file(&t, "a/b", "y");
    tb_end(&t);
    char *p = tb_save(&t, "conflict1.tar");
    open_fails(p, KVRO_E_CORRUPT, "member 'a/b' at offset 1024");
    free(p);

    tb_file(&t, "a/b", "y");
    tb_file(&t, "a", "x");
    tb_end(&t);
    p = tb_save(&t, "conflict2.tar");
    open_fails(p, KVRO_E_CORRUPT, "member 'a' at offset 1024");
    free(p);
}

static void remember_warning(void *arg, const char *message)
{
    char *said = arg;
    assert_string_equal(said, ""); /* once an open */
    snprintf(said, 512, "%s", message);
}

static void test_dotdot_never_served(void **state)
{
    (void)state;
    tarbuf t = {0};
    tb_file(&t, "../x", "evil1");
    tb_file(&t, "a/../../x", "evil2");
    tb_file(&t, "a/./x", "evil3");
    tb_file(&t, "x", "good");
    tb_file(&t, "/abs/file", "absolute");
    tb_header(&t, "h1", '1', 0, "../x");
    tb_header(&t, "h2", '1', 0, "a/../../x");
    tb_header(&t, "h3", '1', 0, "x");
    tb_end(&t);
    char *p = tb_save(&t, "dotdot.tar");
    kvro *kv = open_ok(p, true);
    want_value(kv, "x", "good");
    want_value(kv, "abs/file", "absolute");
    want_value(kv, "h3", "good");
    want_status(kv, "h1", KVRO_E_NOT_FOUND, NULL);
    want_status(kv, "h2", KVRO_E_NOT_FOUND, NULL);
    want_status(kv, "a", KVRO_E_NOT_FOUND, NULL);
    want_names(kv, "", "abs h3 x");
    kvro_stats st = stats_of(kv);
    assert_int_equal(st.skipped, 5);
    assert_non_null(strstr(st.first_skipped, "'../x' at offset 0"));
    kvro_close(kv);

    /* The public route: one warning during the open, naming count and cause. */
    char said[512] = "";
    kvro_options o = {.warning = remember_warning, .warning_arg = said};
    kvro_error err;
    assert_int_equal(kvro_open_opts(p, &o, &kv, &err), KVRO_OK);
    assert_non_null(strstr(said, "5 members skipped"));
    assert_non_null(strstr(said, "'../x' at offset 0: its path has a '.' or '..' component"));
    kvro_close(kv);
    free(p);

    /* Alone, "../x" is not served as "x" either. */
    tb_file(&t, "../x", "evil");
    tb_end(&t);
    p = tb_save(&t, "dotdot2.tar");
    kv = open_ok(p, true);
    want_status(kv, "x", KVRO_E_NOT_FOUND, NULL);
    want_names(kv, "", "");
    kvro_close(kv);
    free(p);
}

static void test_duplicates_replace(void **state)
{
    (void)state;
    tarbuf t = {0};
    tb_file(&t, "dup", "first");
    tb_header(&t, "d/", '5', 0, NULL); /* an empty directory becomes a file */
    tb_file(&t, "f", "file, then a directory");
    tb_header(&t, "f/", '5', 0, NULL);
    tb_file(&t, "f/g", "inside");
    tb_file(&t, "dup", "second!");
    tb_file(&t, "d", "now a file");
    tb_end(&t);
    char *p = tb_save(&t, "dup.tar");
    kvro *kv = open_ok(p, true);
    want_value(kv, "dup", "second!");
    int64_t size;
    assert_int_equal(kvro_size(kv, "dup", &size, NULL), KVRO_OK);
    assert_int_equal(size, 7);
    want_value(kv, "d", "now a file");
    want_value(kv, "f/g", "inside");
    want_names(kv, "", "d dup f");
    kvro_close(kv);
    free(p);
}

static void test_symlinks(void **state)
{
    (void)state;
    tarbuf t = {0};
    tb_file(&t, "t.txt", "target");
    tb_header(&t, "d/", '5', 0, NULL);
    tb_header(&t, "d/rel", '2', 0, "../t.txt");
    tb_header(&t, "d/dot", '2', 0, "./rel");
    tb_header(&t, "dl", '2', 0, "d");
    tb_header(&t, "loop1", '2', 0, "loop2");
    tb_header(&t, "loop2", '2', 0, "loop1");
    tb_header(&t, "self", '2', 0, "self");
    tb_header(&t, "esc", '2', 0, "../../etc/passwd");
    tb_header(&t, "d/esc2", '2', 0, "../../t.txt");
    tb_header(&t, "abs", '2', 0, "/etc/passwd");
    tb_header(&t, "dangling", '2', 0, "nope");
    tb_header(&t, "through", '2', 0, "dl/rel");
    /* Two directories linking to each other: each link alone stays inside,
     * together they make an infinite tree (ping/to_pong/to_ping/...). */
    tb_header(&t, "ping/", '5', 0, NULL);
    tb_header(&t, "pong/", '5', 0, NULL);
    tb_file(&t, "pong/ball", "ball");
    tb_header(&t, "ping/to_pong", '2', 0, "../pong");
    tb_header(&t, "pong/to_ping", '2', 0, "../ping");
    tb_header(&t, "d/up", '2', 0, "..");
    for (int i = 0; i < 30; i++) { /* a chain of 30 links is fine */
        char name[16], to[16];
        snprintf(name, sizeof name, "c%02d", i);
        snprintf(to, sizeof to, i == 29 ? "t.txt" : "c%02d", i + 1);
        tb_header(&t, name, '2', 0, to);
    }
    tb_end(&t);
    char *p = tb_save(&t, "symlinks.tar");
    kvro *kv = open_ok(p, true);
    want_value(kv, "d/rel", "target");
    want_value(kv, "d/dot", "target");
    want_value(kv, "dl/rel", "target");
    want_value(kv, "through", "target");
    want_value(kv, "c00", "target");
    want_names(kv, "dl", "dot rel");
    want_status(kv, "loop1", KVRO_E_LINK, "loop");
    want_status(kv, "self", KVRO_E_LINK, "loop");
    want_status(kv, "esc", KVRO_E_LINK, "above the archive root");
    want_status(kv, "d/esc2", KVRO_E_LINK, "above the archive root");
    want_status(kv, "abs", KVRO_E_LINK, "outside the archive");
    want_status(kv, "dangling", KVRO_E_NOT_FOUND, NULL);
    want_value(kv, "ping/to_pong/ball", "ball");
    want_status(kv, "ping/to_pong/to_ping", KVRO_E_LINK, "loop");
    want_status(kv, "ping/to_pong/to_ping/to_pong/ball", KVRO_E_LINK, "loop");
    want_status(kv, "d/up", KVRO_E_LINK, "loop");
    want_status(kv, "d/up/t.txt", KVRO_E_LINK, "loop");
    /* Listings leave out exactly the children whose keys loop. */
    want_names(kv, "ping", "to_pong");
    want_names(kv, "ping/to_pong", "ball");
    want_names(kv, "d", "dot rel");
    int64_t got;
    char buf[8];
    kvro_error e;
    assert_int_equal(kvro_read(kv, "esc", 0, 8, buf, &got, &e), KVRO_E_LINK);
    char *names = names_of(kv, "");
    assert_string_equal(names, "c00 c01 c02 c03 c04 c05 c06 c07 c08 c09 c10 c11 c12 c13 c14 c15 "
                               "c16 c17 c18 c19 c20 c21 c22 c23 c24 c25 c26 c27 c28 c29 d dl "
                               "ping pong t.txt through");
    free(names);
    kvro_close(kv);
    free(p);
}

/* Found writing fuzz_tar's walk (a listed entry must stat as listed): a
 * directory reached through links ("l" -> "a/b", "a/b/up" -> "..", so "l/up"
 * is "a") listed its subdirectory "b", whose key "l/up/b" comes back to a
 * directory the walk passed: stat said KVRO_E_LINK. Such a listing holds
 * exactly the children that resolve. */
static void test_listing_through_links(void **state)
{
    (void)state;
    tarbuf t = {0};
    tb_header(&t, "a/", '5', 0, NULL);
    tb_header(&t, "a/b/", '5', 0, NULL);
    tb_file(&t, "a/f", "file");
    tb_header(&t, "l", '2', 0, "a/b");
    tb_header(&t, "a/b/up", '2', 0, "..");
    tb_end(&t);
    char *p = tb_save(&t, "through_links.tar");
    kvro *kv = open_ok(p, true);
    want_names(kv, "l", "up");
    want_names(kv, "l/up", "f");
    want_status(kv, "l/up/b", KVRO_E_LINK, "loop");
    want_value(kv, "l/up/f", "file");
    want_names(kv, "a", "b f"); /* reached directly: every child */
    want_names(kv, "a/b", "");  /* "a/b/up" is a loop */
    kvro_close(kv);
    free(p);
}

static void test_hard_links(void **state)
{
    (void)state;
    tarbuf t = {0};
    tb_header(&t, "early", '1', 0, "later.txt"); /* resolved at lookup: order does not matter */
    tb_file(&t, "later.txt", "content");
    tb_header(&t, "missing", '1', 0, "nowhere");
    tb_header(&t, "sub/h", '1', 0, "./later.txt");
    tb_end(&t);
    char *p = tb_save(&t, "hard.tar");
    kvro *kv = open_ok(p, true);
    want_value(kv, "early", "content");
    want_value(kv, "sub/h", "content");
    want_status(kv, "missing", KVRO_E_CORRUPT, "nowhere");
    want_names(kv, "", "early later.txt sub");
    kvro_close(kv);
    free(p);
}

static void test_pax_overrides(void **state)
{
    (void)state;
    tarbuf t = {0};
    tb_pax(&t, 'x', "path", "real/name.txt");
    tb_file(&t, "bogus", "hello");
    /* The header says 0 bytes; pax says 10, and the data is 10 bytes. */
    tb_pax(&t, 'x', "size", "10");
    tb_header(&t, "sized", '0', 0, NULL);
    tb_add(&t, "0123456789", 10);
    tb_pad(&t);
    tb_file(&t, "after", "ok");
    tb_pax(&t, 'g', "mtime", "1234.5");
    tb_file(&t, "global", "g");
    tb_pax(&t, 'x', "mtime", "-1.25");
    tb_file(&t, "negative", "n");
    tb_pax(&t, 'x', "linkpath", "after");
    tb_header(&t, "sym", '2', 0, "bogus");
    tb_pax(&t, 'x', "path", ""); /* empty: the header's own name */
    tb_file(&t, "plain", "p");
    tb_end(&t);
    char *p = tb_save(&t, "pax.tar");
    kvro *kv = open_ok(p, true);
    want_value(kv, "real/name.txt", "hello");
    want_status(kv, "bogus", KVRO_E_NOT_FOUND, NULL);
    want_value(kv, "sized", "0123456789");
    want_value(kv, "after", "ok");
    want_value(kv, "sym", "ok");
    want_value(kv, "plain", "p");
    kvro_info st;
    assert_int_equal(kvro_stat(kv, "global", &st, NULL), KVRO_OK);
    assert_int_equal(st.mtime, 1234);
    assert_int_equal(st.mtime_nsec, 500000000);
    assert_int_equal(kvro_stat(kv, "negative", &st, NULL), KVRO_OK);
    assert_int_equal(st.mtime, -2);
    assert_int_equal(st.mtime_nsec, 750000000);
    kvro_close(kv);
    free(p);

    /* A record whose length is not its length. */
    tb_ext(&t, 'x', "12 path=x\n", 10);
    tb_file(&t, "f", "f");
    tb_end(&t);
    p = tb_save(&t, "badpax.tar");
    open_fails(p, KVRO_E_CORRUPT, "pax record at offset 512");
    free(p);
    tb_ext(&t, 'x', "9 path x\n", 9);
    tb_file(&t, "f", "f");
    tb_end(&t);
    p = tb_save(&t, "badpax2.tar");
    open_fails(p, KVRO_E_CORRUPT, "not KEY=VALUE");
    free(p);
    tb_pax(&t, 'x', "size", "12x");
    tb_file(&t, "f", "f");
    tb_end(&t);
    p = tb_save(&t, "badpax3.tar");
    open_fails(p, KVRO_E_CORRUPT, "bad pax size");
    free(p);
}

static void test_gnu_long_names_and_base256(void **state)
{
    (void)state;
    char *longname = rep('n', 300), *longtarget = t_fmt("%s", longname);
    tarbuf t = {0};
    tb_ext(&t, 'L', longname, strlen(longname) + 1); /* GNU counts the NUL */
    tb_file(&t, "truncated-name", "long");
    tb_ext(&t, 'K', longtarget, strlen(longtarget) + 1);
    tb_header(&t, "ln", '2', 0, "truncated-target");
    /* A small size in base-256 form. */
    unsigned char h[512];
    tb_raw_header(h, "b256", '0', 0, NULL);
    memset(h + 124, 0, 12);
    h[124] = 0x80;
    h[135] = 5;
    tb_fix_sum(h);
    tb_add(&t, h, 512);
    tb_add(&t, "12345", 5);
    tb_pad(&t);
    tb_file(&t, "next", "n");
    tb_end(&t);
    char *p = tb_save(&t, "gnu.tar");
    kvro *kv = open_ok(p, true);
    want_value(kv, longname, "long");
    want_value(kv, "ln", "long");
    want_value(kv, "b256", "12345");
    want_value(kv, "next", "n");
    kvro_close(kv);
    free(p);
    free(longname);
    free(longtarget);
}

/* An archive whose one member is 8 GiB + 5 bytes, written as a sparse
 * file: the data is a hole except "WXYZ" at 8 GiB + 1. */
static void huge_member(bool pax)
{
    const int64_t size = (INT64_C(8) << 30) + 5;
    tarbuf t = {0};
    if (pax)
        tb_pax(&t, 'x', "size", "8589934597");
    tb_header(&t, "huge", '0', pax ? 0 : size, NULL);
    int64_t data = (int64_t)t.n;
    int64_t tail = data + ((size + 511) & ~INT64_C(511));
    char *path = t_join(tb_dir, pax ? "huge-pax.tar" : "huge-gnu.tar");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, t.p, t.n, 0), (ssize_t)t.n);
    assert_int_equal(pwrite(fd, "WXYZ", 4, data + (INT64_C(8) << 30) + 1), 4);
    free(t.p);
    memset(&t, 0, sizeof t);
    tb_file(&t, "tail.txt", "after the giant");
    tb_end(&t);
    assert_int_equal(pwrite(fd, t.p, t.n, tail), (ssize_t)t.n);
    free(t.p);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_true(st.st_blocks * 512 < (INT64_C(1) << 30)); /* it is sparse */
    close(fd);

    kvro *kv = open_ok(path, false);
    int64_t n;
    assert_int_equal(kvro_size(kv, "huge", &n, NULL), KVRO_OK);
    assert_int_equal(n, size);
    char buf[16];
    int64_t got;
    assert_int_equal(kvro_read(kv, "huge", (INT64_C(8) << 30) + 1, 16, buf, &got, NULL), KVRO_OK);
    assert_int_equal(got, 4);
    assert_memory_equal(buf, "WXYZ", 4);
    assert_int_equal(kvro_read(kv, "huge", (INT64_C(8) << 30) - 2, 4, buf, &got, NULL), KVRO_OK);
    assert_int_equal(got, 4);
    assert_memory_equal(buf, "\0\0\0W", 4);
    want_value(kv, "tail.txt", "after the giant");
    kvro_close(kv);
    unlink(path);
    free(path);
}

static void test_member_over_8gib(void **state)
{
    (void)state;
    huge_member(false);
    huge_member(true);
}

/* Devices and FIFOs are listed nowhere and served as nothing. (Sparse
 * members are read: test_tar_sparse.c.) */
static void test_special(void **state)
{
    (void)state;
    tarbuf t = {0};
    tb_header(&t, "chr", '3', 0, NULL);
    tb_header(&t, "blk", '4', 0, NULL);
    tb_header(&t, "fifo", '6', 0, NULL);
    tb_file(&t, "ok", "fine");
    tb_end(&t);
    char *p = tb_save(&t, "special.tar");
    kvro *kv = open_ok(p, true);
    want_status(kv, "chr", KVRO_E_UNSUPPORTED, NULL);
    want_status(kv, "fifo", KVRO_E_UNSUPPORTED, NULL);
    char buf[4];
    int64_t got;
    assert_int_equal(kvro_read(kv, "blk", 0, 4, buf, &got, NULL), KVRO_E_UNSUPPORTED);
    want_names(kv, "", "ok");
    want_value(kv, "ok", "fine");
    kvro_close(kv);
    free(p);
}

static void test_names_and_implied_dirs(void **state)
{
    (void)state;
    tarbuf t = {0};
    tb_header(&t, "./", '5', 0, NULL);
    tb_file(&t, "p/q/r.txt", "deep");
    tb_header(&t, "//n1//n2/", '5', 0, NULL);
    tb_header(&t, "olddir/", '\0', 0, NULL); /* v7: a trailing '/' on a regular type */
    tb_file(&t, "./././dots", "d");
    tb_header(&t, "sized-dir/", '5', 1024, NULL); /* GNU tar: no data after a DIRTYPE */
    tb_file(&t, "sized-dir/in", "in");
    tb_end(&t);
    char *p = tb_save(&t, "names.tar");
    kvro *kv = open_ok(p, true);
    kvro_info st;
    assert_int_equal(kvro_stat(kv, "p", &st, NULL), KVRO_OK);
    assert_int_equal(st.kind, KVRO_KIND_DIR);
    assert_false(st.has_mode); /* implied, no member of its own */
    assert_int_equal(kvro_stat(kv, "n1/n2", &st, NULL), KVRO_OK);
    assert_int_equal(st.kind, KVRO_KIND_DIR);
    assert_true(st.has_mode);
    assert_int_equal(st.mode, 0644);
    assert_int_equal(kvro_stat(kv, "olddir", &st, NULL), KVRO_OK);
    assert_int_equal(st.kind, KVRO_KIND_DIR);
    want_names(kv, "", "dots n1 olddir p sized-dir");
    want_value(kv, "sized-dir/in", "in");
    want_names(kv, "p", "q");
    want_value(kv, "p/q/r.txt", "deep");
    want_value(kv, "dots", "d");
    int64_t got;
    char c;
    assert_int_equal(kvro_read(kv, "p", 0, 1, &c, &got, NULL), KVRO_E_IS_DIR);
    kvro_error e;
    assert_int_equal(kvro_list(kv, "dots", list_collect, NULL, &e), KVRO_E_NOT_DIR);
    assert_int_equal(kvro_stat(kv, "dots/x", &st, &e), KVRO_E_NOT_DIR);
    kvro_close(kv);
    free(p);
}

static void test_end_of_archive(void **state)
{
    (void)state;
    static const unsigned char zero[512];
    const char *cases[] = {"none", "one", "one+junk", "two+junk"};
    for (int i = 0; i < 4; i++) {
        tarbuf t = {0};
        tb_file(&t, "f", "data");
        if (i >= 1)
            tb_add(&t, zero, 512);
        if (i == 3)
            tb_add(&t, zero, 512);
        if (i >= 2)
            tb_add(&t, "junk after the end of the archive", 33);
        char *name = t_fmt("end-%s.tar", cases[i]);
        char *p = tb_save(&t, name);
        kvro *kv = open_ok(p, true);
        want_value(kv, "f", "data");
        kvro_close(kv);
        free(p);
        free(name);
    }
    /* An empty file is not an archive (GNU tar and bsdtar refuse it),
     * though two zero blocks are an empty one. */
    tarbuf t = {0};
    char *p = tb_save_n(&t, "empty.tar", 0);
    open_fails(p, KVRO_E_CORRUPT, "an empty file");
    kvro *kv = NULL;
    kvro_error e;
    assert_int_equal(kvro_open(p, &kv, &e), KVRO_E_UNSUPPORTED);
    assert_non_null(strstr(e.detail, "an empty file"));
    free(p);
    tb_end(&t);
    p = tb_save(&t, "zeros.tar");
    kv = open_ok(p, false);
    want_names(kv, "", "");
    kvro_close(kv);
    free(p);
}

static void test_checksums(void **state)
{
    (void)state;
    tarbuf t = {0};
    tb_file(&t, "one", "1");
    tb_file(&t, "two", "2");
    tb_end(&t);
    t.p[1024 + 1] ^= 0x20; /* the second header's name */
    char *p = tb_save(&t, "badsum.tar");
    open_fails(p, KVRO_E_CORRUPT, "tar: bad header checksum at offset 1024");
    free(p);

    /* Old tars summed signed chars: accepted, like GNU tar does. */
    unsigned char h[512];
    tb_raw_header(h, "\xe9t\xe9", '0', 1, NULL);
    memset(h + 148, ' ', 8);
    int sum = 0;
    for (int i = 0; i < 512; i++)
        sum += (signed char)h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
    tb_add(&t, h, 512);
    tb_add(&t, "s", 1);
    tb_pad(&t);
    tb_end(&t);
    p = tb_save(&t, "signed.tar");
    kvro *kv = open_ok(p, false);
    want_value(kv, "\xe9t\xe9", "s");
    kvro_close(kv);
    free(p);
}

static void test_size_past_eof_and_garbage(void **state)
{
    (void)state;
    tarbuf t = {0};
    tb_header(&t, "big", '0', 100000, NULL);
    tb_add(&t, "only a little", 13);
    tb_pad(&t);
    char *p = tb_save(&t, "pasteof.tar");
    open_fails(p, KVRO_E_CORRUPT, "member 'big' at offset 0: its 100000 bytes of data run past");
    free(p);

    tb_file(&t, "f", "data");
    unsigned char junk[2048];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = t_pattern(42, i) | 1; /* never a zero block */
    tb_add(&t, junk, sizeof junk);
    p = tb_save(&t, "garbage.tar");
    open_fails(p, KVRO_E_CORRUPT, "tar: bad header checksum at offset 1024");
    free(p);

    tb_file(&t, "f", "data");
    tb_add(&t, junk, 100); /* a header cut short */
    p = tb_save(&t, "short.tar");
    open_fails(p, KVRO_E_CORRUPT, "truncated header at offset 1024");
    free(p);
}

/* A member as its first header's offset and its name (so presence can be
 * checked after a cut), and the end of the last member's padded data. */
typedef struct member_at {
    int64_t start;
    char name[512];
    bool symlink;
} member_at;

/* Cuts ARCHIVE at every 512-byte boundary. The rule: a cut at the start of
 * a member (its first extended header, if any) or at or after the end of
 * the last member's padded data opens, with exactly the members that start
 * before the cut; any other cut is KVRO_E_CORRUPT naming an offset. */
static void truncate_everywhere(const char *archive, const member_at *m, size_t n, int64_t data_end)
{
    size_t len;
    char *data = t_slurp(archive, &len);
    char *cut = t_join(tb_dir, "cut.tar");
    int opened = 0, failed = 0;
    for (size_t b = 0; b <= len; b += 512) {
        t_write(cut, data, b);
        bool ok = (int64_t)b >= data_end;
        for (size_t i = 0; i < n; i++)
            ok |= m[i].start == (int64_t)b;
        ok = ok && b > 0; /* cut at 0 it is an empty file, which is no archive */
        kvro_options o = {.backend = "tar"};
        kvro *kv = NULL;
        kvro_error e;
        kvro_status s = kvro_open_opts(cut, &o, &kv, &e);
        if ((s == KVRO_OK) != ok)
            fprintf(stderr, "cut at %zu: status %d (%s), expected %s\n", b, s, e.detail,
                    ok ? "success" : "KVRO_E_CORRUPT");
        if (!ok) {
            assert_int_equal(s, KVRO_E_CORRUPT);
            assert_non_null(strstr(e.detail, b ? "offset" : "an empty file"));
            failed++;
            continue;
        }
        assert_int_equal(s, KVRO_OK);
        opened++;
        for (size_t i = 0; i < n; i++) {
            if (!m[i].name[0])
                continue;
            bool present;
            assert_int_equal(kvro_mem(kv, m[i].name, &present, NULL), KVRO_OK);
            if (m[i].start < (int64_t)b && !m[i].symlink && !present)
                fprintf(stderr, "cut at %zu: '%s' missing\n", b, m[i].name);
            if (m[i].start < (int64_t)b && !m[i].symlink)
                assert_true(present);
            if (m[i].start >= (int64_t)b)
                assert_false(present);
        }
        kvro_close(kv);
    }
    assert_true(opened > (int)n / 2);
    assert_true(failed > 0);
    unlink(cut);
    free(cut);
    free(data);
}

static void test_truncation_crafted(void **state)
{
    (void)state;
    member_at m[8];
    size_t n = 0;
    tarbuf t = {0};
    char *ls = rep('l', 150);
    char *longname = t_fmt("long/%s", ls);
    free(ls);
#define MARK(nm, sym)                                                                              \
    (m[n].start = (int64_t)t.n, snprintf(m[n].name, 512, "%s", nm), m[n++].symlink = (sym))
    MARK("d", false);
    tb_header(&t, "d/", '5', 0, NULL);
    MARK("d/a", false);
    tb_header(&t, "d/a", '0', 700, NULL);
    for (int i = 0; i < 700; i++)
        tb_add(&t, "a", 1);
    tb_pad(&t);
    MARK("paxfile", false);
    tb_pax(&t, 'x', "path", "paxfile");
    tb_header(&t, "ignored", '0', 1000, NULL);
    for (int i = 0; i < 1000; i++)
        tb_add(&t, "p", 1);
    tb_pad(&t);
    MARK(longname, false);
    tb_ext(&t, 'L', longname, strlen(longname) + 1);
    tb_file(&t, "x", "long name");
    MARK("sym", true);
    tb_header(&t, "sym", '2', 0, "d/a");
    MARK("hard", false);
    tb_header(&t, "hard", '1', 0, "paxfile");
    MARK("empty", false);
    tb_header(&t, "empty", '0', 0, NULL);
#undef MARK
    int64_t end = (int64_t)t.n;
    tb_end(&t);
    char *p = tb_save(&t, "trunc.tar");
    truncate_everywhere(p, m, n, end);
    free(p);
    free(longname);
}

/* The same with a GNU tar --format=posix archive of the full tree, member
 * offsets told by Python's tarfile. */
static void test_truncation_gnu_posix(void **state)
{
    (void)state;
    require_tool("python3");
    require_tool("tar");
    /* A small tree GNU tar writes with pax headers: a long name, a
     * symlink, an empty directory, files of odd sizes. */
    char *src = t_join(tb_dir, "posix-src"), *p;
    for (int i = 0; i < 8; i++) {
        t_write_pattern(p = t_fmt("%s/d/f%d.bin", src, i), (uint64_t)i, (uint64_t)(i * 700)),
            free(p);
    }
    char *longname = rep('n', 150);
    t_write(p = t_fmt("%s/d/%s", src, longname), "long", 4), free(p);
    free(longname);
    t_mkdirs(p = t_join(src, "empty")), free(p);
    assert_int_equal(symlink("d/f1.bin", p = t_join(src, "link")), 0), free(p);
    char *archive = t_join(tb_dir, "posix.tar");
    char *cmd = t_fmt("tar -C '%s' --format=posix -cf '%s' . && python3 -c 'import sys, "
                      "tarfile\nfor m in tarfile.open(sys.argv[1]):\n"
                      "  print(m.offset, m.offset_data + (m.size + 511) // 512 * 512 if "
                      "m.isreg() else m.offset_data, int(m.issym()), m.name)' '%s'",
                      src, archive, archive);
    char *out = NULL;
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    member_at m[64];
    size_t n = 0;
    int64_t end = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        long long start, stop;
        int sym, used;
        assert_int_equal(sscanf(line, "%lld %lld %d %n", &start, &stop, &sym, &used), 3);
        assert_true(n < 64);
        m[n].start = start;
        m[n].symlink = sym;
        const char *name = line + used;
        while (name[0] == '.' && (name[1] == '/' || !name[1]))
            name += name[1] ? 2 : 1;
        snprintf(m[n++].name, sizeof m[0].name, "%s", name);
        end = stop > end ? stop : end;
    }
    assert_true(n > 10);
    truncate_everywhere(archive, m, n, end);
    free(out);
    free(cmd);
    free(archive);
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_then_dir_conflict),
        cmocka_unit_test(test_dotdot_never_served),
        cmocka_unit_test(test_duplicates_replace),
        cmocka_unit_test(test_symlinks),
        cmocka_unit_test(test_listing_through_links),
        cmocka_unit_test(test_hard_links),
        cmocka_unit_test(test_pax_overrides),
        cmocka_unit_test(test_gnu_long_names_and_base256),
        cmocka_unit_test(test_member_over_8gib),
        cmocka_unit_test(test_special),
        cmocka_unit_test(test_names_and_implied_dirs),
        cmocka_unit_test(test_end_of_archive),
        cmocka_unit_test(test_checksums),
        cmocka_unit_test(test_size_past_eof_and_garbage),
        cmocka_unit_test(test_truncation_crafted),
        cmocka_unit_test(test_truncation_gnu_posix),
    };
    int rc = tb_setup(NULL);
    rc |= cmocka_run_group_tests(tests, NULL, NULL);
    tb_teardown(NULL);
    return rc;
}
