# trainer-test-train-loop-fake-device (label unit, issue 6): the training loop's GPU branch through a
# CPU-backed test double of DeviceTrainer, bit-identical to the CPU run (train-loop-fake-device.cpp).
# Non-obvious choice: the double's definitions replace hearth_trainer's device-trainer.o at link time
# (-Wl,--allow-multiple-definition; this file's objects come first on the command line).
hearth_gtest(trainer-test-train-loop-fake-device
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/train-loop-fake-device.cpp
  LIBS hearth_trainer hearth_engine
  LABELS unit
  TIMEOUT 300)
target_include_directories(trainer-test-train-loop-fake-device PRIVATE ${PROJECT_SOURCE_DIR}/trainer/src)
target_link_options(trainer-test-train-loop-fake-device PRIVATE -Wl,--allow-multiple-definition)
