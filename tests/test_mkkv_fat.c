/*
 * test_mkkv_fat.c — mkkv fat against the real tools: every image it
 * builds must pass `fsck.fat -n` with nothing printed but the summary
 * (fsck.fat exits 0 even on a bad long-name checksum, so its output is
 * what is checked), extract with `mcopy -s` to exactly the source tree
 * (mtools 4.0.32 drops characters outside the BMP, so that tree has BMP
 * names only; a non-BMP name is checked through our own reader with mkkv
 * verify), and match the source with mkkv verify. FAT12, FAT16 and FAT32,
 * forced and chosen; the cluster size mkfs.fat would choose; two builds
 * byte for byte, also from a copy of the tree made in another order; a
 * tar straight to an image; names FAT cannot hold; links; nothing left
 * behind on failure.
 */
#include "support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char *work, *tree;

static const struct {
    const char *key;
    int64_t size; /* -1: a directory */
} TREE[] = {
    {"readme.txt", 6},
    {"UPPER.TXT", 3},
    {"ReadMe.Md", 9},
    {"Mixed Case Long Name.markdown", 40},
    {"données été.txt", 33},
    {"日本語のファイル名.txt", 12},
    {"a+b;c=d[1].txt", 4},
    {"...dots", 2},
    {"empty", 0},
    {"emptydir", -1},
    {"a/b/c/deep.txt", 100},
    {"a/b/Sibling File", 7},
    {"a/x.y.z", 5},
    {"big.bin", 300007},
};

/* Runs a command; its status. */
static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...)
{
    char *o = NULL, *e = NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = t_vsh(NULL, &o, &e, fmt, ap);
    va_end(ap);
    if (out) {
        *out = t_fmt("%s%s", o, e);
    }
    free(o), free(e);
    return rc;
}

static void ok(const char *fmt, const char *a, const char *b, const char *c)
{
    char *out = NULL;
    int rc = run(&out, fmt, a, b, c);
    if (rc != 0)
        fail_msg("'%s' failed (%d): %s", fmt, rc, out);
    free(out);
}

static void make_tree(const char *root, bool reverse, int files)
{
    size_t n = sizeof TREE / sizeof *TREE;
    for (size_t k = 0; k < n; k++) {
        size_t i = reverse ? n - 1 - k : k;
        char *p = t_join(root, TREE[i].key);
        if (TREE[i].size < 0)
            t_mkdirs(p);
        else
            t_write_pattern(p, i, (uint64_t)TREE[i].size);
        free(p);
    }
    /* Many names with one basis: ~1 .. ~9, then the hashed tails. */
    for (int k = 0; k < files; k++) {
        int i = reverse ? files - 1 - k : k;
        char *p = t_fmt("%s/many/longfilename%d.txt", root, i);
        char *d = t_fmt("%s/many", root);
        t_mkdirs(d);
        t_write_pattern(p, 100 + (uint64_t)i, (uint64_t)i * 7);
        free(p), free(d);
    }
}

/* fsck.fat -n prints its version line and the summary only. */
static void fsck_clean(const char *img)
{
    char *out = NULL;
    int rc = run(&out, "fsck.fat -n '%s'", img);
    if (rc != 0)
        fail_msg("fsck.fat -n failed (%d): %s", rc, out);
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    if (lines != 2 || !strstr(out, " files, ") || !strstr(out, " clusters"))
        fail_msg("fsck.fat -n said more than its summary:\n%s", out);
    free(out);
}

static void extract_equal(const char *img, const char *src)
{
    char *dir = t_join(work, "extract");
    t_rmrf(dir);
    t_mkdirs(dir);
    ok("MTOOLS_SKIP_CHECK=1 mcopy -s -i '%s' ::/ '%s'%s", img, dir, "");
    char *out = NULL;
    int rc = run(&out, "diff -r '%s' '%s'", src, dir);
    if (rc != 0)
        fail_msg("mcopy's extraction differs from the source:\n%s", out);
    free(out);
    t_rmrf(dir);
    free(dir);
}

