/*
 * tar.c — the tar backend ("tar"): a KV_RO view of a tar archive, plain or
 * gzip-compressed. One table serves both, since everything but the byte
 * source is shared and a user forcing "tar" on a .tar.gz means the same
 * archive; the compression is told by the gzip magic (RFC 1952), not the
 * file name.
 *
 * Open builds the member index in one pass over the headers (tar_scan.c);
 * for a .tar.gz the same pass inflates the stream once and leaves access
 * points behind (tar_gz_build.c), and the whole index is saved (tar_cache.c) so
 * the next open inflates nothing. After open everything is read-only except
 * the gzip cursor cache, which has its own mutex, and the count of damaged
 * index windows (atomic): any number of threads may stat, read and list at
 * once. Reads are one pread at the member's offset (plain), or an inflate
 * from the nearest access point (gzip); a sparse member's read finds its
 * first region by binary search and makes one such read per data region
 * it touches, with zeros for the holes.
 *
 * Members with a "." or ".." path component are skipped, never served, and
 * counted (kvro_stats.skipped, the first reason in kvro_stats.first_skipped).
 *
 * Symbolic links are listed as stored and described by lstat/readlink with
 * their linkname as written (absolute and escaping ones too: text, never
 * followed out); stat and read follow them inside the archive only. A hard
 * link is another name of the member it names: kvro_info.id is that
 * member's index + 1 and nlink its count of names, like st_ino/st_nlink.
 *
 * Environment: KVRO_TARGZ_SPACING=BYTES sets the access-point spacing and
 * turns off the 2% size budget (for tuning and tests); the cache file
 * records the points, so the setting matters when the index is built.
 */
#include "tar_format.h"
#include "tar_gz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct tar_handle {
    kvro_io *io; /* the archive (a reference of our own) */
    int64_t size;
    tar_index ix;
    bool is_gz;
    tar_gz gz;
    tar_warnings warn;
    bool from_cache, cache_saved;
    char cache_note[160]; /* why the saved index was or was not used */
} tar_handle;

/* ------------------------------------------------------------------ bid */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcasecmp(s + n - k, suffix) == 0;
}

static int tar_bid(const kvro_probe *p)
{
    if (!p->head)
        return KVRO_BID_NONE;
    if (p->head_len >= TAR_BLOCK && kvro__tar_header_valid(p->head) && !kvro__tar_block_is_zero(p->head))
        return KVRO_BID_CHECKED;
    if (p->head_len >= 2 && p->head[0] == 0x1f && p->head[1] == 0x8b &&
        kvro__tar_gz_probe(p->head, p->head_len))
        return KVRO_BID_CHECKED;
    /* An empty archive is all zeros: only its name says what it is. An
     * empty file is not one (GNU tar and bsdtar refuse it). */
    if (p->size == 0)
        return KVRO_BID_NONE;
    if (has_suffix(p->name, ".tar") || has_suffix(p->name, ".tgz") ||
        has_suffix(p->name, ".tar.gz"))
        return KVRO_BID_WEAK;
    return KVRO_BID_NONE;
}

/* ----------------------------------------------------------- open, close */

static kvro_status tar_close(void *self, kvro_error *err)
{
    (void)err;
    tar_handle *t = self;
    kvro_io_close(t->io);
    kvro__tar_index_free(&t->ix);
    if (t->is_gz)
        kvro__tar_gz_free(&t->gz);
    free(t);
    return KVRO_OK;
}

static kvro_status open_plain(tar_handle *t, const kvro_options *o, kvro_error *err)
{
    kvro_status s = kvro__tar_index_init(&t->ix, err);
    if (s != KVRO_OK)
        return s;
    /* Every member takes a 512-byte header at least. */
    kvro__tar_index_reserve(&t->ix, (uint64_t)t->size / TAR_BLOCK);
    tar_file_src f;
    s = kvro__tar_file_src_init(&f, t->io, t->size, o, err);
    if (s == KVRO_OK)
        s = kvro__tar_scan(&f.base, &t->ix, &t->warn, err);
    kvro__tar_file_src_done(&f);
    return s;
}

