/*
 * test_tar_lenient.c — the tar backend on what real writers put in headers
 * and every other reader copes with (issue 7), each case an archive written
 * block by block (tb_* in tar_test.c): names whose 100-byte field ends in
 * '/' but whose real name does not, header-only types with a size, numeric
 * fields as GNU tar reads them, several pax 'x' headers, damaged pax records
 * read past with a warning, and global pax names.
 */
#include "tar_test.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A name of N bytes with '/' as its 100th byte (the last of the header's
 * name field), so the field alone looks like an old-style directory. */
static char *slash_at_100(size_t n)
{
    char *s = rep('a', n);
    s[99] = '/';
    return s;
}

static void want_kind(kvro *kv, const char *key, kvro_kind kind)
{
    kvro_info st;
    kvro_error e;
    kvro_status s = kvro_stat(kv, key, &st, &e);
    if (s != KVRO_OK)
        kvro_error_print(stderr, key, &e);
    assert_int_equal(s, KVRO_OK);
    assert_int_equal(st.kind, kind);
}

static void test_long_name_slash_at_100(void **state)
{
    (void)state;
    char *name = slash_at_100(150), *pname = slash_at_100(160);
    pname[0] = 'p';
    tarbuf t = {0};
    /* GNU writes the long name's first 100 bytes in the header too. */
    tb_ext(&t, 'L', name, strlen(name) + 1);
    tb_file(&t, name, "long L file");
    tb_pax(&t, 'x', "path", pname);
    tb_header(&t, pname, '\0', 13, NULL); /* type '\0': the v7 regular file */
    tb_add(&t, "long pax file", 13);
    tb_pad(&t);
    /* The rule still holds for the final name: a long name ending in '/'. */
    char *dirname = t_fmt("%s/", name);
    dirname[3] = 'd';
    tb_ext(&t, 'L', dirname, strlen(dirname) + 1);
    tb_header(&t, dirname, '0', 0, NULL);
    tb_file(&t, "next", "n");
    tb_end(&t);
    char *p = tb_save(&t, "slash100.tar");
    kvro *kv = open_ok(p, true);
    want_kind(kv, name, KVRO_KIND_FILE);
    want_value(kv, name, "long L file");
    want_kind(kv, pname, KVRO_KIND_FILE);
    want_value(kv, pname, "long pax file");
    want_kind(kv, dirname, KVRO_KIND_DIR);
    want_value(kv, "next", "n");
    kvro_close(kv);
    free(p);
    free(name);
    free(pname);
    free(dirname);
}

/* TYPE with a size field of two blocks, followed by exactly two blocks
 * that are a member: skipping the "data" would hide it. */
static void header_only(char type, const char *name, const char *link)
{
    tarbuf t = {0};
    tb_file(&t, "target", "the target");
    tb_header(&t, name, type, 1024, link);
    tb_file(&t, "inner", "INNER");
    tb_file(&t, "next", "ok");
    tb_end(&t);
    char *file = t_fmt("header-only-%d.tar", type);
    char *p = tb_save(&t, file);
    kvro *kv = open_ok(p, true);
    want_value(kv, "inner", "INNER");
    want_value(kv, "next", "ok");
    kvro_close(kv);
    free(p);
    free(file);
}

static void test_header_only_types_with_a_size(void **state)
{
    (void)state;
    header_only('1', "hard", "target");
    header_only('2', "sym", "target");
    header_only('3', "chr", NULL);
    header_only('4', "blk", NULL);
    header_only('5', "dir/", NULL);
    header_only('6', "fifo", NULL);
    header_only('0', "olddir/", NULL);
    header_only('\0', "olddir/", NULL);

    /* What they are is unchanged: links serve their target, all of it. */
    tarbuf t = {0};
    tb_file(&t, "target", "the target");
    tb_header(&t, "hard", '1', 10, "target");
    tb_header(&t, "sym", '2', 6, "target");
    tb_header(&t, "olddir/", '0', 512, NULL);
    tb_file(&t, "olddir/in", "in");
    /* A GNU dumpdir ('D') does carry data: its listing. */
    tb_header(&t, "dump/", 'D', 5, NULL);
    tb_add(&t, "Yin\0\0", 5);
    tb_pad(&t);
    tb_file(&t, "after", "after");
    tb_end(&t);
    char *p = tb_save(&t, "header-only-kinds.tar");
    kvro *kv = open_ok(p, true);
    want_value(kv, "hard", "the target");
    want_value(kv, "sym", "the target");
    want_kind(kv, "olddir", KVRO_KIND_DIR);
    want_value(kv, "olddir/in", "in");
    want_kind(kv, "dump", KVRO_KIND_DIR);
    want_value(kv, "after", "after");
    want_names(kv, "", "after dump hard olddir sym target");
    kvro_close(kv);
    free(p);
}

