/*
 * test_tar.c — the tar backend on archives made by the real tools.
 *
 * A tree on the host (long and UTF-8 names, empty files and directories,
 * hard and symbolic links) archived by GNU tar in every --format, by bsdtar
 * and by Python's tarfile, then read back through kvro and compared with
 * the host tree walked independently with POSIX calls: listings, kinds,
 * sizes, mtimes, modes and every byte. Also bidding and concurrent reads.
 * Hand-made archives (format corners, malformed input) are in
 * test_tar_crafted.c.
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

/* ------------------------------------------------- host tree comparison */

static int by_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Compares kvro's DIR (key KEY) with the host directory HOST, recursively,
 * through stat(2) (links followed, as kvro serves them). */
static void compare_dir(kvro *kv, const char *host, const char *key, int *files)
{
    DIR *d = opendir(host);
    assert_non_null(d);
    char *names[256];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            assert_true(n < 256);
            names[n++] = strdup(de->d_name);
        }
    closedir(d);
    qsort(names, n, sizeof *names, by_str);
    listing l;
    list_of(kv, key, &l);
    if (l.n != n)
        fprintf(stderr, "%s: kvro lists %zu entries, the host %zu\n", host, l.n, n);
    assert_int_equal(l.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(l.names[i], names[i]);
        char *hp = t_join(host, names[i]);
        char *k = key[0] ? t_join(key, names[i]) : strdup(names[i]);
        struct stat st;
        assert_int_equal(stat(hp, &st), 0);
        kvro_info ki;
        kvro_error e;
        assert_int_equal(kvro_stat(kv, k, &ki, &e), KVRO_OK);
        kvro_kind want = S_ISDIR(st.st_mode) ? KVRO_KIND_DIR : KVRO_KIND_FILE;
        assert_int_equal(l.kinds[i], want);
        assert_int_equal(ki.kind, want);
        if (want == KVRO_KIND_DIR) {
            compare_dir(kv, hp, k, files);
        } else {
            size_t hn;
            char *hostdata = t_slurp(hp, &hn);
            int64_t kn;
            char *data = read_all(kv, k, &kn);
            assert_int_equal(kn, (int64_t)hn);
            assert_int_equal(ki.size, (int64_t)st.st_size);
            assert_memory_equal(data, hostdata, hn);
            assert_int_equal(ki.mtime, (int64_t)st.st_mtim.tv_sec);
            assert_true(ki.has_mode);
            assert_int_equal(ki.mode, st.st_mode & 07777);
            /* A read from the middle, and one past the end. */
            if (hn > 10) {
                char buf[7];
                int64_t got;
                assert_int_equal(kvro_read(kv, k, (int64_t)hn - 9, 7, buf, &got, &e), KVRO_OK);
                assert_int_equal(got, 7);
                assert_memory_equal(buf, hostdata + hn - 9, 7);
            }
            int64_t got = -1;
            char c;
            assert_int_equal(kvro_read(kv, k, (int64_t)hn + 5, 1, &c, &got, &e), KVRO_OK);
            assert_int_equal(got, 0);
            free(data);
            free(hostdata);
            ++*files;
        }
        free(hp);
        free(k);
        free(names[i]);
    }
    list_free(&l);
}

enum level {
    LV_V7,    /* names under 100 bytes */
    LV_USTAR, /* paths up to 255 bytes that split at a '/' */
    LV_FULL,  /* paths over 255 bytes, link targets over 100 */
    LV_COUNT
};
static char *trees[LV_COUNT];

static void put(const char *root, const char *rel, uint64_t seed, uint64_t n)
{
    char *p = t_join(root, rel);
    t_write_pattern(p, seed, n);
    free(p);
}

static void at(const char *root, const char *rel, int (*fn)(const char *, const char *),
               const char *target, bool target_in_root)
{
    char *p = t_join(root, rel);
    char *t = target_in_root ? t_join(root, target) : strdup(target);
    assert_int_equal(fn(t, p), 0);
    free(p);
    free(t);
}

