# Installs the syncmesh build into a scratch prefix, then configures, builds
# and runs an external project that finds it with find_package(syncmesh):
# an application (consumer) and its test using the test kit (kit_test).
# Arguments: SOURCE_DIR, BUILD_DIR, WORK_DIR.
set(prefix ${WORK_DIR}/prefix)
set(consumer_build ${WORK_DIR}/consumer-build)
file(REMOVE_RECURSE ${WORK_DIR})

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
  endif()
  message(STATUS "${what}: ok")
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

run_step("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
run_step("configure consumer" ${CMAKE_COMMAND}
         -S ${SOURCE_DIR}/tests/package/consumer -B ${consumer_build}
         -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
run_step("build consumer" ${CMAKE_COMMAND} --build ${consumer_build})
run_step("run consumer" ${consumer_build}/consumer)
if(NOT last_output MATCHES "consumer: ok")
  message(FATAL_ERROR "consumer printed no success line:\n${last_output}")
endif()
message(STATUS "${last_output}")
# The headers compile with C++17 (the package's own requirement, above) and
# with a newer standard a consumer may use.
if(NOT last_output MATCHES "__cplusplus=201703")
  message(FATAL_ERROR "the consumer was not built as C++17:\n${last_output}")
endif()
run_step("configure consumer (C++20)" ${CMAKE_COMMAND}
         -S ${SOURCE_DIR}/tests/package/consumer -B ${consumer_build}-20
         -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release
         -DCMAKE_CXX_STANDARD=20)
run_step("build consumer (C++20)" ${CMAKE_COMMAND} --build ${consumer_build}-20
         --target consumer)
run_step("run consumer (C++20)" ${consumer_build}-20/consumer)
if(NOT last_output MATCHES "consumer: ok.*__cplusplus=202002")
  message(FATAL_ERROR "the C++20 consumer failed:\n${last_output}")
endif()
run_step("run kit_test" ${consumer_build}/kit_test)
if(NOT last_output MATCHES "kit_test: ok")
  message(FATAL_ERROR "kit_test printed no success line:\n${last_output}")
endif()
message(STATUS "${last_output}")
run_step("run leader_lease_test" ${consumer_build}/leader_lease_test)
if(NOT last_output MATCHES "No errors detected")
  message(FATAL_ERROR "leader_lease_test did not pass:\n${last_output}")
endif()
