/*
 * test_mkkv_verify.c — mkkv verify, run as a program against archives the
 * real GNU tar makes of a reference tree: what it calls a match (keys,
 * kinds, bytes, link targets) and a difference, what --metadata adds
 * (modes; mtimes to the coarser of the two sides' precisions: a pax
 * archive keeps nanoseconds, a GNU-format one whole seconds), its wording
 * (singular and plural) and its exit codes (0 match, 1 difference or
 * error, 2 usage). An entry that cannot be read is reported and the walk
 * goes on.
 *
 * mkkv verify compares in two threads (cli/verify.c starts a reader):
 * scripts/ci-matrix.sh lists this test among those its ThreadSanitizer
 * build runs (runs_threads), where mkkv is built with TSan too and a race
 * report fails the run.
 *
 * The link cases (test_links, and the links in the reference tree) need
 * the dir and tar backends to report symbolic links as links through
 * kvro_list_info(KVRO_NOFOLLOW); a backend that still followed them would
 * fail them ("kind differs", or a loop through links/self).
 */
#include "support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct fx {
    char *dir;  /* scratch: src, its archives and its altered copies */
    char *counts; /* "N files, N directories, N links, N bytes" of src, by find(1) */
} fx;

/* Runs the shell fragment FMT in the scratch directory, with $MKKV set and
 * times in UTC; returns the exit status, *OUT and *ERR (if not NULL) the
 * output. */
static int sh(fx *f, char **out, char **err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int sh(fx *f, char **out, char **err, const char *fmt, ...)
{
    char *in_dir = t_fmt("cd '%s' && export TZ=UTC MKKV='%s' && ", f->dir, KVRO_TEST_MKKV);
    va_list ap;
    va_start(ap, fmt);
    int rc = t_vsh(in_dir, out, err, fmt, ap);
    va_end(ap);
    free(in_dir);
    return rc;
}

/* Runs FMT, which must succeed. */
#define ok(f, ...)                                                                                \
    do {                                                                                          \
        char *o_, *e_;                                                                            \
        int rc_ = sh(f, &o_, &e_, __VA_ARGS__);                                                   \
        if (rc_ != 0)                                                                             \
            fail_msg("exit %d: %s%s", rc_, o_, e_);                                               \
        free(o_), free(e_);                                                                       \
    } while (0)

/* Runs "mkkv verify ARGS" and checks its exit status and both outputs
 * whole. */
#define verify_says(f, rc, out, err, ...)                                                         \
    do {                                                                                          \
        char *o_, *e_;                                                                            \
        char *args_ = t_fmt(__VA_ARGS__);                                                         \
        int rc_ = sh(f, &o_, &e_, "\"$MKKV\" verify %s", args_);                                  \
        if (rc_ != (rc) || strcmp(o_, (out)) || strcmp(e_, (err)))                                \
            fail_msg("verify %s: exit %d (want %d)\nstdout:\n%s\nwant:\n%s\nstderr:\n%s\nwant:\n%s", \
                     args_, rc_, (rc), o_, (out), e_, (err));                                     \
        free(o_), free(e_), free(args_);                                                          \
    } while (0)

/* A number find(1) or du(1) computes about the tree, for the counts the
 * summary must give. */
static long long tree_count(fx *f, const char *what)
{
    char *out;
    assert_int_equal(sh(f, &out, NULL, "%s", what), 0);
    long long n = strtoll(out, NULL, 10);
    free(out);
    return n;
}

/* "5 files": singular and plural as a person writes them. */
static char *count(long long n, const char *one, const char *many)
{
    return t_fmt("%lld %s", n, n == 1 ? one : many);
}

/* The reference tree src, with known modes and mtimes (one with a
 * fraction of a second), an empty file and directory, a value over 64 KiB,
 * and links: to a file, to a directory, and to "." (a loop if followed).
 * pax.tar and gnu.tar are GNU tar's archives of it. */
static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = t_tempdir("mkkv-verify");
    *state = f;
    char *v;
    if (sh(f, &v, NULL, "tar --version") != 0 || !strstr(v, "GNU tar"))
        fail_msg("these tests need GNU tar on PATH");
    free(v);
    char *p = t_join(f->dir, "src");
    char *q;
    t_write(q = t_join(p, "a.txt"), "alpha\n", 6), free(q);
    t_write_pattern(q = t_join(p, "sub/b.bin"), 3, 70000), free(q);
    t_write(q = t_join(p, "sub/empty"), "", 0), free(q);
    t_mkdirs(q = t_join(p, "emptydir")), free(q);
    t_mkdirs(q = t_join(p, "links")), free(q);
    free(p);
    ok(f, "cd src && chmod 0644 a.txt sub/b.bin sub/empty && chmod 0755 sub emptydir links && "
          "ln -s ../a.txt links/rel && ln -s ../sub links/up && ln -s . links/self && "
          "touch -d '2024-01-02 03:04:05.123456789' a.txt && "
          "touch -h -d '2023-06-07 08:09:10.5' links/rel && "
          "touch -d '2022-01-01 00:00:00.25' sub/b.bin sub emptydir links . && cd .. && "
          "tar --format=pax -cf pax.tar -C src . && tar --format=gnu -cf gnu.tar -C src .");

    char *files = count(tree_count(f, "find src -type f | wc -l"), "file", "files");
    char *dirs = count(tree_count(f, "find src -type d | wc -l"), "directory", "directories");
    char *links = count(tree_count(f, "find src -type l | wc -l"), "link", "links");
    char *bytes = count(tree_count(f, "find src -type f -printf '%s\\n' | "
                                      "awk '{ s += $1 } END { print s + 0 }'"),
                        "byte", "bytes");
    f->counts = t_fmt("%s, %s, %s, %s", files, dirs, links, bytes);
    free(files), free(dirs), free(links), free(bytes);
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    /* GNU rm first: it goes deeper than t_rmrf's nftw (the trees past
     * PATH_MAX), even when a test failed before removing them. */
    char *cmd = t_fmt("rm -rf '%s'", f->dir);
    t_run(cmd, NULL, NULL);
    free(cmd);
    t_rmrf(f->dir);
    free(f->dir);
    free(f->counts);
    free(f);
    return 0;
}