static void verify(const char *img, const char *src)
{
    ok("'%s' verify '%s' '%s'", KVRO_TEST_MKKV, img, src);
}

/* The image's FAT type and sectors per cluster, from its boot sector. */
static void boot_info(const char *img, int *type, int *spc)
{
    unsigned char b[512];
    FILE *f = fopen(img, "rb");
    assert_non_null(f);
    assert_int_equal(fread(b, 1, sizeof b, f), sizeof b);
    fclose(f);
    *spc = b[13];
    *type = b[22] | b[23] ? (memcmp(b + 54, "FAT12", 5) == 0 ? 12 : 16) : 32;
}

static char *build(const char *name, const char *opts, const char *src)
{
    char *img = t_join(work, name);
    unlink(img);
    char *out = NULL;
    int rc = run(&out, "'%s' fat -q %s '%s' '%s'", KVRO_TEST_MKKV, opts, src, img);
    if (rc != 0)
        fail_msg("mkkv fat %s failed (%d): %s", opts, rc, out);
    free(out);
    return img;
}

static void check_all(const char *img)
{
    fsck_clean(img);
    extract_equal(img, tree);
    verify(img, tree);
}

static void test_types(void **state)
{
    (void)state;
    static const struct {
        const char *opts;
        int type;
    } cases[] = {
        {"", 12},
        {"--fat 12", 12},
        {"--fat 16", 16},
        {"--fat 32", 32},
        {"--size 16M", 16},
        {"--size 600M", 32},
        {"--fat 32 --label MyDisk", 32},
        {"--fat 16 --label 'DATA 1'", 16},
        {"--cluster-size 512", 12},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *img = build("t.img", cases[i].opts, tree);
        int type, spc;
        boot_info(img, &type, &spc);
        if (type != cases[i].type)
            fail_msg("%s: FAT%d, not FAT%d", cases[i].opts, type, cases[i].type);
        check_all(img);
        free(img);
    }
}

/* The cluster size mkfs.fat chooses by default, for sizes of each kind. */
static void test_cluster_defaults(void **state)
{
    (void)state;
    static const int kib[] = {1024, 8000, 16384, 262144, 300000, 524288, 1048576};
    char *empty = t_join(work, "empty-tree");
    t_mkdirs(empty);
    for (size_t i = 0; i < sizeof kib / sizeof *kib; i++) {
        char *opts = t_fmt("--size %dK", kib[i]);
        char *ours = build("ours.img", opts, empty);
        char *theirs = t_join(work, "theirs.img");
        unlink(theirs);
        char *out = NULL;
        assert_int_equal(run(&out, "mkfs.fat -C '%s' %d", theirs, kib[i]), 0);
        free(out);
        int t1, s1, t2, s2;
        boot_info(ours, &t1, &s1);
        boot_info(theirs, &t2, &s2);
        if (t1 != t2 || s1 != s2)
            fail_msg("%d KiB: FAT%d with %d sectors a cluster; mkfs.fat: FAT%d with %d", kib[i], t1,
                     s1, t2, s2);
        fsck_clean(ours);
        unlink(ours);
        unlink(theirs);
        free(opts), free(ours), free(theirs);
    }
    t_rmrf(empty);
    free(empty);
}

static void test_deterministic(void **state)
{
    (void)state;
    char *again = t_join(work, "tree-reversed");
    make_tree(again, true, 40);
    char *a = build("a.img", "", tree);
    char *b = build("b.img", "", tree);
    char *c = build("c.img", "", again);
    ok("cmp '%s' '%s'%s", a, b, "");
    ok("cmp '%s' '%s'%s", a, c, "");
    /* SOURCE_DATE_EPOCH changes the times and the volume id, and only those. */
    char *out = NULL;
    assert_int_equal(run(&out,
                         "SOURCE_DATE_EPOCH=1700000000 '%s' fat -q '%s' '%s/d.img' && "
                         "! cmp -s '%s' '%s/d.img'",
                         KVRO_TEST_MKKV, tree, work, a, work),
                     0);
    free(out);
    t_rmrf(again);
    free(again), free(a), free(b), free(c);
}

