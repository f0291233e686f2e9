# mxport_cc_library(NAME name [HDRS ...] [SRCS ...] [DEPS ...])
#   One library target per module: mxport_<name>, aliased mxport::<name>. Header-only when SRCS
#   is empty. Include paths are rooted at the repository, so headers are included as
#   "common/base/status_macros.h".
# mxport_cc_test(NAME name SRCS ... [DEPS ...] [LABELS ...] [FIXTURES ...])
#   A GoogleTest executable registered with ctest through gtest_discover_tests. FIXTURES names
#   ctest fixtures (FIXTURES_SETUP tests) that must run first.

set(MXPORT_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)

function(mxport_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "HDRS;SRCS;DEPS" ${ARGN})
  set(target mxport_${ARG_NAME})
  if(ARG_SRCS)
    add_library(${target} STATIC ${ARG_SRCS} ${ARG_HDRS})
    target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
    target_link_libraries(${target} PUBLIC ${ARG_DEPS})
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${MXPORT_WARNINGS}>)
  else()
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
    target_link_libraries(${target} INTERFACE ${ARG_DEPS})
  endif()
  add_library(mxport::${ARG_NAME} ALIAS ${target})
endfunction()

function(mxport_cc_test)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;LABELS;FIXTURES" ${ARGN})
  if(MXPORT_FUZZ)
    return()
  endif()
  set(target ${ARG_NAME})
  add_executable(${target} ${ARG_SRCS})
  target_link_libraries(${target} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${MXPORT_WARNINGS}>)
  target_compile_definitions(${target} PRIVATE
    MXPORT_SOURCE_DIR="${PROJECT_SOURCE_DIR}" MXPORT_BINARY_DIR="${PROJECT_BINARY_DIR}")
  include(GoogleTest)
  set(props LABELS "${ARG_LABELS}")
  if(NOT ARG_LABELS)
    set(props LABELS "unit")
  endif()
  if(ARG_FIXTURES)
    list(APPEND props FIXTURES_REQUIRED "${ARG_FIXTURES}")
  endif()
  gtest_discover_tests(${target} PROPERTIES ${props} DISCOVERY_TIMEOUT 60)
endfunction()

# mxport_fuzz_target(NAME name SRCS ... DEPS ...): a libFuzzer executable (fuzz builds only).
function(mxport_fuzz_target)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  target_compile_options(${ARG_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${ARG_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
endfunction()
