# Runs EXE on the test models (from the environment), optionally under valgrind,
# and fails on a non-zero exit or on any sanitizer or memcheck report.
if(NOT DEFINED ENV{LLAMABATCH_TEST_MODEL})
  message(FATAL_ERROR "set LLAMABATCH_TEST_MODEL to a GGUF file (python -m llamabatch.models path all-minilm-l6-v2)")
endif()
set(_args "$ENV{LLAMABATCH_TEST_MODEL}")
if(DEFINED ENV{LLAMABATCH_TEST_GEN_MODEL} AND NOT DEFINED VALGRIND)
  list(APPEND _args "$ENV{LLAMABATCH_TEST_GEN_MODEL}")
endif()
set(_cmd "${EXE}" ${_args})
if(DEFINED VALGRIND)
  # Definite leaks and invalid accesses fail the run; llama.cpp's one-time
  # globals (backend registry, thread pool) are "still reachable", not leaks.
  set(_cmd "${VALGRIND}" --tool=memcheck --error-exitcode=42 --leak-check=full
           --errors-for-leak-kinds=definite --show-leak-kinds=definite ${_cmd})
endif()
execute_process(COMMAND ${_cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
if(err MATCHES "ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|Invalid (read|write)|definitely lost: [1-9]")
  message(FATAL_ERROR "memory or undefined-behaviour report (exit ${rc}):\n${err}")
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "failed (exit ${rc}):\n${err}")
endif()
if(DEFINED VALGRIND)
  string(REGEX MATCH "ERROR SUMMARY: [0-9]+ errors" _summary "${err}")
  string(REGEX MATCH "definitely lost: [0-9,]+ bytes" _lost "${err}")
  message("valgrind: ${_summary}; ${_lost}")
endif()
