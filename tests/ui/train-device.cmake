# ui-tst_traindevice starts a real `hearth-cli train` child for its dashboard case: it needs the CLI built
# and its path (HEARTH_CLI) compiled in, as the wizard and dashboard tests (wizard.cmake).
if(TARGET ui-tst_traindevice AND TARGET hearth-cli)
  target_compile_definitions(ui-tst_traindevice PRIVATE HEARTH_CLI="$<TARGET_FILE:hearth-cli>")
  add_dependencies(ui-tst_traindevice hearth-cli)
endif()
