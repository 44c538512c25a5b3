/*
 * verify.c — mkkv verify SOURCE DIR: does SOURCE hold exactly the
 * directories and files of host directory DIR, byte for byte? Both are
 * walked through the same KV_RO API, in step, by sorted name.
 */
#include "cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CHUNK = 1 << 20 };

typedef struct side {
    kvro *kv;
    const char *name;
    char *buf;
} side;

typedef struct verify_ctx {
    side a, b;         /* SOURCE, DIR */
    int64_t files, dirs, bytes, diffs, errors;
    progress p;
} verify_ctx;

/* One line of the report, on standard output. */
__attribute__((format(printf, 2, 3))) static void difference(verify_ctx *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    progress_done(&v->p);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    v->diffs++;
}

static bool failed(verify_ctx *v, kvro_status s, const kvro_error *err)
{
    if (s == KVRO_OK)
        return false;
    progress_done(&v->p);
    report(err);
    v->errors++;
    return true;
}

static void compare_files(verify_ctx *v, const char *key)
{
    kvro_error err;
    int64_t sa, sb;
    if (failed(v, kvro_size(v->a.kv, key, &sa, &err), &err) ||
        failed(v, kvro_size(v->b.kv, key, &sb, &err), &err))
        return;
    if (sa != sb) {
        difference(v, "size differs: %s: %lld bytes in %s, %lld in %s", quoted(key),
                   (long long)sa, quoted(v->a.name), (long long)sb, quoted(v->b.name));
        return;
    }
    for (int64_t off = 0; off < sa;) {
        int64_t na, nb;
        if (failed(v, kvro_read(v->a.kv, key, off, CHUNK, v->a.buf, &na, &err), &err) ||
            failed(v, kvro_read(v->b.kv, key, off, CHUNK, v->b.buf, &nb, &err), &err))
            return;
        int64_t n = na < nb ? na : nb;
        if (memcmp(v->a.buf, v->b.buf, (size_t)n) != 0 || na != nb || n == 0) {
            int64_t at = 0;
            while (at < n && v->a.buf[at] == v->b.buf[at])
                at++;
            difference(v, "content differs: %s: first difference at byte %lld", quoted(key),
                       (long long)(off + at));
            return;
        }
        off += n;
        v->bytes += n;
        progress_update(&v->p, v->files, v->bytes, 0);
    }
    v->files++;
}

static const char *kind_name(kvro_kind k)
{
    return k == KVRO_KIND_DIR ? "a directory" : "a file";
}

static void compare_dirs(verify_ctx *v, const char *dir)
{
    entry_list la, lb;
    kvro_error err;
    if (failed(v, list_dir(v->a.kv, dir, &la, &err), &err))
        return;
    if (failed(v, list_dir(v->b.kv, dir, &lb, &err), &err)) {
        entry_list_free(&la);
        return;
    }
    v->dirs++;
    size_t i = 0, j = 0;
    while (i < la.n || j < lb.n) {
        int cmp = i == la.n ? 1 : j == lb.n ? -1 : strcmp(la.names[i], lb.names[j]);
        const char *name = cmp <= 0 ? la.names[i] : lb.names[j];
        char *key = key_join(dir, name);
        if (!key) {
            fprintf(stderr, "mkkv: out of memory\n");
            v->errors++;
            break;
        }
        if (cmp < 0) {
            difference(v, "only in %s: %s", quoted(v->a.name), quoted(key));
        } else if (cmp > 0) {
            difference(v, "only in %s: %s", quoted(v->b.name), quoted(key));
        } else if (la.kinds[i] != lb.kinds[j]) {
            difference(v, "kind differs: %s: %s in %s, %s in %s", quoted(key),
                       kind_name(la.kinds[i]), quoted(v->a.name), kind_name(lb.kinds[j]),
                       quoted(v->b.name));
        } else if (la.kinds[i] == KVRO_KIND_DIR) {
            compare_dirs(v, key);
        } else {
            compare_files(v, key);
        }
        free(key);
        i += cmp <= 0;
        j += cmp >= 0;
    }
    entry_list_free(&la);
    entry_list_free(&lb);
}

static int verify_run(int argc, char **argv)
{
    static const struct option longs[] = {COMMON_LONG_OPTIONS, {0, 0, 0, 0}};
    common_opts o = {0};
    int rc = parse_args(&cmd_verify, argc, argv, COMMON_SHORT_OPTIONS, longs, &o, NULL, NULL);
    if (rc >= 0)
        return rc;
    if (argc - optind != 2)
        return usage_error(&cmd_verify, "expects SOURCE DIR");
    if (source_is_stdin(argv[optind + 1]))
        return usage_error(&cmd_verify, "DIR is a host directory, not standard input (write ./- "
                                        "for a directory named '-')");
    verify_ctx v = {.a.name = source_name(argv[optind]), .b.name = argv[optind + 1]};
    common_opts dir_opts = {.open.backend = "dir", .quiet = o.quiet, .cmd = &cmd_verify};
    if ((rc = open_source(argv[optind], &o, &v.a.kv)) != EXIT_OK)
        return rc;
    if ((rc = open_source(v.b.name, &dir_opts, &v.b.kv)) != EXIT_OK) {
        kvro_close(v.a.kv);
        return rc;
    }
    v.a.buf = malloc(CHUNK);
    v.b.buf = malloc(CHUNK);
    if (!v.a.buf || !v.b.buf) {
        fprintf(stderr, "mkkv: out of memory\n");
        rc = EXIT_FAIL;
    } else {
        progress_start(&v.p, "verifying", o.quiet);
        compare_dirs(&v, "");
        progress_done(&v.p);
        if (v.diffs || v.errors) {
            fprintf(stderr, "mkkv: verify: %s and %s differ (%lld difference%s%s)\n",
                    quoted(v.a.name), quoted(v.b.name), (long long)v.diffs, v.diffs == 1 ? "" : "s",
                    v.errors ? ", and errors" : "");
            rc = EXIT_FAIL;
        } else if (!o.quiet) {
            printf("%s matches %s: %lld files, %lld directories, %lld bytes\n", quoted(v.a.name),
                   quoted(v.b.name), (long long)v.files, (long long)v.dirs, (long long)v.bytes);
        }
    }
    free(v.a.buf);
    free(v.b.buf);
    kvro_close(v.a.kv);
    kvro_close(v.b.kv);
    return rc;
}

const command cmd_verify = {
    "verify", verify_run, "check that a source holds exactly a directory's tree",
    "Usage: mkkv verify [OPTIONS] SOURCE DIR\n"
    "Compare SOURCE with host directory DIR: the same directories and files,\n"
    "with the same bytes. Each difference is printed on standard output:\n"
    "  only in SOURCE: KEY / only in DIR: KEY\n"
    "  kind differs: KEY: ...   size differs: KEY: ...   content differs: KEY: ...\n"
    QUOTING_HELP
    "Exit status 0 if they match, 1 if they differ or cannot be read, 2 on bad usage.\n"
    "\n" COMMON_HELP "\n"
    "-t, --image-offset and --image-length apply to SOURCE; DIR is always read as\n"
    "a host directory.\n" SOURCE_HELP,
};
