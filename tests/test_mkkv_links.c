/*
 * test_mkkv_links.c — links through the mkkv binary: `mkkv ls -l` and
 * `mkkv stat` show links as links; `mkkv tar` keeps symbolic links (also
 * absolute and escaping ones) and hard links from a directory, a tar and a
 * .tar.gz, checked by GNU tar's own listing of the result and by
 * extracting it; the output is deterministic; -L copies instead, and
 * refuses a link that leads outside.
 */
#include "support.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"

#define MKKV KVRO_TEST_MKKV

static char *dir; /* scratch: src/ is the tree, made fresh for each test */

/* Runs a shell command in DIR built from FMT; its exit status. */
static int sh(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh(char **out, char **err, const char *fmt, ...)
{
    char *in_dir = t_fmt("cd '%s' && M='%s' && ", dir, MKKV);
    va_list ap;
    va_start(ap, fmt);
    int rc = t_vsh(in_dir, out, err, fmt, ap);
    va_end(ap);
    free(in_dir);
    return rc;
}

#define OK(...)                                                                                   \
    do {                                                                                          \
        char *o_, *e_;                                                                            \
        if (sh(&o_, &e_, __VA_ARGS__) != 0)                                                       \
            fail_msg("failed: %s\nstdout: %s\nstderr: %s", #__VA_ARGS__, o_, e_);              \
        free(o_), free(e_);                                                                       \
    } while (0)

static void want_in(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("'%s' not in:\n%s", needle, text);
}

/* A Debian-like tree: merged /usr (bin -> usr/bin), an absolute link
 * (localtime), an escaping one, a dangling one, hard links. */
static int setup(void **state)
{
    (void)state;
    require_tool("tar");
    dir = t_tempdir("mkkv-links");
    OK("mkdir -p src/usr/bin src/etc src/usr/share/zoneinfo && "
       "head -c 50000 /dev/urandom > src/usr/bin/prog && printf tz > src/usr/share/zoneinfo/UTC && "
       "ln -s usr/bin src/bin && ln -s /usr/share/zoneinfo/UTC src/etc/localtime && "
       "ln -s ../../outside src/etc/esc && ln -s nowhere src/dang && "
       "ln src/usr/bin/prog src/usr/bin/prog2 && ln src/usr/bin/prog src/zz-prog3 && "
       "printf secret > outside && find src -exec touch -h -d @1600000000 {} +");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    t_rmrf(dir);
    free(dir);
    return 0;
}

/* ---------------------------------------------------------- ls and stat */

static void test_ls_and_stat(void **state)
{
    (void)state;
    OK("tar --format=gnu -cf in.tar -C src . && tar -czf in.tgz -C src .");
    const char *sources[] = {"src", "in.tar", "in.tgz"};
    for (size_t i = 0; i < 3; i++) {
        char *out;
        assert_int_equal(sh(&out, NULL, "$M ls -l %s", sources[i]), 0);
        want_in(out, " bin -> usr/bin\n");
        want_in(out, " dang -> nowhere\n");
        assert_true(strncmp(out, "lrwxrwxrwx ", 11) == 0); /* bin, the first */
        free(out);
        assert_int_equal(sh(&out, NULL, "$M ls -lR %s", sources[i]), 0);
        want_in(out, " etc/localtime -> /usr/share/zoneinfo/UTC\n");
        want_in(out, " etc/esc -> ../../outside\n");
        want_in(out, "usr/bin/prog2\n");
        assert_null(strstr(out, " bin/prog")); /* -R does not descend into bin */
        free(out);
        /* Without -l every link is listed too, the escaping ones included. */
        assert_int_equal(sh(&out, NULL, "$M ls -R %s", sources[i]), 0);
        assert_string_equal(out, "bin\ndang\netc/\netc/esc\netc/localtime\nusr/\nusr/bin/\n"
                                 "usr/bin/prog\nusr/bin/prog2\nusr/share/\nusr/share/zoneinfo/\n"
                                 "usr/share/zoneinfo/UTC\nzz-prog3\n");
        free(out);
        assert_int_equal(sh(&out, NULL, "$M stat %s etc/esc", sources[i]), 0);
        want_in(out, "kind: symbolic link\ntarget: ../../outside\nsize: 13\n");
        free(out);
        assert_int_equal(sh(&out, NULL, "$M stat %s usr/bin/prog2", sources[i]), 0);
        want_in(out, "kind: file\nsize: 50000\nlinks: 3\n");
        free(out);
        /* Followed inside: ls of a link to a directory lists it. */
        assert_int_equal(sh(&out, NULL, "$M ls %s bin", sources[i]), 0);
        assert_string_equal(out, "prog\nprog2\n");
        free(out);
        /* Never followed outside. */
        char *err;
        assert_int_equal(sh(&out, &err, "$M cat %s etc/esc", sources[i]), 1);
        assert_string_equal(out, "");
        want_in(err, "etc/esc: ");
        want_in(err, "symbolic link");
        free(out), free(err);
    }
}

/* ----------------------------------------------------------------- tar */

/* GNU tar's listing of archive A: the links as links, the hard links as
 * hard links to the first name in sorted order. */
static void want_links_kept(const char *a)
{
    char *out;
    assert_int_equal(sh(&out, NULL, "tar -tvf %s", a), 0);
    want_in(out, " bin -> usr/bin\n");
    want_in(out, " dang -> nowhere\n");
    want_in(out, " etc/localtime -> /usr/share/zoneinfo/UTC\n");
    want_in(out, " etc/esc -> ../../outside\n");
    want_in(out, " usr/bin/prog2 link to usr/bin/prog\n");
    want_in(out, " zz-prog3 link to usr/bin/prog\n");
    assert_true(strncmp(out, "lrwxrwxrwx ", 11) == 0);
    free(out);
}

static void test_tar_keeps_links(void **state)
{
    (void)state;
    OK("tar --format=gnu -cf gnu.tar -C src . && tar --format=pax -cf pax.tar -C src . && "
       "tar --format=gnu -czf gnu.tgz -C src .");
    const char *sources[] = {"src", "gnu.tar", "pax.tar", "gnu.tgz"};
    /* Sorted (--sort=name) and in each archive's own order (the default:
     * there the first name of a hard-linked file may be another). */
    const char *sorts[] = {"--sort=name", ""};
    for (size_t i = 0; i < 4; i++)
        for (size_t k = 0; k < 2; k++) {
            OK("rm -rf x out.tar && $M tar %s %s out.tar", sorts[k], sources[i]);
            if (k == 0 || i == 0)
                want_links_kept("out.tar");
            /* Extracted, it is the source again (diff -r follows the
             * internal links on both sides, and compares the others as
             * links). */
            OK("mkdir x && tar -xf out.tar -C x && diff -r --no-dereference src x && "
               "test \"$(readlink x/etc/localtime)\" = /usr/share/zoneinfo/UTC && "
               "test \"$(stat -c %%i x/usr/bin/prog)\" = \"$(stat -c %%i x/zz-prog3)\"");
        }
    /* Sorted, every source gives the same archive, and twice the same
     * bytes. */
    OK("$M tar src a.tar && $M tar src b.tar && cmp a.tar b.tar && "
       "$M tar --sort=name gnu.tar c.tar && cmp a.tar c.tar && "
       "$M tar --sort=name pax.tar d.tar && cmp a.tar d.tar && "
       "$M tar --sort=name gnu.tgz e.tar && cmp a.tar e.tar && $M tar --sort=name a.tar f.tar && "
       "cmp a.tar f.tar && $M tar src a.tgz && $M tar --sort=name a.tgz g.tgz && "
       "cmp a.tgz g.tgz");
    /* Merged /usr: one copy of the data, not one per name (50000 bytes
     * and headers, where bin/ copied or a copy per hard link would be
     * 100000 and more). */
    char *out;
    assert_int_equal(sh(&out, NULL, "stat -c %%s a.tar"), 0);
    long size = atol(out);
    assert_true(size > 50000 && size < 80000);
    free(out);
}

/* -L restores copying: links inside followed, their targets stored; a link
 * that leads outside (or nowhere) is an error naming it, and nothing is
 * written. */
static void test_dereference(void **state)
{
    (void)state;
    char *out, *err;
    const char *flags[] = {"-L", "--dereference"};
    for (size_t i = 0; i < 2; i++) {
        OK("rm -f o.tar && printf old > o.tar");
        assert_int_equal(sh(NULL, &err, "$M tar %s src o.tar", flags[i]), 1);
        want_in(err, "mkkv: src: dang: ");
        OK("test \"$(cat o.tar)\" = old");
        free(err);
    }
    OK("rm src/dang && tar -cf t.tar -C src .");
    assert_int_equal(sh(NULL, &err, "$M tar -L t.tar o.tar"), 1);
    want_in(err, "mkkv: t.tar: etc/esc: ");
    want_in(err, "symbolic link");
    free(err);
    OK("rm src/etc/esc src/etc/localtime && tar -cf t.tar -C src . && "
       "$M tar -L src l1.tar && $M tar -L t.tar l2.tar && cmp l1.tar l2.tar && "
       "mkdir y && tar -xf l1.tar -C y && test -d y/bin && ! test -L y/bin && "
       "cmp y/bin/prog src/usr/bin/prog");
    assert_int_equal(sh(&out, NULL, "tar -tvf l1.tar"), 0);
    assert_null(strstr(out, " -> "));
    assert_true(strncmp(out, "drwxr-xr-x ", 11) == 0);
    want_in(out, " bin/\n");
    want_in(out, " bin/prog\n");
    free(out);
}

/* A directory with links that leave it builds, the links kept as links
 * (nothing is followed): it used to abort. */
static void test_escaping_link_kept(void **state)
{
    (void)state;
    const char *targets[] = {"../../../etc/passwd", "/etc/passwd", "b/../x", "../.."};
    OK("mkdir -p e && printf data > e/f && ln -s . e/b");
    for (size_t i = 0; i < 4; i++) {
        OK("rm -f e/zz out.tar && ln -s '%s' e/zz && $M tar e out.tar", targets[i]);
        char *out;
        assert_int_equal(sh(&out, NULL, "tar -tvf out.tar"), 0);
        char *want = t_fmt(" zz -> %s\n", targets[i]);
        want_in(out, want);
        want_in(out, " b -> .\n");
        free(want), free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ls_and_stat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tar_keeps_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dereference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping_link_kept, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
