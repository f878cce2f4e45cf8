# Runs one `skiff bench NAME ... --json` (ARGS, a ;-list) and checks that its stdout is one JSON
# object of suite SUITE whose metrics hold each of KEYS (a ;-list) as a non-negative number.
execute_process(COMMAND ${SKIFF} ${ARGS} RESULT_VARIABLE code OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
if(NOT code EQUAL 0)
  message(FATAL_ERROR "skiff ${ARGS}: exit ${code}\n${out}${err}")
endif()
set(json_file ${WORK_DIR}/${SUITE}.json)
file(WRITE ${json_file} "${out}")
string(REPLACE ";" "," keys "${KEYS}")
execute_process(
  COMMAND python3 -c [=[
import json, sys
with open(sys.argv[1]) as f:
    doc = json.load(f)
assert doc['suite'] == sys.argv[2], 'suite is %r' % doc['suite']
assert isinstance(doc['params'], dict), 'params is not an object'
for key in sys.argv[3].split(','):
    value = doc['metrics'][key]
    assert type(value) in (int, float) and value >= 0, '%s is %r' % (key, value)
]=] ${json_file} ${SUITE} ${keys}
  RESULT_VARIABLE check ERROR_VARIABLE why)
if(NOT check EQUAL 0)
  message(FATAL_ERROR "skiff ${ARGS}: bad JSON on stdout:\n${out}\n${why}")
endif()
message(STATUS "skiff ${ARGS}: ${out}")
