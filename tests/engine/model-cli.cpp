/* Integration test (label `integration`): `hearth-cli info` on the real test GGUF and on a Hugging Face
 * folder written by the model writer, checking the fields of its --json output and its error contract
 * (one line on stderr, nothing on stdout, non-zero exit).
 */
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "hearth/gguf.h"
#include "hearth/model-writer.h"
#include "hearth/tokenizer.h"
#include "test-util.h"

using namespace hearth;
using nlohmann::json;

namespace {
json info_json(const std::string& model) {
  auto r = hearth::test::run(hearth::test::cli() + " info '" + model + "' --json");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  try {
    return json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON: " << r.out;
    return json::object();
  }
}
}  // namespace

TEST(CliInfo, TestGgufShowsItsRealHyperParameters) {
  const std::string path = hearth::test::testdata("models/llama-2-tiny-random.gguf").string();
  json j = info_json(path);
  EXPECT_EQ(j["format"], "gguf");
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["hyperparameters"]["n_layer"], 1);
  EXPECT_EQ(j["hyperparameters"]["n_embd"], 8);
  EXPECT_EQ(j["hyperparameters"]["n_head"], 2);
  EXPECT_EQ(j["hyperparameters"]["n_head_kv"], 2);
  EXPECT_EQ(j["hyperparameters"]["n_ff"], 32);
  EXPECT_EQ(j["hyperparameters"]["n_vocab"], 32000);
  EXPECT_EQ(j["hyperparameters"]["n_ctx_train"], 4096);
  EXPECT_EQ(j["hyperparameters"]["rms_eps"], 1e-5);  // printed in its shortest form
  EXPECT_EQ(j["hyperparameters"]["rope_theta"], 10000.0);
  EXPECT_EQ(j["n_params"], 513048);
  EXPECT_EQ(j["file_size"], std::filesystem::file_size(path));
  EXPECT_EQ(j["tensor_types"]["F16"], 9);  // embedding, output, 4 attention, 3 feed-forward
  EXPECT_EQ(j["tensor_types"]["F32"], 3);
  EXPECT_EQ(j["tokenizer"]["kind"], "sentencepiece");
  EXPECT_EQ(j["tokenizer"]["n_tokens"], 32000);
  EXPECT_EQ(j["tokenizer"]["bos_id"], 1);
  EXPECT_EQ(j["tokenizer"]["eos_id"], 2);
  EXPECT_EQ(j["chat_template"], false);

  auto text = hearth::test::run(hearth::test::cli() + " info '" + path + "'");
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("architecture:    llama"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("(513048)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("32000 tokens"), std::string::npos) << text.out;
}

TEST(CliInfo, HfFolderWrittenByTheWriter) {
  ModelParams p = tiny_params(Architecture::qwen3, 64, 3, 50);
  auto w = make_random_weights(p, 8);
  ASSERT_TRUE(w);
  auto dir = hearth::test::scratch("cli-hf") / "tiny-qwen3";
  HfWriteOptions opt;
  opt.dtype = GgmlType::BF16;
  opt.chat_template = "{{ bos_token }}";
  opt.eos_ids = {7};
  ASSERT_TRUE(write_hf_folder(*w, dir, opt));
  json j = info_json(dir.string());
  EXPECT_EQ(j["format"], "hf-folder");
  EXPECT_EQ(j["name"], "tiny-qwen3");
  EXPECT_EQ(j["architecture"], "qwen3");
  EXPECT_EQ(j["hyperparameters"]["n_layer"], 3);
  EXPECT_EQ(j["hyperparameters"]["head_dim"], p.head_dim);
  EXPECT_EQ(j["hyperparameters"]["has_qk_norm"], true);
  EXPECT_EQ(j["hyperparameters"]["tied_embeddings"], true);
  EXPECT_EQ(j["tensor_types"]["BF16"], j["n_tensors"]);
  EXPECT_EQ(j["chat_template"], true);
  EXPECT_EQ(j["tokenizer"]["eos_id"], 7);
  EXPECT_EQ(j["rope_layout"], "half-split");
}

TEST(CliInfo, FailuresAreOneLineOnStderr) {
  auto r = hearth::test::run(hearth::test::cli() + " info /no/such/model.gguf");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("/no/such/model.gguf"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  auto dir = hearth::test::scratch("cli-bad");
  hearth::test::write_text(dir / "junk.gguf", "this is not a model");
  r = hearth::test::run(hearth::test::cli() + " info '" + (dir / "junk.gguf").string() + "' --json");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// The real test GGUF (converted by llama.cpp from a Hugging Face checkpoint) converted back into a
// Hugging Face folder: `info` must describe the same network, and the numpy reference must find the
// GGUF q/k rows equal to llama.cpp's permutation of the folder's rows.
TEST(CliInfo, RealGgufConvertedToHfFolderDescribesTheSameModel) {
  const auto gguf_path = hearth::test::testdata("models/llama-2-tiny-random.gguf");
  auto m = open_model(gguf_path);
  ASSERT_TRUE(m) << m.error().message;
  auto dir = hearth::test::scratch("cli-convert");
  auto tok = Tokenizer::from_gguf(*m->gguf());
  ASSERT_TRUE(tok) << tok.error().message;
  ASSERT_TRUE(tok->save_hf_folder(dir / "tok"));
  auto w = read_weights(*m);
  ASSERT_TRUE(w) << w.error().message;
  HfWriteOptions opt;
  opt.tokenizer_file = dir / "tok" / "tokenizer.model";
  ASSERT_TRUE(write_hf_folder(*w, dir / "hf", opt));

  json g = info_json(gguf_path.string());
  json h = info_json((dir / "hf").string());
  EXPECT_EQ(g["hyperparameters"], h["hyperparameters"]);
  EXPECT_EQ(g["n_params"], h["n_params"]);
  EXPECT_EQ(h["tokenizer"]["kind"], "sentencepiece");
  EXPECT_EQ(h["tokenizer"]["n_tokens"], 32000);
  EXPECT_EQ(h["tokenizer"]["add_bos"], true);
  EXPECT_EQ(h["tokenizer"]["bos_id"], 1) << "from the SentencePiece model itself";
  EXPECT_EQ(h["tokenizer"]["eos_id"], 2);
  EXPECT_EQ(h["tokenizer"]["eos_token"], "</s>");
  EXPECT_EQ(h["rope_layout"], "half-split");
  EXPECT_EQ(g["rope_layout"], "interleaved");

  auto r = hearth::test::run(std::string(HEARTH_PYTHON) + " '" +
                             hearth::test::source_dir("tests/reference/model-permute-ref.py").string() + "' '" +
                             (dir / "hf").string() + "' '" + gguf_path.string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("12 tensors equal, 2 of them after"), std::string::npos) << r.out;
}
