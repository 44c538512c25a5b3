/*
 * test_fuse_fat.c — kvfuse over FAT: FAT12, FAT16 and FAT32 volumes made
 * by mkfs.fat (dosfstools) and filled by mcopy (mtools) from a host tree,
 * and two FAT partitions of a disk image with an MBR written here byte by
 * byte (no sfdisk on these machines), picked with -o partition=N; and
 * images written by `mkkv fat`, plain and in an MBR disk. Each is
 * mounted and compared with the tree by diff -r, lstat (kind, size, mtime,
 * FAT's fixed modes), reads at odd offsets (pread and dd) and EROFS on
 * every write; a name in another case is the same inode.
 *
 * The tree's names survive a FAT volume: long names keep their case,
 * 8.3 lower-case names come back through the NT case flags, no two names
 * differ only in case, and every mtime is an even second (FAT keeps
 * 2-second steps; mcopy runs with TZ=UTC, as the backend reads them).
 *
 * Without /dev/fuse, fusermount3, mkfs.fat or mcopy every test skips,
 * saying why, except under CI, where that is a failure.
 */
#include "support.h"

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include <cmocka.h>

#include "test_fuse.h"

#define MTIME 1615000000 /* an even second */
#define ODD_SIZE 1048583 /* many clusters of any size, and not a multiple of one */

static const t_entry TREE[] = {
    {"readme.txt", 6}, /* 8.3 lower case */
    {"UPPER.TXT", 3},
    {"Mixed Case Long Name.markdown", 40},
    {"donn\u00e9es \u00e9t\u00e9.txt", 33},
    {"empty", 0},
    {"emptydir", -1},
    {"a", -1},
    {"a/b", -1},
    {"a/b/c", -1},
    {"a/b/c/deep.txt", 100},
    {"a/b/Sibling File", 7},
    {"a/x.y.z", 5},
    {"odd.bin", ODD_SIZE},
};
#define NTREE (sizeof TREE / sizeof TREE[0])
#define ODD_SEED 13 /* odd.bin's pattern: its index + 1 */

typedef struct fixture {
    char *dir, *tree, *mnt;
} fixture;

static bool tools_missing(void)
{
    if (t_have("mkfs.fat") && t_have("mcopy"))
        return false;
    const char *ci = getenv("CI");
    if (ci && *ci)
        fail_msg(
            "mkfs.fat and mcopy are missing, and CI is set (apt-get install dosfstools mtools)");
    printf("SKIP: mkfs.fat and mcopy are needed (apt-get install dosfstools mtools)\n");
    return true;
}

