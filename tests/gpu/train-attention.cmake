# gpu-test-cuda-train-attention (label gpu, issue 6): the trainer's GPU matrix products (TrainBlas over
# cuBLAS) and attention forward/backward (trainer/src/device-attention.h) against CPU references; skips
# where no CUDA device is usable. Its CPU-emulated twin is tests/trainer/cuda-train-attention-emu.cmake.
# Non-obvious choice: it links no cuBLAS: TrainBlas loads it at run time like the engine (dlopen).
if(HEARTH_HAVE_CUDA)
  hearth_gtest(gpu-test-cuda-train-attention
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-cuda-train-attention.cpp
    LIBS hearth_trainer hearth_engine CUDA::cudart_static
    LABELS gpu
    TIMEOUT 240)
  target_include_directories(gpu-test-cuda-train-attention PRIVATE
    ${PROJECT_SOURCE_DIR}/trainer/src ${PROJECT_SOURCE_DIR}/trainer/cuda)
endif()