/* An archive of "f" (DATA) then "next", F's field at OFF (of LEN bytes)
 * replaced by FIELD. */
static char *with_field(const char *file, size_t off, const char *field, size_t len,
                        const char *data)
{
    tarbuf t = {0};
    unsigned char h[512];
    tb_raw_header(h, "f", '0', (int64_t)strlen(data), NULL);
    memcpy(h + off, field, len);
    tb_fix_sum(h);
    tb_add(&t, h, 512);
    tb_add(&t, data, strlen(data));
    tb_pad(&t);
    tb_file(&t, "next", "ok");
    tb_end(&t);
    return tb_save(&t, file);
}

enum { F_MODE = 100, F_SIZE = 124, F_MTIME = 136, F_SUM = 148 };

static void test_numeric_fields(void **state)
{
    (void)state;
    /* Accepted: what GNU tar 1.34 reads as 5 (libarchive and Python read
     * the leading-NUL forms as 0, and then fail on the data as a header). */
    static const char *const five[] = {
        "00000000005\0",
        "          5\0",
        ("\0"
         "0000000005\0"),
        "\0    00005\0\0",
        "00005\0junk\0\0",
        "00005 junk\0",
        "00000000005 ",
        "000000000005",
        "00000000005\t",
        "\t0000000005\0",
    };
    for (size_t i = 0; i < sizeof five / sizeof five[0]; i++) {
        char *file = t_fmt("size%zu.tar", i);
        char *p = with_field(file, F_SIZE, five[i], 12, "hello");
        kvro *kv = open_ok(p, true);
        want_value(kv, "f", "hello");
        want_value(kv, "next", "ok");
        kvro_close(kv);
        free(p);
        free(file);
    }
    /* A NUL where the digits would start ends the number: 0, as all read it
     * (libarchive's test_read_format_tar_timestamp_overflow.tar). */
    static const char *const zero[] = {"\0\0\0\0\0\0\0"
                                       "0016\0",
                                       "   \0"
                                       "0000005\0\0",
                                       "\0\0zz\0\0\0\0\0\0\0\0", "            "};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++) {
        char *file = t_fmt("size0-%zu.tar", i);
        char *p = with_field(file, F_SIZE, zero[i], 12, "");
        kvro *kv = open_ok(p, true);
        want_value(kv, "f", "");
        want_value(kv, "next", "ok");
        kvro_close(kv);
        free(p);
        free(file);
    }
    /* AIX: "\0" then ten digits and a space; junk after the terminator. */
    static const struct {
        const char *field;
        int64_t mtime;
    } mtimes[] = {{"\0"
                   "1722000726 ",
                   01722000726},
                  {"1234567012\0z", 01234567012},
                  {"12345670\0\0zz", 012345670},
                  {" 12345670 zz", 012345670}};
    for (size_t i = 0; i < sizeof mtimes / sizeof mtimes[0]; i++) {
        char *file = t_fmt("mtime%zu.tar", i);
        char *p = with_field(file, F_MTIME, mtimes[i].field, 12, "m");
        kvro *kv = open_ok(p, true);
        kvro_info st;
        assert_int_equal(kvro_stat(kv, "f", &st, NULL), KVRO_OK);
        assert_int_equal(st.mtime, mtimes[i].mtime);
        want_value(kv, "next", "ok");
        kvro_close(kv);
        free(p);
        free(file);
    }
    static const char *const modes[] = {"644\0junk",
                                        ("\0"
                                         "000644 "),
                                        " 0000644"};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char *file = t_fmt("mode%zu.tar", i);
        char *p = with_field(file, F_MODE, modes[i], 8, "m");
        kvro *kv = open_ok(p, true);
        kvro_info st;
        assert_int_equal(kvro_stat(kv, "f", &st, NULL), KVRO_OK);
        assert_int_equal(st.mode, 0644);
        kvro_close(kv);
        free(p);
        free(file);
    }

    /* Rejected by GNU tar and libarchive alike: a byte that is neither a
     * digit nor a terminator where one belongs. */
    static const struct {
        size_t off, len;
        const char *field, *needle;
    } bad[] = {
        {F_SIZE, 12, "00000000008\0", "bad size field"},
        {F_SIZE, 12, "0000000005x\0", "bad size field"},
        {F_SIZE, 12, "x0000000005\0", "bad size field"},
        {F_SIZE, 12, "\0x000000005\0", "bad size field"},
        {F_SIZE, 12, "+0000000005\0", "bad size field"},
        {F_MTIME, 12, "1234567890x\0", "bad mtime field"},
        {F_MODE, 8, "0000649\0", "bad mode field"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *file = t_fmt("bad%zu.tar", i);
        char *p = with_field(file, bad[i].off, bad[i].field, bad[i].len, "hello");
        open_fails(p, KVRO_E_CORRUPT, bad[i].needle);
        free(p);
        free(file);
    }
}

