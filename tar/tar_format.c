/*
 * tar_format.c — decoders for the tar on-disk structures: the 512-byte
 * header block (v7, POSIX ustar, GNU/oldgnu, star), its numeric fields and
 * pax extended-header records. Every field we trust is checked here.
 *
 * Specs followed: POSIX.1-2017 pax, "ustar Interchange Format" and "pax
 * Extended Header" sections; the GNU tar manual, "Basic Tar Format" (GNU
 * header, base-256 numbers, types L K S D M N V); GNU tar's src/list.c for
 * the quirks (both checksum sums, the zero-block test, names ending in '/').
 */
#include "tar_format.h"

#include <string.h>

/* ustar header field offsets (POSIX) and the GNU/star additions. */
enum {
    H_NAME = 0,
    H_MODE = 100,
    H_SIZE = 124,
    H_MTIME = 136,
    H_CHKSUM = 148,
    H_TYPEFLAG = 156,
    H_LINKNAME = 157,
    H_MAGIC = 257,
    H_PREFIX = 345,
    H_GNU_ISEXTENDED = 482,
    H_STAR_TAIL = 508,
    H_SPARSE_EXT_ISEXTENDED = 504,
    H_GNU_SPARSE = 386,
    H_GNU_REALSIZE = 483,
};

bool kvro__tar_block_is_zero(const unsigned char *blk)
{
    for (size_t i = 0; i < TAR_BLOCK; i++)
        if (blk[i] && (i < H_CHKSUM || i >= H_CHKSUM + 8))
            return false;
    return true;
}

/* GNU tar's isspace() in from_header: the C locale's white space. */
static bool is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Base-256: bit 7 of the first byte marks the form, bit 6 is the sign of a
 * two's-complement number made of the remaining bits. */
static bool base256(const unsigned char *f, size_t n, int64_t *out)
{
    bool neg = (f[0] & 0x40) != 0;
    uint64_t v = (neg ? ~f[0] : f[0]) & 0x3f;
    for (size_t i = 1; i < n; i++) {
        if (v > (uint64_t)INT64_MAX >> 8)
            return false;
        v = v << 8 | (uint8_t)(neg ? ~f[i] : f[i]);
    }
    *out = neg ? -(int64_t)v - 1 : (int64_t)v;
    return true;
}

/* Octal as GNU tar's from_header (src/list.c) reads it, checked against
 * GNU tar 1.34 and bsdtar 3.6: one leading NUL is skipped ("buggy tar of
 * unknown vintage, which outputs leading NUL if the previous field
 * overflows"; AIX writes mtimes as "\0" "1722000726 "), then white space;
 * the digits end at the field's end, a NUL or white space, and whatever
 * follows that terminator is ignored. A field with no digits is 0 when it
 * ends in blanks or at a NUL ("\0\0" "0016": 0 for GNU tar, libarchive and
 * Python alike). Rejected, as both GNU tar and libarchive reject it: any
 * other byte where a digit or terminator belongs ("0000000008", "5x",
 * "x5"). One difference: a field of blanks alone is 0, as libarchive and
 * Python read it (GNU tar says "Blanks in header"), since old writers leave
 * unused fields empty. */
bool kvro__tar_number(const unsigned char *f, size_t n, int64_t *out)
{
    if (n == 0)
        return false;
    if (f[0] & 0x80)
        return base256(f, n, out);
    size_t i = f[0] == '\0' ? 1 : 0;
    while (i < n && is_space(f[i]))
        i++;
    uint64_t v = 0;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v > (uint64_t)INT64_MAX >> 3)
            return false;
        v = v << 3 | (uint64_t)(f[i] - '0');
    }
    if (i < n && f[i] != '\0' && !is_space(f[i]))
        return false;
    *out = (int64_t)v;
    return true;
}

/* GNU tar accepts a checksum computed with signed or unsigned chars, since
 * some historic tars summed signed bytes. The checksum field itself counts
 * as eight spaces. */
bool kvro__tar_header_valid(const unsigned char *blk)
{
    int64_t recorded;
    if (!kvro__tar_number(blk + H_CHKSUM, 8, &recorded))
        return false;
    /* Whole-block sums first (a loop the compiler vectorises), then the
     * field's bytes swapped for spaces. */
    uint32_t usum = 0;
    int32_t ssum = 0;
    for (size_t i = 0; i < TAR_BLOCK; i++) {
        usum += blk[i];
        ssum += (signed char)blk[i];
    }
    for (size_t i = H_CHKSUM; i < H_CHKSUM + 8; i++) {
        usum += (uint32_t)' ' - blk[i];
        ssum += ' ' - (signed char)blk[i];
    }
    /* An all-blank checksum field parses as 0, and no real header sums to 0. */
    return recorded == (int64_t)usum || recorded == (int64_t)ssum;
}

