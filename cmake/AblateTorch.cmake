# LibTorch as target ablate::torch.
#
# Two ways in:
#  * CUDA (GPU machines, or any LibTorch a user points at with Torch_DIR / CMAKE_PREFIX_PATH, e.g.
#    an official LibTorch zip): the stock find_package(Torch), which brings CUDA, cuDNN and NCCL.
#  * CPU (default where no GPU driver is present): the torch==2.11.0 PyPI wheel that ci/setup.sh
#    unpacks into .deps/py. Its TorchConfig.cmake insists on a CUDA toolkit (the wheel is a CUDA
#    build), so we import its CPU libraries directly: libtorch_cpu.so + libc10.so hold the whole
#    CPU backend; libtorch.so would pull in libtorch_cuda.so and its multi-GB dependencies.
# ABLATE_CUDA = AUTO (default) | ON | OFF.
set(ABLATE_CUDA AUTO CACHE STRING "Build against CUDA LibTorch (AUTO: when nvidia-smi sees a GPU)")
set(ABLATE_TORCH_WHEEL ${CMAKE_SOURCE_DIR}/.deps/py CACHE PATH "Unpacked torch wheel (ci/setup.sh)")

if(ABLATE_CUDA STREQUAL "AUTO")
  set(ABLATE_CUDA OFF)
  if(Torch_DIR)
    set(ABLATE_CUDA ON)
  else()
    find_program(NVIDIA_SMI nvidia-smi)
    if(NVIDIA_SMI)
      execute_process(COMMAND ${NVIDIA_SMI} -L RESULT_VARIABLE _smi_rc OUTPUT_VARIABLE _smi_out
                      ERROR_QUIET)
      if(_smi_rc EQUAL 0 AND _smi_out MATCHES "GPU")
        set(ABLATE_CUDA ON)
      endif()
    endif()
  endif()
endif()

add_library(ablate_torch INTERFACE)
add_library(ablate::torch ALIAS ablate_torch)
# LibTorch's include folder ships fmt 12 headers that shadow the system's fmt 9 for every target
# that includes LibTorch; header-only mode makes those targets self-contained instead of linking
# against a libfmt of another version.
target_compile_definitions(ablate_torch INTERFACE FMT_HEADER_ONLY=1)

if(ABLATE_CUDA)
  if(NOT Torch_DIR)
    execute_process(COMMAND python3 -c "import torch;print(torch.utils.cmake_prefix_path)"
                    OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(_torch_prefix)
      list(APPEND CMAKE_PREFIX_PATH ${_torch_prefix})
    endif()
  endif()
  find_package(Torch REQUIRED)
  # libstdc++ first: libtorch.so exports its own copies of some std::filesystem symbols, and
  # resolving std::filesystem::remove_all to those crashes (seen on the H100 box).
  target_link_libraries(ablate_torch INTERFACE -Wl,--no-as-needed stdc++ -Wl,--as-needed
                        ${TORCH_LIBRARIES})
  target_compile_options(ablate_torch INTERFACE ${TORCH_CXX_FLAGS})
  target_compile_definitions(ablate_torch INTERFACE ABLATE_WITH_CUDA=1)
  # NCCL for multi-GPU runs: header in /usr/include or the CUDA toolkit; the library from the
  # system or the nvidia-nccl wheel that ships with torch.
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS /usr/include /usr/local/cuda/include
            ${TORCH_INSTALL_PREFIX}/../nvidia/nccl/include ${TORCH_INSTALL_PREFIX}/../nvidia/cu13/include)
  if(NCCL_INCLUDE_DIR)
    target_include_directories(ablate_torch INTERFACE ${NCCL_INCLUDE_DIR})
    target_compile_definitions(ablate_torch INTERFACE ABLATE_HAVE_NCCL_H=1)
  endif()
  message(STATUS "ablate: LibTorch (CUDA) from ${Torch_DIR}")
else()
  set(_t ${ABLATE_TORCH_WHEEL}/torch)
  if(NOT EXISTS ${_t}/lib/libtorch_cpu.so)
    message(FATAL_ERROR "LibTorch not found in ${_t}: run ci/setup.sh, or pass -DTorch_DIR=... "
                        "(official LibTorch zip) / -DABLATE_CUDA=ON")
  endif()
  file(GLOB _cu_libdirs ${ABLATE_TORCH_WHEEL}/nvidia/*/lib)
  target_include_directories(ablate_torch SYSTEM INTERFACE
    ${_t}/include ${_t}/include/torch/csrc/api/include)
  target_link_libraries(ablate_torch INTERFACE
    -Wl,--no-as-needed ${_t}/lib/libtorch_cpu.so ${_t}/lib/libc10.so -Wl,--as-needed
    Threads::Threads)
  target_link_options(ablate_torch INTERFACE "-Wl,-rpath,${_t}/lib"
    "-Wl,-rpath-link,${_t}/lib")
  foreach(_d ${_cu_libdirs})
    target_link_options(ablate_torch INTERFACE "-Wl,-rpath,${_d}" "-Wl,-rpath-link,${_d}")
  endforeach()
  target_compile_definitions(ablate_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=1 USE_C10D_GLOO=1
                             USE_DISTRIBUTED=1)
  message(STATUS "ablate: LibTorch (CPU) from ${_t}")
endif()
