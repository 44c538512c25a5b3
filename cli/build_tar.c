/*
 * build_tar.c — mkkv tar SOURCE OUT: a deterministic tar (or tar.gz) of any
 * source, written with libarchive.
 *
 * Format: libarchive's "restricted pax" (POSIX.1-2001 pax interchange, as
 * archive_write_set_format_pax_restricted writes it): a plain ustar header
 * when a member fits one, a pax 'x' header before it only for what ustar can
 * not hold (a long or non-ASCII path or link, a size of 8 GiB or more). In
 * that mode libarchive writes no atime/ctime records (they are full-pax
 * only) and names the 'x' headers "PaxHeader/NAME" without a PID, so the
 * bytes depend only on what we put in each entry, and we put in only the
 * normalised fields below. Its gzip filter stores the current time unless
 * told "!timestamp", and never a file name. Its xz, zstd and bzip2 filters
 * store no time or name at all; xz and zstd are kept single-threaded (a
 * multi-threaded xz cuts the stream into blocks, and a multi-threaded zstd
 * lays out its frame differently), so the bytes do not depend on the
 * machine, and each must be the library's own (ARCHIVE_OK), not the
 * external program libarchive falls back to (ARCHIVE_WARN).
 *
 * Output goes to a mkstemp file next to OUT, renamed over OUT once whole
 * (synced first with --fsync: outfile.h says why not by default), so OUT
 * is either the old file or the new archive, never a part; a signal
 * handler removes the temporary file on SIGINT/SIGTERM/SIGHUP.
 */
#include "cli.h"
#include "libarchive.h"
#include "outfile.h"
#include "tree.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Large reads: one syscall per MiB of a big file, one per small file. */
enum { READ_BUF = 1 << 20 };
/* GNU tar's record is 20 blocks of 512 bytes; like tar we pad the archive
 * to a whole record, but hand the kernel 32 records per write. */
enum { RECORD = 20 * 512, WRITE_BLOCK = 32 * RECORD };
/* With --fsync, start write-back every so many bytes, so that the fsync
 * before the rename finds little left to do instead of the whole archive. */
enum { WRITEBACK_EVERY = 8 << 20 };

enum { OPT_MTIME = OPT_FIRST_CMD, OPT_ZSTD, OPT_SORT, OPT_FSYNC };

typedef enum compression { COMP_NONE, COMP_GZIP, COMP_XZ, COMP_ZSTD, COMP_BZIP2 } compression;

static const char *const comp_name[] = {"none", "gzip", "xz", "zstd", "bzip2"};
static const char *const comp_flag[] = {"", "-z", "-J", "--zstd", "-j"};

typedef struct tar_opts {
    compression comp; /* what to write */
    bool comp_flag;   /* comp was asked for by a flag */
    bool has_mtime;
    int64_t mtime;
    bool follow; /* -L: links followed (inside SOURCE), stored as what they lead to */
    bool sort;   /* --sort=name: sorted from an archive too (tree.h's TREE_SORTED) */
    bool fsync;  /* --fsync: OUT synced before and after the rename */
} tar_opts;

/* A file with hard links (nlink > 1) met already: its identity and the
 * path it was stored under, which its later names link to. */
typedef struct hl_slot {
    uint64_t id[2];
    char *path;
} hl_slot;

typedef struct build {
    const char *source, *out;
    const tar_opts *o;
    tree *t;
    struct archive *a;
    struct archive_entry *ae;
    char *buf;
    int fd;
    kvro_io *sink; /* FD, written through the library's one write loop */
    bool tmp;      /* writing to a temporary file (outfile.h's slot 0), not stdout */
    int64_t written, flushed;
    progress_line p;
    int64_t files, bytes;
    hl_slot *hl; /* open addressing, hl_cap a power of two, never full */
    size_t hl_n, hl_cap;
} build;

/* ------------------------------------------------------------- options */

