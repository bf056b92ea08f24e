# The portable build (LLAMABATCH_PORTABLE=ON): the extension module is built
# once per x86-64 CPU level, and llamabatch/_loader.py imports the best one the
# running CPU supports (README: "Which wheel runs where").
#
# Each variant is a whole, static `_core` module, as in the native build: one
# file with llama.cpp, ggml and our core linked in and none of their symbols
# exported, so it cannot clash with another llama.cpp in the process. Only
# ggml's CPU kernels differ between the variants, so llama.cpp and our core are
# compiled once (by the main build) and ggml alone is built again per variant
# (ggml/ is a CMake project of its own). benchmarks/README.md ("Portable
# wheels") says why this, and not ggml's dynamically loaded backends.
#
# Included by the top-level CMakeLists.txt before llama.cpp is added.

if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  message(FATAL_ERROR "LLAMABATCH_PORTABLE builds x86-64 CPU variants; on ${CMAKE_SYSTEM_PROCESSOR}, "
                      "build without it (the native build)")
endif()
if(LLAMABATCH_CUDA OR GGML_CUDA)
  message(FATAL_ERROR "LLAMABATCH_PORTABLE and the CUDA build cannot be combined yet: build one or the other")
endif()

# From the baseline to the best. For each: ggml's options, and the
# /proc/cpuinfo flags a CPU needs for it (what those options compile for).
set(LLAMABATCH_CPU_VARIANTS x86-64-v2 avx2 avx512 avx512-vnni avx512-bf16)
set(_lb_ggml_x86-64-v2 SSE42)
set(_lb_needs_x86-64-v2 ssse3 sse4_1 sse4_2 popcnt)
set(_lb_ggml_avx2 ${_lb_ggml_x86-64-v2} AVX F16C FMA AVX2 BMI2)
set(_lb_needs_avx2 ${_lb_needs_x86-64-v2} avx f16c fma avx2 bmi2)
set(_lb_ggml_avx512 ${_lb_ggml_avx2} AVX512)
set(_lb_needs_avx512 ${_lb_needs_avx2} avx512f avx512cd avx512vl avx512dq avx512bw)
# Cascade Lake: VNNI without VBMI.
set(_lb_ggml_avx512-vnni ${_lb_ggml_avx512} AVX512_VNNI)
set(_lb_needs_avx512-vnni ${_lb_needs_avx512} avx512_vnni)
# Zen 4 and 5, Sapphire Rapids and later (AMX stays off, as in the native build).
set(_lb_ggml_avx512-bf16 ${_lb_ggml_avx512-vnni} AVX512_VBMI AVX512_BF16)
set(_lb_needs_avx512-bf16 ${_lb_needs_avx512-vnni} avx512vbmi avx512_bf16)

# A subset, for a quicker build: -C cmake.define.LLAMABATCH_CPU_VARIANT_LIST="x86-64-v2;avx2"
set(LLAMABATCH_CPU_VARIANT_LIST "${LLAMABATCH_CPU_VARIANTS}" CACHE STRING
    "The CPU variants a portable build makes (the first is the baseline, built with llama.cpp)")
foreach(_variant IN LISTS LLAMABATCH_CPU_VARIANT_LIST)
  if(NOT _variant IN_LIST LLAMABATCH_CPU_VARIANTS)
    message(FATAL_ERROR "Unknown CPU variant '${_variant}': choose from ${LLAMABATCH_CPU_VARIANTS}")
  endif()
endforeach()
list(GET LLAMABATCH_CPU_VARIANT_LIST 0 LLAMABATCH_CPU_BASELINE)

# The x86 options of ggml's CPU backend; a variant turns on its own and no other.
set(_lb_ggml_x86_options NATIVE SSE42 AVX AVX2 BMI2 AVX_VNNI FMA F16C
                         AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16 AMX_TILE AMX_INT8 AMX_BF16)

# The main build's ggml is the baseline variant.
foreach(_option IN LISTS _lb_ggml_x86_options)
  set(GGML_${_option} OFF CACHE BOOL "" FORCE)
endforeach()
foreach(_option IN LISTS _lb_ggml_${LLAMABATCH_CPU_BASELINE})
  set(GGML_${_option} ON CACHE BOOL "" FORCE)
endforeach()