/* A copy of src that keeps modes, mtimes and links (cp -a). */
static void copy_src(fx *f, const char *name)
{
    ok(f, "rm -rf '%s' && cp -a src '%s'", name, name);
}

/* The summary of SOURCE matching DIR, a copy of src (with --metadata if
 * META). */
static char *summary(fx *f, bool meta, const char *source, const char *dir)
{
    return t_fmt("%s matches %s%s: %s\n", source, dir,
                 meta ? ", modes and mtimes included" : "", f->counts);
}

static void test_gnu_tar_archives_match(void **state)
{
    fx *f = *state;
    const char *sources[] = {"pax.tar", "gnu.tar", "src"};
    for (size_t i = 0; i < 3; i++) {
        char *want = summary(f, false, sources[i], "src");
        verify_says(f, 0, want, "", "%s src", sources[i]);
        free(want);
        want = summary(f, true, sources[i], "src");
        verify_says(f, 0, want, "", "--metadata %s src", sources[i]);
        free(want);
        verify_says(f, 0, "", "", "-q --metadata %s src", sources[i]);
    }
    /* The archives' other order: the one read as SOURCE may be a tree. */
    ok(f, "mkdir -p x && tar -xf pax.tar -C x && \"$MKKV\" verify -q --metadata pax.tar x");
}

static void test_changed_byte(void **state)
{
    fx *f = *state;
    copy_src(f, "byte");
    /* One byte deep inside the value; its mtime kept, so only the bytes
     * tell. */
    char *p = t_join(f->dir, "byte/sub/b.bin");
    FILE *fp = fopen(p, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 54321, SEEK_SET), 0);
    fputc(t_pattern(3, 54321) ^ 0x40, fp);
    assert_int_equal(fclose(fp), 0);
    free(p);
    ok(f, "touch -r src/sub/b.bin byte/sub/b.bin && ! cmp -s src/sub/b.bin byte/sub/b.bin");
    const char *out = "content differs: sub/b.bin: first difference at byte 54321\n";
    verify_says(f, 1, out, "mkkv: verify: pax.tar and byte differ: 1 difference\n",
                "pax.tar byte");
    verify_says(f, 1, out, "mkkv: verify: gnu.tar and byte differ: 1 difference\n",
                "--metadata gnu.tar byte");
    /* -q only drops the summary of a match. */
    verify_says(f, 1, out, "mkkv: verify: pax.tar and byte differ: 1 difference\n",
                "-q pax.tar byte");
}

