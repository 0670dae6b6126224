# bench-chart: redraw time of a MetricChart with 3 runs x 1,000,000 points, offscreen (a program that
# prints a table, never a test). Run: build/bench-chart [points_per_run] [runs] [redraws]
add_executable(bench-chart ${PROJECT_SOURCE_DIR}/tests/bench/bench-chart.cpp)
target_link_libraries(bench-chart PRIVATE hearth_ui)
set_target_properties(bench-chart PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
