# trainer-test-cuda-train-attention-emulated (label unit): tests/gpu/test-cuda-train-attention.cpp run on
# the CPU, with the trainer's GPU products and attention (trainer/src/train-blas.cpp, device-attention.cpp)
# and the kernels they enqueue compiled as C++ against the CUDA emulation (tests/gpu/emu), and cuBLAS
# replaced by the plain column-major GEMM of tests/engine/cuda-runner-emu/cublas-emu.cpp. It checks the
# host logic (row-major to column-major mapping, strides, head grouping, scratch layout) against the CPU
# ops in every build, CUDA toolkit or not. Suite names end in "Emulated".
# Non-obvious choice: as engine-test-cuda-runner-emulated, the link allows multiple definitions: in a
# CUDA build hearth_trainer / hearth_cuda also define TrainBlas, the attention and the cuBLAS loader, and
# this target's own objects, first on the command line, are the ones kept.
set(_kemu ${PROJECT_SOURCE_DIR}/tests/gpu/emu)
set(_remu ${PROJECT_SOURCE_DIR}/tests/engine/cuda-runner-emu)
hearth_gtest(trainer-test-cuda-train-attention-emulated
  SOURCES ${PROJECT_SOURCE_DIR}/tests/gpu/test-cuda-train-attention.cpp
          ${CMAKE_CURRENT_LIST_DIR}/cuda-train-attention-emu.cpp
          ${PROJECT_SOURCE_DIR}/trainer/src/train-blas.cpp
          ${PROJECT_SOURCE_DIR}/trainer/src/device-attention.cpp
          ${_remu}/cublas-emu.cpp
  LIBS hearth_trainer hearth_engine
  LABELS unit
  TIMEOUT 120)
target_include_directories(trainer-test-cuda-train-attention-emulated BEFORE PRIVATE ${_remu} ${_kemu})
target_include_directories(trainer-test-cuda-train-attention-emulated PRIVATE
  ${PROJECT_SOURCE_DIR}/trainer/cuda ${PROJECT_SOURCE_DIR}/trainer/src ${PROJECT_SOURCE_DIR}/engine/cuda)
target_compile_definitions(trainer-test-cuda-train-attention-emulated PRIVATE
  HEARTH_CUDA_EMULATION=1 HEARTH_HAVE_CUDA=1)
target_compile_options(trainer-test-cuda-train-attention-emulated PRIVATE -Wno-unknown-pragmas -ffp-contract=off)
target_link_options(trainer-test-cuda-train-attention-emulated PRIVATE -Wl,--allow-multiple-definition)
