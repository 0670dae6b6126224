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

// The TinyLlama 1.1B shape (22 layers, width 2048, 32 heads, 4 KV heads of 64, feed-forward 5632,
// vocabulary 32000, context 2048), for tests that compute its sizes without writing it.
inline ModelParams tinyllama_shape() {
  ModelParams p;
  p.arch = Architecture::llama;
  p.n_layer = 22;
  p.n_embd = 2048;
  p.n_head = 32;
  p.n_head_kv = 4;
  p.head_dim = 64;
  p.n_ff = 5632;
  p.n_vocab = 32000;
  p.n_ctx_train = 2048;
  return p;
}

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
