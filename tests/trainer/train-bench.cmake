# bench-train: training throughput and peak memory, Hearth against PyTorch (a program, never a test).
#   build-*/tests/trainer/bench-train [--threads N ...]   (tests/bench/bench-train.cpp says the options)
add_executable(bench-train ${PROJECT_SOURCE_DIR}/tests/bench/bench-train.cpp)
target_link_libraries(bench-train PRIVATE hearth_trainer hearth_engine nlohmann_json::nlohmann_json)
target_compile_definitions(bench-train PRIVATE
  HEARTH_PYTHON="${HEARTH_PYTHON}"
  HEARTH_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
