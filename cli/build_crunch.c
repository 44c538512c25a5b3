/*
 * build_crunch.c — mkkv crunch SOURCE OUT.c: a source's tree as C data
 * (OUT.c) and a header (OUT.h) declaring one kvro_crunch table, served at
 * run time by kvro_open_crunch (kvro/crunch.h gives the layout).
 *
 * What makes the output fast to compile: the bytes are string literals, a
 * few characters per byte, not one integer token per byte as `xxd -i`
 * writes (the compiler's cost is per token). All values lie in one array
 * of exact size (no NUL appended) so that the runtime can map any of them
 * through one memory I/O object. Escapes are octal (at most three digits,
 * so never swallowing what follows, unlike \x), written short unless an
 * octal digit follows; every '?' is escaped, so no trigraph can form.
 *
 * Deterministic: entries sorted (the runtime's order: bytes, '/' first),
 * no time stamps or paths in the output, $SOURCE_DATE_EPOCH for every
 * mtime when set; --compress output is zlib's at level 9. OUT.c, OUT.h and
 * the depfile are written as temporary files beside them and renamed into
 * place once all are complete; on failure or SIGINT/SIGTERM/SIGHUP none is
 * left behind.
 */
#include "cli.h"
#include "crunch_out.h"
#include "crunch_sha256.h"

#include <kvro/crunch.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Past this many bytes of data the compilers' small code model (all static
 * data within 2 GiB of the code, x86-64's default) and their memory give
 * out; such trees belong in an image read at run time (mkkv tar). */
#define MAX_DATA ((int64_t)1 << 30)

enum {
    OPT_NAME = OPT_FIRST_CMD,
    OPT_COMPRESS,
    OPT_INCLUDE,
    OPT_EXCLUDE,
    OPT_DEPFILE,
    OPT_INCBIN,
    OPT_FSYNC
};

extern const command cmd_crunch;

typedef struct crunch_opts {
    const char *name, *depfile;
    bool compress, incbin;
    bool fsync; /* --fsync: every output synced before the renames */
    const char **include, **exclude;
    size_t n_include, n_exclude;
} crunch_opts;

typedef struct item {
    char *key;
    kvro_info info;
    bool keep;
    uint32_t end, name_off, block;
    uint64_t data;
    bool deflated;
    unsigned char sha[32];
} item;

typedef struct gen {
    const char *source, *out;
    const crunch_opts *o;
    kvro *kv;
    item *v;
    size_t n, cap;
    char **dirs; /* directory keys still to list */
    size_t n_dirs, cap_dirs;
    char **walked; /* directory keys listed: every one goes in the depfile */
    size_t n_walked;
    bool has_epoch;
    int64_t epoch;
    FILE *c;          /* OUT.c's temporary file */
    FILE *bin;        /* --incbin: OUT.bin's, which gets the data instead */
    lit_writer *lit;  /* the data (or names) literal being written */
    uint32_t *blocks; /* the block table, as it grows */
    size_t n_blocks, cap_blocks;
    uint64_t data_size;
    bool any_deflated;
} gen;

/* ------------------------------------------------------------- options */

static bool push_glob(const char ***v, size_t *n, const char *g)
{
    const char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return false;
    nv[(*n)++] = g;
    *v = nv;
    return true;
}

static int crunch_opt(int c, const char *arg, void *ctx)
{
    crunch_opts *o = ctx;
    switch (c) {
    case OPT_NAME:
        if (!crunch_is_ident(arg) || crunch_is_keyword(arg))
            return usage_error(&cmd_crunch,
                               "--name '%s' is not a C identifier a table can have "
                               "([A-Za-z_][A-Za-z0-9_]*, not a keyword or crunch__...)",
                               arg);
        o->name = arg;
        return -1;
    case OPT_COMPRESS:
        o->compress = true;
        return -1;
    case OPT_INCBIN:
        o->incbin = true;
        return -1;
    case OPT_FSYNC:
        o->fsync = true;
        return -1;
    case OPT_DEPFILE:
        o->depfile = arg;
        return -1;
    case OPT_INCLUDE:
    case OPT_EXCLUDE:
        if (c == OPT_INCLUDE ? push_glob(&o->include, &o->n_include, arg)
                             : push_glob(&o->exclude, &o->n_exclude, arg))
            return -1;
        fprintf(stderr, "mkkv: out of memory\n");
        return EXIT_FAIL;
    }
    return usage_error(&cmd_crunch, "unknown option");
}

/* --------------------------------------------------------------- walk */