static char *make_tree(enum level lv)
{
    char *root = t_tempdir("tartree");
    put(root, "a.txt", 1, 1000);
    put(root, "empty.txt", 2, 0);
    put(root, "block.bin", 3, 512);
    put(root, "sub/deep/x.bin", 4, 70000);
    put(root, "sub/deep/one.bin", 5, 1);
    put(root, "\xc3\xbcn\xc3\xaf/\xc3\xa7\xc3\xb8\x64\xc3\xa9 \xe2\x9c\x93.txt", 6, 33);
    char *e = t_join(root, "emptydir");
    t_mkdirs(e);
    free(e);
    at(root, "sub/hard.txt", link, "a.txt", true);
    at(root, "link", symlink, "sub/deep/x.bin", false);
    at(root, "sub/up", symlink, "../a.txt", false);
    at(root, "dirlink", symlink, "sub/deep", false);
    if (lv >= LV_USTAR) {
        char *a = rep('A', 60), *b = rep('B', 60), *c = rep('C', 90);
        char *rel = t_fmt("%s/%s/%s.txt", a, b, c);
        put(root, rel, 7, 5000);
        free(a);
        free(b);
        free(c);
        free(rel);
    }
    if (lv == LV_FULL) {
        char *l1 = rep('L', 120), *l2 = rep('M', 120), *f = rep('F', 150), *n = rep('n', 101);
        char *rel = t_fmt("%s/%s/%s.txt", l1, l2, f);
        put(root, rel, 8, 3000);
        put(root, n, 9, 10);
        at(root, "longlink", symlink, rel, false); /* a target of 396 bytes */
        char *h = rep('h', 110);
        char *hl = t_fmt("%s/%s", l1, h);
        free(h);
        at(root, hl, link, rel, true); /* a hard link with a long target */
        free(l1);
        free(l2);
        free(f);
        free(n);
        free(rel);
        free(hl);
    }
    return root;
}

static int setup(void **state)
{
    (void)state;
    for (int lv = 0; lv < LV_COUNT; lv++)
        trees[lv] = make_tree((enum level)lv);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int lv = 0; lv < LV_COUNT; lv++) {
        t_rmrf(trees[lv]);
        free(trees[lv]);
    }
    return 0;
}

/* Archives tree LV with CMD (a format string taking the tree and the
 * archive path), then compares. */