/* A whole number of seconds since the epoch, as `date +%s` prints it. */
static bool parse_epoch(const char *s, int64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static int tar_opt(int c, const char *arg, void *ctx)
{
    tar_opts *o = ctx;
    compression want = c == 'z'        ? COMP_GZIP
                       : c == 'J'      ? COMP_XZ
                       : c == OPT_ZSTD ? COMP_ZSTD
                       : c == 'j'      ? COMP_BZIP2
                                       : COMP_NONE;
    if (want != COMP_NONE) {
        if (o->comp_flag && o->comp != want)
            return usage_error(&cmd_tar, "%s and %s ask for two compressions: choose one",
                               comp_flag[o->comp], comp_flag[want]);
        o->comp = want;
        o->comp_flag = true;
        return -1;
    }
    if (c == 'L') {
        o->follow = true;
        return -1;
    }
    if (c == OPT_FSYNC) {
        o->fsync = true;
        return -1;
    }
    if (c == OPT_SORT) {
        if (strcmp(arg, "name") && strcmp(arg, "none"))
            return usage_error(&cmd_tar, "--sort: '%s': want name or none", arg);
        o->sort = !strcmp(arg, "name");
        return -1;
    }
    if (c == OPT_MTIME) {
        if (!parse_epoch(arg, &o->mtime))
            return usage_error(&cmd_tar,
                               "invalid --mtime '%s': want whole seconds since the "
                               "epoch (1970-01-01 UTC), e.g. 1700000000",
                               arg);
        o->has_mtime = true;
        return -1;
    }
    return usage_error(&cmd_tar, "unknown option");
}

/* OUT's suffix, as GNU tar reads it (the last one of the file name):
 * 1 with *C set for a compression mkkv writes, 0 for none (".tar", no
 * suffix, anything else), -1 for one it does not write (a name that would
 * lie about the bytes under it); *EXT is the suffix. */
static int suffix_compression(const char *out, compression *c, const char **ext)
{
    static const struct {
        const char *ext;
        compression c;
    } known[] = {{"gz", COMP_GZIP},   {"tgz", COMP_GZIP},   {"xz", COMP_XZ},
                 {"txz", COMP_XZ},    {"zst", COMP_ZSTD},   {"tzst", COMP_ZSTD},
                 {"bz2", COMP_BZIP2}, {"tbz2", COMP_BZIP2}, {"tbz", COMP_BZIP2}};
    /* Other compressors and archive formats GNU tar, bsdtar or 7-Zip name
     * so; ".z" (pack, or an old gzip) is not among them. */
    static const char *const unknown[] = {"Z",   "taZ", "lz", "tlz", "lzma", "lzo", "tzo",
                                          "lz4", "br",  "sz", "7z",  "zip",  "rar"};
    const char *slash = strrchr(out, '/');
    const char *base = slash ? slash + 1 : out;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base)
        return 0;
    *ext = dot + 1;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(*ext, known[i].ext)) {
            *c = known[i].c;
            return 1;
        }
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++)
        if (!strcmp(*ext, unknown[i]))
            return -1;
    return 0;
}

/* Settles O->comp from the flags and OUT's suffix; an exit code if they
 * disagree or the suffix names what mkkv does not write, else -1. */
static int choose_compression(tar_opts *o, const char *out)
{
    if (!strcmp(out, "-"))
        return -1;
    compression by_name = COMP_NONE;
    const char *ext = NULL;
    int r = suffix_compression(out, &by_name, &ext);
    if (r < 0)
        return usage_error(&cmd_tar,
                           "OUT '%s': mkkv tar does not write .%s; it writes .tar, .tar.gz "
                           "(.tgz), .tar.xz (.txz), .tar.zst (.tzst) and .tar.bz2 (.tbz2)",
                           out, ext);
    if (r > 0 && o->comp_flag && o->comp != by_name)
        return usage_error(&cmd_tar, "%s asks for %s, but OUT '%s' names %s", comp_flag[o->comp],
                           comp_name[o->comp], out, comp_name[by_name]);
    if (r > 0)
        o->comp = by_name;
    return -1;
}

/* ------------------------------------------------- temporary output file */

static int out_error(build *b, const char *what)
{
    progress_done(&b->p);
    fprintf(stderr, "mkkv: %s: %s: %s\n", quoted(b->out), what, strerror(errno));
    return EXIT_FAIL;
}

/* Whether real path P is ROOT or under it (ROOT "/" holds everything). */
static bool inside(const char *root, const char *p)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return true;
    return !strncmp(p, root, n) && (p[n] == '/' || p[n] == '\0');
}

/* Creates the temporary file beside OUT, after refusing an OUT that lies
 * inside SOURCE (or is SOURCE). */
