/*
 * test_mkkv_tar.c — `mkkv tar`, driven through the real binary: the
 * archives it writes are read back by the real peers (GNU tar, bsdtar,
 * Python's tarfile) and diffed against the source; determinism is checked
 * byte for byte and header by header; every failure must leave no OUT (and
 * an existing OUT untouched) and no temporary file behind.
 */
#include "support.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"

#define MKKV KVRO_TEST_MKKV
#define LONG_DIR                                                                                   \
    "a-directory-name-long-enough-that-with-the-file-below-the-path-exceeds-the-ustar-name-"       \
    "field-of-100-bytes-and-then-some"
#define LONG_FILE                                                                                  \
    "and-a-file-name-long-enough-to-take-the-whole-path-past-255-bytes-so-even-ustar-prefix-"      \
    "plus-name-can-not-hold-it-and-a-pax-path-record-is-needed-for-it-.....-padding-padding-"      \
    "padding.txt"
#define BIG_SIZE (1536 * 1024 + 7)

/* Python's tarfile, as a peer: extract, list, and compare two archives
 * header by header with the mtime and checksum fields blanked. */
static const char helper_py[] =
    "import sys, tarfile\n"
    "sys.stdout.reconfigure(errors='backslashreplace')\n"
    "cmd, args = sys.argv[1], sys.argv[2:]\n"
    "if cmd == 'extract':\n"
    "    with tarfile.open(args[0]) as t:\n"
    "        t.extractall(args[1])\n"
    "elif cmd == 'list':\n"
    "    with tarfile.open(args[0]) as t:\n"
    "        for m in t:\n"
    "            print(m.name, m.type.decode(), oct(m.mode), m.mtime, m.uid, m.gid,\n"
    "                  repr(m.uname), repr(m.gname), m.linkname or '-', m.size)\n"
    "elif cmd == 'mtimes':\n"
    "    with tarfile.open(args[0]) as t:\n"
    "        print(sorted({m.mtime for m in t}))\n"
    "elif cmd == 'headers':\n"
    "    def blank(d):\n"
    "        d, pos, n = bytearray(d), 0, 0\n"
    "        while pos + 512 <= len(d) and any(d[pos:pos + 512]):\n"
    "            size = int(bytes(d[pos + 124:pos + 136]).strip(b'\\0 ') or b'0', 8)\n"
    "            d[pos + 136:pos + 156] = bytes(20)\n"
    "            n, pos = n + 1, pos + 512 + (size + 511) // 512 * 512\n"
    "        return bytes(d), n\n"
    "    (a, na), (b, nb) = (blank(open(p, 'rb').read()) for p in args)\n"
    "    print('headers', na, nb, 'equal' if a == b else 'differ')\n";

typedef struct fx {
    char *dir;  /* scratch */
    char *src;  /* dir/src: the tree archived */
    char *real; /* its real path, for absolute links */
    char *py;   /* the helper above */
} fx;

