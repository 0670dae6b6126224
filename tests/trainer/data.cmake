# The dataset fuzz target (tests/fuzz/fuzz-dataset.cpp) needs the trainer library and the test data
# folder, which tests/fuzz (an engine-only folder, configured after this one) does not give it; the link
# is added once the whole tree is configured.
function(_hearth_fuzz_dataset_needs_trainer)
  if(TARGET fuzz-dataset)
    target_link_libraries(fuzz-dataset PRIVATE hearth_trainer)
    target_compile_definitions(fuzz-dataset PRIVATE HEARTH_TESTDATA="${HEARTH_TESTDATA}")
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _hearth_fuzz_dataset_needs_trainer)
