# Model-file tests that need more than the `unit` label (included by tests/engine/CMakeLists.txt):
# - engine-model-reference: the GGUF llama q/k permutation checked by a numpy script (label reference);
# - engine-model-cli: `hearth-cli info` end to end (label integration).
hearth_gtest(engine-model-reference SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/model-reference.cpp
             LIBS hearth_engine LABELS reference)
hearth_gtest(engine-model-cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/model-cli.cpp
             LIBS hearth_engine LABELS integration)