/* Runs a command that must succeed; shows its output if it does not. */
static void ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ok(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = t_vfmt(fmt, ap);
    va_end(ap);
    char *o, *e;
    int rc = t_run(cmd, &o, &e);
    if (rc != 0)
        fail_msg("exit %d: %s\nstdout: %s\nstderr: %s", rc, cmd, o, e);
    free(o);
    free(e);
    free(cmd);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static char *at(const fx *f, const char *rel)
{
    return t_join(f->dir, rel);
}

static void put(const char *dir, const char *rel, const char *text)
{
    char *p = t_join(dir, rel);
    t_write(p, text, strlen(text));
    free(p);
}

static void link_at(const char *dir, const char *rel, const char *target)
{
    char *p = t_join(dir, rel);
    if (symlink(target, p) != 0)
        fail_msg("symlink %s: %s", p, strerror(errno));
    free(p);
}

/* The reference tree: long paths (> 100 and > 255 bytes), UTF-8 names,
 * empty files and directories, odd modes, a file over 1 MiB, and symbolic
 * links that stay inside (relative, to a directory, and absolute). */
static void make_tree(fx *f)
{
    const char *s = f->src;
    put(s, "a.txt", "alpha\n");
    put(s, "empty", "");
    char *p = t_join(s, "emptydir");
    t_mkdirs(p), free(p);
    put(s, "bin/run.sh", "#!/bin/sh\necho run\n");
    put(s, "private", "mode 0600 in the source\n");
    put(s, "données/été.txt", "utf-8 name\n");
    put(s, "日本語/ファイル.txt", "cjk name\n");
    put(s, LONG_DIR "/" LONG_FILE, "a long path\n");
    put(s, LONG_DIR "/short", "a path over 100 bytes\n");
    t_write_pattern(p = t_join(s, "sub/deeper/big.bin"), 9, BIG_SIZE), free(p);
    put(s, "sub/B", "upper case sorts first\n");
    t_mkdirs(p = t_join(s, "links")), free(p);
    ok("chmod 0755 '%s/bin/run.sh' && chmod 0600 '%s/private'", s, s);
    link_at(s, "links/rel", "../a.txt");
    link_at(s, "links/dir", "../sub");
    char *abs = t_join(f->real, "données/été.txt");
    link_at(s, "links/abs", abs);
    free(abs);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = t_tempdir("mkkv-tar");
    char *real = realpath(f->dir, NULL);
    f->src = t_join(f->dir, "src");
    f->real = t_join(real, "src");
    free(real);
    f->py = t_join(f->dir, "helper.py");
    t_write(f->py, helper_py, sizeof helper_py - 1);
    t_mkdirs(f->src);
    make_tree(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    t_rmrf(f->dir);
    free(f->dir);
    free(f->src);
    free(f->real);
    free(f->py);
    free(f);
    return 0;
}

/* No ".name.XXXXXX" temporary file left in DIR. */
static void assert_no_temp(const char *dir)
{
    char *out;
    t_sh(&out, NULL, "ls -A '%s' | grep '^\\..*\\.[A-Za-z0-9]\\{6\\}$'", dir);
    if (*out)
        fail_msg("temporary file left behind in %s: %s", dir, out);
    free(out);
}

/* The extracted tree X matches the source: content and structure (diff -r
 * follows the links on both sides), the links are links with their targets
 * as stored (an absolute one too: nothing is rewritten), modes are the
 * normalised ones. */
static void assert_extracted(const fx *f, const char *x)
{
    ok("diff -r '%s' '%s'", f->src, x);
    ok("cd '%s' && test -L links/rel && test -L links/dir && test -L links/abs && "
       "test \"$(readlink links/rel)\" = ../a.txt && test \"$(readlink links/dir)\" = ../sub && "
       "test \"$(readlink links/abs)\" = '%s/données/été.txt' && test -d emptydir && "
       "test -f empty && ! test -s empty",
       x, f->real);
    ok("cd '%s' && test \"$(stat -c %%a bin/run.sh)\" = 755 && "
       "test \"$(stat -c %%a private)\" = 644 && test \"$(stat -c %%a a.txt)\" = 644",
       x);
}

/* -------------------------------------------------------------- interop */

static void test_gnu_tar_reads_it(void **state)
{
    fx *f = *state;
    ok("cd '%s' && '%s' tar src out.tar && mkdir x && tar -xf out.tar -C x", f->dir, MKKV);
    char *x = at(f, "x");
    assert_extracted(f, x);
    /* ustar where it fits, pax only for what ustar can not hold. */
    ok("cd '%s' && tar -tvf out.tar | grep -q ' 0/0 ' && ! tar -tvf out.tar | grep -v ' 0/0 '",
       f->dir);
    free(x);
}

static void test_bsdtar_reads_it(void **state)
{
    fx *f = *state;
    require_tool("bsdtar");
    ok("cd '%s' && '%s' tar src out.tar && mkdir x && bsdtar -xpf out.tar -C x", f->dir, MKKV);
    char *x = at(f, "x");
    assert_extracted(f, x);
    free(x);
}

static void test_python_reads_it(void **state)
{
    fx *f = *state;
    ok("cd '%s' && '%s' tar src out.tar && python3 '%s' extract out.tar x", f->dir, MKKV, f->py);
    char *x = at(f, "x");
    ok("diff -r '%s' '%s' && test -L '%s/links/rel'", f->src, x, x);
    char *list;
    assert_int_equal(t_sh(&list, NULL, "python3 '%s' list '%s/out.tar'", f->py, f->dir), 0);
    /* Owners 0 with empty names; directories before their contents. */
    assert_non_null(strstr(list, "bin 5 0o755"));
    assert_non_null(strstr(list, "bin/run.sh 0 0o755"));
    assert_non_null(strstr(list, " 0 0 '' '' "));
    assert_null(strstr(list, "root"));
    assert_true(strstr(list, "sub 5") < strstr(list, "sub/B 0"));
    assert_true(strstr(list, "sub/B 0") < strstr(list, "sub/deeper 5"));
    char *big = t_fmt("sub/deeper/big.bin 0 0o644 ");
    assert_non_null(strstr(list, big));
    free(big);
    free(list);
    free(x);
}

static void test_gzip(void **state)
{
    fx *f = *state;
    ok("cd '%s' && '%s' tar src out.tar.gz && '%s' tar -z src out.z && "
       "'%s' tar src out.tgz && cmp out.tar.gz out.z && cmp out.tar.gz out.tgz && "
       "gzip -t out.tar.gz && mkdir x && tar -xzf out.tar.gz -C x && "
       "python3 '%s' extract out.tgz y",
       f->dir, MKKV, MKKV, MKKV, f->py);
    char *x = at(f, "x"), *y = at(f, "y");
    assert_extracted(f, x);
    ok("diff -r '%s' '%s'", f->src, y);
    /* The gzip header: no FNAME flag, MTIME zero. */
    char *gz = at(f, "out.tar.gz");
    size_t n;
    unsigned char *b = (unsigned char *)t_slurp(gz, &n);
    assert_true(n > 10);
    assert_int_equal(b[0], 0x1f);
    assert_int_equal(b[1], 0x8b);
    assert_int_equal(b[3], 0);
    assert_int_equal(b[4] | b[5] | b[6] | b[7], 0);
    free(b);
    free(gz);
    free(x);
    free(y);
}

static void test_stdout(void **state)
{
    fx *f = *state;
    ok("cd '%s' && '%s' tar src out.tar && '%s' tar src - > piped.tar && cmp out.tar piped.tar &&"
       " '%s' tar src out.tgz && '%s' tar -z src - > piped.tgz && cmp out.tgz piped.tgz",
       f->dir, MKKV, MKKV, MKKV, MKKV);
    char *out = at(f, "-");
    assert_false(exists(out)); /* "-" is standard output, not a file */
    free(out);
}

/* ---------------------------------------------------------- determinism */

/* The same tree built twice, its files created in opposite orders. */
static void build_ordered(const char *root, bool reverse)
{
    t_mkdirs(root);
    for (int k = 0; k < 40; k++) {
        int i = reverse ? 39 - k : k;
        char *rel = t_fmt("d%d/f%02d-%s", i % 3, i, i % 2 ? "odd" : "even");
        put(root, rel, rel);
        free(rel);
    }
    link_at(root, reverse ? "d1/link" : "d0/link", "../d2");
    link_at(root, reverse ? "d0/link" : "d1/link", "../d2");
}

static void test_deterministic(void **state)
{
    fx *f = *state;
    char *a = at(f, "a/t"), *b = at(f, "b/t");
    build_ordered(a, false);
    build_ordered(b, true);
    ok("cd '%s' && '%s' tar --mtime 1000000000 a/t a.tar && "
       "'%s' tar --mtime 1000000000 b/t b.tar && cmp a.tar b.tar && "
       "'%s' tar --mtime 1000000000 a/t a.tgz && '%s' tar --mtime 1000000000 b/t b.tgz && "
       "cmp a.tgz b.tgz",
       f->dir, MKKV, MKKV, MKKV, MKKV);
    /* Without --mtime: the files' own mtimes, once made equal. */
    ok("cd '%s' && find a b -exec touch -h -d @1600000000 {} + && '%s' tar a/t a2.tar && "
       "'%s' tar b/t b2.tar && cmp a2.tar b2.tar && "
       "'%s' tar src s1.tar && sleep 1 && '%s' tar src s2.tar && cmp s1.tar s2.tar && "
       "'%s' tar src s1.tgz && sleep 1 && '%s' tar src s2.tgz && cmp s1.tgz s2.tgz",
       f->dir, MKKV, MKKV, MKKV, MKKV, MKKV, MKKV);
    /* Names go in as UTF-8 whatever the locale. */
    ok("cd '%s' && LC_ALL=C '%s' tar src c.tar && LC_ALL=C.UTF-8 '%s' tar src u.tar && "
       "cmp c.tar u.tar",
       f->dir, MKKV, MKKV);
    free(a);
    free(b);
}

static void test_mtime(void **state)
{
    fx *f = *state;
    char *out;
    ok("cd '%s' && touch -d @1234567890 src/a.txt && '%s' tar src own.tar && "
       "SOURCE_DATE_EPOCH=1500000000 '%s' tar src sde.tar && "
       "SOURCE_DATE_EPOCH=1500000000 '%s' tar --mtime 1700000000 src opt.tar && "
       "'%s' tar --mtime 1000000000 src one.tar",
       f->dir, MKKV, MKKV, MKKV, MKKV);
    assert_int_equal(t_sh(&out, NULL,
                          "cd '%s' && python3 '%s' mtimes sde.tar && "
                          "python3 '%s' mtimes opt.tar && python3 '%s' list own.tar",
                          f->dir, f->py, f->py, f->py),
                     0);
    assert_non_null(strstr(out, "[1500000000]\n[1700000000]\n"));
    assert_non_null(strstr(out, "a.txt 0 0o644 1234567890 "));
    free(out);
    /* Another --mtime changes nothing but the mtime and checksum fields. */
    ok("cd '%s' && ! cmp -s one.tar opt.tar", f->dir);
    assert_int_equal(
        t_sh(&out, NULL, "cd '%s' && python3 '%s' headers one.tar opt.tar", f->dir, f->py), 0);
    assert_non_null(strstr(out, "equal"));
    free(out);
}

static void test_bad_mtime(void **state)
{
    fx *f = *state;
    char *err;
    assert_int_equal(
        t_sh(NULL, &err, "cd '%s' && '%s' tar --mtime yesterday src o.tar", f->dir, MKKV), 2);
    assert_non_null(strstr(err, "--mtime"));
    assert_non_null(strstr(err, "yesterday"));
    free(err);
    assert_int_equal(
        t_sh(NULL, &err, "cd '%s' && SOURCE_DATE_EPOCH=12x '%s' tar src o.tar", f->dir, MKKV), 2);
    assert_non_null(strstr(err, "SOURCE_DATE_EPOCH"));
    free(err);
    assert_int_equal(t_sh(NULL, NULL, "cd '%s' && '%s' tar --mtime -5 src o.tar", f->dir, MKKV), 2);
    char *o = at(f, "o.tar");
    assert_false(exists(o));
    free(o);
}

/* ------------------------------------------------------------ the source */

/* A link that leads outside is data: kept as a link, the build goes on
 * (it used to abort). With -L it is followed, and then it is an error
 * naming it, and nothing is written. */
static void test_escaping_link(void **state)
{
    fx *f = *state;
    static const char *const targets[] = {"../../../etc/passwd", "/etc/passwd", "b/../x", "../.."};
    link_at(f->src, "b", "."); /* "b/../x" leaves, though lexically it stays */
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
        /* "zz": met last, once most of the archive is written. */
        link_at(f->src, "zz-escape", targets[i]);
        ok("cd '%s' && rm -rf x && '%s' tar src kept.tar && mkdir x && tar -xf kept.tar -C x && "
           "test \"$(readlink x/zz-escape)\" = '%s'",
           f->dir, MKKV, targets[i]);
        put(f->dir, "old.tar", "the old archive\n");
        char *err, *old;
        assert_int_equal(t_sh(NULL, &err,
                              "cd '%s' && '%s' tar -L src old.tar && exit 0; s=$?; "
                              "'%s' tar -L src new.tar; exit $s",
                              f->dir, MKKV, MKKV),
                         1);
        assert_non_null(strstr(err, "mkkv: src: "));
        char *np = at(f, "new.tar"), *op = at(f, "old.tar");
        assert_false(exists(np));
        assert_string_equal(old = t_slurp(op, NULL), "the old archive\n");
        assert_no_temp(f->dir);
        free(old);
        free(np);
        free(op);
        free(err);
        char *l = t_join(f->src, "zz-escape");
        unlink(l);
        free(l);
    }
}

static void test_special_files_and_hard_links(void **state)
{
    fx *f = *state;
    ok("cd '%s' && mkfifo src/sub/pipe && ln src/a.txt src/hard", f->dir);
    char *err, *list;
    assert_int_equal(t_sh(NULL, &err, "cd '%s' && '%s' tar src out.tar", f->dir, MKKV), 0);
    assert_non_null(strstr(err, "mkkv: src: sub/pipe: skipped: a FIFO"));
    assert_int_equal(t_sh(&list, NULL, "python3 '%s' list '%s/out.tar'", f->py, f->dir), 0);
    assert_null(strstr(list, "pipe"));
    /* Hard links: the first name in sorted order holds the data, the
     * others are hard links to it (tarfile's type 1), as GNU tar writes. */
    assert_non_null(strstr(list, "\na.txt 0 0o644 "));
    assert_non_null(strstr(list, "\nhard 1 0o644 "));
    assert_non_null(strstr(list, " a.txt 0\n"));
    free(err);
    free(list);
}

static void test_non_utf8_name(void **state)
{
    fx *f = *state;
    ok("cd '%s' && mkdir raw && printf x > raw/\"$(printf 'caf\\351')\" && "
       "'%s' tar raw raw.tar && mkdir x && tar -xf raw.tar -C x && diff -r raw x",
       f->dir, MKKV);
}

/* An empty source: an archive with no members, that every reader takes. */
static void test_empty_source(void **state)
{
    fx *f = *state;
    char *out;
    assert_int_equal(t_sh(&out, NULL,
                          "cd '%s' && mkdir none && '%s' tar none e.tar && "
                          "'%s' tar none e.tgz && tar -tf e.tar && tar -tzf e.tgz && "
                          "python3 '%s' list e.tar && stat -c %%s e.tar",
                          f->dir, MKKV, MKKV, f->py),
                     0);
    assert_string_equal(out, "10240\n"); /* two zero blocks, padded to a 10 KiB record */
    free(out);
}

/* -t dir reads a directory through kvro's own backend: the same archive
 * as the native walk, links kept; with -L they are followed, so the
 * archive holds plain files and directories. */
static void test_through_kvro(void **state)
{
    fx *f = *state;
    ok("cd '%s' && '%s' tar -t dir src kv.tar && '%s' tar src native.tar && "
       "cmp kv.tar native.tar && '%s' tar -L src out.tar && mkdir x && tar -xf out.tar -C x && "
       "diff -r src x && test -f x/links/rel && ! test -L x/links/rel && test -d x/links/dir && "
       "! test -L x/links/dir && test -f x/links/abs && ! test -L x/links/abs",
       f->dir, MKKV, MKKV, MKKV);
}

/* ---------------------------------------------------- output and failure */

static void test_out_inside_source(void **state)
{
    fx *f = *state;
    char *err;
    assert_int_equal(t_sh(NULL, &err, "cd '%s' && '%s' tar src src/sub/out.tar", f->dir, MKKV), 2);
    assert_non_null(strstr(err, "inside SOURCE"));
    free(err);
    /* Reached another way: through a link to the source, or as "." */
    ok("cd '%s' && ln -s src alias", f->dir);
    assert_int_equal(t_sh(NULL, NULL, "cd '%s' && '%s' tar src alias/o.tar", f->dir, MKKV), 2);
    assert_int_equal(t_sh(NULL, NULL, "cd '%s/src' && '%s' tar . o.tar", f->dir, MKKV), 2);
    ok("cd '%s' && ! ls src/sub/out.tar src/o.tar 2>/dev/null && ! ls -A src | grep '^\\.'",
       f->dir);
}

static void test_failures_leave_no_out(void **state)
{
    fx *f = *state;
    char *err;
    /* OUT's directory does not exist. */
    assert_int_equal(t_sh(NULL, &err, "cd '%s' && '%s' tar src nowhere/out.tar", f->dir, MKKV), 1);
    assert_non_null(strstr(err, "mkkv: nowhere/out.tar: "));
    free(err);
    /* A corrupt source: no backend takes it. */
    put(f->dir, "junk.img", "this is not an image of anything at all\n");
    put(f->dir, "old.tar", "old\n");
    assert_int_equal(t_sh(NULL, &err, "cd '%s' && '%s' tar junk.img old.tar", f->dir, MKKV), 1);
    assert_non_null(strstr(err, "mkkv: junk.img"));
    free(err);
    ok("cd '%s' && test \"$(cat old.tar)\" = old", f->dir);
    /* OUT a directory: refused, the directory untouched. */
    assert_int_equal(t_sh(NULL, &err, "cd '%s' && mkdir d && '%s' tar src d", f->dir, MKKV), 1);
    assert_non_null(strstr(err, "mkkv: d: "));
    free(err);
    assert_no_temp(f->dir);
}

/* SIGTERM in the middle of a long build: the temporary file goes, OUT
 * stays as it was. The source is an 8 GiB sparse file, so the build is
 * still running when the signal comes. */
static void test_interrupted(void **state)
{
    fx *f = *state;
    char *out;
    ok("cd '%s' && mkdir huge && truncate -s 8G huge/zeros && echo old > out.tar", f->dir);
    assert_int_equal(t_sh(&out, NULL,
                          "cd '%s' && { '%s' tar -q huge out.tar & pid=$!; i=0; "
                          "while ! ls -A | grep -q '^\\.out\\.tar\\.' && [ $i -lt 1000 ]; do "
                          "sleep 0.01; i=$((i+1)); done; sleep 0.2; kill -TERM $pid; wait $pid; "
                          "echo status=$?; }",
                          f->dir, MKKV),
                     0);
    assert_non_null(strstr(out, "status=143"));
    free(out);
    ok("cd '%s' && test \"$(cat out.tar)\" = old", f->dir);
    assert_no_temp(f->dir);
}

static void test_usage(void **state)
{
    fx *f = *state;
    char *out, *err;
    assert_int_equal(t_sh(&out, NULL, "'%s' tar --help", MKKV), 0);
    for (const char *const *w =
             (const char *const[]){"--gzip", "--xz", "--zstd", "--bzip2", ".tar.zst", ".tar.lz",
                                   "same file", "--mtime EPOCH", "-q", "-t", "SOURCE_DATE_EPOCH",
                                   "hard links", "deterministic", "symbolic link", "--dereference", NULL};
         *w; w++)
        if (!strstr(out, *w))
            fail_msg("mkkv tar --help does not mention '%s'", *w);
    free(out);
    assert_int_equal(t_sh(&out, NULL, "'%s' --help", MKKV), 0);
    assert_non_null(strstr(out, "  tar "));
    free(out);
    assert_int_equal(t_sh(NULL, &err, "cd '%s' && '%s' tar src", f->dir, MKKV), 2);
    assert_non_null(strstr(err, "SOURCE OUT"));
    free(err);
    assert_int_equal(t_sh(NULL, NULL, "'%s' tar", MKKV), 2);
    assert_int_equal(t_sh(NULL, NULL, "cd '%s' && '%s' tar src a b", f->dir, MKKV), 2);
    assert_int_equal(t_sh(NULL, NULL, "cd '%s' && '%s' tar --bogus src o.tar", f->dir, MKKV), 2);
    /* Quiet when standard error is not a terminal: nothing at all. */
    assert_int_equal(t_sh(NULL, &err, "cd '%s' && '%s' tar src o.tar", f->dir, MKKV), 0);
    assert_string_equal(err, "");
    free(err);
}

/* On a terminal, a long build shows a progress line; -q silences it. */
static void test_progress(void **state)
{
    fx *f = *state;
    require_tool("script");
    char *out;
    ok("cd '%s' && mkdir slow && truncate -s 1G slow/zeros", f->dir);
    assert_int_equal(
        t_sh(&out, NULL, "cd '%s' && script -qec \"'%s' tar slow o.tar\" /dev/null", f->dir, MKKV),
        0);
    assert_non_null(strstr(out, "files, "));
    assert_non_null(strstr(out, "/s"));
    free(out);
    assert_int_equal(t_sh(&out, NULL, "cd '%s' && script -qec \"'%s' tar -q slow o.tar\" /dev/null",
                          f->dir, MKKV),
                     0);
    assert_null(strstr(out, "files, "));
    free(out);
}

/* ------------------------------------------------------------ round trip */

/* Whether mkkv reads tar archives yet (the "tar" backend is listed among
 * the sources in mkkv --help). */
static bool have_tar_reader(void)
{
    char *out;
    t_sh(&out, NULL, "'%s' --help", MKKV);
    const char *sources = strstr(out, "A SOURCE is any of:");
    bool have = sources && strstr(sources, "\n  tar ");
    free(out);
    return have;
}

static void test_round_trip(void **state)
{
    fx *f = *state;
    if (!have_tar_reader()) {
        print_message("skipped: mkkv has no tar reader yet (no 'tar' source in mkkv --help)\n");
        skip();
    }
    ok("cd '%s' && '%s' tar src x.tar && '%s' verify -q x.tar src && "
       "'%s' tar src x.tgz && '%s' verify -q x.tgz src && "
       "'%s' tar x.tar y.tar && '%s' verify -q y.tar src && "
       "'%s' tar --mtime 5 x.tgz z.tar && tar -tvf z.tar | grep -q '1970-01-01 00:00 a.txt'",
       f->dir, MKKV, MKKV, MKKV, MKKV, MKKV, MKKV, MKKV);
    /* A source that fails to read (an archive cut short inside big.bin's
     * data) leaves no OUT, and an existing one as it was. */
    char *err;
    assert_int_equal(t_sh(NULL, &err,
                          "cd '%s' && head -c 1000000 x.tar > cut.tar && echo old > o.tar && "
                          "'%s' tar cut.tar o.tar; s=$?; '%s' tar cut.tar p.tar; exit $s",
                          f->dir, MKKV, MKKV),
                     1);
    assert_non_null(strstr(err, "mkkv: cut.tar"));
    free(err);
    ok("cd '%s' && test \"$(cat o.tar)\" = old && ! test -e p.tar", f->dir);
    assert_no_temp(f->dir);
    /* The source is never modified, and OUT may not be SOURCE itself. */
    ok("cd '%s' && cp x.tar copy.tar && ! '%s' tar x.tar x.tar 2>/dev/null && cmp x.tar copy.tar",
       f->dir, MKKV);
}

/* From an archive, members keep the archive's order (a .tar.gz is then
 * inflated once, front to back): GNU tar writes them as named on its
 * command line, unsorted, with a directory implied by its members only;
 * the names of one file (a hard link) are the file where the archive has
 * the data, whatever sorts first. The same bytes from the .tar and the
 * .tar.gz, and again from the copy itself. */
static void test_archive_order(void **state)
{
    fx *f = *state;
    ok("cd '%s' && mkdir -p ord/z/a ord/y && cd ord && echo 1 > z/a/f && echo 2 > y/g && "
       "echo 3 > b && echo 4 > zz && ln zz aa && "
       "tar --format=gnu -cf ../ord.tar z/a/f b y zz aa && gzip -n -c ../ord.tar > ../ord.tgz",
       f->dir);
    ok("cd '%s' && '%s' tar -q ord.tar o1.tar && '%s' tar -q ord.tgz o2.tar && cmp o1.tar o2.tar && "
       "'%s' tar -q o1.tar o3.tar && cmp o1.tar o3.tar",
       f->dir, MKKV, MKKV, MKKV);
    char *out = NULL;
    assert_int_equal(
        t_sh(&out, NULL, "cd '%s' && tar -tvf o1.tar | awk '{print $1, $6, $7, $8}'", f->dir), 0);
    assert_string_equal(out, "drwxr-xr-x z/  \n"
                             "drwxr-xr-x z/a/  \n"
                             "-rw-r--r-- z/a/f  \n"
                             "-rw-r--r-- b  \n"
                             "drwxr-xr-x y/  \n"
                             "-rw-r--r-- y/g  \n"
                             "-rw-r--r-- zz  \n"
                             "hrw-r--r-- aa link to\n");
    free(out);
    ok("cd '%s' && rm -rf x && mkdir x && tar -xf o1.tar -C x && diff -r ord x && "
       "test \"$(stat -c %%i x/aa)\" = \"$(stat -c %%i x/zz)\"",
       f->dir);
    /* --sort=name: sorted as from the directory itself (the times made one,
     * as the archive implies z/ and has no time for it). */
    ok("cd '%s' && '%s' tar -q --mtime 1 --sort=name ord.tgz s1.tar && "
       "'%s' tar -q --mtime 1 ord s2.tar && "
       "cmp s1.tar s2.tar && test \"$(tar -tf s1.tar | head -2)\" = \"$(printf 'aa\\nb')\"",
       f->dir, MKKV, MKKV);
    char *err = NULL;
    assert_int_equal(
        t_sh(NULL, &err, "cd '%s' && '%s' tar --sort=inode ord.tar s3.tar", f->dir, MKKV), 2);
    assert_non_null(strstr(err, "want name or none"));
    free(err);
}

/* xz, zstd and bzip2, by suffix and by flag: each stream passes its own
 * tool's test, GNU tar lists and extracts it through that tool, Python
 * reads what it decompresses to, and the same tree gives the same bytes
 * (built again a second later, and from a tree made in the opposite
 * order). */
static void test_compressed(void **state)
{
    fx *f = *state;
    static const struct {
        const char *suffix, *alt, *flag, *tool, *magic;
        size_t magic_len;
    } kinds[] = {
        {"tar.xz", "txz", "-J", "xz", "\3757zXZ\0", 6},
        {"tar.zst", "tzst", "--zstd", "zstd", "\x28\xb5\x2f\xfd", 4},
        {"tar.bz2", "tbz2", "-j", "bzip2", "BZh9", 4},
    };
    char *a = at(f, "a/t"), *b = at(f, "b/t");
    build_ordered(a, false);
    build_ordered(b, true);
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        const char *s = kinds[i].suffix, *alt = kinds[i].alt, *flag = kinds[i].flag,
                   *tool = kinds[i].tool;
        require_tool(tool);
        ok("cd '%s' && rm -rf x y && '%s' tar src out.%s && '%s' tar src out.%s && "
           "'%s' tar %s src - > piped && '%s' tar %s src flagged && "
           "cmp out.%s out.%s && cmp out.%s piped && cmp out.%s flagged && "
           "%s -t out.%s && %s -dc out.%s | tar -tf - > list && grep -qx a.txt list && "
           "mkdir x && %s -dc out.%s | tar -xf - -C x && %s -dc out.%s > inner.tar && "
           "python3 '%s' extract inner.tar y",
           f->dir, MKKV, s, MKKV, alt, MKKV, flag, MKKV, flag, s, alt, s, s, tool, s, tool, s, tool,
           s, tool, s, f->py);
        char *x = at(f, "x"), *y = at(f, "y");
        assert_extracted(f, x);
        ok("diff -r '%s' '%s'", f->src, y);
        free(x), free(y);
        /* The magic: really that compression, not a plain tar so named. */
        char *path = t_fmt("%s/out.%s", f->dir, s);
        size_t n;
        char *bytes = t_slurp(path, &n);
        assert_true(n > kinds[i].magic_len);
        assert_memory_equal(bytes, kinds[i].magic, kinds[i].magic_len);
        free(bytes), free(path);
        /* Deterministic: a second later, and whatever order the tree was
         * made in; pinned to one processor or not. */
        ok("cd '%s' && sleep 1 && '%s' tar src again.%s && cmp out.%s again.%s && "
           "'%s' tar --mtime 1000000000 a/t a.%s && '%s' tar --mtime 1000000000 b/t b.%s && "
           "cmp a.%s b.%s && if command -v taskset >/dev/null; then "
           "taskset -c 0 '%s' tar --mtime 1000000000 b/t one.%s && cmp a.%s one.%s; fi",
           f->dir, MKKV, s, s, s, MKKV, s, MKKV, s, s, s, MKKV, s, s, s);
    }
    /* GNU tar's rule: the last suffix, with or without ".tar". */
    ok("cd '%s' && '%s' tar src o.xz && xz -t o.xz && '%s' tar src o.gz && gzip -t o.gz && "
       "'%s' tar src o.tbz && bzip2 -t o.tbz",
       f->dir, MKKV, MKKV, MKKV);
    free(a), free(b);
}