static void test_tar_source(void **state)
{
    (void)state;
    char *tar = t_join(work, "tree.tar");
    ok("cd '%s' && tar --format=gnu -cf '%s' .%s", tree, tar, "");
    char *img = build("tar.img", "", tar);
    check_all(img);
    /* Sorted, the image is the directory's own, byte for byte. */
    char *sorted = build("tar-sorted.img", "--sort=name", tar);
    char *direct = build("dir.img", "", tree);
    ok("cmp '%s' '%s'%s", sorted, direct, "");
    /* Otherwise the files' bytes lie in the archive's order (it is read
     * once, front to back); the directories are sorted all the same. */
    char *src = t_join(work, "ordered");
    char *p = t_join(src, "z.bin");
    t_write(p, "zzzz-the-last-name-first", 24);
    free(p);
    p = t_join(src, "a.bin");
    t_write(p, "aaaa-the-first-name-last", 24);
    char *otar = t_join(work, "ordered.tgz");
    ok("cd '%s' && tar -czf '%s' z.bin a.bin%s", src, otar, "");
    char *oimg = build("ordered.img", "", otar);
    fsck_clean(oimg);
    verify(oimg, src);
    ok("python3 -c 'import sys; d = open(sys.argv[1], \"rb\").read(); "
       "sys.exit(not 0 < d.find(b\"zzzz-the\") < d.find(b\"aaaa-the\"))' '%s'%s%s",
       oimg, "", "");
    char *out = NULL;
    assert_int_equal(run(&out, "'%s' fat --sort=size '%s' '%s/x.img'", KVRO_TEST_MKKV, otar, work),
                     2);
    assert_non_null(strstr(out, "want name or none"));
    free(out);
    t_rmrf(src);
    free(tar), free(img), free(direct), free(sorted), free(src), free(p), free(otar), free(oimg);
}

/* A name outside the BMP (mtools would drop it): our reader round trip. */
/* The Linux kernel's own vfat driver reads IMG as SRC, where a loop mount
 * can be made here (root, loop devices, vfat in the kernel); otherwise it
 * says why it skipped (containers usually lack the vfat module): mtools
 * drops characters outside the BMP, so the kernel is the one peer that
 * checks those names. */
static void kernel_reads(const char *img, const char *src)
{
    char *fs = NULL;
    if (geteuid() != 0 || access("/dev/loop-control", W_OK) != 0 ||
        run(&fs, "grep -qw vfat /proc/filesystems || modprobe -q vfat%s", "") != 0) {
        printf("SKIP: no loop mount of a vfat image here (needs root, /dev/loop-control and "
               "vfat in /proc/filesystems)\n");
        free(fs);
        return;
    }
    free(fs);
    char *mnt = t_join(work, "kmnt");
    t_mkdirs(mnt);
    ok("mount -o loop,ro,utf8 '%s' '%s'%s", img, mnt, "");
    char *out = NULL;
    int rc = run(&out, "diff -r '%s' '%s'", src, mnt);
    ok("umount '%s'%s%s", mnt, "", "");
    if (rc != 0)
        fail_msg("the kernel's vfat reads the image otherwise:\n%s", out);
    free(out);
    rmdir(mnt);
    free(mnt);
}

static void test_non_bmp(void **state)
{
    (void)state;
    char *src = t_join(work, "astral");
    char *p = t_join(src, "smile \xF0\x9F\x98\x80 face.txt");
    t_write_pattern(p, 9, 1000);
    char *img = build("astral.img", "", src);
    fsck_clean(img);
    verify(img, src);
    kernel_reads(img, src);
    t_rmrf(src);
    free(src), free(p), free(img);
}

