/* Unit tests of checkpoints: a bit-exact round trip (params, AdamW moments and step, every state
 * field) after which training continues with the same bits, pruning to the newest K by step number,
 * half-written folders never taken for checkpoints, a full disk that leaves the previous checkpoint
 * intact, and loads into a model of another shape refused before anything is changed.
 *
 * Non-obvious choice: the full disk is a file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored), which
 * makes write() fail with EFBIG exactly as ENOSPC would, for an unprivileged process and without
 * mounting anything; the limit is restored before the test's assertions.
 */
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <random>
#include <sys/resource.h>

#include "hearth/safetensors.h"
#include "hearth/trainer/checkpoint.h"
#include "hearth/trainer/config.h"
#include "test-util.h"

using namespace hearth;
using namespace hearth::train;
namespace fs = std::filesystem;

namespace {

Param make_param(std::string name, std::vector<int64_t> shape, std::mt19937& rng) {
  Param p;
  p.name = std::move(name);
  p.shape = std::move(shape);
  std::normal_distribution<float> d(0.0f, 1.0f);
  p.value.resize(size_t(p.numel()));
  for (auto& x : p.value) x = d(rng);
  p.grad.resize(p.value.size());
  for (auto& x : p.grad) x = d(rng);
  return p;
}

struct Trained {
  std::vector<Param> params;
  std::unique_ptr<AdamW> opt;
  std::vector<Param*> ptrs() {
    std::vector<Param*> out;
    for (auto& p : params) out.push_back(&p);
    return out;
  }
  std::vector<const Param*> cptrs() {
    std::vector<const Param*> out;
    for (auto& p : params) out.push_back(&p);
    return out;
  }
};

// Two tensors (a LoRA-like pair), trained for `steps` AdamW steps so the moments are not zero.
Trained make_model(uint32_t seed, std::vector<int64_t> a_shape = {4, 6}, std::vector<int64_t> b_shape = {6, 4},
                 int steps = 3) {
  std::mt19937 rng(seed);
  Trained m;
  m.params.push_back(make_param("layers.0.q.lora_A.weight", a_shape, rng));
  m.params.push_back(make_param("layers.0.q.lora_B.weight", b_shape, rng));
  m.opt = std::make_unique<AdamW>(m.ptrs(), AdamWSettings{0.9, 0.999, 1e-8, 0.01});
  for (int t = 0; t < steps; ++t) m.opt->step(1e-2);
  return m;
}

TrainState make_state(int64_t step) {
  TrainState s;
  s.step = step;
  s.tokens_seen = 123456789012;
  s.elapsed_s = 12.345678901234567;
  s.energy_j = 0.1 + 0.2;
  s.data = {3, 17};
  s.dropout_counter = 0xfedcba9876543210ull;
  s.best_val_loss = 2.718281828459045;
  TrainConfig c;
  c.model = "/m.gguf";
  c.data.train = "/d.jsonl";
  c.name = "run \"one\"";
  s.config_json = config_to_json(c);
  return s;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(Checkpoint, RoundTripIsBitExactAndTrainingContinuesIdentically) {
  auto dir = hearth::test::scratch("ckpt-roundtrip");
  Trained a = make_model(1);
  // Values a text format would lose.
  a.params[0].value[0] = -0.0f;
  a.params[0].value[1] = std::numeric_limits<float>::denorm_min();
  a.params[0].value[2] = 1.0f / 3.0f;
  const TrainState st = make_state(7);
  auto saved = save_checkpoint(dir, st, a.cptrs(), *a.opt, 2);
  ASSERT_TRUE(saved) << saved.error().to_string();
  EXPECT_EQ(*saved, dir / "step-7");
  EXPECT_EQ(names_in(*saved), (std::vector<std::string>{"state.json", "state.safetensors"}));

  // The tensor file is plain safetensors that the engine's reader accepts, with the documented names.
  auto file = SafetensorsFile::open(*saved / "state.safetensors");
  ASSERT_TRUE(file) << file.error().to_string();
  EXPECT_EQ(file->tensors().size(), 6u);
  ASSERT_NE(file->find("optim.m.layers.0.q.lora_A.weight"), nullptr);
  ASSERT_NE(file->find("optim.v.layers.0.q.lora_B.weight"), nullptr);
  EXPECT_EQ(file->find("layers.0.q.lora_B.weight")->shape, (std::vector<int64_t>{6, 4}));

  Trained b = make_model(2, {4, 6}, {6, 4}, 0);  // other values, fresh optimizer
  auto loaded = load_checkpoint(*saved, b.ptrs(), *b.opt);
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  for (size_t i = 0; i < a.params.size(); ++i) {
    EXPECT_TRUE(same_bits(a.params[i].value, b.params[i].value)) << i;
    EXPECT_TRUE(same_bits(a.opt->m()[i], b.opt->m()[i])) << i;
    EXPECT_TRUE(same_bits(a.opt->v()[i], b.opt->v()[i])) << i;
  }
  EXPECT_EQ(b.opt->steps_taken(), 3);
  EXPECT_EQ(loaded->step, st.step);
  EXPECT_EQ(loaded->tokens_seen, st.tokens_seen);
  EXPECT_EQ(loaded->elapsed_s, st.elapsed_s);
  EXPECT_EQ(loaded->energy_j, st.energy_j);
  EXPECT_EQ(loaded->data.epoch, 3);
  EXPECT_EQ(loaded->data.index, 17);
  EXPECT_EQ(loaded->dropout_counter, st.dropout_counter);
  EXPECT_EQ(loaded->best_val_loss, st.best_val_loss);
  EXPECT_EQ(loaded->config_json, st.config_json);

  // One more step from the same gradients gives the same bits (bias corrections use the restored step).
  for (size_t i = 0; i < a.params.size(); ++i) b.params[i].grad = a.params[i].grad;
  a.opt->step(5e-3);
  b.opt->step(5e-3);
  for (size_t i = 0; i < a.params.size(); ++i) EXPECT_TRUE(same_bits(a.params[i].value, b.params[i].value)) << i;
}

TEST(Checkpoint, KeepsTheNewestKByStepNumber) {
  auto dir = hearth::test::scratch("ckpt-keep");
  Trained a = make_model(3);
  for (int64_t step : {8, 9, 10, 11}) {
    auto r = save_checkpoint(dir, make_state(step), a.cptrs(), *a.opt, 3);
    ASSERT_TRUE(r) << r.error().to_string();
  }
  // step-10 sorts before step-8 as text; pruning must go by number.
  EXPECT_EQ(names_in(dir), (std::vector<std::string>{"step-10", "step-11", "step-9"}));
  ASSERT_TRUE(latest_checkpoint(dir));
  EXPECT_EQ(*latest_checkpoint(dir), dir / "step-11");
  ASSERT_TRUE(save_checkpoint(dir, make_state(12), a.cptrs(), *a.opt, 1));
  EXPECT_EQ(names_in(dir), (std::vector<std::string>{"step-12"}));
  EXPECT_FALSE(latest_checkpoint(dir / "missing"));
}

TEST(Checkpoint, SavingTheSameStepAgainReplacesIt) {
  auto dir = hearth::test::scratch("ckpt-again");
  Trained a = make_model(4);
  ASSERT_TRUE(save_checkpoint(dir, make_state(5), a.cptrs(), *a.opt, 2));
  a.opt->step(1e-2);  // changes values and moments
  TrainState st = make_state(5);
  st.tokens_seen = 42;
  ASSERT_TRUE(save_checkpoint(dir, st, a.cptrs(), *a.opt, 2));
  EXPECT_EQ(names_in(dir), (std::vector<std::string>{"step-5"}));
  Trained b = make_model(5, {4, 6}, {6, 4}, 0);
  auto loaded = load_checkpoint(dir / "step-5", b.ptrs(), *b.opt);
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_EQ(loaded->tokens_seen, 42);
  EXPECT_TRUE(same_bits(a.params[0].value, b.params[0].value));
}

TEST(Checkpoint, HalfWrittenFoldersAreNeverTakenForCheckpoints) {
  auto dir = hearth::test::scratch("ckpt-half");
  Trained a = make_model(6);
  ASSERT_TRUE(save_checkpoint(dir, make_state(3), a.cptrs(), *a.opt, 5));
  // A save killed mid-write: step-5.tmp with a truncated tensor file and its JSON.
  fs::create_directories(dir / "step-5.tmp");
  const std::string whole = hearth::test::read_text(dir / "step-3" / "state.safetensors");
  hearth::test::write_text(dir / "step-5.tmp" / "state.safetensors", whole.substr(0, whole.size() / 2));
  fs::copy_file(dir / "step-3" / "state.json", dir / "step-5.tmp" / "state.json");
  // A folder with the right name but missing its state.json, and unrelated names.
  fs::create_directories(dir / "step-7");
  hearth::test::write_text(dir / "step-7" / "state.safetensors", whole);
  fs::create_directories(dir / "step-x9");
  fs::create_directories(dir / "step-");
  ASSERT_TRUE(latest_checkpoint(dir));
  EXPECT_EQ(*latest_checkpoint(dir), dir / "step-3");

  Trained b = make_model(7, {4, 6}, {6, 4}, 0);
  auto half = load_checkpoint(dir / "step-7", b.ptrs(), *b.opt);
  ASSERT_FALSE(half);
  EXPECT_EQ(half.error().code, ErrorCode::format);
  auto trunc = load_checkpoint(dir / "step-5.tmp", b.ptrs(), *b.opt);
  ASSERT_FALSE(trunc);
  EXPECT_EQ(trunc.error().code, ErrorCode::format) << trunc.error().to_string();
  EXPECT_TRUE(same_bits(b.params[0].value, make_model(7, {4, 6}, {6, 4}, 0).params[0].value));

  // The next save clears the leftover .tmp.
  ASSERT_TRUE(save_checkpoint(dir, make_state(4), a.cptrs(), *a.opt, 5));
  EXPECT_FALSE(fs::exists(dir / "step-5.tmp"));
  EXPECT_EQ(*latest_checkpoint(dir), dir / "step-4");
}

TEST(Checkpoint, FullDiskFailsWithIoErrorAndKeepsThePreviousOne) {
  auto dir = hearth::test::scratch("ckpt-full");
  Trained a = make_model(8, {64, 256}, {256, 64});  // 3 × 2 × 64 KiB of tensors
  ASSERT_TRUE(save_checkpoint(dir, make_state(1), a.cptrs(), *a.opt, 1));
  const auto before_a = a.params[0].value;
  a.opt->step(1e-2);

  // A file-size limit well below the tensor file: write() fails with EFBIG, like a full disk.
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  auto r = save_checkpoint(dir, make_state(2), a.cptrs(), *a.opt, 1);
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);

  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::io);
  EXPECT_NE(r.error().message.find("step-2.tmp/state.safetensors"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().hint.find("disk is full"), std::string::npos) << r.error().hint;
  EXPECT_EQ(names_in(dir), (std::vector<std::string>{"step-1"}));  // no step-2, no half step-2.tmp
  ASSERT_TRUE(latest_checkpoint(dir));
  EXPECT_EQ(*latest_checkpoint(dir), dir / "step-1");
  Trained b = make_model(9, {64, 256}, {256, 64}, 0);
  auto loaded = load_checkpoint(dir / "step-1", b.ptrs(), *b.opt);
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_EQ(loaded->step, 1);
  EXPECT_TRUE(same_bits(b.params[0].value, before_a));
}

TEST(Checkpoint, LoadIntoAnotherShapeIsRefusedBeforeAnythingChanges) {
  auto dir = hearth::test::scratch("ckpt-shape");
  Trained a = make_model(10);
  auto saved = save_checkpoint(dir, make_state(1), a.cptrs(), *a.opt, 1);
  ASSERT_TRUE(saved);

  Trained rank8 = make_model(11, {8, 6}, {6, 8}, 0);  // another LoRA rank
  const auto untouched = rank8.params[0].value;
  auto r = load_checkpoint(*saved, rank8.ptrs(), *rank8.opt);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(r.error().message.find("'layers.0.q.lora_A.weight' has shape [4, 6] in the checkpoint but [8, 6] in the "
                                   "model"),
            std::string::npos)
      << r.error().message;
  EXPECT_TRUE(same_bits(rank8.params[0].value, untouched));
  EXPECT_EQ(rank8.opt->steps_taken(), 0);

  // A model with a tensor the checkpoint lacks, and one lacking a tensor the checkpoint has.
  Trained more = make_model(12, {4, 6}, {6, 4}, 0);
  std::mt19937 rng(1);
  more.params.push_back(make_param("layers.0.v.lora_A.weight", {4, 6}, rng));
  more.opt = std::make_unique<AdamW>(more.ptrs(), AdamWSettings{});
  auto r2 = load_checkpoint(*saved, more.ptrs(), *more.opt);
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().message.find("no tensor 'layers.0.v.lora_A.weight'"), std::string::npos) << r2.error().message;
  Trained fewer = make_model(13, {4, 6}, {6, 4}, 0);
  fewer.params.pop_back();
  fewer.opt = std::make_unique<AdamW>(fewer.ptrs(), AdamWSettings{});
  auto r3 = load_checkpoint(*saved, fewer.ptrs(), *fewer.opt);
  ASSERT_FALSE(r3);
  EXPECT_NE(r3.error().message.find("has tensor 'layers.0.q.lora_B.weight' that the model does not"),
            std::string::npos)
      << r3.error().message;
}

