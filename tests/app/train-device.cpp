/* Where a training run computed, as the project records it (issue 6): `hearth-cli train --device cuda
 * --gpu 99` (a GPU no machine has) trains on the CPU, says so on stderr and stdout, and the run's
 * hardware JSON, final metrics and audit log carry the device and the reason; a resumed run adds one
 * entry for its second part.
 *
 * Non-obvious choice: the runs go through the real program, as a user (or an auditor reading the
 * project later) would see them; the tiny shared Llama model keeps each run under a second or two.
 */
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "hearth/store/project.h"
#include "must.h"
#include "test-util.h"

namespace {

namespace fs = std::filesystem;
using namespace hearth;
using hearth::test::must;
using nlohmann::json;

fs::path write_config(const fs::path& dir) {
  std::ofstream d(dir / "data.jsonl");
  for (int i = 0; i < 24; ++i)
    d << json{{"instruction", "Say " + std::to_string(i) + "."}, {"input", ""}, {"output", "Number " + std::to_string(i) + "."}}
             .dump()
      << "\n";
  d.close();
  std::ofstream c(dir / "run.yaml");
  c << "name: where\nmodel: " << hearth::test::testdata("models/llama-2-tiny-random.gguf").string() << "\n"
    << "method: lora\nlora: {rank: 2, alpha: 4, targets: [q, v]}\n"
    << "data: {train: data.jsonl, max_length: 96}\n"
    << "training: {steps: 4, batch_size: 2, lr: 1.0e-3, seed: 3, threads: 2}\n"
    << "checkpoint: {every: 2}\noutput: {formats: [gguf-lora]}\n";
  return dir / "run.yaml";
}

std::string line_value(const std::string& out, const std::string& key) {
  std::smatch m;
  std::regex re("(^|\n)" + key + ": ([^\n]*)");
  return std::regex_search(out, m, re) ? std::string(m[2]) : std::string();
}

}  // namespace

TEST(TrainDeviceRecord, GpuAskedForButUnusableIsRecordedWithTheReason) {
  auto dir = hearth::test::scratch("train-device-record");
  const fs::path cfg = write_config(dir);
  const fs::path project = dir / "p.hearth";
  auto r = hearth::test::run(hearth::test::cli() + " train '" + cfg.string() + "' --project '" + project.string() +
                             "' --device cuda --gpu 99 --precision f32 --stop-after 2");
  ASSERT_EQ(r.exit_code, 130) << r.err;  // stopped with a checkpoint after step 2
  const std::string note_line = line_value(r.out, "device_note");
  ASSERT_FALSE(note_line.empty()) << r.out;
  EXPECT_EQ(line_value(r.out, "device"), "cpu CPU, 2 threads") << r.out;
  EXPECT_NE(r.err.find("training on the CPU: " + note_line), std::string::npos) << r.err;
  const int64_t run_id = std::stoll(line_value(r.out, "run"));

  {
    auto p = must(store::Project::open(project.string()));
    store::Run run = must(p.run(run_id));
    auto cfgj = json::parse(run.config);
    EXPECT_EQ(cfgj["training"]["device"], "cuda");  // what was asked for
    EXPECT_EQ(cfgj["training"]["gpu"], 99);
    EXPECT_EQ(cfgj["training"]["precision"], "f32");
    auto hw = json::parse(run.hardware);
    ASSERT_TRUE(hw.contains("cpu")) << run.hardware;  // the machine's description is kept
    ASSERT_EQ(hw["training_devices"].size(), 1u) << run.hardware;
    const json& part = hw["training_devices"][0];
    EXPECT_EQ(part["from_step"], 0);
    EXPECT_EQ(part["device"], "cpu");
    EXPECT_EQ(part["description"], "CPU, 2 threads");
    EXPECT_EQ(part["note"], note_line);
    EXPECT_FALSE(part.contains("memory_bytes"));
    // The audit log has it as an update of the run, and the chain still verifies.
    bool logged = false;
    for (const auto& e : must(p.events()))
      if (e.entity == "run" && e.entityId == run_id && e.action == "update" &&
          e.payload.find("training_device") != std::string::npos)
        logged = json::parse(e.payload)["training_device"] == part;
    EXPECT_TRUE(logged);
    EXPECT_TRUE(must(p.verifyChain()).ok);
  }

  // Resumed on the CPU by choice: a second entry from the checkpoint's step, and the final metrics say
  // what served the last part.
  r = hearth::test::run(hearth::test::cli() + " train --resume " + std::to_string(run_id) + " --project '" +
                        project.string() + "' --device cpu");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(line_value(r.out, "device"), "cpu CPU, 2 threads");
  EXPECT_EQ(line_value(r.out, "device_note"), "");
  EXPECT_NE(r.err.find("training on the CPU (CPU, 2 threads)"), std::string::npos) << r.err;
  auto p = must(store::Project::open(project.string()));
  store::Run run = must(p.run(run_id));
  EXPECT_EQ(run.status, store::RunStatus::finished);
  auto hw = json::parse(run.hardware);
  ASSERT_EQ(hw["training_devices"].size(), 2u) << run.hardware;
  EXPECT_EQ(hw["training_devices"][1]["from_step"], 2);
  EXPECT_EQ(hw["training_devices"][1]["device"], "cpu");
  EXPECT_FALSE(hw["training_devices"][1].contains("note"));
  auto fin = json::parse(run.finalMetrics);
  EXPECT_EQ(fin["device"], "cpu");
  EXPECT_EQ(fin["device_description"], "CPU, 2 threads");
  EXPECT_FALSE(fin.contains("device_note"));
  EXPECT_EQ(fin["steps"], 4);
  // The export of the run carries it too.
  EXPECT_NE(must(p.exportRunJson(run_id)).find("training_devices"), std::string::npos);
}

TEST(TrainDeviceRecord, ShorthandsAreCheckedByTheCommandLine) {
  auto dir = hearth::test::scratch("train-device-args");
  const fs::path cfg = write_config(dir);
  auto r = hearth::test::run(hearth::test::cli() + " train '" + cfg.string() + "' --project '" +
                             (dir / "p.hearth").string() + "' --device gpu");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--device"), std::string::npos) << r.err;
  r = hearth::test::run(hearth::test::cli() + " train '" + cfg.string() + "' --project '" +
                        (dir / "p.hearth").string() + "' --precision fp16");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--precision"), std::string::npos) << r.err;
}
