/* Tests of estimate_gpu_inference(): every field of the estimate against the CUDA runner's allocation plan
 * written out by hand here (docs/gpu.md, "GPU memory estimate"), for a TinyLlama-shaped description built
 * in memory (F16 and Q4_K_M-style), and for tiny models written to disk and opened again.
 *
 * Non-obvious choice: the expected numbers use the block sizes of the GGUF spec typed in here (Q4_K: 144
 * bytes per 256 values, Q6_K: 210, Q8_0: 34 per 32), not row_nbytes(), so a wrong size table or a wrong
 * row count in the estimate shows up.
 */
#include <gtest/gtest.h>

#include <cstdint>

#include "hearth/gpu-estimate.h"
#include "hearth/model-writer.h"
#include "test-models.h"
#include "test-util.h"

using namespace hearth;

namespace {

constexpr uint64_t MiB = 1ull << 20;
const uint8_t DUMMY_BYTE = 0;  // TensorRef::present() needs a non-null pointer; the estimate never reads it

TensorRef ref(const char* name, std::vector<int64_t> shape, GgmlType type) {
  TensorRef t;
  t.name = name;
  t.shape = std::move(shape);
  t.type = type;
  t.data = &DUMMY_BYTE;
  return t;
}


// TinyLlama 1.1B: matrices of `type` (q4km: Q4_K with ffn_down, attn_v and output in Q6_K), F32 norms.
ModelDesc tinyllama_desc(GgmlType type, bool q4km = false) {
  ModelDesc d;
  d.params = test::tinyllama_shape();
  const auto& p = d.params;
  const GgmlType q6 = q4km ? GgmlType::Q6_K : type;
  d.tok_embd = ref("token_embd.weight", {p.n_embd, p.n_vocab}, type);
  d.output_norm = ref("output_norm.weight", {p.n_embd}, GgmlType::F32);
  d.output = ref("output.weight", {p.n_embd, p.n_vocab}, q6);
  for (int64_t i = 0; i < p.n_layer; ++i) {
    LayerTensors l;
    l.attn_norm = ref("attn_norm", {p.n_embd}, GgmlType::F32);
    l.wq = ref("wq", {p.n_embd, 2048}, type);
    l.wk = ref("wk", {p.n_embd, 256}, type);
    l.wv = ref("wv", {p.n_embd, 256}, q6);
    l.wo = ref("wo", {2048, p.n_embd}, type);
    l.ffn_norm = ref("ffn_norm", {p.n_embd}, GgmlType::F32);
    l.ffn_gate = ref("ffn_gate", {p.n_embd, p.n_ff}, type);
    l.ffn_up = ref("ffn_up", {p.n_embd, p.n_ff}, type);
    l.ffn_down = ref("ffn_down", {p.n_ff, p.n_embd}, q6);
    d.layers.push_back(l);
  }
  return d;
}

// The runner's activations for one chunk of `b` tokens at context `ctx` (TinyLlama shape), by hand.
uint64_t tinyllama_activations(uint64_t b, uint64_t ctx) {
  // x, xn, q, k, v, attention out, o, gate, up
  const uint64_t per_token = 2048 + 2048 + 2048 + 256 + 256 + 2048 + 2048 + 5632 + 5632;
  uint64_t splits = (ctx + 63) / 64;  // the split-KV decode kernel: >= 64 rows per split, <= 256 splits
  if (splits > 256) splits = 256;
  const uint64_t attn = splits > 1 ? 32 * splits * (64 + 2) * 4 : 0;
  const uint64_t logits = b * 32000 * 4;
  const uint64_t gemm_copy = b * 5632 * 2;
  const uint64_t small = (b + 1) * 4 + 32 * 8;  // token ids + position; head_dim/2 RoPE frequencies (double)
  return b * per_token * 4 + attn + logits + gemm_copy + small;
}

}  // namespace