/* Key order, the runtime's: bytes, '/' before everything. */
static int path_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned ca = *a == '/' ? 1u : (unsigned char)*a + 1u;
        unsigned cb = *b == '/' ? 1u : (unsigned char)*b + 1u;
        if (!*a || !*b || ca != cb)
            return (int)(*a ? ca : 0) - (int)(*b ? cb : 0);
    }
}

static int item_cmp(const void *a, const void *b)
{
    return path_cmp(((const item *)a)->key, ((const item *)b)->key);
}

static bool matches(const char *const *globs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(globs[i], key, 0) == 0)
            return true;
    return false;
}

typedef struct walk_ctx {
    gen *g;
    const char *dir;
    bool oom;
} walk_ctx;

static void warn_key(const gen *g, const char *key, const char *why)
{
    fprintf(stderr, "mkkv: warning: %s: ", quoted(source_name(g->source)));
    fprintf(stderr, "%s: %s\n", quoted(key), why);
}

/* One entry of the directory being listed, links as links: a link is
 * followed (inside the root, as every kvro call follows it) and becomes a
 * copy of its target; one that leads outside, loops or dangles is left
 * out with a warning, since a compiled-in tree has no links. */
static int walk_entry(void *arg, const char *name, kvro_status s, const kvro_info *info)
{
    walk_ctx *w = arg;
    gen *g = w->g;
    char *key = key_join(w->dir, name);
    if (!key)
        return w->oom = true;
    kvro_info st;
    kvro_error err;
    if (s != KVRO_OK) {
        warn_key(g, key, kvro_status_str(s));
        free(key);
        return 0;
    }
    st = *info;
    if (st.kind == KVRO_KIND_LINK && kvro_stat(g->kv, key, &st, &err) != KVRO_OK) {
        warn_key(g, key, "a symbolic link that leads outside the source, loops or dangles: "
                         "left out");
        free(key);
        return 0;
    }
    if (matches(g->o->exclude, g->o->n_exclude, key)) {
        free(key);
        return 0;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 256;
        item *v = realloc(g->v, cap * sizeof *v);
        if (!v) {
            free(key);
            return w->oom = true;
        }
        g->v = v, g->cap = cap;
    }
    if (st.kind == KVRO_KIND_DIR) {
        if (g->n_dirs == g->cap_dirs) {
            size_t cap = g->cap_dirs ? 2 * g->cap_dirs : 64;
            char **d = realloc(g->dirs, cap * sizeof *d);
            if (!d) {
                free(key);
                return w->oom = true;
            }
            g->dirs = d, g->cap_dirs = cap;
        }
        if (!(g->dirs[g->n_dirs] = strdup(key))) {
            free(key);
            return w->oom = true;
        }
        g->n_dirs++;
    }
    /* Without --include everything is kept; with it, files that match and
     * directories that match or hold something kept. */
    bool keep = !g->o->n_include || matches(g->o->include, g->o->n_include, key);
    g->v[g->n++] = (item){.key = key, .info = st, .keep = keep};
    return 0;
}

/* Lists every directory (an explicit stack, not recursion: keys may be
 * 2000 levels deep), collecting every entry. */
static int walk(gen *g)
{
    kvro_error err;
    char *root = strdup("");
    if (!root || !(g->dirs = malloc(64 * sizeof *g->dirs))) {
        free(root);
        fprintf(stderr, "mkkv: out of memory\n");
        return EXIT_FAIL;
    }
    g->cap_dirs = 64;
    g->dirs[g->n_dirs++] = root;
    size_t cap_walked = 0;
    while (g->n_dirs) {
        char *dir = g->dirs[--g->n_dirs];
        /* Kept for the depfile whether or not anything in it is kept: a
         * file added later may match --include. */
        if (g->n_walked == cap_walked) {
            size_t cap = cap_walked ? 2 * cap_walked : 64;
            char **v = realloc(g->walked, cap * sizeof *v);
            if (!v) {
                free(dir);
                fprintf(stderr, "mkkv: out of memory\n");
                return EXIT_FAIL;
            }
            g->walked = v, cap_walked = cap;
        }
        g->walked[g->n_walked++] = dir;
        walk_ctx w = {g, dir, false};
        kvro_status s = kvro_list_info(g->kv, dir, KVRO_NOFOLLOW, walk_entry, &w, &err);
        if (w.oom) {
            fprintf(stderr, "mkkv: out of memory\n");
            return EXIT_FAIL;
        }
        if (s != KVRO_OK)
            return report(&err);
    }
    return EXIT_OK;
}

/* Sorts, keeps the parents of what is kept, drops the rest, and links
 * each directory to the end of its subtree. */