/* A suffix of a compression (or format) mkkv does not write is a usage
 * error, never a plain tar under that name; so are two compressions. */
static void test_unknown_suffix(void **state)
{
    fx *f = *state;
    static const char *const outs[] = {"o.tar.lz", "o.tar.lzma", "o.tar.Z",   "o.tar.lz4",
                                       "o.7z",     "o.tlz",      "o.tar.lzo", "o.zip"};
    char *err;
    for (size_t i = 0; i < sizeof outs / sizeof *outs; i++) {
        assert_int_equal(t_sh(NULL, &err, "cd '%s' && '%s' tar src %s", f->dir, MKKV, outs[i]), 2);
        if (!strstr(err, "does not write") || !strstr(err, outs[i]))
            fail_msg("%s: %s", outs[i], err);
        free(err);
        char *p = at(f, outs[i]);
        assert_false(exists(p));
        free(p);
        /* Not with a flag either: the name would still lie. */
        assert_int_equal(t_sh(NULL, NULL, "cd '%s' && '%s' tar -J src %s", f->dir, MKKV, outs[i]),
                         2);
    }
    assert_int_equal(t_sh(NULL, &err, "cd '%s' && '%s' tar -z src o.tar.xz", f->dir, MKKV), 2);
    assert_non_null(strstr(err, "-z asks for gzip, but OUT 'o.tar.xz' names xz"));
    free(err);
    assert_int_equal(t_sh(NULL, &err, "cd '%s' && '%s' tar -z -j src -", f->dir, MKKV), 2);
    assert_non_null(strstr(err, "choose one"));
    free(err);
    ok("cd '%s' && ! ls o.tar.xz 2>/dev/null", f->dir);
    assert_no_temp(f->dir);
}

