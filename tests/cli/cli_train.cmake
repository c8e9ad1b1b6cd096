# `pedagogy train` with the tiny preset, 2 steps: metrics with every field, a checkpoint that is
# a model directory plus optimizer and trainer state, no silent restart, and --resume.
#   cmake -DPEDAGOGY=path -DSOURCE_DIR=dir -DWORK_DIR=dir -P cli_train.cmake
file(REMOVE_RECURSE ${WORK_DIR})
set(common --config config/tiny.toml train.max_steps=2 logging.run_dir=${WORK_DIR}/run
    tutor.model=${WORK_DIR}/tutor student.model=${WORK_DIR}/student data.max_problems=8)
execute_process(COMMAND ${PEDAGOGY} train ${common} WORKING_DIRECTORY ${SOURCE_DIR}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "train failed (${rc}):\n${out}\n${err}")
endif()

file(READ ${WORK_DIR}/run/metrics.jsonl text)
string(STRIP "${text}" text)
string(REPLACE "\n" "," text "${text}")
set(records "[${text}]")
string(JSON count LENGTH "${records}")
if(NOT count EQUAL 2)
  message(FATAL_ERROR "expected 2 metrics lines, found ${count}")
endif()
string(JSON line GET "${records}" 1)
foreach(key step reward reward_end reward_thinking reward_end_marker reward_length solve_rate
        rejected reject_rate_by_rule loss pg_loss kl clip_fraction grad_norm learning_rate
        behaviour_kl advantage_mean advantage_std advantage_min advantage_max tutor_turns
        tutor_tokens trained_tokens failed_dialogs rollout_s learn_s sync_s checkpoint_s step_s)
  string(JSON value ERROR_VARIABLE missing GET "${line}" ${key})
  if(missing)
    message(FATAL_ERROR "metrics lack '${key}': ${line}")
  endif()
endforeach()
string(JSON version GET "${line}" weights_version)
if(NOT version EQUAL 2)
  message(FATAL_ERROR "weights version ${version} after 2 steps")
endif()
foreach(file config.json model.safetensors tokenizer.json tokenizer_config.json
        optimizer.safetensors trainer_state.json)
  if(NOT EXISTS ${WORK_DIR}/run/checkpoints/step-000002/${file})
    message(FATAL_ERROR "checkpoint lacks ${file}")
  endif()
endforeach()
# The checkpoint is a model our own tools load.
execute_process(COMMAND ${PEDAGOGY} chat-template --model ${WORK_DIR}/run/checkpoints/step-000002
                --generation-prompt INPUT_FILE ${SOURCE_DIR}/tests/data/one_chat.json
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the checkpoint does not load as a model (${rc}):\n${err}")
endif()

# An earlier run is never overwritten silently...
execute_process(COMMAND ${PEDAGOGY} train ${common} WORKING_DIRECTORY ${SOURCE_DIR}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2 OR NOT err MATCHES "--resume")
  message(FATAL_ERROR "a second run without --resume/--force: rc ${rc}\n${err}")
endif()
# ...and --resume at the last step has nothing left to do.
execute_process(COMMAND ${PEDAGOGY} train ${common} --resume WORKING_DIRECTORY ${SOURCE_DIR}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
file(STRINGS ${WORK_DIR}/run/metrics.jsonl lines)
list(LENGTH lines after)
if(NOT rc EQUAL 0 OR NOT after EQUAL 2)
  message(FATAL_ERROR "resume at the end: rc ${rc}, ${after} metrics lines\n${err}")
endif()
