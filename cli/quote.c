/*
 * quote.c — how mkkv shows a name (a key, a member, a path, an operand) on
 * a terminal: never as bytes that could move the cursor, recolour it, or
 * pass for a line of their own.
 *
 * The style is GNU's "escape" quoting (ls -b, tar --quoting-style=escape),
 * made independent of the locale so the output is the same everywhere:
 *   - printable ASCII and valid UTF-8 (other than the C1 controls) as is;
 *   - a backslash doubled: "\\";
 *   - \a \b \t \n \v \f \r for those controls;
 *   - every other byte of a control character (C0, DEL, C1 U+0080-U+009F,
 *     whose CSI U+009B some terminals obey) and every byte that is not part
 *     of valid UTF-8 (a Latin-1 name, an overlong form, a surrogate) as a
 *     three-digit octal escape: \033, \351.
 * The mapping is reversible: a backslash in the output always starts an
 * escape. Text mkkv writes itself is printable and passes through as is.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* The length of the valid UTF-8 sequence of a printable character (not a
 * C1 control) at S, or 0 (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF). */
static size_t utf8_printable(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
        return 0;
    return n;
}

/* Writes the escaped form of S to OUT (room for 4 * strlen(S) + 1 bytes, or
 * NULL to only count); returns its length. */
static size_t escape(const char *s, char *out)
{
    static const char letters[] = "abtnvfr"; /* \a = 7 ... \r = 13 */
    const unsigned char *p = (const unsigned char *)s;
    size_t len = 0;
    while (*p) {
        char e[5];
        size_t k = 0, n = 1;
        if (*p == '\\') {
            e[k++] = '\\', e[k++] = '\\';
        } else if (*p >= 7 && *p <= 13) {
            e[k++] = '\\', e[k++] = letters[*p - 7];
        } else if (*p >= 0x20 && *p < 0x7f) {
            e[k++] = (char)*p;
        } else if (*p >= 0x80 && (n = utf8_printable(p)) > 0) {
            if (out)
                memcpy(out + len, p, n);
            len += n;
            p += n;
            continue;
        } else {
            n = 1;
            e[k++] = '\\';
            e[k++] = (char)('0' + (*p >> 6));
            e[k++] = (char)('0' + ((*p >> 3) & 7));
            e[k++] = (char)('0' + (*p & 7));
        }
        if (out)
            memcpy(out + len, e, k);
        len += k;
        p += n;
    }
    if (out)
        out[len] = '\0';
    return len;
}

/* A few buffers used in turn, kept (and grown) for the life of the
 * process: one message quotes at most a handful of names. */
enum { QUOTE_SLOTS = 8 };

const char *quoted(const char *s)
{
    static char *slot[QUOTE_SLOTS];
    static size_t cap[QUOTE_SLOTS];
    static unsigned next;
    if (!s)
        return "(null)";
    size_t n = escape(s, NULL) + 1;
    unsigned i = next++ % QUOTE_SLOTS;
    if (n > cap[i]) {
        char *b = realloc(slot[i], n);
        if (!b)
            return "(a name: out of memory to show it)";
        slot[i] = b;
        cap[i] = n;
    }
    escape(s, slot[i]);
    return slot[i];
}

void quote_put(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        /* A run that needs no escape goes out whole. */
        size_t run = 0;
        while (p[run] >= 0x20 && p[run] < 0x7f && p[run] != '\\')
            run++;
        if (run) {
            fwrite(p, 1, run, f);
            p += run;
            continue;
        }
        size_t n = *p >= 0x80 ? utf8_printable(p) : 0;
        if (n) {
            fwrite(p, 1, n, f);
            p += n;
            continue;
        }
        char one[2] = {(char)*p, '\0'}, e[5];
        escape(one, e);
        fputs(e, f);
        p++;
    }
}

void print_error(const kvro_error *err)
{
    const char *detail = err->detail[0] ? err->detail : kvro_status_str(err->status);
    fprintf(stderr, "mkkv: %s%s%s%s%s\n", quoted(err->source), err->source[0] ? ": " : "",
            quoted(err->key), err->key[0] ? ": " : "", quoted(detail));
}
