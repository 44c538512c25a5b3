/*
 * build_fat.c — mkkv fat SOURCE OUT: a deterministic FAT12/16/32 image of
 * any source, through the builder of kvro/fat.h (one pass: the library
 * lays the tree out and writes every byte; this file walks the source,
 * applies the link rules and feeds the files' bytes).
 *
 * The walk uses the public API only: kvro_list_info with KVRO_NOFOLLOW
 * per directory, so links are seen as links. FAT has no links, so, as
 * mkkv crunch does, a link that stays inside SOURCE is followed and
 * stored as a copy of what it leads to, and one that leads outside,
 * dangles or loops (a directory link back to a directory above it) is
 * left out with a warning naming it.
 *
 * Output: a temporary file beside OUT (outfile.c's, removed on failure
 * and by SIGINT/SIGTERM/SIGHUP), renamed over OUT once whole; with
 * --fsync, synced first (kvro_io_flush) and its directory after.
 */
#include "cli.h"
#include "outfile.h"

#include <kvro/fat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_SIZE = OPT_FIRST_CMD,
    OPT_FAT,
    OPT_LABEL,
    OPT_VOLID,
    OPT_CLUSTER,
    OPT_PTABLE,
    OPT_MTIME,
    OPT_SORT,
    OPT_FSYNC
};

/* Timestamps when neither --mtime nor SOURCE_DATE_EPOCH says: FAT's epoch. */
#define DEFAULT_MTIME 315532800       /* 1980-01-01 00:00:00 UTC */
#define DEFAULT_VOLUME_ID 0x4B56524Fu /* "KVRO" */

typedef struct fat_cli {
    kvro_fat_params p;
    bool has_mtime, has_volid;
    bool sort;  /* --sort=name: the sorted walk from any source */
    bool fsync; /* --fsync: OUT synced before and after the rename */
} fat_cli;

/* Directories' keys to their builder indexes, for a walk in storage order
 * (kvro_each), where an entry's directory may be anywhere before it. Open
 * addressing, at most half full. */
typedef struct dir_map {
    char **key;
    size_t *index;
    size_t n, cap;
} dir_map;

typedef struct walker {
    const char *source;
    kvro *kv;
    kvro_fat_builder *b;
    char **keys; /* by builder index: files' keys */
    size_t nkeys;
    uint64_t *ids; /* the directories on the way down (link loops) */
    size_t depth;
    kvro_error err;
    bool failed;
    int64_t files, bytes, total;
    progress_line p;
    int fd;         /* the temporary output file */
    bool fsync;     /* --fsync */
    int64_t synced; /* source bytes read when write-back was last started */
    bool each;      /* walking in storage order: directories go in DIRS */
    dir_map dirs;
} walker;

/* With --fsync, start write-back every so many bytes, so that the fsync
 * before the rename finds little left to do (as mkkv tar does). */
enum { WRITEBACK_EVERY = 8 << 20 };

static int fat_opt(int c, const char *arg, void *ctx)
{
    fat_cli *o = ctx;
    char *end;
    switch (c) {
    case OPT_SIZE:
        if (!parse_size(arg, &o->p.size) || o->p.size == 0)
            return usage_error(&cmd_fat, "--size: '%s' is not a byte count", arg);
        return -1;
    case OPT_FAT:
        if (strcmp(arg, "12") && strcmp(arg, "16") && strcmp(arg, "32"))
            return usage_error(&cmd_fat, "--fat: '%s': want 12, 16 or 32", arg);
        o->p.fat_type = atoi(arg);
        return -1;
    case OPT_LABEL: o->p.label = arg; return -1;
    case OPT_VOLID: {
        errno = 0;
        unsigned long long v = strtoull(arg, &end, 16);
        if (!*arg || *end || errno || v > 0xFFFFFFFFull || *arg == '-')
            return usage_error(&cmd_fat, "--volume-id: '%s': want up to 8 hex digits", arg);
        o->p.volume_id = (uint32_t)v;
        o->has_volid = true;
        return -1;
    }
    case OPT_CLUSTER: {
        int64_t v;
        if (!parse_size(arg, &v) || v < 512 || v > 32768 || (v & (v - 1)))
            return usage_error(&cmd_fat,
                               "--cluster-size: '%s': want a power of two from 512 to 32K", arg);
        o->p.cluster_size = (uint32_t)v;
        return -1;
    }
    case OPT_PTABLE:
        if (strcmp(arg, "none") && strcmp(arg, "mbr"))
            return usage_error(&cmd_fat, "--partition-table: '%s': want none or mbr", arg);
        o->p.mbr = !strcmp(arg, "mbr");
        return -1;
    case OPT_SORT:
        if (strcmp(arg, "name") && strcmp(arg, "none"))
            return usage_error(&cmd_fat, "--sort: '%s': want name or none", arg);
        o->sort = !strcmp(arg, "name");
        return -1;
    case OPT_FSYNC:
        o->fsync = true;
        return -1;
    case OPT_MTIME:
        errno = 0;
        o->p.mtime = strtoll(arg, &end, 10);
        if (!*arg || *end || errno || *arg == '-')
            return usage_error(&cmd_fat, "--mtime: '%s': want seconds since the epoch", arg);
        o->has_mtime = true;
        return -1;
    default: return usage_error(&cmd_fat, "unknown option");
    }
}

