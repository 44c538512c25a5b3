/*
 * fat_dir.c — directories: the 32-byte entries, VFAT long names, short
 * names, timestamps, and lookups by name.
 *
 * Entries follow the FAT specification, section 6; long names its
 * section 7 (VFAT): slots of 13 UTF-16 units (at 1, 14 and 28) stored last
 * first before their short entry, the first stored ORed with 0x40, each
 * carrying the checksum of the short name. A slot set that is broken (an
 * order out of sequence, a checksum that does not match the short entry,
 * an unpaired surrogate, more than 255 units) is ignored and the short
 * name used, as the Linux driver does (fs/fat/dir.c). Units beyond the
 * BMP arrive as surrogate pairs and become 4-byte UTF-8.
 *
 * Short names: 8 + 3 bytes, space padded, 0x05 standing for a leading
 * 0xE5; bytes above 0x7F are code page 437 (Linux's default codepage=437)
 * and become UTF-8; the NT flags in byte 12 (0x08 base, 0x10 extension)
 * mean that part is lower case, as Windows and Linux write "readme.txt"
 * without a long name (and mtools "données" as DONN\x90ES with the flag:
 * the code page's letters are lowered too, with the folding below).
 *
 * Skipped: "." and "..", volume labels, deleted entries (0xE5); 0x00 ends
 * the directory. A name no key can spell (one holding '/') is skipped too.
 *
 * Lookups are case-insensitive, as on every FAT implementation. The
 * folding is Unicode simple case folding restricted to ASCII, Latin-1,
 * Latin Extended-A, Greek (U+0391-U+03A9) and Cyrillic (U+0400-U+042F);
 * other characters compare exactly. That covers what Windows' and
 * Linux's (nls tables) folding agree on for those scripts; Windows folds
 * more of the BMP with its own up-case table. A lookup finds the first
 * entry in stored order whose name matches under that folding, as Linux's
 * does (fat_search_long): two names equal under it ("A.TXT" and "a.txt",
 * or one name stored twice) are a damaged directory, and the later entry
 * can never be reached, so listings refuse such a directory rather than
 * show a name stat would not find (fat.c). Listings give the stored long
 * name. A file is found by the name it is listed under only: its
 * generated short alias ("LONGNA~1") is not a second key.
 *
 * Timestamps: the last-write date and time (byte 24, 22), 2-second
 * resolution, local time of whoever wrote them read as UTC.
 *
 * The directory cache. Resolving a key reads each directory on its way,
 * so without one every stat and read of a value read its directories
 * again, and the core's listing with stats (a stat per entry, each
 * searching the directory from its start) was quadratic. A directory is
 * decoded whole, once, into a listing: its entries in stored order and a
 * hash set of their folded names, in which a name an earlier entry has
 * is not entered (a lookup finds the first, as a scan does; listings are
 * refused, fat.c). Listings are immutable and reference-counted, in a
 * direct-mapped table of FAT_LISTING_SLOTS keyed by the directory's first
 * cluster, under one mutex held only to find or swap one; readers use a
 * listing after the lock is dropped. Memory: at most FAT_LISTING_BYTES a
 * handle (16 MiB), counted from what each listing holds; a new one evicts
 * others round-robin until it fits (one larger is used once and not
 * kept). The write side changes directories, so fat.c bumps a generation
 * around each write-side operation (kvro__fat_dircache_bump) and every
 * listing goes; a listing read while a write was under way is not kept,
 * and the write side's own lookups read the image as it is. A directory
 * that cannot be read whole (cut short) is searched as before, as far as
 * it goes.
 */
#include "fat_vol.h"

#include <stdlib.h>
#include <string.h>

kvro_status kvro__fat_read_exact(fat_vol *v, int64_t off, void *buf, size_t n, const char *what,
                                 kvro_error *err)
{
    size_t got = 0;
    kvro_status s = kvro_io_read(v->io, off, buf, n, &got, err);
    if (s == KVRO_OK && got != n)
        s = kvro_error_set(err, KVRO_E_CORRUPT, "FAT: %s at byte %lld lies past the end of the image",
                           what, (long long)(off + got));
    return s;
}

