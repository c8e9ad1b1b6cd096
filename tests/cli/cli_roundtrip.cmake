# `pedagogy config show` output must load back unchanged: show(file) == show(show(file)).
#   cmake -DPEDAGOGY=path -DCONFIG=preset.toml -DWORK_DIR=dir -P cli_roundtrip.cmake
get_filename_component(name "${CONFIG}" NAME_WLE)
set(first "${WORK_DIR}/${name}.shown.toml")
execute_process(COMMAND ${PEDAGOGY} config show --config ${CONFIG}
                RESULT_VARIABLE rc OUTPUT_FILE ${first} ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "config show --config ${CONFIG} failed (${rc}):\n${err}")
endif()
execute_process(COMMAND ${PEDAGOGY} config show --config ${first}
                RESULT_VARIABLE rc OUTPUT_VARIABLE second ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the shown config does not load back (${rc}):\n${err}")
endif()
file(READ ${first} first_text)
# Only the header comment (which names the source file) may differ.
string(REGEX REPLACE "^# [^\n]*\n" "" first_body "${first_text}")
string(REGEX REPLACE "^# [^\n]*\n" "" second_body "${second}")
if(NOT first_body STREQUAL second_body)
  message(FATAL_ERROR "config show is not stable for ${CONFIG}:\n--- first\n${first_body}\n--- second\n${second_body}")
endif()
