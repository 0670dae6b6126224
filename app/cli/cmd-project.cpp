/* `hearth-cli project init [FILE]`, `project info [--project FILE] [--json]` and
 * `project backup DEST [--project FILE]` (SQLite online backup: safe while another process writes).
 *
 * Non-obvious choice: `info` opens the project like every other command (so it may migrate an older
 * file and mark dead runs interrupted); a file that is not a project is reported, never modified.
 */
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "hearth/store/project.h"
#include "hearth/store/schema.h"

namespace hearth::cli {
namespace {

void registerProject(CLI::App& app) {
  auto* sub = app.add_subcommand("project", "Create or describe a Hearth project file (.hearth)");
  sub->require_subcommand(1);

  auto* init = sub->add_subcommand("init", "Create a new, empty project file");
  auto file = std::make_shared<std::string>(store::Project::defaultPath());
  init->add_option("FILE", *file, "The project file to create (default: " + store::Project::defaultPath() + ")");
  init->callback([file] {
    auto p = unwrap(store::Project::create(*file));
    std::cout << "created project " << p.path() << " (schema v" << p.schemaVersion() << ")\n";
  });

  auto* backup = sub->add_subcommand("backup", "Copy the project to a new file (safe while runs write)");
  auto dest = std::make_shared<std::string>();
  auto backupProject = std::make_shared<std::string>(store::Project::defaultPath());
  backup->add_option("DEST", *dest, "The new file to write")->required();
  backup->add_option("--project", *backupProject, "Project file (default: " + store::Project::defaultPath() + ")");
  backup->callback([dest, backupProject] {
    store::OpenOptions o;
    o.recoverInterrupted = false;
    auto p = unwrap(store::Project::open(*backupProject, o));
    unwrap(p.backupTo(*dest));
    std::cout << "backed up " << p.path() << " to " << *dest << "\n";
  });

  auto* info = sub->add_subcommand("info", "Show a project's schema version and contents");
  auto project = std::make_shared<std::string>(store::Project::defaultPath());
  auto json = std::make_shared<bool>(false);
  info->add_option("--project", *project, "Project file (default: " + store::Project::defaultPath() + ")");
  info->add_flag("--json", *json, "Print JSON");
  info->callback([project, json] {
    auto p = unwrap(store::Project::open(*project));
    auto i = unwrap(p.info());
    if (*json) {
      nlohmann::json j = {{"path", i.path},
                          {"schema_version", i.schemaVersion},
                          {"size_bytes", i.sizeBytes},
                          {"models", i.models},
                          {"model_versions", i.modelVersions},
                          {"datasets", i.datasets},
                          {"experiments", i.experiments},
                          {"runs", i.runs},
                          {"metric_points", i.metricPoints},
                          {"conversations", i.conversations},
                          {"messages", i.messages},
                          {"prompts", i.prompts},
                          {"events", i.events}};
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "project:        " << i.path << "\n"
              << "schema:         v" << i.schemaVersion << " (" << store::schemaVersionSummary(i.schemaVersion)
              << ")\n"
              << "size:           " << i.sizeBytes << " bytes\n"
              << "models:         " << i.models << " (" << i.modelVersions << " versions)\n"
              << "datasets:       " << i.datasets << "\n"
              << "experiments:    " << i.experiments << "\n"
              << "runs:           " << i.runs << " (" << i.metricPoints << " metric points)\n"
              << "conversations:  " << i.conversations << " (" << i.messages << " messages)\n"
              << "prompts:        " << i.prompts << "\n"
              << "events:         " << i.events << "\n";
  });
}

CommandRegistration reg(registerProject);

}  // namespace
}  // namespace hearth::cli