/* Copies a field that is NUL-terminated unless it fills its whole size. */
static size_t copy_field(char *dst, const unsigned char *f, size_t n)
{
    size_t len = 0;
    while (len < n && f[len])
        len++;
    memcpy(dst, f, len);
    dst[len] = '\0';
    return len;
}

static tar_type type_of(char t)
{
    switch (t) {
    case '0':
    case '\0':
    case '7': return TAR_T_FILE;
    case '1': return TAR_T_HARDLINK;
    case '2': return TAR_T_SYMLINK;
    case '3':
    case '4':
    case '6':
    case 'M': /* a file continued from the previous volume: its start is elsewhere */
        return TAR_T_SPECIAL;
    case '5':
    case 'D': return TAR_T_DIR;
    case 'S': return TAR_T_SPARSE;
    case 'L': return TAR_T_LONGNAME;
    case 'K': return TAR_T_LONGLINK;
    case 'x':
    case 'X': return TAR_T_PAX;
    case 'g': return TAR_T_PAX_GLOBAL;
    case 'V':
    case 'N':
    case 'A':
    case 'E':
    case 'I': return TAR_T_IGNORED;
    default: /* POSIX: an unknown type is read as a regular file */ return TAR_T_FILE;
    }
}

kvro_status kvro__tar_header_decode(const unsigned char *blk, int64_t off, tar_header *h, kvro_error *err)
{
    if (!kvro__tar_header_valid(blk))
        return kvro_error_set(err, KVRO_E_CORRUPT, "tar: bad header checksum at offset %lld",
                              (long long)off);
    /* Every field is set below (the name fields as NUL-terminated strings):
     * no memset of the 400-byte struct, once a member. */
    h->typeflag = (char)blk[H_TYPEFLAG];
    h->sparse_ext = false;
    h->type = type_of(h->typeflag);

    int64_t mode;
    if (!kvro__tar_number(blk + H_SIZE, 12, &h->size) || h->size < 0)
        return kvro_error_set(err, KVRO_E_CORRUPT, "tar: bad size field in header at offset %lld",
                              (long long)off);
    if (!kvro__tar_number(blk + H_MTIME, 12, &h->mtime))
        return kvro_error_set(err, KVRO_E_CORRUPT, "tar: bad mtime field in header at offset %lld",
                              (long long)off);
    if (!kvro__tar_number(blk + H_MODE, 8, &mode))
        return kvro_error_set(err, KVRO_E_CORRUPT, "tar: bad mode field in header at offset %lld",
                              (long long)off);
    h->mode = (uint32_t)(mode & 07777);

    /* Only POSIX ustar ("ustar\0" "00") has a prefix; GNU's "ustar  \0"
     * keeps atime and ctime there. star shortens it to 131 bytes and marks
     * its header with "tar\0" at the end. */
    size_t n = 0;
    if (memcmp(blk + H_MAGIC, "ustar\0", 6) == 0) {
        size_t plen = memcmp(blk + H_STAR_TAIL, "tar\0", 4) == 0 ? 131 : 155;
        n = copy_field(h->name, blk + H_PREFIX, plen);
        if (n)
            h->name[n++] = '/';
    }
    copy_field(h->name + n, blk + H_NAME, 100);
    copy_field(h->link, blk + H_LINKNAME, 100);
    /* Old tars mark a directory by a trailing '/' on a regular type: the
     * scan judges that on the final name (after a GNU 'L' or pax path),
     * never on this 100-byte field (kvro__tar_old_style_dir). */
    if (h->type == TAR_T_SPARSE)
        h->sparse_ext = blk[H_GNU_ISEXTENDED] != 0;
    return KVRO_OK;
}

bool kvro__tar_old_style_dir(char typeflag, const char *name)
{
    size_t n = strlen(name);
    return (typeflag == '0' || typeflag == '\0') && n && name[n - 1] == '/';
}

/* Go (isHeaderOnlyType), libarchive and Python's tarfile skip no data after
 * these whatever the size field says, and writers do put sizes there (a
 * hard link's target size; Go's hdr-only.tar). GNU tar 1.34 agrees for '1'
 * and '5' but skips the size after '2', '3', '4' and '6': we follow the
 * majority, since skipping what is not data hides the members that follow.
 * libarchive alone reads data after a '1' in an archive it knows is pax;
 * we do not (Go, Python and GNU tar never do). */
bool kvro__tar_header_only(char typeflag)
{
    return typeflag >= '1' && typeflag <= '6';
}