static kvro_status open_gz(tar_handle *t, const kvro_options *o, kvro_error *err)
{
    kvro_status s = kvro__tar_gz_init(&t->gz, t->io, t->size, o->read_cache_bytes, err);
    if (s != KVRO_OK)
        return s;
    t->is_gz = true;
    /* The caller named the index file: it is checked before any work and
     * never written over anything but an index (tar_cache.c). */
    if (o->index_path && !o->no_index_cache &&
        (s = kvro__tar_cache_check_target(o->index_path, t->io, err)) != KVRO_OK)
        return s;
    /* A file is keyed by its path and stat; anything else by its size and
     * its edge CRCs alone (mtime 0), and only in an explicit index_path. */
    kvro__io_id id;
    if (!kvro__io_identity(t->io, &id)) {
        id = (kvro__io_id){.length = t->size};
        /* No mtime to tell two same-sized archives apart: a saved index
         * is keyed on a checksum of every byte instead (only when there is
         * an index_path to save in: nothing is cached otherwise). */
        if (o->index_path && (s = kvro__tar_cache_checksum(t->io, t->size, &id.mtime, err)))
            return s;
    }
    /* no_index_cache turns saving off; an explicit index_path is still read. */
    char *cache = NULL;
    if (o->index_path) {
        cache = strdup(o->index_path);
    } else if (!o->no_index_cache) {
        char *dir = kvro__tar_cache_dir();
        cache = dir ? kvro__tar_cache_path(dir, &id) : NULL;
        free(dir);
    }
    snprintf(t->cache_note, sizeof t->cache_note, "%s",
             cache               ? ""
             : o->no_index_cache ? "cache off"
             : id.path           ? "no cache directory"
                                 : "no path to key a cache on: built in memory");
    if (cache && kvro__tar_cache_load(cache, !o->index_path, t->io, &id, &t->ix, &t->gz,
                                      &t->warn, t->cache_note, sizeof t->cache_note)) {
        t->from_cache = true;
        free(cache);
        return KVRO_OK;
    }

    int64_t spacing = TAR_GZ_SPACING;
    bool budget = true;
    const char *env = getenv("KVRO_TARGZ_SPACING");
    if (env && *env) {
        char *end;
        long long v = strtoll(env, &end, 10);
        if (!*end && v > 0) {
            spacing = v;
            budget = false;
        }
    }
    tar_gz_build *b = NULL;
    s = kvro__tar_index_init(&t->ix, err);
    if (s == KVRO_OK)
        s = kvro__tar_gz_build_begin(&t->gz, o, spacing, budget, &b, err);
    if (s == KVRO_OK)
        s = kvro__tar_scan(kvro__tar_gz_build_src(b), &t->ix, &t->warn, err);
    if (s == KVRO_OK)
        s = kvro__tar_gz_build_finish(b, err);
    kvro__tar_gz_build_free(b);
    /* Damaged records read past are not kept in a saved index: such an
     * archive is scanned at every open, so every open warns. */
    if (s == KVRO_OK && cache && !o->no_index_cache && !t->warn.ignored) {
        char note[sizeof t->cache_note];
        int64_t cap = o->index_path ? 0 : kvro_cache_cap(o->index_cache_max);
        t->cache_saved = kvro__tar_cache_save(cache, cap, t->io, &id, &t->ix, &t->gz, &t->warn,
                                              note, sizeof note);
        if (t->cache_saved && cap > 0) /* after the rename: the new entry never makes room */
            kvro__tar_cache_evict(cache, cap);
        if (!t->cache_saved)
            snprintf(t->cache_note, sizeof t->cache_note, "%s", note);
        /* The open stands (its index is in memory), but a file the caller
         * asked for and did not get is worth a word. */
        if (!t->cache_saved && o->index_path && o->warning) {
            char msg[sizeof note + 64];
            snprintf(msg, sizeof msg, "tar: index file %s %s", o->index_path, note);
            o->warning(o->warning_arg, msg);
        }
    }
    free(cache);
    return s;
}

