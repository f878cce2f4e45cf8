# Every dependency comes from Debian 12 packages (scripts/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(Protobuf 3.21 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(CLI11 REQUIRED)
find_package(PkgConfig REQUIRED)
if(SKIFF_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(SKIFF_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

# A thread-caching allocator for the skiff binary: the apiserver, controllers and scheduler allocate
# per request on many threads, where glibc's arenas cost ~15% of the CPU (malloc, free and
# malloc_consolidate under skiff bench scheduler) and fragment (RSS growth under bench soak).
set(SKIFF_MALLOC_LIBRARY "")
if(SKIFF_MALLOC STREQUAL "jemalloc" AND NOT SKIFF_SANITIZE AND NOT SKIFF_FUZZ)
  find_library(JEMALLOC_LIBRARY NAMES jemalloc)
  if(NOT JEMALLOC_LIBRARY)
    message(FATAL_ERROR "SKIFF_MALLOC=jemalloc: libjemalloc not found (apt-get install "
                        "libjemalloc-dev, or configure with -DSKIFF_MALLOC=system)")
  endif()
  set(SKIFF_MALLOC_LIBRARY ${JEMALLOC_LIBRARY})
elseif(NOT SKIFF_MALLOC STREQUAL "jemalloc" AND NOT SKIFF_MALLOC STREQUAL "system")
  message(FATAL_ERROR "SKIFF_MALLOC=${SKIFF_MALLOC}: want jemalloc or system")
endif()
