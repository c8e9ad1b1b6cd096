# Optional CUDA + NCCL detection. Sets PEDAGOGY_HAVE_CUDA (ON when both the CUDA runtime and
# NCCL are found) and the imported targets CUDA::cudart and NCCL::nccl. Without them the project
# still builds; the code that uses NCCL is compiled only when PEDAGOGY_HAVE_CUDA is ON, which is
# the case on the CPU build machines too (they ship /usr/local/cuda with nccl.h), so CI compiles
# and links it.
#
# NCCL_ROOT may point at a pip `nvidia-nccl` folder: link the same libnccl.so.2 that libtorch_cuda
# loads, since a process can hold only one.
set(PEDAGOGY_HAVE_CUDA OFF)
if(NOT PEDAGOGY_WITH_CUDA)
  return()
endif()

find_package(CUDAToolkit QUIET)
if(NOT CUDAToolkit_FOUND)
  message(STATUS "CUDA toolkit not found: building without CUDA/NCCL")
  return()
endif()

find_path(NCCL_INCLUDE_DIR nccl.h
  HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
  HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib
  PATH_SUFFIXES lib lib64)
mark_as_advanced(NCCL_INCLUDE_DIR NCCL_LIBRARY)
if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY)
  message(STATUS "CUDA ${CUDAToolkit_VERSION} found but NCCL is missing (hint: set NCCL_ROOT): "
                 "building without CUDA/NCCL")
  return()
endif()

if(NOT TARGET NCCL::nccl)
  add_library(NCCL::nccl UNKNOWN IMPORTED)
  set_target_properties(NCCL::nccl PROPERTIES IMPORTED_LOCATION "${NCCL_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}")
endif()
set(PEDAGOGY_HAVE_CUDA ON)
message(STATUS "CUDA ${CUDAToolkit_VERSION} with NCCL ${NCCL_LIBRARY}")