/* Code page 437, bytes 0x80-0xFF: short names decode (here) and encode
 * (fat_name.c) through this one table. */
const uint16_t kvro__fat_cp437[128] = {
    0x00C7, 0x00FC, 0x00E9, 0x00E2, 0x00E4, 0x00E0, 0x00E5, 0x00E7, 0x00EA, 0x00EB, 0x00E8, 0x00EF,
    0x00EE, 0x00EC, 0x00C4, 0x00C5, 0x00C9, 0x00E6, 0x00C6, 0x00F4, 0x00F6, 0x00F2, 0x00FB, 0x00F9,
    0x00FF, 0x00D6, 0x00DC, 0x00A2, 0x00A3, 0x00A5, 0x20A7, 0x0192, 0x00E1, 0x00ED, 0x00F3, 0x00FA,
    0x00F1, 0x00D1, 0x00AA, 0x00BA, 0x00BF, 0x2310, 0x00AC, 0x00BD, 0x00BC, 0x00A1, 0x00AB, 0x00BB,
    0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556, 0x2555, 0x2563, 0x2551, 0x2557,
    0x255D, 0x255C, 0x255B, 0x2510, 0x2514, 0x2534, 0x252C, 0x251C, 0x2500, 0x253C, 0x255E, 0x255F,
    0x255A, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256C, 0x2567, 0x2568, 0x2564, 0x2565, 0x2559,
    0x2558, 0x2552, 0x2553, 0x256B, 0x256A, 0x2518, 0x250C, 0x2588, 0x2584, 0x258C, 0x2590, 0x2580,
    0x03B1, 0x00DF, 0x0393, 0x03C0, 0x03A3, 0x03C3, 0x00B5, 0x03C4, 0x03A6, 0x0398, 0x03A9, 0x03B4,
    0x221E, 0x03C6, 0x03B5, 0x2229, 0x2261, 0x00B1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00F7, 0x2248,
    0x00B0, 0x2219, 0x00B7, 0x221A, 0x207F, 0x00B2, 0x25A0, 0x00A0,
};

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Appends code point CP as UTF-8 to OUT at *N (room checked by callers:
 * at most 4 bytes). */
static void put_utf8(char *out, size_t *n, uint32_t cp)
{
    unsigned char *o = (unsigned char *)out + *n;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        *n += 1;
    } else if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        *n += 2;
    } else if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        *n += 3;
    } else {
        o[0] = (unsigned char)(0xF0 | cp >> 18);
        o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[3] = (unsigned char)(0x80 | (cp & 0x3F));
        *n += 4;
    }
}

/* The next code point of UTF-8 S (N bytes) at *I; a byte that does not
 * start a well-formed sequence stands for itself, above every code point,
 * so that names which are not UTF-8 still compare byte for byte. */
static uint32_t next_cp(const char *s, size_t n, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[*i];
    size_t len = c < 0x80                 ? 1
                 : c >= 0xC2 && c <= 0xDF ? 2
                 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    if (len == 0 || *i + len > n) {
        (*i)++;
        return 0x110000u + c;
    }
    for (size_t k = 1; k < len; k++) {
        if ((u[*i + k] & 0xC0) != 0x80) {
            (*i)++;
            return 0x110000u + c;
        }
        cp = cp << 6 | (u[*i + k] & 0x3F);
    }
    *i += len;
    return cp;
}

/* Simple case folding for the scripts named in the header comment. */
static uint32_t fold(uint32_t c)
{
    if (c < 0x80)
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 32;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x178)
            return 0xFF;
        if ((c <= 0x12F || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) && !(c & 1))
            return c + 1;
        if (((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) && (c & 1))
            return c + 1;
        return c;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        return c + 32;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    return c;
}

bool kvro__fat_name_equal(const char *a, size_t an, const char *b, size_t bn)
{
    size_t i = 0, j = 0;
    while (i < an && j < bn)
        if (fold(next_cp(a, an, &i)) != fold(next_cp(b, bn, &j)))
            return false;
    return i == an && j == bn;
}

uint32_t kvro__fat_fold_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n;)
        h = (h ^ fold(next_cp(s, n, &i))) * 16777619u;
    return h;
}

