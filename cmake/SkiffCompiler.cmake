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
