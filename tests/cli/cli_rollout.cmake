# `pedagogy rollout` with the tiny preset on CPU: 8 problems x 4 samples give 32 complete records.
#   cmake -DPEDAGOGY=path -DSOURCE_DIR=dir -DWORK_DIR=dir -P cli_rollout.cmake
# Run from the source folder (templates and the bundled problems are found there); models and
# output go to WORK_DIR.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(out ${WORK_DIR}/dialogs.jsonl)
execute_process(
  COMMAND ${PEDAGOGY} rollout --config config/tiny.toml --limit 8 --samples 4 --out ${out}
          tutor.model=${WORK_DIR}/tutor student.model=${WORK_DIR}/student
  WORKING_DIRECTORY ${SOURCE_DIR}
  RESULT_VARIABLE rc OUTPUT_VARIABLE stdout ERROR_VARIABLE stderr)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "rollout failed (${rc}):\n${stdout}\n${stderr}")
endif()
if(NOT stderr MATCHES "rollout 32/32 dialogs")
  message(FATAL_ERROR "no final progress line:\n${stderr}")
endif()

# The JSONL as one JSON array (CMake lists would split records at semicolons).
function(read_records path out_var count_var)
  file(READ ${path} text)
  string(STRIP "${text}" text)
  string(REPLACE "\n" "," text "${text}")
  set(${out_var} "[${text}]" PARENT_SCOPE)
  string(JSON n LENGTH "[${text}]")
  set(${count_var} ${n} PARENT_SCOPE)
endfunction()

read_records(${out} records count)
if(NOT count EQUAL 32)
  message(FATAL_ERROR "expected 32 records, found ${count}")
endif()

function(require line key)
  string(JSON value ERROR_VARIABLE err GET "${line}" ${ARGN})
  if(err)
    message(FATAL_ERROR "record lacks ${key}: ${err}\n${line}")
  endif()
  set(${key} "${value}" PARENT_SCOPE)
endfunction()

set(ids "")
set(groups "")
math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  string(JSON line GET "${records}" ${i})
  require("${line}" status status)
  require("${line}" id id)
  require("${line}" problem problem)
  require("${line}" answer answer)
  require("${line}" type type)
  require("${line}" total reward total)
  require("${line}" rejected rejected)
  require("${line}" tutor_turns tutor_turns)
  require("${line}" tutor_tokens tokens tutor)
  require("${line}" seconds seconds)
  string(JSON n_messages LENGTH "${line}" messages)
  string(JSON n_view LENGTH "${line}" student_view)
  string(JSON n_judgements LENGTH "${line}" judgements)
  string(JSON n_solutions LENGTH "${line}" solutions)
  if(NOT status STREQUAL "ok")
    message(FATAL_ERROR "dialog ${id} is ${status}:\n${line}")
  endif()
  if(n_messages LESS 2 OR NOT n_messages EQUAL n_view)
    message(FATAL_ERROR "dialog ${id}: ${n_messages} messages, ${n_view} in the student view")
  endif()
  if(NOT tutor_turns EQUAL 2 OR tutor_tokens LESS 2)
    message(FATAL_ERROR "dialog ${id}: ${tutor_turns} tutor turns, ${tutor_tokens} tokens")
  endif()
  if(NOT n_judgements EQUAL 1)
    message(FATAL_ERROR "dialog ${id}: ${n_judgements} judgements, expected one rule")
  endif()
  # Hard mode: a rejected dialog has no solutions; an accepted one has K = 4.
  if(rejected AND NOT n_solutions EQUAL 0)
    message(FATAL_ERROR "dialog ${id} was rejected but has ${n_solutions} solutions")
  endif()
  if(NOT rejected AND NOT n_solutions EQUAL 4)
    message(FATAL_ERROR "dialog ${id} has ${n_solutions} solutions, expected 4")
  endif()
  list(APPEND ids ${id})
  string(REGEX REPLACE "/[0-9]+$" "" group ${id})
  list(APPEND groups "${group}|${type}")
endforeach()
list(REMOVE_DUPLICATES ids)
list(LENGTH ids distinct)
if(NOT distinct EQUAL 32)
  message(FATAL_ERROR "dialog ids repeat: ${ids}")
endif()
# 8 problems, each with one scenario for all of its samples.
list(REMOVE_DUPLICATES groups)
list(LENGTH groups distinct_groups)
if(NOT distinct_groups EQUAL 8)
  message(FATAL_ERROR "samples of a problem differ in scenario: ${groups}")
endif()

# An existing output is never overwritten without --force.
execute_process(
  COMMAND ${PEDAGOGY} rollout --config config/tiny.toml --limit 1 --out ${out}
          tutor.model=${WORK_DIR}/tutor student.model=${WORK_DIR}/student
  WORKING_DIRECTORY ${SOURCE_DIR}
  RESULT_VARIABLE rc OUTPUT_VARIABLE stdout ERROR_VARIABLE stderr)
read_records(${out} unused count_again)
if(NOT rc EQUAL 2 OR NOT stderr MATCHES "--force" OR NOT count_again EQUAL 32)
  message(FATAL_ERROR "rerun without --force: rc ${rc}, ${count_again} records left:\n${stderr}")
endif()
