# Inference tests that need more than the `unit` label (included by tests/engine/CMakeLists.txt):
# - engine-infer-reference: logits and greedy output against tests/reference/torch_llama.py (reference);
# - engine-infer-cli: hearth-cli generate/perplexity/bench end to end (integration).
hearth_gtest(engine-infer-reference SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/infer-reference.cpp
             LIBS hearth_engine LABELS reference)
hearth_gtest(engine-infer-cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/infer-cli.cpp
             LIBS hearth_engine LABELS integration)
add_dependencies(engine-infer-cli hearth-cli)
