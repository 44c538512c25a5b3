/*
 * cache.c — mkkv cache: show, clear or prune the shared .tar.gz index
 * cache (kvro_cache_* in the public API; the library decides what an entry
 * is and never removes anything else).
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct cache_ctx {
    int64_t max; /* --max, else 0: the library's default */
} cache_ctx;

static int cache_opt(int c, const char *arg, void *p)
{
    cache_ctx *cc = p;
    if (c == 'm' && !parse_size(arg, &cc->max))
        return usage_error(&cmd_cache, "--max: '%s' is not a byte count (digits, optional "
                                       "K/M/G/T)", arg);
    if (c == 'm' && cc->max == 0)
        return usage_error(&cmd_cache, "--max: the cap must be more than 0 bytes");
    return -1;
}

typedef struct show_state {
    int64_t entries, bytes;
} show_state;

/* "     1234567  2026-12-01 18:22  /path/of/archive.tar.gz (archive gone)" */
static int show_entry(void *arg, const kvro_cache_entry *e)
{
    show_state *s = arg;
    char when[32] = "-";
    time_t t = (time_t)e->last_used;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
    printf("%12lld  %s  ", (long long)e->bytes, when);
    if (e->archive[0])
        quote_put(stdout, e->archive);
    else
        fputs("?", stdout);
    puts(!e->archive[0]        ? " (old format, never used again)"
         : !e->archive_exists ? " (archive gone)"
         : !e->usable         ? " (archive changed)"
                              : "");
    s->entries++;
    s->bytes += e->bytes;
    return 0;
}

static int fail(kvro_error *err)
{
    print_error(err);
    return EXIT_FAIL;
}

static int show(int64_t cap)
{
    char *dir = NULL;
    kvro_error err;
    if (kvro_cache_dir(&dir, &err) != KVRO_OK)
        return fail(&err);
    show_state s = {0};
    kvro_status st = kvro_cache_list(show_entry, &s, &err);
    if (st == KVRO_OK) {
        char total[32], max[32];
        format_bytes(total, sizeof total, s.bytes);
        format_bytes(max, sizeof max, cap);
        printf("%lld entr%s, %lld bytes (%s) of a %lld-byte cap (%s), in ", (long long)s.entries,
               s.entries == 1 ? "y" : "ies", (long long)s.bytes, total, (long long)cap, max);
        quote_put(stdout, dir);
        putchar('\n');
    }
    free(dir);
    return st == KVRO_OK ? EXIT_OK : fail(&err);
}

static void said(const char *what, const kvro_cache_result *r, int64_t cap)
{
    char gone[32], kept[32], max[32];
    format_bytes(gone, sizeof gone, r->removed_bytes);
    format_bytes(kept, sizeof kept, r->kept_bytes);
    printf("%s: removed %lld file%s (%s); %lld entr%s left (%s)", what, (long long)r->removed,
           r->removed == 1 ? "" : "s", gone, (long long)r->kept, r->kept == 1 ? "y" : "ies", kept);
    if (cap > 0) {
        format_bytes(max, sizeof max, cap);
        printf(" of a %s cap", max);
    }
    putchar('\n');
}

static int cache_run(int argc, char **argv)
{
    static const struct option longs[] = {
        {"max", required_argument, 0, 'm'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    common_opts o = {0};
    cache_ctx cc = {0};
    int rc = parse_args(&cmd_cache, argc, argv, ":h", longs, &o, cache_opt, &cc);
    if (rc >= 0)
        return rc;
    if (argc - optind > 1)
        return usage_error(&cmd_cache, "expects at most one of show, clear, prune");
    const char *what = argc - optind == 1 ? argv[optind] : "show";
    int64_t cap = kvro_cache_cap(cc.max);
    kvro_cache_result r;
    kvro_error err;
    if (!strcmp(what, "show"))
        return show(cap);
    if (!strcmp(what, "clear")) {
        if (kvro_cache_clear(&r, &err) != KVRO_OK)
            return fail(&err);
        said("clear", &r, 0);
        return EXIT_OK;
    }
    if (!strcmp(what, "prune")) {
        if (kvro_cache_trim(cap, KVRO_CACHE_STALE, &r, &err) != KVRO_OK)
            return fail(&err);
        said("prune", &r, cap);
        return EXIT_OK;
    }
    return usage_error(&cmd_cache, "unknown action '%s' (show, clear or prune)", what);
}

const command cmd_cache = {
    "cache", cache_run, "show, clear or prune the .tar.gz index cache",
    "Usage: mkkv cache [show | clear | prune] [--max N]\n"
    "The first open of a .tar.gz by path saves its access index in a cache, so the\n"
    "next open inflates nothing: $XDG_CACHE_HOME/kvro, else ~/.cache/kvro, one\n"
    "file per archive. The cache is kept under a cap ($KVRO_CACHE_MAX bytes if set,\n"
    "with an optional K, M, G or T suffix; else 1 GiB): saving an entry removes the\n"
    "least recently used ones (written or loaded last longest ago). Only kvro's\n"
    "index files are ever removed, never anything else in the directory.\n"
    "\n"
    "  show     (the default) one line per entry, most recently used first: its\n"
    "           size in bytes, when it was last used (UTC) and the archive it\n"
    "           indexes, marked '(archive gone)' if deleted, '(archive changed)'\n"
    "           if rewritten since (never used again either); then the total\n"
    "           against the cap\n"
    "  clear    remove every entry\n"
    "  prune    remove the entries no open will use again (archive gone or\n"
    "           changed, an older format), then the least recently used ones\n"
    "           until the rest fit the cap\n"
    "\n"
    "      --max N   the cap for prune and show (default: as above); N is a byte\n"
    "                count: decimal, with an optional K, M, G or T (x1024)\n"
    "  -h, --help    show this help\n" QUOTING_HELP,
};
