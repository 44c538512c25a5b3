/*
 * test_mkkv.c — drives the real mkkv binary: output, exit codes (0 ok,
 * 1 failure, 2 usage) and the "mkkv: SOURCE: KEY: reason" messages.
 */
#include "support.h"

#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tar_test.h"

typedef struct fixture {
    char *dir;  /* scratch */
    char *tree; /* dir/tree: the reference tree */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = t_tempdir("mkkv");
    f->tree = t_join(f->dir, "tree");
    char *p;
    t_write(p = t_join(f->tree, "hello.txt"), "hello, world\n", 13), free(p);
    t_write_pattern(p = t_join(f->tree, "a/b/data.bin"), 7, 100000), free(p);
    t_write(p = t_join(f->tree, "a/empty"), "", 0), free(p);
    t_mkdirs(p = t_join(f->tree, "z/empty-dir")), free(p);
    t_write(p = t_join(f->tree, "B"), "upper", 5), free(p);
    t_write(p = t_join(f->tree, "-dash-key"), "dash\n", 5), free(p);
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

static void test_help_and_usage(void **state)
{
    (void)state;
    char *out, *err;
    assert_int_equal(t_mkkv(&out, &err, "--help"), 0);
    for (const char *c = "ls\0cat\0stat\0verify\0"; *c; c += strlen(c) + 1)
        assert_non_null(strstr(out, c));
    assert_non_null(strstr(out, "dir")); /* the registered backends are listed */
    free(out), free(err);

    assert_int_equal(t_mkkv(&out, &err, "--version"), 0);
    assert_true(strncmp(out, "mkkv 0.", 7) == 0);
    free(out), free(err);

    assert_int_equal(t_mkkv(&out, &err, "%s", ""), 2);
    free(out), free(err);
    assert_int_equal(t_mkkv(&out, &err, "frobnicate"), 2);
    assert_non_null(strstr(err, "unknown command 'frobnicate'"));
    free(out), free(err);

    const char *cmds[] = {"ls", "cat", "stat", "verify"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(t_mkkv(&out, &err, "%s --help", cmds[i]), 0);
        assert_true(strncmp(out, "Usage: mkkv ", 12) == 0);
        free(out), free(err);
        assert_int_equal(t_mkkv(&out, &err, "%s --no-such-option x y", cmds[i]), 2);
        assert_non_null(strstr(err, "unknown option"));
        free(out), free(err);
        assert_int_equal(t_mkkv(&out, &err, "%s", cmds[i]), 2); /* missing operands */
        free(out), free(err);
    }
}

static void test_ls(void **state)
{
    fixture *f = *state;
    char *out, *err;
    assert_int_equal(t_mkkv(&out, &err, "ls '%s'", f->tree), 0);
    assert_string_equal(out, "-dash-key\nB\na/\nhello.txt\nz/\n");
    free(out), free(err);

    assert_int_equal(t_mkkv(&out, &err, "ls -R '%s'", f->tree), 0);
    assert_string_equal(out, "-dash-key\nB\na/\na/b/\na/b/data.bin\na/empty\nhello.txt\nz/\n"
                             "z/empty-dir/\n");
    free(out), free(err);

    assert_int_equal(t_mkkv(&out, &err, "ls -R '%s' /a/", f->tree), 0);
    assert_string_equal(out, "b/\nb/data.bin\nempty\n");
    free(out), free(err);

    /* -l: mode, size, date, name. */
    assert_int_equal(t_mkkv(&out, &err, "ls -l '%s' a/b", f->tree), 0);
    assert_non_null(strstr(out, "-rw-"));
    assert_non_null(strstr(out, " 100000 "));
    assert_non_null(strstr(out, " data.bin\n"));
    free(out), free(err);

    /* A file as PATH shows the file. */
    assert_int_equal(t_mkkv(&out, &err, "ls '%s' hello.txt", f->tree), 0);
    assert_string_equal(out, "hello.txt\n");
    free(out), free(err);

    assert_int_equal(t_mkkv(&out, &err, "ls '%s' nope", f->tree), 1);
    char *want = t_fmt("mkkv: %s: nope: ", f->tree);
    assert_true(strncmp(err, want, strlen(want)) == 0);
    free(want), free(out), free(err);
}

/* An entry whose stat fails is reported and the listing goes on (exit 1
 * at the end). Keys through the symbolic link "lll..." (400 bytes) to "d"
 * are 399 bytes longer than the members': the deepest directory's passes
 * KVRO_KEY_MAX, so its stat fails whatever the tar backend learns to read.
 * -R does not descend into links, so that is seen by listing the link. */
static void test_ls_keeps_going(void **state)
{
    fixture *f = *state;
    tarbuf t = {0};
    tb_file(&t, "a.txt", "A");
    char *deep = t_fmt("d");
    for (char c = 'b'; c < 'b' + 15; c++) {
        char *part = rep(c, 250), *next = t_fmt("%s/%s", deep, part);
        free(part), free(deep);
        deep = next;
    }
    char *file = t_fmt("%s/f", deep);
    tb_ext(&t, 'L', file, strlen(file) + 1);
    tb_file(&t, file, "deep");
    char *link = rep('l', 400);
    tb_ext(&t, 'L', link, strlen(link) + 1);
    tb_header(&t, link, '2', 0, "d");
    tb_file(&t, "z.txt", "Z");
    tb_end(&t);
    char *tar = t_join(f->dir, "deep.tar");
    t_write(tar, t.p, t.n);
    free(t.p);

    char *out, *err;
    /* -R does not descend into a link: listed as itself, nothing fails. */
    assert_int_equal(t_mkkv(&out, &err, "ls -R '%s'", tar), 0);
    char *want = t_fmt("%s\n%s\nz.txt\n", file, link);
    assert_non_null(strstr(out, want));
    assert_string_equal(err, "");
    free(want), free(out), free(err);
    /* Listed through the link, the deepest keys are too long. */
    for (int lng = 0; lng < 2; lng++) {
        assert_int_equal(t_mkkv(&out, &err, "ls %s -R '%s' %s/", lng ? "-l" : "", tar, link), 1);
        want = t_fmt("%s\n", file + 2); /* the entries before it, relative to d */
        assert_non_null(strstr(out, "bbbbbbbbbb"));
        assert_null(strstr(out, want));
        free(want);
        want = t_fmt("mkkv: %s: %s/", tar, link);
        assert_true(strncmp(err, want, strlen(want)) == 0);
        assert_non_null(strstr(err, "longer than"));
        assert_non_null(strchr(err, '\n'));
        assert_null(strchr(strchr(err, '\n') + 1, '\n')); /* that entry alone */
        free(want), free(out), free(err);
    }
    free(tar), free(link), free(file), free(deep);
}

static void test_cat(void **state)
{
    fixture *f = *state;
    char *out, *err;
    assert_int_equal(t_mkkv(&out, &err, "cat '%s' hello.txt", f->tree), 0);
    assert_string_equal(out, "hello, world\n");
    free(out), free(err);

    assert_int_equal(t_mkkv(&out, &err, "cat --offset 7 --length 5 '%s' /hello.txt", f->tree), 0);
    assert_string_equal(out, "world");
    free(out), free(err);

    /* Past the end: nothing, and success. */
    assert_int_equal(t_mkkv(&out, &err, "cat --offset 1G '%s' hello.txt", f->tree), 0);
    assert_string_equal(out, "");
    free(out), free(err);

    /* A large value comes out whole and exact. */
    char *dst = t_join(f->dir, "copy.bin");
    assert_int_equal(t_mkkv(NULL, NULL, "cat '%s' a/b/data.bin > '%s'", f->tree, dst), 0);
    size_t n;
    char *got = t_slurp(dst, &n);
    assert_int_equal(n, 100000);
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)got[i] != t_pattern(7, i))
            fail_msg("byte %zu differs", i);
    free(got), free(dst);

    assert_int_equal(t_mkkv(&out, &err, "cat '%s' a", f->tree), 1);
    char *want = t_fmt("mkkv: %s: a: is a directory", f->tree);
    assert_true(strncmp(err, want, strlen(want)) == 0);
    free(want), free(out), free(err);

    assert_int_equal(t_mkkv(&out, &err, "cat '%s' ../etc/passwd", f->tree), 1);
    assert_non_null(strstr(err, "../etc/passwd: '..' is not allowed in a key"));
    free(out), free(err);

    assert_int_equal(t_mkkv(&out, &err, "cat --offset -3 '%s' hello.txt", f->tree), 2);
    assert_non_null(strstr(err, "'-3' is not a byte count"));
    free(out), free(err);
    assert_int_equal(t_mkkv(&out, &err, "cat --length 12X '%s' hello.txt", f->tree), 2);
    free(out), free(err);

    /* A missing source names the source. */
    assert_int_equal(t_mkkv(&out, &err, "cat '%s/none' x", f->dir), 1);
    want = t_fmt("mkkv: %s/none: ", f->dir);
    assert_true(strncmp(err, want, strlen(want)) == 0);
    free(want), free(out), free(err);
}

