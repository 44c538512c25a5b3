/*
 * test_tar_each.c — kvro_each over a tar gives members in the order their
 * data lies in the archive (so one pass reads or inflates it once), a
 * directory before its contents (an implied one just before the first
 * thing in it), a hard link right after the member holding its data, links
 * as links, every key once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tar_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seen {
    char order[1024];
    kvro *kv;
} seen;

static int record(void *arg, const char *key, kvro_status s, const kvro_info *info)
{
    seen *w = arg;
    assert_int_equal(s, KVRO_OK);
    assert_non_null(info);
    const char *tag = info->kind == KVRO_KIND_DIR ? "/" : info->kind == KVRO_KIND_LINK ? "@" : "";
    size_t n = strlen(w->order);
    snprintf(w->order + n, sizeof w->order - n, "%s%s%s", n ? " " : "", key, tag);
    /* What each gives is what a no-follow stat says. */
    kvro_info want;
    kvro_error e;
    assert_int_equal(kvro_lstat(w->kv, key, &want, &e), KVRO_OK);
    assert_int_equal(want.kind, info->kind);
    assert_int_equal(want.size, info->size);
    assert_int_equal(want.id, info->id);
    return 0;
}

/* Members in an order no sort would give: z, a/x (a implied), m/ (its
 * own member, after its contents), m/y, h (hard link to z), s -> z,
 * then a later z that replaces the first. */
static char *save_unsorted(const char *name)
{
    tarbuf t = {0};
    tb_file(&t, "q", "quux");
    tb_file(&t, "z", "first z");
    tb_file(&t, "a/x", "ax");
    tb_file(&t, "m/y", "my");
    tb_header(&t, "m/", '5', 0, NULL);
    tb_header(&t, "h", '1', 0, "q");
    tb_header(&t, "s", '2', 0, "z");
    tb_file(&t, "b", "bee");
    tb_end(&t);
    return tb_save(&t, name);
}

static void test_storage_order(void **state)
{
    (void)state;
    char *p = save_unsorted("unsorted.tar");
    kvro *kv = open_ok(p, false);
    seen w = {.kv = kv};
    kvro_error e;
    assert_int_equal(kvro_each(kv, record, &w, &e), KVRO_OK);
    /* m/ comes before m/y although its member is later; h follows q, whose
     * data it is; s is a link. */
    assert_string_equal(w.order, "q h z a/ a/x m/ m/y s@ b");
    kvro_close(kv);

    /* The same from a .tar.gz. */
    char *gz = t_fmt("%s.gz", p);
    char *cmd = t_fmt("gzip -n < '%s' > '%s'", p, gz);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    kv = open_ok(gz, false);
    memset(w.order, 0, sizeof w.order);
    w.kv = kv;
    assert_int_equal(kvro_each(kv, record, &w, &e), KVRO_OK);
    assert_string_equal(w.order, "q h z a/ a/x m/ m/y s@ b");
    kvro_close(kv);
    free(gz);
    free(p);
}

/* GNU tar's own archive: each gives every key that a recursive listing
 * gives, once, and values in increasing data offset. */
typedef struct offsets {
    kvro *kv;
    int64_t last;
    int files;
} offsets;

static int increasing(void *arg, const char *key, kvro_status s, const kvro_info *info)
{
    offsets *o = arg;
    assert_int_equal(s, KVRO_OK);
    if (info->kind != KVRO_KIND_FILE || info->size == 0)
        return 0;
    kvro_extent x;
    kvro_error e;
    assert_int_equal(kvro_file_extent(o->kv, key, &x, &e), KVRO_OK);
    assert_true(x.offset > o->last);
    o->last = x.offset;
    o->files++;
    return 0;
}

static void test_gnu_tar_order(void **state)
{
    (void)state;
    char *dir = t_join(tb_dir, "tree");
    for (int i = 0; i < 40; i++) {
        char *f = t_fmt("%s/d%d/f%02d", dir, i % 5, (i * 17) % 40);
        char *d = t_fmt("%s/d%d", dir, i % 5);
        t_mkdirs(d);
        t_write(f, "0123456789", (size_t)(i % 10) + 1);
        free(f);
        free(d);
    }
    char *tar = t_join(tb_dir, "gnu.tar");
    /* Unsorted on purpose: GNU tar stores readdir order. */
    char *cmd = t_fmt("tar -C '%s' -cf '%s' .", dir, tar);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    kvro *kv = open_ok(tar, false);
    offsets o = {.kv = kv, .last = -1};
    kvro_error e;
    assert_int_equal(kvro_each(kv, increasing, &o, &e), KVRO_OK);
    assert_int_equal(o.files, 40);
    kvro_close(kv);
    free(tar);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_storage_order, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_gnu_tar_order, tb_setup, tb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
