# `hearth-cli estimate`: the GPU memory estimate printed by the real program equals the library's
# (label integration: it runs hearth-cli on the tiny test model).
hearth_gtest(app-estimate-cli
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/estimate-cli.cpp
  LIBS hearth_app hearth_engine
  LABELS integration
  TIMEOUT 60)
