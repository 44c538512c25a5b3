/*
 * fuzz_fat_write.c — libFuzzer harness for the FAT write path: each input
 * is an image (the seeds are make_fat_seeds.py's), copied into a writable
 * buffer and opened read-write (kvro_fs_open_io over
 * kvro_io_from_memory_rw, the "fat" backend forced, as partition 0 and 1).
 * On an image that opens, a script of writes runs: files created in the
 * root and under new directories, written at offsets that cross cluster
 * boundaries and past the end, existing files overwritten and extended,
 * new and existing entries destroyed. Which entries and how many bytes
 * come from the input's last bytes, so the fuzzer drives both the image
 * and the script. The image is then closed and opened again, read-only,
 * and walked (walk.c).
 *
 * fuzz_fat.c covers what reading meets; a writer on a hostile image has
 * more to get wrong: a free-cluster count, a chain or a directory that
 * lies, and every allocation, extension and free then walks and changes
 * those structures. What is checked, beyond "no sanitizer report":
 *   - every call returns a known status with a clean error record;
 *   - a write that returned KVRO_OK reads back (through the same handle)
 *     as written, and the file's size covers it; a file created reads as
 *     empty; one destroyed is gone (KVRO_E_NOT_FOUND);
 *   - the bytes of the files the script made stay as written until the
 *     handle is closed, whatever later writes allocate: a cluster handed
 *     out twice would show here;
 *   - the image, reopened after close, opens and walks (every directory
 *     listed, every entry stat'ed, every file read); where it walked with no
 *     error before the writes, it walks with none after them: a writer
 *     that damages a sound image is caught, while one that was already
 *     damaged (in ways the writer cannot see) only has to stay safe.
 */
#include "walk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IMAGE (256 << 10)
#define SCRIPT_BYTES 16 /* the input's last bytes steer the script (14 and 15: renames) */
#define NEW_FILES 4
#define WRITE_MAX (40 << 10)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_name(void *arg, const char *name, kvro_kind kind)
{
    char(*names)[64] = arg;
    (void)kind;
    for (int i = 0; i < 4; i++)
        if (!names[i][0]) {
            snprintf(names[i], sizeof names[i], "%s", name);
            return 0;
        }
    return 1;
}

/* What the script wrote to one of its files, to compare with later. */
typedef struct made {
    char key[64];
    bool live;
    bool known;   /* a failed write may have left part of itself: not compared */
    int64_t size; /* bytes known: written, or zeros between */
    unsigned char *bytes;
} made;

static void check(kvro_status s, const kvro_error *e)
{
    FZ_CHECK((unsigned)s < KVRO_STATUS_COUNT);
    fz_check_error(s, e);
}

/* The pattern a write puts at OFF: differs per file and per offset. */
static unsigned char pat(int file, int64_t off)
{
    return (unsigned char)(off * 31 + (off >> 9) + file * 77 + 1);
}

static void do_write(kvro_fs *fs, made *m, int file, int64_t off, int64_t len)
{
    static unsigned char buf[WRITE_MAX];
    for (int64_t i = 0; i < len; i++)
        buf[i] = pat(file, off + i);
    kvro_error e;
    fz_error_poison(&e);
    kvro_status s = kvro_fs_write(fs, m->key, off, buf, len, &e);
    check(s, &e);
    if (s != KVRO_OK) {
        m->known = false;
        return;
    }
    if (off + len > m->size) {
        unsigned char *b = realloc(m->bytes, (size_t)(off + len));
        FZ_CHECK(b != NULL);
        memset(b + m->size, 0, (size_t)(off + len - m->size));
        m->bytes = b;
        m->size = off + len;
    }
    memcpy(m->bytes + off, buf, (size_t)len);
}

