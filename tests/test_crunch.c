/*
 * test_crunch.c — mkkv crunch and the crunch backend, end to end: a
 * reference tree is crunched by the real mkkv, the C it writes is compiled
 * as a user's program would compile it (gcc and clang-14 with -std=c99
 * -pedantic -Werror, g++ -std=c++17 through the header) together with
 * tests/crunch_check.c, which compares every entry with the host tree
 * through the dir backend; sha256sum checks the stored hashes. Then the
 * edges: --incbin, an empty tree, 10,000 files, a 5 GiB sparse file (refused),
 * determinism, filters and the depfile, a table of another layout version,
 * and what a static program that opens a table links.
 */
#include "support.h"

#include <kvro/crunch.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* The compiled programs carry the sanitizers the library was built with. */
#if defined(__SANITIZE_ADDRESS__)
#define SAN " -fsanitize=address,undefined"
#elif defined(__SANITIZE_THREAD__)
#define SAN " -fsanitize=thread"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAN " -fsanitize=address,undefined"
#elif __has_feature(thread_sanitizer)
#define SAN " -fsanitize=thread"
#endif
#endif
#ifndef SAN
#define SAN ""
#endif

#define STRICT " -std=c99 -Wall -Wextra -Werror -pedantic -Wno-overlength-strings"
#define INC " -I'" KVRO_TEST_SOURCE_DIR "/kvro/include'"
#define LIB " '" KVRO_TEST_BINARY_DIR "/libkvro.a' -lz -lpthread"
#define CHECK_SRC "'" KVRO_TEST_SOURCE_DIR "/tests/crunch_check.c'"