int64_t kvro__fat_time(uint16_t date, uint16_t time)
{
    unsigned day = date & 31, month = date >> 5 & 15, year = 1980 + (date >> 9);
    unsigned sec = (time & 31) * 2, min = time >> 5 & 63, hour = time >> 11;
    if (date == 0 || day == 0 || month == 0 || month > 12 || hour > 23 || min > 59 || sec > 59)
        return 0;
    /* Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm). */
    int y = (int)year - (month <= 2);
    int era = y / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    return days * 86400 + hour * 3600 + min * 60 + sec;
}

/* ------------------------------------------------------------- names */

/* The short name of entry E in UTF-8 into OUT; false if no key can
 * spell it. */
static bool short_name(const unsigned char *e, char *out, size_t *len)
{
    size_t n = 0, base = 8, ext = 3;
    while (base && e[base - 1] == ' ')
        base--;
    while (ext && e[8 + ext - 1] == ' ')
        ext--;
    for (size_t i = 0; i < base + ext; i++) {
        size_t at = i < base ? i : 8 + (i - base);
        if (i == base)
            out[n++] = '.';
        unsigned char c = at == 0 && e[0] == 0x05 ? 0xE5 : e[at];
        bool lower = at < 8 ? e[12] & 0x08 : e[12] & 0x10;
        if (c < 0x20 || c == '/')
            return false;
        uint32_t cp = c >= 0x80 ? kvro__fat_cp437[c - 0x80] : c;
        put_utf8(out, &n, lower ? fold(cp) : cp);
    }
    *len = n;
    return n > 0;
}

static uint8_t lfn_checksum(const unsigned char *e)
{
    uint8_t sum = 0;
    for (int i = 0; i < 11; i++)
        sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + e[i]);
    return sum;
}

/* Long-name slots gathered so far, waiting for their short entry. */
typedef struct lfn_state {
    int slots;   /* in the set; 0: none pending */
    int next;    /* the order the next slot must have; 0: the set is whole */
    uint8_t sum; /* the checksum every slot carries */
    uint16_t u[20 * 13];
} lfn_state;

static void lfn_slot(lfn_state *l, const unsigned char *e)
{
    static const uint8_t at[13] = {1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30};
    int ord = e[0] & 0x3F;
    if (e[0] & 0x40) {
        l->slots = ord & 0x1F;
        l->next = ord;
        l->sum = e[13];
        if (ord < 1 || ord > 20)
            l->slots = 0;
    }
    if (!l->slots || ord != l->next || ord < 1 || e[13] != l->sum) {
        l->slots = 0;
        return;
    }
    for (int i = 0; i < 13; i++)
        l->u[(ord - 1) * 13 + i] = le16(e + at[i]);
    l->next = ord - 1;
}

/* The long name of a whole slot set in UTF-8; false if it is not a name
 * (too long, an unpaired surrogate, '/', "." or ".."). */
static bool long_name(const lfn_state *l, char *out, size_t *len)
{
    size_t units = 0, max = (size_t)l->slots * 13, n = 0;
    while (units < max && l->u[units] != 0)
        units++;
    if (units == 0 || units > FAT_LFN_UNITS)
        return false;
    for (size_t i = 0; i < units; i++) {
        uint32_t c = l->u[i];
        if (c >= 0xD800 && c <= 0xDBFF && i + 1 < units && l->u[i + 1] >= 0xDC00 &&
            l->u[i + 1] <= 0xDFFF)
            c = 0x10000 + ((c - 0xD800) << 10) + (l->u[++i] - 0xDC00);
        else if (c >= 0xD800 && c <= 0xDFFF)
            return false;
        if (c == '/')
            return false;
        put_utf8(out, &n, c);
    }
    if ((n == 1 && out[0] == '.') || (n == 2 && out[0] == '.' && out[1] == '.'))
        return false;
    *len = n;
    return true;
}

/* ------------------------------------------------------------ walking */

typedef struct dir_walk {
    lfn_state lfn;
    fat_dirent d;
    bool ended;   /* a 0x00 entry was met */
    bool unnamed; /* entries no key can spell are passed too, with an empty name */
} dir_walk;