bool kvro__tar_sparse_ext_continues(const unsigned char *blk)
{
    return blk[H_SPARSE_EXT_ISEXTENDED] != 0;
}

/* GNU tar's oldgnu_add_sparse (src/sparse.c): an entry whose length field
 * starts with NUL ends the map; Python reads such an entry as (0, 0), the
 * same bytes. */
tar_sparse_entry_kind kvro__tar_sparse_entry(const unsigned char *blk, bool ext, size_t i,
                                             int64_t *off, int64_t *len)
{
    const unsigned char *e = blk + (ext ? 0 : H_GNU_SPARSE) + 24 * i;
    if (e[12] == '\0')
        return TAR_SPARSE_END;
    if (!kvro__tar_number(e, 12, off) || !kvro__tar_number(e + 12, 12, len) || *off < 0 || *len < 0)
        return TAR_SPARSE_BAD;
    return TAR_SPARSE_ENTRY;
}

bool kvro__tar_sparse_realsize(const unsigned char *blk, int64_t *size)
{
    return kvro__tar_number(blk + H_GNU_REALSIZE, 12, size) && *size >= 0;
}

/* ------------------------------------------------------------------ pax */

static bool all_nul(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

kvro_status kvro__tar_pax_next(const char *data, size_t len, size_t *pos, int64_t off,
                         tar_pax_record *rec, bool *more, kvro_error *err)
{
    size_t p = *pos;
    *more = false;
    if (p >= len || all_nul(data + p, len - p))
        return KVRO_OK;
    long long at = (long long)off + (long long)p;
    /* The length counts the whole record, its own digits and the newline. */
    size_t rlen = 0, i = p;
    while (i < len && data[i] >= '0' && data[i] <= '9') {
        if (rlen > (SIZE_MAX - 9) / 10)
            return kvro_error_set(err, KVRO_E_CORRUPT,
                                  "tar: pax record length overflows at offset %lld", at);
        rlen = rlen * 10 + (size_t)(data[i] - '0');
        i++;
    }
    if (i == p || i >= len || data[i] != ' ')
        return kvro_error_set(err, KVRO_E_CORRUPT, "tar: bad pax record at offset %lld: no length",
                              at);
    size_t key = i + 1;
    if (rlen <= len - p && p + rlen > key + 1 && data[p + rlen - 1] != '\n' &&
        all_nul(data + p + rlen, len - p - rlen))
        return kvro_error_set(err, KVRO_E_CORRUPT,
                              "tar: bad pax record at offset %lld: the last, without its newline",
                              at);
    if (rlen > len - p || p + rlen <= key + 1 || data[p + rlen - 1] != '\n')
        return kvro_error_set(err, KVRO_E_CORRUPT,
                              "tar: bad pax record at offset %lld: length %zu is wrong", at, rlen);
    size_t end = p + rlen - 1; /* the newline */
    const char *eq = memchr(data + key, '=', end - key);
    if (!eq || eq == data + key || memchr(data + key, '\0', (size_t)(eq - (data + key))))
        return kvro_error_set(err, KVRO_E_CORRUPT,
                              "tar: bad pax record at offset %lld: not KEY=VALUE", at);
    rec->key = data + key;
    rec->key_len = (size_t)(eq - (data + key));
    rec->value = eq + 1;
    rec->value_len = (size_t)(data + end - (eq + 1));
    *pos = p + rlen;
    *more = true;
    return KVRO_OK;
}

bool kvro__tar_pax_is(const tar_pax_record *rec, const char *key)
{
    size_t n = strlen(key);
    return rec->key_len == n && memcmp(rec->key, key, n) == 0;
}

bool kvro__tar_pax_uint(const char *v, size_t n, int64_t *out)
{
    if (n == 0)
        return false;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (INT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return true;
}

bool kvro__tar_pax_time(const char *v, size_t n, int64_t *sec, int32_t *nsec)
{
    bool neg = n && v[0] == '-';
    size_t i = neg ? 1 : 0, dot = i;
    while (dot < n && v[dot] != '.')
        dot++;
    int64_t s;
    if (!kvro__tar_pax_uint(v + i, dot - i, &s))
        return false;
    int32_t ns = 0, scale = 100000000;
    if (dot < n) {
        if (dot + 1 == n)
            return false;
        for (size_t k = dot + 1; k < n; k++) {
            if (v[k] < '0' || v[k] > '9')
                return false;
            ns += (v[k] - '0') * scale;
            scale /= 10;
        }
    }
    if (neg && ns) {
        *sec = -s - 1;
        *nsec = 1000000000 - ns;
    } else {
        *sec = neg ? -s : s;
        *nsec = ns;
    }
    return true;
}