static void warn_key(walker *w, const char *key, const char *why)
{
    progress_done(&w->p);
    fprintf(stderr, "mkkv: warning: %s: ", quoted(source_name(w->source)));
    fprintf(stderr, "%s: %s\n", quoted(key), why);
}

static int walk_dir(walker *w, const char *dir, size_t parent);

static size_t key_hash(const char *k)
{
    size_t h = 14695981039346656037u;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211u;
    return h;
}

/* The index of directory KEY, or (size_t)-1 if it was not added. */
static size_t dir_find(const dir_map *m, const char *key)
{
    if (!*key)
        return KVRO_FAT_ROOT;
    for (size_t i = m->cap ? key_hash(key) & (m->cap - 1) : 0; m->cap && m->key[i];
         i = (i + 1) & (m->cap - 1))
        if (!strcmp(m->key[i], key))
            return m->index[i];
    return (size_t)-1;
}

/* Adds directory KEY (taken over) at INDEX; false if out of memory. */
static bool dir_add(dir_map *m, char *key, size_t index)
{
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 256;
        char **k = calloc(cap, sizeof *k);
        size_t *x = malloc(cap * sizeof *x);
        if (!k || !x) {
            free(k), free(x);
            return false;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i]) {
                size_t j = key_hash(m->key[i]) & (cap - 1);
                while (k[j])
                    j = (j + 1) & (cap - 1);
                k[j] = m->key[i], x[j] = m->index[i];
            }
        free(m->key), free(m->index);
        m->key = k, m->index = x, m->cap = cap;
    }
    size_t j = key_hash(key) & (m->cap - 1);
    while (m->key[j])
        j = (j + 1) & (m->cap - 1);
    m->key[j] = key, m->index[j] = index;
    m->n++;
    return true;
}

static void dir_map_free(dir_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->key[i]);
    free(m->key), free(m->index);
}

typedef struct dir_ctx {
    walker *w;
    const char *dir;
    size_t parent;
} dir_ctx;

static bool fail(walker *w, kvro_status s, const char *key)
{
    kvro_error_context(&w->err, s, source_name(w->source), key);
    w->failed = true;
    return true;
}

