# lint.build_enforces_deps: the build itself enforces the library graph (docs/design.md, "Layout").
# Usage: cmake -DBINARY_DIR=<build dir> -P build_enforces_deps.cmake
#   1. the canary (deps_canary.cc, which includes "store/database.h") compiles in a target that
#      links vouch::store: the include and the source are sound;
#   2. the same source fails in a target that links only vouch::evidence, and fails because the
#      compiler cannot find store/database.h (not for some other reason).
if(NOT BINARY_DIR)
  message(FATAL_ERROR "usage: cmake -DBINARY_DIR=<build dir> -P build_enforces_deps.cmake")
endif()
set(failed 0)

execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY_DIR} --target vouch_deps_canary_linked
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0)
  message("ok - a source including store/database.h builds in a target linking vouch::store")
else()
  message("${out}")
  message("not ok - a source including store/database.h does not build even linking vouch::store")
  math(EXPR failed "${failed} + 1")
endif()

execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY_DIR} --target vouch_deps_canary_unlinked
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
# GCC: "store/database.h: No such file or directory"; Clang: "'store/database.h' file not found".
if(NOT rc EQUAL 0 AND out MATCHES "store/database\\.h'?:? (No such file or directory|file not found)")
  message("ok - the same source fails to compile in a target linking only vouch::evidence (header not found)")
else()
  message("${out}")
  if(rc EQUAL 0)
    message("not ok - a target linking only vouch::evidence compiled an include of store/database.h")
  else()
    message("not ok - the unlinked canary failed, but not because store/database.h was not found")
  endif()
  math(EXPR failed "${failed} + 1")
endif()

math(EXPR passed "2 - ${failed}")
message("${passed} passed, ${failed} failed")
if(failed)
  message(FATAL_ERROR "the build does not enforce the library graph")
endif()