static int out_open(build *b)
{
    if (!strcmp(b->out, "-")) {
        if (isatty(STDOUT_FILENO))
            return usage_error(&cmd_tar, "refusing to write an archive to a terminal");
        b->fd = STDOUT_FILENO;
        return EXIT_OK;
    }
    struct stat st;
    bool out_exists = stat(b->out, &st) == 0;
    if (out_exists && S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        return out_error(b, "cannot replace");
    }
    /* The same file by another name, a hard link or a symbolic link:
     * compared by identity, not by name. */
    dev_t sdev;
    ino_t sino;
    if (out_exists && tree_source_id(b->t, &sdev, &sino) && st.st_dev == sdev &&
        st.st_ino == sino)
        return usage_error(&cmd_tar,
                           "OUT '%s' is the same file as SOURCE '%s' (device %llu, inode "
                           "%llu): it would replace what it is read from",
                           b->out, source_name(b->source), (unsigned long long)sdev,
                           (unsigned long long)sino);
    const char *slash = strrchr(b->out, '/');
    const char *base = slash ? slash + 1 : b->out;
    char *dir = slash ? strndup(b->out, (size_t)(slash - b->out) + (slash == b->out)) : strdup(".");
    char *real = dir ? realpath(dir, NULL) : NULL;
    int rc = EXIT_OK;
    if (!*base) {
        errno = EISDIR;
        rc = out_error(b, "cannot replace");
    } else if (!real) {
        rc = out_error(b, "cannot reach its directory");
    } else {
        char *out_real = NULL;
        if (asprintf(&out_real, "%s/%s", strcmp(real, "/") ? real : "", base) < 0) {
            out_real = NULL;
            rc = out_error(b, "out of memory");
        } else if (tree_real_path(b->t) && inside(tree_real_path(b->t), out_real)) {
            rc = usage_error(&cmd_tar,
                             "OUT '%s' is inside SOURCE '%s' (%s): it would be "
                             "archived into itself",
                             b->out, b->source, tree_real_path(b->t));
        }
        free(out_real);
    }
    if (rc == EXIT_OK) {
        tmp_signals(true);
        b->fd = tmp_open(0, b->out);
        b->tmp = b->fd >= 0;
        if (!b->tmp) {
            rc = out_error(b, "cannot create a temporary file beside it");
            tmp_signals(false);
        }
    }
    free(dir);
    free(real);
    return rc;
}

/* Gives the temporary file the mode a new file gets and renames it over
 * OUT; with --fsync, durably (the file synced before, its directory after). */
static int out_commit(build *b)
{
    if (!b->tmp)
        return EXIT_OK;
    int rc = EXIT_OK;
    if (!tmp_close(b->fd, b->o->fsync))
        rc = out_error(b, "cannot write");
    b->fd = -1;
    if (rc == EXIT_OK && !tmp_rename(0, b->out, b->o->fsync))
        rc = out_error(b, "cannot rename the temporary file over it");
    tmp_drop(0);
    tmp_signals(false);
    b->tmp = false;
    return rc;
}

static void out_abort(build *b)
{
    if (!b->tmp)
        return;
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    tmp_drop(0);
    tmp_signals(false);
    b->tmp = false;
}

/* ------------------------------------------------------------- writing */

static const libarchive *la; /* loaded by archive_setup */

static int archive_fail(build *b)
{
    progress_done(&b->p);
    int e = la->archive_errno(b->a);
    const char *msg = la->archive_error_string(b->a);
    fprintf(stderr, "mkkv: %s: %s%s%s\n", quoted(b->out), msg ? quoted(msg) : "cannot write",
            e > 0 ? ": " : "", e > 0 ? strerror(e) : "");
    return EXIT_FAIL;
}

static int source_fail(build *b, const kvro_error *err)
{
    progress_done(&b->p);
    return report(err);
}

/* libarchive's output: whole blocks of WRITE_BLOCK bytes (the last one
 * shorter) to OUT's descriptor. */
static la_ssize_t out_write(struct archive *a, void *arg, const void *buf, size_t n)
{
    build *b = arg;
    kvro_error err;
    kvro_status s = kvro_io_write(b->sink, b->written, buf, n, &err);
    if (s != KVRO_OK) {
        la->archive_set_error(a, kvro_status_to_errno(s), "%s", err.detail);
        return -1;
    }
    b->written += (int64_t)n;
    if (b->tmp && b->o->fsync && b->written - b->flushed >= WRITEBACK_EVERY) {
        /* Only starts the write-back (an advice: a failure is harmless). */
        sync_file_range(b->fd, b->flushed, b->written - b->flushed, SYNC_FILE_RANGE_WRITE);
        b->flushed = b->written;
    }
    return (la_ssize_t)n;
}