/* One entry E at volume offset POS: 1 if FN stopped the walk, -1 at the
 * end of the directory, else 0. */
static int one_entry(dir_walk *w, const unsigned char *e, int64_t pos, int fat_type,
                     fat_dirent_fn fn, void *arg)
{
    if (e[0] == 0x00) {
        w->ended = true;
        return -1;
    }
    if (e[0] == 0xE5) {
        w->lfn.slots = 0;
        return 0;
    }
    if ((e[11] & 0x3F) == 0x0F) {
        lfn_slot(&w->lfn, e);
        return 0;
    }
    bool have_lfn = w->lfn.slots && w->lfn.next == 0 && w->lfn.sum == lfn_checksum(e);
    lfn_state *l = &w->lfn;
    if ((e[11] & 0x08) || (e[0] == '.' && (e[1] == ' ' || (e[1] == '.' && e[2] == ' ')))) {
        l->slots = 0;
        return 0;
    }
    fat_dirent *d = &w->d;
    bool named =
        (have_lfn && long_name(l, d->name, &d->name_len)) || short_name(e, d->name, &d->name_len);
    l->slots = 0;
    if (!named && !w->unnamed)
        return 0;
    if (!named)
        d->name_len = 0;
    d->name[d->name_len] = '\0';
    d->node = (fat_node){
        .first = (uint32_t)le16(e + 26) | (uint32_t)le16(e + 20) << 16,
        .size = (uint32_t)le16(e + 28) | (uint32_t)le16(e + 30) << 16,
        .attr = e[11],
        .time = le16(e + 22),
        .date = le16(e + 24),
        .pos = pos,
        .dir = (e[11] & 0x10) != 0,
    };
    if (fat_type != 32) /* the high word is FAT32's only (OS/2 kept EA handles there) */
        d->node.first &= 0xFFFF;
    return fn(arg, d) ? 1 : 0;
}

/* Walks BUF (N bytes of directory at volume offset POS). */
static int entries(dir_walk *w, const unsigned char *buf, size_t n, int64_t pos, int fat_type,
                   fat_dirent_fn fn, void *arg)
{
    for (size_t o = 0; o + FAT_DIRENT <= n; o += FAT_DIRENT) {
        int r = one_entry(w, buf + o, pos + (int64_t)o, fat_type, fn, arg);
        if (r)
            return r;
    }
    return 0;
}

static kvro_status dir_each(fat_vol *v, const fat_node *dir, bool unnamed, fat_dirent_fn fn,
                           void *arg, kvro_error *err)
{
    const fat_bpb *b = &v->bpb;
    dir_walk *w = malloc(sizeof *w);
    if (!w)
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    memset(&w->lfn, 0, sizeof w->lfn);
    w->ended = false;
    w->unnamed = unnamed;
    kvro_status s = KVRO_OK;
    unsigned char *buf = NULL;
    fat_chain *ch = NULL;
    uint32_t first = dir->pos == 0 && b->type == 32 ? b->root_cluster : dir->first;
    if (dir->pos == 0 && b->type != 32) {
        /* The FAT12/16 root: a fixed region after the FATs. */
        buf = malloc(b->root_bytes);
        s = buf ? kvro__fat_read_exact(v, b->root_off, buf, b->root_bytes, "the root directory",
                                       err)
                : kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
        if (s == KVRO_OK)
            entries(w, buf, b->root_bytes, b->root_off, b->type, fn, arg);
        goto done;
    }
    uint32_t max = (FAT_DIR_MAX + b->cluster_size - 1) / b->cluster_size;
    s = kvro__fat_chain_get(&v->table, first, max < b->clusters ? max : b->clusters, true, &ch,
                            err);
    if (s != KVRO_OK)
        goto done;
    /* Consecutive clusters up to 64 KiB a call: a directory is mostly read
     * whole (the cache decodes it at once), and memory stays small. */
    uint32_t per = b->cluster_size >= 65536 ? 1 : 65536 / b->cluster_size;
    if (per > ch->length)
        per = ch->length;
    buf = malloc((size_t)per * b->cluster_size);
    if (!buf)
        s = kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    for (uint32_t r = 0; s == KVRO_OK && r < ch->nruns; r++)
        for (uint32_t k = 0; s == KVRO_OK && k < ch->runs[r].count; k += per) {
            uint32_t count = ch->runs[r].count - k < per ? ch->runs[r].count - k : per;
            size_t n = (size_t)count * b->cluster_size, got = 0;
            int64_t pos = b->data_off + (int64_t)(ch->runs[r].cluster + k - 2) * b->cluster_size;
            s = kvro_io_read(v->io, pos, buf, n, &got, err);
            /* An image cut short: its whole clusters are walked first, as
             * when each was read alone (the end of the directory may lie
             * before the cut). */
            size_t whole = got / b->cluster_size * b->cluster_size;
            if (s == KVRO_OK && entries(w, buf, whole, pos, b->type, fn, arg))
                goto done;
            if (s == KVRO_OK && got < n)
                s = kvro_error_set(err, KVRO_E_CORRUPT,
                                   "FAT: a directory cluster at byte %lld lies past the end of "
                                   "the image",
                                   (long long)(pos + (int64_t)got));
        }
done:
    kvro__fat_chain_put(&v->table, ch);
    free(buf);
    free(w);
    return s;
}

