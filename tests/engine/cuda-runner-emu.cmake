# engine-test-cuda-runner-emulated (label unit): the CUDA runner (engine/src/cuda-runner.cpp) and the CUDA
# kernels it calls, compiled as C++ against the kernels' CPU emulation (tests/gpu/emu) and this area's
# runtime additions and plain cuBLAS GEMM (tests/engine/cuda-runner-emu/), compared with the CPU pass.
# Needs no CUDA toolkit, so it runs in every build.
# Non-obvious choice: this target's objects define hearth::CudaRunner, hearth::cuda::* and the cuBLAS
# loader's functions, as do hearth_engine's cuda-runner.o (a stub without CUDA) and hearth_cuda's real
# kernels and loader. Those archive members still get pulled in for the weak library symbols they also
# define (std::string's destructor), so the link allows multiple definitions: the linker keeps the first,
# and this target's own objects come before every archive on the command line.
set(_remu ${CMAKE_CURRENT_LIST_DIR}/cuda-runner-emu)
set(_kemu ${PROJECT_SOURCE_DIR}/tests/gpu/emu)
hearth_gtest(engine-test-cuda-runner-emulated
  SOURCES ${_remu}/runner-test.cpp ${_remu}/cublas-emu.cpp ${PROJECT_SOURCE_DIR}/engine/src/cuda-runner.cpp
          ${_kemu}/kernels-quant-emu.cpp ${_kemu}/kernels-elementwise-emu.cpp ${_kemu}/kernels-attention-emu.cpp
  LIBS hearth_engine
  LABELS unit
  TIMEOUT 300)
target_include_directories(engine-test-cuda-runner-emulated BEFORE PRIVATE ${_remu} ${_kemu})
target_include_directories(engine-test-cuda-runner-emulated PRIVATE
  ${PROJECT_SOURCE_DIR}/engine/src ${PROJECT_SOURCE_DIR}/engine/cuda ${PROJECT_SOURCE_DIR}/engine/cpu)
target_compile_definitions(engine-test-cuda-runner-emulated PRIVATE HEARTH_CUDA_EMULATION=1 HEARTH_HAVE_CUDA=1)
target_compile_options(engine-test-cuda-runner-emulated PRIVATE -Wno-unknown-pragmas)
target_link_options(engine-test-cuda-runner-emulated PRIVATE -Wl,--allow-multiple-definition)