static void test_stat(void **state)
{
    fixture *f = *state;
    char *out, *err;
    assert_int_equal(t_mkkv(&out, &err, "stat '%s' a/b/data.bin", f->tree), 0);
    assert_non_null(strstr(out, "kind: file\n"));
    assert_non_null(strstr(out, "size: 100000\n"));
    assert_non_null(strstr(out, "mode: 0644\n"));
    assert_non_null(strstr(out, "backend: dir\n"));
    free(out), free(err);
    assert_int_equal(t_mkkv(&out, &err, "stat '%s' /", f->tree), 0);
    assert_non_null(strstr(out, "kind: directory\n"));
    free(out), free(err);
    assert_int_equal(t_mkkv(&out, &err, "stat -t nosuch '%s' /", f->tree), 1);
    assert_non_null(strstr(err, "unknown backend 'nosuch'"));
    free(out), free(err);
}

/* Copies the tree with cp -a, so verify has a twin to compare. */
static char *twin(fixture *f, const char *name)
{
    char *copy = t_join(f->dir, name);
    char *cmd = t_fmt("rm -rf '%s' && cp -a '%s' '%s'", copy, f->tree, copy);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    return copy;
}

static void test_verify(void **state)
{
    fixture *f = *state;
    char *out, *err;
    char *copy = twin(f, "same");
    assert_int_equal(t_mkkv(&out, &err, "verify '%s' '%s'", f->tree, copy), 0);
    assert_non_null(strstr(out, "matches"));
    assert_non_null(strstr(out, ": 5 files, 5 directories, 100023 bytes\n"));
    free(out), free(err);

    /* One byte changed deep inside the big file. */
    char *p = t_join(copy, "a/b/data.bin");
    FILE *fp = fopen(p, "r+b");
    assert_non_null(fp);
    fseek(fp, 77777, SEEK_SET);
    fputc(t_pattern(7, 77777) ^ 1, fp);
    fclose(fp);
    assert_int_equal(t_mkkv(&out, &err, "verify '%s' '%s'", f->tree, copy), 1);
    assert_string_equal(out, "content differs: a/b/data.bin: first difference at byte 77777\n");
    assert_non_null(strstr(err, "1 difference"));
    free(out), free(err), free(p), free(copy);

    /* A missing file, an extra file, a size and a kind difference. */
    copy = twin(f, "other");
    p = t_join(copy, "hello.txt");
    assert_int_equal(unlink(p), 0);
    free(p);
    t_write(p = t_join(copy, "extra.txt"), "x", 1), free(p);
    t_write(p = t_join(copy, "B"), "uppercase", 9), free(p);
    p = t_join(copy, "a/empty");
    unlink(p);
    t_mkdirs(p), free(p);
    assert_int_equal(t_mkkv(&out, &err, "verify -q '%s' '%s'", f->tree, copy), 1);
    /* The names first, then the files' bytes (in the order SOURCE
     * stores them). */
    char *want = t_fmt("kind differs: a/empty: a file in %s, a directory in %s\n"
                       "only in %s: extra.txt\n"
                       "only in %s: hello.txt\n"
                       "size differs: B: 5 bytes in %s, 9 in %s\n",
                       f->tree, copy, copy, f->tree, f->tree, copy);
    assert_string_equal(out, want);
    assert_non_null(strstr(err, "4 differences"));
    free(want), free(out), free(err), free(copy);

    /* An empty directory counts too. */
    copy = twin(f, "nodir");
    p = t_join(copy, "z/empty-dir");
    assert_int_equal(rmdir(p), 0);
    free(p);
    assert_int_equal(t_mkkv(&out, &err, "verify '%s' '%s'", f->tree, copy), 1);
    want = t_fmt("only in %s: z/empty-dir\n", f->tree);
    assert_string_equal(out, want);
    free(want), free(out), free(err), free(copy);

    /* DIR must be a directory. */
    p = t_join(f->tree, "hello.txt");
    assert_int_equal(t_mkkv(&out, &err, "verify '%s' '%s'", f->tree, p), 1);
    assert_non_null(strstr(err, "not a directory"));
    free(out), free(err), free(p);
}