kvro_status kvro__fat_dir_each(fat_vol *v, const fat_node *dir, fat_dirent_fn fn, void *arg,
                               kvro_error *err)
{
    return dir_each(v, dir, false, fn, arg, err);
}

kvro_status kvro__fat_dir_each_all(fat_vol *v, const fat_node *dir, fat_dirent_fn fn, void *arg,
                                   kvro_error *err)
{
    return dir_each(v, dir, true, fn, arg, err);
}

/* ------------------------------------------------------------- listings */

/* The slot of a name hashing to H in L: its first match, or the empty
 * slot where it would go. NAME NULL finds the empty slot only. */
static uint32_t *name_slot(const fat_listing *l, uint32_t h, const char *name, size_t n)
{
    size_t mask = l->nslots - 1, i = h & mask;
    for (; l->slot[i]; i = (i + 1) & mask) {
        const fat_listed *o = &l->e[l->slot[i] - 1];
        if (name && o->hash == h && kvro__fat_name_equal(l->names + o->off, o->len, name, n))
            break;
    }
    return &l->slot[i];
}

/* Room in L for one more entry with a name of LEN bytes; false out of
 * memory. */
static bool listing_room(fat_listing *l, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        fat_listed *e = realloc(l->e, cap * sizeof *e);
        if (!e)
            return false;
        l->e = e;
        l->cap = cap;
    }
    if (l->used + len + 1 > l->size) {
        size_t size = l->size ? 2 * l->size : 4096;
        while (size < l->used + len + 1)
            size *= 2;
        char *a = realloc(l->names, size);
        if (!a)
            return false;
        l->names = a;
        l->size = size;
    }
    if (2 * (l->n + 1) > l->nslots) {
        fat_listing g = *l;
        g.nslots = l->nslots ? 2 * l->nslots : 128;
        g.slot = calloc(g.nslots, sizeof *g.slot);
        if (!g.slot)
            return false;
        for (size_t k = 0; k < l->nslots; k++)
            if (l->slot[k])
                *name_slot(&g, l->e[l->slot[k] - 1].hash, NULL, 0) = l->slot[k];
        free(l->slot);
        l->slot = g.slot;
        l->nslots = g.nslots;
    }
    return true;
}

static void listing_free(fat_listing *l)
{
    if (!l)
        return;
    free(l->e);
    free(l->names);
    free(l->slot);
    free(l);
}

typedef struct listing_fill {
    fat_listing *l;
    bool oom;
} listing_fill;

/* Appends entry E. A name an earlier entry has (under the folding) is
 * kept in the entries, for a listing to name both, but not hashed: a
 * lookup finds the first, as a scan in stored order does. */
