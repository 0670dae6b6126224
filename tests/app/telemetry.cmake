# Telemetry: the fake NVML shared libraries the tests load by path (one complete, one without the
# required nvmlDeviceGetCount_v2, one without the optional energy counter), their paths handed to the
# NVML unit test, and the hearth-cli integration test.
foreach(_variant "" "-no-count" "-no-energy")
  add_library(fake-nvml${_variant} SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fake-nvml.c)
  set_target_properties(fake-nvml${_variant} PROPERTIES C_VISIBILITY_PRESET hidden PREFIX "lib")
endforeach()
target_compile_definitions(fake-nvml-no-count PRIVATE FAKE_NVML_NO_COUNT)
target_compile_definitions(fake-nvml-no-energy PRIVATE FAKE_NVML_NO_ENERGY)

set(_fake_nvml_defs
  HEARTH_FAKE_NVML="$<TARGET_FILE:fake-nvml>"
  HEARTH_FAKE_NVML_NO_COUNT="$<TARGET_FILE:fake-nvml-no-count>"
  HEARTH_FAKE_NVML_NO_ENERGY="$<TARGET_FILE:fake-nvml-no-energy>")

if(TARGET app-test-telemetry-nvml)
  target_compile_definitions(app-test-telemetry-nvml PRIVATE ${_fake_nvml_defs})
  add_dependencies(app-test-telemetry-nvml fake-nvml fake-nvml-no-count fake-nvml-no-energy)
endif()

hearth_gtest(app-telemetry-cli
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/telemetry-cli.cpp
  LIBS hearth_app hearth_engine
  LABELS integration
  TIMEOUT 120)
target_compile_definitions(app-telemetry-cli PRIVATE ${_fake_nvml_defs})
add_dependencies(app-telemetry-cli fake-nvml)

# The real NVML path (label gpu): skipped where no GPU; tests/gpu/run.sh runs it beside a GEMM load.
hearth_gtest(app-telemetry-gpu
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/telemetry-gpu.cpp
  LIBS hearth_app hearth_engine
  LABELS gpu
  TIMEOUT 300)
