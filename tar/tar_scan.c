/*
 * tar_scan.c — one sequential pass over the headers of a tar archive,
 * folding GNU long names ('L', 'K') and pax extended headers ('x', 'g')
 * into the member that follows them, and adding each member to the index.
 * Member data is never read, only skipped.
 *
 * Specs: POSIX.1-2017 pax "pax Extended Header" (record syntax, a zero-length
 * value deletes the field, 'g' applies until overridden); GNU tar manual
 * "Basic Tar Format" and src/list.c (the first zero block ends the archive,
 * with or without a second one).
 *
 * What the readers agree on where the specs are loose (checked against GNU
 * tar 1.34, bsdtar 3.6, Python's tarfile and Go's archive/tar):
 * - Links, devices, FIFOs and directories carry no data whatever their size
 *   field says (kvro__tar_header_only).
 * - Several 'x' headers before one member: only the last applies (GNU tar,
 *   bsdtar, Go; Python merges them). Several 'L' or 'K': the last, likewise.
 * - A 'g' header's path and linkpath are ignored (bsdtar, Go): a global name
 *   would name every member that follows the same, each replacing the last.
 *   GNU tar and Python apply it (and a global "path=" gives empty names).
 *   Its other records (mtime, size) apply until overridden.
 * - A damaged pax record (a value that is not a number, no '=', a length
 *   that is not its length, a last record without its newline) is read past
 *   with a warning, as libarchive does, when nothing that fixes a member's
 *   name, link target, size or data layout can be in the damaged bytes;
 *   otherwise it is KVRO_E_CORRUPT (libarchive would warn and guess).
 *
 * Sparse members (GNU tar manual, "Sparse Formats"; src/sparse.c, and
 * libarchive's and Python's readers, which agree): old GNU 'S' (the map in
 * the header and its extension blocks, the logical size at 483), pax 0.0
 * (GNU.sparse.offset/numbytes pairs), 0.1 (GNU.sparse.map) and 1.0 (the
 * map opening the data; GNU.sparse.realsize, GNU.sparse.name). A member's
 * map is read here and checked (kvro__tar_sparse_check) before it is
 * added; each region's data follows the previous one's, as Python, Go and
 * libarchive read it (GNU tar pads every region to a block, the same for
 * every map GNU tar writes). Memory is proportional to the regions, which
 * grow only as their text is read.
 *
 * Policy for names with a "." or ".." component (after leading "/" and
 * "./" are dropped): the member is SKIPPED, never served, and counted in
 * tar_warnings with the first one's name and offset. A hard link whose
 * target has such a component is skipped the same way, and since skipped
 * members are never in the index a hard link can not reach one either.
 * Names longer than KVRO_KEY_MAX (no key could name them) and non-directory
 * members named "./" are skipped likewise.
 */
#include "tar_scan.h"

#include "tar_format.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Largest extended header (GNU long name or pax data) we hold in memory.
 * Real ones are a few hundred bytes; pax xattrs can reach megabytes. */
#define TAR_EXT_MAX (16 << 20)

/* A pax value's state in one header: absent, set, or deleted by an empty
 * value (which then hides the global value and the header field too). */
typedef enum { PV_NONE, PV_SET, PV_DELETED } pv_state;

/* A growing sparse map, as a header or extended header spells it. */
typedef struct region_vec {
    tar_region *v;
    size_t n, cap;
} region_vec;

/* Which GNU sparse format a member's pax records use. */
typedef enum { SP_NONE, SP_00, SP_01, SP_10 } sparse_format;

typedef struct pax_values {
    pv_state path, linkpath, size, mtime;
    char *path_s, *linkpath_s;
    int64_t size_v, mtime_v;
    int32_t nsec_v;
    /* GNU.sparse.*: the map of 0.0 (offset/numbytes pairs) or 0.1 (map),
     * the logical size (size, realsize) and the version (major, minor). */
    bool sparse;
    bool sp_map, sp_pairs, sp_odd;
    int64_t sp_size, sp_realsize, sp_major, sp_minor; /* -1: absent */
    region_vec sp;
} pax_values;