TEST(GpuEstimate, TinyLlamaF16AtTrainingContext) {
  const ModelDesc d = tinyllama_desc(GgmlType::F16);
  const GpuMemoryEstimate e = estimate_gpu_inference(d, 0, 512);  // 0: the training context, 2048

  const uint64_t per_layer = 2048 * 4 + 2048 * 4 +                          // norms
                             (2048ull * 2048 * 2 + 2048ull * 256 * 2) * 2 +  // wq + wo, wk + wv
                             3ull * 2048 * 5632 * 2;                         // gate, up, down
  const uint64_t weights = 2ull * 32000 * 2048 * 2 + 2048 * 4 + 22 * per_layer;
  EXPECT_EQ(e.weights, weights);
  EXPECT_EQ(e.kv_cache, 46'137'344u);  // 22·2·2048·4·64·2
  EXPECT_EQ(e.activations, tinyllama_activations(512, 2048));
  EXPECT_EQ(e.dequant, 0u);  // nothing quantized: cuBLAS reads the F16 weights directly
  EXPECT_EQ(e.overhead, 600 * MiB);
  EXPECT_EQ(e.total, e.weights + e.kv_cache + e.activations + e.dequant + e.overhead);
  // About 2.2 GB of F16 weights for 1.1 B parameters: a sanity check of the scale.
  EXPECT_GT(e.weights, 2'150'000'000u);
  EXPECT_LT(e.weights, 2'250'000'000u);

  // An explicit context equal to the training context gives the same plan.
  const GpuMemoryEstimate same = estimate_gpu_inference(d, 2048, 512);
  EXPECT_EQ(same.total, e.total);
}

TEST(GpuEstimate, TinyLlamaQ4KMHasDequantBufferOfLargestQuantizedMatrix) {
  const ModelDesc d = tinyllama_desc(GgmlType::Q4_K, /*q4km=*/true);
  const GpuMemoryEstimate e = estimate_gpu_inference(d, 4096, 512);

  // Q4_K: 144 bytes per 256 values; Q6_K: 210 bytes per 256 values.
  const uint64_t q4_row2048 = 2048 / 256 * 144, q6_row2048 = 2048 / 256 * 210, q6_row5632 = 5632 / 256 * 210;
  const uint64_t per_layer = 2048 * 4 * 2 +                       // norms
                             q4_row2048 * (2048 + 256 + 2048) +   // wq (2048 rows), wk (256), wo (2048)
                             q6_row2048 * 256 +                   // wv
                             q4_row2048 * 5632 * 2 +              // gate, up
                             q6_row5632 * 2048;                   // down
  const uint64_t weights = q4_row2048 * 32000 + q6_row2048 * 32000 + 2048 * 4 + 22 * per_layer;
  EXPECT_EQ(e.weights, weights);
  EXPECT_EQ(e.kv_cache, 22ull * 2 * 4096 * 4 * 64 * 2);
  EXPECT_EQ(e.activations, tinyllama_activations(512, 4096));
  EXPECT_EQ(e.dequant, 32000ull * 2048 * 2);  // the embedding/output matrix in BF16
  EXPECT_GT(e.dequant, 0u);
  EXPECT_EQ(e.overhead, 600 * MiB);
  EXPECT_EQ(e.total, e.weights + e.kv_cache + e.activations + e.dequant + e.overhead);
}

TEST(GpuEstimate, ContextAndBatchScaleTheirParts) {
  const ModelDesc d = tinyllama_desc(GgmlType::F16);
  const GpuMemoryEstimate a = estimate_gpu_inference(d, 1024, 64);
  const GpuMemoryEstimate b = estimate_gpu_inference(d, 8192, 64);
  EXPECT_EQ(b.kv_cache, 8 * a.kv_cache);
  EXPECT_EQ(a.weights, b.weights);
  EXPECT_EQ(a.activations, tinyllama_activations(64, 1024));
  EXPECT_EQ(b.activations, tinyllama_activations(64, 8192));
  // A chunk never holds more tokens than the context; a batch below 1 means one token.
  EXPECT_EQ(estimate_gpu_inference(d, 100, 512).activations, tinyllama_activations(100, 100));
  EXPECT_EQ(estimate_gpu_inference(d, 100, 0).activations, tinyllama_activations(1, 100));
  // The decode scratch: none with one split (64 rows), and at most 256 splits however long the context.
  EXPECT_EQ(estimate_gpu_inference(d, 64, 1).activations, tinyllama_activations(1, 64));
  EXPECT_EQ(estimate_gpu_inference(d, 1 << 20, 1).activations - estimate_gpu_inference(d, 16384, 1).activations, 0u);
  EXPECT_EQ(estimate_gpu_inference(d, 16384, 1).activations - estimate_gpu_inference(d, 64, 1).activations,
            32u * 256 * 66 * 4);
}

TEST(GpuEstimate, TiedEmbeddingsCountOnce) {
  ModelDesc d = tinyllama_desc(GgmlType::F16);
  const uint64_t untied = estimate_gpu_inference(d, 2048).weights;
  d.params.tied_embeddings = true;
  d.output = TensorRef{};
  EXPECT_EQ(estimate_gpu_inference(d, 2048).weights, untied - 32000ull * 2048 * 2);
}

// A tiny model written as GGUF and opened again: the estimate's weights equal the file's matrix bytes plus
// the 1-D weights in F32, and the Q8_0 model's dequant buffer is its largest matrix in BF16.
TEST(GpuEstimate, WrittenGgufModels) {
  const ModelParams p = tiny_params(Architecture::qwen2, 64, 2, 96);  // q/k/v biases too
  auto w = make_random_weights(p, 7);
  ASSERT_TRUE(w) << w.error().message;
  const auto dir = test::scratch("gpu-estimate-gguf");

  for (GgmlType type : {GgmlType::F16, GgmlType::Q8_0}) {
    const auto path = dir / (std::string(type_name(type)) + ".gguf");
    GgufWriteOptions opt;
    opt.type = type;
    ASSERT_TRUE(write_gguf_model(*w, path, opt));
    auto m = open_model(path);
    ASSERT_TRUE(m) << m.error().message;
    const ModelDesc& d = m->desc();

    uint64_t weights = 0, largest = 0;
    for (const TensorRef* t : d.all_tensors()) {
      if (t->shape.size() == 1) {
        weights += uint64_t(t->n_elements()) * 4;
      } else {
        weights += t->nbytes;  // the file's own size of the tensor
        if (t->type == GgmlType::Q8_0) {
          EXPECT_EQ(t->nbytes, uint64_t(t->n_elements()) / 32 * 34) << t->name;
          largest = std::max<uint64_t>(largest, uint64_t(t->n_elements()));
        }
      }
    }
    const int64_t ctx = 128, batch = 16;
    const GpuMemoryEstimate e = estimate_gpu_inference(d, ctx, batch);
    EXPECT_EQ(e.weights, weights) << type_name(type);
    const int64_t hd = p.head_dim > 0 ? p.head_dim : p.n_embd / p.n_head;
    EXPECT_EQ(e.kv_cache, uint64_t(p.n_layer * 2 * ctx * p.n_head_kv * hd * 2));
    if (type == GgmlType::F16) {
      EXPECT_EQ(e.dequant, 0u);
    } else {
      EXPECT_GT(largest, 0u);
      EXPECT_EQ(e.dequant, largest * 2);
    }
    EXPECT_EQ(e.total, e.weights + e.kv_cache + e.activations + e.dequant + e.overhead);
  }
}

// A Hugging Face folder in BF16: matrices stay BF16, the BF16 norms and biases are uploaded as F32.
TEST(GpuEstimate, HfFolderBf16NormsCountAsF32) {
  const ModelParams p = tiny_params(Architecture::qwen2, 64, 2, 96);
  auto w = make_random_weights(p, 11);
  ASSERT_TRUE(w);
  const auto dir = test::scratch("gpu-estimate-hf") / "model";
  HfWriteOptions opt;
  opt.dtype = GgmlType::BF16;
  ASSERT_TRUE(write_hf_folder(*w, dir, opt));
  auto m = open_model(dir);
  ASSERT_TRUE(m) << m.error().message;
  uint64_t expect = 0;
  for (const TensorRef* t : m->desc().all_tensors())
    expect += uint64_t(t->n_elements()) * (t->shape.size() == 1 ? 4 : 2);
  EXPECT_EQ(estimate_gpu_inference(m->desc(), 64).weights, expect);
  EXPECT_EQ(estimate_gpu_inference(m->desc(), 64).dequant, 0u);
}