static int settle(gen *g)
{
    if (g->n) /* an empty tree has no array at all */
        qsort(g->v, g->n, sizeof *g->v, item_cmp);
    /* What is kept keeps its parents (which the walk met: each is here). */
    char parent[KVRO_KEY_MAX + 1];
    for (size_t i = 0; i < g->n; i++) {
        size_t len = strlen(g->v[i].key);
        if (!g->v[i].keep || len > KVRO_KEY_MAX)
            continue;
        memcpy(parent, g->v[i].key, len + 1);
        for (;;) {
            while (len && parent[len - 1] != '/')
                len--;
            if (!len--)
                break;
            parent[len] = '\0';
            item probe = {.key = parent};
            item *p = bsearch(&probe, g->v, g->n, sizeof *g->v, item_cmp);
            if (!p || p->keep)
                break;
            p->keep = true;
        }
    }
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (g->v[i].keep)
            g->v[n++] = g->v[i];
        else
            free(g->v[i].key);
    }
    g->n = n;
    if (n >= UINT32_MAX) {
        fprintf(stderr, "mkkv: %s: too many entries (%zu)\n", quoted(source_name(g->source)), n);
        return EXIT_FAIL;
    }
    /* END: a stack of open directories, closed by the first key not under
     * them. */
    size_t *open = malloc((n + 1) * sizeof *open), depth = 0;
    if (!open) {
        fprintf(stderr, "mkkv: out of memory\n");
        return EXIT_FAIL;
    }
    for (size_t i = 0; i <= n; i++) {
        while (depth) {
            const char *d = g->v[open[depth - 1]].key;
            size_t l = strlen(d);
            if (i < n && !strncmp(g->v[i].key, d, l) && g->v[i].key[l] == '/')
                break;
            g->v[open[--depth]].end = (uint32_t)i;
        }
        if (i == n)
            break;
        g->v[i].end = (uint32_t)i + 1;
        if (g->v[i].info.kind == KVRO_KIND_DIR)
            open[depth++] = i;
    }
    free(open);
    return EXIT_OK;
}

/* ---------------------------------------------------------------- data */

static int read_fail(gen *g, const item *e, kvro_error *err, const char *what)
{
    if (err)
        return report(err);
    fprintf(stderr, "mkkv: %s: %s: %s while being read (%lld bytes when it was met)\n",
            quoted(source_name(g->source)), quoted(e->key), what, (long long)e->info.size);
    return EXIT_FAIL;
}

static bool push_block(gen *g, uint32_t off)
{
    if (g->n_blocks == g->cap_blocks) {
        size_t cap = g->cap_blocks ? 2 * g->cap_blocks : 1024;
        uint32_t *b = realloc(g->blocks, cap * sizeof *b);
        if (!b)
            return false;
        g->blocks = b, g->cap_blocks = cap;
    }
    g->blocks[g->n_blocks++] = off;
    return true;
}

/* Reads file E whole (in blocks of KVRO_CRUNCH_BLOCK), hashing it and
 * writing it into the data literal: as it is, or (--compress) each block
 * deflated on its own, kept raw when deflate does not shrink it. A file
 * none of whose blocks shrank is an uncompressed value (kvro_map serves
 * it): its stored bytes are the same. */
static int put_file(gen *g, item *e, unsigned char *in, unsigned char *out, z_stream *z)
{
    sha256 h;
    sha_init(&h);
    kvro_error err;
    e->data = g->data_size;
    e->block = (uint32_t)g->n_blocks;
    size_t first_block = g->n_blocks;
    uint64_t stored = 0;
    bool shrank = false;
    if (g->o->compress && e->info.size > 0 && !push_block(g, 0))
        return read_fail(g, e, NULL, "out of memory");
    for (int64_t off = 0;; off += KVRO_CRUNCH_BLOCK) {
        int64_t want = e->info.size - off < KVRO_CRUNCH_BLOCK ? e->info.size - off
                                                               : KVRO_CRUNCH_BLOCK;
        int64_t n;
        /* One byte more at the end: a file that grew shows at no cost. */
        if (kvro_read(g->kv, e->key, off, want + (want < KVRO_CRUNCH_BLOCK), in, &n, &err) !=
            KVRO_OK)
            return read_fail(g, e, &err, NULL);
        if (n != want)
            return read_fail(g, e, NULL, n < want ? "shrank" : "grew");
        if (!n)
            break;
        sha_update(&h, in, (size_t)n);
        const unsigned char *put = in;
        size_t put_n = (size_t)n;
        if (g->o->compress) {
            deflateReset(z);
            z->next_in = in, z->avail_in = (uInt)n;
            z->next_out = out, z->avail_out = (uInt)n - 1; /* must shrink */
            if (n > 1 && deflate(z, Z_FINISH) == Z_STREAM_END) {
                put = out;
                put_n = (size_t)n - 1 - z->avail_out;
                shrank = true;
            }
        }
        if (g->bin)
            fwrite(put, 1, put_n, g->bin);
        else
            lit_bytes(g->lit, put, put_n);
        stored += put_n;
        g->data_size += put_n;
        if (g->data_size > (uint64_t)MAX_DATA) {
            fprintf(stderr,
                    "mkkv: %s: %s: the data passes %lld bytes: too big to compile in (keep "
                    "it in an image read at run time, e.g. mkkv tar)\n",
                    quoted(source_name(g->source)), quoted(e->key), (long long)MAX_DATA);
            return EXIT_FAIL;
        }
        if (g->o->compress && !push_block(g, (uint32_t)stored))
            return read_fail(g, e, NULL, "out of memory");
        if (n < KVRO_CRUNCH_BLOCK)
            break;
    }
    sha_final(&h, e->sha);
    e->deflated = shrank;
    if (!shrank) /* raw throughout: no block table */
        g->n_blocks = first_block;
    g->any_deflated |= shrank;
    return EXIT_OK;
}

