/*
 * crunch_site.c — a program with a tree compiled in by kvro_crunch()
 * (tests/consumer/CMakeLists.txt, scripts/demo.sh): with no argument it
 * lists every file with its stored SHA-256, as sha256sum prints them (so
 * `sha256sum -c` checks them against the tree); with KEY it prints that
 * file.
 */
#include "site.h"

#include <stdio.h>

static int show(void *arg, const char *key, kvro_status s, const kvro_info *info)
{
    kvro *kv = arg;
    unsigned char sha[32];
    kvro_error err;
    if (s != KVRO_OK || info->kind != KVRO_KIND_FILE)
        return 0;
    if (kvro_sha256(kv, key, sha, &err) != KVRO_OK) {
        kvro_error_print(stderr, "crunch_site", &err);
        return 1;
    }
    for (int i = 0; i < 32; i++)
        printf("%02x", sha[i]);
    printf("  %s\n", key);
    return 0;
}

int main(int argc, char **argv)
{
    kvro *kv;
    kvro_error err;
    if (kvro_open_crunch(&site, &kv, &err) != KVRO_OK) {
        kvro_error_print(stderr, "crunch_site", &err);
        return 1;
    }
    kvro_status s = KVRO_OK;
    if (argc < 2) {
        s = kvro_each(kv, show, kv, &err);
    } else {
        /* A compiled-in value is mapped, not copied. */
        const void *p;
        int64_t n;
        if ((s = kvro_map(kv, argv[1], &p, &n, &err)) == KVRO_OK)
            fwrite(p, 1, (size_t)n, stdout);
    }
    if (s != KVRO_OK)
        kvro_error_print(stderr, "crunch_site", &err);
    kvro_close(kv);
    return s == KVRO_OK ? 0 : 1;
}