/* The file reads as the model says, through FS. */
static void verify(kvro_fs *fs, const made *m)
{
    if (!m->known)
        return;
    kvro_info st;
    kvro_error e;
    fz_error_poison(&e);
    kvro_status s = kvro_fs_stat(fs, m->key, &st, &e);
    check(s, &e);
    if (!m->live) {
        FZ_CHECK(s == KVRO_E_NOT_FOUND);
        return;
    }
    if (s != KVRO_OK || st.kind != KVRO_KIND_FILE || st.size != m->size) {
        fprintf(stderr, "fuzz_fat_write: '%s' stats %s (%s), %lld bytes, not a file of %lld\n",
                m->key, kvro_status_str(s), s == KVRO_OK ? "" : e.detail,
                s == KVRO_OK ? (long long)st.size : -1LL, (long long)m->size);
        FZ_CHECK(!"a file the script made stats other than written");
    }
    static unsigned char got[WRITE_MAX * 2 + 4096];
    int64_t n = -1;
    FZ_CHECK(m->size <= (int64_t)sizeof got);
    fz_error_poison(&e);
    s = kvro_fs_read(fs, m->key, 0, m->size + 1, got, &n, &e);
    check(s, &e);
    if (s != KVRO_OK || n != m->size || (m->size && memcmp(got, m->bytes, (size_t)m->size))) {
        fprintf(stderr, "fuzz_fat_write: '%s' (%lld bytes) reads back %s, %lld bytes\n", m->key,
                (long long)m->size, kvro_status_str(s), (long long)n);
        FZ_CHECK(!"a file reads back other than written");
    }
}

