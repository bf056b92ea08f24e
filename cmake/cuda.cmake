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
# Default: real code for every current NVIDIA generation, plus PTX that the
# driver compiles on first use for GPUs released after the toolkit:
#   75 Turing (T4, RTX 20), 80 Ampere (A100, A30), 86 Ampere (RTX 30, A10, A40),
#   89 Ada (L4, L40, RTX 40), 90 Hopper (H100, H200), 100 Blackwell (B200, GB200),
#   120 Blackwell (RTX 50, RTX PRO 6000); PTX: compute_100 (compute_120 would be
#   rewritten by ggml to the architecture-specific 120a, which is not forward
#   compatible).
# Narrow it for a fast local build, e.g. -C cmake.define.CMAKE_CUDA_ARCHITECTURES=90-real
# (one architecture compiles in about 45 minutes on 2 cores; each one more adds
# about as much). `native` (the GPUs of the building machine) only when asked.
set(LLAMABATCH_CUDA_ARCHITECTURES_DEFAULT 75-real 80-real 86-real 89-real 90-real)
if(CUDAToolkit_VERSION VERSION_GREATER_EQUAL "12.8")
  list(APPEND LLAMABATCH_CUDA_ARCHITECTURES_DEFAULT 100-real 120-real 100-virtual)
else()
  list(APPEND LLAMABATCH_CUDA_ARCHITECTURES_DEFAULT 90-virtual)
endif()
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
  set(CMAKE_CUDA_ARCHITECTURES "${LLAMABATCH_CUDA_ARCHITECTURES_DEFAULT}" CACHE STRING
      "GPU architectures to compile for (default: Turing..Blackwell + PTX)" FORCE)
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