static void roundtrip(enum level lv, const char *tool, const char *cmdfmt)
{
    require_tool(tool);
    char *dir = t_tempdir("tarout");
    char *archive = t_join(dir, "t.tar");
    char *cmd = t_fmt(cmdfmt, trees[lv], archive);
    char *err = NULL;
    int rc = t_run(cmd, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", cmd, err);
    assert_int_equal(rc, 0);
    kvro *kv = open_ok(archive, false);
    int files = 0;
    compare_dir(kv, trees[lv], "", &files);
    assert_true(files >= 9);
    assert_int_equal(stats_of(kv).skipped, 0);
    kvro_close(kv);
    t_rmrf(dir);
    free(dir);
    free(archive);
    free(cmd);
    free(err);
}

static void test_gnu_tar(void **state)
{
    (void)state;
    roundtrip(LV_V7, "tar", "tar -C '%s' --format=v7 -cf '%s' .");
    roundtrip(LV_USTAR, "tar", "tar -C '%s' --format=ustar -cf '%s' .");
    roundtrip(LV_FULL, "tar", "tar -C '%s' --format=gnu -cf '%s' .");
    roundtrip(LV_FULL, "tar", "tar -C '%s' --format=oldgnu -cf '%s' .");
    roundtrip(LV_FULL, "tar", "tar -C '%s' --format=posix -cf '%s' .");
}

static void test_bsdtar(void **state)
{
    (void)state;
    roundtrip(LV_FULL, "bsdtar", "bsdtar -C '%s' -cf '%s' .");
    roundtrip(LV_FULL, "bsdtar", "bsdtar -C '%s' --format=pax -cf '%s' .");
    roundtrip(LV_FULL, "bsdtar", "bsdtar -C '%s' --format=gnutar -cf '%s' .");
    roundtrip(LV_USTAR, "bsdtar", "bsdtar -C '%s' --format=ustar -cf '%s' .");
}

#define PYTAR(fmt)                                                                                 \
    "cd '%s' && python3 -c 'import sys, tarfile; t = tarfile.open(sys.argv[1], \"w\", "            \
    "format=tarfile." fmt "); t.add(\".\"); t.close()' '%s'"

static void test_python_tarfile(void **state)
{
    (void)state;
    roundtrip(LV_FULL, "python3", PYTAR("GNU_FORMAT"));
    roundtrip(LV_FULL, "python3", PYTAR("PAX_FORMAT"));
    roundtrip(LV_USTAR, "python3", PYTAR("USTAR_FORMAT"));
}

static void test_bidding(void **state)
{
    (void)state;
    unsigned char head[8192] = {0};
    kvro_probe pr = {
        .name = "x.bin", .dir_fd = -1, .size = sizeof head, .head = head, .head_len = sizeof head};
    assert_int_equal(kvro__backend_tar.bid(&pr), KVRO_BID_NONE);
    pr.name = "x.tar";
    assert_int_equal(kvro__backend_tar.bid(&pr), KVRO_BID_WEAK); /* zeros: the name only */
    pr.name = "x.TGZ";
    assert_int_equal(kvro__backend_tar.bid(&pr), KVRO_BID_WEAK);
    pr.name = "x.bin";
    tb_raw_header(head, "f", '0', 1, NULL);
    assert_int_equal(kvro__backend_tar.bid(&pr), KVRO_BID_CHECKED);
    head[0] ^= 1; /* checksum now wrong */
    assert_int_equal(kvro__backend_tar.bid(&pr), KVRO_BID_NONE);
    pr.head = NULL; /* a directory */
    pr.head_len = 0;
    assert_int_equal(kvro__backend_tar.bid(&pr), KVRO_BID_NONE);
}

/* ---------------------------------------------------- concurrent reads */

typedef struct reader_arg {
    kvro *kv;
    uint64_t seed;
    int bad;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    unsigned char buf[5000];
    for (int i = 0; i < 2000; i++) {
        uint64_t r = t_pattern(a->seed, (uint64_t)i) * 65537u + t_pattern(a->seed + 1, i);
        int64_t off = (int64_t)(r % 70000), len = (int64_t)(r % 4999) + 1, got;
        if (kvro_read(a->kv, "sub/deep/x.bin", off, len, buf, &got, NULL) != KVRO_OK)
            a->bad++;
        int64_t want = off + len > 70000 ? 70000 - off : len;
        if (got != want)
            a->bad++;
        for (int64_t k = 0; k < got; k++)
            if (buf[k] != t_pattern(4, (uint64_t)(off + k)))
                a->bad++;
    }
    return NULL;
}

static void test_concurrent_reads(void **state)
{
    (void)state;
    char *archive = t_join(tb_dir, "mt.tar");
    char *cmd = t_fmt("tar -C '%s' -cf '%s' .", trees[LV_V7], archive);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    kvro *kv = open_ok(archive, false);
    pthread_t th[4];
    reader_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (reader_arg){kv, (uint64_t)i * 10 + 100, 0};
        assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].bad, 0);
    }
    kvro_close(kv);
    free(cmd);
    free(archive);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gnu_tar),
        cmocka_unit_test(test_bsdtar),
        cmocka_unit_test(test_python_tarfile),
        cmocka_unit_test(test_bidding),
        cmocka_unit_test(test_concurrent_reads),
    };
    int rc = setup(NULL) | tb_setup(NULL);
    rc |= cmocka_run_group_tests(tests, NULL, NULL);
    tb_teardown(NULL);
    teardown(NULL);
    return rc;
}
