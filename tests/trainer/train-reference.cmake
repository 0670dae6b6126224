# The trainer model's reference test (label `reference`): losses, gradients and ten AdamW steps against
# tests/reference/torch_train.py (PyTorch, run with HEARTH_PYTHON at test time). Not named test-*.cpp so
# the unit glob in CMakeLists.txt does not pick it up.
hearth_gtest(trainer-train-reference
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/train-reference.cpp
  LIBS hearth_trainer;hearth_engine
  LABELS reference
  TIMEOUT 300)