static kvro_status tar_open(const kvro_probe *p, const kvro_options *o, void **self,
                            kvro_error *err)
{
    if (!p->io)
        return kvro_error_set(err, KVRO_E_IS_DIR, "tar: is a directory, not an archive");
    if (p->size == 0)
        return kvro_error_set(err, KVRO_E_CORRUPT,
                              "tar: an empty file, not an archive (GNU tar and bsdtar refuse it "
                              "too)");
    tar_handle *t = calloc(1, sizeof *t);
    if (!t)
        return kvro_error_set(err, KVRO_E_NOMEM, "tar: out of memory");
    t->io = kvro_io_ref(p->io);
    t->size = p->size;
    /* The probe read the head already: the gzip magic (RFC 1952) decides. */
    bool gz = p->head_len >= 2 && p->head[0] == 0x1f && p->head[1] == 0x8b;
    kvro_status s = gz ? open_gz(t, o, err) : open_plain(t, o, err);
    if (s == KVRO_OK) /* scanned or loaded alike: hard links' counts */
        s = kvro__tar_index_links(&t->ix, err);
    if (s != KVRO_OK) {
        tar_close(t, NULL);
        return s;
    }
    /* Said once an open, from the scan or the cache alike. */
    if (t->warn.count && o->warning) {
        char msg[TAR_WARNING_MAX + 128];
        snprintf(msg, sizeof msg, "tar: %lld member%s skipped, never served; the first: %s",
                 (long long)t->warn.count, t->warn.count == 1 ? "" : "s", t->warn.first);
        o->warning(o->warning_arg, msg);
    }
    if (t->warn.ignored && o->warning) {
        char msg[TAR_WARNING_MAX + 128];
        snprintf(msg, sizeof msg, "tar: %lld damaged header record%s read past; the first: %s",
                 (long long)t->warn.ignored, t->warn.ignored == 1 ? "" : "s",
                 t->warn.first_ignored);
        o->warning(o->warning_arg, msg);
    }
    *self = t;
    return KVRO_OK;
}

/* ------------------------------------------------------------ read side */

/* Node I (a directory, a file or a symlink) as kvro_info. Its id is the
 * index of the member that holds the data, so hard links share it. */
static void fill_info(const tar_handle *t, uint32_t i, kvro_info *st)
{
    const tar_node *d = &t->ix.nodes[i];
    st->kind = d->kind == TAR_K_DIR       ? KVRO_KIND_DIR
               : d->kind == TAR_K_SYMLINK ? KVRO_KIND_LINK
                                          : KVRO_KIND_FILE;
    st->size = d->kind == TAR_K_DIR       ? 0
               : d->kind == TAR_K_SYMLINK ? (int64_t)strlen(t->ix.arena + d->link)
                                          : d->size;
    st->mtime = d->mtime;
    st->mtime_nsec = d->nsec;
    st->mode = d->mode;
    st->has_mode = (d->flags & TAR_F_EXPLICIT) != 0;
    st->id = (uint64_t)i + 1; /* 0 means "unknown"; node 0 is the root */
    st->nlink = kvro__tar_index_nlink(&t->ix, i);
}

static kvro_status tar_stat(void *self, const char *key, kvro_info *st, kvro_error *err)
{
    tar_handle *t = self;
    uint32_t i;
    kvro_status s = kvro__tar_index_resolve(&t->ix, key, &i, err);
    if (s == KVRO_OK)
        fill_info(t, i, st);
    return s;
}

static kvro_status tar_lstat(void *self, const char *key, kvro_info *st, kvro_error *err)
{
    tar_handle *t = self;
    uint32_t i;
    kvro_status s = kvro__tar_index_lookup(&t->ix, key, &i, err);
    if (s == KVRO_OK)
        fill_info(t, i, st);
    return s;
}

/* The symlink member's linkname as the archive has it: not normalised,
 * not resolved (an absolute or escaping target is only text here). */
static kvro_status tar_readlink(void *self, const char *key, char *buf, size_t size,
                                size_t *len, kvro_error *err)
{
    tar_handle *t = self;
    uint32_t i;
    kvro_status s = kvro__tar_index_lookup(&t->ix, key, &i, err);
    if (s != KVRO_OK)
        return s;
    const tar_node *d = &t->ix.nodes[i];
    if (d->kind != TAR_K_SYMLINK)
        return kvro_error_set(err, KVRO_E_INVALID, "not a symbolic link");
    const char *target = t->ix.arena + d->link;
    size_t n = strlen(target), k = size && n >= size ? size - 1 : n;
    if (size) {
        memcpy(buf, target, k);
        buf[k] = '\0';
    }
    if (len)
        *len = n;
    return KVRO_OK;
}

/* KEY's node, which must be a value kvro serves. */
static kvro_status value_node(const tar_handle *t, const char *key, const tar_node **out,
                              kvro_error *err)
{
    uint32_t i;
    kvro_status s = kvro__tar_index_resolve(&t->ix, key, &i, err);
    if (s != KVRO_OK)
        return s;
    const tar_node *d = &t->ix.nodes[i];
    if (d->kind == TAR_K_DIR)
        return kvro_error_set(err, KVRO_E_IS_DIR, "is a directory, not a value");
    *out = d;
    return KVRO_OK;
}