/* Bytes are compared in the order the archive stores its members, not by
 * name: one pass over an archive (one inflate of a .tar.gz), whatever the
 * names' order. The report shows the order. */
static void test_storage_order(void **state)
{
    fx *f = *state;
    ok(f, "rm -rf ord ord2 && mkdir ord && printf 1 > ord/z && printf 2 > ord/a && "
          "printf 3 > ord/m && tar -C ord -cf ord.tar z a m && gzip -nc ord.tar > ord.tgz && "
          "cp -a ord ord2 && printf X > ord2/z && printf Y > ord2/a && printf Z > ord2/m");
    const char *out = "content differs: z: first difference at byte 0\n"
                      "content differs: a: first difference at byte 0\n"
                      "content differs: m: first difference at byte 0\n";
    verify_says(f, 1, out, "mkkv: verify: ord.tar and ord2 differ: 3 differences\n",
                "ord.tar ord2");
    verify_says(f, 1, out, "mkkv: verify: ord.tgz and ord2 differ: 3 differences\n",
                "--no-index-cache ord.tgz ord2");
}

static void test_missing_and_extra(void **state)
{
    fx *f = *state;
    copy_src(f, "keys");
    ok(f, "rm keys/a.txt && echo new > keys/sub/new.txt && rmdir keys/emptydir");
    verify_says(f, 1,
                "only in pax.tar: a.txt\n"
                "only in pax.tar: emptydir\n"
                "only in keys: sub/new.txt\n",
                "mkkv: verify: pax.tar and keys differ: 3 differences\n", "pax.tar keys");
    /* A value of another size is caught without comparing its bytes. */
    copy_src(f, "size");
    ok(f, "echo more >> size/a.txt && touch -d '2024-01-02 03:04:05.123456789' size/a.txt");
    verify_says(f, 1, "size differs: a.txt: 6 bytes in gnu.tar, 11 in size\n",
                "mkkv: verify: gnu.tar and size differ: 1 difference\n", "gnu.tar size");
}

static void test_metadata(void **state)
{
    fx *f = *state;
    char *want;
    /* A mode: a difference only with --metadata. */
    copy_src(f, "mode");
    ok(f, "chmod 0755 mode/a.txt && chmod 0700 mode/emptydir");
    verify_says(f, 0, want = summary(f, false, "pax.tar", "mode"), "", "pax.tar mode");
    free(want);
    verify_says(f, 1,
                "mode differs: a.txt: 0644 in pax.tar, 0755 in mode\n"
                "mode differs: emptydir: 0755 in pax.tar, 0700 in mode\n",
                "mkkv: verify: pax.tar and mode differ: 2 differences\n", "--metadata pax.tar mode");

    /* An mtime seconds apart: caught against either archive. */
    copy_src(f, "mtime");
    ok(f, "touch -d '2024-01-02 03:04:09' mtime/a.txt");
    verify_says(f, 0, want = summary(f, false, "gnu.tar", "mtime"), "", "gnu.tar mtime");
    free(want);
    verify_says(f, 1, "mtime differs: a.txt: 2024-01-02T03:04:05Z in gnu.tar, "
                      "2024-01-02T03:04:09Z in mtime\n",
                "mkkv: verify: gnu.tar and mtime differ: 1 difference\n",
                "--metadata gnu.tar mtime");
    verify_says(f, 1, "mtime differs: a.txt: 2024-01-02T03:04:05Z in pax.tar, "
                      "2024-01-02T03:04:09Z in mtime\n",
                "mkkv: verify: pax.tar and mtime differ: 1 difference\n",
                "--metadata pax.tar mtime");

    /* Within the same second: GNU format has whole seconds, so nothing to
     * tell; pax keeps the fraction, which is compared to the coarser of
     * the two precisions (tenths here). */
    copy_src(f, "frac");
    ok(f, "touch -d '2024-01-02 03:04:05.9' frac/a.txt");
    verify_says(f, 0, want = summary(f, true, "gnu.tar", "frac"), "", "--metadata gnu.tar frac");
    free(want);
    verify_says(f, 1, "mtime differs: a.txt: 2024-01-02T03:04:05.1Z in pax.tar, "
                      "2024-01-02T03:04:05.9Z in frac\n",
                "mkkv: verify: pax.tar and frac differ: 1 difference\n",
                "--metadata pax.tar frac");
    /* ... and the same time written to a coarser precision is no
     * difference: .123456789 against .1 is compared in tenths. */
    ok(f, "touch -d '2024-01-02 03:04:05.1' frac/a.txt");
    verify_says(f, 0, want = summary(f, true, "pax.tar", "frac"), "", "--metadata pax.tar frac");
    free(want);

    /* A directory's own mtime, the root's included. */
    copy_src(f, "dirs");
    ok(f, "touch -d '2022-01-01 00:00:07' dirs/sub dirs");
    verify_says(f, 1,
                "mtime differs: /: 2022-01-01T00:00:00Z in gnu.tar, 2022-01-01T00:00:07Z in dirs\n"
                "mtime differs: sub: 2022-01-01T00:00:00Z in gnu.tar, "
                "2022-01-01T00:00:07Z in dirs\n",
                "mkkv: verify: gnu.tar and dirs differ: 2 differences\n",
                "--metadata gnu.tar dirs");
}

