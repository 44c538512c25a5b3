/*
 * crunch_out.c — what mkkv crunch writes: the data as string literals,
 * paths in a depfile, and the table's name rules. (The files themselves
 * are outfile.c's temporaries.)
 */
#include "crunch_out.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ literals */

/* Characters of literal per line of OUT.c: about 4,000, inside the 4,095
 * characters per logical line that C99 (5.2.4.1) promises every compiler
 * takes. Against 160, gcc -O2 compiles 20 MB of random data 15-20% faster
 * (fewer tokens to join), clang about 5% (bench/crunch_compile.sh). */
#define LINE_WIDTH 4000

/*
 * The form: printable ASCII as itself, '"' '\\' '?' after a backslash
 * ('?' always, so no trigraph can form), everything else as an octal
 * escape of as few digits as the value needs, three when an octal digit
 * follows (an octal escape stops after three digits, so it never swallows
 * what follows, unlike \x). Random bytes average about 2.8 characters, the
 * floor for portable C: bytes >= 0x80 written raw would be shorter but
 * are not valid UTF-8 source, which clang warns about.
 */

static void lit_flush(lit_writer *w)
{
    if (w->len)
        fwrite(w->buf, 1, w->len, w->f);
    w->len = 0;
}

void lit_open(lit_writer *w, FILE *f)
{
    w->f = f;
    w->len = 0;
    w->pending = -1;
    w->buf[w->len++] = '\n';
    w->buf[w->len++] = '"';
    w->col = 1;
}

/* The held-back byte's escape, now that the next character is known to be
 * an octal digit (FULL) or not. */
static void put_pending(lit_writer *w, bool full)
{
    unsigned b = (unsigned)w->pending;
    char *o = w->buf + w->len;
    size_t k = 0;
    o[k++] = '\\';
    if (full || b >= 64)
        o[k++] = (char)('0' + (b >> 6));
    if (full || b >= 8)
        o[k++] = (char)('0' + ((b >> 3) & 7));
    o[k++] = (char)('0' + (b & 7));
    w->len += k;
    w->col += k;
    w->pending = -1;
}

void lit_bytes(lit_writer *w, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char b = p[i];
        bool plain = b >= 0x20 && b < 0x7f && b != '"' && b != '\\' && b != '?';
        if (w->len > sizeof w->buf - 16) /* room for the longest step below */
            lit_flush(w);
        if (w->pending >= 0)
            put_pending(w, plain && b >= '0' && b <= '7');
        if (w->col >= LINE_WIDTH) { /* adjacent literals are joined after escapes */
            memcpy(w->buf + w->len, "\"\n\"", 3);
            w->len += 3;
            w->col = 1;
        }
        if (plain) {
            w->buf[w->len++] = (char)b;
            w->col++;
        } else if (b == '"' || b == '\\' || b == '?') {
            w->buf[w->len++] = '\\';
            w->buf[w->len++] = (char)b;
            w->col += 2;
        } else {
            w->pending = b;
        }
    }
}

void lit_close(lit_writer *w)
{
    if (w->pending >= 0)
        put_pending(w, false);
    w->buf[w->len++] = '"';
    lit_flush(w);
}

/* A path as Make reads it in a rule: blanks, '#' and '\\' escaped, '$'
 * doubled. */
bool put_make_path(FILE *f, const char *p)
{
    for (; *p; p++) {
        if (*p == '\n' || *p == '\r')
            return false;
        if (*p == ' ' || *p == '\t' || *p == '#' || *p == '\\')
            putc('\\', f);
        if (*p == '$')
            putc('$', f);
        putc(*p, f);
    }
    return true;
}

/* --------------------------------------------------------------- names */

bool crunch_is_ident(const char *s)
{
    if (!*s || isdigit((unsigned char)*s))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

/* C and C++ keywords a default name could collide with. */
bool crunch_is_keyword(const char *s)
{
    static const char *const kw[] = {
        "auto",     "break",    "case",    "char",   "const",    "continue", "default", "do",
        "double",   "else",     "enum",    "extern", "float",    "for",      "goto",    "if",
        "inline",   "int",      "long",    "register", "restrict", "return", "short",   "signed",
        "sizeof",   "static",   "struct",  "switch", "typedef",  "union",    "unsigned", "void",
        "volatile", "while",    "bool",    "class",  "delete",   "new",      "private", "public",
        "template", "this",     "throw",   "try",    "using",    "virtual",  "namespace",
        "operator", "friend",   "true",    "false",  "main"};
    for (size_t i = 0; i < sizeof kw / sizeof *kw; i++)
        if (!strcmp(s, kw[i]))
            return true;
    return !strncmp(s, "crunch__", 8); /* the generated file's own statics */
}

/* OUT's base name less ".c", made an identifier: "site-assets.c" gives
 * site_assets, "3d.c" _3d. Malloc'd. */
char *crunch_default_name(const char *out)
{
    const char *slash = strrchr(out, '/');
    const char *base = slash ? slash + 1 : out;
    size_t n = strlen(base) - 2;
    char *s = malloc(n + 3);
    if (!s)
        return NULL;
    size_t o = 0;
    if (!n || isdigit((unsigned char)base[0]))
        s[o++] = '_';
    for (size_t i = 0; i < n; i++)
        s[o++] = isalnum((unsigned char)base[i]) ? base[i] : '_';
    s[o] = '\0';
    if (crunch_is_keyword(s)) {
        s[o++] = '_';
        s[o] = '\0';
    }
    return s;
}

/* Whether OUT's directory lies inside SOURCE (a directory): the next run
 * would crunch the output into itself. */
bool crunch_out_inside(const char *source, const char *out)
{
    char *src = realpath(source, NULL);
    const char *slash = strrchr(out, '/');
    char *dir = slash ? strndup(out, (size_t)(slash - out) + (slash == out)) : strdup(".");
    char *real = dir ? realpath(dir, NULL) : NULL;
    size_t n = src ? strlen(src) : 0;
    bool in = src && real && !strncmp(real, src, n) &&
              (real[n] == '/' || real[n] == '\0' || (n == 1 && src[0] == '/'));
    free(src);
    free(dir);
    free(real);
    return in;
}

