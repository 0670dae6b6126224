# The fine-tune wizard and run dashboard tests start real `hearth-cli train` children: they need the CLI
# built and its path (HEARTH_CLI) compiled in.
foreach(_t ui-tst_finetunewizard ui-tst_rundashboard)
  if(TARGET ${_t} AND TARGET hearth-cli)
    target_compile_definitions(${_t} PRIVATE HEARTH_CLI="$<TARGET_FILE:hearth-cli>")
    add_dependencies(${_t} hearth-cli)
  endif()
endforeach()
