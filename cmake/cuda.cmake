# The CUDA variant: ggml's CUDA backend, configured so that it builds on any
# Linux machine with nvcc 12.x or 13.x, GPU or not, and imports on machines
# without a GPU or an NVIDIA driver. Included by the top-level CMakeLists.txt
# before llama.cpp is added, when LLAMABATCH_CUDA (or GGML_CUDA) is ON.
#
# What ggml's own CMake would do instead, and why each is changed here:
# - with GGML_NATIVE (our CPU default) it builds for the `native` GPU, which
#   nvcc rejects wherever no GPU is visible (build machines, containers, CI);
# - it links CUDA::cublas, which a bare nvcc install does not have;
# - it links libcuda.so.1 (the driver) for its virtual-memory pool, so the
#   module would not even import on a machine without the driver;
# - it looks for NCCL, which a single-process library does not need.

find_package(CUDAToolkit)
if(NOT CUDAToolkit_FOUND)
  message(FATAL_ERROR "LLAMABATCH_CUDA=ON needs the CUDA toolkit (nvcc 12.x or 13.x): put its bin/ on PATH "
                      "or set CUDAToolkit_ROOT (e.g. -C cmake.define.CUDAToolkit_ROOT=/usr/local/cuda)")
endif()
if(CUDAToolkit_VERSION VERSION_LESS "12.0")
  message(FATAL_ERROR "CUDA ${CUDAToolkit_VERSION} is too old: llamabatch's CUDA build needs 12.x or 13.x")
endif()
if(NOT CMAKE_CUDA_COMPILER)
  # enable_language(CUDA) inside ggml finds nvcc through PATH or CUDACXX; the
  # toolkit found above may only be known through CUDAToolkit_ROOT.
  set(CMAKE_CUDA_COMPILER "${CUDAToolkit_NVCC_EXECUTABLE}" CACHE FILEPATH "")
endif()

# --- GPU architectures --------------------------------------------------------
# Every architecture adds about as much build time as the first (43-72 minutes
# on 2 cores), so the list is chosen as follows, the first that applies winning:
# 1. CMAKE_CUDA_ARCHITECTURES when you set it (-D, -C cmake.define..., an edit
#    of the cache), used as given; `native` too, though it fails without a GPU.
# 2. The CUDAARCHS environment variable (CMake's own), when set.
# 3. The GPUs of this machine, as nvidia-smi reports their compute capabilities
#    (one line per GPU: 9.0 -> 90-real), deduplicated and sorted. Real code only,
#    no PTX, as CMake's own `native` does: code for sm_XY runs on that GPU (and on
#    later minor versions of the same major, e.g. 86 on an 8.9), and PTX would
#    only serve some other GPU, at a larger module and minutes of driver JIT on
#    its first use there; a module for other machines is what 4 is for.
# 4. Otherwise the portable list below: when there is no nvidia-smi, it fails,
#    finds no GPU, prints anything but compute capabilities, or one of them is
#    not an architecture this nvcc compiles for (the list's PTX may still run
#    there); and always with LLAMABATCH_CUDA_ARCHS_AUTO=OFF (a CMake define, or
#    the environment variable when no define is given), for wheels for others.
# One message(STATUS "llamabatch: CUDA architectures ...") line says which and why.
# The portable list: real code for every current NVIDIA generation, plus PTX that
# the driver compiles on first use for GPUs released after the toolkit:
#   75 Turing (T4, RTX 20), 80 Ampere (A100, A30), 86 Ampere (RTX 30, A10, A40),
#   89 Ada (L4, L40, RTX 40), 90 Hopper (H100, H200), 100 Blackwell (B200, GB200),
#   120 Blackwell (RTX 50, RTX PRO 6000); PTX: compute_100 (compute_120 would be
#   rewritten by ggml to the architecture-specific 120a, which is not forward
#   compatible; ggml rewrites a detected 120-real to 120a-real the same way).
set(LLAMABATCH_CUDA_ARCHITECTURES_DEFAULT 75-real 80-real 86-real 89-real 90-real)
if(CUDAToolkit_VERSION VERSION_GREATER_EQUAL "12.8")
  list(APPEND LLAMABATCH_CUDA_ARCHITECTURES_DEFAULT 100-real 120-real 100-virtual)