#define NEED_TOOLS()                                                                               \
    do {                                                                                           \
        NEED_FUSE();                                                                               \
        if (tools_missing()) {                                                                     \
            skip();                                                                                \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = t_tempdir("fuse-fat");
    f->tree = t_join(f->dir, "tree");
    f->mnt = t_join(f->dir, "mnt");
    t_mkdirs(f->mnt);
    t_make_tree(f->tree, TREE, NTREE, 1);
    t_sh_ok("find '%s' -exec touch -h -d @%d {} +", f->tree, MTIME);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tf_unmount(f->mnt);
    t_rmrf(f->dir);
    free(f->dir), free(f->tree), free(f->mnt), free(f);
    return 0;
}

/* mkfs.fat OPTS -C NAME KIB in the scratch directory, the tree copied in
 * by mcopy (-m: mtimes kept). */
static char *make_volume(fixture *f, const char *name, const char *opts, int kib)
{
    char *img = t_join(f->dir, name);
    t_sh_ok("rm -f '%s' && mkfs.fat %s -C '%s' %d >/dev/null && cd '%s' && "
            "TZ=UTC MTOOLS_SKIP_CHECK=1 mcopy -s -m -i '%s' * ::",
            img, opts, img, kib, f->tree, img);
    return img;
}

/* ------------------------------------------------------------ checks */

static const char *tree_root, *mnt_root;

/* Each entry of the tree against the mount: kind, size, mtime, and the
 * modes the FAT backend gives (0644 files, 0755 directories). */
static int compare_stat(const char *path, const struct stat *want, int flag, struct FTW *ftw)
{
    (void)flag, (void)ftw;
    char *m = t_fmt("%s%s", mnt_root, path + strlen(tree_root));
    struct stat got;
    tf_lstat_like(m, want, &got);
    if (S_ISREG(want->st_mode)) {
        assert_int_equal(got.st_size, want->st_size);
        assert_int_equal(got.st_blocks, (want->st_size + 511) / 512);
        if (got.st_mtim.tv_sec != want->st_mtim.tv_sec)
            fail_msg("%s: mtime %lld, want %lld", m, (long long)got.st_mtim.tv_sec,
                     (long long)want->st_mtim.tv_sec);
        assert_int_equal(got.st_mode & 07777, 0644);
    } else if (strcmp(path, tree_root) != 0) {
        assert_int_equal(got.st_mode & 07777, 0755);
    }
    free(m);
    return 0;
}

static void check_reads(const char *mnt)
{
    char *path = t_join(mnt, "odd.bin");
    static const int64_t offs[] = {0,     1,       511,          513,      4095,          4097,
                                   32769, 1000003, ODD_SIZE - 1, ODD_SIZE, ODD_SIZE + 100};
    tf_check_preads(path, "odd.bin", ODD_SEED, ODD_SIZE, offs, sizeof offs / sizeof *offs);
    char *out = t_join(mnt, "../dd.out");
    t_sh_ok("dd if='%s' of='%s' bs=511 skip=1001 count=77 status=none", path, out);
    size_t n;
    char *got = t_slurp(out, &n);
    assert_int_equal(n, 511 * 77);
    for (size_t k = 0; k < n; k++)
        assert_int_equal((uint8_t)got[k], t_pattern(ODD_SEED, 511 * 1001 + k));
    unlink(out);
    free(got), free(out), free(path);
}

/* Names in another case find the same entries (FAT is case-insensitive),
 * as the same inodes. */
static void check_case(const char *mnt)
{
    static const char *const pairs[][2] = {
        {"readme.txt", "README.TXT"}, {"UPPER.TXT", "upper.txt"}, {"a/b/c", "A/B/C"}};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        char *p = t_join(mnt, pairs[i][0]), *q = t_join(mnt, pairs[i][1]);
        struct stat a, b;
        assert_int_equal(lstat(p, &a), 0);
        if (lstat(q, &b) != 0)
            fail_msg("%s: %s", q, strerror(errno));
        assert_int_equal(a.st_ino, b.st_ino);
        free(p), free(q);
    }
    char *p = t_join(mnt, "A/B/C/DEEP.TXT");
    size_t n;
    free(t_slurp(p, &n));
    assert_int_equal(n, 100);
    free(p);
}

/* Mounts SOURCE with OPTS and checks everything against the tree. */
static void check_mount(fixture *f, const char *source, const char *opts)
{
    tf_mount_ok(f->mnt, source, opts);
    tf_diff_ok(f->tree, f->mnt, source);
    tree_root = f->tree, mnt_root = f->mnt;
    assert_int_equal(nftw(f->tree, compare_stat, 16, FTW_PHYS), 0);
    check_reads(f->mnt);
    check_case(f->mnt);
    tf_check_erofs(f->mnt, "readme.txt", "emptydir");
    struct stat st;
    char *p = t_join(f->mnt, "readme.txt/x");
    assert_int_equal(stat(p, &st), -1);
    assert_int_equal(errno, ENOTDIR);
    free(p);
    struct statvfs sv;
    assert_int_equal(statvfs(f->mnt, &sv), 0);
    assert_true(sv.f_flag & ST_RDONLY);
    tf_unmount_ok(f->mnt);
}

/* ------------------------------------------------------------ volumes */

static void test_fat12(void **state)
{
    NEED_TOOLS();
    fixture *f = *state;
    char *img = make_volume(f, "f12.img", "-F 12", 4096);
    check_mount(f, img, "");
    check_mount(f, img, "-s -o backend=fat");
    free(img);
}

static void test_fat16(void **state)
{
    NEED_TOOLS();
    fixture *f = *state;
    char *img = make_volume(f, "f16.img", "-F 16", 20000);
    check_mount(f, img, "");
    free(img);
}

static void test_fat32(void **state)
{
    NEED_TOOLS();
    fixture *f = *state;
    char *img = make_volume(f, "f32.img", "-F 32", 40000);
    check_mount(f, img, "");
    free(img);
}

/* ------------------------------------------------------- a partitioned disk */

