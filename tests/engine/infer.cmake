# Inference tests that need more than the `unit` label (included by tests/engine/CMakeLists.txt):
# - engine-infer-reference: logits and greedy output against tests/reference/torch_llama.py (reference);
# - engine-infer-cli: hearth-cli generate/perplexity/bench end to end (integration).
hearth_gtest(engine-infer-reference SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/infer-reference.cpp
             LIBS hearth_engine LABELS reference)
hearth_gtest(engine-infer-cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/infer-cli.cpp
             LIBS hearth_engine LABELS integration)
add_dependencies(engine-infer-cli hearth-cli)

# bench-infer: a benchmark program (never a test). OpenBLAS only measures the sgemm peak here; the
# engine itself does not link it.
add_executable(bench-infer ${PROJECT_SOURCE_DIR}/tests/bench/bench-infer.cpp)
target_link_libraries(bench-infer PRIVATE hearth_engine)
find_library(HEARTH_OPENBLAS_LIB openblas)
find_path(HEARTH_OPENBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas-pthread openblas)
if(HEARTH_OPENBLAS_LIB AND HEARTH_OPENBLAS_INCLUDE)
  target_link_libraries(bench-infer PRIVATE ${HEARTH_OPENBLAS_LIB})
  target_include_directories(bench-infer PRIVATE ${HEARTH_OPENBLAS_INCLUDE})
  target_compile_definitions(bench-infer PRIVATE HEARTH_BENCH_OPENBLAS=1)
endif()

# bench-quant-dot: each decode kernel variant (portable, AVX2, AVX-512 VNNI) on one thread, from cache
# and from memory, against a plain read of the same bytes (a program, never a test).
add_executable(bench-quant-dot ${PROJECT_SOURCE_DIR}/tests/bench/bench-quant-dot.cpp)
target_link_libraries(bench-quant-dot PRIVATE hearth_engine)