static int archive_setup(build *b)
{
    char why[256];
    if (!(la = libarchive_load(why, sizeof why))) {
        fprintf(stderr, "mkkv: tar: %s\n", why);
        return EXIT_FAIL;
    }
    if (!(b->a = la->archive_write_new()) || !(b->ae = la->archive_entry_new())) {
        fprintf(stderr, "mkkv: out of memory\n");
        return EXIT_FAIL;
    }
    struct archive *a = b->a;
    compression c = b->o->comp;
    /* A compressed stream is not padded (gzip readers see trailing zeros
     * as junk); a plain archive is, to a whole record, like GNU tar's. */
    if (la->archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        la->archive_write_set_bytes_per_block(a, WRITE_BLOCK) != ARCHIVE_OK ||
        la->archive_write_set_bytes_in_last_block(a, c != COMP_NONE ? 1 : RECORD) != ARCHIVE_OK)
        return archive_fail(b);
    int r = ARCHIVE_OK;
    switch (c) {
    case COMP_NONE:
        break;
    case COMP_GZIP: /* "!timestamp": MTIME 0 in the gzip header */
        if ((r = la->archive_write_add_filter_gzip(a)) == ARCHIVE_OK)
            r = la->archive_write_set_filter_option(a, "gzip", "timestamp", NULL);
        break;
    case COMP_XZ:
        if ((r = la->archive_write_add_filter_xz(a)) == ARCHIVE_OK)
            r = la->archive_write_set_filter_option(a, "xz", "threads", "1");
        break;
    case COMP_ZSTD:
        if ((r = la->archive_write_add_filter_zstd(a)) == ARCHIVE_OK)
            r = la->archive_write_set_filter_option(a, "zstd", "threads", "0");
        break;
    case COMP_BZIP2:
        r = la->archive_write_add_filter_bzip2(a);
        break;
    }
    if (r != ARCHIVE_OK) {
        progress_done(&b->p);
        const char *msg = la->archive_error_string(a);
        fprintf(stderr, "mkkv: %s: cannot write %s with this libarchive%s%s\n", quoted(b->out),
                comp_name[c], msg ? ": " : "", msg ? quoted(msg) : "");
        return EXIT_FAIL;
    }
    if (la->archive_write_open(a, b, NULL, out_write, NULL) != ARCHIVE_OK)
        return archive_fail(b);
    la->archive_entry_set_uid(b->ae, 0);
    la->archive_entry_set_gid(b->ae, 0);
    return EXIT_OK;
}

/* ------------------------------------------------------------ hard links */

static size_t hl_hash(const uint64_t id[2])
{
    uint64_t h = (id[0] * 0x9E3779B97F4A7C15ull) ^ id[1];
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return (size_t)(h ^ (h >> 32));
}

static hl_slot *hl_slot_of(hl_slot *v, size_t cap, const uint64_t id[2])
{
    size_t i = hl_hash(id) & (cap - 1);
    while (v[i].path && (v[i].id[0] != id[0] || v[i].id[1] != id[1]))
        i = (i + 1) & (cap - 1);
    return &v[i];
}

/* For E, a name of a file with other names (same id, nlink > 1, as GNU
 * tar reads st_ino and st_nlink): *FIRST is NULL for the first name met
 * in the sorted walk, which is stored as the file and remembered, else
 * that name, which E is stored as a hard link to. false if out of memory. */
static bool hl_check(build *b, const tree_entry *e, const char **first)
{
    *first = NULL;
    if (e->nlink < 2 || e->kind == TREE_DIR || !(e->id[0] | e->id[1]))
        return true;
    if (2 * (b->hl_n + 1) > b->hl_cap) {
        size_t cap = b->hl_cap ? 2 * b->hl_cap : 64;
        hl_slot *v = calloc(cap, sizeof *v);
        if (!v)
            return false;
        for (size_t i = 0; i < b->hl_cap; i++)
            if (b->hl[i].path)
                *hl_slot_of(v, cap, b->hl[i].id) = b->hl[i];
        free(b->hl);
        b->hl = v;
        b->hl_cap = cap;
    }
    hl_slot *sl = hl_slot_of(b->hl, b->hl_cap, e->id);
    if (sl->path) {
        *first = sl->path;
        return true;
    }
    if (!(sl->path = strdup(e->path)))
        return false;
    sl->id[0] = e->id[0];
    sl->id[1] = e->id[1];
    b->hl_n++;
    return true;
}

