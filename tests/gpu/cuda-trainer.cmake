# gpu-test-cuda-trainer (label gpu, issue 6): the trainer's CUDA path (trainer/src/device-trainer.h)
# against the CPU TrainModel: losses, every gradient, three AdamW steps, download/upload, errors.
# Skips itself where no usable CUDA device is found. Its emulated twin, which runs everywhere, is
# tests/trainer/cuda-trainer-emu.cmake.
if(HEARTH_HAVE_CUDA)
  hearth_gtest(gpu-test-cuda-trainer
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-cuda-trainer.cpp
    LIBS hearth_trainer hearth_engine CUDA::cudart_static
    LABELS gpu
    TIMEOUT 240)
  target_include_directories(gpu-test-cuda-trainer PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${PROJECT_SOURCE_DIR}/trainer/src)
endif()