typedef struct fixture {
    char *dir;  /* scratch */
    char *tree; /* dir/tree: the reference tree */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = t_tempdir("crunch");
    f->tree = t_join(f->dir, "tree");
    char *p;
    t_write(p = t_join(f->tree, "hello.txt"), "hello, world\n", 13), free(p);
    t_write(p = t_join(f->tree, "empty"), "", 0), free(p);
    t_write(p = t_join(f->tree, ".hidden"), "dot\n", 4), free(p);
    t_mkdirs(p = t_join(f->tree, "empty-dir")), free(p);
    /* Names C must escape: quotes, backslashes, a trigraph, a comment's
     * end (across a '/'), bytes that are not UTF-8, a digit after a byte
     * written as an octal escape. */
    t_write(p = t_join(f->tree, "q\"uo\\te?\?=x"), "?\?=?\?/\"\\", 8), free(p);
    t_write(p = t_join(f->tree, "x*/y*/z"), "*/ /*", 5), free(p);
    t_write(p = t_join(f->tree, "bad\351\3770name"), "\001\0012\0003", 6), free(p);
    t_write_pattern(p = t_join(f->tree, "a/b/c/deep.bin"), 1, 65535), free(p);
    t_write_pattern(p = t_join(f->tree, "a/b/block.bin"), 2, 65536), free(p);
    t_write_pattern(p = t_join(f->tree, "a/b/block1.bin"), 3, 65537), free(p);
    t_write_pattern(p = t_join(f->tree, "a/big.bin"), 4, 300001), free(p);
    /* Compressible, over several blocks, with one incompressible block in
     * the middle: deflated and raw blocks in one value. */
    size_t n = 5 * 65536 + 123;
    char *text = malloc(n);
    for (size_t i = 0; i < n; i++)
        text[i] = i / 65536 == 2 ? (char)t_pattern(5, i) : "kvro crunch\n"[i % 12];
    t_write(p = t_join(f->tree, "a/text.txt"), text, n), free(p);
    free(text);
    assert_int_equal(t_sh(NULL, NULL,
                          "cd '%s' && ln -s hello.txt link && ln -s a/b dirlink && "
                          "ln -s /etc/passwd outside && ln -s nowhere dangling",
                          f->tree),
                     0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    t_rmrf(f->dir);
    free(f->tree);
    free(f->dir);
    free(f);
    return 0;
}

/* Runs a shell command, printing its output when it fails. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = t_vfmt(fmt, ap);
    va_end(ap);
    char *out, *err;
    int rc = t_run(cmd, &out, &err);
    if (rc)
        fprintf(stderr, "# %s\n# exit %d\n%s%s", cmd, rc, out, err);
    free(cmd);
    free(out);
    free(err);
    return rc;
}

/* mkkv crunch ARGS into DIR/table.c (--name table). */
static int crunch(const char *src, const char *dir, const char *args, char **err)
{
    t_mkdirs(dir);
    return t_mkkv(NULL, err, "crunch --name table %s '%s' '%s/table.c'", args, src, dir);
}

/* Compiles crunch_check.c with DIR's table into DIR/check, with CC. */
static void build_check(const char *dir, const char *cc)
{
    assert_int_equal(sh("cd '%s' && %s" STRICT SAN INC " -I. -c table.c -o table.o && %s" STRICT
                        SAN INC " -I. " CHECK_SRC " table.o" LIB " -o check",
                        dir, cc, cc),
                     0);
}

/* Runs DIR/check over the tree, then sha256sum over what it printed. */
static void run_check(const char *dir, const char *tree, const char *mode, const char *extra)
{
    assert_int_equal(sh("cd '%s' && '%s/check' '%s' %s %s >'%s/sums' && { test ! -s '%s/sums' || "
                        "sha256sum --quiet --strict -c '%s/sums'; }",
                        tree, dir, tree, mode, extra, dir, dir, dir),
                     0);
}

static void test_plain(void **state)
{
    fixture *f = *state;
    char *out = t_join(f->dir, "plain"), *err;
    assert_int_equal(crunch(f->tree, out, "", &err), 0);
    /* Links: inside, copied; outside and dangling, left out and named. */
    assert_non_null(strstr(err, "outside"));
    assert_non_null(strstr(err, "dangling"));
    assert_null(strstr(err, "dirlink"));
    free(err);
    build_check(out, "gcc");
    run_check(out, f->tree, "plain", "- hello.txt");
    if (t_have("clang-14")) {
        build_check(out, "clang-14");
        run_check(out, f->tree, "plain", "- a/big.bin");
    }
    /* Every line within the 4,095 characters C99 promises a compiler takes
     * (a/big.bin's data spans many lines). */
    assert_int_equal(sh("awk 'length($0) > 4095 { print FILENAME \": line \" NR \" is \" "
                        "length($0) \" long\"; bad = 1 } END { exit bad }' '%s/table.c'",
                        out),
                     0);
    /* Nothing but the outputs beside them. */
    assert_int_equal(sh("cd '%s' && test \"$(ls -A | grep -v -e '^check$' -e '^sums$' -e "
                        "'^table\\.[cho]$')\" = ''",
                        out),
                     0);
    free(out);
}

static void test_compressed(void **state)
{
    fixture *f = *state;
    char *out = t_join(f->dir, "z");
    assert_int_equal(crunch(f->tree, out, "--compress", NULL), 0);
    assert_int_equal(sh("grep -q 'kvro_crunch_inflate' '%s/table.c'", out), 0);
    build_check(out, t_have("clang-14") ? "clang-14" : "gcc");
    run_check(out, f->tree, "compressed", "- a/text.txt");
    free(out);
}

/* --incbin: the data in table.bin, pulled in by the assembler; the same
 * checks, with gcc and clang-14, plain and compressed, and an empty tree
 * (an empty .bin). */
static void test_incbin(void **state)
{
    fixture *f = *state;
    for (int z = 0; z < 2; z++) {
        char *out = t_join(f->dir, z ? "incbin-z" : "incbin");
        assert_int_equal(crunch(f->tree, out, z ? "--incbin --compress" : "--incbin", NULL), 0);
        /* The data is not in the C, and the .bin is exactly the data. */
        assert_int_equal(sh("cd '%s' && test -s table.bin && ! grep -q crunch__data table.c && "
                            "grep -q '.incbin \\\\\"table.bin' table.c",
                            out),
                         0);
        build_check(out, "gcc");
        run_check(out, f->tree, z ? "compressed" : "plain", "- a/big.bin");
        if (t_have("clang-14")) {
            build_check(out, "clang-14");
            run_check(out, f->tree, z ? "compressed" : "plain", "- a/text.txt");
        }
        free(out);
    }
    char *tree = t_join(f->dir, "incbin-empty-tree"), *out = t_join(f->dir, "incbin-empty");
    t_mkdirs(tree);
    assert_int_equal(crunch(tree, out, "--incbin", NULL), 0);
    assert_int_equal(sh("test ! -s '%s/table.bin'", out), 0);
    build_check(out, "gcc");
    run_check(out, tree, "plain", "");
    free(tree);
    free(out);
    /* A name the generated assembly could not quote is refused. */
    assert_int_equal(t_mkkv(NULL, NULL, "crunch --incbin '%s' '%s/a\"b.c'", f->tree, f->dir), 2);
}

static void test_cxx(void **state)
{
    fixture *f = *state;
    char *out = t_join(f->dir, "cxx");
    assert_int_equal(crunch(f->tree, out, "", NULL), 0);
    char *src = t_join(out, "main.cc");
    const char *prog = "#include \"table.h\"\n"
                       "#include <cstdio>\n"
                       "int main() {\n"
                       "    kvro *kv = nullptr;\n"
                       "    kvro_error err;\n"
                       "    if (kvro_open_crunch(&table, &kv, &err) != KVRO_OK) return 1;\n"
                       "    char buf[64];\n"
                       "    int64_t n = 0;\n"
                       "    unsigned char sha[32];\n"
                       "    if (kvro_read(kv, \"hello.txt\", 0, sizeof buf, buf, &n, &err) ||\n"
                       "        kvro_sha256(kv, \"hello.txt\", sha, &err)) return 1;\n"
                       "    std::fwrite(buf, 1, (size_t)n, stdout);\n"
                       "    kvro_close(kv);\n"
                       "    return 0;\n"
                       "}\n";
    t_write(src, prog, strlen(prog));
    assert_int_equal(sh("cd '%s' && gcc" STRICT SAN INC " -c table.c -o table.o && g++ "
                        "-std=c++17 -Wall -Wextra -Werror -pedantic" SAN INC
                        " main.cc table.o" LIB " -o main && ./main | cmp - '%s/hello.txt'",
                        out, f->tree),
                     0);
    free(src);
    free(out);
}

static void test_deterministic(void **state)
{
    fixture *f = *state;
    char *a = t_join(f->dir, "det-a"), *b = t_join(f->dir, "det-b/deeper");
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    assert_int_equal(crunch(f->tree, a, "--compress", NULL), 0);
    assert_int_equal(crunch(f->tree, b, "--compress", NULL), 0);
    unsetenv("SOURCE_DATE_EPOCH");
    assert_int_equal(sh("cmp '%s/table.c' '%s/table.c' && cmp '%s/table.h' '%s/table.h'", a, b,
                        a, b),
                     0);
    build_check(a, "gcc");
    run_check(a, f->tree, "compressed", "1700000000");
    free(a);
    free(b);
}

static void test_empty_tree(void **state)
{
    fixture *f = *state;
    char *tree = t_join(f->dir, "empty-tree"), *out = t_join(f->dir, "empty-out");
    t_mkdirs(tree);
    assert_int_equal(crunch(tree, out, "", NULL), 0);
    build_check(out, "gcc");
    run_check(out, tree, "plain", "");
    free(tree);
    free(out);
}

static void test_many_files(void **state)
{
    fixture *f = *state;
    char *tree = t_join(f->dir, "many"), *out = t_join(f->dir, "many-out");
    for (int d = 0; d < 100; d++) {
        char *sub = t_fmt("%s/d%02d", tree, d);
        t_mkdirs(sub);
        for (int i = 0; i < 100; i++) {
            char *p = t_fmt("%s/f%03d", sub, i);
            char body[32];
            int n = snprintf(body, sizeof body, "%d/%d\n", d, i);
            t_write(p, body, (size_t)n);
            free(p);
        }
        free(sub);
    }
    assert_int_equal(crunch(tree, out, "", NULL), 0);
    build_check(out, "gcc");
    run_check(out, tree, "plain", "- d42/f042");
    free(tree);
    free(out);
}

static void test_too_big(void **state)
{
    fixture *f = *state;
    char *tree = t_join(f->dir, "sparse"), *out = t_join(f->dir, "sparse-out"), *err;
    t_mkdirs(tree);
    t_mkdirs(out);
    assert_int_equal(sh("truncate -s 5G '%s/huge'", tree), 0);
    assert_int_equal(crunch(tree, out, "", &err), 1);
    assert_non_null(strstr(err, "huge"));
    assert_non_null(strstr(err, "too big"));
    free(err);
    /* Nothing written, no temporary file left. */
    assert_int_equal(sh("test -z \"$(ls -A '%s')\"", out), 0);
    free(tree);
    free(out);
}

static void test_usage(void **state)
{
    fixture *f = *state;
    char *out, *err;
    assert_int_equal(t_mkkv(NULL, NULL, "crunch '%s' '%s/x.txt'", f->tree, f->dir), 2);
    assert_int_equal(t_mkkv(NULL, NULL, "crunch --name 9bad '%s' '%s/x.c'", f->tree, f->dir), 2);
    assert_int_equal(t_mkkv(NULL, &err, "crunch '%s' '%s/a/inside.c'", f->tree, f->tree), 2);
    assert_non_null(strstr(err, "inside"));
    free(err);
    assert_int_equal(t_mkkv(&out, NULL, "crunch --help"), 0);
    assert_non_null(strstr(out, "hidden"));
    free(out);
    /* The default name comes from OUT: "3d-site.c" is _3d_site. */
    char *dir = t_join(f->dir, "named");
    t_mkdirs(dir);
    assert_int_equal(t_mkkv(NULL, NULL,
                            "crunch '%s' '%s/3d-site.c' && grep -q 'extern const kvro_crunch "
                            "_3d_site;' '%s/3d-site.h'",
                            f->tree, dir, dir),
                     0);
    free(dir);
}

static void test_filters_depfile(void **state)
{
    fixture *f = *state;
    char *out = t_join(f->dir, "filtered");
    t_mkdirs(out);
    char *dep = t_join(out, "table.d");
    /* A directory holding nothing kept is still an input: a file added to
     * it later may match --include. */
    char *p = t_join(f->tree, "docs/readme.txt");
    t_write(p, "text\n", 5);
    free(p);
    char *args = t_fmt("--include '*.bin' --include 'empty*' --exclude 'a/b/c' --exclude "
                       "'dirlink*' --depfile '%s'",
                       dep);
    assert_int_equal(crunch(f->tree, out, args, NULL), 0);
    size_t n;
    char *d = t_slurp(dep, &n);
    char *want = t_fmt("%s/table.c:", out);
    assert_true(strncmp(d, want, strlen(want)) == 0);
    free(want);
    const char *kept[] = {"/a/big.bin \\", "/a/b/block.bin \\", "/a/b \\", "/empty\n",
                          "/empty-dir \\", "/a/b/block.bin:", "/docs \\", "/docs:"};
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
        if (!strstr(d, kept[i]))
            fprintf(stderr, "# missing %s in\n%s", kept[i], d);
        assert_non_null(strstr(d, kept[i]));
    }
    const char *gone[] = {"deep.bin", "hello", "text.txt", "dirlink", ".hidden", "readme"};
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++)
        assert_null(strstr(d, gone[i]));
    free(d);
    build_check(out, "gcc");
    free(dep);
    free(args);
    free(out);
}