/* Options and operands: "--" ends the options, so an operand may start
 * with '-'; an unknown option is named as it was given, never an operand. */
static void test_options(void **state)
{
    fixture *f = *state;
    char *out, *err;
    assert_int_equal(t_mkkv(&out, &err, "cat '%s' -- -dash-key", f->tree), 0);
    assert_string_equal(out, "dash\n");
    free(out), free(err);
    assert_int_equal(t_mkkv(&out, &err, "cat -- '%s' -dash-key", f->tree), 0);
    assert_string_equal(out, "dash\n");
    free(out), free(err);
    /* Options after the operands still count. */
    assert_int_equal(t_mkkv(&out, &err, "cat '%s' hello.txt --offset 7 --length 5", f->tree), 0);
    assert_string_equal(out, "world");
    free(out), free(err);
    assert_int_equal(t_mkkv(&out, &err, "stat '%s' -- -dash-key", f->tree), 0);
    assert_non_null(strstr(out, "key: -dash-key\nkind: file\nsize: 5\n"));
    free(out), free(err);
    assert_int_equal(t_mkkv(&out, &err, "ls '%s' -- -dash-key", f->tree), 0);
    assert_string_equal(out, "-dash-key\n");
    free(out), free(err);
    /* verify and tar take '--' too (operands named with a leading '-'). */
    char *cmd = t_fmt("cd '%s' && rm -rf ./-twin && cp -a tree ./-twin", f->dir);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    assert_int_equal(t_mkkv(&out, &err, "verify -q -- '%s' '%s/-twin'", f->tree, f->dir), 0);
    free(out), free(err);
    cmd = t_fmt("cd '%s' && '%s' verify -q tree -- -twin && '%s' tar -q -- -twin -twin.tar && "
                "'%s' verify -q -- -twin.tar tree",
                f->dir, KVRO_TEST_MKKV, KVRO_TEST_MKKV, KVRO_TEST_MKKV);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    free(out), free(err), free(cmd);

    /* Without '--': the option it did not know, in the word it was in. */
    const char *cmds[] = {"ls", "cat", "stat", "verify", "tar"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(t_mkkv(&out, &err, "%s '%s' -yes-key", cmds[i], f->tree), 2);
        char *want = t_fmt("mkkv: %s: unknown option '-y' in '-yes-key' (an operand that starts "
                           "with '-' goes after '--')\n",
                           cmds[i]);
        assert_true(strncmp(err, want, strlen(want)) == 0);
        assert_null(strstr(err, f->tree)); /* never the operand before it */
        free(want), free(out), free(err);
        assert_int_equal(t_mkkv(&out, &err, "%s '%s' x -y", cmds[i], f->tree), 2);
        assert_non_null(strstr(err, "unknown option '-y'\n"));
        free(out), free(err);
        assert_int_equal(t_mkkv(&out, &err, "%s '%s' x -qy", cmds[i], f->tree), 2);
        assert_non_null(strstr(err, "unknown option '-y' in '-qy'"));
        free(out), free(err);
        assert_int_equal(t_mkkv(&out, &err, "%s '%s' x --frobnicate=3", cmds[i], f->tree), 2);
        assert_non_null(strstr(err, "unknown option '--frobnicate'\n"));
        free(out), free(err);
        assert_int_equal(t_mkkv(&out, &err, "%s '%s' x --quiet=3", cmds[i], f->tree), 2);
        assert_non_null(strstr(err, "option '--quiet' takes no value"));
        free(out), free(err);
        assert_int_equal(t_mkkv(&out, &err, "%s '%s' x --i 0", cmds[i], f->tree), 2);
        assert_non_null(strstr(err, "ambiguous option '--i' (--index, --image-offset, "
                                    "--image-length)"));
        free(out), free(err);
        assert_int_equal(t_mkkv(&out, &err, "%s '%s' x -t", cmds[i], f->tree), 2);
        assert_non_null(strstr(err, "option '-t' needs a value"));
        free(out), free(err);
        assert_int_equal(t_mkkv(&out, &err, "%s '%s' x --index", cmds[i], f->tree), 2);
        assert_non_null(strstr(err, "option '--index' needs a value"));
        free(out), free(err);
        /* The help says how. */
        assert_int_equal(t_mkkv(&out, &err, "%s --help", cmds[i]), 0);
        assert_non_null(strstr(out, "'--' ends them"));
        assert_non_null(strstr(out, "--image-offset N"));
        assert_non_null(strstr(out, "SOURCE '-'"));
        assert_non_null(strstr(out, "$KVRO_STDIN_MEMORY_MAX"));
        free(out), free(err);
    }
    assert_int_equal(t_mkkv(&out, &err, "cat --help"), 0);
    assert_non_null(strstr(out, "start N bytes into the value"));
    assert_non_null(strstr(out, "the image starts N bytes into SOURCE"));
    free(out), free(err);
}

