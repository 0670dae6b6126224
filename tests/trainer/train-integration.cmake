# trainer-train-integration: `hearth-cli train` end to end (label integration): pretraining on a Debian
# corpus (the `fortunes` package) then LoRA on the result, run records in the project database, resume,
# a malformed dataset line, Ctrl-C. Linked with hearth_app to read the project file back.
hearth_gtest(trainer-train-integration SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/train-integration.cpp
             LIBS hearth_app hearth_trainer hearth_engine LABELS integration TIMEOUT 600)
add_dependencies(trainer-train-integration hearth-cli)