else()
  list(APPEND LLAMABATCH_CUDA_ARCHITECTURES_DEFAULT 90-virtual)
endif()

# Decided here, before ggml is added: ggml sets CMAKE_CUDA_ARCHITECTURES itself
# when it is undefined (`native` under GGML_NATIVE). "Set by the user" is told
# from "set by us" through the cache entry: ours carries this help string and
# the value recorded in LLAMABATCH_CUDA_ARCHITECTURES_CHOSEN, and is chosen
# afresh at every configure (the GPUs or the environment may have changed); a
# -D or -C on the command line replaces the help string, a cache editor the
# value. An empty value (-DCMAKE_CUDA_ARCHITECTURES=) asks for a fresh choice.
set(_llamabatch_archs_help "GPU architectures to compile for (unset or empty: chosen by llamabatch, see cmake/cuda.cmake)")
set(_llamabatch_archs_user FALSE)
if(DEFINED CACHE{CMAKE_CUDA_ARCHITECTURES})
  get_property(_llamabatch_help CACHE CMAKE_CUDA_ARCHITECTURES PROPERTY HELPSTRING)
  if(NOT "$CACHE{CMAKE_CUDA_ARCHITECTURES}" STREQUAL ""
     AND NOT (_llamabatch_help STREQUAL _llamabatch_archs_help
              AND "$CACHE{CMAKE_CUDA_ARCHITECTURES}" STREQUAL "${LLAMABATCH_CUDA_ARCHITECTURES_CHOSEN}"))
    set(_llamabatch_archs_user TRUE)
  endif()
elseif(NOT "${CMAKE_CUDA_ARCHITECTURES}" STREQUAL "")
  set(_llamabatch_archs_user TRUE)  # a plain variable: from a toolchain file, say
endif()

if(_llamabatch_archs_user)
  message(STATUS "llamabatch: CUDA architectures ${CMAKE_CUDA_ARCHITECTURES}, as set by CMAKE_CUDA_ARCHITECTURES "
                 "(no GPU detection)")
