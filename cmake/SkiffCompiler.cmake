# Warnings, sanitizers and fuzzing flags, applied to Skiff's own targets through skiff_warnings.
add_library(skiff_warnings INTERFACE)
target_compile_options(skiff_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wimplicit-fallthrough
  # GCC 12 warns on designated initializers that leave members at their defaults, which is their
  # point.
  -Wno-missing-field-initializers)
if(SKIFF_WERROR)
  target_compile_options(skiff_warnings INTERFACE -Werror)
endif()

if(SKIFF_SANITIZE)
  add_compile_options(-fsanitize=${SKIFF_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${SKIFF_SANITIZE})
endif()

if(SKIFF_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "SKIFF_FUZZ needs clang: configure with -DCMAKE_CXX_COMPILER=clang++")
  endif()
  # Everything is instrumented for coverage; only fuzz targets link libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# Link with lld when it is there (a Debian package install-deps.sh installs): the binaries carry
# debug info and link four times faster than with ld.bfd (skiff: 6.6 s against 25.7 s).
set(SKIFF_LINKER "auto" CACHE STRING "Linker for -fuse-ld: auto (lld when found), lld, bfd, gold")
if(SKIFF_LINKER STREQUAL "auto")
  find_program(SKIFF_LLD_PROGRAM ld.lld)
  if(SKIFF_LLD_PROGRAM)
    add_link_options(-fuse-ld=lld)
  endif()
elseif(NOT SKIFF_LINKER STREQUAL "")
  add_link_options(-fuse-ld=${SKIFF_LINKER})
endif()