/* Needs the backends to report links as links (see the top). */
static void test_links(void **state)
{
    fx *f = *state;
    char *want;
    /* Another target: a difference by default too (a link's target is its
     * content), without the link being followed. */
    copy_src(f, "target");
    ok(f, "ln -sfn ../sub/empty target/links/rel && "
          "touch -h -d '2023-06-07 08:09:10.5' target/links/rel && touch -r src/links target/links");
    const char *out = "link target differs: links/rel: ../a.txt in pax.tar, ../sub/empty in target\n";
    verify_says(f, 1, out, "mkkv: verify: pax.tar and target differ: 1 difference\n",
                "pax.tar target");
    verify_says(f, 1, out, "mkkv: verify: pax.tar and target differ: 1 difference\n",
                "--metadata pax.tar target");

    /* A link's own mtime, with --metadata only. */
    copy_src(f, "lmtime");
    ok(f, "touch -h -d '2023-06-07 08:09:11' lmtime/links/rel");
    verify_says(f, 0, want = summary(f, false, "gnu.tar", "lmtime"), "", "gnu.tar lmtime");
    free(want);
    verify_says(f, 1,
                "mtime differs: links/rel: 2023-06-07T08:09:10Z in gnu.tar, "
                "2023-06-07T08:09:11Z in lmtime\n",
                "mkkv: verify: gnu.tar and lmtime differ: 1 difference\n",
                "--metadata gnu.tar lmtime");

    /* The file a link leads to, in its place: a difference in kind, though
     * the bytes are the same. */
    copy_src(f, "kind");
    ok(f, "rm kind/links/rel && cp -p src/a.txt kind/links/rel && touch -r src/links kind/links");
    verify_says(f, 1, "kind differs: links/rel: a symbolic link in pax.tar, a file in kind\n",
                "mkkv: verify: pax.tar and kind differ: 1 difference\n", "pax.tar kind");

    /* A link's target is its content, compared as text: an absolute
     * target naming the same file as the relative one is still a different
     * link (extracted elsewhere it leads elsewhere), and so is one that
     * leads outside. */
    copy_src(f, "abs");
    ok(f, "ln -sfn \"$(realpath abs)/a.txt\" abs/links/rel");
    char *real = t_fmt("%s/abs/a.txt", f->dir);
    char *rp = realpath(real, NULL);
    assert_non_null(rp);
    char *line = t_fmt("link target differs: links/rel: ../a.txt in pax.tar, %s in abs\n", rp);
    verify_says(f, 1, line, "mkkv: verify: pax.tar and abs differ: 1 difference\n",
                "pax.tar abs");
    free(line);
    free(rp);
    free(real);
    ok(f, "ln -sfn /etc/hostname abs/links/rel");
    verify_says(f, 1, "link target differs: links/rel: ../a.txt in pax.tar, /etc/hostname in abs\n",
                "mkkv: verify: pax.tar and abs differ: 1 difference\n", "pax.tar abs");

    /* links/self -> "." and links/up -> ../sub were compared as links: the
     * summaries above count src's directories as find(1) does, which
     * follows no link; a walk that followed self would never end. */
}

/* DIR (under the scratch directory) holding 22 nested directories of
 * 200-byte names and a file at the bottom: a path past PATH_MAX, made one
 * level at a time relative to the last. */
