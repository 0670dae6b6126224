# `hearth-cli chat --project`: a piped conversation stored in a project, each reply with its energy
# (label integration: it runs the real program on a tiny model written by the test).
hearth_gtest(app-chat-cli
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/chat-cli.cpp
  LIBS hearth_app hearth_engine
  LABELS integration
  TIMEOUT 120)