typedef struct scan {
    tar_src *src;
    tar_index *ix;
    tar_warnings *w;
    char *ext; /* the last extended header's data */
    size_t ext_cap;
    char *longname, *longlink;
    pax_values x, g;
    int64_t pending; /* offset of an extended header awaiting its member, or -1 */
    char *norm;      /* normalised names */
    size_t norm_cap;
    region_vec map; /* the map of an old GNU or 1.0 sparse member */
} scan;

static void pax_clear(pax_values *v)
{
    free(v->path_s);
    free(v->linkpath_s);
    free(v->sp.v);
    memset(v, 0, sizeof *v);
    v->sp_size = v->sp_realsize = v->sp_major = v->sp_minor = -1;
}

static void warn(scan *sc, const char *fmt, ...) KVRO_PRINTF(2, 3);
static void warn(scan *sc, const char *fmt, ...)
{
    if (sc->w->count++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sc->w->first, sizeof sc->w->first, fmt, ap);
        va_end(ap);
    }
}

/* A damaged extended header record read past (see the file comment). */
static void warn_ignored(scan *sc, const char *fmt, ...) KVRO_PRINTF(2, 3);
static void warn_ignored(scan *sc, const char *fmt, ...)
{
    if (sc->w->ignored++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sc->w->first_ignored, sizeof sc->w->first_ignored, fmt, ap);
        va_end(ap);
    }
}

static kvro_status oom(kvro_error *err)
{
    return kvro_error_set(err, KVRO_E_NOMEM, "tar: out of memory reading headers");
}

/* Appends a region; the vector grows only as entries arrive, so its size
 * is bounded by the bytes that spell them. */
static kvro_status region_push(region_vec *m, int64_t off, int64_t len, kvro_error *err)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        tar_region *v = cap <= SIZE_MAX / sizeof *v ? realloc(m->v, cap * sizeof *v) : NULL;
        if (!v)
            return oom(err);
        m->v = v;
        m->cap = cap;
    }
    m->v[m->n++] = (tar_region){.off = off, .len = len};
    return KVRO_OK;
}

/* A decimal number at *P (before END) ended by SEP or END; *P moves past
 * the separator. */
