/* Test models written on the fly: a tiny random llama that carries the real Llama 2 vocabulary (copied
 * from the shared tiny GGUF) and Phi-3.5's chat template, for the tests of commands that need a
 * template (the shared file has none). Weights are random, so only shapes and plumbing are tested.
 */
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "hearth/gguf.h"
#include "hearth/model-writer.h"
#include "test-util.h"

namespace hearth::test {

// Writes the model once per process into scratch(`scratch_name`)/chat.gguf (training context n_ctx_train
// when > 0, else tiny_params's) and returns its path, or a
// parenthesised reason when the shared file cannot be read (the caller's open then fails clearly).
inline std::string tiny_chat_model(const std::string& scratch_name, uint64_t seed, int64_t n_ctx_train = 0) {
  auto src = GgufFile::open(testdata("models/llama-2-tiny-random.gguf"));
  if (!src) return "(cannot open the shared tiny model: " + src.error().to_string() + ")";
  auto tokens = src->get_string_array("tokenizer.ggml.tokens");
  auto scores = src->get_float_array("tokenizer.ggml.scores");
  auto types = src->get_int_array("tokenizer.ggml.token_type");
  if (!tokens || !scores || !types) return "(tokenizer arrays missing in the shared tiny model)";
  TokenizerData td;
  td.model = "llama";
  td.tokens = *tokens;
  td.scores = *scores;
  for (int64_t t : *types) td.token_types.push_back(int32_t(t));
  td.bos_id = 1;
  td.eos_id = 2;
  td.add_bos = true;
  td.chat_template = read_text(testdata("chat-templates/microsoft-Phi-3.5-mini-instruct.jinja"));
  ModelParams params = tiny_params(Architecture::llama, 64, 1, 32000);
  if (n_ctx_train > 0) params.n_ctx_train = n_ctx_train;
  auto w = make_random_weights(params, seed);
  EXPECT_TRUE(w);
  if (!w) return "(random weights failed)";
  GgufWriteOptions o;
  o.tokenizer = td;
  auto p = scratch(scratch_name) / "chat.gguf";
  EXPECT_TRUE(write_gguf_model(*w, p, o));
  return p.string();
}

}  // namespace hearth::test