/* The checksum field read the same way: with and without the usual NUL and
 * space, leading blanks or a NUL, junk after the terminator. */
static void test_checksum_forms(void **state)
{
    (void)state;
    static const struct {
        const char *pre;
        size_t pre_len;
        int width;
        const char *post;
        size_t post_len;
    } forms[] = {
        {"", 0, 6, "\0 ", 2}, {"", 0, 7, "\0", 1},  {"", 0, 6, "  ", 2},   {" ", 1, 6, "\0", 1},
        {"\0", 1, 6, " ", 1}, {"", 0, 6, "\0z", 2}, {"  ", 2, 5, "\0", 1},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        unsigned char h[512];
        tb_raw_header(h, "f", '0', 1, NULL);
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (int k = 0; k < 512; k++)
            sum += h[k];
        char field[32];
        memcpy(field, forms[i].pre, forms[i].pre_len);
        int n = snprintf(field + forms[i].pre_len, 16, "%0*o", forms[i].width, sum);
        assert_int_equal(n, forms[i].width);
        memcpy(field + forms[i].pre_len + (size_t)n, forms[i].post, forms[i].post_len);
        assert_int_equal(forms[i].pre_len + (size_t)n + forms[i].post_len, 8);
        memcpy(h + 148, field, 8);
        tarbuf t = {0};
        tb_add(&t, h, 512);
        tb_add(&t, "s", 1);
        tb_pad(&t);
        tb_file(&t, "next", "ok");
        tb_end(&t);
        char *file = t_fmt("sum%zu.tar", i);
        char *p = tb_save(&t, file);
        kvro *kv = open_ok(p, false); /* the bid checks the checksum too */
        want_value(kv, "f", "s");
        want_value(kv, "next", "ok");
        kvro_close(kv);
        free(p);
        free(file);
    }
    /* Junk before the terminator is no checksum. */
    unsigned char h[512];
    tb_raw_header(h, "f", '0', 1, NULL);
    h[154] = 'x';
    tarbuf t = {0};
    tb_add(&t, h, 512);
    tb_add(&t, "s", 1);
    tb_pad(&t);
    tb_end(&t);
    char *p = tb_save(&t, "badsum.tar");
    open_fails(p, KVRO_E_CORRUPT, "bad header checksum at offset 0");
    free(p);
}