static void hl_free(build *b)
{
    for (size_t i = 0; i < b->hl_cap; i++)
        free(b->hl[i].path);
    free(b->hl);
}

/* ------------------------------------------------------------- headers */

/* The normalised header of E (a hard link to FIRST if FIRST). The entry is
 * reused from member to member (its string buffers are), so every field is
 * set each time. */
static int put_header(build *b, const tree_entry *e, const char *first)
{
    struct archive_entry *ae = b->ae;
    unsigned mode = e->kind == TREE_DIR               ? 0755
                    : e->kind == TREE_SYMLINK         ? 0777
                    : e->has_mode && (e->mode & 0111) ? 0755
                                                      : 0644;
    la->archive_entry_copy_pathname(ae, e->path);
    la->archive_entry_set_filetype(ae, e->kind == TREE_DIR       ? AE_IFDIR
                                   : e->kind == TREE_SYMLINK ? AE_IFLNK
                                                             : AE_IFREG);
    la->archive_entry_set_perm(ae, mode);
    /* A hard link has no data of its own: it is FIRST's. */
    la->archive_entry_set_size(ae, e->kind == TREE_FILE && !first ? e->size : 0);
    la->archive_entry_copy_hardlink(ae, NULL);
    la->archive_entry_copy_symlink(ae, e->kind == TREE_SYMLINK && !first ? e->link : NULL);
    la->archive_entry_copy_hardlink(ae, first);
    /* Whole seconds: a fraction would need a pax record, and only for some
     * members, depending on their names. */
    la->archive_entry_set_mtime(ae, b->o->has_mtime ? b->o->mtime : e->mtime, 0);
    /* ARCHIVE_WARN: a name that is not UTF-8 is stored as bytes, with a pax
     * "hdrcharset=BINARY" record; that is the right thing for it. */
    if (la->archive_write_header(b->a, ae) < ARCHIVE_WARN)
        return archive_fail(b);
    return EXIT_OK;
}

static int put_data(build *b, const tree_entry *e)
{
    kvro_error err;
    for (int64_t off = 0; off < e->size;) {
        int64_t left = e->size - off;
        /* One byte more than is left: a file that grew shows at no cost. */
        size_t want = left < READ_BUF ? (size_t)left + 1 : READ_BUF, n;
        if (tree_read(b->t, off, b->buf, want, &n, &err) < 0)
            return source_fail(b, &err);
        if (n == 0 || (int64_t)n > left) {
            progress_done(&b->p);
            fprintf(stderr, "mkkv: %s: %s: %s while being read (%lld bytes when it was met)\n",
                    quoted(b->source), quoted(e->path), n ? "grew" : "shrank",
                    (long long)e->size);
            return EXIT_FAIL;
        }
        la_ssize_t w = la->archive_write_data(b->a, b->buf, n);
        if (w < 0 || (size_t)w != n)
            return archive_fail(b);
        off += (int64_t)n;
        b->bytes += (int64_t)n;
        progress_update(&b->p, b->files, b->bytes, 0);
    }
    return EXIT_OK;
}

static int build_all(build *b, bool quiet)
{
    int rc = archive_setup(b);
    if (rc != EXIT_OK)
        return rc;
    if (!(b->buf = malloc(READ_BUF))) {
        fprintf(stderr, "mkkv: out of memory\n");
        return EXIT_FAIL;
    }
    progress_start(&b->p, "tar", quiet);
    tree_entry e;
    kvro_error err;
    int r;
    while ((r = tree_next(b->t, &e, &err)) > 0) {
        const char *first;
        if (!hl_check(b, &e, &first)) {
            progress_done(&b->p);
            fprintf(stderr, "mkkv: out of memory\n");
            return EXIT_FAIL;
        }
        if ((rc = put_header(b, &e, first)) != EXIT_OK ||
            (e.kind == TREE_FILE && !first && (rc = put_data(b, &e)) != EXIT_OK))
            return rc;
        b->files++;
        progress_update(&b->p, b->files, b->bytes, 0);
    }
    if (r < 0)
        return source_fail(b, &err);
    if (la->archive_write_close(b->a) != ARCHIVE_OK)
        return archive_fail(b);
    progress_done(&b->p);
    return EXIT_OK;
}