static int walk_entry(void *arg, const char *name, kvro_status s, const kvro_info *info)
{
    dir_ctx *d = arg;
    walker *w = d->w;
    char *key = key_join(d->dir, name);
    if (!key)
        return fail(w, kvro_error_set(&w->err, KVRO_E_NOMEM, "out of memory"), d->dir);
    kvro_info st;
    if (s != KVRO_OK) {
        warn_key(w, key, kvro_status_str(s));
        free(key);
        return 0;
    }
    st = *info;
    kvro_error e;
    if (st.kind == KVRO_KIND_LINK && kvro_stat(w->kv, key, &st, &e) != KVRO_OK) {
        warn_key(w, key,
                 "a symbolic link that leads outside the source, loops or dangles: "
                 "left out (FAT has no links)");
        free(key);
        return 0;
    }
    if (st.kind == KVRO_KIND_DIR && st.id)
        for (size_t i = 0; i < w->depth; i++)
            if (w->ids[i] == st.id) {
                warn_key(w, key,
                         "a symbolic link to a directory above it: left out (FAT has "
                         "no links)");
                free(key);
                return 0;
            }
    size_t index;
    kvro_kind kind = st.kind == KVRO_KIND_DIR ? KVRO_KIND_DIR : KVRO_KIND_FILE;
    if (kvro_fat_builder_add(w->b, d->parent, name, kind, st.size, &index, &w->err) != KVRO_OK) {
        fail(w, w->err.status, key);
        free(key);
        return 1;
    }
    if (index >= w->nkeys) {
        size_t n = w->nkeys ? 2 * w->nkeys : 1024;
        while (n <= index)
            n *= 2;
        char **k = realloc(w->keys, n * sizeof *k);
        if (!k) {
            free(key);
            return fail(w, kvro_error_set(&w->err, KVRO_E_NOMEM, "out of memory"), d->dir);
        }
        memset(k + w->nkeys, 0, (n - w->nkeys) * sizeof *k);
        w->keys = k, w->nkeys = n;
    }
    if (kind == KVRO_KIND_FILE) {
        w->keys[index] = key;
        w->total += st.size;
        return 0;
    }
    if (w->each && info->kind == KVRO_KIND_DIR) {
        /* Its contents come later in the same walk, under this index. */
        if (!dir_add(&w->dirs, key, index)) {
            free(key);
            return fail(w, kvro_error_set(&w->err, KVRO_E_NOMEM, "out of memory"), d->dir);
        }
        return 0;
    }
    /* A directory of the sorted walk, or one a link leads to: its listing
     * now, sorted, all the way down. */
    bool each = w->each;
    w->each = false;
    w->ids[w->depth++] = st.id;
    int r = walk_dir(w, key, index);
    w->depth--;
    w->each = each;
    free(key);
    return r;
}

/* kvro_each's callback: KEY under the directory added for its parent. A
 * link to a directory is walked through (walk_dir, sorted), with the
 * identities of the directories above it for the loop check. */
static int each_entry(void *arg, const char *key, kvro_status s, const kvro_info *info)
{
    walker *w = arg;
    const char *slash = strrchr(key, '/');
    char *dir = slash ? strndup(key, (size_t)(slash - key)) : strdup("");
    if (!dir)
        return fail(w, kvro_error_set(&w->err, KVRO_E_NOMEM, "out of memory"), key);
    size_t parent = dir_find(&w->dirs, dir);
    int r = 0;
    if (parent == (size_t)-1) {
        warn_key(w, key, "its directory was left out: left out");
    } else {
        w->depth = 1; /* the root's */
        if (s == KVRO_OK && info->kind == KVRO_KIND_LINK)
            for (const char *c = key; (c = strchr(c, '/')) != NULL && w->depth < KVRO_KEY_MAX / 2;
                 c++) {
                char *up = strndup(key, (size_t)(c - key));
                kvro_info st;
                if (up && kvro_stat(w->kv, up, &st, NULL) == KVRO_OK)
                    w->ids[w->depth++] = st.id;
                free(up);
            }
        dir_ctx d = {w, dir, parent};
        r = walk_entry(&d, slash ? slash + 1 : key, s, info);
    }
    free(dir);
    return r;
}

static int walk_dir(walker *w, const char *dir, size_t parent)
{
    if (w->depth >= KVRO_KEY_MAX / 2) {
        warn_key(w, dir, "too deep: left out");
        return 0;
    }
    dir_ctx d = {w, dir, parent};
    kvro_error e;
    if (kvro_list_info(w->kv, dir, KVRO_NOFOLLOW, walk_entry, &d, &e) != KVRO_OK && !w->failed) {
        w->err = e;
        w->failed = true;
    }
    return w->failed;
}

static kvro_status read_file(void *arg, size_t index, int64_t off, void *buf, size_t n,
                             kvro_error *err)
{
    walker *w = arg;
    const char *key = w->keys[index];
    int64_t got = 0;
    kvro_status s = kvro_read(w->kv, key, off, (int64_t)n, buf, &got, err);
    if (s == KVRO_OK && got != (int64_t)n)
        s = kvro_error_set(err, KVRO_E_IO, "shrank while being read");
    if (s != KVRO_OK)
        return kvro_error_context(err, s, source_name(w->source), key);
    w->bytes += got;
    if (off == 0)
        w->files++;
    if (w->fsync && w->bytes - w->synced >= WRITEBACK_EVERY) {
        /* Only an advice: a failure is harmless. */
        sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        w->synced = w->bytes;
    }
    progress_update(&w->p, w->files, w->bytes, w->total);
    return KVRO_OK;
}

