/*
 * registry.c — every backend, in one list. Adding a backend is its folder
 * (with a CMakeLists.txt adding its sources to kvro_objects, picked up by
 * the top-level CMakeLists.txt) plus its line here. Order only breaks ties
 * between equal bids.
 */
#include "backend.h"

extern const kvro_backend kvro__backend_dir;
extern const kvro_backend kvro__backend_tar;
extern const kvro_backend kvro__backend_fat;

const kvro_backend *const kvro__backends[] = {
    &kvro__backend_dir,
    &kvro__backend_tar,
    &kvro__backend_fat,
    NULL,
};

/* Here, not in core.c: a program that only opens a compiled-in table
 * (kvro_open_crunch) links the core without the registry, and so without
 * every backend in it. */
size_t kvro_backend_count(void)
{
    size_t n = 0;
    while (kvro__backends[n])
        n++;
    return n;
}

const char *kvro_backend_name(size_t i)
{
    return i < kvro_backend_count() ? kvro__backends[i]->name : NULL;
}

const char *kvro_backend_description(size_t i)
{
    return i < kvro_backend_count() ? kvro__backends[i]->description : NULL;
}