/* The size of the data array, written when known into the room left. */
#define SIZE_ROOM 24

/* gcc 15 warns (-Wunterminated-string-initialization, in -Wextra) when a
 * string literal fills its array with no room for the NUL, which is the
 * exact-size form on purpose: the nonstring attribute says so, and gcc has
 * had it since 8. Clang has no such warning (nor the attribute). */
static const char nonstring_def[] =
    "#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8\n"
    "#define CRUNCH__NONSTRING __attribute__((__nonstring__))\n"
    "#else\n"
    "#define CRUNCH__NONSTRING\n"
    "#endif\n"
    "\n";

/* --incbin: the data goes to OUT.bin, which the assembler pulls in (GNU
 * as, or clang's integrated one) from the include path. A top-level asm
 * statement in OUT.c, not a separate .S, so that building OUT.c is the
 * same with or without it (no assembler language to enable in CMake); the
 * symbol is hidden, so it stays inside a shared library. BASE is OUT.bin's
 * name, which crunch_run checked needs no escaping. */
static void put_incbin(gen *g, const char *ident, const char *base)
{
    fprintf(g->c,
            "/* --incbin: the data is %s, read by the assembler from the include\n"
            " * path: compile with -I and this file's directory. */\n"
            "__asm__(\n"
            "    \"\\t.section .rodata\\n\"\n"
            "    \"\\t.p2align 4\\n\"\n"
            "    \"\\t.globl kvro__crunch_data_%s\\n\"\n"
            "    \"\\t.hidden kvro__crunch_data_%s\\n\"\n"
            "    \"\\t.type kvro__crunch_data_%s, %%object\\n\"\n"
            "    \"kvro__crunch_data_%s:\\n\"\n"
            "    \"\\t.incbin \\\"%s\\\"\\n\"\n"
            "    \"\\t.byte 0\\n\" /* an empty tree's data is still an object */\n"
            "    \"\\t.size kvro__crunch_data_%s, . - kvro__crunch_data_%s\\n\"\n"
            "    \"\\t.previous\\n\");\n"
            "extern const unsigned char kvro__crunch_data_%s[];\n",
            base, ident, ident, ident, ident, base, ident, ident, ident);
}

static int put_data(gen *g, long *size_at)
{
    if (!g->bin) {
        fputs("static const unsigned char crunch__data[", g->c);
        *size_at = ftell(g->c);
        fprintf(g->c, "%*s] CRUNCH__NONSTRING =", SIZE_ROOM, "");
        lit_open(g->lit, g->c);
    }
    unsigned char *in = malloc(KVRO_CRUNCH_BLOCK + 1), *out = malloc(KVRO_CRUNCH_BLOCK);
    z_stream z;
    memset(&z, 0, sizeof z);
    int rc = EXIT_OK;
    if (!in || !out ||
        (g->o->compress && deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK)) {
        fprintf(stderr, "mkkv: out of memory\n");
        rc = EXIT_FAIL;
    }
    for (size_t i = 0; rc == EXIT_OK && i < g->n; i++)
        if (g->v[i].info.kind == KVRO_KIND_FILE)
            rc = put_file(g, &g->v[i], in, out, &z);
    if (!g->bin) {
        lit_close(g->lit);
        fputs(";\n", g->c);
    }
    if (g->o->compress)
        deflateEnd(&z);
    free(in);
    free(out);
    return rc;
}

/* --------------------------------------------------------------- table */

static void put_int64(FILE *f, int64_t v)
{
    if (v == INT64_MIN) /* no such constant: its negation overflows */
        fputs("(-9223372036854775807 - 1)", f);
    else
        fprintf(f, "%lld", (long long)v);
}