/* Prints warnings below the progress line, not across it. */
static void warn_clear(void *arg, const kvro_error *w)
{
    progress_done(arg);
    print_error(w);
}

static int tar_run(int argc, char **argv)
{
    static const struct option longs[] = {COMMON_LONG_OPTIONS,
                                          {"gzip", no_argument, 0, 'z'},
                                          {"xz", no_argument, 0, 'J'},
                                          {"zstd", no_argument, 0, OPT_ZSTD},
                                          {"bzip2", no_argument, 0, 'j'},
                                          {"mtime", required_argument, 0, OPT_MTIME},
                                          {"dereference", no_argument, 0, 'L'},
                                          {"sort", required_argument, 0, OPT_SORT},
                                          {"fsync", no_argument, 0, OPT_FSYNC},
                                          {0, 0, 0, 0}};
    common_opts co = {0};
    tar_opts o = {0};
    int rc = parse_args(&cmd_tar, argc, argv, COMMON_SHORT_OPTIONS "zJjL", longs, &co, tar_opt, &o);
    if (rc >= 0)
        return rc;
    if (argc - optind != 2)
        return usage_error(&cmd_tar, "expects SOURCE OUT");
    const char *env = getenv("SOURCE_DATE_EPOCH");
    if (!o.has_mtime && env && *env) {
        if (!parse_epoch(env, &o.mtime))
            return usage_error(&cmd_tar,
                               "invalid SOURCE_DATE_EPOCH '%s': want whole seconds "
                               "since the epoch",
                               env);
        o.has_mtime = true;
    }
    build b = {.source = argv[optind], .out = argv[optind + 1], .o = &o, .fd = -1};
    if ((rc = choose_compression(&o, b.out)) >= 0)
        return rc;
    /* Names go into pax records as UTF-8: convert from a UTF-8 locale, not
     * the user's, so the bytes do not depend on $LANG. */
    if (!setlocale(LC_CTYPE, "C.UTF-8"))
        setlocale(LC_CTYPE, "C");
    int flags = (o.follow ? TREE_FOLLOW : 0) | (o.sort ? TREE_SORTED : 0);
    if ((rc = tree_open(b.source, &co, flags, warn_clear, &b.p, &b.t)) != EXIT_OK)
        return rc;
    kvro_error err;
    if ((rc = out_open(&b)) == EXIT_OK && kvro_io_sink_fd(b.fd, 0, &b.sink, &err) != KVRO_OK) {
        rc = report(&err);
        out_abort(&b);
    } else if (rc == EXIT_OK) {
        rc = build_all(&b, co.quiet);
        if (b.a)
            la->archive_write_free(b.a); /* after a failure: closes without writing more */
        b.a = NULL;
        if (rc == EXIT_OK)
            rc = out_commit(&b);
        else
            out_abort(&b);
    }
    if (b.ae)
        la->archive_entry_free(b.ae);
    free(b.buf);
    hl_free(&b);
    kvro_io_close(b.sink);
    tree_close(b.t);
    return rc;
}