/* ------------------------------------------------------- names shown safely */

/* Odd names, made by the shell's printf: a newline (one entry passing for
 * two), an escape sequence (recolours the terminal), a tab, a backslash,
 * BEL, DEL, a Latin-1 byte (not UTF-8), a C1 CSI (U+009B, obeyed by some
 * terminals), and valid UTF-8, which stays as it is. */
static char *odd_tree(fixture *f)
{
    char *d = t_join(f->dir, "odd");
    char *cmd = t_fmt("rm -rf '%s' && mkdir -p '%s' && cd '%s' && "
                      "for n in 'line1\\nfake-entry.txt' 'esc\\033[31mred' 'tab\\there' "
                      "'back\\\\slash' 'bell\\a' 'del\\177' 'caf\\351' 'c1\\302\\233x' "
                      "'\\303\\251t\\303\\251.txt'; do printf x > \"$(printf \"$n\")\"; done && "
                      "mkdir \"$(printf 'd\\nir')\" && printf y > \"$(printf 'd\\nir/in\\rside')\"",
                      d, d, d);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    return d;
}

#define ODD_LS                                                                                     \
    "back\\\\slash\nbell\\a\nc1\\302\\233x\ncaf\\351\nd\\nir/\ndel\\177\nesc\\033[31mred\n"        \
    "line1\\nfake-entry.txt\ntab\\there\n\303\251t\303\251.txt\n"