static void script(kvro_fs *fs, const uint8_t *steer)
{
    made m[NEW_FILES];
    memset(m, 0, sizeof m);
    static const char *const keys[NEW_FILES] = {
        "NEW.TXT", "new dir/a long name.bin", "new dir/sub/\xc3\xa9t\xc3\xa9.dat", "Z/y/x/w/v.txt"};
    kvro_error e;
    for (int i = 0; i < NEW_FILES; i++) {
        snprintf(m[i].key, sizeof m[i].key, "%s", keys[i]);
        fz_error_poison(&e);
        kvro_status s = kvro_fs_create(fs, m[i].key, &e);
        check(s, &e);
        m[i].live = m[i].known = s == KVRO_OK;
        verify(fs, &m[i]);
    }
    /* Writes: offsets near cluster sizes (512 .. 32 KiB), lengths from the
     * steering bytes. */
    static const int64_t offs[] = {0, 511, 4096, 32767, 3};
    for (int k = 0; k < 8; k++) {
        int i = steer[k] % NEW_FILES;
        if (!m[i].live || !m[i].known)
            continue;
        int64_t off = offs[steer[k + 1] % 5];
        int64_t len = 1 + (int64_t)(steer[k + 2] | steer[k + 3] << 8) % (WRITE_MAX - 1);
        if (off + len > WRITE_MAX * 2)
            continue;
        do_write(fs, &m[i], i, off, len);
        for (int j = 0; j < NEW_FILES; j++)
            verify(fs, &m[j]);
    }
    /* Renames: one into another directory, one over another file (which
     * then holds its bytes); a failed one changes nothing. */
    static const char *const moved[] = {"new dir/renamed file.txt", "MOVED.BIN"};
    for (int r = 0; r < 2; r++) {
        int i = steer[14 + r] % NEW_FILES;
        int j = (i + 1 + steer[14 + r] / NEW_FILES) % NEW_FILES;
        if (!m[i].live || !m[i].known)
            continue;
        bool over = r == 1 && m[j].live && m[j].known && j != i;
        const char *to = over ? m[j].key : moved[r];
        fz_error_poison(&e);
        kvro_status s = kvro_fs_rename(fs, m[i].key, to, &e);
        check(s, &e);
        if (s == KVRO_OK) {
            if (over) {
                free(m[j].bytes);
                m[j].bytes = m[i].bytes, m[j].size = m[i].size;
                m[i].bytes = NULL, m[i].size = 0;
                m[i].live = false;
            } else {
                char key[64];
                snprintf(key, sizeof key, "%s", m[i].key);
                snprintf(m[i].key, sizeof m[i].key, "%s", to);
                /* The old name is gone: a model of it, gone too. */
                for (int k = 0; k < NEW_FILES; k++)
                    if (k != i && !strcmp(m[k].key, key))
                        m[k].known = false;
            }
        }
        for (int k = 0; k < NEW_FILES; k++)
            verify(fs, &m[k]);
    }
    /* A directory moved (Z/y, holding file 3's directories), when the
     * steering bytes say: file 3 follows it. */
    if (steer[15] & 0x80) {
        fz_error_poison(&e);
        kvro_status s = kvro_fs_rename(fs, "Z/y", "new dir/y moved", &e);
        check(s, &e);
        if (s == KVRO_OK && !strncmp(m[3].key, "Z/y/", 4)) {
            char key[64];
            snprintf(key, sizeof key, "new dir/y moved/%s", m[3].key + 4);
            snprintf(m[3].key, sizeof m[3].key, "%s", key);
        }
        for (int k = 0; k < NEW_FILES; k++)
            verify(fs, &m[k]);
    }
    /* Entries that were there: read one, overwrite its start, destroy one. */
    char names[4][64] = {{0}};
    fz_error_poison(&e);
    kvro_status s = kvro_fs_listdir(fs, "", on_name, names, &e);
    check(s, &e);
    for (int i = 0; i < 4 && names[i][0]; i++) {
        if (!strcmp(names[i], "NEW.TXT") || !strcmp(names[i], "new dir") ||
            !strcmp(names[i], "Z") || !strcmp(names[i], "MOVED.BIN"))
            continue;
        kvro_info st;
        if (kvro_fs_stat(fs, names[i], &st, NULL) != KVRO_OK)
            continue;
        if (steer[12] & (1 << i)) {
            fz_error_poison(&e);
            s = kvro_fs_destroy(fs, names[i], &e);
            check(s, &e);
            if (s == KVRO_OK)
                FZ_CHECK(kvro_fs_stat(fs, names[i], &st, NULL) == KVRO_E_NOT_FOUND);
        } else if (st.kind == KVRO_KIND_FILE) {
            fz_error_poison(&e);
            s = kvro_fs_write(fs, names[i], st.size / 2, "overwritten", 11, &e);
            check(s, &e);
            if (s == KVRO_OK) {
                char back[11];
                int64_t n = -1;
                kvro_status r = kvro_fs_read(fs, names[i], st.size / 2, 11, back, &n, &e);
                if (r != KVRO_OK)
                    fprintf(stderr, "fuzz_fat_write: '%s' written at %lld, then: %s\n", names[i],
                            (long long)st.size / 2, e.detail);
                FZ_CHECK(r == KVRO_OK);
                FZ_CHECK(n == 11 && memcmp(back, "overwritten", 11) == 0);
            }
        }
        for (int j = 0; j < NEW_FILES; j++)
            verify(fs, &m[j]);
    }
    /* Destroy some of the script's own files, and an emptied directory. */
    for (int i = 0; i < NEW_FILES; i++) {
        if (!m[i].live || !(steer[13] & (1 << i)))
            continue;
        fz_error_poison(&e);
        s = kvro_fs_destroy(fs, m[i].key, &e);
        check(s, &e);
        if (s == KVRO_OK)
            m[i].live = false, m[i].known = true;
    }
    fz_error_poison(&e);
    check(kvro_fs_destroy(fs, "new dir/sub", &e), &e);
    for (int i = 0; i < NEW_FILES; i++) {
        verify(fs, &m[i]);
        free(m[i].bytes);
    }
}

/* The names of one directory, for damage_in. */
typedef struct dirnames {
    char **v;
    size_t n, cap;
} dirnames;

static int on_dirname(void *arg, const char *name, kvro_kind kind)
{
    dirnames *d = arg;
    (void)kind;
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->v = realloc(d->v, d->cap * sizeof *d->v);
        FZ_CHECK(d->v != NULL);
    }
    FZ_CHECK((d->v[d->n++] = strdup(name)) != NULL);
    return 0;
}

/* Errors met walking DIR of KV and below: listings, stats and whole reads
 * that failed. *BUDGET bounds the entries visited; 0 left means the walk
 * was cut short (the caller then compares nothing). */
