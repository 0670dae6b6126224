# Tokenizer tests beyond the globbed unit test (test-tokenizer.cpp): hearth-cli tokenize/detokenize on the
# shared vocabulary files, checked against the .out test vectors (label: integration).
hearth_gtest(engine-tokenizer-cli
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokenizer-cli.cpp
  LIBS hearth_engine
  LABELS integration)
