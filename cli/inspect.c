/*
 * inspect.c — mkkv ls, cat and stat: look inside any source.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------- ls */

typedef struct ls_ctx {
    kvro *kv;
    bool lng, rec;
    bool null; /* -0: names as they are, each followed by a NUL */
} ls_ctx;

static int ls_opt(int c, const char *arg, void *p)
{
    (void)arg;
    ls_ctx *ls = p;
    if (c == 'l')
        ls->lng = true;
    else if (c == 'R')
        ls->rec = true;
    else if (c == '0')
        ls->null = true;
    return -1;
}

static void mode_string(const kvro_info *st, char out[11])
{
    static const char rwx[] = "rwxrwxrwx";
    out[0] = st->kind == KVRO_KIND_DIR ? 'd' : st->kind == KVRO_KIND_LINK ? 'l' : '-';
    for (int i = 0; i < 9; i++)
        out[1 + i] = !st->has_mode ? '?' : (st->mode & (0400u >> i)) ? rwx[i] : '-';
    out[10] = '\0';
}

/* Symbolic link KEY's target, malloc'd; NULL after reporting why. */
static char *link_target(kvro *kv, const char *key)
{
    kvro_error err;
    size_t len = 0, cap = 256;
    for (;;) {
        char *buf = malloc(cap);
        if (!buf) {
            fprintf(stderr, "mkkv: out of memory\n");
            return NULL;
        }
        if (kvro_readlink(kv, key, buf, cap, &len, &err) != KVRO_OK) {
            free(buf);
            report(&err);
            return NULL;
        }
        if (len < cap)
            return buf;
        free(buf);
        cap = len + 1;
    }
}

/* One line: "NAME" (a '/' after directories) or, with -l,
 * "MODE SIZE YYYY-MM-DD HH:MM NAME" and " -> TARGET" after a link, as
 * ls -l shows it; NAME and TARGET escaped, unless -0: then as they are,
 * and a NUL in place of the newline. ST is KEY's lstat. */
static int ls_print(ls_ctx *ls, const char *key, const char *shown, const kvro_info *st)
{
    char *target = NULL;
    if (ls->lng) {
        if (st->kind == KVRO_KIND_LINK && !(target = link_target(ls->kv, key)))
            return EXIT_FAIL;
        char mode[11], when[32] = "-";
        mode_string(st, mode);
        time_t t = (time_t)st->mtime;
        struct tm tm;
        if (gmtime_r(&t, &tm))
            strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        printf("%s %12lld %s ", mode, (long long)st->size, when);
    }
    if (ls->null)
        fputs(shown, stdout);
    else
        quote_put(stdout, shown);
    if (target) {
        fputs(" -> ", stdout);
        if (ls->null)
            fputs(target, stdout);
        else
            quote_put(stdout, target);
    }
    if (st->kind == KVRO_KIND_DIR && shown[0])
        putchar('/');
    putchar(ls->null ? '\0' : '\n');
    free(target);
    return EXIT_OK;
}

/* A directory's entries with their lstat, in kvro_list_info's order. */
typedef struct ls_list {
    char **names;
    kvro_info *info;
    kvro_status *status;
    size_t n, cap;
    bool oom;
} ls_list;

static void ls_list_free(ls_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->info);
    free(l->status);
}

static int ls_collect(void *arg, const char *name, kvro_status s, const kvro_info *info)
{
    ls_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        char **names = realloc(l->names, cap * sizeof *names);
        if (names)
            l->names = names;
        kvro_info *in = names ? realloc(l->info, cap * sizeof *in) : NULL;
        if (in)
            l->info = in;
        kvro_status *st = in ? realloc(l->status, cap * sizeof *st) : NULL;
        if (!st)
            return l->oom = true;
        l->status = st;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(name)))
        return l->oom = true;
    l->status[l->n] = s;
    memset(&l->info[l->n], 0, sizeof *l->info);
    if (info)
        l->info[l->n] = *info;
    l->n++;
    return 0;
}

/* Lists DIR; with -R also below it, naming entries by their path under
 * the listing's top (PREFIX). Every link is listed as a link (escaping
 * ones too), and -R does not descend into one. An entry that fails (its
 * stat, its listing for -R) is reported and the rest still listed:
 * EXIT_FAIL at the end. Only running out of memory stops a directory's
 * listing. */