else()
  if(DEFINED LLAMABATCH_CUDA_ARCHS_AUTO)
    set(_llamabatch_auto "${LLAMABATCH_CUDA_ARCHS_AUTO}")
  elseif(DEFINED ENV{LLAMABATCH_CUDA_ARCHS_AUTO})
    set(_llamabatch_auto "$ENV{LLAMABATCH_CUDA_ARCHS_AUTO}")
  else()
    set(_llamabatch_auto ON)
  endif()
  set(_llamabatch_archs "${LLAMABATCH_CUDA_ARCHITECTURES_DEFAULT}")
  set(_llamabatch_why "")
  if(NOT "$ENV{CUDAARCHS}" STREQUAL "")
    set(_llamabatch_archs "$ENV{CUDAARCHS}")
    set(_llamabatch_why "from the CUDAARCHS environment variable")
  elseif(NOT _llamabatch_auto)
    set(_llamabatch_why "the portable list, as LLAMABATCH_CUDA_ARCHS_AUTO is ${_llamabatch_auto}")
  else()
    execute_process(
      COMMAND nvidia-smi --query-gpu=compute_cap --format=csv,noheader
      OUTPUT_VARIABLE _llamabatch_smi_out
      ERROR_VARIABLE _llamabatch_smi_err
      RESULT_VARIABLE _llamabatch_smi_result
      TIMEOUT 30)
    string(STRIP "${_llamabatch_smi_out}" _llamabatch_smi_out)
    string(REGEX MATCH "^[^\r\n]*" _llamabatch_smi_first "${_llamabatch_smi_out}${_llamabatch_smi_err}")
    string(STRIP "${_llamabatch_smi_first}" _llamabatch_smi_first)
    if(_llamabatch_smi_result MATCHES "^[0-9]+$")
      set(_llamabatch_smi_result "exit code ${_llamabatch_smi_result}")
    endif()
    if(NOT _llamabatch_smi_first STREQUAL "")
      string(APPEND _llamabatch_smi_result ": ${_llamabatch_smi_first}")
    endif()
    if(_llamabatch_smi_result MATCHES "^[Nn]o such file")
      set(_llamabatch_why "the portable list, as there is no nvidia-smi on PATH to find this machine's GPUs")
    elseif(NOT _llamabatch_smi_result MATCHES "^exit code 0(:|$)")
      set(_llamabatch_why "the portable list, as nvidia-smi failed (${_llamabatch_smi_result})")
    elseif(_llamabatch_smi_out STREQUAL "")
      set(_llamabatch_why "the portable list, as nvidia-smi found no GPU")
    elseif(NOT _llamabatch_smi_out MATCHES "^[0-9]+\\.[0-9]([ \t\r]*\n[ \t]*[0-9]+\\.[0-9])*$")
      string(REPLACE "\r" "" _llamabatch_smi_out "${_llamabatch_smi_out}")
      string(REPLACE "\n" "\\n" _llamabatch_smi_out "${_llamabatch_smi_out}")
      string(SUBSTRING "${_llamabatch_smi_out}" 0 200 _llamabatch_smi_out)
      set(_llamabatch_why "the portable list, as nvidia-smi printed \"${_llamabatch_smi_out}\", not one compute capability per line")
    else()
      string(REGEX MATCHALL "[0-9]+\\.[0-9]" _llamabatch_caps "${_llamabatch_smi_out}")
      execute_process(COMMAND "${CUDAToolkit_NVCC_EXECUTABLE}" --list-gpu-code
                      OUTPUT_VARIABLE _llamabatch_nvcc_codes RESULT_VARIABLE _llamabatch_nvcc_result
                      ERROR_QUIET TIMEOUT 30)
      set(_llamabatch_found "")
      set(_llamabatch_unsupported "")
      foreach(_llamabatch_cap IN LISTS _llamabatch_caps)
        string(REPLACE "." "" _llamabatch_sm "${_llamabatch_cap}")
        list(APPEND _llamabatch_found "${_llamabatch_sm}-real")
        if(_llamabatch_nvcc_result STREQUAL "0" AND NOT _llamabatch_nvcc_codes MATCHES "(^|[\r\n])sm_${_llamabatch_sm}([\r\n]|$)")
          list(APPEND _llamabatch_unsupported "sm_${_llamabatch_sm}")
        endif()
      endforeach()
      list(JOIN _llamabatch_caps ", " _llamabatch_caps_text)
      if(_llamabatch_unsupported)
        list(REMOVE_DUPLICATES _llamabatch_unsupported)
        list(JOIN _llamabatch_unsupported ", " _llamabatch_unsupported)
        string(CONCAT _llamabatch_why "the portable list, as nvcc ${CUDAToolkit_VERSION} cannot compile for "
               "${_llamabatch_unsupported}, found among this machine's GPUs (compute capability ${_llamabatch_caps_text})")
      else()
        list(REMOVE_DUPLICATES _llamabatch_found)
        list(SORT _llamabatch_found COMPARE NATURAL)
        set(_llamabatch_archs "${_llamabatch_found}")
        string(CONCAT _llamabatch_why "for this machine's GPUs (compute capability ${_llamabatch_caps_text}, "
               "from nvidia-smi; LLAMABATCH_CUDA_ARCHS_AUTO=OFF builds the portable list)")
      endif()
    endif()
  endif()
  unset(CMAKE_CUDA_ARCHITECTURES)  # a plain empty variable would hide the cache entry
  set(CMAKE_CUDA_ARCHITECTURES "${_llamabatch_archs}" CACHE STRING "${_llamabatch_archs_help}" FORCE)
  set(LLAMABATCH_CUDA_ARCHITECTURES_CHOSEN "${_llamabatch_archs}" CACHE INTERNAL "")
  message(STATUS "llamabatch: CUDA architectures ${_llamabatch_archs}, ${_llamabatch_why}")
