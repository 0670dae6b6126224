# Chat templates: the jinja2 reference comparison (label `reference`) and the CLI check (label
# `integration`). The unit tests (test-chat-template*.cpp, test-jinja*.cpp) are globbed by CMakeLists.txt.
# The reference test runs tests/reference/render_templates.py with HEARTH_PYTHON at test time.
hearth_gtest(engine-reference-chat-template
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/reference-chat-template.cpp
  LIBS hearth_engine
  LABELS reference
  TIMEOUT 120)
hearth_gtest(engine-integration-chat-template-cli
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration-chat-template-cli.cpp
  LIBS hearth_engine
  LABELS integration
  TIMEOUT 120)