static int ls_dir(ls_ctx *ls, const char *dir, const char *prefix)
{
    ls_list l = {0};
    kvro_error err;
    kvro_status s = kvro_list_info(ls->kv, dir, KVRO_NOFOLLOW, ls_collect, &l, &err);
    if (s == KVRO_OK && l.oom) { /* a cut listing must not pass for a whole one */
        s = kvro_error_set(&err, KVRO_E_NOMEM, "out of memory listing it");
        error_about(&err, kvro_source(ls->kv), dir);
    }
    if (s != KVRO_OK) {
        ls_list_free(&l);
        return report(&err);
    }
    int rc = EXIT_OK;
    bool oom = false;
    for (size_t i = 0; i < l.n && !oom; i++) {
        char *key = key_join(dir, l.names[i]);
        char *shown = key_join(prefix, l.names[i]);
        if (!key || !shown) {
            fprintf(stderr, "mkkv: out of memory\n");
            rc = EXIT_FAIL;
            oom = true;
        } else if (l.status[i] != KVRO_OK) {
            /* Said with the key: the same words kvro_lstat would give. */
            kvro_info st;
            if (kvro_lstat(ls->kv, key, &st, &err) == KVRO_OK) {
                kvro_error_set(&err, l.status[i], "%s", kvro_status_str(l.status[i]));
                error_about(&err, kvro_source(ls->kv), key);
            }
            rc = report(&err);
        } else if (ls_print(ls, key, ls->rec ? shown : l.names[i], &l.info[i]) != EXIT_OK) {
            rc = EXIT_FAIL;
        } else if (ls->rec && l.info[i].kind == KVRO_KIND_DIR &&
                   ls_dir(ls, key, shown) != EXIT_OK) {
            rc = EXIT_FAIL;
        }
        free(key);
        free(shown);
    }
    ls_list_free(&l);
    return rc;
}

static int ls_run(int argc, char **argv)
{
    static const struct option longs[] = {COMMON_LONG_OPTIONS,
                                          {"long", no_argument, 0, 'l'},
                                          {"recursive", no_argument, 0, 'R'},
                                          {"null", no_argument, 0, '0'},
                                          {0, 0, 0, 0}};
    common_opts o = {0};
    ls_ctx ls = {0};
    int rc = parse_args(&cmd_ls, argc, argv, COMMON_SHORT_OPTIONS "lR0", longs, &o, ls_opt, &ls);
    if (rc >= 0)
        return rc;
    if (argc - optind < 1 || argc - optind > 2)
        return usage_error(&cmd_ls, "expects SOURCE [PATH]");
    const char *path = argc - optind == 2 ? argv[optind + 1] : "";
    if ((rc = open_source(argv[optind], &o, &ls.kv)) != EXIT_OK)
        return rc;
    /* As ls: PATH a link to a directory lists the directory, but with -l
     * (or when it leads nowhere inside) shows the link itself. */
    kvro_info st, to;
    kvro_error err;
    if (kvro_lstat(ls.kv, path, &st, &err) != KVRO_OK)
        rc = report(&err);
    else if (st.kind == KVRO_KIND_DIR ||
             (st.kind == KVRO_KIND_LINK && !ls.lng &&
              kvro_stat(ls.kv, path, &to, &err) == KVRO_OK && to.kind == KVRO_KIND_DIR))
        rc = ls_dir(&ls, path, "");
    else
        rc = ls_print(&ls, path, path, &st);
    kvro_close(ls.kv);
    if (fflush(stdout) != 0 && rc == EXIT_OK) {
        fprintf(stderr, "mkkv: standard output: %s\n", strerror(errno));
        rc = EXIT_FAIL;
    }
    return rc;
}