static void expect_refused(const char *src, const char *needle)
{
    char *img = t_join(work, "refused.img");
    unlink(img);
    char *out = NULL;
    int rc = run(&out, "'%s' fat -q '%s' '%s'", KVRO_TEST_MKKV, src, img);
    if (rc != 1 || !strstr(out, needle))
        fail_msg("want status 1 and '%s', got %d: %s", needle, rc, out);
    free(out);
    struct stat st;
    assert_int_not_equal(lstat(img, &st), 0);
    /* No temporary file left beside it. */
    assert_int_equal(run(&out, "ls -A '%s' | grep -c refused", work), 1);
    free(out);
    free(img);
}

static void test_refused(void **state)
{
    (void)state;
    char *src = t_join(work, "bad");
    char *p = t_join(src, "what?.txt");
    t_write(p, "x", 1);
    expect_refused(src, "what?.txt");
    t_rmrf(src);
    free(p);
    p = t_join(src, "dir/Case.txt");
    t_write(p, "x", 1);
    free(p);
    p = t_join(src, "dir/CASE.TXT");
    t_write(p, "y", 1);
    expect_refused(src, "another case");
    t_rmrf(src);
    free(p);
    p = t_join(src, "Straße nach Köln.txt");
    t_write(p, "x", 1);
    free(p);
    p = t_join(src, "STRASSE NACH KÖLN.TXT");
    t_write(p, "x", 1);
    free(p);
    p = t_join(src, "straße nach köln.txt");
    t_write(p, "y", 1);
    expect_refused(src, "another case");
    t_rmrf(src);
    free(p);
    /* A forced type that cannot hold the size asked for. */
    char *out = NULL;
    assert_int_equal(
        run(&out, "'%s' fat -q --fat 32 --size 16M '%s' '%s/x.img'", KVRO_TEST_MKKV, tree, work),
        1);
    assert_non_null(strstr(out, "65525"));
    free(out);
    free(src);
}

/* An MBR partition entry: TYPE, LBA, COUNT sectors, in slot SLOT. */
static void mbr_entry(unsigned char *d, int slot, unsigned char type, uint32_t lba, uint32_t count)
{
    unsigned char *e = d + 446 + 16 * slot;
    e[4] = type;
    for (int i = 0; i < 4; i++)
        e[8 + i] = (unsigned char)(lba >> 8 * i), e[12 + i] = (unsigned char)(count >> 8 * i);
    d[510] = 0x55, d[511] = 0xAA;
}

/* A disk image: the volumes built from the tree and from a second one,
 * partitions 1 (at 1 MiB) and 2, written here byte by byte; mkkv picks one
 * with --partition, lists them with stat, and refuses to guess. Also
 * --partition-table mbr and a superfloppy's stat. */