/* WANT bytes of the (uncompressed) archive at AT: one pread, or one
 * inflate from the nearest access point. */
static kvro_status read_stored(tar_handle *t, int64_t at, void *buf, int64_t want, int64_t *got,
                               kvro_error *err)
{
    kvro_status s;
    *got = 0;
    if (t->is_gz) {
        s = kvro__tar_gz_read(&t->gz, at, buf, want, got, err);
    } else {
        size_t n = 0;
        s = kvro_io_read(t->io, at, buf, (size_t)want, &n, err);
        *got = (int64_t)n;
    }
    if (s == KVRO_OK && *got < want)
        s = kvro_error_set(err, KVRO_E_IO,
                           "tar: the archive ends at offset %lld, inside the member (did it "
                           "shrink after it was opened?)",
                           (long long)(at + *got));
    return s;
}

/* WANT bytes of sparse member D at logical OFF: the first region is found
 * by binary search, then each region touched is one read and each hole
 * between them zeros. */
static kvro_status read_sparse(tar_handle *t, const tar_node *d, int64_t off, char *buf,
                               int64_t want, int64_t *nread, kvro_error *err)
{
    const tar_sparse *sp = &t->ix.sparse[d->link];
    const tar_region *r = sp->count ? t->ix.regions + sp->first : NULL;
    uint64_t i = kvro__tar_sparse_find(&t->ix, sp, off);
    int64_t done = 0;
    while (done < want) {
        int64_t pos = off + done;
        int64_t hole_end = i < sp->count ? r[i].off : d->size;
        if (pos < hole_end) { /* a hole, up to the next region or the end */
            int64_t k = hole_end - pos < want - done ? hole_end - pos : want - done;
            memset(buf + done, 0, (size_t)k);
            done += k;
            continue;
        }
        int64_t in = pos - r[i].off;
        int64_t k = r[i].len - in < want - done ? r[i].len - in : want - done;
        int64_t got = 0;
        kvro_status s = read_stored(t, d->off + r[i].data + in, buf + done, k, &got, err);
        done += got;
        if (s != KVRO_OK) {
            *nread = done;
            return s;
        }
        i++;
    }
    *nread = done;
    return KVRO_OK;
}

static kvro_status tar_read(void *self, const char *key, int64_t off, int64_t len, void *buf,
                            int64_t *nread, kvro_error *err)
{
    tar_handle *t = self;
    const tar_node *d = NULL;
    kvro_status s = value_node(t, key, &d, err);
    if (s != KVRO_OK)
        return s;
    *nread = 0;
    if (off >= d->size) /* at or past the end: nothing, and no offset arithmetic */
        return KVRO_OK;
    int64_t want = len < d->size - off ? len : d->size - off;
    if (d->kind == TAR_K_SPARSE)
        return read_sparse(t, d, off, buf, want, nread, err);
    return read_stored(t, d->off + off, buf, want, nread, err);
}

/* Whether normalised KEY spells node I's own path, with no link on the
 * way. */
static bool direct_path(const tar_index *ix, uint32_t i, const char *key)
{
    size_t n = strlen(key);
    for (; i != 0; i = ix->nodes[i].parent) {
        const char *name = tar_node_name(ix, i);
        size_t k = strlen(name);
        if (k > n || memcmp(key + n - k, name, k) != 0)
            return false;
        n -= k;
        if (ix->nodes[i].parent != 0) {
            if (n == 0 || key[n - 1] != '/')
                return false;
            n--;
        }
    }
    return n == 0;
}

