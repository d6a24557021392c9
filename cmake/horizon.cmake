# Shared build helpers: warnings, ccache, horizon_library(), horizon_test().

find_program(HORIZON_CCACHE ccache)
if(HORIZON_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_C_COMPILER_LAUNCHER ${HORIZON_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${HORIZON_CCACHE})
endif()

# Source root, baked into tests that check docs (golden tests).
set(HORIZON_SOURCE_DIR ${PROJECT_SOURCE_DIR})

function(horizon_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
    -Wconversion -Wsign-conversion -Wdouble-promotion
    -Wimplicit-fallthrough -Werror)
endfunction()

# horizon_library(NAME SOURCES ... DEPS ...)
function(horizon_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  horizon_warnings(${name})
endfunction()

# horizon_test(NAME SOURCES ... DEPS ... [LABELS ...] [TIMEOUT s])
# One gtest binary per room; tests are discovered into ctest individually.
function(horizon_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS;PROPERTIES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_compile_definitions(${name} PRIVATE HORIZON_SOURCE_DIR="${HORIZON_SOURCE_DIR}")
  horizon_warnings(${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}" ${ARG_PROPERTIES})
endfunction()