/* Writes the laid-out image to OUT through a temporary file. */
static int write_out(walker *w, const char *out)
{
    tmp_signals(true);
    FILE *f = tmp_create(0, out);
    if (!f) {
        tmp_signals(false);
        return EXIT_FAIL;
    }
    kvro_io *io = NULL;
    kvro_error err;
    w->fd = fileno(f);
    kvro_status s = kvro_io_from_fd(w->fd, KVRO_IO_RDWR, &io, &err);
    if (s == KVRO_OK)
        s = kvro_fat_builder_write(w->b, io, read_file, w, &err);
    if (s == KVRO_OK && w->fsync)
        s = kvro_io_flush(io, &err);
    kvro_io_close(io);
    progress_done(&w->p);
    int rc = EXIT_OK;
    if (s != KVRO_OK) {
        kvro_error_context(&err, s, out, NULL);
        rc = report(&err);
        fclose(f);
    } else if (!tmp_finish(0, f, out, false) || !tmp_commit(0, out, w->fsync)) {
        rc = EXIT_FAIL;
    }
    tmp_drop(0);
    tmp_signals(false);
    return rc;
}

static int fat_run(int argc, char **argv)
{
    static const struct option longs[] = {COMMON_LONG_OPTIONS,
                                          {"size", required_argument, 0, OPT_SIZE},
                                          {"fat", required_argument, 0, OPT_FAT},
                                          {"label", required_argument, 0, OPT_LABEL},
                                          {"volume-id", required_argument, 0, OPT_VOLID},
                                          {"cluster-size", required_argument, 0, OPT_CLUSTER},
                                          {"partition-table", required_argument, 0, OPT_PTABLE},
                                          {"mtime", required_argument, 0, OPT_MTIME},
                                          {"sort", required_argument, 0, OPT_SORT},
                                          {"fsync", no_argument, 0, OPT_FSYNC},
                                          {0, 0, 0, 0}};
    common_opts co = {0};
    fat_cli o = {0};
    int rc = parse_args(&cmd_fat, argc, argv, COMMON_SHORT_OPTIONS, longs, &co, fat_opt, &o);
    if (rc >= 0)
        return rc;
    if (argc - optind != 2)
        return usage_error(&cmd_fat, "expects SOURCE OUT");
    const char *source = argv[optind], *out = argv[optind + 1];
    if (!strcmp(out, "-"))
        return usage_error(&cmd_fat, "OUT must be a file (an image is written in place)");
    const char *env = getenv("SOURCE_DATE_EPOCH");
    if (env && *env) {
        char *end;
        errno = 0;
        long long v = strtoll(env, &end, 10);
        if (*end || errno || v < 0)
            return usage_error(&cmd_fat, "invalid SOURCE_DATE_EPOCH '%s'", env);
        if (!o.has_mtime)
            o.p.mtime = v;
        if (!o.has_volid)
            o.p.volume_id = (uint32_t)v;
        o.has_mtime = o.has_volid = true;
    }
    if (!o.has_mtime)
        o.p.mtime = DEFAULT_MTIME;
    if (!o.has_volid)
        o.p.volume_id = DEFAULT_VOLUME_ID;
    walker w = {.source = source, .fsync = o.fsync};
    if ((rc = open_source(source, &co, &w.kv)) != EXIT_OK)
        return rc;
    kvro_status s = kvro_fat_builder_new(&o.p, &w.b, &w.err);
    if (s != KVRO_OK) {
        kvro_close(w.kv);
        return usage_error(&cmd_fat, "%s", w.err.detail);
    }
    w.ids = malloc((KVRO_KEY_MAX / 2 + 1) * sizeof *w.ids);
    progress_start(&w.p, "fat", co.quiet);
    kvro_info root;
    if (!w.ids) {
        rc = EXIT_FAIL;
        fprintf(stderr, "mkkv: out of memory\n");
    } else {
        w.ids[w.depth++] = kvro_stat(w.kv, "", &root, NULL) == KVRO_OK ? root.id : 0;
        /* Storage order (a .tar.gz inflated once) unless --sort=name; the
         * image's directories are sorted either way, only where the files'
         * bytes lie follows the walk. */
        kvro_error e;
        if (o.sort) {
            walk_dir(&w, "", KVRO_FAT_ROOT);
        } else {
            w.each = true;
            if (kvro_each(w.kv, each_entry, &w, &e) != KVRO_OK && !w.failed)
                w.err = e, w.failed = true;
        }
        int64_t size = 0;
        if (w.failed) {
            progress_done(&w.p);
            rc = report(&w.err);
        } else if ((s = kvro_fat_builder_layout(w.b, &size, &w.err)) != KVRO_OK) {
            progress_done(&w.p);
            kvro_error_context(&w.err, s, source_name(source), NULL);
            rc = report(&w.err);
        } else {
            rc = write_out(&w, out);
        }
    }
    for (size_t i = 0; i < w.nkeys; i++)
        free(w.keys[i]);
    free(w.keys);
    free(w.ids);
    dir_map_free(&w.dirs);
    kvro_fat_builder_free(w.b);
    kvro_close(w.kv);
    return rc;
}