static kvro_status tar_list(void *self, const char *dir, kvro_list_fn fn, void *arg,
                            kvro_error *err)
{
    tar_handle *t = self;
    uint32_t i;
    kvro_status s = kvro__tar_index_resolve(&t->ix, dir, &i, err);
    if (s != KVRO_OK)
        return s;
    if (t->ix.nodes[i].kind != TAR_K_DIR)
        return kvro_error_set(err, KVRO_E_NOT_DIR, "is a file, not a directory");
    /* Reached through a link, DIR's walk may have passed one of its own
     * subdirectories (l -> a/b, a/b/up -> ..: "l/up" is a, and "l/up/b"
     * loops), so those are resolved as keys too. */
    bool direct = direct_path(&t->ix, i, dir);
    size_t dlen = strlen(dir);
    char *child = NULL;
    for (uint32_t c = t->ix.nodes[i].child; c != TAR_NONE; c = t->ix.nodes[c].sibling) {
        uint32_t target = c;
        const char *name = tar_node_name(&t->ix, c);
        kvro_error ignored;
        /* A hard link is the member it names (one that names none is not
         * a key); symlinks are listed as stored, every one, and the core
         * resolves them for callers that follow (backend.h). Devices and
         * FIFOs are not keys. */
        if (kvro__tar_index_owner(&t->ix, c, &target, &ignored) != KVRO_OK)
            continue;
        uint8_t kind = t->ix.nodes[target].kind;
        if (kind == TAR_K_SPECIAL)
            continue;
        if (kind == TAR_K_SYMLINK) {
            if (fn(arg, name, KVRO_KIND_LINK))
                break;
            continue;
        }
        /* Reached through a link, a subdirectory is resolved as the child's
         * key would be, so a loop back through DIR is caught. */
        if (kind == TAR_K_DIR && !direct) {
            size_t n = strlen(name);
            char *k = realloc(child, dlen + n + 2);
            if (!k) {
                free(child);
                return kvro_error_set(err, KVRO_E_NOMEM, "tar: out of memory");
            }
            child = k;
            snprintf(child, dlen + n + 2, "%s%s%s", dir, dlen ? "/" : "", name);
            if (kvro__tar_index_resolve(&t->ix, child, &target, &ignored) != KVRO_OK)
                continue;
        }
        kvro_kind k = t->ix.nodes[target].kind == TAR_K_DIR ? KVRO_KIND_DIR : KVRO_KIND_FILE;
        if (fn(arg, name, k))
            break;
    }
    free(child);
    return KVRO_OK;
}

/* A plain member's bytes are the archive's, at its data offset. */
/* A plain member is one region; a sparse one, its map. Regions lie in the
 * image only when it is not compressed. */
static kvro_status tar_regions(void *self, const char *key, kvro_region_fn fn, void *arg,
                               kvro_error *err)
{
    tar_handle *t = self;
    const tar_node *d = NULL;
    kvro_status s = value_node(t, key, &d, err);
    if (s != KVRO_OK)
        return s;
    if (d->kind != TAR_K_SPARSE) {
        kvro_region r = {0, d->size, t->is_gz ? -1 : d->off};
        if (d->size > 0)
            fn(arg, &r);
        return KVRO_OK;
    }
    const tar_sparse *sp = &t->ix.sparse[d->link];
    for (uint64_t i = 0; i < sp->count; i++) {
        const tar_region *g = t->ix.regions + sp->first + i;
        kvro_region r = {g->off, g->len, t->is_gz ? -1 : d->off + g->data};
        if (fn(arg, &r))
            break;
    }
    return KVRO_OK;
}

static kvro_status tar_locate(void *self, const char *key, kvro_io **io, int64_t *off,
                              int64_t *len, kvro_error *err)
{
    tar_handle *t = self;
    const tar_node *d = NULL;
    kvro_status s = value_node(t, key, &d, err);
    if (s != KVRO_OK)
        return s;
    if (t->is_gz)
        return kvro_error_set(err, KVRO_E_UNSUPPORTED, "tar: the archive is compressed");
    if (d->kind == TAR_K_SPARSE)
        return kvro_error_set(err, KVRO_E_UNSUPPORTED,
                              "tar: a sparse member: its holes are not stored, so its bytes "
                              "are not contiguous in the archive");
    if (d->off > t->size || d->size > t->size - d->off)
        return kvro_error_set(err, KVRO_E_IO,
                              "tar: the archive ends inside the member (did it shrink?)");
    *io = t->io;
    *off = d->off;
    *len = d->size;
    return KVRO_OK;
}

/* ------------------------------------------------------- storage order */

/* One entry to give in kvro_each, placed where its bytes lie. */
typedef struct each_item {
    int64_t at;    /* its data's offset: a hard link's is its owner's */
    uint32_t node; /* the entry */
    uint32_t data; /* whose stat it shows (a hard link's owner) */
} each_item;

static int by_place(const void *a, const void *b)
{
    const each_item *x = a, *y = b;
    return x->at != y->at ? (x->at < y->at ? -1 : 1) : (x->node > y->node) - (x->node < y->node);
}

typedef struct each_run {
    const tar_handle *t;
    kvro_list_info_fn fn;
    void *arg;
    uint8_t *done;  /* per node: given already */
    uint32_t *up;   /* ancestors still to give, deepest first */
    char key[KVRO_KEY_MAX + 2];
} each_run;

