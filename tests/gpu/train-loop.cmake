# gpu-cuda-train-loop (label gpu, issue 6): run_training() with training.device = cuda against the same
# runs on the CPU (LoRA and full fine-tuning in F32 within 1e-4 per step, checkpoints from the GPU
# resumed on the CPU and the GPU, exports that load; BF16 LoRA near the CPU). Skips without a GPU; fails
# where a GPU is present but the CUDA training path cannot use it.
if(HEARTH_HAVE_CUDA)
  hearth_gtest(gpu-cuda-train-loop
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-cuda-train-loop.cpp
    LIBS hearth_trainer hearth_engine CUDA::cudart_static
    LABELS gpu
    TIMEOUT 300)
  target_include_directories(gpu-cuda-train-loop PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${PROJECT_SOURCE_DIR}/trainer/src)
endif()