/* OUT that is SOURCE under any name (by name, a hard link, a symbolic
 * link, a file on standard input, a window) is refused before anything is
 * written: exit 2, SOURCE and its links as they were. */
/* Builders sync their output only when asked (--fsync): without it, as
 * tar and the linker, no fsync at all; with it, the file before the
 * rename and the directory after. Seen with strace; the bytes are the
 * same either way. */
static void test_fsync_on_request(void **state)
{
    fx *f = *state;
    if (!t_have("strace")) {
        /* scripts/deps.sh test installs it: only a bare machine gets here */
        fprintf(stderr, "test_fsync_on_request: strace not found, skipped\n");
        skip();
    }
    if (t_run("strace -qq -o /dev/null true", NULL, NULL) != 0) {
        /* a sandbox that forbids ptrace */
        fprintf(stderr, "test_fsync_on_request: strace cannot trace here, skipped\n");
        skip();
    }
    static const char *const builds[][2] = {
        {"tar --mtime 1", "y.tar"}, {"fat", "y.img"}, {"crunch", "y.c"}};
    for (size_t i = 0; i < sizeof builds / sizeof *builds; i++) {
        const char *cmd = builds[i][0], *out = builds[i][1];
        /* strace's exit status is mkkv's. LeakSanitizer cannot run under
         * ptrace: off for these runs of an ASan build (the suite runs
         * mkkv without strace everywhere else). */
        ok("cd '%s' && rm -rf p s && mkdir p s && "
           "export ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" && "
           "strace -f -qq -e trace=fsync,fdatasync,syncfs,sync -o p.log '%s' %s -q src p/%s && "
           "! grep -q sync p.log && "
           "strace -f -qq -e trace=fsync,fdatasync -o s.log '%s' %s -q --fsync src s/%s && "
           "test \"$(grep -c '^[0-9]* *f[a-z]*sync(' s.log)\" -ge 2 && cmp p/%s s/%s",
           f->dir, MKKV, cmd, out, MKKV, cmd, out, out, out);
    }
}

