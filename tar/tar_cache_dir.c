/*
 * tar_cache_dir.c — the shared .tar.gz index cache as a whole: where it is
 * (XDG Base Directory spec: $XDG_CACHE_HOME/kvro, else ~/.cache/kvro),
 * what is in it, and keeping it under its cap. The entries themselves are
 * written and read by tar_cache.c; this file is the public kvro_cache_*
 * API and the eviction a save runs.
 *
 * An entry is a regular file named "<16 lowercase hex digits>.tgzidx"
 * that starts with the index magic. Nothing else in the directory is ever
 * removed, whatever its name: every removal opens the file, checks the
 * magic, and unlinks it only if the name still leads to that same file.
 * A temporary ("<entry>.XXXXXX") is removed only once an hour old: a
 * writer that is alive writes to it far more often than that.
 *
 * Least recently used goes first. "Used" is the entry's mtime: rename
 * keeps the one its writer gave it, and a load touches it (tar_cache.c),
 * since atime is not updated on noatime mounts and only sometimes on
 * relatime ones. Eviction costs one readdir and a stat per name. Removing
 * is unlink: a process that opened the entry before reads on, whole; and
 * entries are only ever replaced by rename, so none is read half-written.
 */
#include "tar_gz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TEMP_AGE 3600 /* seconds before a temporary counts as left behind */

char *kvro__tar_cache_dir(void)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    const char *base, *sub;
    /* The XDG spec says a relative $XDG_CACHE_HOME is invalid and ignored. */
    if (xdg && xdg[0] == '/')
        base = xdg, sub = "kvro";
    else if (home && home[0] == '/')
        base = home, sub = ".cache/kvro";
    else
        return NULL;
    size_t n = strlen(base) + strlen(sub) + 2;
    char *dir = malloc(n);
    if (dir)
        snprintf(dir, n, "%s/%s", base, sub);
    return dir;
}

kvro_status kvro_cache_dir(char **dir, kvro_error *err)
{
    kvro__error_clear(err);
    if (!dir)
        return kvro_error_set(err, KVRO_E_INVALID, "NULL argument");
    *dir = kvro__tar_cache_dir();
    if (*dir)
        return KVRO_OK;
    return kvro_error_set(err, KVRO_E_NOT_FOUND,
                          "no index cache directory: neither $XDG_CACHE_HOME nor $HOME is an "
                          "absolute path");
}

/* A positive byte count with an optional K/M/G/T (x1024) suffix, or 0. */
static int64_t byte_count(const char *s)
{
    if (!s || *s < '0' || *s > '9')
        return 0;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    int shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : *end == 'T' ? 40 : 0;
    end += shift != 0;
    if (errno || v <= 0 || *end || v > (INT64_MAX >> shift))
        return 0;
    return (int64_t)v << shift;
}

int64_t kvro_cache_cap(int64_t max)
{
    if (max > 0)
        return max;
    int64_t env = byte_count(getenv("KVRO_CACHE_MAX"));
    return env > 0 ? env : KVRO_CACHE_MAX_DEFAULT;
}

/* ------------------------------------------------------ the directory */

typedef enum name_kind { NAME_OTHER, NAME_ENTRY, NAME_TEMP } name_kind;

