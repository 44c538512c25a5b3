# kvro_crunch(TARGET DIR [NAME ident] [COMPRESS] [INCBIN] [INCLUDE globs...] [EXCLUDE globs...])
#
# Compiles the tree DIR into TARGET: at build time `mkkv crunch` writes
# ${CMAKE_CURRENT_BINARY_DIR}/kvro_crunch/IDENT.c and IDENT.h (IDENT is NAME,
# default TARGET_DIR's base name made an identifier), which is added to
# TARGET's sources with its directory on the include path:
#
#   #include "site.h"
#   kvro_open_crunch(&site, &kv, &err);
#
# INCBIN writes the data to IDENT.bin, which IDENT.c pulls in with the
# assembler's .incbin (GNU as or clang; ELF targets): much faster to compile
# for big trees. The include path above is how the assembler finds it.
# With clang, IDENT.c is compiled with -fno-integrated-as (GNU as reads
# .incbin data about twice as fast) unless KVRO_CRUNCH_CLANG_GNU_AS is OFF.
#
# TARGET must link kvro (kvro::kvro or kvro::kvro_static). mkkv's depfile
# (every file and directory of DIR) makes the build regenerate when a file
# under DIR is edited, added or removed, with Make and Ninja generators
# (CMake 3.20 or later; older ones fall back to a configure-time glob).
# The mkkv used is KVRO_MKKV if set, else the build tree's mkkv target, else
# the one installed beside this package.
include_guard(GLOBAL)

set(_kvro_crunch_dir "${CMAKE_CURRENT_LIST_DIR}")
option(KVRO_CRUNCH_CLANG_GNU_AS
  "kvro_crunch(... INCBIN) with clang: assemble the table with GNU as (faster for big data)" ON)

function(kvro_crunch target dir)
  cmake_parse_arguments(PARSE_ARGV 2 arg "COMPRESS;INCBIN" "NAME" "INCLUDE;EXCLUDE")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "kvro_crunch: unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  get_filename_component(dir "${dir}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(NOT IS_DIRECTORY "${dir}")
    message(FATAL_ERROR "kvro_crunch: ${dir} is not a directory")
  endif()
  set(name "${arg_NAME}")
  if(NOT name)
    get_filename_component(name "${dir}" NAME)
    string(MAKE_C_IDENTIFIER "${name}" name)
  endif()

  if(KVRO_MKKV)
    set(mkkv "${KVRO_MKKV}")
    set(mkkv_dep "${KVRO_MKKV}")
  elseif(TARGET mkkv)
    set(mkkv "$<TARGET_FILE:mkkv>")
    set(mkkv_dep mkkv)
  else()
    find_program(KVRO_MKKV_PROGRAM mkkv
      HINTS "${_kvro_crunch_dir}/../../../bin" "${_kvro_crunch_dir}/../../../../bin")
    if(NOT KVRO_MKKV_PROGRAM)
      message(FATAL_ERROR "kvro_crunch: mkkv not found (set KVRO_MKKV)")
    endif()
    set(mkkv "${KVRO_MKKV_PROGRAM}")
    set(mkkv_dep "${KVRO_MKKV_PROGRAM}")
  endif()

  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/kvro_crunch")
  set(out "${out_dir}/${name}.c")
  set(args --quiet --name "${name}")
  set(outputs "${out}" "${out_dir}/${name}.h")
  if(arg_COMPRESS)
    list(APPEND args --compress)
  endif()
  if(arg_INCBIN)
    list(APPEND args --incbin)
    list(APPEND outputs "${out_dir}/${name}.bin")
    # The compiler's own depfile does not name what .incbin reads.
    set_source_files_properties("${out}" PROPERTIES OBJECT_DEPENDS "${out_dir}/${name}.bin")
    # clang's integrated assembler copies .incbin's bytes several times:
    # 200 MB took 3-4 s and 500 MB of memory, GNU as 1.4 s and 210 MB, as
    # long as ld -r -b binary (bench/crunch_compile.sh). So clang hands
    # this one file to GNU as (binutils, which Debian's clang depends on)
    # unless KVRO_CRUNCH_CLANG_GNU_AS is OFF.
    if(CMAKE_C_COMPILER_ID STREQUAL "Clang" AND KVRO_CRUNCH_CLANG_GNU_AS)
      set_property(SOURCE "${out}" APPEND PROPERTY COMPILE_OPTIONS -fno-integrated-as)
    endif()
  endif()
  foreach(g IN LISTS arg_INCLUDE)
    list(APPEND args --include "${g}")
  endforeach()
  foreach(g IN LISTS arg_EXCLUDE)
    list(APPEND args --exclude "${g}")
  endforeach()
  file(MAKE_DIRECTORY "${out_dir}")
  if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.20)
    add_custom_command(OUTPUT ${outputs}
      COMMAND "${mkkv}" crunch ${args} --depfile "${out_dir}/${name}.d" -- "${dir}" "${out}"
      DEPENDS ${mkkv_dep}
      DEPFILE "${out_dir}/${name}.d"
      COMMENT "Crunching ${dir} into ${name}.c"
      VERBATIM)
  else()
    file(GLOB_RECURSE inputs CONFIGURE_DEPENDS LIST_DIRECTORIES true "${dir}/*")
    add_custom_command(OUTPUT ${outputs}
      COMMAND "${mkkv}" crunch ${args} -- "${dir}" "${out}"
      DEPENDS ${mkkv_dep} ${inputs}
      COMMENT "Crunching ${dir} into ${name}.c"
      VERBATIM)
  endif()
  target_sources(${target} PRIVATE "${out}" "${out_dir}/${name}.h")
  target_include_directories(${target} PRIVATE "${out_dir}")
endfunction()