static void deep_tree(fx *f, const char *dir)
{
    char *p = t_join(f->dir, dir);
    t_mkdirs(p);
    int fd = open(p, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    free(p);
    char name[201];
    memset(name, 'd', 200);
    name[200] = '\0';
    for (int i = 0; i < 22; i++) {
        assert_int_equal(mkdirat(fd, name, 0755), 0);
        int next = openat(fd, name, O_RDONLY | O_DIRECTORY);
        assert_true(next >= 0);
        close(fd);
        fd = next;
    }
    int leaf = openat(fd, "f", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(leaf >= 0);
    assert_int_equal(write(leaf, "leaf\n", 5), 5);
    close(leaf);
    close(fd);
}

/* Keys longer than KVRO_KEY_MAX cannot be read on either side: each is
 * reported, and the walk goes on to find the difference after them. */
static void test_errors_do_not_stop_the_walk(void **state)
{
    fx *f = *state;
    deep_tree(f, "deep1");
    deep_tree(f, "deep2");
    ok(f, "printf 1 > deep1/z && printf 2 > deep2/z");
    char *out, *err;
    assert_int_equal(sh(f, &out, &err, "\"$MKKV\" verify deep1 deep2"), 1);
    assert_string_equal(out, "content differs: z: first difference at byte 0\n");
    assert_true(strncmp(err, "mkkv: deep1: dddd", 17) == 0);
    assert_non_null(strstr(err, "\nmkkv: deep2: dddd"));
    assert_non_null(strstr(err, "longer than 4095"));
    const char *last = "\nmkkv: verify: deep1 and deep2 differ: 1 difference, and 2 errors "
                       "reading them (above)\n";
    assert_non_null(strstr(err, last));
    assert_string_equal(strstr(err, last), last);
    free(out), free(err);

    /* Errors alone: said as errors, with their count. */
    ok(f, "printf 1 > deep2/z");
    assert_int_equal(sh(f, &out, &err, "\"$MKKV\" verify deep1 deep2"), 1);
    assert_string_equal(out, "");
    last = "\nmkkv: verify: deep1 and deep2 could not be compared in full: 2 errors reading "
           "them (above); the rest matches\n";
    assert_non_null(strstr(err, last));
    assert_string_equal(strstr(err, last), last);
    free(out), free(err);
}

/* Singular and plural, the size for people once it is large, and names
 * escaped in the metadata lines too. */
static void test_wording(void **state)
{
    fx *f = *state;
    ok(f, "mkdir -p one && printf y > one/x && tar -cf one.tar -C one .");
    verify_says(f, 0, "one.tar matches one: 1 file, 1 directory, 1 byte\n", "", "one.tar one");
    ok(f, "ln -s x one/l && tar -cf one.tar -C one .");
    verify_says(f, 0, "one.tar matches one: 1 file, 1 directory, 1 link, 1 byte\n", "",
                "one.tar one");
    ok(f, "mkdir -p empty && tar -cf empty.tar -C empty .");
    verify_says(f, 0, "empty.tar matches empty: 0 files, 1 directory, 0 bytes\n", "",
                "empty.tar empty");
    char *p = t_join(f->dir, "big/v");
    t_write_pattern(p, 5, 1572864);
    free(p);
    ok(f, "tar -cf big.tar -C big .");
    verify_says(f, 0, "big.tar matches big: 1 file, 1 directory, 1572864 bytes (1.5 MiB)\n", "",
                "big.tar big");

    ok(f, "mkdir -p odd && printf x > \"odd/$(printf 'a\\nb\\033c')\" && chmod 0600 odd/a* && "
          "tar --format=pax -cf odd.tar -C odd . && cp -a odd odd2 && chmod 0640 odd2/a*");
    verify_says(f, 1, "mode differs: a\\nb\\033c: 0600 in odd.tar, 0640 in odd2\n",
                "mkkv: verify: odd.tar and odd2 differ: 1 difference\n", "--metadata odd.tar odd2");
}

/* XORs byte OFF of scratch file REL with 0x40, in place: the same size,
 * one byte different. */
static void flip(fx *f, const char *rel, long off)
{
    char *p = t_join(f->dir, rel);
    FILE *fp = fopen(p, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, off, SEEK_SET), 0);
    int c = fgetc(fp);
    assert_true(c != EOF);
    assert_int_equal(fseek(fp, off, SEEK_SET), 0);
    fputc(c ^ 0x40, fp);
    assert_int_equal(fclose(fp), 0);
    free(p);
}

/* Many values, more than the reader queues ahead of the comparer (the
 * bytes of a .tar.gz are inflated in one thread and compared in another),
 * and values larger than what it queues at once: every difference is
 * still reported, once, in the order the archive stores the values, with
 * the name differences the walk found first; the first difference in a
 * large value is found wherever it lies (in a later slice, at a slice's
 * or a window's first byte, at the last byte). */
static void test_many_files(void **state)
{
    fx *f = *state;
    ok(f, "rm -rf many many2 && mkdir many");
    long long bytes = 0;
    for (int d = 0; d < 40; d++)
        for (int j = 0; j < 15; j++) {
            char rel[32], line[16];
            snprintf(rel, sizeof rel, "many/d%02d/f%02d", d, j);
            snprintf(line, sizeof line, "d%02d/f%02d\n", d, j);
            size_t n = (size_t)(j + 1) * 8;
            char *data = malloc(n), *p = t_join(f->dir, rel);
            for (size_t k = 0; k < n; k += 8)
                memcpy(data + k, line, 8);
            t_write(p, data, n);
            bytes += (long long)n;
            free(data), free(p);
        }
    const struct {
        const char *rel;
        uint64_t seed, size;
    } big[] = {{"many/big.bin", 7, 3 << 20}, {"many/w.bin", 8, 1536 << 10},
               {"many/x.bin", 9, 600000}, {"many/y.bin", 10, 262145}};
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
        char *p = t_join(f->dir, big[i].rel);
        t_write_pattern(p, big[i].seed, big[i].size);
        bytes += (long long)big[i].size;
        free(p);
    }
    ok(f, "tar --sort=name --format=gnu -cf many.tar -C many . && gzip -nc many.tar > many.tgz && "
          "cp -a many many2 && echo new > many2/d05/new && rm many2/d33/f11 && "
          "printf z >> many2/d30/f03");
    char *want = t_fmt("many.tar matches many: 604 files, 41 directories, %lld bytes (", bytes);
    char *out, *err;
    assert_int_equal(sh(f, &out, &err, "\"$MKKV\" verify many.tar many"), 0);
    assert_true(strncmp(out, want, strlen(want)) == 0);
    assert_string_equal(err, "");
    free(out), free(err), free(want);

    flip(f, "many2/big.bin", 2621443); /* in the eleventh slice, the third window */
    flip(f, "many2/d19/f07", 5);
    flip(f, "many2/w.bin", 1048576); /* a window's first byte */
    flip(f, "many2/x.bin", 262144);  /* a slice's first byte */
    flip(f, "many2/y.bin", 262144);  /* the last byte, alone in its slice */
    const char *fmt = "only in many2: d05/new\n"
                      "only in %s: d33/f11\n"
                      "content differs: big.bin: first difference at byte 2621443\n"
                      "content differs: d19/f07: first difference at byte 5\n"
                      "size differs: d30/f03: 32 bytes in %s, 33 in many2\n"
                      "content differs: w.bin: first difference at byte 1048576\n"
                      "content differs: x.bin: first difference at byte 262144\n"
                      "content differs: y.bin: first difference at byte 262144\n";
    const char *sources[] = {"many.tar", "many.tgz", "many"};
    for (size_t i = 0; i < 3; i++) {
        char *o = t_fmt(fmt, sources[i], sources[i]);
        char *e = t_fmt("mkkv: verify: %s and many2 differ: 8 differences\n", sources[i]);
        verify_says(f, 1, o, e, "--no-index-cache %s many2", sources[i]);
        free(o), free(e);
    }
}