static int put_table(gen *g, const char *ident)
{
    FILE *c = g->c;
    uint64_t names = 0;
    for (size_t i = 0; i < g->n; i++) {
        g->v[i].name_off = (uint32_t)names;
        names += strlen(g->v[i].key) + 1;
        if (names > UINT32_MAX) {
            fprintf(stderr, "mkkv: %s: the keys take more than 4 GiB\n",
                    quoted(source_name(g->source)));
            return EXIT_FAIL;
        }
    }
    if (g->n) {
        fprintf(c, "\nstatic const char crunch__names[%llu] CRUNCH__NONSTRING =",
                (unsigned long long)names);
        lit_open(g->lit, g->c);
        for (size_t i = 0; i < g->n; i++)
            lit_bytes(g->lit, (const unsigned char *)g->v[i].key, strlen(g->v[i].key) + 1);
        lit_close(g->lit);
        fputs(";\n", c);
    }
    if (g->n_blocks) {
        fprintf(c, "\nstatic const uint32_t crunch__blocks[%zu] = {", g->n_blocks);
        for (size_t i = 0; i < g->n_blocks; i++)
            fprintf(c, "%s%lu,", i % 10 ? " " : "\n    ", (unsigned long)g->blocks[i]);
        fputs("\n};\n", c);
    }
    if (g->n) {
        fprintf(c, "\nstatic const kvro_crunch_entry crunch__entries[%zu] = {\n", g->n);
        for (size_t i = 0; i < g->n; i++) {
            const item *e = &g->v[i];
            bool dir = e->info.kind == KVRO_KIND_DIR;
            uint32_t mode = e->info.has_mode ? e->info.mode & 07777 : dir ? 0755 : 0644;
            fprintf(c, "    {%lu, %lu, %d, 0%o, ", (unsigned long)e->name_off,
                    (unsigned long)e->end,
                    (dir ? KVRO_CRUNCH_DIR : 0) | (e->deflated ? KVRO_CRUNCH_DEFLATE : 0),
                    (unsigned)mode);
            put_int64(c, dir ? 0 : e->info.size);
            fputs(", ", c);
            put_int64(c, g->has_epoch ? g->epoch : e->info.mtime);
            fprintf(c, ", %llu, %lu, %ld, {", (unsigned long long)(dir ? 0 : e->data),
                    (unsigned long)(e->deflated ? e->block : 0),
                    (long)(g->has_epoch ? 0 : e->info.mtime_nsec));
            for (int k = 0; k < 32; k++)
                fprintf(c, "%s0x%02x", k ? "," : "", dir ? 0 : e->sha[k]);
            fputs("}},\n", c);
        }
        fputs("};\n", c);
    }
    fprintf(c,
            "\nconst kvro_crunch %s = {\n"
            "    KVRO_CRUNCH_MAGIC, %d, \"%s\", %zu,\n"
            "    %s, %s,\n"
            "    %s%s, %llu,\n"
            "    %s, %s,\n"
            "};\n",
            ident, KVRO_CRUNCH_VERSION, ident, g->n, g->n ? "crunch__entries" : "NULL",
            g->n ? "crunch__names" : "NULL", g->bin ? "kvro__crunch_data_" : "crunch__",
            g->bin ? ident : "data",
            (unsigned long long)g->data_size, g->n_blocks ? "crunch__blocks" : "NULL",
            g->any_deflated ? "kvro_crunch_inflate" : "NULL");
    return EXIT_OK;
}

static int put_c(gen *g, const char *ident, const char *header_base, const char *bin_base)
{
    fprintf(g->c,
            "/* Generated by mkkv crunch (kvro %s): a tree as a kvro_crunch table.\n"
            " * Do not edit; open it with kvro_open_crunch(&%s, &kv, &err). */\n"
            "#include \"%s\"\n"
            "\n"
            "#include <stddef.h>\n"
            "\n"
            "#if !defined(KVRO_CRUNCH_VERSION) || KVRO_CRUNCH_VERSION != %d\n"
            "#error \"generated for crunch table layout %d: regenerate it with this kvro's "
            "mkkv crunch\"\n"
            "#endif\n"
            "\n",
            KVRO_VERSION_STRING, ident, header_base, KVRO_CRUNCH_VERSION, KVRO_CRUNCH_VERSION);
    fputs(nonstring_def, g->c);
    long size_at = 0;
    int rc = put_data(g, &size_at);
    if (rc == EXIT_OK && g->bin)
        put_incbin(g, ident, bin_base);
    if (rc == EXIT_OK)
        rc = put_table(g, ident);
    if (rc == EXIT_OK && !g->bin) {
        /* An empty tree still has a one-byte array (""): C has no empty ones. */
        fseek(g->c, size_at, SEEK_SET);
        fprintf(g->c, "%*llu", SIZE_ROOM, (unsigned long long)(g->data_size ? g->data_size : 1));
        fseek(g->c, 0, SEEK_END);
    }
    return rc;
}