static int listing_add(void *arg, const fat_dirent *e)
{
    listing_fill *f = arg;
    fat_listing *l = f->l;
    if (!listing_room(l, e->name_len)) {
        f->oom = true;
        return 1;
    }
    uint32_t h = kvro__fat_fold_hash(e->name, e->name_len);
    uint32_t *slot = name_slot(l, h, e->name, e->name_len);
    if (*slot) {
        if (l->dup == SIZE_MAX) {
            l->dup = l->n;
            l->dup_of = *slot - 1;
        }
    } else {
        *slot = (uint32_t)l->n + 1;
    }
    memcpy(l->names + l->used, e->name, e->name_len + 1);
    l->e[l->n++] = (fat_listed){e->node, h, (uint32_t)e->name_len, l->used};
    l->used += e->name_len + 1;
    return 0;
}

/* Reads and decodes directory DIR into a new listing (REFS 1). */
static kvro_status listing_read(fat_vol *v, const fat_node *dir, uint32_t key, fat_listing **out,
                                kvro_error *err)
{
    fat_listing *l = calloc(1, sizeof *l);
    if (!l)
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    l->key = key;
    l->refs = 1;
    l->dup = SIZE_MAX;
    listing_fill f = {l, false};
    kvro_status s = kvro__fat_dir_each(v, dir, listing_add, &f, err);
    if (s == KVRO_OK && f.oom)
        s = kvro_error_set(err, KVRO_E_NOMEM, "out of memory reading a directory");
    if (s != KVRO_OK) {
        listing_free(l);
        return s;
    }
    if (l->dup == SIZE_MAX)
        l->dup = l->n;
    /* Kept for long, so trimmed to size (FAT_LISTING_BYTES counts on it). */
    if (l->n && l->n < l->cap) {
        fat_listed *e = realloc(l->e, l->n * sizeof *e);
        if (e) {
            l->e = e;
            l->cap = l->n;
        }
    }
    if (l->used && l->used < l->size) {
        char *a = realloc(l->names, l->used);
        if (a) {
            l->names = a;
            l->size = l->used;
        }
    }
    l->bytes = sizeof *l + l->cap * sizeof *l->e + l->size + l->nslots * sizeof *l->slot;
    *out = l;
    return KVRO_OK;
}

const fat_listed *kvro__fat_listing_find(const fat_listing *l, const char *name, size_t n)
{
    if (!l->nslots || n > FAT_NAME_MAX) /* no FAT name is longer than 255 UTF-16 units */
        return NULL;
    uint32_t i = *name_slot(l, kvro__fat_fold_hash(name, n), name, n);
    return i ? &l->e[i - 1] : NULL;
}

/* ------------------------------------------------------ directory cache */

void kvro__fat_dircache_init(fat_dircache *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
}

/* Drops a reference; under the lock. */
static void listing_unref(fat_listing *l)
{
    if (l && --l->refs == 0)
        listing_free(l);
}

/* Empties slot I; under the lock. */
static void evict(fat_dircache *c, size_t i)
{
    if (!c->slot[i])
        return;
    c->bytes -= c->slot[i]->bytes;
    listing_unref(c->slot[i]);
    c->slot[i] = NULL;
}

void kvro__fat_dircache_free(fat_dircache *c)
{
    for (size_t i = 0; i < FAT_LISTING_SLOTS; i++)
        evict(c, i);
    pthread_mutex_destroy(&c->lock);
}

void kvro__fat_dircache_bump(fat_vol *v)
{
    fat_dircache *c = &v->dircache;
    pthread_mutex_lock(&c->lock);
    c->gen++;
    for (size_t i = 0; i < FAT_LISTING_SLOTS; i++)
        evict(c, i);
    pthread_mutex_unlock(&c->lock);
}

/* The cache's key of directory DIR: its first cluster, 0 for the
 * FAT12/16 root (no cluster of data is 0). */
static uint32_t dir_key(const fat_vol *v, const fat_node *dir)
{
    if (dir->pos == 0)
        return v->bpb.type == 32 ? v->bpb.root_cluster : 0;
    return dir->first;
}

static size_t key_slot(uint32_t key)
{
    return (size_t)((key * 2654435761u) >> 16) % FAT_LISTING_SLOTS;
}

/* The listing cached for KEY in the current generation, or NULL; under
 * the lock. */
static fat_listing *cached(const fat_dircache *c, uint32_t key)
{
    fat_listing *l = c->slot[key_slot(key)];
    return l && l->key == key && l->gen == c->gen && !(c->gen & 1) ? l : NULL;
}

