# Runs the installed-shape `skiff` binary the way a user does and checks exit codes and output.
function(expect_run expected_code expected_text)
  execute_process(COMMAND ${SKIFF} ${ARGN} RESULT_VARIABLE code OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT code EQUAL expected_code)
    message(FATAL_ERROR "skiff ${ARGN}: exit ${code}, expected ${expected_code}\n${out}${err}")
  endif()
  string(FIND "${out}${err}" "${expected_text}" found)
  if(found EQUAL -1)
    message(FATAL_ERROR "skiff ${ARGN}: output lacks '${expected_text}':\n${out}${err}")
  endif()
endfunction()

expect_run(0 "Client Version: skiff 0.1.0" version --client)
# A missing file is reported before a missing kubeconfig, as kubectl does.
expect_run(1 "the path \"/nonexistent.yaml\" does not exist" apply -f /nonexistent.yaml)
expect_run(1 "error: the server doesn't have a resource type \"foo\"" get foo --kubeconfig /nonexistent.kubeconfig)
expect_run(0 "Subcommands:" --help)
expect_run(0 "validate" --help)
expect_run(0 "0.1.0" --version)
expect_run(1 "unknown command \"no-such-verb\" for \"skiff\"" no-such-verb)
expect_run(0 "deployment.apps/web (namespace default) valid" validate -f ${SOURCE_DIR}/examples)
expect_run(0 "kind: Deployment" validate -f ${SOURCE_DIR}/examples/web.yaml -o yaml)
expect_run(1 "does not exist" validate -f /nonexistent.yaml)