static void put_h(FILE *f, const char *ident)
{
    fprintf(f,
            "/* Generated by mkkv crunch (kvro %s). Do not edit. */\n"
            "#ifndef KVRO_CRUNCHED_%s_H\n"
            "#define KVRO_CRUNCHED_%s_H\n"
            "\n"
            "#include <kvro/crunch.h>\n"
            "\n"
            "#ifdef __cplusplus\n"
            "extern \"C\" {\n"
            "#endif\n"
            "\n"
            "extern const kvro_crunch %s;\n"
            "\n"
            "#ifdef __cplusplus\n"
            "}\n"
            "#endif\n"
            "#endif\n",
            KVRO_VERSION_STRING, ident, ident, ident);
}

static int str_cmp(const void *a, const void *b)
{
    return path_cmp(*(char *const *)a, *(char *const *)b);
}

/* The key of depfile input I (after SOURCE itself): every directory
 * walked, sorted, then every file kept. NULL past the end. */
static const char *dep_key(const gen *g, size_t i, size_t *file)
{
    if (i < g->n_walked)
        return g->walked[i];
    while (*file < g->n && g->v[*file].info.kind != KVRO_KIND_FILE)
        ++*file;
    return *file < g->n ? g->v[(*file)++].key : NULL;
}

/* OUT.c (and OUT.h, OUT.bin): SOURCE itself, and for a directory every
 * directory walked, whether or not it holds anything kept (adding or
 * removing a file shows in its directory's mtime, and an added file may
 * match --include), and every file kept; then an empty rule per input, as
 * gcc -MP writes, so that a removed one is not an error to Make. */
static int put_depfile(gen *g, FILE *f)
{
    struct stat st;
    bool is_dir = stat(g->source, &st) == 0 && S_ISDIR(st.st_mode);
    /* walked[0] is the root, SOURCE itself, written first anyway. */
    if (g->n_walked > 1)
        qsort(g->walked + 1, g->n_walked - 1, sizeof *g->walked, str_cmp);
    put_make_path(f, g->out);
    fputs(":", f);
    for (size_t pass = 0; pass < 2; pass++) {
        size_t file = 0;
        const char *key = NULL;
        for (size_t i = 0; i == 0 || (is_dir && (key = dep_key(g, i, &file))); i++) {
            char *p = i ? key_join(g->source, key) : strdup(g->source);
            if (!p)
                return EXIT_FAIL;
            fputs(pass ? "\n" : " \\\n  ", f);
            bool ok = put_make_path(f, p);
            free(p);
            if (!ok) {
                fprintf(stderr, "mkkv: %s: %s: a name with a line break cannot go in a "
                                "depfile\n",
                        quoted(source_name(g->source)), i ? quoted(key) : "");
                return EXIT_FAIL;
            }
            if (pass)
                fputs(":\n", f);
        }
        if (!pass)
            fputs("\n", f);
    }
    return EXIT_OK;
}

/* ------------------------------------------------------------- outputs */

static int generate(gen *g, const char *ident, const char *h_path, const char *bin_path)
{
    const char *slash = strrchr(h_path, '/');
    const char *bin_base = bin_path ? strrchr(bin_path, '/') : NULL;
    bin_base = bin_base ? bin_base + 1 : bin_path;
    FILE *h = NULL, *d = NULL;
    int rc = EXIT_FAIL;
    tmp_signals(true);
    if (!(g->c = tmp_create(0, g->out)) || !(h = tmp_create(1, h_path)) ||
        (g->o->depfile && !(d = tmp_create(2, g->o->depfile))) ||
        (bin_path && !(g->bin = tmp_create(3, bin_path))))
        goto out;
    put_h(h, ident);
    bool ok = tmp_finish(1, h, h_path, g->o->fsync);
    h = NULL;
    if (!ok || put_c(g, ident, slash ? slash + 1 : h_path, bin_base) != EXIT_OK)
        goto out;
    ok = tmp_finish(0, g->c, g->out, g->o->fsync);
    g->c = NULL;
    if (!ok)
        goto out;
    if (g->bin) {
        ok = tmp_finish(3, g->bin, bin_path, g->o->fsync);
        g->bin = NULL;
        if (!ok)
            goto out;
    }
    if (d) {
        ok = put_depfile(g, d) == EXIT_OK && tmp_finish(2, d, g->o->depfile, g->o->fsync);
        d = NULL;
        if (!ok)
            goto out;
    }
    /* OUT.c last: a build system that sees OUT.c new finds the rest new
     * too (and OUT.bin is never newer than the OUT.c that reads it). */
    const char *final[N_OUT] = {g->out, h_path, g->o->depfile, bin_path};
    static const int order[N_OUT] = {3, 1, 2, 0};
    for (int k = 0; k < N_OUT; k++) {
        int i = order[k];
        if (!tmp_commit(i, final[i], g->o->fsync))
            goto out;
    }
    rc = EXIT_OK;
out:
    if (g->c)
        fclose(g->c);
    if (g->bin)
        fclose(g->bin);
    if (h)
        fclose(h);
    if (d)
        fclose(d);
    g->c = g->bin = NULL;
    for (int i = 0; i < N_OUT; i++)
        tmp_drop(i);
    tmp_signals(false);
    return rc;
}

