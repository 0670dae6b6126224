# GGUF reference test: Hearth's reader and dequantizers against tests/reference/gguf_dequant.py (numpy).
# Not named test-*.cpp so the unit glob does not pick it up; labelled `reference`.
hearth_gtest(engine-reference-gguf
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/gguf-reference.cpp
  LIBS hearth_engine
  LABELS reference
  TIMEOUT 120)
