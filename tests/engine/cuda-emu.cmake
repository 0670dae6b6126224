# engine-test-cuda-kernels-emulated (label unit): the checks of tests/gpu/test-cuda-kernels.cpp run on
# the CPU, with the CUDA kernel sources (engine/cuda/kernels-*.cu) compiled as C++ against tests/gpu/emu,
# an emulation of the CUDA runtime with every GPU thread of a block as an OS thread. It verifies the
# kernels' logic (indexing, warp reductions, tiling, splits) on every machine; the GPU itself is only
# checked by gpu-test-cuda-kernels where one is present. The suite names end in "Emulated".
# Non-obvious choice: it needs no CUDA toolkit; where hearth_cuda exists too, these objects' definitions
# of hearth::cuda::* come first at link time, so the archive's real kernels are never pulled in.
set(_emu ${PROJECT_SOURCE_DIR}/tests/gpu/emu)
hearth_gtest(engine-test-cuda-kernels-emulated
  SOURCES ${PROJECT_SOURCE_DIR}/tests/gpu/test-cuda-kernels.cpp ${_emu}/kernels-quant-emu.cpp
          ${_emu}/kernels-elementwise-emu.cpp ${_emu}/kernels-attention-emu.cpp
  LIBS hearth_engine
  LABELS unit
  TIMEOUT 300)
target_include_directories(engine-test-cuda-kernels-emulated BEFORE PRIVATE ${_emu})
target_include_directories(engine-test-cuda-kernels-emulated PRIVATE
  ${PROJECT_SOURCE_DIR}/engine/cuda ${PROJECT_SOURCE_DIR}/engine/cpu)
target_compile_definitions(engine-test-cuda-kernels-emulated PRIVATE HEARTH_CUDA_EMULATION=1)
target_compile_options(engine-test-cuda-kernels-emulated PRIVATE -Wno-unknown-pragmas)