static bool verbose; /* $KVRO_FUZZ_VERBOSE: say what damage_in meets */

static int failed(kvro_status s, const kvro_error *e, const char *what, const char *key)
{
    if (s != KVRO_OK && verbose)
        fprintf(stderr, "fuzz_fat_write: %s '%s': %s\n", what, key, e->detail);
    return s != KVRO_OK;
}

static int damage_in(kvro *kv, const char *dir, int depth, int *budget)
{
    dirnames d = {0};
    kvro_error e;
    int bad = failed(kvro_list(kv, dir, on_dirname, &d, &e), &e, "list", dir);
    static unsigned char buf[128 << 10];
    for (size_t i = 0; i < d.n; i++) {
        if (*budget > 0)
            --*budget;
        char key[KVRO_KEY_MAX + 1];
        int k = snprintf(key, sizeof key, "%s%s%s", dir, *dir ? "/" : "", d.v[i]);
        kvro_info st;
        if (*budget == 0 || k < 0 || (size_t)k >= sizeof key) {
            *budget = 0;
        } else if (failed(kvro_stat(kv, key, &st, &e), &e, "stat", key)) {
            bad++;
        } else if (st.kind == KVRO_KIND_DIR) {
            if (depth < 8)
                bad += damage_in(kv, key, depth + 1, budget);
            else
                *budget = 0;
        } else {
            int64_t n, want = st.size < (int64_t)sizeof buf ? st.size : (int64_t)sizeof buf;
            bad += failed(kvro_read(kv, key, 0, want, buf, &n, &e), &e, "read", key) || n != want;
        }
        free(d.v[i]);
    }
    free(d.v);
    return bad;
}

/* damage_in from the root of IO opened with O; -1 if it does not open or
 * the walk was cut short. */
static int damage(kvro_io *io, const kvro_options *o)
{
    kvro *kv = NULL;
    if (kvro_open_io(io, o, &kv, NULL) != KVRO_OK)
        return -1;
    int budget = 2000;
    int bad = damage_in(kv, "", 0, &budget);
    kvro_close(kv);
    return budget > 0 ? bad : -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *v = getenv("KVRO_FUZZ_VERBOSE");
    verbose = v && *v && strcmp(v, "0") != 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < SCRIPT_BYTES || size > MAX_IMAGE)
        return 0;
    const uint8_t *steer = data + size - SCRIPT_BYTES;
    static const int partitions[] = {0, 1};
    for (size_t p = 0; p < sizeof partitions / sizeof partitions[0]; p++) {
        unsigned char *img = malloc(size);
        FZ_CHECK(img != NULL);
        memcpy(img, data, size);
        kvro_io *io;
        FZ_CHECK(kvro_io_from_memory_rw(img, size, &io, NULL) == KVRO_OK);
        kvro_options o = {.backend = "fat", .partition = partitions[p]};
        int before = damage(io, &o);
        kvro_fs *fs = NULL;
        kvro_error e;
        fz_error_poison(&e);
        kvro_status s = kvro_fs_open_io(io, KVRO_FS_RDWR, &o, &fs, &e);
        check(s, &e);
        FZ_CHECK((s == KVRO_OK) == (fs != NULL));
        if (fs) {
            script(fs, steer);
            fz_error_poison(&e);
            check(kvro_fs_close(fs, &e), &e);
            /* What the writes left opens (it opened before them). */
            kvro *kv = NULL;
            fz_error_poison(&e);
            s = kvro_open_io(io, &o, &kv, &e);
            check(s, &e);
            FZ_CHECK(kv != NULL);
            kvro_close(kv);
            if (before == 0) {
                int after = damage(io, &o);
                if (after != 0 && after != -1)
                    fprintf(stderr,
                            "fuzz_fat_write: a sound image has %d errors after the writes\n",
                            after);
                FZ_CHECK(after == 0 || after == -1);
            }
        }
        kvro_io_close(io);
        free(img);
    }
    return 0;
}
