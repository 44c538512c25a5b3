/*
 * fat_name.c — the one encoder of FAT names and directory entries, shared
 * by the image builder (fat_mkfs.c) and the write side (fat_write.c):
 * which names FAT can hold, UTF-8 -> UTF-16 for VFAT long names, the 8.3
 * short name made from a long one, the LFN slots with their checksum, the
 * 32-byte entry itself and FAT timestamps.
 *
 * Names: refused (KVRO_E_INVALID) are the empty name, "." and "..",
 * control characters, "*?<>|\":/\\" (what Linux's vfat_bad_char refuses),
 * a trailing dot or space (Windows and Linux drop them silently, which
 * would store another name than the key), names that are not UTF-8 and
 * names of more than 255 UTF-16 units.
 *
 * Short names follow Linux's vfat_create_shortname (fs/fat/namei_vfat.c)
 * with shortname=winnt: the basis is the name's characters in code page
 * 437 upper-cased, dots and spaces skipped, "+,;=[]" and characters the
 * code page lacks made '_', the base cut at 8 and the extension (after the
 * last dot) at 3. A name that is its own basis but for case, with each
 * part all upper or all lower case, is stored as the short name alone with
 * the NT lower-case flags (0x08 base, 0x10 extension), as Windows NT and
 * Linux store "readme.txt". Any other name gets long-name slots; if its
 * basis lost nothing but case it is used as is (a directory already
 * holding it has the same name in another case: KVRO_E_EXISTS), else a
 * numeric tail is added: "~1" .. "~9" after at most 6 base characters,
 * then Linux's second form, 2 base characters, 4 hex digits and "~N" —
 * where Linux takes the digits from the clock we take them from a hash of
 * the long name, so an image is the same every time it is built.
 */
#include "fat_vol.h"

#include <string.h>

/* The code page's own upper case (Linux's nls_cp437 charset2upper):
 * lower-case letters whose capital the page has. */
static const unsigned char CP437_UPPER[][2] = {
    {0x81, 0x9A}, {0x82, 0x90}, {0x84, 0x8E}, {0x86, 0x8F},
    {0x87, 0x80}, {0x91, 0x92}, {0x94, 0x99}, {0xA4, 0xA5},
};

/* Unicode BMP unit U in code page 437; 0 if the page lacks it. */
static unsigned char to_cp437(uint16_t u)
{
    if (u < 0x80)
        return (unsigned char)u;
    for (int i = 0; i < 128; i++)
        if (kvro__fat_cp437[i] == u)
            return (unsigned char)(0x80 + i);
    return 0;
}

static bool bad_char(uint32_t c)
{
    return c < 0x20 || c == 0x7F || (c < 0x80 && strchr("*?<>|\":/\\", (int)c) != NULL);
}

/* UTF-8 NAME (N bytes) into UTF-16 OUT; false if not well-formed UTF-8
 * (overlongs and surrogates included) or too long. */
static bool to_utf16(const char *name, size_t n, uint16_t *out, size_t *units)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c < 0x80                 ? 1
                     : c >= 0xC2 && c <= 0xDF ? 2
                     : c >= 0xE0 && c <= 0xEF ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 0;
        if (len == 0 || i + len > n)
            return false;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1Fu : len == 3 ? c & 0x0Fu : c & 0x07u;
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3Fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        if (bad_char(cp))
            return false;
        i += len;
        if (cp >= 0x10000) {
            if (k + 2 > FAT_LFN_UNITS)
                return false;
            out[k++] = (uint16_t)(0xD800 + ((cp - 0x10000) >> 10));
            out[k++] = (uint16_t)(0xDC00 + ((cp - 0x10000) & 0x3FF));
        } else {
            if (k + 1 > FAT_LFN_UNITS)
                return false;
            out[k++] = (uint16_t)cp;
        }
    }
    *units = k;
    return true;
}

typedef struct part_info {
    bool valid, lower, upper;
} part_info;

/* One unit of the long name as a short-name byte (Linux's
 * to_shortname_char): 0 if it is skipped (a dot or a space). */