/* What NAME would be if it is kvro's: an entry or an entry's temporary. */
static name_kind classify(const char *name)
{
    for (int i = 0; i < 16; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return NAME_OTHER;
    size_t k = strlen(TAR_CACHE_SUFFIX);
    const char *rest = name + 16;
    if (strncmp(rest, TAR_CACHE_SUFFIX, k) != 0)
        return NAME_OTHER;
    rest += k;
    if (!*rest)
        return NAME_ENTRY;
    return rest[0] == '.' && strlen(rest) == 7 ? NAME_TEMP : NAME_OTHER; /* mkstemp's */
}

typedef struct item {
    char *name;
    name_kind kind;
    int64_t bytes;
    struct timespec used; /* mtime */
    bool gone;            /* removed by this pass */
    bool foreign;         /* named like one, but not kvro's: never touched */
} item;

typedef struct scan {
    char *dir;
    DIR *d; /* NULL: the directory does not exist */
    item *v;
    size_t n;
} scan;

static int by_use(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->used.tv_sec != y->used.tv_sec)
        return x->used.tv_sec > y->used.tv_sec ? -1 : 1;
    if (x->used.tv_nsec != y->used.tv_nsec)
        return x->used.tv_nsec > y->used.tv_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void scan_free(scan *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        free(sc->v[i].name);
    free(sc->v);
    if (sc->d)
        closedir(sc->d);
    free(sc->dir);
    memset(sc, 0, sizeof *sc);
}

/* Reads directory DIR (taken: freed with SC; NULL for the cache
 * directory): the entries and temporaries, with their sizes and mtimes,
 * most recently used first. A missing directory is an empty cache. */
static kvro_status scan_dir(char *dir, scan *sc, kvro_error *err)
{
    memset(sc, 0, sizeof *sc);
    kvro_status s = dir ? KVRO_OK : kvro_cache_dir(&dir, err);
    if (s != KVRO_OK)
        return s;
    sc->dir = dir;
    sc->d = opendir(dir);
    if (!sc->d)
        return errno == ENOENT ? KVRO_OK
                               : kvro_error_set(err, kvro_status_from_errno(errno),
                                                "index cache %s: %s", dir, strerror(errno));
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(sc->d))) {
        name_kind k = classify(e->d_name);
        struct stat st;
        if (k == NAME_OTHER || fstatat(dirfd(sc->d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (sc->n == cap) {
            cap = cap ? 2 * cap : 64;
            item *v = realloc(sc->v, cap * sizeof *v);
            if (!v)
                return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
            sc->v = v;
        }
        item *it = &sc->v[sc->n];
        *it = (item){.name = strdup(e->d_name), .kind = k, .bytes = st.st_size, .used = st.st_mtim};
        if (!it->name)
            return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
        sc->n++;
    }
    if (sc->n)
        qsort(sc->v, sc->n, sizeof *sc->v, by_use);
    return KVRO_OK;
}

/* Whether IT is kvro's: an index by its magic (a temporary may also be
 * empty: its writer died before writing anything). *ST: what was checked. */
static bool is_ours(const scan *sc, const item *it, struct stat *st)
{
    int fd = openat(dirfd(sc->d), it->name,
                    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ours = fstat(fd, st) == 0 && S_ISREG(st->st_mode) &&
                (kvro__tar_cache_magic(fd) || (it->kind == NAME_TEMP && st->st_size == 0));
    close(fd);
    return ours;
}

/* Marks the items that are not kvro's: an open and an 8-byte read each,
 * so a save pays it only when something must go. */
static void mark_foreign(scan *sc)
{
    struct stat st;
    for (size_t i = 0; sc->d && i < sc->n; i++)
        if (!sc->v[i].gone)
            sc->v[i].foreign = !is_ours(sc, &sc->v[i], &st);
}

/* What the entries still there take. */
static int64_t total_of(const scan *sc)
{
    int64_t total = 0;
    for (size_t i = 0; i < sc->n; i++)
        if (!sc->v[i].gone && !sc->v[i].foreign && sc->v[i].kind == NAME_ENTRY)
            total += sc->v[i].bytes;
    return total;
}

/* Removes IT if it is kvro's, and only if its name still leads to the
 * file just checked (not one renamed there since). */
static bool remove_item(scan *sc, item *it, kvro_cache_result *res)
{
    struct stat st, now;
    if (it->foreign || !is_ours(sc, it, &st)) {
        it->foreign = true;
        return false;
    }
    int dfd = dirfd(sc->d);
    if (fstatat(dfd, it->name, &now, AT_SYMLINK_NOFOLLOW) != 0 || now.st_dev != st.st_dev ||
        now.st_ino != st.st_ino || unlinkat(dfd, it->name, 0) != 0)
        return false;
    it->gone = true;
    if (res) {
        res->removed++;
        res->removed_bytes += it->bytes;
    }
    return true;
}

/* Removes entries other than KEEP (a name, or NULL), oldest first, until
 * the rest take at most CAP bytes (CAP < 0: all of them), and temporaries
 * left behind; counts what is left into RES. */
static void trim(scan *sc, const char *keep, int64_t cap, kvro_cache_result *res)
{
    if (!sc->d)
        return;
    int64_t total = total_of(sc), old = (int64_t)time(NULL) - TEMP_AGE;
    /* A file named like an entry that is not one must not make room for
     * itself: look before removing anything. */
    if (cap >= 0 && total > cap) {
        mark_foreign(sc);
        total = total_of(sc);
    }
    for (size_t i = sc->n; i-- > 0;) {
        item *it = &sc->v[i];
        if (it->gone || it->foreign) /* a foreign one is not in TOTAL */
            continue;
        if (it->kind == NAME_TEMP) {
            if (it->used.tv_sec < old)
                remove_item(sc, it, res);
            continue;
        }
        /* One found not to be kvro's only now was counted: it is not the
         * cache's, and stays. */
        if ((cap < 0 || total > cap) && !(keep && !strcmp(it->name, keep)) &&
            (remove_item(sc, it, res) || it->foreign))
            total -= it->bytes;
    }
    if (res)
        for (size_t i = 0; i < sc->n; i++)
            if (!sc->v[i].gone && !sc->v[i].foreign && sc->v[i].kind == NAME_ENTRY) {
                res->kept++;
                res->kept_bytes += sc->v[i].bytes;
            }
}

void kvro__tar_cache_evict(const char *keep, int64_t cap)
{
    const char *slash = strrchr(keep, '/');
    char *dir = slash ? strndup(keep, (size_t)(slash - keep)) : NULL;
    if (!dir)
        return;
    scan sc;
    if (scan_dir(dir, &sc, NULL) == KVRO_OK)
        trim(&sc, slash + 1, cap, NULL);
    scan_free(&sc);
}

/* ----------------------------------------------------------- the API */

/* IT as the API shows it; free *FILE and *ARCHIVE after. false if IT is
 * not an index at all (then it is left out). */
static bool describe(const scan *sc, const item *it, kvro_cache_entry *e, char **file,
                     char **archive)
{
    memset(e, 0, sizeof *e);
    *file = *archive = NULL;
    tar_cache_info info = {0};
    int fd = openat(dirfd(sc->d), it->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    bool index = fd >= 0 && kvro__tar_cache_info(fd, &info);
    if (fd >= 0)
        close(fd);
    if (!index)
        return false;
    size_t n = strlen(sc->dir) + strlen(it->name) + 2;
    *file = malloc(n);
    if (*file)
        snprintf(*file, n, "%s/%s", sc->dir, it->name);
    e->file = *file ? *file : it->name;
    e->bytes = it->bytes;
    e->last_used = (int64_t)it->used.tv_sec;
    e->last_used_nsec = (int32_t)it->used.tv_nsec;
    *archive = info.archive;
    e->archive = info.archive ? info.archive : "";
    struct stat st = {0};
    e->archive_exists = info.archive && info.archive[0] && stat(info.archive, &st) == 0;
    /* Entries are named by the archive's size and mtime: once either
     * changed, no open will ever look this one up again. (The size is the
     * archive's, which may be a window of a bigger file.) */
    e->usable = e->archive_exists && st.st_size >= info.size &&
                st.st_mtim.tv_sec == info.mtime && st.st_mtim.tv_nsec == info.mtime_nsec;
    return true;
}

kvro_status kvro_cache_list(kvro_cache_fn fn, void *arg, kvro_error *err)
{
    kvro__error_clear(err);
    if (!fn)
        return kvro_error_set(err, KVRO_E_INVALID, "NULL argument");
    scan sc;
    kvro_status s = scan_dir(NULL, &sc, err);
    for (size_t i = 0; s == KVRO_OK && i < sc.n; i++) {
        if (sc.v[i].kind != NAME_ENTRY)
            continue;
        kvro_cache_entry e;
        char *file, *archive;
        int stop = describe(&sc, &sc.v[i], &e, &file, &archive) ? fn(arg, &e) : 0;
        free(file);
        free(archive);
        if (stop)
            break;
    }
    scan_free(&sc);
    return s;
}

kvro_status kvro_cache_trim(int64_t max, int flags, kvro_cache_result *res, kvro_error *err)
{
    kvro__error_clear(err);
    if (res)
        memset(res, 0, sizeof *res);
    scan sc;
    kvro_status s = scan_dir(NULL, &sc, err);
    for (size_t i = 0; s == KVRO_OK && sc.d && (flags & KVRO_CACHE_STALE) && i < sc.n; i++) {
        if (sc.v[i].kind != NAME_ENTRY)
            continue;
        kvro_cache_entry e;
        char *file, *archive;
        if (describe(&sc, &sc.v[i], &e, &file, &archive) && !e.usable)
            remove_item(&sc, &sc.v[i], res);
        free(file);
        free(archive);
    }
    if (s == KVRO_OK) {
        mark_foreign(&sc); /* so that RES counts only entries */
        trim(&sc, NULL, kvro_cache_cap(max), res);
    }
    scan_free(&sc);
    return s;
}

kvro_status kvro_cache_clear(kvro_cache_result *res, kvro_error *err)
{
    kvro__error_clear(err);
    if (res)
        memset(res, 0, sizeof *res);
    scan sc;
    kvro_status s = scan_dir(NULL, &sc, err);
    if (s == KVRO_OK) {
        mark_foreign(&sc);
        trim(&sc, NULL, -1, res);
    }
    scan_free(&sc);
    return s;
}
