# Project store: integration tests (SIGKILL, full disk, two processes, migrations from fixtures),
# their helper executables, and the bench-store benchmark (a program, never a test).
add_executable(store-writer ${CMAKE_CURRENT_SOURCE_DIR}/store-writer.cpp)
target_link_libraries(store-writer PRIVATE hearth_app hearth_engine)

add_executable(store-make-fixture ${CMAKE_CURRENT_SOURCE_DIR}/store-make-fixture.cpp)
target_link_libraries(store-make-fixture PRIVATE hearth_app hearth_engine)

hearth_gtest(app-store-reliability
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/store-reliability.cpp
  LIBS hearth_app hearth_engine
  LABELS integration
  TIMEOUT 300)
target_compile_definitions(app-store-reliability PRIVATE
  HEARTH_STORE_WRITER="$<TARGET_FILE:store-writer>")
add_dependencies(app-store-reliability store-writer)

add_executable(bench-store ${PROJECT_SOURCE_DIR}/tests/bench/bench-store.cpp)
target_link_libraries(bench-store PRIVATE hearth_app hearth_engine)