const command cmd_fat = {
    "fat",
    fat_run,
    "build a deterministic FAT12/16/32 image of a source",
    "Usage: mkkv fat [--size N] [--fat 12|16|32] [--cluster-size N] [--label NAME]\n"
    "                [--volume-id HEX] [--mtime EPOCH] [--partition-table none|mbr]\n"
    "                [--sort name|none] [--fsync] [-q] [-t TYPE] SOURCE OUT\n"
    "Write the tree of SOURCE (a directory, a tar, a .tar.gz, a FAT image: any\n"
    "source mkkv reads) as a FAT image OUT, in one pass: every file contiguous,\n"
    "the FATs and directories written once. Long names are VFAT long names with\n"
    "8.3 short names made as Linux makes them (~1 tails); a name that is all\n"
    "lower or upper case 8.3 is stored as a short name with the NT case flags.\n"
    "\n"
    "Without --size the image is the smallest (in 64 KiB steps) that holds the\n"
    "tree with 1/16 of its size and 64 KiB more free. The FAT type and cluster\n"
    "size are mkfs.fat's defaults for the size (FAT32 from 512 MiB, else FAT12\n"
    "or FAT16 by cluster count with 2 KiB clusters, doubled while too many);\n"
    "--fat and --cluster-size force them, and a combination that cannot be (a\n"
    "FAT12 of 5000 clusters, a FAT32 with fewer than 65525) is refused saying\n"
    "why.\n"
    "\n"
    "The image is deterministic: entries sorted by name, every timestamp from\n"
    "--mtime, else $SOURCE_DATE_EPOCH, else 1980-01-01 00:00:00; the volume id\n"
    "from --volume-id, else $SOURCE_DATE_EPOCH, else 4B56524F. Two builds of the\n"
    "same tree are the same bytes, whatever order the host lists it in. From an\n"
    "archive, the files' bytes lie in the archive's order (it is read once,\n"
    "front to back: a large .tar.gz is not inflated again per file) unless\n"
    "--sort=name; the directories are sorted either way.\n"
    "\n"
    "FAT has no links: a symbolic link that stays inside SOURCE is stored as a\n"
    "copy of what it leads to; one that leads outside, dangles or loops is left\n"
    "out with a warning naming it (as mkkv crunch does). A name FAT cannot hold\n"
    "(* ? < > | \" : \\, control characters, a trailing dot or space), two names\n"
    "that differ only in case, or a file of 4 GiB or more is an error naming the\n"
    "key, and nothing is written.\n"
    "\n"
    "OUT is written to a temporary file beside it and renamed over OUT when\n"
    "complete: after an error or SIGINT/SIGTERM/SIGHUP, OUT is as it was.\n"
    "\n"
    "      --size N          the volume's size (a multiple of 512)\n"
    "      --fat 12|16|32    the FAT type\n"
    "      --cluster-size N  bytes per cluster: 512, 1K, ... 32K\n"
    "      --label NAME      the volume label (11 characters at most)\n"
    "      --volume-id HEX   the volume serial number (8 hex digits)\n"
    "      --mtime EPOCH     every entry's time, seconds since 1970-01-01 UTC\n"
    "      --partition-table none|mbr\n"
    "                        mbr: a disk image with the volume in partition 1,\n"
    "                        at 1 MiB (default: none, a bare volume)\n"
    "      --sort=name|none  name: the files' bytes in name order from any\n"
    "                        source, as from a directory; none (default): an\n"
    "                        archive's own order\n" FSYNC_HELP COMMON_HELP SOURCE_HELP "\n"
    "A progress line is shown when standard error is a terminal, unless -q.\n",
};
