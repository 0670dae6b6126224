# LoRA tests that need more than the `unit` label (included by tests/engine/CMakeLists.txt):
# - engine-lora-cli: hearth-cli generate/chat --lora against the merged model (label integration).
hearth_gtest(engine-lora-cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/lora-cli.cpp
             LIBS hearth_engine LABELS integration)
# - engine-lora-reference: adapter files applied by the engine vs tests/reference/torch_lora.py (label reference).
hearth_gtest(engine-lora-reference SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/lora-reference.cpp
             LIBS hearth_engine LABELS reference)
