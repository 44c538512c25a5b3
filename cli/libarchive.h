/*
 * libarchive.h — libarchive, loaded with dlopen the first time a builder
 * needs it, so that the inspecting commands (ls, cat, stat, verify) do not
 * pay for loading it and what it pulls in (ICU, libxml2, libstdc++...):
 * that took `mkkv cat` from ~3 ms to ~8 ms a run here, which scripts
 * calling mkkv once per key feel. Calls go through a table whose members
 * have the exact types of the functions in <archive.h>, so the compiler
 * still checks every call.
 */
#ifndef KVRO_CLI_LIBARCHIVE_H
#define KVRO_CLI_LIBARCHIVE_H

#include <archive.h>
#include <archive_entry.h>
#include <stddef.h>

/* Every libarchive function mkkv calls. */
#define LIBARCHIVE_FUNCTIONS(X)                                                                    \
    X(archive_errno)                                                                               \
    X(archive_error_string)                                                                        \
    X(archive_set_error)                                                                           \
    X(archive_write_new)                                                                           \
    X(archive_write_free)                                                                          \
    X(archive_write_set_format_pax_restricted)                                                     \
    X(archive_write_set_bytes_per_block)                                                           \
    X(archive_write_set_bytes_in_last_block)                                                       \
    X(archive_write_add_filter_gzip)                                                               \
    X(archive_write_add_filter_xz)                                                                 \
    X(archive_write_add_filter_zstd)                                                               \
    X(archive_write_add_filter_bzip2)                                                              \
    X(archive_write_set_filter_option)                                                             \
    X(archive_write_open)                                                                          \
    X(archive_write_header)                                                                        \
    X(archive_write_data)                                                                          \
    X(archive_write_close)                                                                         \
    X(archive_entry_new)                                                                           \
    X(archive_entry_free)                                                                          \
    X(archive_entry_copy_pathname)                                                                 \
    X(archive_entry_copy_symlink)                                                                  \
    X(archive_entry_copy_hardlink)                                                                 \
    X(archive_entry_set_filetype)                                                                  \
    X(archive_entry_set_perm)                                                                      \
    X(archive_entry_set_size)                                                                      \
    X(archive_entry_set_mtime)                                                                     \
    X(archive_entry_set_uid)                                                                       \
    X(archive_entry_set_gid)

typedef struct libarchive {
#define LIBARCHIVE_MEMBER(name) __typeof__(name) *name;
    LIBARCHIVE_FUNCTIONS(LIBARCHIVE_MEMBER)
#undef LIBARCHIVE_MEMBER
} libarchive;

/* Loads libarchive once; NULL with the reason in WHY[SIZE] if it can not. */
const libarchive *libarchive_load(char *why, size_t size);

#endif