TEST(Checkpoint, EditedConfigIsDetected) {
  auto dir = hearth::test::scratch("ckpt-edited");
  Trained a = make_model(14);
  auto saved = save_checkpoint(dir, make_state(1), a.cptrs(), *a.opt, 1);
  ASSERT_TRUE(saved);
  std::string js = hearth::test::read_text(*saved / "state.json");
  const auto pos = js.find("\"batch_size\": 4");
  ASSERT_NE(pos, std::string::npos);
  js.replace(pos, 15, "\"batch_size\": 8");
  hearth::test::write_text(*saved / "state.json", js);
  Trained b = make_model(15, {4, 6}, {6, 4}, 0);
  auto r = load_checkpoint(*saved, b.ptrs(), *b.opt);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::format);
  EXPECT_NE(r.error().message.find("does not match its hash"), std::string::npos) << r.error().message;
  hearth::test::write_text(*saved / "state.json", "{not json");
  auto r2 = load_checkpoint(*saved, b.ptrs(), *b.opt);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, ErrorCode::format);
}

TEST(Checkpoint, ResumeConfigMustMatchExceptHarmlessKeys) {
  TrainConfig c;
  c.model = "/m.gguf";
  c.data.train = "/d.jsonl";
  const std::string saved = config_to_json(c);
  TrainConfig same = c;
  same.training.threads = 3;
  same.eval.every = 5;
  same.checkpoint.keep = 4;
  same.name = "renamed";
  EXPECT_TRUE(check_resume_config(saved, config_to_json(same)));
  TrainConfig other = c;
  other.training.lr = 1e-3;
  auto r = check_resume_config(saved, config_to_json(other));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(r.error().message.find("training.lr was 0.0002"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("is 0.001 now"), std::string::npos) << r.error().message;
  other = c;
  other.lora.targets = {"q"};
  auto r2 = check_resume_config(saved, config_to_json(other));
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().message.find("lora.targets"), std::string::npos) << r2.error().message;
  EXPECT_FALSE(check_resume_config("[]", saved));
}