static unsigned char short_char(uint16_t u, part_info *info)
{
    if (u == '.' || u == ' ') {
        info->valid = false;
        return 0;
    }
    if (strchr("+,;=[]", u < 0x80 ? (int)u : 1) && u != 0) {
        info->valid = false;
        return '_';
    }
    unsigned char c = u >= 0xD800 && u <= 0xDFFF ? 0 : to_cp437(u);
    if (c == 0) {
        info->valid = false;
        return '_';
    }
    if (c >= 0x7F) {
        info->lower = info->upper = false;
        for (size_t i = 0; i < sizeof CP437_UPPER / sizeof *CP437_UPPER; i++)
            if (CP437_UPPER[i][0] == c)
                c = CP437_UPPER[i][1];
        return c;
    }
    if (c >= 'a' && c <= 'z') {
        info->upper = false;
        return (unsigned char)(c - 32);
    }
    if (c >= 'A' && c <= 'Z')
        info->lower = false;
    return c;
}

kvro_status kvro__fat_name_parse(const char *name, size_t n, fat_name *nm, kvro_error *err)
{
    memset(nm, 0, sizeof *nm);
    if (n == 0 || (n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.'))
        return kvro_error_set(err, KVRO_E_INVALID, "FAT: '%.*s' is not a name a file can have",
                              (int)n, name);
    if (name[n - 1] == '.' || name[n - 1] == ' ')
        return kvro_error_set(err, KVRO_E_INVALID,
                              "FAT: a name may not end in a dot or a space (FAT drops them)");
    if (!to_utf16(name, n, nm->u, &nm->units))
        return kvro_error_set(err, KVRO_E_INVALID,
                              "FAT: a name may not hold control characters or any of "
                              "* ? < > | \" : \\, must be UTF-8 and at most 255 UTF-16 units");
    const uint16_t *u = nm->u;
    size_t ulen = nm->units, ext = ulen, sz = ulen;
    /* The extension starts after the last dot, unless nothing but dots and
     * spaces precede it ("...test" has none) or the dot ends the name. */
    for (size_t i = ulen; i-- > 0;)
        if (u[i] == '.') {
            size_t j = 0;
            while (j < i && (u[j] == '.' || u[j] == ' '))
                j++;
            if (j != i && i + 1 < ulen) {
                sz = i;
                ext = i + 1;
            }
            break;
        }
    part_info bi = {true, true, true}, ei = {true, true, true};
    bool is_short = true;
    size_t baselen = 0;
    nm->tail6 = 6, nm->tail2 = 2;
    memset(nm->basis, ' ', 11);
    for (size_t i = 0; i < sz; i++) {
        unsigned char c = short_char(u[i], &bi);
        if (!c)
            continue;
        if (baselen == 8) {
            is_short = false;
            break;
        }
        nm->basis[baselen++] = c;
    }
    if (baselen == 0)
        /* Nothing but dots, spaces and the like: Linux refuses it too. */
        return kvro_error_set(err, KVRO_E_INVALID,
                              "FAT: a name needs a character other than dots and spaces");
    size_t extlen = 0;
    for (size_t i = ext; i < ulen; i++) {
        unsigned char c = short_char(u[i], &ei);
        if (!c)
            continue;
        if (extlen == 3) {
            is_short = false;
            break;
        }
        nm->basis[8 + extlen++] = c;
    }
    if (nm->basis[0] == 0xE5)
        nm->basis[0] = 0x05;
    nm->baselen = baselen;
    if (baselen < 6)
        nm->tail6 = baselen;
    if (baselen < 2)
        nm->tail2 = baselen;
    /* A name spelled exactly by its basis (the dot between base and
     * extension the only one) needs no long name; NT flags for an all
     * lower-case part. */
    bool one_dot = ext == ulen ? sz == ulen : true;
    if (is_short && bi.valid && ei.valid && one_dot) {
        nm->basis_ok = true;
        if ((bi.upper || bi.lower) && (ei.upper || ei.lower)) {
            nm->lcase =
                (uint8_t)((!bi.upper && bi.lower ? 0x08 : 0) | (!ei.upper && ei.lower ? 0x10 : 0));
            nm->short_only = true;
        }
    }
    return KVRO_OK;
}

int kvro__fat_name_slots(const fat_name *nm)
{
    return nm->short_only ? 0 : (int)((nm->units + 12) / 13);
}

uint32_t kvro__fat_name_hash(const uint16_t *u, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ u[i]) * 16777619u;
    return h;
}

kvro_status kvro__fat_name_short(const fat_name *nm, fat_taken_fn taken, void *arg,
                                 unsigned char out[11], kvro_error *err)
{
    memcpy(out, nm->basis, 11);
    if (nm->basis_ok) {
        if (taken(arg, out))
            return kvro_error_set(err, KVRO_E_EXISTS,
                                  "FAT: the directory holds this name already, in another case "
                                  "(FAT names are case-insensitive)");
        return KVRO_OK;
    }
    size_t base = nm->baselen;
    if (base > 6) {
        base = nm->tail6;
        out[7] = ' ';
    }
    out[base] = '~';
    for (int i = 1; i < 10; i++) {
        out[base + 1] = (unsigned char)('0' + i);
        if (!taken(arg, out))
            return KVRO_OK;
    }
    uint32_t h = kvro__fat_name_hash(nm->u, nm->units);
    unsigned i = h & 0xFFFF, sz = h >> 16 & 7;
    if (base > 2) {
        base = nm->tail2;
        out[7] = ' ';
    }
    memset(out + base, ' ', 8 - base);
    out[base + 4] = '~';
    out[base + 5] = (unsigned char)('1' + sz);
    static const char hex[] = "0123456789ABCDEF";
    for (unsigned tries = 0; tries < 0x10000; tries++, i -= 11) {
        for (int k = 0; k < 4; k++)
            out[base + (size_t)k] = (unsigned char)hex[(i >> (12 - 4 * k)) & 15];
        if (!taken(arg, out))
            return KVRO_OK;
    }
    return kvro_error_set(err, KVRO_E_NO_SPACE, "FAT: no short name left for it in the directory");
}

uint8_t kvro__fat_checksum(const unsigned char sn[11])
{
    uint8_t sum = 0;
    for (int i = 0; i < 11; i++)
        sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + sn[i]);
    return sum;
}

