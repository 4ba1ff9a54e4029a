# Helpers shared by every target: vouch_library(), vouch_test(), vouch_fuzzer(), vouch_app().
set(VOUCH_SHARED_DIR "${CMAKE_SOURCE_DIR}/../shared" CACHE PATH "The shared/ folder (test vectors)")

set(VOUCH_WARNINGS -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused
    -Woverloaded-virtual -Wimplicit-fallthrough -Werror)

option(VOUCH_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
if(VOUCH_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

function(_vouch_target_defaults target)
  target_compile_options(${target} PRIVATE ${VOUCH_WARNINGS})
endfunction()

# The include path enforces the library graph (docs/design.md, "Layout"): libs/ itself is on no
# target's include path. Each library instead gets a directory of its own in the build tree,
# <build>/vouch_include/<name>/, holding one symlink <name> -> libs/<name>, as its PUBLIC include
# directory; a target reaches "<name>/x.h" only if it links vouch::<name>, directly or through
# another library's usage requirements. A header of a library not depended on is a compile error
# ("No such file"), proved by the ctest lint.build_enforces_deps (tests/lint).
function(_vouch_include_dir name out)
  set(dir ${CMAKE_BINARY_DIR}/vouch_include/${name})
  if(NOT IS_SYMLINK ${dir}/${name})
    file(MAKE_DIRECTORY ${dir})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/libs/${name} ${dir}/${name} SYMBOLIC)
  endif()
  set(${out} ${dir} PARENT_SCOPE)
endfunction()

# vouch_include_libraries(TARGET lib...): the headers of the named libraries, for a target that
# compiles their sources itself instead of linking them (apps/vouch-rte, linked statically).
function(vouch_include_libraries target)
  foreach(name IN LISTS ARGN)
    _vouch_include_dir(${name} dir)
    target_include_directories(${target} PRIVATE ${dir})
  endforeach()
endfunction()

# vouch_library(NAME [DEPS lib...])
# Sources: every *.cc in the calling folder except *_test.cc and *_fuzz.cc.
# Creates target vouch_<NAME> with alias vouch::<NAME>. Its PUBLIC include directory exposes only
# "<NAME>/..." (libs/<NAME>); the headers of DEPS come through their own usage requirements.
function(vouch_library name)
  cmake_parse_arguments(ARG "" "" "DEPS;SOURCES" ${ARGN})
  if(NOT CMAKE_CURRENT_SOURCE_DIR STREQUAL "${CMAKE_SOURCE_DIR}/libs/${name}")
    message(FATAL_ERROR "vouch_library(${name}) must be called from libs/${name}/CMakeLists.txt")
  endif()
  _vouch_include_dir(${name} incdir)
  if(ARG_SOURCES)
    set(srcs ${ARG_SOURCES})
  else()
    file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
    list(FILTER srcs EXCLUDE REGEX "_(test|fuzz|bench)\\.cc$")
  endif()
  if(srcs)
    add_library(vouch_${name} STATIC ${srcs})
    _vouch_target_defaults(vouch_${name})
    target_include_directories(vouch_${name} PUBLIC ${incdir})
    target_link_libraries(vouch_${name} PUBLIC ${ARG_DEPS})
  else()
    add_library(vouch_${name} INTERFACE)
    target_include_directories(vouch_${name} INTERFACE ${incdir})
    target_link_libraries(vouch_${name} INTERFACE ${ARG_DEPS})
  endif()
  add_library(vouch::${name} ALIAS vouch_${name})
endfunction()

# vouch_test(NAME [DEPS ...] [LABELS ...])
# One GoogleTest binary per library from every *_test.cc in the folder; label "unit" by default.
# Like every target, a test sees only the headers of the libraries in its DEPS (and theirs).
function(vouch_test name)
  cmake_parse_arguments(ARG "" "" "DEPS;LABELS;SOURCES" ${ARGN})
  if(ARG_SOURCES)
    set(srcs ${ARG_SOURCES})
  else()
    file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc)
  endif()
  if(NOT srcs)
    return()
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_executable(${name}_test ${srcs})
  _vouch_target_defaults(${name}_test)
  target_link_libraries(${name}_test PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name}_test PRIVATE
    VOUCH_SHARED_DIR="${VOUCH_SHARED_DIR}" VOUCH_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    VOUCH_BINARY_DIR="${CMAKE_BINARY_DIR}")
  gtest_discover_tests(${name}_test PROPERTIES LABELS "${ARG_LABELS}" DISCOVERY_TIMEOUT 60)
  # `unit-tests` builds every test binary and nothing else (scripts/test's sanitizer pass).
  if(NOT TARGET unit-tests)
    add_custom_target(unit-tests)
  endif()
  add_dependencies(unit-tests ${name}_test)
endfunction()

# vouch_fuzzer(NAME SOURCE file DEPS ...): a libFuzzer target, only with -DVOUCH_FUZZ=ON and clang.
function(vouch_fuzzer name)
  cmake_parse_arguments(ARG "" "SOURCE" "DEPS" ${ARGN})
  if(NOT VOUCH_FUZZ)
    return()
  endif()
  add_executable(fuzz_${name} ${ARG_SOURCE})
  _vouch_target_defaults(fuzz_${name})
  target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_${name} PRIVATE ${ARG_DEPS})
endfunction()

# vouch_app(NAME [DEPS ...]): an executable from every *.cc in the folder.
function(vouch_app name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  list(FILTER srcs EXCLUDE REGEX "_test\\.cc$")
  add_executable(${name} ${srcs})
  _vouch_target_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()