# _build.py's CPU_VARIANTS: ((name, (flags, ...)), ...), baseline first.
set(LLAMABATCH_BUILD_CPU_VARIANTS "(")
foreach(_variant IN LISTS LLAMABATCH_CPU_VARIANT_LIST)
  list(JOIN _lb_needs_${_variant} "\", \"" _needs)
  string(APPEND LLAMABATCH_BUILD_CPU_VARIANTS "(\"${_variant}\", (\"${_needs}\",)), ")
endforeach()
string(APPEND LLAMABATCH_BUILD_CPU_VARIANTS ")")

include(ExternalProject)
find_package(Threads REQUIRED)  # the variant modules link ggml's libraries by file

# One more `_core`, named `_core` too, in llamabatch/_variants/<variant>/: the
# main build's core and llama.cpp libraries with this variant's ggml.
function(llamabatch_add_cpu_variant variant)
  set(_ggml_args)
  foreach(_option IN LISTS _lb_ggml_x86_options)
    if(_option IN_LIST _lb_ggml_${variant})
      list(APPEND _ggml_args -DGGML_${_option}=ON)
    else()
      list(APPEND _ggml_args -DGGML_${_option}=OFF)
    endif()
  endforeach()
  set(_dir "${CMAKE_CURRENT_BINARY_DIR}/ggml-${variant}")
  set(_libs "${_dir}/ggml/src/${CMAKE_STATIC_LIBRARY_PREFIX}ggml${CMAKE_STATIC_LIBRARY_SUFFIX}"
            "${_dir}/ggml/src/${CMAKE_STATIC_LIBRARY_PREFIX}ggml-cpu${CMAKE_STATIC_LIBRARY_SUFFIX}"
            "${_dir}/ggml/src/${CMAKE_STATIC_LIBRARY_PREFIX}ggml-base${CMAKE_STATIC_LIBRARY_SUFFIX}")
  # The main build's ggml options, so that this ggml differs from it only in
  # its CPU kernels.
  ExternalProject_Add(ggml-${variant}
    SOURCE_DIR "${CMAKE_CURRENT_SOURCE_DIR}/cmake/ggml_variant"
    BINARY_DIR "${_dir}"
    CMAKE_ARGS
      -DLLAMABATCH_LLAMA_CPP_DIR=${LLAMABATCH_LLAMA_CPP_DIR}
      -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}
      -DCMAKE_C_COMPILER=${CMAKE_C_COMPILER}
      -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
      -DCMAKE_POSITION_INDEPENDENT_CODE=ON
      -DBUILD_SHARED_LIBS=OFF
      -DGGML_BUILD_TESTS=OFF
      -DGGML_BUILD_EXAMPLES=OFF
      -DGGML_LLAMAFILE=${GGML_LLAMAFILE}
      -DGGML_OPENMP=${GGML_OPENMP}
      -DGGML_CPU_REPACK=${GGML_CPU_REPACK}
      -DGGML_CCACHE=${GGML_CCACHE}
      ${_ggml_args}
    INSTALL_COMMAND ""
    BUILD_BYPRODUCTS ${_libs}
    # One ggml build at a time, each with all the cores.
    USES_TERMINAL_CONFIGURE TRUE
    USES_TERMINAL_BUILD TRUE)

  set(_target "_core_${variant}")
  llamabatch_add_module(${_target} csrc/bindings.cpp)
  set_target_properties(${_target} PROPERTIES
    OUTPUT_NAME _core
    LIBRARY_OUTPUT_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}/variants/${variant}")
  # Our core and llama.cpp's library by file, not by target: the targets would
  # bring the main build's ggml along.
  target_include_directories(${_target} PRIVATE
    "$<TARGET_PROPERTY:llamabatch_core,INTERFACE_INCLUDE_DIRECTORIES>"
    "$<TARGET_PROPERTY:llama,INTERFACE_INCLUDE_DIRECTORIES>"
    "$<TARGET_PROPERTY:ggml,INTERFACE_INCLUDE_DIRECTORIES>")
  target_link_libraries(${_target} PRIVATE
    "$<TARGET_FILE:llamabatch_core>" "$<TARGET_FILE:llama>" ${_libs}
    Threads::Threads ${CMAKE_DL_LIBS} m)
  add_dependencies(${_target} llamabatch_core llama ggml-${variant})
  install(TARGETS ${_target} LIBRARY DESTINATION llamabatch/_variants/${variant})
endfunction()
