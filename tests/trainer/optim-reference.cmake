# AdamW and gradient clipping against PyTorch (tests/reference/torch_adamw.py run at test time by
# HEARTH_PYTHON). Its own executable, labelled `reference`: each case starts Python with torch, which
# takes seconds, too slow for the `unit` label.
hearth_gtest(trainer-optim-reference
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/optim-reference.cpp
  LIBS hearth_trainer hearth_engine
  LABELS reference
  TIMEOUT 120)
