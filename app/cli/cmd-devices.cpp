/* `hearth-cli devices [--json]`: the CPU and GPUs Hearth can use on this machine. */
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "hearth/backend.h"

namespace hearth::cli {
namespace {

void register_devices(CLI::App& app) {
  auto* sub = app.add_subcommand("devices", "List the CPU and GPUs Hearth can use");
  auto json = std::make_shared<bool>(false);
  sub->add_flag("--json", *json, "Print JSON");
  sub->callback([json] {
    BackendInfo b = query_backends();
    if (*json) {
      nlohmann::json j;
      j["cpu"] = {{"name", b.cpu_name}, {"threads", b.cpu_threads}, {"features", b.cpu_features}};
      j["cuda"] = {{"compiled", b.cuda_compiled}, {"status", b.cuda_status},
                   {"runtime_version", b.cuda_runtime_version},
                   {"driver_version", b.cuda_driver_version}};
      j["gpus"] = nlohmann::json::array();
      for (auto& g : b.gpus)
        j["gpus"].push_back({{"index", g.index}, {"name", g.name}, {"memory_bytes", g.total_memory},
                             {"compute_capability", std::to_string(g.cc_major) + "." +
                                                        std::to_string(g.cc_minor)}});
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "cpu:   " << b.cpu_name << " (" << b.cpu_threads << " threads)\n";
    std::cout << "simd: ";
    for (auto& f : b.cpu_features) std::cout << " " << f;
    std::cout << "\ncuda:  " << (b.cuda_compiled ? "built in" : "not built") << ", " << b.cuda_status
              << "\n";
    for (auto& g : b.gpus)
      std::cout << "gpu " << g.index << ": " << g.name << ", " << (g.total_memory >> 20) << " MiB, sm_"
                << g.cc_major << g.cc_minor << "\n";
  });
}

CommandRegistration reg(register_devices);

}  // namespace
}  // namespace hearth::cli