static bool dec_field(const char **p, const char *end, char sep, int64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (s == end || *s < '0' || *s > '9')
        return false;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        if (v > ((uint64_t)INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (s < end && *s != sep)
        return false;
    *p = s < end ? s + 1 : s;
    *out = (int64_t)v;
    return true;
}

/* GNU.sparse.map (format 0.1): "offset,size,offset,size...". */
static bool parse_map_01(const char *v, size_t n, region_vec *m, kvro_error *err, bool *nomem)
{
    const char *p = v, *end = v + n;
    m->n = 0;
    while (p < end) {
        int64_t off, len;
        if (!dec_field(&p, end, ',', &off) || p == end || !dec_field(&p, end, ',', &len))
            return false;
        if (p == end && p[-1] == ',')
            return false;
        if (region_push(m, off, len, err) != KVRO_OK) {
            *nomem = true;
            return false;
        }
    }
    return true;
}

/* A GNU.sparse record other than name; false if its value is bad. */
static bool pax_sparse(pax_values *v, const tar_pax_record *r, kvro_error *err, bool *nomem)
{
    int64_t n = 0;
    const char *k = r->key + 11; /* past "GNU.sparse." */
    size_t kl = r->key_len - 11;
    bool num = !(kl == 3 && memcmp(k, "map", 3) == 0);
    if (num && !kvro__tar_pax_uint(r->value, r->value_len, &n))
        return false;
    v->sparse = true;
#define IS(s) (kl == sizeof s - 1 && memcmp(k, s, kl) == 0)
    if (IS("map")) {
        v->sp_map = true;
        return parse_map_01(r->value, r->value_len, &v->sp, err, nomem);
    } else if (IS("size")) {
        v->sp_size = n;
    } else if (IS("realsize")) {
        v->sp_realsize = n;
    } else if (IS("major")) {
        v->sp_major = n;
    } else if (IS("minor")) {
        v->sp_minor = n;
    } else if (IS("offset")) { /* 0.0: each offset, then its numbytes */
        if (v->sp_map || v->sp_odd)
            return false;
        v->sp_pairs = v->sp_odd = true;
        if (region_push(&v->sp, n, 0, err) != KVRO_OK) {
            *nomem = true;
            return false;
        }
    } else if (IS("numbytes")) {
        if (v->sp_map || !v->sp_odd)
            return false;
        v->sp_odd = false;
        v->sp.v[v->sp.n - 1].len = n;
    }
#undef IS
    return true;
}

/* Reads the SIZE bytes of an extended header's data at OFF into sc->ext
 * (NUL-terminated), growing the buffer only as data actually arrives. */
static kvro_status read_ext(scan *sc, int64_t off, int64_t size, int64_t hdr, kvro_error *err)
{
    if (size > TAR_EXT_MAX) {
        /* Too large to hold, unless it is not there at all: a size past the
         * end is damage, not a limit of ours. (Nothing is read after this,
         * so the source may skip.) */
        bool there;
        kvro_status s = sc->src->has(sc->src, off + size, &there, err);
        if (s != KVRO_OK)
            return s;
        if (!there)
            return kvro_error_set(err, KVRO_E_CORRUPT,
                                  "tar: extended header at offset %lld of %lld bytes runs past the "
                                  "end of the archive",
                                  (long long)hdr, (long long)size);
        return kvro_error_set(err, KVRO_E_UNSUPPORTED,
                              "tar: extended header at offset %lld has %lld bytes, more than %d",
                              (long long)hdr, (long long)size, TAR_EXT_MAX);
    }
    size_t n = (size_t)size, done = 0;
    while (done < n || !sc->ext) {
        size_t want = n - done < 65536 ? n - done : 65536;
        if (done + want + 1 > sc->ext_cap) {
            size_t cap = sc->ext_cap ? sc->ext_cap * 2 : 4096;
            while (cap < done + want + 1)
                cap *= 2;
            char *e = realloc(sc->ext, cap);
            if (!e)
                return oom(err);
            sc->ext = e;
            sc->ext_cap = cap;
        }
        size_t got;
        kvro_status s =
            sc->src->read(sc->src, off + (int64_t)done, sc->ext + done, want, &got, err);
        if (s != KVRO_OK)
            return s;
        done += got;
        if (got < want)
            return kvro_error_set(err, KVRO_E_CORRUPT,
                                  "tar: archive ends inside the extended header at offset %lld",
                                  (long long)hdr);
    }
    sc->ext[n] = '\0';
    /* Its padding too: an extended header describes a member that follows,
     * and an archive that ends inside one is cut (GNU tar, bsdtar and
     * Python refuse it), not an empty archive. */
    bool padded;
    kvro_status s = sc->src->has(sc->src, off + (size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK,
                                 &padded, err);
    if (s != KVRO_OK)
        return s;
    if (!padded)
        return kvro_error_set(err, KVRO_E_CORRUPT,
                              "tar: archive ends inside the extended header at offset %lld",
                              (long long)hdr);
    return KVRO_OK;
}

static kvro_status set_string(pv_state *st, char **s, const tar_pax_record *r, int64_t hdr,
                              kvro_error *err)
{
    free(*s);
    *s = NULL;
    if (r->value_len == 0) {
        *st = PV_DELETED;
        return KVRO_OK;
    }
    if (memchr(r->value, '\0', r->value_len))
        return kvro_error_set(err, KVRO_E_CORRUPT,
                              "tar: pax %.*s in the extended header at offset %lld holds a NUL",
                              (int)r->key_len, r->key, (long long)hdr);
    *s = malloc(r->value_len + 1);
    if (!*s)
        return oom(err);
    memcpy(*s, r->value, r->value_len);
    (*s)[r->value_len] = '\0';
    *st = PV_SET;
    return KVRO_OK;
}

/* Whether P[N] holds the name of a record that decides a member's name,
 * link target, size or data layout ("linkpath" and "GNU.sparse.name" hold
 * "path", "GNU.sparse.size" both). Damaged bytes that do are not guessed
 * at. */
static bool may_hold_layout_key(const char *p, size_t n)
{
    static const char *const keys[] = {"path", "size", "GNU.sparse"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        size_t kl = strlen(keys[k]);
        for (size_t i = 0; i + kl <= n; i++)
            if (p[i] == keys[k][0] && memcmp(p + i, keys[k], kl) == 0)
                return true;
    }
    return false;
}

/* Whether the damaged record at P[N] has a NUL in its key: every reader
 * (GNU tar, bsdtar, Go, Python) refuses that rather than read past it. */
static bool key_has_nul(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    if (i < n && p[i] == ' ')
        i++;
    for (; i < n && p[i] != '=' && p[i] != '\n'; i++)
        if (p[i] == '\0')
            return true;
    return false;
}

/* Folds the records of the pax header in sc->ext into V (sc->g for a 'g'
 * header, whose path and linkpath are ignored: see the file comment). */
static kvro_status pax_apply(scan *sc, pax_values *v, size_t len, int64_t data, int64_t hdr,
                             kvro_error *err)
{
    bool global = v == &sc->g;
    size_t pos = 0;
    for (;;) {
        tar_pax_record r;
        bool more;
        kvro_error bad_record;
        size_t at = pos;
        kvro_status s = kvro__tar_pax_next(sc->ext, len, &pos, data, &r, &more, &bad_record);
        if (s == KVRO_E_CORRUPT && !may_hold_layout_key(sc->ext + at, len - at) &&
            !key_has_nul(sc->ext + at, len - at)) {
            /* libarchive's rule: what was read stands, the rest is dropped. */
            warn_ignored(sc, "%s; the rest of that extended header is ignored",
                         bad_record.detail + (strncmp(bad_record.detail, "tar: ", 5) ? 0 : 5));
            return KVRO_OK;
        }
        if (s != KVRO_OK) {
            if (err)
                *err = bad_record;
            return s;
        }
        if (!more)
            return KVRO_OK;
        bool bad = false, fatal = false;
        int64_t ignored, size_v = 0, mtime_v = 0;
        int32_t nsec_v = 0;
        bool gnu_sparse = r.key_len > 11 && memcmp(r.key, "GNU.sparse.", 11) == 0;
        /* A map describes one member's data: a global one (no writer makes
         * one) is ignored like a global path. */
        if (global &&
            (kvro__tar_pax_is(&r, "path") || kvro__tar_pax_is(&r, "linkpath") || gnu_sparse)) {
            continue;
        } else if (kvro__tar_pax_is(&r, "path") || kvro__tar_pax_is(&r, "GNU.sparse.name")) {
            s = set_string(&v->path, &v->path_s, &r, hdr, err);
        } else if (kvro__tar_pax_is(&r, "linkpath")) {
            s = set_string(&v->linkpath, &v->linkpath_s, &r, hdr, err);
        } else if (kvro__tar_pax_is(&r, "size")) {
            fatal = bad = r.value_len && !kvro__tar_pax_uint(r.value, r.value_len, &size_v);
            v->size = r.value_len ? PV_SET : PV_DELETED;
            v->size_v = size_v;
        } else if (kvro__tar_pax_is(&r, "mtime")) {
            /* libarchive: "Ignoring malformed pax mtime", the header's stands. */
            bad = r.value_len && !kvro__tar_pax_time(r.value, r.value_len, &mtime_v, &nsec_v);
            if (!bad) {
                v->mtime = r.value_len ? PV_SET : PV_DELETED;
                v->mtime_v = mtime_v;
                v->nsec_v = nsec_v;
            }
        } else if (kvro__tar_pax_is(&r, "uid") || kvro__tar_pax_is(&r, "gid")) {
            bad = r.value_len && !kvro__tar_pax_uint(r.value, r.value_len, &ignored);
        } else if (gnu_sparse) { /* GNU's sparse formats 0.0, 0.1, 1.0 */
            bool nomem = false;
            fatal = bad = !pax_sparse(v, &r, err, &nomem);
            if (nomem)
                return KVRO_E_NOMEM;
        }
        if (s != KVRO_OK)
            return s;
        if (fatal)
            return kvro_error_set(err, KVRO_E_CORRUPT,
                                  "tar: bad pax %.*s value in the extended header at offset %lld",
                                  (int)r.key_len, r.key, (long long)hdr);
        if (bad)
            warn_ignored(sc, "bad pax %.*s value '%.*s' in the extended header at offset %lld",
                         (int)r.key_len, r.key, (int)(r.value_len < 64 ? r.value_len : 64), r.value,
                         (long long)hdr);
    }
}

static kvro_status take_ext_string(scan *sc, char **dst, int64_t size)
{
    free(*dst);
    /* GNU writes the name with its NUL inside the size; stop at the first. */
    size_t n = strnlen(sc->ext, (size_t)size);
    *dst = malloc(n + 1);
    if (!*dst)
        return KVRO_E_NOMEM;
    memcpy(*dst, sc->ext, n);
    (*dst)[n] = '\0';
    return KVRO_OK;
}

/* The effective string: this member's pax value, else the global one,
 * else GNU's long name, else the header field. */
static const char *pick(pv_state x, const char *xs, pv_state g, const char *gs, const char *gnu,
                        const char *field)
{
    if (x == PV_SET)
        return xs;
    if (x == PV_NONE && g == PV_SET)
        return gs;
    return gnu ? gnu : field;
}

static kvro_status norm_room(scan *sc, size_t n, kvro_error *err)
{
    if (n + 1 <= sc->norm_cap)
        return KVRO_OK;
    char *p = realloc(sc->norm, n + 1);
    if (!p)
        return oom(err);
    sc->norm = p;
    sc->norm_cap = n + 1;
    return KVRO_OK;
}

static const char *member_name(const scan *sc, const tar_header *h)
{
    return pick(sc->x.path, sc->x.path_s, sc->g.path, sc->g.path_s, sc->longname, h->name);
}

/* Builds the member from header H (at HDR, data at DATA) and what the
 * extended headers said, and adds it unless it is to be skipped. */
/* A sparse member's layout as its headers tell it: the map (not yet
 * checked), the logical size and the bytes stored. */
typedef struct sparse_layout {
    region_vec *map;
    int64_t realsize, stored;
} sparse_layout;

static kvro_status add_member(scan *sc, const tar_header *h, int64_t hdr, int64_t data,
                              int64_t size, const sparse_layout *sp, kvro_error *err)
{
    const char *name = member_name(sc, h);
    const char *link = pick(sc->x.linkpath, sc->x.linkpath_s, sc->g.linkpath, sc->g.linkpath_s,
                            sc->longlink, h->link);
    tar_member m = {.off = data, .size = size, .mode = h->mode};
    m.mtime = h->mtime;
    if (sc->x.mtime == PV_SET || (sc->x.mtime == PV_NONE && sc->g.mtime == PV_SET)) {
        const pax_values *v = sc->x.mtime == PV_SET ? &sc->x : &sc->g;
        m.mtime = v->mtime_v;
        m.nsec = v->nsec_v;
    }
    switch (h->type) {
    case TAR_T_HARDLINK: m.kind = TAR_K_HARDLINK; break;
    case TAR_T_SYMLINK: m.kind = TAR_K_SYMLINK; break;
    case TAR_T_DIR: m.kind = TAR_K_DIR; break;
    case TAR_T_SPECIAL: m.kind = TAR_K_SPECIAL; break;
    case TAR_T_SPARSE: m.kind = TAR_K_SPARSE; break;
    default: m.kind = sp ? TAR_K_SPARSE : TAR_K_FILE; break;
    }
    size_t nlen = strlen(name), llen = strlen(link);
    kvro_status s = norm_room(sc, nlen + llen + 1, err);
    if (s != KVRO_OK)
        return s;
    char *path = sc->norm, *target = sc->norm + nlen + 1;
    if (kvro__tar_path_normalise(name, nlen, path) != TAR_PATH_OK) {
        warn(sc, "member '%s' at offset %lld: its path has a '.' or '..' component",
             name, (long long)hdr);
        return KVRO_OK;
    }
    if (strlen(path) > KVRO_KEY_MAX) {
        warn(sc, "member '%.200s...' at offset %lld: its path is too long", path,
             (long long)hdr);
        return KVRO_OK;
    }
    if (!*path && m.kind != TAR_K_DIR) {
        warn(sc, "member '%s' at offset %lld: a non-directory named as the root", name,
             (long long)hdr);
        return KVRO_OK;
    }
    if (m.kind == TAR_K_HARDLINK) {
        /* Hard links name a member exactly, so they are normalised like one. */
        if (kvro__tar_path_normalise(link, llen, target) != TAR_PATH_OK || !*target) {
            warn(sc,
                 "hard link '%s' at offset %lld: its target is not a member "
                 "name kvro serves",
                 path, (long long)hdr);
            return KVRO_OK;
        }
        m.link = target;
    } else if (m.kind == TAR_K_SYMLINK) {
        m.link = link; /* kept as written: resolved relative to its directory at lookup */
    }
    if (m.kind == TAR_K_SPARSE) {
        size_t n = sp->map->n;
        s = kvro__tar_sparse_check(sp->map->v, &n, sp->realsize, sp->stored, path, err);
        if (s != KVRO_OK)
            return s;
        m.regions = sp->map->v;
        m.nregions = n;
        m.size = sp->realsize;
        m.stored = sp->stored;
    }
    m.path = path;
    return kvro__tar_index_add(sc->ix, &m, hdr, err);
}

static kvro_status sparse_corrupt(kvro_error *err, const char *name, int64_t hdr, const char *why)
{
    return kvro_error_set(err, KVRO_E_CORRUPT, "tar: sparse member '%s' at offset %lld: %s", name,
                          (long long)hdr, why);
}

/* Old GNU sparse ('S'): the map's first entries are in the header BLK, the
 * rest in extension blocks from *DATA on, which *DATA moves past. */
static kvro_status old_gnu_map(scan *sc, const unsigned char *blk, const tar_header *h, int64_t hdr,
                               int64_t *data, sparse_layout *sp, kvro_error *err)
{
    const char *name = member_name(sc, h);
    sc->map.n = 0;
    sp->map = &sc->map;
    if (!kvro__tar_sparse_realsize(blk, &sp->realsize))
        return sparse_corrupt(err, name, hdr, "bad real size field");
    bool ended = false, more = h->sparse_ext, ext = false;
    unsigned char eb[TAR_BLOCK];
    const unsigned char *b = blk;
    for (;;) {
        size_t count = ext ? TAR_SPARSE_IN_EXT : TAR_SPARSE_IN_HEADER;
        for (size_t i = 0; i < count && !ended; i++) {
            int64_t off, len;
            tar_sparse_entry_kind k = kvro__tar_sparse_entry(b, ext, i, &off, &len);
            if (k == TAR_SPARSE_BAD)
                return sparse_corrupt(err, name, hdr, "bad number in its sparse map");
            if (k == TAR_SPARSE_END)
                ended = true;
            else if (region_push(&sc->map, off, len, err) != KVRO_OK)
                return oom(err);
        }
        if (!more)
            return KVRO_OK;
        size_t got;
        kvro_status s = sc->src->read(sc->src, *data, eb, TAR_BLOCK, &got, err);
        if (s == KVRO_OK && got < TAR_BLOCK)
            s = kvro_error_set(err, KVRO_E_CORRUPT,
                               "tar: archive ends in the sparse map at offset %lld",
                               (long long)*data);
        if (s != KVRO_OK)
            return s;
        *data += TAR_BLOCK;
        b = eb;
        ext = true;
        more = kvro__tar_sparse_ext_continues(eb);
    }
}

/* GNU sparse 1.0: the map opens the member's data, as decimal numbers
 * ended by newlines (the count, then offset and size pairs), padded to a
 * block; *DATA and SP->stored move past it. Each number takes two bytes at
 * least, which bounds the count by the data. Lines starting with '#' are
 * skipped, as libarchive skips them ("#!gnu-sparse-format" in its
 * test_read_format_gtar_sparse_1_17_posix10_modified.tar). */
static kvro_status map_10(scan *sc, const char *name, int64_t hdr, int64_t *data, int64_t size,
                          sparse_layout *sp, kvro_error *err)
{
    sc->map.n = 0;
    sp->map = &sc->map;
    int64_t pos = 0, count = -1, v = 0, fields = 0;
    int digits = 0;
    bool done = false, comment = false;
    while (!done) {
        unsigned char b[TAR_BLOCK];
        size_t got;
        if (pos >= size)
            return sparse_corrupt(err, name, hdr, "its sparse map runs past its data");
        kvro_status s = sc->src->read(sc->src, *data + pos, b, TAR_BLOCK, &got, err);
        if (s != KVRO_OK)
            return s;
        if (got < TAR_BLOCK)
            return sparse_corrupt(err, name, hdr, "the archive ends in its sparse map");
        pos += TAR_BLOCK;
        for (size_t i = 0; i < TAR_BLOCK && !done; i++) {
            if (comment || (b[i] == '#' && digits == 0)) {
                comment = b[i] != '\n';
                continue;
            }
            if (b[i] >= '0' && b[i] <= '9') {
                if (v > (INT64_MAX - 9) / 10)
                    return sparse_corrupt(err, name, hdr, "a number too large in its sparse map");
                v = v * 10 + (b[i] - '0');
                digits++;
                continue;
            }
            if (b[i] != '\n' || digits == 0)
                return sparse_corrupt(err, name, hdr, "bad text in its sparse map");
            if (count < 0) {
                if (v > size / 4)
                    return sparse_corrupt(err, name, hdr, "more regions than its data can hold");
                count = v;
            } else if (fields++ % 2 == 0) {
                if (region_push(&sc->map, v, 0, err) != KVRO_OK)
                    return oom(err);
            } else {
                sc->map.v[sc->map.n - 1].len = v;
            }
            done = fields == 2 * count;
            v = 0;
            digits = 0;
        }
    }
    if (pos > size)
        return sparse_corrupt(err, name, hdr, "its sparse map runs past its data");
    *data += pos;
    sp->stored = size - pos;
    return KVRO_OK;
}

/* A pax member's sparse layout, told as Python's tarfile tells it: a
 * GNU.sparse.map is 0.1, else GNU.sparse.size or offsets are 0.0, else
 * major 1 minor 0 is 1.0 (the map in the data). */
static kvro_status pax_sparse_layout(scan *sc, const tar_header *h, int64_t hdr, int64_t *data,
                                     int64_t size, sparse_layout *sp, kvro_error *err)
{
    const pax_values *x = &sc->x;
    const char *name = member_name(sc, h);
    sp->stored = size;
    sp->realsize = x->sp_size >= 0 ? x->sp_size : x->sp_realsize;
    if (x->sp_map || x->sp_pairs || x->sp_size >= 0) {
        if (x->sp_odd)
            return sparse_corrupt(err, name, hdr, "a GNU.sparse.offset without its numbytes");
        sp->map = (region_vec *)&x->sp;
    } else if (x->sp_major == 1 && x->sp_minor <= 0) {
        kvro_status s = map_10(sc, name, hdr, data, size, sp, err);
        if (s != KVRO_OK)
            return s;
    } else if (x->sp_major >= 0) {
        return kvro_error_set(err, KVRO_E_UNSUPPORTED,
                              "tar: sparse member '%s' at offset %lld: GNU sparse format "
                              "%lld.%lld is not one kvro reads",
                              name, (long long)hdr, (long long)x->sp_major,
                              (long long)(x->sp_minor < 0 ? 0 : x->sp_minor));
    } else {
        return sparse_corrupt(err, name, hdr, "GNU.sparse records but no sparse map");
    }
    if (sp->realsize < 0)
        return sparse_corrupt(err, name, hdr, "no GNU.sparse.size or realsize");
    return KVRO_OK;
}

static void reset_member_state(scan *sc)
{
    pax_clear(&sc->x);
    free(sc->longname);
    free(sc->longlink);
    sc->longname = sc->longlink = NULL;
    sc->pending = -1;
}

/* Handles the header block H at POS; *next gets the following header's
 * offset, *end whether the archive ended. */
static kvro_status one_header(scan *sc, const unsigned char *blk, int64_t pos, int64_t *next,
                              kvro_error *err)
{
    tar_header h;
    kvro_status s = kvro__tar_header_decode(blk, pos, &h, err);
    if (s != KVRO_OK)
        return s;
    int64_t data = pos + TAR_BLOCK;
    int64_t size = h.size;
    bool member = h.type <= TAR_T_SPARSE;
    /* Judged on the final name: a GNU 'L' or pax path may well have '/' at
     * byte 100 of a longer regular file's name. */
    if (member && kvro__tar_old_style_dir(h.typeflag, member_name(sc, &h)))
        h.type = TAR_T_DIR;
    if (member && (sc->x.size == PV_SET || (sc->x.size == PV_NONE && sc->g.size == PV_SET)))
        size = sc->x.size == PV_SET ? sc->x.size_v : sc->g.size_v;
    /* No data after links, devices, FIFOs and directories, whatever the size
     * (kvro__tar_header_only says who agrees). An old-style directory with a
     * size: libarchive and Python ('\0') skip no data, GNU tar and Go skip
     * the size. We skip none: if those bytes were data, the next header's
     * checksum fails loudly, where skipping them would silently hide the
     * member they hold. GNU 'D' dumpdirs do carry data (their listing). */
    if (kvro__tar_header_only(h.typeflag) || (h.type == TAR_T_DIR && h.typeflag != 'D'))
        size = 0;
    if (size > INT64_MAX - data - TAR_BLOCK)
        return kvro_error_set(err, KVRO_E_CORRUPT, "tar: size %lld at offset %lld is too large",
                              (long long)size, (long long)pos);

    sparse_layout layout = {0}, *sparse = NULL;
    switch (h.type) {
    case TAR_T_LONGNAME:
    case TAR_T_LONGLINK:
        s = read_ext(sc, data, size, pos, err);
        if (s == KVRO_OK &&
            take_ext_string(sc, h.type == TAR_T_LONGNAME ? &sc->longname : &sc->longlink, size) !=
                KVRO_OK)
            s = oom(err);
        break;
    case TAR_T_PAX:
    case TAR_T_PAX_GLOBAL:
        s = read_ext(sc, data, size, pos, err);
        if (h.type == TAR_T_PAX) /* only the last of several applies */
            pax_clear(&sc->x);
        if (s == KVRO_OK)
            s = pax_apply(sc, h.type == TAR_T_PAX ? &sc->x : &sc->g, (size_t)size, data, pos, err);
        break;
    case TAR_T_SPARSE:
        /* GNU old sparse: the map may continue in extension blocks before
         * the data. */
        s = old_gnu_map(sc, blk, &h, pos, &data, &layout, err);
        layout.stored = size;
        sparse = &layout;
        break;
    default: break;
    }
    /* The next header follows the data the size field counts (a 1.0 map
     * is part of it). */
    int64_t next_at = data + ((size + TAR_BLOCK - 1) & ~(int64_t)(TAR_BLOCK - 1));
    if (s == KVRO_OK && h.type == TAR_T_FILE && sc->x.sparse) {
        s = pax_sparse_layout(sc, &h, pos, &data, size, &layout, err);
        size = layout.stored;
        sparse = &layout;
    }
    if (s != KVRO_OK)
        return s;
    if (h.type != TAR_T_LONGNAME && h.type != TAR_T_LONGLINK && h.type != TAR_T_PAX &&
        h.type != TAR_T_PAX_GLOBAL) {
        bool ok;
        s = sc->src->has(sc->src, data + size, &ok, err);
        if (s != KVRO_OK)
            return s;
        if (!ok)
            return kvro_error_set(err, KVRO_E_CORRUPT,
                                  "tar: member '%s' at offset %lld: its %lld bytes of data run "
                                  "past the end of the archive",
                                  member_name(sc, &h), (long long)pos, (long long)size);
    }
    if (member) {
        s = add_member(sc, &h, pos, data, size, sparse, err);
        reset_member_state(sc);
    } else if (h.type != TAR_T_PAX_GLOBAL && h.type != TAR_T_IGNORED && sc->pending < 0) {
        sc->pending = pos;
    }
    *next = next_at;
    return s;
}

kvro_status kvro__tar_scan(tar_src *src, tar_index *ix, tar_warnings *w, kvro_error *err)
{
    scan sc = {.src = src, .ix = ix, .w = w, .pending = -1};
    pax_clear(&sc.x);
    kvro_status s = KVRO_OK;
    int64_t pos = 0;
    for (;;) {
        unsigned char blk[TAR_BLOCK];
        size_t got;
        s = src->read(src, pos, blk, TAR_BLOCK, &got, err);
        if (s != KVRO_OK)
            break;
        if (got > 0 && got < TAR_BLOCK) {
            s = kvro_error_set(err, KVRO_E_CORRUPT, "tar: truncated header at offset %lld",
                               (long long)pos);
            break;
        }
        /* The end: EOF at a header boundary, or the first zero block (a
         * second one usually follows; GNU tar stops at the first too). */
        if (got == 0 || kvro__tar_block_is_zero(blk)) {
            if (sc.pending >= 0)
                s = kvro_error_set(err, KVRO_E_CORRUPT,
                                   "tar: archive ends after the extended header at offset %lld, "
                                   "before its member",
                                   (long long)sc.pending);
            break;
        }
        s = one_header(&sc, blk, pos, &pos, err);
        if (s != KVRO_OK)
            break;
    }
    reset_member_state(&sc);
    pax_clear(&sc.g);
    free(sc.map.v);
    free(sc.ext);
    free(sc.norm);
    return s;
}
