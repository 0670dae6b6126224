# app-train-device (label integration, issue 6): `hearth-cli train --device/--gpu/--precision` where the
# GPU cannot serve: the CPU trains, and the run's hardware JSON, final metrics and audit log say where and
# why; a resumed part adds its own entry. Runs the real program on the shared tiny model (a few seconds).
hearth_gtest(app-train-device
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/train-device.cpp
  LIBS hearth_app hearth_trainer hearth_engine
  LABELS integration
  TIMEOUT 120)
add_dependencies(app-train-device hearth-cli)