/* Gives NODE (showing DATA's stat), after any ancestor not given yet, so
 * that a directory always comes before its contents (an implied one just
 * before the first thing in it). Non-zero: the caller stopped. */
static int each_give(each_run *r, uint32_t node, uint32_t data)
{
    const tar_index *ix = &r->t->ix;
    uint32_t n = 0;
    for (uint32_t p = ix->nodes[node].parent; p != 0 && !r->done[p]; p = ix->nodes[p].parent)
        r->up[n++] = p;
    while (n || !r->done[node]) {
        uint32_t i = n ? r->up[--n] : node;
        r->done[i] = 1;
        kvro_info st;
        memset(&st, 0, sizeof st);
        fill_info(r->t, i == node ? data : i, &st);
        kvro__tar_index_path(ix, i, r->key, sizeof r->key);
        bool named = strlen(r->key) <= KVRO_KEY_MAX; /* else no key reaches it */
        if (r->fn(r->arg, r->key, named ? KVRO_OK : KVRO_E_BAD_KEY, named ? &st : NULL))
            return 1;
    }
    return 0;
}

/* Every member in the order its data lies in the archive, so that reading
 * each as it comes reads (or inflates) the archive once, front to back. A
 * hard link comes right after the member that holds its data. */
static kvro_status tar_each(void *self, kvro_list_info_fn fn, void *arg, kvro_error *err)
{
    tar_handle *t = self;
    const tar_index *ix = &t->ix;
    each_item *v = malloc((size_t)ix->n * sizeof *v);
    each_run *r = malloc(sizeof *r);
    uint8_t *done = calloc(ix->n, 1);
    uint32_t *up = malloc((size_t)ix->n * sizeof *up);
    kvro_status s = KVRO_OK;
    if (!v || !r || !done || !up)
        s = kvro_error_set(err, KVRO_E_NOMEM, "tar: out of memory");
    size_t n = 0;
    for (uint32_t i = 1; s == KVRO_OK && i < ix->n; i++) {
        const tar_node *d = &ix->nodes[i];
        uint32_t data = i;
        kvro_error ignored;
        if (d->kind == TAR_K_SPECIAL || (d->kind == TAR_K_DIR && !(d->flags & TAR_F_EXPLICIT)))
            continue; /* not keys / given just before their contents */
        if (kvro__tar_index_owner(ix, i, &data, &ignored) != KVRO_OK)
            continue; /* a hard link that names nothing is never served */
        v[n++] = (each_item){ix->nodes[data].off, i, data};
    }
    if (s == KVRO_OK) {
        qsort(v, n, sizeof *v, by_place);
        *r = (each_run){.t = t, .fn = fn, .arg = arg, .done = done, .up = up};
        for (size_t i = 0; i < n && !each_give(r, v[i].node, v[i].data); i++)
            ;
    }
    /* Directories with nothing in them and no member of their own do not
     * exist (an implied directory has contents), so nothing is left. */
    free(v);
    free(r);
    free(done);
    free(up);
    return s;
}

static void tar_fill_stats(void *self, kvro_stats *st)
{
    const tar_handle *t = self;
    st->entries = t->ix.n;
    st->skipped = t->warn.count;
    snprintf(st->first_skipped, sizeof st->first_skipped, "%s", t->warn.first);
    st->compressed = t->is_gz;
    if (!t->is_gz)
        return;
    st->index_loaded = t->from_cache;
    st->index_saved = t->cache_saved;
    snprintf(st->index_note, sizeof st->index_note, "%s", t->cache_note);
    st->inflated_at_open = t->gz.inflated;
    st->access_points = (int64_t)t->gz.npoints;
    st->index_bytes = (int64_t)(t->gz.npoints * TAR_GZ_POINT_RECORD + t->gz.wins_len);
    st->index_bytes_read = t->gz.index_read;
    st->damaged_windows = (int64_t)atomic_load(&t->gz.damaged_windows);
}

const kvro_backend kvro__backend_tar = {
    .name = "tar",
    .description = "a tar archive (v7, ustar, GNU, pax), plain or gzip-compressed (read-only)",
    .bid = tar_bid,
    .open = tar_open,
    .close = tar_close,
    .stat = tar_stat,
    .read = tar_read,
    .list = tar_list,
    .lstat = tar_lstat,
    .readlink = tar_readlink,
    .locate = tar_locate,
    .regions = tar_regions,
    .each = tar_each,
    .stats = tar_fill_stats,
};