static void put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

void kvro__fat_entry_encode(const fat_entry *e, unsigned char out[FAT_DIRENT])
{
    memset(out, 0, FAT_DIRENT);
    memcpy(out, e->name, 11);
    out[11] = e->attr;
    out[12] = e->lcase;
    put16(out + 14, e->time); /* created */
    put16(out + 16, e->date);
    put16(out + 18, e->date); /* last access */
    put16(out + 20, e->first >> 16);
    put16(out + 22, e->time); /* last write */
    put16(out + 24, e->date);
    put16(out + 26, e->first & 0xFFFF);
    put16(out + 28, e->size & 0xFFFF);
    put16(out + 30, e->size >> 16);
}

void kvro__fat_name_encode(const fat_name *nm, const fat_entry *e, unsigned char *out)
{
    static const uint8_t at[13] = {1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30};
    int slots = kvro__fat_name_slots(nm);
    uint8_t sum = kvro__fat_checksum(e->name);
    /* Stored last slot first; the unit after the name is 0, the rest 0xFFFF. */
    for (int s = 0; s < slots; s++) {
        int ord = slots - s;
        unsigned char *p = out + (size_t)s * FAT_DIRENT;
        memset(p, 0, FAT_DIRENT);
        p[0] = (unsigned char)(ord | (s == 0 ? 0x40 : 0));
        p[11] = 0x0F;
        p[13] = sum;
        for (int k = 0; k < 13; k++) {
            size_t i = (size_t)(ord - 1) * 13 + (size_t)k;
            put16(p + at[k], i < nm->units ? nm->u[i] : i == nm->units ? 0 : 0xFFFF);
        }
    }
    fat_entry short_entry = *e;
    short_entry.lcase = nm->short_only ? nm->lcase : 0;
    kvro__fat_entry_encode(&short_entry, out + (size_t)slots * FAT_DIRENT);
}

void kvro__fat_time_encode(int64_t t, uint16_t *date, uint16_t *time)
{
    /* 1980-01-01 00:00:00 .. 2107-12-31 23:59:58 UTC. */
    const int64_t lo = 315532800, hi = 4354819198;
    if (t < lo)
        t = lo;
    if (t > hi)
        t = hi;
    int64_t days = t / 86400, secs = t % 86400;
    /* The civil date of a day count (Howard Hinnant's algorithm). */
    days += 719468;
    int64_t era = days / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned day = doy - (153 * mp + 2) / 5 + 1;
    unsigned month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = (int64_t)yoe + era * 400 + (month <= 2);
    *date = (uint16_t)((year - 1980) << 9 | month << 5 | day);
    *time = (uint16_t)((secs / 3600) << 11 | (secs / 60 % 60) << 5 | (secs % 60) / 2);
}
