# Helpers that give every Skiff target the same shape.

# skiff_library(NAME SOURCES ... [DEPS ...]): one library per component.
function(skiff_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE skiff_warnings ${ARG_PRIVATE_DEPS})
endfunction()

# skiff_test(NAME SOURCES ... DEPS ... LABELS ... [TIMEOUT s]): a GoogleTest binary run by ctest.
# Labels: unit, privileged (needs root: netns, BPF, hugepages), e2e, bench-smoke.
function(skiff_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS;ARGS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main
                                        skiff_warnings)
  target_compile_definitions(${name} PRIVATE SKIFF_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_test(NAME ${name} COMMAND ${name} ${ARG_ARGS})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()

# skiff_benchmark(NAME SOURCES ... DEPS ...): a Google Benchmark binary, also run once, tiny, as a
# bench-smoke test so that every benchmark keeps working.
function(skiff_benchmark name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark skiff_warnings)
  target_compile_definitions(${name} PRIVATE SKIFF_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_test(NAME ${name}_smoke COMMAND ${name} --benchmark_min_time=0.001)
  set_tests_properties(${name}_smoke PROPERTIES LABELS bench-smoke TIMEOUT 300)
endfunction()
