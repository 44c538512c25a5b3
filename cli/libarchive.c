/*
 * libarchive.c — see libarchive.h.
 */
#include "libarchive.h"

#include <dlfcn.h>
#include <stdio.h>

/* libarchive 3.x has kept this SONAME since 3.0; a 4.x would change it. */
#if ARCHIVE_VERSION_NUMBER < 3000000 || ARCHIVE_VERSION_NUMBER >= 4000000
#error "mkkv is written against libarchive 3 (SONAME libarchive.so.13)"
#endif
#define LIBARCHIVE_SONAME "libarchive.so.13"

const libarchive *libarchive_load(char *why, size_t size)
{
    static libarchive la;
    static const libarchive *loaded;
    if (loaded)
        return loaded;
    void *h = dlopen(LIBARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(why, size, "cannot load %s: %s", LIBARCHIVE_SONAME, dlerror());
        return NULL;
    }
    /* dlsym gives a void *; POSIX (not ISO C) lets it become a function
     * pointer, which is what storing it through a void ** does. */
#define LIBARCHIVE_RESOLVE(name)                                                                   \
    *(void **)&la.name = dlsym(h, #name);                                                          \
    if (!la.name) {                                                                                \
        snprintf(why, size, "%s has no %s", LIBARCHIVE_SONAME, #name);                             \
        dlclose(h);                                                                                \
        return NULL;                                                                               \
    }
    LIBARCHIVE_FUNCTIONS(LIBARCHIVE_RESOLVE)
#undef LIBARCHIVE_RESOLVE
    loaded = &la;
    return loaded;
}