/* A whole number of seconds since the epoch. */
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

static int crunch_run(int argc, char **argv)
{
    static const struct option longs[] = {COMMON_LONG_OPTIONS,
                                          {"name", required_argument, 0, OPT_NAME},
                                          {"compress", no_argument, 0, OPT_COMPRESS},
                                          {"include", required_argument, 0, OPT_INCLUDE},
                                          {"exclude", required_argument, 0, OPT_EXCLUDE},
                                          {"depfile", required_argument, 0, OPT_DEPFILE},
                                          {"incbin", no_argument, 0, OPT_INCBIN},
                                          {"fsync", no_argument, 0, OPT_FSYNC},
                                          {0, 0, 0, 0}};
    common_opts co = {0};
    crunch_opts o = {0};
    gen g = {.o = &o};
    char *ident = NULL, *h_path = NULL, *bin_path = NULL;
    int rc = parse_args(&cmd_crunch, argc, argv, COMMON_SHORT_OPTIONS, longs, &co, crunch_opt,
                        &o);
    if (rc >= 0)
        goto done;
    rc = EXIT_USAGE;
    if (argc - optind != 2) {
        usage_error(&cmd_crunch, "expects SOURCE OUT.c");
        goto done;
    }
    g.source = argv[optind];
    g.out = argv[optind + 1];
    size_t out_len = strlen(g.out);
    const char *base = strrchr(g.out, '/') ? strrchr(g.out, '/') + 1 : g.out;
    if (out_len < 2 || strcmp(g.out + out_len - 2, ".c") || !strcmp(base, ".c")) {
        usage_error(&cmd_crunch, "OUT '%s' must be a file name ending in .c (OUT.h is "
                                 "written beside it)", g.out);
        goto done;
    }
    const char *env = getenv("SOURCE_DATE_EPOCH");
    if (env && *env && !(g.has_epoch = parse_epoch(env, &g.epoch))) {
        usage_error(&cmd_crunch, "invalid SOURCE_DATE_EPOCH '%s': want whole seconds since "
                                 "the epoch", env);
        goto done;
    }
    if (!source_is_stdin(g.source) && crunch_out_inside(g.source, g.out)) {
        usage_error(&cmd_crunch, "OUT '%s' is inside SOURCE '%s': the next run would crunch "
                                 "it into itself", g.out, g.source);
        goto done;
    }
    /* OUT.bin's name goes into an assembler string inside a C string. */
    for (const char *p = base; o.incbin && *p; p++)
        if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
            usage_error(&cmd_crunch, "--incbin: OUT '%s' must be a name of printable ASCII "
                                     "without quotes or backslashes (OUT.bin is named in the "
                                     "generated assembly)", g.out);
            goto done;
        }
    ident = o.name ? strdup(o.name) : crunch_default_name(g.out);
    h_path = strdup(g.out);
    bin_path = o.incbin ? malloc(out_len + 3) : NULL;
    g.lit = malloc(sizeof *g.lit); /* the names, and the data without --incbin */
    rc = EXIT_FAIL;
    if (!ident || !h_path || (o.incbin && !bin_path) || !g.lit) {
        fprintf(stderr, "mkkv: out of memory\n");
        goto done;
    }
    h_path[out_len - 1] = 'h';
    if (bin_path)
        sprintf(bin_path, "%.*s.bin", (int)(out_len - 2), g.out);
    if ((rc = open_source(g.source, &co, &g.kv)) != EXIT_OK || (rc = walk(&g)) != EXIT_OK ||
        (rc = settle(&g)) != EXIT_OK)
        goto done;
    /* Refused before anything is read: an uncompressed tree too big for a
     * compiler (a sparse file of 5 GiB says so at once). */
    int64_t total = 0;
    for (size_t i = 0; !o.compress && i < g.n; i++) {
        total += g.v[i].info.kind == KVRO_KIND_FILE ? g.v[i].info.size : 0;
        if (total > MAX_DATA) {
            fprintf(stderr,
                    "mkkv: %s: %s: the data passes %lld bytes here: too big to compile in "
                    "(keep it in an image read at run time, e.g. mkkv tar)\n",
                    quoted(source_name(g.source)), quoted(g.v[i].key), (long long)MAX_DATA);
            rc = EXIT_FAIL;
            goto done;
        }
    }
    rc = generate(&g, ident, h_path, bin_path);
