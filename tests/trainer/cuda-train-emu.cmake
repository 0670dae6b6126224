# trainer-test-cuda-train-kernels-emulated (label unit): the checks of tests/gpu/test-cuda-train-kernels.cpp
# run on the CPU, with the trainer's CUDA kernel sources (trainer/cuda/*.cu) compiled as C++ against the
# CUDA emulation of tests/gpu/emu (every GPU thread of a block an OS thread, barriers and shuffles real
# rendezvous). It checks the kernels' logic (indexing, reductions, strides, in-place passes) against
# the CPU ops on every machine, CUDA toolkit or not; the GPU itself is only checked by
# gpu-test-cuda-train-kernels where one is present. Suite names end in "Emulated".
# Non-obvious choice: -ffp-contract=off, so the host compiler, like nvcc --fmad=false, never fuses a
# multiply and an add that the source keeps apart.
set(_emu ${PROJECT_SOURCE_DIR}/tests/gpu/emu)
hearth_gtest(trainer-test-cuda-train-kernels-emulated
  SOURCES ${PROJECT_SOURCE_DIR}/tests/gpu/test-cuda-train-kernels.cpp
          ${CMAKE_CURRENT_LIST_DIR}/cuda-train-kernels-emu.cpp
  LIBS hearth_trainer hearth_engine
  LABELS unit
  TIMEOUT 300)
target_include_directories(trainer-test-cuda-train-kernels-emulated BEFORE PRIVATE ${_emu})
target_include_directories(trainer-test-cuda-train-kernels-emulated PRIVATE
  ${PROJECT_SOURCE_DIR}/trainer/cuda ${PROJECT_SOURCE_DIR}/trainer/src)
target_compile_definitions(trainer-test-cuda-train-kernels-emulated PRIVATE HEARTH_CUDA_EMULATION=1)
target_compile_options(trainer-test-cuda-train-kernels-emulated PRIVATE -Wno-unknown-pragmas -ffp-contract=off)
