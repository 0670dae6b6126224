# trainer-test-cuda-trainer-emulated (label unit, issue 6): tests/gpu/test-cuda-trainer.cpp run on the CPU.
# The GPU training path (trainer/src/device-trainer.cpp, train-blas.cpp, device-attention.cpp), the
# trainer's kernels (trainer/cuda/*.cu) and the engine kernels it calls are compiled as C++ against the
# CPU emulation of the CUDA runtime (tests/gpu/emu, with the runner's additions and plain cuBLAS GEMMs of
# tests/engine/cuda-runner-emu), so the whole device step is checked against TrainModel on every
# machine, CUDA toolkit or not. Shapes are small (2 layers, n_embd 32, 2 x 8 tokens): every emulated GPU
# thread is an OS thread.
# Non-obvious choice: as engine-test-cuda-runner-emulated, the link allows multiple definitions: these
# objects define what hearth_trainer's device-trainer.o (a stub without CUDA, the real one with it) and
# the CUDA libraries also define, and they come first on the command line, so the linker keeps them.
set(_temu ${CMAKE_CURRENT_LIST_DIR}/cuda-trainer-emu)
set(_remu ${PROJECT_SOURCE_DIR}/tests/engine/cuda-runner-emu)
set(_kemu ${PROJECT_SOURCE_DIR}/tests/gpu/emu)
hearth_gtest(trainer-test-cuda-trainer-emulated
  SOURCES ${PROJECT_SOURCE_DIR}/tests/gpu/test-cuda-trainer.cpp
          ${PROJECT_SOURCE_DIR}/trainer/src/device-trainer.cpp
          ${PROJECT_SOURCE_DIR}/trainer/src/train-blas.cpp
          ${PROJECT_SOURCE_DIR}/trainer/src/device-attention.cpp
          ${_temu}/train-kernels-optim-emu.cpp ${_temu}/train-kernels-loss-emu.cpp
          ${_temu}/train-kernels-backward-emu.cpp ${_temu}/train-kernels-misc-emu.cpp
          ${_temu}/train-kernels-attention-emu.cpp
          ${_kemu}/kernels-quant-emu.cpp ${_kemu}/kernels-elementwise-emu.cpp
          ${_remu}/cublas-emu.cpp
  LIBS hearth_trainer hearth_engine
  LABELS unit
  TIMEOUT 300)
target_include_directories(trainer-test-cuda-trainer-emulated BEFORE PRIVATE ${_temu} ${_remu} ${_kemu})
target_include_directories(trainer-test-cuda-trainer-emulated PRIVATE
  ${PROJECT_SOURCE_DIR}/trainer/src ${PROJECT_SOURCE_DIR}/trainer/cuda ${PROJECT_SOURCE_DIR}/engine/cuda
  ${PROJECT_SOURCE_DIR}/tests/gpu)
target_compile_definitions(trainer-test-cuda-trainer-emulated PRIVATE HEARTH_CUDA_EMULATION=1 HEARTH_HAVE_CUDA=1)
target_compile_options(trainer-test-cuda-trainer-emulated PRIVATE -Wno-unknown-pragmas -ffp-contract=off)
target_link_options(trainer-test-cuda-trainer-emulated PRIVATE -Wl,--allow-multiple-definition)