/* What a static program that only opens a table links: core and crunch,
 * no registry, tar, dir or (for a plain table) zlib; its added text size
 * is printed. */
static void test_small_link(void **state)
{
    fixture *f = *state;
    if (SAN[0]) {
        skip(); /* the sanitizers' runtime is in every object */
        return;
    }
    for (int z = 0; z < 2; z++) {
        char *out = t_join(f->dir, z ? "small-z" : "small");
        assert_int_equal(crunch(f->tree, out, z ? "--compress" : "", NULL), 0);
        char *src = t_join(out, "main.c");
        const char *prog = "#include \"table.h\"\n"
                           "int main(void) {\n"
                           "    kvro *kv; kvro_error err; char buf[16]; int64_t n;\n"
                           "    if (kvro_open_crunch(&table, &kv, &err)) return 1;\n"
                           "    if (kvro_read(kv, \"a/text.txt\", 0, 16, buf, &n, &err)) return 1;\n"
                           "    kvro_close(kv);\n"
                           "    return n == 16 ? 0 : 1;\n"
                           "}\n";
        t_write(src, prog, strlen(prog));
        const char *base = "int main(void) { return 0; }\n";
        char *bsrc = t_join(out, "base.c");
        t_write(bsrc, base, strlen(base));
        assert_int_equal(sh("cd '%s' && gcc -O2" INC " -I. main.c table.c" LIB " -o main && "
                            "./main && gcc -O2 base.c -o base",
                            out),
                         0);
        /* Symbols that would show the registry, tar, dir or zlib came in. */
        const char *no = z ? "kvro__backends|kvro__backend_tar|kvro__backend_dir|kvro_open$"
                           : "kvro__backends|kvro__backend_tar|kvro__backend_dir|kvro_open$|"
                             "inflate|deflate|crc32";
        assert_int_equal(sh("nm '%s/main' | grep -q ' kvro_open_crunch$'", out), 0);
        assert_int_equal(sh("! nm '%s/main' | grep -E ' (%s)'", out, no), 0);
        if (z)
            assert_int_equal(sh("nm '%s/main' | grep -q ' inflate$'", out), 0);
        /* The text the library added: main's minus an empty program's,
         * less the table's own data (in .rodata, counted by size as text). */
        char *cmd = t_fmt("cd '%s' && echo $(( $(size -A main | awk '$1 == \".text\" {print "
                          "$2}') - $(size -A base | awk '$1 == \".text\" {print $2}') ))",
                          out);
        char *text;
        assert_int_equal(t_run(cmd, &text, NULL), 0);
        long added = atol(text);
        fprintf(stderr, "# %s table: kvro added %ld bytes of .text to a static program\n",
                z ? "compressed" : "plain", added);
        if (!z)
            assert_true(added < 32 * 1024);
        free(text);
        free(cmd);
        free(bsrc);
        free(src);
        free(out);
    }
}