static void test_several_pax_x_headers(void **state)
{
    (void)state;
    tarbuf t = {0};
    /* Go's pax-multi-hdrs.tar in small: only the last 'x' applies. */
    char *r1 = tb_pax_rec("path", "first/p"), *r2 = tb_pax_rec("mtime", "1000");
    char *recs = t_fmt("%s%s", r1, r2);
    tb_ext(&t, 'x', recs, strlen(recs));
    tb_pax(&t, 'x', "path", "second/p");
    tb_pax(&t, 'x', "uid", "7");
    tb_file(&t, "a", "AAA");
    tb_pax(&t, 'x', "path", "b-first");
    tb_pax(&t, 'x', "path", "b-last");
    tb_file(&t, "b", "BBB");
    tb_end(&t);
    char *p = tb_save(&t, "multi-x.tar");
    kvro *kv = open_ok(p, true);
    want_value(kv, "a", "AAA");
    want_value(kv, "b-last", "BBB");
    want_names(kv, "", "a b-last"); /* no "first" or "second" invented */
    kvro_info st;
    assert_int_equal(kvro_stat(kv, "a", &st, NULL), KVRO_OK);
    assert_int_equal(st.mtime, 1700000000); /* the header's: "1000" was in the first */
    kvro_close(kv);
    free(p);
    free(r1);
    free(r2);
    free(recs);
}

static void remember(void *arg, const char *message)
{
    char *said = arg;
    size_t n = strlen(said);
    snprintf(said + n, 1024 - n, "%s\n", message);
}

/* Opens P and expects success with one warning holding NEEDLE. */
static kvro *open_warns(const char *p, const char *needle)
{
    char said[1024] = "";
    kvro_options o = {.backend = "tar", .warning = remember, .warning_arg = said};
    kvro *kv = NULL;
    kvro_error e;
    kvro_status s = kvro_open_opts(p, &o, &kv, &e);
    if (s != KVRO_OK)
        kvro_error_print(stderr, p, &e);
    assert_int_equal(s, KVRO_OK);
    if (!strstr(said, needle))
        fprintf(stderr, "warnings '%s', want '%s'\n", said, needle);
    assert_non_null(strstr(said, needle));
    assert_non_null(strchr(said, '\n'));
    assert_null(strchr(strchr(said, '\n') + 1, '\n')); /* one line */
    kvro_stats st = stats_of(kv);
    assert_int_equal(st.skipped, 0); /* no member was lost */
    return kv;
}

static void test_damaged_pax_records(void **state)
{
    (void)state;
    tarbuf t = {0};
    /* A timestamp with trailing junk (Go's pax-bad-mtime-file.tar,
     * libarchive's test_read_format_tar_pax_timestamps.tar): the header's
     * mtime stands. */
    tb_pax(&t, 'x', "mtime", "1748089464.951928467a");
    tb_file(&t, "m", "mtime");
    tb_end(&t);
    char *p = tb_save(&t, "pax-bad-mtime.tar");
    kvro *kv = open_warns(p, "1 damaged header record read past; the first: bad pax mtime "
                             "value '1748089464.951928467a' in the extended header at offset 0");
    want_value(kv, "m", "mtime");
    kvro_info st;
    assert_int_equal(kvro_stat(kv, "m", &st, NULL), KVRO_OK);
    assert_int_equal(st.mtime, 1700000000);
    kvro_close(kv);
    free(p);

    /* The last record without its newline (libarchive's
     * test_read_pax_empty_val_no_nl.tar), and a record that is not
     * KEY=VALUE: what came before stands, what follows is dropped. */
    char *path = tb_pax_rec("path", "kept"), *mtime = tb_pax_rec("mtime", "5");
    char *recs = t_fmt("%s12 nokeyval\n%s", path, mtime);
    tb_ext(&t, 'x', recs, strlen(recs));
    tb_file(&t, "k", "kept");
    tb_ext(&t, 'x', "4 x=", 4);
    tb_file(&t, "nl", "no newline");
    tb_pax(&t, 'x', "gid", "12z");
    tb_file(&t, "g", "gid");
    tb_end(&t);
    p = tb_save(&t, "pax-damaged.tar");
    kv = open_warns(p, "3 damaged header records read past; the first: bad pax record at offset "
                       "525: not KEY=VALUE; the rest of that extended header is ignored");
    want_value(kv, "kept", "kept");
    assert_int_equal(kvro_stat(kv, "kept", &st, NULL), KVRO_OK);
    assert_int_equal(st.mtime, 1700000000);
    want_value(kv, "nl", "no newline");
    want_value(kv, "g", "gid");
    want_names(kv, "", "g kept nl");
    kvro_close(kv);
    free(p);
    free(recs);

    /* Where the damage may hide a name, link target or size, nothing is
     * guessed: KVRO_E_CORRUPT, as before. */
    const char *fatal[][2] = {
        {"33 path=PAX1/PAX1/long-path-name\0", "offset 512: the last, without its newline"},
        {"12 nokeyval\n", "not KEY=VALUE"}, /* then a path record */
        {"x path=p\n", "no length"},
        {"99 size=3\n", "length 99 is wrong"},
        {"26 GNU.sparse.map 0,1,2,3\n", "not KEY=VALUE"},
    };
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        char *data = i == 1 ? t_fmt("%s%s", fatal[i][0], path) : t_fmt("%s", fatal[i][0]);
        tb_ext(&t, 'x', data, i == 0 ? 33 : strlen(data));
        tb_file(&t, "f", "f");
        tb_end(&t);
        char *file = t_fmt("pax-fatal%zu.tar", i);
        p = tb_save(&t, file);
        open_fails(p, KVRO_E_CORRUPT, fatal[i][1]);
        free(p);
        free(file);
        free(data);
    }
    free(path);
    free(mtime);
}

