/*
 * registry.c — every backend, in one list. Adding a backend is its folder
 * (with a CMakeLists.txt adding its sources to kvro_objects, picked up by
 * the top-level CMakeLists.txt) plus its line here. Order only breaks ties
 * between equal bids.
 */
#include "backend.h"

extern const kvro_backend kvro__backend_dir;
extern const kvro_backend kvro__backend_tar;

const kvro_backend *const kvro__backends[] = {
    &kvro__backend_dir,
    &kvro__backend_tar,
    NULL,
};