/* A value that cannot be read in the middle of the stream is reported
 * where it comes, and the values after it are still compared: a FAT image
 * made by mkfs.fat and mcopy, one file's first cluster then broken by hand
 * (out of range: its entry still lists it, with its size). */
static void test_read_error_mid_stream(void **state)
{
    fx *f = *state;
    if (!t_have("mkfs.fat") || !t_have("mcopy"))
        skip();
    ok(f, "rm -rf fsrc fdst fat.img && mkdir fsrc && for i in 0 1 2 3 4 5 6 7 8 9; do "
          "head -c 3000 /dev/zero | tr '\\0' $i > fsrc/F0$i.BIN; done && cp -a fsrc fdst && "
          "printf X | dd of=fdst/F07.BIN bs=1 seek=100 conv=notrunc 2>/dev/null && "
          "mkfs.fat -C fat.img 2048 >/dev/null && MTOOLS_SKIP_CHECK=1 mcopy -i fat.img fsrc/* ::");
    char *img = t_join(f->dir, "fat.img");
    size_t len;
    unsigned char *b = (unsigned char *)t_slurp(img, &len);
    size_t e = 0;
    while (e + 32 <= len && memcmp(b + e, "F05     BIN", 11) != 0)
        e += 32;
    assert_true(e + 32 <= len);
    b[e + 26] = 0xF0, b[e + 27] = 0xFF, b[e + 20] = b[e + 21] = 0; /* cluster 0xFFF0 */
    t_write(img, b, len);
    free(b), free(img);

    char *out, *err;
    assert_int_equal(sh(f, &out, &err, "\"$MKKV\" verify fat.img fdst"), 1);
    assert_string_equal(out, "content differs: F07.BIN: first difference at byte 100\n");
    const char *first = "mkkv: fat.img: F05.BIN: ";
    const char *last = "\nmkkv: verify: fat.img and fdst differ: 1 difference, and 1 error "
                       "reading them (above)\n";
    assert_true(strncmp(err, first, strlen(first)) == 0);
    assert_non_null(strstr(err, "out of range"));
    assert_non_null(strstr(err, last));
    assert_string_equal(strstr(err, last), last);
    assert_int_equal(strchr(err, '\n') + 1, strstr(err, last) + 1); /* one line, then the end */
    free(out), free(err);
}

