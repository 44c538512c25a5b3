/*
 * registry.c — every backend, in one list. Adding a backend is its folder
 * plus one line here (and its add_subdirectory in CMakeLists.txt). Order
 * only breaks ties between equal bids.
 */
#include "backend.h"

const kvro_backend *const kvro__backends[] = {
    &kvro__backend_dir,
    NULL,
};