/* README's rule: a 'g' header's path and linkpath are ignored (bsdtar, Go),
 * its mtime applies to every member that follows. */
static void test_global_path_ignored(void **state)
{
    (void)state;
    tarbuf t = {0};
    char *r1 = tb_pax_rec("path", "global/name"), *r2 = tb_pax_rec("mtime", "1234");
    char *recs = t_fmt("%s%s", r1, r2);
    tb_ext(&t, 'g', recs, strlen(recs));
    tb_file(&t, "a", "A");
    tb_pax(&t, 'g', "linkpath", "a");
    tb_header(&t, "l", '2', 0, "b");
    tb_pax(&t, 'g', "path", "");
    tb_file(&t, "b", "B");
    tb_end(&t);
    char *p = tb_save(&t, "global.tar");
    kvro *kv = open_ok(p, true);
    want_value(kv, "a", "A");
    want_value(kv, "b", "B");
    want_value(kv, "l", "B");
    want_names(kv, "", "a b l");
    kvro_info st;
    assert_int_equal(kvro_stat(kv, "b", &st, NULL), KVRO_OK);
    assert_int_equal(st.mtime, 1234);
    kvro_close(kv);
    free(p);
    free(r1);
    free(r2);
    free(recs);
}

/* What every reader refuses stays refused, with the status that says
 * why: an archive cut inside an extended header (CPython's recursion.tar:
 * a 'g' header, then the end), a NUL in a pax key (Go, GNU tar, bsdtar),
 * and an extended header larger than kvro holds that is not even there
 * (damage, not a limit). */
static void test_what_readers_refuse(void **state)
{
    (void)state;
    tarbuf t = {0};
    tb_pax(&t, 'g', "comment", "hello");
    char *p = tb_save_n(&t, "cut-in-pax.tar", t.n - 100); /* into the padding */
    open_fails(p, KVRO_E_CORRUPT, "ends inside the extended header");
    free(p);
    free(t.p);

    memset(&t, 0, sizeof t);
    static const char rec[] = "15 GNU\0key=val\n";
    tb_ext(&t, 'x', rec, sizeof rec - 1);
    tb_file(&t, "f", "data");
    tb_end(&t);
    p = tb_save(&t, "nul-in-key.tar");
    open_fails(p, KVRO_E_CORRUPT, "not KEY=VALUE");
    free(p);

    tb_header(&t, "././@PaxHeader", 'x', (int64_t)1 << 32, NULL);
    tb_add(&t, "20 comment=abcdefg\n", 19);
    tb_pad(&t);
    p = tb_save(&t, "huge-pax.tar");
    open_fails(p, KVRO_E_CORRUPT, "runs past the end");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_name_slash_at_100),
        cmocka_unit_test(test_header_only_types_with_a_size),
        cmocka_unit_test(test_numeric_fields),
        cmocka_unit_test(test_checksum_forms),
        cmocka_unit_test(test_several_pax_x_headers),
        cmocka_unit_test(test_damaged_pax_records),
        cmocka_unit_test(test_global_path_ignored),
        cmocka_unit_test(test_what_readers_refuse),
    };
    int rc = tb_setup(NULL);
    rc |= cmocka_run_group_tests(tests, NULL, NULL);
    tb_teardown(NULL);
    return rc;
}