static void test_partitions(void **state)
{
    (void)state;
    char *other = t_join(work, "other");
    char *f = t_join(other, "only in two.txt");
    t_write(f, "partition two\n", 14);
    char *v1 = build("v1.img", "--fat 32", tree), *v2 = build("v2.img", "--fat 16", other);
    size_t n1, n2;
    char *b1 = t_slurp(v1, &n1), *b2 = t_slurp(v2, &n2);
    assert_true(n1 % 512 == 0 && n2 % 512 == 0);
    size_t at1 = 1 << 20, at2 = at1 + n1, size = at2 + n2 + 4096;
    unsigned char *d = calloc(1, size);
    memcpy(d + at1, b1, n1), memcpy(d + at2, b2, n2);
    mbr_entry(d, 0, 0x0C, (uint32_t)(at1 / 512), (uint32_t)(n1 / 512));
    mbr_entry(d, 1, 0x06, (uint32_t)(at2 / 512), (uint32_t)(n2 / 512));
    char *disk = t_join(work, "disk.img");
    t_write(disk, d, size);

    char *out = NULL;
    assert_int_equal(run(&out, "'%s' ls '%s'", KVRO_TEST_MKKV, disk), 1);
    if (!strstr(out, "2 FAT partitions") || !strstr(out, "--partition N"))
        fail_msg("two FAT partitions, none chosen:\n%s", out);
    free(out);
    assert_int_equal(run(&out, "'%s' stat --partition 2 '%s'", KVRO_TEST_MKKV, disk), 0);
    if (!strstr(out, "filesystem: FAT16") || !strstr(out, "partitions:\n") ||
        !strstr(out, "\n    MBR1: ") || !strstr(out, "\n  * MBR2: ") ||
        !strstr(out, "at byte 1048576"))
        fail_msg("mkkv stat --partition 2 DISK:\n%s", out);
    free(out);
    ok("'%s' verify --partition 1 '%s' '%s'", KVRO_TEST_MKKV, disk, tree);
    ok("'%s' verify --partition=2 '%s' '%s'", KVRO_TEST_MKKV, disk, other);
    assert_int_equal(run(&out, "'%s' cat --partition 2 '%s' 'only in two.txt'", KVRO_TEST_MKKV,
                         disk),
                     0);
    assert_string_equal(out, "partition two\n");
    free(out);
    assert_int_equal(run(&out, "'%s' ls --partition 3 '%s'", KVRO_TEST_MKKV, disk), 1);
    assert_non_null(strstr(out, "no partition 3"));
    free(out);
    const char *bad[] = {"0", "-1", "x", "1x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(run(&out, "'%s' ls --partition '%s' '%s'", KVRO_TEST_MKKV, bad[i], disk),
                         2);
        assert_non_null(strstr(out, "not a partition number"));
        free(out);
    }

    /* A superfloppy: no partitions to list, none to pick. */
    assert_int_equal(run(&out, "'%s' stat '%s'", KVRO_TEST_MKKV, v1), 0);
    if (!strstr(out, "backend: fat") || !strstr(out, "filesystem: FAT32") ||
        strstr(out, "partitions"))
        fail_msg("mkkv stat VOLUME:\n%s", out);
    free(out);
    assert_int_equal(run(&out, "'%s' ls --partition 1 '%s'", KVRO_TEST_MKKV, v1), 1);
    assert_non_null(strstr(out, "no partition table"));
    free(out);

    /* mkkv fat --partition-table mbr: one partition at 1 MiB, opened as it
     * is, and mtools reads it there. */
    char *m = build("mbr.img", "--partition-table mbr", tree);
    assert_int_equal(run(&out, "'%s' stat '%s'", KVRO_TEST_MKKV, m), 0);
    if (!strstr(out, "\n  * MBR1: ") || !strstr(out, "at byte 1048576"))
        fail_msg("mkkv stat of mkkv fat --partition-table mbr:\n%s", out);
    free(out);
    verify(m, tree);
    char *dir = t_join(work, "extract");
    t_rmrf(dir);
    t_mkdirs(dir);
    ok("MTOOLS_SKIP_CHECK=1 mcopy -s -i '%s@@1M' ::/ '%s'%s", m, dir, "");
    ok("diff -r '%s' '%s'%s", tree, dir, "");
    t_rmrf(dir);
    free(dir);

    t_rmrf(other);
    free(m), free(disk), free(d), free(b1), free(b2), free(v1), free(v2), free(f), free(other);
}

static void test_links(void **state)
{
    (void)state;
    char *src = t_join(work, "links");
    char *p = t_join(src, "d/file.txt");
    t_write_pattern(p, 3, 5000);
    ok("cd '%s' && ln -s d/file.txt inside && ln -s d dirlink && ln -s /etc/passwd outside && "
       "ln -s . loop%s%s",
       src, "", "");
    char *img = t_join(work, "links.img");
    char *out = NULL;
    assert_int_equal(run(&out, "'%s' fat -q '%s' '%s'", KVRO_TEST_MKKV, src, img), 0);
    assert_non_null(strstr(out, "outside"));
    assert_non_null(strstr(out, "loop"));
    free(out);
    fsck_clean(img);
    /* What mcopy extracts: the copies, no links. */
    char *want = t_join(work, "links-want");
    const char *copies[] = {"d/file.txt", "inside", "dirlink/file.txt"};
    for (size_t i = 0; i < 3; i++) {
        char *w = t_join(want, copies[i]);
        t_write_pattern(w, 3, 5000);
        free(w);
    }
    extract_equal(img, want);
    t_rmrf(src), t_rmrf(want);
    free(src), free(p), free(img), free(want);
}