endif()

# --- ggml's CUDA options --------------------------------------------------------
set(GGML_CUDA ON CACHE BOOL "" FORCE)
# No libcuda.so link: cudart and cuBLAS open the driver at run time, so the
# module imports (and runs on the CPU) where there is no driver.
set(GGML_CUDA_NO_VMM ON CACHE BOOL "" FORCE)
set(GGML_CUDA_NCCL OFF CACHE BOOL "" FORCE)
# Flash-attention kernels for the KV-cache types llamabatch uses (f16 only: it
# never quantizes the cache). ggml's default also builds q4_0/q8_0/bf16 ones.
if(NOT DEFINED CACHE{GGML_CUDA_FA_QUANTS})
  set(GGML_CUDA_FA_QUANTS "f16-f16" CACHE STRING "FlashAttention K-V type pairs to compile")
endif()

# --- cuBLAS ---------------------------------------------------------------------
# From the toolkit when it has it; else from NVIDIA's PyPI wheel (found in this
# Python environment or fetched once per machine into llamabatch's cache).
string(REGEX MATCH "^[0-9]+" LLAMABATCH_CUDA_MAJOR "${CUDAToolkit_VERSION}")
if(NOT TARGET CUDA::cublas OR NOT TARGET CUDA::cublasLt)
  execute_process(
    COMMAND "${Python_EXECUTABLE}" "${CMAKE_CURRENT_LIST_DIR}/nvidia_wheels.py" --cuda-version "${CUDAToolkit_VERSION}"
    OUTPUT_VARIABLE _cublas_cmake
    RESULT_VARIABLE _cublas_result)
  if(NOT _cublas_result EQUAL 0)
    message(FATAL_ERROR "The CUDA toolkit at ${CUDAToolkit_LIBRARY_DIR} has no cuBLAS, and none could be found or "
                        "fetched from NVIDIA's PyPI wheel (see the message above)")
  endif()
  cmake_language(EVAL CODE "${_cublas_cmake}")
  message(STATUS "llamabatch: cuBLAS from ${LLAMABATCH_CUBLAS_FROM}")
  # FindCUDAToolkit honours these cache entries: ggml's own find_package call
  # then creates CUDA::cublas and CUDA::cublasLt over the wheel's files.
  set(CUDA_cublas_LIBRARY "${LLAMABATCH_CUBLAS_LIBRARY}" CACHE FILEPATH "" FORCE)
  set(CUDA_cublasLt_LIBRARY "${LLAMABATCH_CUBLASLT_LIBRARY}" CACHE FILEPATH "" FORCE)
  find_package(CUDAToolkit REQUIRED)
  if(NOT TARGET CUDA::cublas)
    message(FATAL_ERROR "cuBLAS at ${LLAMABATCH_CUBLAS_LIBRARY} was not accepted by FindCUDAToolkit")
  endif()
  set_property(TARGET CUDA::cublas APPEND PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${LLAMABATCH_CUBLAS_INCLUDE_DIR}")
else()
  message(STATUS "llamabatch: cuBLAS from the CUDA toolkit (${CUDAToolkit_LIBRARY_DIR})")
endif()

# --- where the module finds cudart and cuBLAS at run time -----------------------
# NVIDIA's wheels, installed beside llamabatch in site-packages (the `cuda`
# extra), then the toolkit this was built with. llamabatch/__init__.py preloads
# them from the wheels where these paths cannot reach (an unusual layout).
if(LLAMABATCH_CUDA_MAJOR VERSION_GREATER_EQUAL 13)
  set(LLAMABATCH_CUDA_RPATH "$ORIGIN/../nvidia/cu${LLAMABATCH_CUDA_MAJOR}/lib")
else()
  set(LLAMABATCH_CUDA_RPATH "$ORIGIN/../nvidia/cublas/lib" "$ORIGIN/../nvidia/cuda_runtime/lib")
endif()
list(APPEND LLAMABATCH_CUDA_RPATH "${CUDAToolkit_LIBRARY_DIR}")