static void test_usage_and_exit_codes(void **state)
{
    fx *f = *state;
    char *out, *err;
    assert_int_equal(sh(f, &out, &err, "\"$MKKV\" verify --help"), 0);
    assert_true(strncmp(out, "Usage: mkkv verify ", 19) == 0);
    assert_non_null(strstr(out, "--metadata"));
    assert_non_null(strstr(out, "symbolic link"));
    assert_non_null(strstr(out, "whole\n                        seconds"));
    free(out), free(err);

    const char *usage[] = {"", "pax.tar", "pax.tar src extra", "--metadata=yes pax.tar src",
                           "--no-such pax.tar src", "pax.tar -"};
    for (size_t i = 0; i < sizeof usage / sizeof *usage; i++) {
        assert_int_equal(sh(f, &out, &err, "\"$MKKV\" verify %s < /dev/null", usage[i]), 2);
        assert_string_equal(out, "");
        assert_true(strncmp(err, "mkkv: verify: ", 14) == 0);
        assert_non_null(strstr(err, "Try 'mkkv verify --help'."));
        free(out), free(err);
    }
    assert_int_equal(sh(f, &out, &err, "\"$MKKV\" verify --metadata=yes pax.tar src"), 2);
    assert_non_null(strstr(err, "option '--metadata' takes no value"));
    free(out), free(err);

    /* Failures to open either side are 1, named. */
    assert_int_equal(sh(f, &out, &err, "\"$MKKV\" verify nosuch.tar src"), 1);
    assert_true(strncmp(err, "mkkv: nosuch.tar: ", 18) == 0);
    free(out), free(err);
    assert_int_equal(sh(f, &out, &err, "\"$MKKV\" verify pax.tar src/a.txt"), 1);
    assert_true(strncmp(err, "mkkv: src/a.txt: ", 17) == 0);
    free(out), free(err);
    /* Standard input as SOURCE. */
    char *want = summary(f, false, "standard input", "src");
    verify_says(f, 0, want, "", "- src < pax.tar");
    free(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gnu_tar_archives_match),
        cmocka_unit_test(test_changed_byte),
        cmocka_unit_test(test_storage_order),
        cmocka_unit_test(test_missing_and_extra),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_links),
        cmocka_unit_test(test_errors_do_not_stop_the_walk),
        cmocka_unit_test(test_wording),
        cmocka_unit_test(test_many_files),
        cmocka_unit_test(test_read_error_mid_stream),
        cmocka_unit_test(test_usage_and_exit_codes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
