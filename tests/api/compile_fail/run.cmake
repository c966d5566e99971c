# Compiles one snippet of tests/api/compile_fail against the public headers
# and checks the outcome its first "// expect" line names (below a
# "// clang-format off" line, so that no formatter wraps it):
#   // expect: compiles                 the snippet must compile (a control:
#                                       it fails when the include paths or
#                                       flags are broken, so a "fails to
#                                       compile" below means what it says)
#   // expect-error: <CMake regex>      it must fail, with a diagnostic that
#                                       matches the regex (the reason, not
#                                       any error)
# Arguments: COMPILER, INCLUDES (directories separated by '|'), SOURCE,
# STANDARD (e.g. 17).
file(STRINGS ${SOURCE} expectation REGEX "^// expect" LIMIT_COUNT 1)
set(flags -std=c++${STANDARD} -fsyntax-only)
string(REPLACE "|" ";" include_list "${INCLUDES}")
foreach(dir IN LISTS include_list)
  if(dir)
    list(APPEND flags -I${dir})
  endif()
endforeach()
# LC_ALL=C: ASCII quotes in the diagnostics, which the regexes match.
execute_process(COMMAND ${CMAKE_COMMAND} -E env LC_ALL=C ${COMPILER} ${flags} ${SOURCE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(expectation MATCHES "^// expect: compiles")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${SOURCE} must compile but did not:\n${out}")
  endif()
  message(STATUS "compiles, as it must")
elseif(expectation MATCHES "^// expect-error: (.*)$")
  set(reason "${CMAKE_MATCH_1}")
  if(rc EQUAL 0)
    message(FATAL_ERROR "${SOURCE} compiled, but it must be an error")
  endif()
  if(NOT out MATCHES "${reason}")
    message(FATAL_ERROR "${SOURCE} failed for another reason than "
                        "'${reason}':\n${out}")
  endif()
  message(STATUS "refused, as it must: ${reason}")
else()
  message(FATAL_ERROR "${SOURCE}: no line names an expectation")
endif()