const command cmd_ls = {
    "ls", ls_run, "list a directory of a source",
    "Usage: mkkv ls [-l] [-R] [-0] [OPTIONS] SOURCE [PATH]\n"
    "List directory PATH of SOURCE (default: the root), sorted by name.\n"
    "Directories are shown with a trailing '/'. If PATH is a file, show it.\n"
    "Symbolic links are listed as links, all of them (those that lead outside\n"
    "SOURCE too): -l shows 'NAME -> TARGET' (the target as stored), and -R does\n"
    "not descend into them.\n"
    QUOTING_HELP
    "\n"
    "  -l, --long            show mode, size and modification time (UTC)\n"
    "  -R, --recursive       list everything below PATH, as paths relative to PATH\n"
    "  -0, --null            for programs: each name as it is (not escaped),\n"
    "                        followed by a NUL instead of a newline\n" COMMON_HELP SOURCE_HELP,
};

/* ------------------------------------------------------------------ cat */

typedef struct cat_ctx {
    int64_t offset, length;
    bool has_length;
} cat_ctx;

static int cat_opt(int c, const char *arg, void *p)
{
    cat_ctx *cat = p;
    if (c == 'o' && parse_size(arg, &cat->offset))
        return -1;
    if (c == 'n' && parse_size(arg, &cat->length)) {
        cat->has_length = true;
        return -1;
    }
    return usage_error(&cmd_cat, "'%s' is not a byte count (digits, optional K/M/G/T)", arg);
}

static int cat_run(int argc, char **argv)
{
    static const struct option longs[] = {COMMON_LONG_OPTIONS,
                                          {"offset", required_argument, 0, 'o'},
                                          {"length", required_argument, 0, 'n'},
                                          {0, 0, 0, 0}};
    common_opts o = {0};
    cat_ctx cat = {0};
    int rc =
        parse_args(&cmd_cat, argc, argv, COMMON_SHORT_OPTIONS "o:n:", longs, &o, cat_opt, &cat);
    if (rc >= 0)
        return rc;
    if (argc - optind != 2)
        return usage_error(&cmd_cat, "expects SOURCE KEY");
    kvro *kv;
    if ((rc = open_source(argv[optind], &o, &kv)) != EXIT_OK)
        return rc;
    const char *key = argv[optind + 1];
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK);
    int64_t off = cat.offset, left = cat.has_length ? cat.length : INT64_MAX;
    kvro_error err;
    if (!buf) {
        fprintf(stderr, "mkkv: out of memory\n");
        rc = EXIT_FAIL;
    }
    /* One read even for a zero length, so a missing key or a directory is
     * still reported. */
    for (bool first = true; buf && (left > 0 || first); first = false) {
        int64_t n;
        if (kvro_read(kv, key, off, left < CHUNK ? left : CHUNK, buf, &n, &err) != KVRO_OK) {
            rc = report(&err);
            break;
        }
        if (n == 0)
            break;
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            break;
        off += n;
        left -= n;
    }
    if ((fflush(stdout) != 0 || ferror(stdout)) && rc == EXIT_OK) {
        fprintf(stderr, "mkkv: standard output: %s\n", strerror(errno));
        rc = EXIT_FAIL;
    }
    free(buf);
    kvro_close(kv);
    return rc;
}

const command cmd_cat = {
    "cat", cat_run, "write a value to standard output",
    "Usage: mkkv cat [--offset N] [--length N] [OPTIONS] SOURCE KEY\n"
    "Write the bytes of value KEY in SOURCE to standard output.\n"
    "\n"
    "Which bytes of the value KEY to write:\n"
    "      --offset N        start N bytes into the value (default 0)\n"
    "      --length N        write at most N bytes of it (default: to its end)\n"
    "Where the image lies in the file SOURCE is another thing: --image-offset and\n"
    "--image-length, below.\n"
    "\n" COMMON_HELP SOURCE_HELP,
};

/* ----------------------------------------------------------------- stat */

/* mkkv stat SOURCE: what the source is (kvro_get_stats): the backend, the
 * filesystem and partition table of a disk image, the index of a tar. */