kvro_status kvro__fat_listing_get(fat_vol *v, const fat_node *dir, fat_listing **out,
                                  kvro_error *err)
{
    fat_dircache *c = &v->dircache;
    const uint32_t key = dir_key(v, dir);
    pthread_mutex_lock(&c->lock);
    fat_listing *l = cached(c, key);
    if (l)
        l->refs++;
    const uint64_t gen = c->gen;
    pthread_mutex_unlock(&c->lock);
    if (l) {
        *out = l;
        return KVRO_OK;
    }
    kvro_status s = listing_read(v, dir, key, &l, err);
    if (s != KVRO_OK)
        return s;
    l->gen = gen;
    pthread_mutex_lock(&c->lock);
    /* Read outside a write and none began since: what the image holds. A
     * listing over the bound is used once and not kept. */
    if (c->gen == gen && !(gen & 1) && l->bytes <= FAT_LISTING_BYTES) {
        size_t i = key_slot(key);
        evict(c, i);
        for (size_t k = 0; c->bytes + l->bytes > FAT_LISTING_BYTES && k < FAT_LISTING_SLOTS; k++) {
            evict(c, c->hand);
            c->hand = (c->hand + 1) % FAT_LISTING_SLOTS;
        }
        c->slot[i] = l;
        c->bytes += l->bytes;
        l->refs++;
    }
    pthread_mutex_unlock(&c->lock);
    *out = l;
    return KVRO_OK;
}

void kvro__fat_listing_put(fat_vol *v, fat_listing *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&v->dircache.lock);
    listing_unref(l);
    pthread_mutex_unlock(&v->dircache.lock);
}

/* -------------------------------------------------------------- lookups */

typedef struct lookup {
    const char *name;
    size_t n;
    fat_node *out;
    bool found;
} lookup;

/* The first match wins, exact or folded: the entry a listing shows under
 * that name (see the header comment). */
static int match(void *arg, const fat_dirent *e)
{
    lookup *l = arg;
    if ((e->name_len == l->n && memcmp(e->name, l->name, l->n) == 0) ||
        kvro__fat_name_equal(e->name, e->name_len, l->name, l->n)) {
        *l->out = e->node;
        l->found = true;
        return 1;
    }
    return 0;
}

/* Looks NAME up by reading DIR up to the first match. */
static kvro_status scan(fat_vol *v, const fat_node *dir, const char *name, size_t n, fat_node *out,
                        bool *found, kvro_error *err)
{
    lookup l = {name, n, out, false};
    kvro_status s = kvro__fat_dir_each(v, dir, match, &l, err);
    *found = s == KVRO_OK && l.found;
    return s;
}

kvro_status kvro__fat_dir_lookup(fat_vol *v, const fat_node *dir, const char *name, size_t n,
                                 fat_node *out, bool *found, kvro_error *err)
{
    *found = false;
    /* No FAT name is longer than 255 UTF-16 units. */
    if (n > FAT_NAME_MAX)
        return KVRO_OK;
    /* A cached listing answers under the lock, without a reference. */
    fat_dircache *c = &v->dircache;
    pthread_mutex_lock(&c->lock);
    const fat_listing *l = cached(c, dir_key(v, dir));
    const fat_listed *e = l ? kvro__fat_listing_find(l, name, n) : NULL;
    if (e)
        *out = e->node;
    bool writing = c->gen & 1;
    pthread_mutex_unlock(&c->lock);
    if (l) {
        *found = e != NULL;
        return KVRO_OK;
    }
    /* The write side's lookups read the image as it is at that moment. */
    if (writing)
        return scan(v, dir, name, n, out, found, err);
    fat_listing *got = NULL;
    if (kvro__fat_listing_get(v, dir, &got, NULL) != KVRO_OK)
        /* A directory that cannot be read whole (an image cut short, no
         * memory) is still searched as far as it can be, with the error
         * that scan meets. */
        return scan(v, dir, name, n, out, found, err);
    e = kvro__fat_listing_find(got, name, n);
    if (e)
        *out = e->node;
    *found = e != NULL;
    kvro__fat_listing_put(v, got);
    return KVRO_OK;
}