/* mkkv put, mkdir and rm on an image, against the same done to a copy
 * of the tree. */
static void test_fs_cmds(void **state)
{
    (void)state;
    char *model = t_join(work, "fs-model");
    char *img = build("fs.img", "--fat 16", tree);
    char *file = t_join(work, "payload.bin");
    t_write_pattern(file, 77, 123456);
    ok("cp -r '%s' '%s'%s", tree, model, "");
    const char *M = KVRO_TEST_MKKV;
    char *cmd = t_fmt("'%s' put '%s' 'new dir/Payload File.bin' '%s' && "
                      "'%s' put '%s' readme.txt '%s' && "
                      "'%s' mkdir '%s' x/y/z && '%s' rm -r '%s' a && '%s' rm '%s' empty",
                      M, img, file, M, img, file, M, img, M, img, M, img);
    ok("%s%s%s", cmd, "", "");
    free(cmd);
    ok("mkdir -p '%s/new dir' '%s/x/y/z' && true%s", model, model, "");
    ok("cp '%s' '%s/new dir/Payload File.bin'%s", file, model, "");
    ok("cp '%s' '%s/readme.txt'%s", file, model, "");
    ok("rm -r '%s/a' '%s/empty'%s", model, model, "");
    fsck_clean(img);
    extract_equal(img, model);
    verify(img, model);
    /* A put that does not fit fails and leaves nothing behind. */
    char *huge = t_join(work, "huge.bin");
    t_write_pattern(huge, 5, 40u << 20);
    char *out = NULL;
    assert_int_equal(run(&out, "'%s' put '%s' huge.bin '%s'", M, img, huge), 1);
    assert_non_null(strstr(out, "full"));
    free(out);
    fsck_clean(img);
    extract_equal(img, model);
    /* Nor does one that would replace a file: the old one stays whole,
     * whether the new one does not fit or cannot be read (a directory). */
    assert_int_equal(run(&out, "'%s' put '%s' readme.txt '%s'", M, img, huge), 1);
    assert_non_null(strstr(out, "full"));
    free(out);
    assert_int_equal(run(&out, "'%s' put '%s' readme.txt '%s'", M, img, work), 1);
    free(out);
    fsck_clean(img);
    extract_equal(img, model);
    /* mkdir over a file, rm of a directory that is not empty without -r. */
    assert_int_equal(run(&out, "'%s' mkdir '%s' readme.txt/sub", M, img), 1);
    free(out);
    assert_int_equal(run(&out, "'%s' rm '%s' x", M, img), 1);
    assert_non_null(strstr(out, "not empty"));
    free(out);
    t_rmrf(model);
    unlink(huge), unlink(img);
    free(model), free(img), free(file), free(huge);
}

static int setup(void **state)
{
    (void)state;
    if (!t_have("fsck.fat") || !t_have("mcopy") || !t_have("mkfs.fat"))
        return -1;
    work = t_tempdir("mkkv-fat");
    tree = t_join(work, "tree");
    make_tree(tree, false, 40);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    t_rmrf(work);
    free(work), free(tree);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),         cmocka_unit_test(test_cluster_defaults),
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_tar_source),
        cmocka_unit_test(test_non_bmp),       cmocka_unit_test(test_refused),
        cmocka_unit_test(test_links),         cmocka_unit_test(test_fs_cmds),
        cmocka_unit_test(test_partitions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