static int describe_source(kvro *kv)
{
    kvro_stats st;
    kvro_error err;
    if (kvro_get_stats(kv, &st, &err) != KVRO_OK)
        return report(&err);
    printf("source: %s\nbackend: %s\n", quoted(kvro_source(kv)), kvro_backend_of(kv));
    /* The layout: the filesystem on its first line, then the partitions
     * (the one opened marked '*'). */
    const char *nl = strchr(st.layout, '\n');
    if (st.layout[0])
        printf("filesystem: %.*s\n", nl ? (int)(nl - st.layout) : (int)strlen(st.layout),
               st.layout);
    if (nl) {
        printf("partitions:\n");
        for (const char *p = nl + 1; *p;) {
            const char *e = strchr(p, '\n');
            int len = e ? (int)(e - p) : (int)strlen(p);
            printf("  %.*s\n", len, p);
            p += len + (e != NULL);
        }
    }
    if (st.entries)
        printf("entries: %lld\n", (long long)st.entries);
    if (st.skipped)
        printf("skipped: %lld (the first: %s)\n", (long long)st.skipped,
               quoted(st.first_skipped));
    if (st.compressed) {
        printf("compressed: yes, %lld access point%s\n", (long long)st.access_points,
               st.access_points == 1 ? "" : "s");
        printf("index: %s, %lld bytes%s%s%s\n",
               st.index_loaded  ? "loaded from a saved file"
               : st.index_saved ? "built and saved"
                                : "built, not saved",
               (long long)st.index_bytes, st.index_note[0] ? " (" : "", st.index_note,
               st.index_note[0] ? ")" : "");
    }
    return EXIT_OK;
}

static int stat_run(int argc, char **argv)
{
    static const struct option longs[] = {COMMON_LONG_OPTIONS, {0, 0, 0, 0}};
    common_opts o = {0};
    int rc = parse_args(&cmd_stat, argc, argv, COMMON_SHORT_OPTIONS, longs, &o, NULL, NULL);
    if (rc >= 0)
        return rc;
    if (argc - optind != 1 && argc - optind != 2)
        return usage_error(&cmd_stat, "expects SOURCE [KEY]");
    kvro *kv;
    if ((rc = open_source(argv[optind], &o, &kv)) != EXIT_OK)
        return rc;
    if (argc - optind == 1) {
        rc = describe_source(kv);
        kvro_close(kv);
        return rc;
    }
    const char *key = argv[optind + 1];
    kvro_info st;
    kvro_error err;
    char *target = NULL;
    /* A link is described as a link (lstat), with its target as stored. */
    if (kvro_lstat(kv, key, &st, &err) != KVRO_OK) {
        rc = report(&err);
    } else if (st.kind == KVRO_KIND_LINK && !(target = link_target(kv, key))) {
        rc = EXIT_FAIL;
    } else {
        char when[64] = "unknown";
        time_t t = (time_t)st.mtime;
        struct tm tm;
        if (st.mtime && gmtime_r(&t, &tm)) {
            size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
            snprintf(when + n, sizeof when - n, ".%09dZ", (int)st.mtime_nsec);
        }
        printf("key: %s\nkind: %s\n", quoted(key),
               st.kind == KVRO_KIND_DIR    ? "directory"
               : st.kind == KVRO_KIND_LINK ? "symbolic link"
                                           : "file");
        if (target)
            printf("target: %s\n", quoted(target));
        printf("size: %lld\n", (long long)st.size);
        if (st.nlink > 1)
            printf("links: %u\n", (unsigned)st.nlink);
        if (st.has_mode)
            printf("mode: %04o\n", (unsigned)st.mode);
        printf("mtime: %s (%lld)\nbackend: %s\n", when, (long long)st.mtime,
               kvro_backend_of(kv));
    }
    free(target);
    kvro_close(kv);
    return rc;
}

const command cmd_stat = {
    "stat", stat_run, "show a key's kind, size, mode and modification time",
    "Usage: mkkv stat [OPTIONS] SOURCE [KEY]\n"
    "Show the kind, size, mode and modification time of KEY in SOURCE.\n"
    "Without KEY, describe SOURCE itself: its backend, a FAT image's filesystem\n"
    "and a disk image's partitions (the one opened marked '*'; --partition N\n"
    "picks another), a tar's entries and a .tar.gz's access index.\n"
    "A symbolic link is described as itself, with its target as stored (the\n"
    "size is the target's length); a file with hard links shows how many names\n"
    "it has (links: N).\n"
    QUOTING_HELP "\n" COMMON_HELP SOURCE_HELP,
};