const command cmd_tar = {
    "tar", tar_run, "build a deterministic tar (.tar.gz, .tar.xz, ...) of a source",
    "Usage: mkkv tar [-z|-J|--zstd|-j] [-L] [--mtime EPOCH] [--fsync] [-q] [-t TYPE]\n"
    "                [--image-offset N] [--image-length N] SOURCE OUT\n"
    "Write the tree of SOURCE as a tar archive to OUT ('-': standard output).\n"
    "SOURCE is a directory or any source mkkv reads (a tar or a .tar.gz today),\n"
    "'-' for an image on standard input (see below).\n"
    "OUT's suffix picks the compression, as GNU tar's -a does: .tar.gz or .tgz\n"
    "gzip, .tar.xz or .txz xz, .tar.zst or .tzst zstd, .tar.bz2, .tbz2 or .tbz\n"
    "bzip2; anything else none. A suffix of a compression or format mkkv does not\n"
    "write (.tar.lz, .tar.lzma, .tar.Z, .tar.lz4, .7z, .zip ...) is a usage\n"
    "error, never a plain tar under that name. A flag (-z, -J, --zstd, -j) asks\n"
    "for one whatever the name (OUT '-' has none), but not against the name's.\n"
    "\n"
    "The format is pax-restricted: plain ustar headers, with a pax header only\n"
    "for a member ustar can not describe (path or link over 100/155 bytes or not\n"
    "ASCII, size of 8 GiB or more). GNU tar, bsdtar and Python's tarfile read it.\n"
    "\n"
    "The archive is deterministic: the same tree gives the same bytes, whatever\n"
    "order the host lists directories in.\n"
    "  - members: from a directory, each directory's entries sorted by name\n"
    "    (bytes, as strcmp), each directory followed by its contents; from an\n"
    "    archive, in the order its data lies there (its own order, a hard link\n"
    "    right after the file it names), so a .tar.gz is inflated once, unless\n"
    "    --sort=name; every directory before its contents, no \"./\" member\n"
    "  - owner and group 0 with empty names; no atime, ctime, ACLs or xattrs\n"
    "  - modes: directories 0755; files 0755 if any execute bit is set, else 0644;\n"
    "    symbolic links 0777\n"
    "  - modification times: --mtime EPOCH, else $SOURCE_DATE_EPOCH, else each\n"
    "    entry's own, in whole seconds\n"
    "  - gzip: no time stamp and no file name in the gzip header; xz, zstd and\n"
    "    bzip2 store neither; xz and zstd compress single-threaded, so the bytes\n"
    "    do not depend on the machine's processors\n"
    "\n"
    "Links, from any source (a directory, a tar, a .tar.gz):\n"
    "  - a symbolic link is stored as a symbolic link, its target as stored:\n"
    "    nothing is followed, so one that leads outside SOURCE (absolute, or up\n"
    "    with \"..\") is kept as it is, like any other data\n"
    "  - names of one file (hard links: the same file with more than one name,\n"
    "    as the source tells) are stored as GNU tar stores them: the first name\n"
    "    in the order above as the file, the others as hard links to it\n"
    "  - with -L, symbolic links are followed instead, inside SOURCE only, and\n"
    "    stored as the files and directories they lead to; a link that leads\n"
    "    outside, nowhere or round in a loop is then an error naming it, and\n"
    "    nothing is written\n"
    "From a directory SOURCE, FIFOs, sockets and devices are skipped, with a\n"
    "warning (with -L or -t dir, read through kvro's own backend, silently),\n"
    "and a file that changes size while it is read is an error.\n"
    "\n"
    "OUT is written to a temporary file beside it and renamed over OUT when\n"
    "complete: after an error or SIGINT/SIGTERM/SIGHUP, OUT is as it was.\n"
    "OUT may not lie inside SOURCE, nor be SOURCE under any name (compared by\n"
    "device and inode: a hard link, a symbolic link, a file redirected to\n"
    "standard input). SOURCE is never modified.\n"
    "\n"
    "  -z, --gzip            compress with gzip\n"
    "  -J, --xz              compress with xz\n"
    "      --zstd            compress with zstd\n"
    "  -j, --bzip2           compress with bzip2\n"
    "  -L, --dereference     follow symbolic links (inside SOURCE only) and store\n"
    "                        what they lead to, not the links\n"
    "      --sort=name|none  name: members sorted by name from any source (from a\n"
    "                        large .tar.gz, slower: read in that order); none\n"
    "                        (default): an archive's own order (a directory is\n"
    "                        sorted all the same: readdir's order is not\n"
    "                        reproducible)\n"
    "      --mtime EPOCH     every member's modification time, in seconds since\n"
    "                        1970-01-01 UTC (overrides $SOURCE_DATE_EPOCH; an empty\n"
    "                        SOURCE_DATE_EPOCH counts as unset)\n" FSYNC_HELP COMMON_HELP SOURCE_HELP
    "\n"
    "A progress line (files, bytes, rate) is shown when standard error is a\n"
    "terminal, unless -q.\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage (bad option, invalid --mtime or\n"
    "SOURCE_DATE_EPOCH, OUT's suffix, OUT inside SOURCE or the same file).\n",
};