/* kvro_crunch() from an installed package, regenerating on edits
 * (tests/crunch_cmake.sh). */
static void test_cmake(void **state)
{
    (void)state;
    if (SAN[0]) {
        skip(); /* a consumer of a sanitized library needs the runtime too */
        return;
    }
    assert_int_equal(sh("'" KVRO_TEST_SOURCE_DIR "/tests/crunch_cmake.sh' '" KVRO_TEST_BINARY_DIR
                        "' '" KVRO_TEST_SOURCE_DIR "'"),
                     0);
}

/* Tables built here by hand: the layout checks at open, and the runtime
 * under this build's sanitizers. */
static const kvro_crunch_entry hand_entries[] = {
    {0, 2, KVRO_CRUNCH_DIR, 0755, 0, 5, 0, 0, 0, {0}},
    {2, 2, 0, 0600, 3, 7, 1, 0, 9, {1, 2, 3}},
};
static const unsigned char hand_data[4] = "xabc";

static void test_hand_table(void **state)
{
    (void)state;
    kvro_crunch t = {KVRO_CRUNCH_MAGIC, KVRO_CRUNCH_VERSION, "hand", 2, hand_entries, "d\0d/f",
                     hand_data, 4, NULL, NULL};
    kvro *kv;
    kvro_error err;
    assert_int_equal(kvro_open_crunch(&t, &kv, &err), KVRO_OK);
    kvro_info st;
    assert_int_equal(kvro_stat(kv, "/d//f", &st, &err), KVRO_OK);
    assert_int_equal(st.size, 3);
    assert_int_equal(st.mode, 0600);
    assert_int_equal(st.mtime, 7);
    assert_int_equal(st.mtime_nsec, 9);
    char buf[8];
    int64_t n;
    assert_int_equal(kvro_read(kv, "d/f", 1, 8, buf, &n, &err), KVRO_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(buf, "bc", 2);
    const void *p;
    assert_int_equal(kvro_map(kv, "d/f", &p, &n, &err), KVRO_OK);
    assert_ptr_equal(p, hand_data + 1);
    unsigned char sha[32];
    assert_int_equal(kvro_sha256(kv, "d/f", sha, &err), KVRO_OK);
    assert_int_equal(sha[2], 3);
    assert_int_equal(kvro_stat(kv, "d/g", &st, &err), KVRO_E_NOT_FOUND);
    assert_int_equal(kvro_stat(kv, "d/f/g", &st, &err), KVRO_E_NOT_DIR);
    assert_string_equal(kvro_source(kv), "crunch:hand");
    kvro_close(kv);

    t.version = KVRO_CRUNCH_VERSION + 98;
    assert_int_equal(kvro_open_crunch(&t, &kv, &err), KVRO_E_UNSUPPORTED);
    assert_null(kv);
    t_want_detail(&err, "layout 99");
    t.version = KVRO_CRUNCH_VERSION;
    t.magic = 0;
    assert_int_equal(kvro_open_crunch(&t, &kv, &err), KVRO_E_CORRUPT);
    assert_int_equal(kvro_open_crunch(NULL, &kv, &err), KVRO_E_INVALID);
    /* Every other backend stores no hash. */
    assert_int_equal(kvro_open(KVRO_TEST_SOURCE_DIR "/examples/site", &kv, &err), KVRO_OK);
    assert_int_equal(kvro_sha256(kv, "index.html", sha, &err), KVRO_E_UNSUPPORTED);
    kvro_close(kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_table),
        cmocka_unit_test_setup_teardown(test_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compressed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incbin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cxx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters_depfile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_link, setup, teardown),
        cmocka_unit_test(test_cmake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
