/* LoRA against an independent reference (label reference): the engine's logits of a base model with an
 * adapter file (PEFT folder and GGUF adapter) equal those of tests/reference/torch_lora.py, which applies
 * the adapter by PEFT's and llama.cpp's definitions in float64 on top of torch_llama.py's forward pass.
 * Covers llama as GGUF (interleaved q/k rows: the adapter's B rows must follow them) and as a Hugging
 * Face folder, and qwen2 (biases, tied embeddings).
 */
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "hearth/inference.h"
#include "lora-fixtures.h"
#include "must.h"
#include "test-util.h"

using namespace hearth;
using hearth::test::must;
namespace fs = std::filesystem;

namespace {

const std::vector<TokenId> TOKS = {1, 17, 42, 5, 88, 13, 64, 2, 9, 33, 71};

std::vector<double> read_f64(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<double> v;
  double x;
  while (in.read(reinterpret_cast<char*>(&x), sizeof x)) v.push_back(x);
  return v;
}

}  // namespace

TEST(LoraReference, AdapterFilesMatchTorch) {
  auto dir = test::scratch("lora-reference");
  struct Case {
    std::string name;
    fs::path model, adapter;
  };
  std::vector<Case> cases;
  for (auto arch : {Architecture::llama, Architecture::qwen2}) {
    ModelWeights w = must(make_random_weights(tiny_params(arch), 21));
    const std::string a = architecture_name(arch);
    must(write_gguf_model(w, dir / (a + ".gguf")));
    must(write_hf_folder(w, dir / (a + "-hf")));
    Model base = must(open_model(dir / (a + ".gguf")));
    LoraAdapter ad = test::random_adapter(w.params, 4, 12.0f, 33);
    ad.layers[0].wv.reset();  // not every module everywhere
    must(save_gguf_lora(ad, base.desc(), dir / (a + "-lora.gguf")));
    must(save_peft_adapter(ad, base.desc(), dir / (a + "-peft")));
    cases.push_back({a + " gguf + gguf adapter", dir / (a + ".gguf"), dir / (a + "-lora.gguf")});
    cases.push_back({a + " gguf + peft", dir / (a + ".gguf"), dir / (a + "-peft")});
    cases.push_back({a + " hf + gguf adapter", dir / (a + "-hf"), dir / (a + "-lora.gguf")});
    cases.push_back({a + " hf + peft", dir / (a + "-hf"), dir / (a + "-peft")});
  }
  std::string toks, pairs;
  for (TokenId t : TOKS) toks += std::to_string(t) + " ";
  for (auto& c : cases) pairs += " '" + c.model.string() + "' '" + c.adapter.string() + "'";
  auto r = test::run(std::string(HEARTH_PYTHON) + " '" + test::source_dir("tests/reference/torch_lora.py").string() +
                     "' --tokens '" + toks + "' --out '" + (dir / "ref").string() + "'" + pairs);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    Model m = must(open_model(cases[i].model));
    InferenceOptions o;
    o.n_threads = 2;
    o.kv_type = KvType::f32;
    o.quantized_activations = false;
    o.lora = std::make_shared<const LoraAdapter>(must(load_lora_adapter(cases[i].adapter, m.desc())));
    auto s = must(InferenceSession::create(m, o));
    std::vector<float> got;
    must(s->eval(TOKS, &got, true));
    auto want = read_f64(dir / "ref" / (std::to_string(i) + ".logits"));
    ASSERT_EQ(got.size(), want.size());
    double err = 0, mx = 0;
    for (size_t j = 0; j < got.size(); ++j) {
      err = std::max(err, std::abs(double(got[j]) - want[j]));
      mx = std::max(mx, std::abs(want[j]));
    }
    std::printf("%-28s max |logit - torch| / max |logit| = %.3g\n", cases[i].name.c_str(), err / mx);
    EXPECT_LT(err / mx, 1e-4);
  }
}
