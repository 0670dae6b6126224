/* `hearth-cli runs list|show RUN|export RUN --format json|csv [--project FILE] [--json] [--output FILE]`.
 *
 * Non-obvious choice: RUN is a run id, or a run name when exactly one run has that name; an ambiguous
 * name is an error listing the matching ids rather than a guess.
 */
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "hearth/store/project.h"
#include "hearth/store/record-json.h"

namespace hearth::cli {
namespace {

store::Id resolveRun(store::Project& p, const std::string& ref) {
  bool numeric = !ref.empty() && ref.find_first_not_of("0123456789") == std::string::npos && ref.size() < 19;
  if (numeric) {
    store::Id id = std::stoll(ref);
    unwrap(p.run(id));  // not_found names the id
    return id;
  }
  auto all = unwrap(p.runs());
  std::vector<store::Id> hits;
  for (const auto& r : all)
    if (r.name == ref) hits.push_back(r.id);
  if (hits.empty()) throw CliError("project '" + p.path() + "': no run with id or name '" + ref + "'");
  if (hits.size() > 1) {
    std::string ids;
    for (auto id : hits) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
    throw CliError("run name '" + ref + "' is ambiguous (runs " + ids + "); give the id");
  }
  return hits[0];
}

void registerRuns(CLI::App& app) {
  auto* sub = app.add_subcommand("runs", "List, show and export training runs");
  sub->require_subcommand(1);
  auto project = std::make_shared<std::string>(store::Project::defaultPath());
  auto json = std::make_shared<bool>(false);
  auto addCommon = [&](CLI::App* c) {
    c->add_option("--project", *project, "Project file (default: " + store::Project::defaultPath() + ")");
  };

  auto* list = sub->add_subcommand("list", "List every run");
  addCommon(list);
  list->add_flag("--json", *json, "Print JSON");
  list->callback([project, json] {
    auto p = unwrap(store::Project::open(*project));
    auto runs = unwrap(p.runs());
    if (*json) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& r : runs) {
        auto j = store::toJson(r);
        j["metric_points"] = unwrap(p.metricCount(r.id));
        arr.push_back(std::move(j));
      }
      std::cout << arr.dump(2) << "\n";
      return;
    }
    std::cout << std::left << std::setw(6) << "id" << std::setw(12) << "status" << std::setw(26) << "created"
              << std::setw(10) << "points" << "name\n";
    for (const auto& r : runs)
      std::cout << std::setw(6) << r.id << std::setw(12) << store::runStatusName(r.status) << std::setw(26)
                << r.createdAt << std::setw(10) << unwrap(p.metricCount(r.id)) << r.name << "\n";
  });

  auto* show = sub->add_subcommand("show", "Show one run: configuration, provenance, status, metrics");
  auto runRef = std::make_shared<std::string>();
  show->add_option("RUN", *runRef, "Run id or name")->required();
  addCommon(show);
  show->add_flag("--json", *json, "Print JSON");
  show->callback([project, json, runRef] {
    auto p = unwrap(store::Project::open(*project));
    auto r = unwrap(p.run(resolveRun(p, *runRef)));
    auto names = unwrap(p.metricNames(r.id));
    if (*json) {
      auto j = store::toJson(r);
      nlohmann::json metrics = nlohmann::json::object();
      for (const auto& n : names) {
        auto pts = unwrap(p.readMetric(r.id, n));
        metrics[n] = {{"points", pts.size()},
                      {"last_step", pts.empty() ? nlohmann::json() : nlohmann::json(pts.back().step)},
                      {"last_value", pts.empty() ? nlohmann::json() : nlohmann::json(pts.back().value)}};
      }
      j["metrics"] = metrics;
      std::cout << j.dump(2) << "\n";
      return;
    }
    auto opt = [](const auto& v) { return v ? std::to_string(*v) : std::string("-"); };
    std::cout << "run:          " << r.id << (r.name.empty() ? "" : " (" + r.name + ")") << "\n"
              << "status:       " << store::runStatusName(r.status) << (r.error.empty() ? "" : ": " + r.error) << "\n"
              << "kind:         " << r.kind << "\n"
              << "created:      " << r.createdAt << "\n"
              << "started:      " << r.startedAt.value_or("-") << "\n"
              << "finished:     " << r.finishedAt.value_or("-") << "\n"
              << "seed:         " << opt(r.seed) << "\n"
              << "base version: " << opt(r.baseVersionId) << "\n"
              << "dataset:      " << opt(r.datasetId) << "\n"
              << "output:       " << opt(r.outputVersionId) << "\n"
              << "hardware:     " << (r.hardware.empty() ? "-" : r.hardware) << "\n"
              << "code version: " << (r.codeVersion.empty() ? "-" : r.codeVersion) << "\n"
              << "energy:       " << (r.energyJoules ? std::to_string(*r.energyJoules) + " J" : "-") << "\n"
              << "final:        " << r.finalMetrics << "\n"
              << "best:         " << r.bestMetrics << "\n"
              << "config:       " << r.config << "\n";
    for (const auto& n : names) {
      auto pts = unwrap(p.readMetric(r.id, n));
      std::cout << "metric " << n << ": " << pts.size() << " points";
      if (!pts.empty()) std::cout << ", last step " << pts.back().step << " = " << pts.back().value;
      std::cout << "\n";
    }
  });

  auto* exp = sub->add_subcommand("export", "Export one run as JSON (everything) or CSV (metrics)");
  auto exportRef = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("json");
  auto output = std::make_shared<std::string>();
  exp->add_option("RUN", *exportRef, "Run id or name")->required();
  exp->add_option("--format", *format, "json or csv")->check(CLI::IsMember({"json", "csv"}));
  exp->add_option("--output,-o", *output, "Write to this file instead of stdout");
  addCommon(exp);
  exp->add_flag("--json", *json, "Same as --format json");
  exp->callback([project, exportRef, format, output, json] {
    auto p = unwrap(store::Project::open(*project));
    store::Id id = resolveRun(p, *exportRef);
    std::string text = (*format == "csv" && !*json) ? unwrap(p.exportRunCsv(id)) : unwrap(p.exportRunJson(id));
    if (output->empty()) {
      std::cout << text;
      return;
    }
    std::ofstream out(*output, std::ios::binary);
    out << text;
    out.close();
    if (!out) throw CliError("cannot write '" + *output + "'");
  });

  auto* imp = sub->add_subcommand("import", "Import a run exported as JSON (as a new run)");
  auto file = std::make_shared<std::string>();
  imp->add_option("FILE", *file, "A file written by `runs export RUN --format json`")->required();
  addCommon(imp);
  imp->callback([project, file] {
    std::string text = read_file_or_throw(*file);
    auto p = unwrap(store::Project::open(*project));
    store::Id id = unwrap(p.importRunJson(text));
    std::cout << "imported run " << id << "\n";
  });
}

CommandRegistration reg(registerRuns);

}  // namespace
}  // namespace hearth::cli