/* A disk with a FAT32 volume at 1 MiB (partition 1, type 0x0C) and a
 * FAT16 one after it (partition 2, type 0x06): with two FAT partitions the
 * mount needs -o partition=N, and refuses without it. */
static void test_mbr_partitions(void **state)
{
    NEED_TOOLS();
    fixture *f = *state;
    char *vols[2] = {make_volume(f, "p1.img", "-F 32", 40000),
                     make_volume(f, "p2.img", "-F 16", 20000)};
    uint32_t at[2] = {2048, 0}, len[2];
    size_t n[2];
    char *data[2];
    for (int i = 0; i < 2; i++) {
        data[i] = t_slurp(vols[i], &n[i]);
        len[i] = (uint32_t)(n[i] / 512);
    }
    at[1] = at[0] + len[0] + 63; /* not aligned: nothing may assume it */
    size_t sectors = at[1] + len[1] + 100;
    unsigned char *disk = calloc(sectors, 512);
    for (int i = 0; i < 2; i++)
        memcpy(disk + (size_t)at[i] * 512, data[i], n[i]);
    t_mbr_entry(disk, 0, 0x0C, at[0], len[0]);
    t_mbr_entry(disk, 1, 0x06, at[1], len[1]);
    char *img = t_join(f->dir, "disk.img");
    t_write(img, disk, sectors * 512);

    check_mount(f, img, "-o partition=1");
    check_mount(f, img, "-o partition=2");
    char *err;
    int rc = tf_kvfuse(&err, "'%s' '%s'", img, f->mnt);
    if (rc != 1 || !strstr(err, "partition"))
        fail_msg("two FAT partitions, none chosen: exit %d (want 1): %s", rc, err);
    assert_false(tf_is_mounted(f->mnt));
    free(err);
    rc = tf_kvfuse(&err, "-o partition=3 '%s' '%s'", img, f->mnt);
    if (rc != 1 || !strstr(err, "partition 3"))
        fail_msg("-o partition=3: exit %d (want 1): %s", rc, err);
    assert_false(tf_is_mounted(f->mnt));
    free(err);

    /* One FAT partition (the other a Linux one over zeros: the backend goes
     * by contents, not by type): it mounts as it is. */
    t_mbr_entry(disk, 1, 0x83, at[1] + len[1], 90);
    t_write(img, disk, sectors * 512);
    check_mount(f, img, "");
    for (int i = 0; i < 2; i++)
        free(data[i]), free(vols[i]);
    free(disk), free(img);
}

/* Images written by `mkkv fat` (our own writer, checked against the same
 * tree through the mount): a volume of the size it picks, and a FAT32 one
 * in an MBR disk (one FAT partition: mounted as it is). --mtime gives
 * every entry the tree's time. */
static void test_mkkv_fat(void **state)
{
    NEED_FUSE();
    fixture *f = *state;
    char *img = t_join(f->dir, "mkkv.img"), *disk = t_join(f->dir, "mkkv-disk.img");
    t_sh_ok("'%s' fat -q --mtime %d '%s' '%s' && '%s' fat -q --mtime %d --fat 32 "
            "--size 40M --partition-table mbr '%s' '%s'",
            KVRO_TEST_MKKV, MTIME, f->tree, img, KVRO_TEST_MKKV, MTIME, f->tree, disk);
    check_mount(f, img, "");
    check_mount(f, disk, "");
    check_mount(f, disk, "-o partition=1");
    free(img), free(disk);
}

/* A damaged volume (its boot signature gone) is refused at start. */
static void test_corrupt_refused(void **state)
{
    NEED_TOOLS();
    fixture *f = *state;
    char *img = make_volume(f, "bad.img", "-F 16", 20000);
    int fd = open(img, O_RDWR);
    assert_true(fd >= 0);
    /* Bytes per sector 0: no FAT volume can say that. */
    assert_int_equal(pwrite(fd, "\0\0", 2, 11), 2);
    close(fd);
    char *err;
    int rc = tf_kvfuse(&err, "-o backend=fat '%s' '%s'", img, f->mnt);
    if (rc != 1 || !strstr(err, "bad.img"))
        fail_msg("a damaged boot sector: exit %d (want 1): %s", rc, err);
    assert_false(tf_is_mounted(f->mnt));
    free(err), free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fat12, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fat16, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fat32, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbr_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkkv_fat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
