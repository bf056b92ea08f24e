# Runs the installed-package example on $ENV{LLAMABATCH_TEST_MODEL} and checks its output.
if(NOT DEFINED ENV{LLAMABATCH_TEST_MODEL})
  message(FATAL_ERROR "set LLAMABATCH_TEST_MODEL to a GGUF file (python -m llamabatch.models path all-minilm-l6-v2)")
endif()
execute_process(COMMAND "${EXE}" "$ENV{LLAMABATCH_TEST_MODEL}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "example failed (${rc}): ${err}")
endif()
if(NOT out MATCHES "embedded 5 texts in [0-9]+ decode")
  message(FATAL_ERROR "unexpected example output")
endif()