/* Fails unless S holds no byte that could drive a terminal (a control
 * character other than the newlines that end lines). */
static void assert_inert(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\n') || *p == 0x7f ||
            (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
            fail_msg("raw control byte 0x%02x in: %s", *p, s);
}

static void test_names_escaped(void **state)
{
    fixture *f = *state;
    char *d = odd_tree(f);
    char *out, *err;
    assert_int_equal(t_mkkv(&out, &err, "ls '%s'", d), 0);
    assert_string_equal(out, ODD_LS);
    free(out), free(err);

    assert_int_equal(t_mkkv(&out, &err, "ls -R '%s'", d), 0);
    assert_non_null(strstr(out, "\nd\\nir/\nd\\nir/in\\rside\ndel\\177\n"));
    assert_inert(out);
    free(out), free(err);

    /* -l: one line per entry, the name at its end escaped. */
    assert_int_equal(t_mkkv(&out, &err, "ls -l '%s'", d), 0);
    assert_inert(out);
    size_t lines = 0;
    for (const char *p = out; (p = strchr(p, '\n')); p++)
        lines++;
    assert_int_equal(lines, 10);
    assert_non_null(strstr(out, " line1\\nfake-entry.txt\n"));
    assert_non_null(strstr(out, " esc\\033[31mred\n"));
    free(out), free(err);

    /* A file as PATH, and stat's key. */
    assert_int_equal(t_mkkv(&out, &err, "ls '%s' \"$(printf 'd\\nir/in\\rside')\"", d), 0);
    assert_string_equal(out, "d\\nir/in\\rside\n");
    free(out), free(err);
    assert_int_equal(t_mkkv(&out, &err, "stat '%s' \"$(printf 'esc\\033[31mred')\"", d), 0);
    assert_non_null(strstr(out, "key: esc\\033[31mred\nkind: file\n"));
    free(out), free(err);

    /* Errors: the key, the source, the library's detail. */
    assert_int_equal(t_mkkv(&out, &err, "cat '%s' \"$(printf 'no\\033]0;pwned\\007such')\"", d), 1);
    char *want = t_fmt("mkkv: %s: no\\033]0;pwned\\asuch: ", d);
    assert_true(strncmp(err, want, strlen(want)) == 0);
    assert_inert(err);
    free(want), free(out), free(err);
    assert_int_equal(t_mkkv(&out, &err, "cat \"$(printf '%s/mis\\nsing')\" x", d), 1);
    want = t_fmt("mkkv: %s/mis\\nsing: ", d);
    assert_true(strncmp(err, want, strlen(want)) == 0);
    assert_int_equal(strchr(err, '\n') - err, (ptrdiff_t)strlen(err) - 1); /* one line */
    free(want), free(out), free(err);
    /* A usage error quoting an operand. */
    assert_int_equal(t_mkkv(&out, &err, "frob\"$(printf '\\033[2J')\""), 2);
    assert_non_null(strstr(err, "unknown command 'frob\\033[2J'"));
    assert_inert(err);
    free(out), free(err);

    /* verify's report. */
    char *cmd =
        t_fmt("cd '%s' && rm -rf odd2 && cp -a odd odd2 && rm odd2/line1* odd2/esc*", f->dir);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    assert_int_equal(t_mkkv(&out, &err, "verify -q '%s' '%s/odd2'", d, f->dir), 1);
    want = t_fmt("only in %s: esc\\033[31mred\nonly in %s: line1\\nfake-entry.txt\n", d, d);
    assert_string_equal(out, want);
    free(want), free(out), free(err);
    free(d);
}

/* Warnings name members too: a tar member skipped for its "..", a FIFO
 * skipped by mkkv tar. */
static void test_warnings_escaped(void **state)
{
    fixture *f = *state;
    tarbuf t = {0};
    tb_file(&t, "../\033[2Jevil", "x");
    tb_file(&t, "ok", "y");
    tb_end(&t);
    char *tar = t_join(f->dir, "warn.tar");
    t_write(tar, t.p, t.n);
    free(t.p);
    char *out, *err;
    assert_int_equal(t_mkkv(&out, &err, "ls '%s'", tar), 0);
    assert_string_equal(out, "ok\n");
    assert_non_null(strstr(err, "mkkv: warning: "));
    assert_non_null(strstr(err, "'../\\033[2Jevil'"));
    assert_inert(err);
    free(out), free(err), free(tar);

    char *cmd = t_fmt("cd '%s' && rm -rf fifo && mkdir fifo && "
                      "mkfifo \"$(printf 'fifo/f\\ni\\033fo')\"",
                      f->dir);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    cmd = t_fmt("cd '%s' && '%s' tar fifo fifo.tar", f->dir, KVRO_TEST_MKKV);
    assert_int_equal(t_run(cmd, &out, &err), 0);
    assert_string_equal(err, "mkkv: fifo: f\\ni\\033fo: skipped: a FIFO is not stored\n");
    free(cmd), free(out), free(err);
}

/* -0: names as they are, each followed by a NUL (shown here as '@'). */
static void test_ls_null(void **state)
{
    fixture *f = *state;
    char *d = odd_tree(f);
    char *out, *err;
    assert_int_equal(t_mkkv(&out, &err, "ls -0 -R '%s' | tr '\\000' @", d), 0);
    assert_string_equal(out,
                        "back\\slash@bell\a@c1\302\233x@caf\351@d\nir/@d\nir/in\rside@del\177@"
                        "esc\033[31mred@line1\nfake-entry.txt@tab\there@\303\251t\303\251.txt@");
    free(out), free(err);
    assert_int_equal(t_mkkv(&out, &err, "ls --null '%s' | tr '\\000' @", f->tree), 0);
    assert_string_equal(out, "-dash-key@B@a/@hello.txt@z/@");
    free(out), free(err);
    /* -l -0: the long line, NUL-terminated. */
    assert_int_equal(t_mkkv(&out, &err, "ls -l -0 '%s' hello.txt | tr '\\000' @", f->tree), 0);
    assert_non_null(strstr(out, " hello.txt@"));
    assert_null(strchr(out, '\n'));
    free(out), free(err);
    /* The help says how names are shown, and what -0 does. */
    assert_int_equal(t_mkkv(&out, &err, "ls --help"), 0);
    assert_non_null(strstr(out, "-0, --null"));
    assert_non_null(strstr(out, "\\033"));
    assert_non_null(strstr(out, "\\ooo octal"));
    free(out), free(err);
    assert_int_equal(t_mkkv(&out, &err, "--help"), 0);
    assert_non_null(strstr(out, "escaped"));
    assert_non_null(strstr(out, "ls -0"));
    free(out), free(err);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_usage),
        cmocka_unit_test(test_ls),
        cmocka_unit_test(test_ls_keeps_going),
        cmocka_unit_test(test_cat),
        cmocka_unit_test(test_stat),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_names_escaped),
        cmocka_unit_test(test_warnings_escaped),
        cmocka_unit_test(test_ls_null),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
