# bench-gpu-train (issue 6): training throughput of a llama-shaped model on the GPU through
# DeviceTrainer, full fine-tuning and LoRA, with MFU against the cuBLAS BF16 GEMM rate measured in the
# same program (a benchmark program, never a test; tests/gpu/run.sh runs it beside
# tests/bench/peft_train_bench.py). Built only with the CUDA backend.
# Non-obvious choice: it includes trainer/src (device-trainer.h is the trainer's internal contract, not a
# public header) and links hearth_app only for NvmlSensor's energy counter (joules per token).
if(HEARTH_HAVE_CUDA)
  add_executable(bench-gpu-train ${PROJECT_SOURCE_DIR}/tests/bench/bench-gpu-train.cpp)
  target_include_directories(bench-gpu-train PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${PROJECT_SOURCE_DIR}/trainer/src)
  target_link_libraries(bench-gpu-train PRIVATE hearth_app hearth_trainer hearth_engine CUDA::cublas
                                                CUDA::cudart_static)
  set_target_properties(bench-gpu-train PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
endif()