done:
    for (size_t i = 0; i < g.n; i++)
        free(g.v[i].key);
    for (size_t i = 0; i < g.n_dirs; i++)
        free(g.dirs[i]);
    free(g.dirs);
    for (size_t i = 0; i < g.n_walked; i++)
        free(g.walked[i]);
    free(g.walked);
    free(g.lit);
    free(bin_path);
    free(g.v);
    free(g.blocks);
    free(ident);
    free(h_path);
    free(o.include);
    free(o.exclude);
    kvro_close(g.kv);
    return rc;
}

const command cmd_crunch = {
    "crunch", crunch_run, "compile a source's tree into C (OUT.c, OUT.h) for kvro_open_crunch",
    "Usage: mkkv crunch [--name IDENT] [--compress] [--incbin] [--include GLOB]...\n"
    "                   [--exclude GLOB]... [--depfile FILE] [--fsync] [-q] [-t TYPE]\n"
    "                   SOURCE OUT.c\n"
    "Write the tree of SOURCE (a directory, a tar, a .tar.gz: any source mkkv\n"
    "reads) as C: OUT.c holds the data and one table, OUT.h declares it,\n"
    "\n"
    "    extern const kvro_crunch IDENT;\n"
    "\n"
    "and a program compiled with OUT.c opens it with kvro_open_crunch(&IDENT, &kv,\n"
    "&err) (kvro/crunch.h): every KV_RO call, kvro_map (zero-copy, for values\n"
    "stored uncompressed) and kvro_sha256 (computed now) work on it.\n"
    "\n"
    "Every file and directory is included, hidden ones (.name) too, unless\n"
    "excluded. Symbolic links are followed: one that stays inside SOURCE becomes a\n"
    "copy of its target; one that leads outside, loops or dangles is left out,\n"
    "with a warning naming it. Keys are sorted; modes and mtimes are kept\n"
    "($SOURCE_DATE_EPOCH, when set, replaces every mtime). The same tree gives\n"
    "the same bytes. The data (all of it at most 1 GiB) is written as string\n"
    "literals, which compile far faster and leaner than one number per byte.\n"
    "\n"
    "  --name IDENT     the table's name (default: OUT's base name less .c, made\n"
    "                   an identifier: site-data.c gives site_data)\n"
    "  --compress       deflate each file in independent 64 KiB blocks, so that a\n"
    "                   read inflates only the blocks it touches; a block that does\n"
    "                   not shrink is stored raw, and a file none of whose blocks\n"
    "                   shrink is stored as it is (kvro_map serves it). Links zlib\n"
    "                   into the program only when some block shrank.\n"
    "  --incbin         write the data to OUT.bin, pulled into OUT.c by the\n"
    "                   assembler's .incbin (GNU as or clang, ELF targets): compiles\n"
    "                   in a fraction of the time; compile OUT.c with -I and OUT's\n"
    "                   directory\n"
    "  --include GLOB   keep only files whose key matches GLOB (and the directories\n"
    "                   leading to them, and directories that match); repeatable\n"
    "  --exclude GLOB   leave out entries whose key matches GLOB, a directory with\n"
    "                   all it holds; repeatable, wins over --include\n"
    "                   Globs are fnmatch(3) patterns on the whole key (\"a/b.txt\"),\n"
    "                   where '*' also matches '/': '*.map' matches at any depth.\n"
    "  --depfile FILE   also write a Make-style dependency file: OUT.c depends on\n"
    "                   SOURCE, every directory walked (kept or not: a file added\n"
    "                   there may match) and every file kept (for CMake's DEPFILE,\n"
    "                   Ninja, Make)\n"
    "  --fsync          make every output durable (fsync) before the renames;\n"
    "                   without it, like the compiler's own output, they are left\n"
    "                   to the kernel's write-back\n" COMMON_HELP SOURCE_HELP
    "\n"
    "OUT.c, OUT.h, OUT.bin and FILE are written to temporary files beside them and renamed\n"
    "into place when all are complete: after an error or SIGINT/SIGTERM/SIGHUP\n"
    "nothing is left. OUT may not lie inside SOURCE.\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage.\n",
};
