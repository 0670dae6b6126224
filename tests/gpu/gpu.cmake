# GPU checks and benchmarks (included from tests/CMakeLists.txt), built only when the CUDA backend is:
# - gpu-nvml-energy-check (label gpu): NVML energy counter against integrated power under a cuBLAS
#   GEMM load; skips itself where no NVIDIA GPU is present, so CI builds it and sees it skip.
# - bench-gpu: HBM copy bandwidth and cuBLAS SGEMM / BF16 GEMM rates (a program, never a test).
# Non-obvious choice: only these targets link cuBLAS (shared, from the toolkit); the engine links
# nothing but the static CUDA runtime, so a CUDA-built hearth-cli needs only the driver.
if(HEARTH_HAVE_CUDA)
  hearth_gtest(gpu-nvml-energy-check
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/nvml-energy-check.cpp
    LIBS hearth_app hearth_engine CUDA::cublas CUDA::cudart_static
    LABELS gpu
    TIMEOUT 240)
  target_include_directories(gpu-nvml-energy-check PRIVATE ${CMAKE_CURRENT_LIST_DIR})

  add_executable(bench-gpu ${PROJECT_SOURCE_DIR}/tests/bench/bench-gpu.cpp)
  target_include_directories(bench-gpu PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(bench-gpu PRIVATE CUDA::cublas CUDA::cudart_static)
  set_target_properties(bench-gpu PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
endif()

# ---- CUDA inference (issue 6, the runner) ----------------------------------------------------
# - gpu-cuda-inference (label gpu): the CUDA forward pass against the CPU on tiny random llama / qwen2 /
#   qwen3 models in F32, F16, BF16, Q8_0, Q4_0 and Q4_K_M; skips itself without a GPU.
# - bench-gpu-infer: bench-infer.cpp built with the GPU yardsticks (HBM copy, cuBLAS BF16 GEMM) for
#   `--device cuda`; its name holds "gpu" so tests/gpu/run.sh builds it with the GPU targets.
if(HEARTH_HAVE_CUDA)
  hearth_gtest(gpu-cuda-inference
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-cuda-inference.cpp
    LIBS hearth_engine CUDA::cudart_static
    LABELS gpu
    TIMEOUT 240)

  add_executable(bench-gpu-infer ${PROJECT_SOURCE_DIR}/tests/bench/bench-infer.cpp)
  target_include_directories(bench-gpu-infer PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(bench-gpu-infer PRIVATE hearth_engine CUDA::cublas CUDA::cudart_static)
  target_compile_definitions(bench-gpu-infer PRIVATE HEARTH_BENCH_GPU=1)
  set_target_properties(bench-gpu-infer PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
endif()

# gpu-test-cuda-kernels (label gpu, issue 6): every inference kernel of engine/cuda/kernels.h against
# the CPU backend; skips where no CUDA device is usable (its argument checks run everywhere).
if(HEARTH_HAVE_CUDA)
  hearth_gtest(gpu-test-cuda-kernels
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-cuda-kernels.cpp
    LIBS hearth_engine CUDA::cudart_static
    LABELS gpu
    TIMEOUT 240)
  target_include_directories(gpu-test-cuda-kernels PRIVATE
    ${PROJECT_SOURCE_DIR}/engine/cuda ${PROJECT_SOURCE_DIR}/engine/cpu)
endif()

# gpu-test-cuda-train-kernels (label gpu, issue 6): every trainer CUDA kernel (trainer/cuda) against the
# trainer's CPU op; skips where no CUDA device is usable (its argument checks run everywhere).
if(HEARTH_HAVE_CUDA)
  hearth_gtest(gpu-test-cuda-train-kernels
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-cuda-train-kernels.cpp
    LIBS hearth_trainer_cuda hearth_trainer hearth_engine CUDA::cudart_static
    LABELS gpu
    TIMEOUT 240)
  target_include_directories(gpu-test-cuda-train-kernels PRIVATE ${PROJECT_SOURCE_DIR}/trainer/src)
endif()