static void test_out_is_source(void **state)
{
    fx *f = *state;
    if (!have_tar_reader()) {
        print_message("skipped: mkkv has no tar reader yet\n");
        skip();
    }
    ok("cd '%s' && '%s' tar src a.tar && '%s' tar src a.tgz && cp a.tar a.copy && "
       "cp a.tgz a.tgz.copy && ln a.tar hard.tar && ln a.tgz hard.tar.gz && "
       "ln -s a.tar soft.tar && mkdir sub && ln a.tar sub/deep.tar && "
       "stat -c %%i a.tar > inode",
       f->dir, MKKV, MKKV);
    static const char *const cases[] = {
        "a.tar a.tar",           "./a.tar a.tar",
        "a.tar hard.tar",        "hard.tar a.tar",
        "a.tar soft.tar",        "soft.tar a.tar",
        "a.tar sub/deep.tar",    "a.tgz hard.tar.gz",
        "- hard.tar < a.tar",    "--image-offset 0 a.tar hard.tar",
        "-t tar a.tar hard.tar",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *err;
        assert_int_equal(t_sh(NULL, &err, "cd '%s' && '%s' tar %s", f->dir, MKKV, cases[i]), 2);
        if (!strstr(err, "is the same file as SOURCE"))
            fail_msg("mkkv tar %s: %s", cases[i], err);
        free(err);
        /* Nothing replaced: the same bytes, the same inode, the links
         * still links. */
        ok("cd '%s' && cmp a.tar a.copy && cmp a.tgz a.tgz.copy && "
           "test \"$(stat -c %%i a.tar)\" = \"$(cat inode)\" && "
           "test \"$(stat -c %%h a.tar)\" = 3 && test \"$(stat -c %%h a.tgz)\" = 2 && "
           "test -L soft.tar && test \"$(stat -c %%i hard.tar)\" = \"$(cat inode)\"",
           f->dir);
        assert_no_temp(f->dir);
    }
    /* A pipe has no file to compare; another file is fine. */
    ok("cd '%s' && cat a.tar | '%s' tar - piped.tar && '%s' tar a.tar other.tar && "
       "cmp a.tar a.copy",
       f->dir, MKKV, MKKV);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_gnu_tar_reads_it),
        T(test_bsdtar_reads_it),
        T(test_python_reads_it),
        T(test_gzip),
        T(test_stdout),
        T(test_deterministic),
        T(test_mtime),
        T(test_bad_mtime),
        T(test_escaping_link),
        T(test_special_files_and_hard_links),
        T(test_non_utf8_name),
        T(test_empty_source),
        T(test_through_kvro),
        T(test_out_inside_source),
        T(test_failures_leave_no_out),
        T(test_interrupted),
        T(test_usage),
        T(test_progress),
        T(test_round_trip),
        T(test_compressed),
        T(test_unknown_suffix),
        T(test_out_is_source),
        T(test_fsync_on_request),
        T(test_archive_order),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
