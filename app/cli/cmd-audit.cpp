/* `hearth-cli audit verify [--project FILE]`: walks the event log's hash chain.
 *
 * Non-obvious choice: the project is opened without recovering interrupted runs, so verifying a
 * project never appends to the log it is checking.
 */
#include <iostream>

#include "command.h"
#include "hearth/store/project.h"

namespace hearth::cli {
namespace {

void registerAudit(CLI::App& app) {
  auto* sub = app.add_subcommand("audit", "Check the project's tamper-evident event log");
  sub->require_subcommand(1);
  auto* verify = sub->add_subcommand("verify", "Verify the hash chain of every event");
  auto project = std::make_shared<std::string>(store::Project::defaultPath());
  verify->add_option("--project", *project, "Project file (default: " + store::Project::defaultPath() + ")");
  verify->callback([project] {
    store::OpenOptions o;
    o.recoverInterrupted = false;
    auto p = unwrap(store::Project::open(*project, o));
    auto report = unwrap(p.verifyChain());
    if (!report.ok)
      throw CliError("chain broken at event " + std::to_string(report.firstBrokenEvent.value_or(0)) + ": " +
                     report.reason + " (" + std::to_string(report.events) + " events before it are intact)");
    std::cout << "chain ok: " << report.events << " events\n";
    if (!report.headHash.empty()) std::cout << "head: " << report.headHash << "\n";
  });
}

CommandRegistration reg(registerAudit);

}  // namespace
}  // namespace hearth::cli
