/* TrainModel: the llama / qwen2 / qwen3 network with a forward pass that keeps its activations in one
 * arena and a backward pass that accumulates into the trainable Params (LoRA factors, or every weight).
 *
 * Non-obvious choice: everything downstream of the q/k projections runs in the Hugging Face
 * (half-split) layout, whatever the base file stores. A GGUF llama base keeps its wq/wk rows in the
 * interleaved order llama.cpp's converter wrote, and is used as stored (no copy of the matrix): the
 * base product's output columns are un-permuted per head right after the product (and the gradient
 * re-permuted before the base's backward product). So the LoRA factors, the biases, the q/k norm and
 * RoPE all see one convention, the one the Params, the PEFT export and the PyTorch reference speak.
 *
 * Frozen base weights that are not plain aligned F32 (F16, BF16, quantized) are dequantized one layer
 * at a time into a reused buffer, in forward and again in backward; only the output matrix (needed
 * whole by the classifier every step) is dequantized once and kept.
 */
#include "hearth/trainer/train-model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>

#include "ops.h"

namespace hearth::train {

namespace {

constexpr int N_TARGETS = 7;
enum Target { T_Q = 0, T_K, T_V, T_O, T_GATE, T_UP, T_DOWN };
constexpr std::array<const char*, N_TARGETS> TARGET_NAMES = {"q", "k", "v", "o", "gate", "up", "down"};
constexpr std::array<const char*, N_TARGETS> TARGET_HF = {"self_attn.q_proj", "self_attn.k_proj",
                                                           "self_attn.v_proj", "self_attn.o_proj",
                                                           "mlp.gate_proj",    "mlp.up_proj",
                                                           "mlp.down_proj"};

// Thrown inside, turned into an Error at the public boundary.
struct TrainError : std::runtime_error {
  ErrorCode code;
  std::string hint;
  TrainError(ErrorCode c, const std::string& m, std::string h = {})
      : std::runtime_error(m), code(c), hint(std::move(h)) {}
};

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

bool usable_as_f32(const TensorRef& t) {
  return t.type == GgmlType::F32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0;
}

// Dequantizes a whole tensor into dst, rows in parallel (rows are independent, so the result does not
// depend on the thread count).
void dequant_into(const TensorRef& t, float* dst) {
  const int64_t row = t.shape.empty() ? 1 : t.shape[0];
  const int64_t rows = t.n_elements() / row;
  auto rb = row_nbytes(t.type, row);
  if (!rb) throw TrainError(ErrorCode::unsupported, "tensor '" + t.name + "': " + rb.error().message);
  const uint64_t rbytes = *rb;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) (void)dequantize(t.type, t.data + uint64_t(r) * rbytes, dst + r * row, row);
}

// Gradient buffers are zeroed on every layer; in parallel, so the other threads do not wait for it.
void fill_zero(float* p, int64_t n) {
  constexpr int64_t BLOCK = int64_t(1) << 16;
  const int64_t blocks = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t lo = b * BLOCK, hi = std::min(n, lo + BLOCK);
    std::memset(p + lo, 0, size_t(hi - lo) * sizeof(float));
  }
}

void copy_f(float* dst, const float* src, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

// Interleaved (GGUF llama) <-> half-split (Hugging Face) columns of (n, heads·hd) rows: stored column
// 2i+s of a head is Hugging Face column s·hd/2 + i.
void perm_to_hf(float* dst, const float* src, int64_t n, int64_t heads, int64_t hd) {
  const int64_t half = hd / 2, w = heads * hd;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n; ++r)
    for (int64_t h = 0; h < heads; ++h) {
      const float* s = src + r * w + h * hd;
      float* d = dst + r * w + h * hd;
      for (int64_t i = 0; i < half; ++i) {
        d[i] = s[2 * i];
        d[half + i] = s[2 * i + 1];
      }
    }
}
void perm_from_hf(float* dst, const float* src, int64_t n, int64_t heads, int64_t hd) {
  const int64_t half = hd / 2, w = heads * hd;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n; ++r)
    for (int64_t h = 0; h < heads; ++h) {
      const float* s = src + r * w + h * hd;
      float* d = dst + r * w + h * hd;
      for (int64_t i = 0; i < half; ++i) {
        d[2 * i] = s[i];
        d[2 * i + 1] = s[half + i];
      }
    }
}

// Bump allocation over the arena: a first pass with base == nullptr only measures.
struct Bump {
  float* base = nullptr;
  size_t off = 0;
  float* take(int64_t n) {
    float* p = base ? base + off : nullptr;
    off += (size_t(std::max<int64_t>(n, 0)) + 15) & ~size_t(15);  // 64-byte steps
    return p;
  }
};

}  // namespace

// One layer's weights as F32 pointers for this step, and where their gradients go (null: frozen).
struct LayerView {
  const float *attn_norm = nullptr, *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;
  const float *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr, *q_norm = nullptr, *k_norm = nullptr;
  const float *ffn_norm = nullptr, *gate = nullptr, *up = nullptr, *down = nullptr;
  float *d_attn_norm = nullptr, *d_wq = nullptr, *d_wk = nullptr, *d_wv = nullptr, *d_wo = nullptr;
  float *d_bq = nullptr, *d_bk = nullptr, *d_bv = nullptr, *d_bo = nullptr, *d_q_norm = nullptr,
        *d_k_norm = nullptr;
  float *d_ffn_norm = nullptr, *d_gate = nullptr, *d_up = nullptr, *d_down = nullptr;
};

// Saved activations of one layer (all (N, ·) row-major, N = B·T).
struct LayerActs {
  float* rstd1 = nullptr;                         // attention norm: 1/rms (N); its output is recomputed
  float *q_lin = nullptr, *rstd_q = nullptr;      // qk-norm only: q before the norm (N, Q), (N·Hq)
  float *k_lin = nullptr, *rstd_k = nullptr;      // (N, K), (N·Hkv)
  float *q = nullptr, *k = nullptr, *v = nullptr; // after bias, norm and RoPE: (N, Q), (N, K), (N, K)
  float* att = nullptr;                           // softmax probabilities (B, Hq, T, T)
  float* ao = nullptr;                            // attention output (N, Q)
  float* x_mid = nullptr;                         // residual after attention (N, D)
  float* rstd2 = nullptr;                         // ffn norm: 1/rms (N); its output is recomputed
  float *gate = nullptr, *up = nullptr;           // (N, F) each
  std::array<float*, N_TARGETS> u{};              // LoRA: dropout(x) · A^T (N, rank)
};

struct TrainModel::Impl {
  ModelParams p;
  ModelOptions opt;
  const Model* base = nullptr;  // lora only
  bool permuted_qk = false;     // lora on a base whose q/k rows are interleaved
  std::vector<float> inv_freq;
  int64_t L = 0, D = 0, Hq = 0, Hkv = 0, hd = 0, Q = 0, K = 0, F = 0, V = 0, R = 0;

  std::vector<Param> params;  // the trainable tensors in their fixed order

  // full / pretrain: indices into params (-1: absent)
  struct FullLayer {
    int attn_norm = -1, wq = -1, bq = -1, wk = -1, bk = -1, wv = -1, bv = -1, wo = -1, bo = -1, q_norm = -1,
        k_norm = -1, ffn_norm = -1, gate = -1, up = -1, down = -1;
  };
  std::vector<FullLayer> full;
  int embed = -1, norm = -1, lm_head = -1;

  // lora: per layer and target, the index of A (B follows it); -1: not a target
  std::vector<std::array<int, N_TARGETS>> lora;

  // frozen-base buffers (lora)
  std::vector<float> layer_buf;  // one layer's non-F32 weights dequantized
  std::vector<float> out_buf;    // the output matrix dequantized (kept: frozen, used every step)
  std::vector<float> norm_buf;   // the final norm when not F32

  // activations
  std::unique_ptr<float[]> arena;
  size_t arena_cap = 0;
  std::vector<float> cls_scratch;
  std::unique_ptr<TrainModel::Structure> structure;  // structure()'s answer, made on first use

  // step layout (pointers into the arena)
  int64_t B = 0, T = 0, N = 0;
  std::vector<float*> xs;        // residual stream: xs[l] is layer l's input, xs[L] the last output
  std::vector<LayerActs> acts;   // L sets (keep all) or 1 (recompute / evaluate)
  float *xf = nullptr, *rstd_f = nullptr;
  float* hn = nullptr;  // a norm's output (N, D): h1, then h2; not kept per layer (cheap to redo)
  float *hswi = nullptr, *dhswi = nullptr, *dgate = nullptr, *dup = nullptr, *dh = nullptr, *dao = nullptr;
  float *dq = nullptr, *dk = nullptr, *dv = nullptr, *dq_lin = nullptr, *dk_lin = nullptr;
  float *tmp1 = nullptr, *tmp2 = nullptr, *du = nullptr, *dx = nullptr, *dxf = nullptr;

  bool is_lora() const { return opt.method == Method::lora; }
  const float* pv(int i) const { return i < 0 ? nullptr : params[size_t(i)].value.data(); }
  float* pg(int i) { return i < 0 ? nullptr : params[size_t(i)].grad.data(); }
  Param* lora_a(int64_t l, int t) {
    int i = lora[size_t(l)][size_t(t)];
    return i < 0 ? nullptr : &params[size_t(i)];
  }
  Param* lora_b(int64_t l, int t) {
    int i = lora[size_t(l)][size_t(t)];
    return i < 0 ? nullptr : &params[size_t(i) + 1];
  }

  // ---- set-up --------------------------------------------------------------------------------------

  void set_shape(const ModelParams& mp) {
    p = mp;
    L = p.n_layer, D = p.n_embd, Hq = p.n_head, Hkv = p.n_head_kv, hd = p.head_dim;
    Q = Hq * hd, K = Hkv * hd, F = p.n_ff, V = p.n_vocab;
  }

  int add_param(std::string name, std::vector<int64_t> shape, std::vector<float> value, bool decay) {
    Param prm;
    prm.name = std::move(name);
    prm.shape = std::move(shape);
    prm.value = std::move(value);
    if (int64_t(prm.value.size()) != prm.numel())
      throw TrainError(ErrorCode::internal, "weight '" + prm.name + "' has " + std::to_string(prm.value.size()) +
                                                " values, expected " + std::to_string(prm.numel()));
    prm.grad.assign(prm.value.size(), 0.0f);
    prm.decay = decay;
    params.push_back(std::move(prm));
    return int(params.size() - 1);
  }

  void build_full(ModelWeights&& w) {
    auto chk = check_weights(w);
    if (!chk) throw TrainError(chk.error().code, chk.error().message, chk.error().hint);
    embed = add_param("model.embed_tokens.weight", {V, D}, std::move(w.tok_embd), true);
    full.resize(size_t(L));
    for (int64_t l = 0; l < L; ++l) {
      LayerWeights& lw = w.layers[size_t(l)];
      FullLayer& f = full[size_t(l)];
      std::string pre = "model.layers." + std::to_string(l) + ".";
      f.attn_norm = add_param(pre + "input_layernorm.weight", {D}, std::move(lw.attn_norm), false);
      f.wq = add_param(pre + "self_attn.q_proj.weight", {Q, D}, std::move(lw.wq), true);
      if (!lw.bq.empty()) f.bq = add_param(pre + "self_attn.q_proj.bias", {Q}, std::move(lw.bq), false);
      f.wk = add_param(pre + "self_attn.k_proj.weight", {K, D}, std::move(lw.wk), true);
      if (!lw.bk.empty()) f.bk = add_param(pre + "self_attn.k_proj.bias", {K}, std::move(lw.bk), false);
      f.wv = add_param(pre + "self_attn.v_proj.weight", {K, D}, std::move(lw.wv), true);
      if (!lw.bv.empty()) f.bv = add_param(pre + "self_attn.v_proj.bias", {K}, std::move(lw.bv), false);
      f.wo = add_param(pre + "self_attn.o_proj.weight", {D, Q}, std::move(lw.wo), true);
      if (!lw.bo.empty()) f.bo = add_param(pre + "self_attn.o_proj.bias", {D}, std::move(lw.bo), false);
      if (!lw.q_norm.empty()) f.q_norm = add_param(pre + "self_attn.q_norm.weight", {hd}, std::move(lw.q_norm), false);
      if (!lw.k_norm.empty()) f.k_norm = add_param(pre + "self_attn.k_norm.weight", {hd}, std::move(lw.k_norm), false);
      f.ffn_norm = add_param(pre + "post_attention_layernorm.weight", {D}, std::move(lw.ffn_norm), false);
      f.gate = add_param(pre + "mlp.gate_proj.weight", {F, D}, std::move(lw.ffn_gate), true);
      f.up = add_param(pre + "mlp.up_proj.weight", {F, D}, std::move(lw.ffn_up), true);
      f.down = add_param(pre + "mlp.down_proj.weight", {D, F}, std::move(lw.ffn_down), true);
    }
    norm = add_param("model.norm.weight", {D}, std::move(w.output_norm), false);
    if (!p.tied_embeddings) lm_head = add_param("lm_head.weight", {V, D}, std::move(w.output), true);
  }

  void build_lora() {
    const ModelDesc& d = base->desc();
    const LoraSettings& ls = opt.lora;
    R = ls.rank;
    std::array<bool, N_TARGETS> on{};
    for (const std::string& t : ls.targets)
      for (int i = 0; i < N_TARGETS; ++i)
        if (t == TARGET_NAMES[size_t(i)]) on[size_t(i)] = true;
    lora.assign(size_t(L), {});
    for (int64_t l = 0; l < L; ++l) {
      for (int t = 0; t < N_TARGETS; ++t) {
        lora[size_t(l)][size_t(t)] = -1;
        if (!on[size_t(t)]) continue;
        const auto [in, out] = target_dims(t);
        std::string pre = "model.layers." + std::to_string(l) + "." + TARGET_HF[size_t(t)] + ".";
        // PEFT's default: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)); B = 0.
        std::vector<float> a(size_t(R * in));
        std::mt19937_64 rng(mix64(opt.seed ^ mix64(uint64_t(l) * N_TARGETS + uint64_t(t) + 1)));
        const float bound = 1.0f / std::sqrt(float(in));
        std::uniform_real_distribution<float> uni(-bound, bound);
        for (float& x : a) x = uni(rng);
        lora[size_t(l)][size_t(t)] = add_param(pre + "lora_A.weight", {R, in}, std::move(a), true);
        add_param(pre + "lora_B.weight", {out, R}, std::vector<float>(size_t(out * R), 0.0f), true);
      }
    }
    permuted_qk = d.rope_layout == RopeLayout::interleaved;
    // Size the per-layer dequantization buffer and check every frozen tensor can be converted.
    size_t most = 0;
    for (const LayerTensors& lt : d.layers) {
      size_t need = 0;
      for (const TensorRef* t : {&lt.attn_norm, &lt.wq, &lt.wk, &lt.wv, &lt.wo, &lt.bq, &lt.bk, &lt.bv, &lt.bo,
                                 &lt.q_norm, &lt.k_norm, &lt.ffn_norm, &lt.ffn_gate, &lt.ffn_up, &lt.ffn_down}) {
        if (!t->present()) continue;
        check_convertible(*t);
        if (!usable_as_f32(*t)) need += (size_t(t->n_elements()) + 15) & ~size_t(15);
      }
      most = std::max(most, need);
    }
    layer_buf.assign(most, 0.0f);
    check_convertible(d.tok_embd);
    check_convertible(d.output_weight());
    check_convertible(d.output_norm);
    if (!usable_as_f32(d.output_weight())) {
      out_buf.resize(size_t(d.output_weight().n_elements()));
      dequant_into(d.output_weight(), out_buf.data());
    }
    if (!usable_as_f32(d.output_norm)) {
      norm_buf.resize(size_t(D));
      dequant_into(d.output_norm, norm_buf.data());
    }
  }

  static void check_convertible(const TensorRef& t) {
    if (!t.present()) throw TrainError(ErrorCode::format, "the base model lacks tensor '" + t.name + "'");
    const TypeTraits* tr = type_traits(t.type);
    if (!tr || !tr->supported)
      throw TrainError(ErrorCode::unsupported, "tensor '" + t.name + "' has type " + type_name(t.type) +
                                                   ", which Hearth cannot dequantize");
    if (t.shape.empty() || !row_nbytes(t.type, t.shape[0]))
      throw TrainError(ErrorCode::format, "tensor '" + t.name + "': rows do not fit its type's blocks");
  }

  std::pair<int64_t, int64_t> target_dims(int t) const {  // {in, out}
    switch (t) {
      case T_Q: return {D, Q};
      case T_K: return {D, K};
      case T_V: return {D, K};
      case T_O: return {Q, D};
      case T_GATE: return {D, F};
      case T_UP: return {D, F};
      default: return {F, D};
    }
  }

  void set_inv_freq(const std::vector<float>& factors) {
    if (factors.empty()) {
      inv_freq = ops::rope_inv_freq(p);
      return;
    }
    ModelParams plain = p;
    plain.rope_scaling = RopeScaling{};
    inv_freq = ops::rope_inv_freq(plain);
    for (size_t i = 0; i < inv_freq.size() && i < factors.size(); ++i) inv_freq[i] /= factors[i];
  }

  // ---- weights of one layer for this step ------------------------------------------------------------

  LayerView view_layer(int64_t l) {
    LayerView w;
    if (!is_lora()) {
      const FullLayer& f = full[size_t(l)];
      w.attn_norm = pv(f.attn_norm), w.wq = pv(f.wq), w.wk = pv(f.wk), w.wv = pv(f.wv), w.wo = pv(f.wo);
      w.bq = pv(f.bq), w.bk = pv(f.bk), w.bv = pv(f.bv), w.bo = pv(f.bo), w.q_norm = pv(f.q_norm),
      w.k_norm = pv(f.k_norm), w.ffn_norm = pv(f.ffn_norm), w.gate = pv(f.gate), w.up = pv(f.up),
      w.down = pv(f.down);
      w.d_attn_norm = pg(f.attn_norm), w.d_wq = pg(f.wq), w.d_wk = pg(f.wk), w.d_wv = pg(f.wv),
      w.d_wo = pg(f.wo), w.d_bq = pg(f.bq), w.d_bk = pg(f.bk), w.d_bv = pg(f.bv), w.d_bo = pg(f.bo),
      w.d_q_norm = pg(f.q_norm), w.d_k_norm = pg(f.k_norm), w.d_ffn_norm = pg(f.ffn_norm),
      w.d_gate = pg(f.gate), w.d_up = pg(f.up), w.d_down = pg(f.down);
      return w;
    }
    const LayerTensors& lt = base->desc().layers[size_t(l)];
    size_t off = 0;
    auto get = [&](const TensorRef& t) -> const float* {
      if (!t.present()) return nullptr;
      if (usable_as_f32(t)) return reinterpret_cast<const float*>(t.data);
      float* dst = layer_buf.data() + off;
      off += (size_t(t.n_elements()) + 15) & ~size_t(15);
      dequant_into(t, dst);
      return dst;
    };
    w.attn_norm = get(lt.attn_norm), w.wq = get(lt.wq), w.wk = get(lt.wk), w.wv = get(lt.wv), w.wo = get(lt.wo);
    w.bq = get(lt.bq), w.bk = get(lt.bk), w.bv = get(lt.bv), w.bo = get(lt.bo);
    w.q_norm = get(lt.q_norm), w.k_norm = get(lt.k_norm), w.ffn_norm = get(lt.ffn_norm);
    w.gate = get(lt.ffn_gate), w.up = get(lt.ffn_up), w.down = get(lt.ffn_down);
    return w;
  }

  const float* output_matrix() const {
    if (!is_lora()) return pv(p.tied_embeddings ? embed : lm_head);
    if (!out_buf.empty()) return out_buf.data();
    return reinterpret_cast<const float*>(base->desc().output_weight().data);
  }
  const float* final_norm() const {
    if (!is_lora()) return pv(norm);
    if (!norm_buf.empty()) return norm_buf.data();
    return reinterpret_cast<const float*>(base->desc().output_norm.data);
  }

  void embed_tokens(float* x, const int32_t* tokens) {
    if (!is_lora()) {
      ops::embedding_forward(x, pv(embed), tokens, N, D);
      return;
    }
    const TensorRef& te = base->desc().tok_embd;
    if (usable_as_f32(te)) {
      ops::embedding_forward(x, reinterpret_cast<const float*>(te.data), tokens, N, D);
    } else if (p.tied_embeddings && !out_buf.empty()) {
      ops::embedding_forward(x, out_buf.data(), tokens, N, D);
    } else {
      const uint64_t rb = *row_nbytes(te.type, D);
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < N; ++i)
        (void)dequantize(te.type, te.data + uint64_t(tokens[i]) * rb, x + i * D, D);
    }
  }

  // ---- arena layout ------------------------------------------------------------------------------------

  void plan(Bump& bm, bool keep_all) {
    const int64_t Fmax = std::max({D, F, Q});
    xs.assign(size_t(L + 1), nullptr);
    for (auto& x : xs) x = bm.take(N * D);
    acts.assign(size_t(keep_all ? std::max<int64_t>(L, 1) : 1), LayerActs{});
    for (size_t i = 0; i < acts.size(); ++i) {
      LayerActs& a = acts[i];
      a.rstd1 = bm.take(N);
      if (p.has_qk_norm) {
        a.q_lin = bm.take(N * Q), a.rstd_q = bm.take(N * Hq);
        a.k_lin = bm.take(N * K), a.rstd_k = bm.take(N * Hkv);
      }
      a.q = bm.take(N * Q), a.k = bm.take(N * K), a.v = bm.take(N * K);
      a.att = bm.take(B * Hq * T * T);
      a.ao = bm.take(N * Q);
      a.x_mid = bm.take(N * D);
      a.rstd2 = bm.take(N);
      a.gate = bm.take(N * F), a.up = bm.take(N * F);
      if (is_lora())
        for (int t = 0; t < N_TARGETS; ++t)
          if (any_layer_targets(t)) a.u[size_t(t)] = bm.take(N * R);
    }
    xf = bm.take(N * D), rstd_f = bm.take(N);
    hn = bm.take(N * D);
    hswi = bm.take(N * F);
    tmp1 = bm.take(N * Fmax);
    tmp2 = bm.take(N * Fmax);
    if (grads_wanted) {
      dhswi = bm.take(N * F), dgate = bm.take(N * F), dup = bm.take(N * F);
      dh = bm.take(N * D), dao = bm.take(N * Q);
      dq = bm.take(N * Q), dk = bm.take(N * K), dv = bm.take(N * K);
      if (p.has_qk_norm) dq_lin = bm.take(N * Q), dk_lin = bm.take(N * K);
      du = bm.take(N * std::max<int64_t>(R, 1));
      dx = bm.take(N * D), dxf = bm.take(N * D);
    } else {
      dhswi = dgate = dup = dh = dao = dq = dk = dv = dq_lin = dk_lin = du = dx = dxf = nullptr;
    }
  }
  bool grads_wanted = false;

  bool any_layer_targets(int t) const {
    for (const auto& row : lora)
      if (row[size_t(t)] >= 0) return true;
    return false;
  }

  void layout(int64_t b, int64_t t, bool keep_all, bool grads) {
    B = b, T = t, N = b * t;
    grads_wanted = grads;
    Bump measure;
    plan(measure, keep_all);
    if (measure.off > arena_cap) {
      arena.reset();  // free first: the peak is the new size, not old + new
      arena.reset(new float[measure.off]);
      arena_cap = measure.off;
    }
    Bump real{arena.get(), 0};
    plan(real, keep_all);
  }

  // ---- linear with LoRA --------------------------------------------------------------------------------

  uint64_t dropout_seed_for(uint64_t step_seed, int64_t l, int t) const {
    return Structure::lora_dropout_seed(step_seed, l, t);
  }
  float dropout_p(bool train) const { return is_lora() && train ? opt.lora.dropout : 0.0f; }

  // u = dropout(x) · A^T for target t of layer l (N, R).
  void lora_u(float* u, const float* x, int64_t l, int t, int64_t in, bool train, uint64_t step_seed) {
    const Param* a = lora_a(l, t);
    const float pdrop = dropout_p(train);
    const float* xd = x;
    if (pdrop > 0) {
      ops::dropout_forward(tmp2, x, N * in, pdrop, dropout_seed_for(step_seed, l, t));
      xd = tmp2;
    }
    ops::gemm(false, true, N, R, in, 1.0f, xd, a->value.data(), 0.0f, u);
  }

  // y (N, out) (+)= x W^T + b [+ scale · u B^T], u computed here. `perm_heads` > 0: the base rows are
  // interleaved per head (GGUF llama q/k), so the base product is un-permuted to Hugging Face order.
  void lin_forward(float* y, const float* x, const float* w, const float* b, int64_t in, int64_t out,
                   bool accumulate, int64_t l, int t, float* u, int64_t perm_heads, bool train,
                   uint64_t step_seed) {
    if (perm_heads > 0) {
      ops::linear_forward(tmp1, x, w, b, N, in, out, false);
      perm_to_hf(y, tmp1, N, perm_heads, hd);
    } else {
      ops::linear_forward(y, x, w, b, N, in, out, accumulate);
    }
    if (is_lora() && lora_a(l, t)) {
      lora_u(u, x, l, t, in, train, step_seed);
      ops::gemm(false, true, N, out, R, opt.lora.scale(), u, lora_b(l, t)->value.data(), 1.0f, y);
    }
  }

  // Backward of lin_forward: dx += dy W (+ LoRA path); dW, db, dA, dB accumulate.
  void lin_backward(float* dxp, float* dw, float* db, const float* dy, const float* x, const float* w,
                    int64_t in, int64_t out, int64_t l, int t, const float* u, int64_t perm_heads,
                    uint64_t step_seed) {
    if (is_lora() && lora_a(l, t)) {
      Param* a = lora_a(l, t);
      Param* bb = lora_b(l, t);
      const float s = opt.lora.scale();
      ops::gemm(true, false, out, R, N, s, dy, u, 1.0f, bb->grad.data());       // dB += s dy^T u
      ops::gemm(false, false, N, R, out, s, dy, bb->value.data(), 0.0f, du);    // du = s dy B
      const float pdrop = dropout_p(true);
      const uint64_t seed = dropout_seed_for(step_seed, l, t);
      const float* xd = x;
      if (pdrop > 0) {
        ops::dropout_forward(tmp2, x, N * in, pdrop, seed);
        xd = tmp2;
      }
      ops::gemm(true, false, R, in, N, 1.0f, du, xd, 1.0f, a->grad.data());     // dA += du^T xd
      if (!dxp) {
        // the input's gradient is not wanted
      } else if (pdrop > 0) {
        ops::gemm(false, false, N, in, R, 1.0f, du, a->value.data(), 0.0f, tmp2);
        ops::dropout_backward(dxp, tmp2, N * in, pdrop, seed);
      } else {
        ops::gemm(false, false, N, in, R, 1.0f, du, a->value.data(), 1.0f, dxp);  // dx += du A
      }
    }
    if (!dxp && !dw && !db) return;  // frozen and at the network's frozen input: nothing to do
    if (perm_heads > 0) {
      perm_from_hf(tmp1, dy, N, perm_heads, hd);
      dy = tmp1;
    }
    ops::linear_backward(dxp, dw, db, dy, x, w, N, in, out);
  }

  // ---- one layer -----------------------------------------------------------------------------------------

  // x_out == nullptr (recompute): stop once everything backward needs is saved.
  void layer_forward(int64_t l, const LayerView& w, LayerActs& a, const float* x_in, float* x_out, bool train,
                     uint64_t seed) {
    const float eps = p.rms_eps;
    const int64_t pq = permuted_qk ? Hq : 0, pk = permuted_qk ? Hkv : 0;
    ops::rmsnorm_forward(hn, a.rstd1, x_in, w.attn_norm, N, D, eps);
    float* qdst = p.has_qk_norm ? a.q_lin : a.q;
    float* kdst = p.has_qk_norm ? a.k_lin : a.k;
    lin_forward(qdst, hn, w.wq, w.bq, D, Q, false, l, T_Q, a.u[T_Q], pq, train, seed);
    lin_forward(kdst, hn, w.wk, w.bk, D, K, false, l, T_K, a.u[T_K], pk, train, seed);
    lin_forward(a.v, hn, w.wv, w.bv, D, K, false, l, T_V, a.u[T_V], 0, train, seed);
    if (p.has_qk_norm) {
      ops::rmsnorm_forward(a.q, a.rstd_q, a.q_lin, w.q_norm, N * Hq, hd, eps);
      ops::rmsnorm_forward(a.k, a.rstd_k, a.k_lin, w.k_norm, N * Hkv, hd, eps);
    }
    ops::rope_forward(a.q, B, T, Hq, hd, inv_freq, RopeLayout::half_split);
    ops::rope_forward(a.k, B, T, Hkv, hd, inv_freq, RopeLayout::half_split);
    ops::attention_forward(a.ao, a.att, a.q, a.k, a.v, B, T, Hq, Hkv, hd);
    copy_f(a.x_mid, x_in, N * D);
    lin_forward(a.x_mid, a.ao, w.wo, w.bo, Q, D, true, l, T_O, a.u[T_O], 0, train, seed);
    ops::rmsnorm_forward(hn, a.rstd2, a.x_mid, w.ffn_norm, N, D, eps);
    lin_forward(a.gate, hn, w.gate, nullptr, D, F, false, l, T_GATE, a.u[T_GATE], 0, train, seed);
    lin_forward(a.up, hn, w.up, nullptr, D, F, false, l, T_UP, a.u[T_UP], 0, train, seed);
    if (!x_out) return;
    ops::swiglu_forward(hswi, a.gate, a.up, N * F);
    copy_f(x_out, a.x_mid, N * D);
    lin_forward(x_out, hswi, w.down, nullptr, F, D, true, l, T_DOWN, a.u[T_DOWN], 0, train, seed);
  }

  // dx holds d(layer output) on entry and d(layer input) on return. need_dx_in false (LoRA's first
  // layer, whose input is the frozen embedding): dx is left as d(x_mid) and the products that only
  // feed the input's gradient are skipped.
  void layer_backward(int64_t l, const LayerView& w, LayerActs& a, const float* x_in, bool u_down_ready,
                      bool need_dx_in, uint64_t seed) {
    const int64_t pq = permuted_qk ? Hq : 0, pk = permuted_qk ? Hkv : 0;
    ops::swiglu_forward(hswi, a.gate, a.up, N * F);
    if (!u_down_ready && is_lora() && lora_a(l, T_DOWN)) lora_u(a.u[T_DOWN], hswi, l, T_DOWN, F, true, seed);
    fill_zero(dhswi, N * F);
    lin_backward(dhswi, w.d_down, nullptr, dx, hswi, w.down, F, D, l, T_DOWN, a.u[T_DOWN], 0, seed);
    fill_zero(dgate, N * F);
    fill_zero(dup, N * F);
    ops::swiglu_backward(dgate, dup, dhswi, a.gate, a.up, N * F);
    fill_zero(dh, N * D);
    ops::rmsnorm_forward(hn, a.rstd2, a.x_mid, w.ffn_norm, N, D, p.rms_eps);  // h2 again
    lin_backward(dh, w.d_gate, nullptr, dgate, hn, w.gate, D, F, l, T_GATE, a.u[T_GATE], 0, seed);
    lin_backward(dh, w.d_up, nullptr, dup, hn, w.up, D, F, l, T_UP, a.u[T_UP], 0, seed);
    ops::rmsnorm_backward(dx, w.d_ffn_norm, dh, a.x_mid, w.ffn_norm, a.rstd2, N, D);

    fill_zero(dao, N * Q);
    lin_backward(dao, w.d_wo, w.d_bo, dx, a.ao, w.wo, Q, D, l, T_O, a.u[T_O], 0, seed);
    fill_zero(dq, N * Q);
    fill_zero(dk, N * K);
    fill_zero(dv, N * K);
    ops::attention_backward(dq, dk, dv, dao, a.att, a.q, a.k, a.v, B, T, Hq, Hkv, hd);
    ops::rope_backward(dq, B, T, Hq, hd, inv_freq, RopeLayout::half_split);
    ops::rope_backward(dk, B, T, Hkv, hd, inv_freq, RopeLayout::half_split);
    const float* dqp = dq;
    const float* dkp = dk;
    if (p.has_qk_norm) {
      fill_zero(dq_lin, N * Q);
      fill_zero(dk_lin, N * K);
      ops::rmsnorm_backward(dq_lin, w.d_q_norm, dq, a.q_lin, w.q_norm, a.rstd_q, N * Hq, hd);
      ops::rmsnorm_backward(dk_lin, w.d_k_norm, dk, a.k_lin, w.k_norm, a.rstd_k, N * Hkv, hd);
      dqp = dq_lin, dkp = dk_lin;
    }
    float* dh1 = need_dx_in ? dh : nullptr;
    ops::rmsnorm_forward(hn, a.rstd1, x_in, w.attn_norm, N, D, p.rms_eps);  // h1 again
    if (dh1) fill_zero(dh1, N * D);
    lin_backward(dh1, w.d_wq, w.d_bq, dqp, hn, w.wq, D, Q, l, T_Q, a.u[T_Q], pq, seed);
    lin_backward(dh1, w.d_wk, w.d_bk, dkp, hn, w.wk, D, K, l, T_K, a.u[T_K], pk, seed);
    lin_backward(dh1, w.d_wv, w.d_bv, dv, hn, w.wv, D, K, l, T_V, a.u[T_V], 0, seed);
    if (dh1) ops::rmsnorm_backward(dx, w.d_attn_norm, dh1, x_in, w.attn_norm, a.rstd1, N, D);
  }

  // ---- whole network -----------------------------------------------------------------------------------

  void check_batch(std::span<const int32_t> tokens, std::span<const int32_t> targets, int64_t b, int64_t t) {
    if (auto ok = train::check_batch(p, tokens, targets, b, t); !ok)
      throw TrainError(ok.error().code, ok.error().message, ok.error().hint);
  }


  // The fused classifier over the rows that have a target only: masked rows (prompts, padding) are
  // gathered out first, so they cost no logits. Rows of logits per chunk: enough for efficient
  // products, at most ~64 MB of them.
  double classify(const int32_t* targets, bool train, float grad_scale, float* dW_out, int64_t* counted) {
    std::vector<int64_t> rows;
    rows.reserve(size_t(N));
    for (int64_t i = 0; i < N; ++i)
      if (targets[i] >= 0) rows.push_back(i);
    const int64_t nc = int64_t(rows.size());
    *counted = nc;
    if (nc == 0) return 0.0;
    const int64_t chunk = std::clamp<int64_t>((int64_t(16) << 20) / std::max<int64_t>(V, 1), 64, 512);
    if (nc == N)
      return ops::classifier_forward_backward(train ? dxf : nullptr, dW_out, xf, output_matrix(), targets, N, D,
                                              V, grad_scale, counted, cls_scratch, chunk);
    float* xc = tmp1;   // (nc, D) gathered rows
    float* dxc = tmp2;  // (nc, D) their gradient
    std::vector<int32_t> tc(static_cast<size_t>(nc));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < nc; ++i) {
      std::memcpy(xc + i * D, xf + rows[size_t(i)] * D, size_t(D) * sizeof(float));
      tc[size_t(i)] = targets[rows[size_t(i)]];
    }
    if (train) fill_zero(dxc, nc * D);
    const double sum = ops::classifier_forward_backward(train ? dxc : nullptr, dW_out, xc, output_matrix(),
                                                        tc.data(), nc, D, V, grad_scale, counted, cls_scratch,
                                                        chunk);
    if (train) {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < nc; ++i) std::memcpy(dxf + rows[size_t(i)] * D, dxc + i * D, size_t(D) * sizeof(float));
    }
    return sum;
  }

  LossResult run(std::span<const int32_t> tokens, std::span<const int32_t> targets, int64_t b, int64_t t,
                 bool train, float grad_scale, uint64_t seed) {
    check_batch(tokens, targets, b, t);
    ops::set_threads(opt.n_threads);
    const bool keep_all = train && !opt.recompute;
    layout(b, t, keep_all, train);

    embed_tokens(xs[0], tokens.data());
    for (int64_t l = 0; l < L; ++l) {
      LayerView w = view_layer(l);
      layer_forward(l, w, acts[keep_all ? size_t(l) : 0], xs[size_t(l)], xs[size_t(l) + 1], train, seed);
    }
    const float* nw = final_norm();
    ops::rmsnorm_forward(xf, rstd_f, xs[size_t(L)], nw, N, D, p.rms_eps);
    int64_t counted = 0;
    float* dW_out = nullptr;
    if (train && !is_lora()) dW_out = pg(p.tied_embeddings ? embed : lm_head);
    if (train) fill_zero(dxf, N * D);
    double sum = classify(targets.data(), train, grad_scale, dW_out, &counted);
    LossResult r;
    r.n_tokens = counted;
    r.loss = counted > 0 ? sum / double(counted) : 0.0;
    if (!train) return r;

    fill_zero(dx, N * D);
    ops::rmsnorm_backward(dx, is_lora() ? nullptr : pg(norm), dxf, xs[size_t(L)], nw, rstd_f, N, D);
    for (int64_t l = L - 1; l >= 0; --l) {
      LayerView w = view_layer(l);
      LayerActs& a = acts[keep_all ? size_t(l) : 0];
      if (!keep_all) layer_forward(l, w, a, xs[size_t(l)], nullptr, true, seed);
      layer_backward(l, w, a, xs[size_t(l)], keep_all, !(is_lora() && l == 0), seed);
    }
    if (!is_lora()) ops::embedding_backward(pg(embed), dx, tokens.data(), N, D);
    return r;
  }
};

// ---- public API ---------------------------------------------------------------------------------------------

namespace {

template <class F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const TrainError& e) {
    return make_error(e.code, e.what(), e.hint);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::io, "out of memory in the trainer's model",
                      "use a smaller batch or sequence length, or turn on recompute");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("trainer model: ") + e.what());
  }
}

Expected<void> check_options(const ModelOptions& o) {
  if (o.method != Method::lora) return {};
  const LoraSettings& l = o.lora;
  if (l.rank < 1)
    return make_error(ErrorCode::invalid_argument, "LoRA rank " + std::to_string(l.rank) + " is below 1");
  if (!(l.dropout >= 0.0f && l.dropout < 1.0f))
    return make_error(ErrorCode::invalid_argument, "LoRA dropout " + std::to_string(l.dropout) + " is outside [0, 1)");
  if (!std::isfinite(l.alpha)) return make_error(ErrorCode::invalid_argument, "LoRA alpha is not finite");
  if (l.targets.empty())
    return make_error(ErrorCode::invalid_argument, "no LoRA target modules",
                      "name some of q, k, v, o, gate, up, down");
  for (const std::string& t : l.targets)
    if (std::find(TARGET_NAMES.begin(), TARGET_NAMES.end(), t) == TARGET_NAMES.end())
      return make_error(ErrorCode::invalid_argument, "unknown LoRA target module '" + t + "'",
                        "use q, k, v, o, gate, up or down");
  return {};
}

Expected<void> check_shape(const ModelParams& p) {
  auto bad = [](const std::string& m) { return make_error(ErrorCode::invalid_argument, "model shape: " + m); };
  const int64_t LIMIT = int64_t(1) << 24;
  for (auto [name, v] : {std::pair<const char*, int64_t>{"n_layer", p.n_layer}, {"n_embd", p.n_embd},
                         {"n_head", p.n_head}, {"n_head_kv", p.n_head_kv}, {"head_dim", p.head_dim},
                         {"n_ff", p.n_ff}, {"n_vocab", p.n_vocab}})
    if (v <= 0 || v > LIMIT) return bad(std::string(name) + " is " + std::to_string(v) + ", expected 1.." + std::to_string(LIMIT));
  if (p.n_head % p.n_head_kv != 0) return bad("n_head is not a multiple of n_head_kv");
  if (p.head_dim % 2 != 0) return bad("head_dim is odd; RoPE needs pairs");
  if (!(p.rms_eps > 0) || !(p.rope_theta > 0)) return bad("rms_eps and rope_theta must be positive");
  return {};
}

}  // namespace

Expected<void> check_batch(const ModelParams& p, std::span<const int32_t> tokens, std::span<const int32_t> targets,
                           int64_t b, int64_t t) {
  if (b <= 0 || t <= 0)
    return make_error(ErrorCode::invalid_argument,
                      "batch of " + std::to_string(b) + " x " + std::to_string(t) + " tokens is empty");
  if (int64_t(tokens.size()) != b * t || int64_t(targets.size()) != b * t)
    return make_error(ErrorCode::invalid_argument,
                      "batch of " + std::to_string(b) + " x " + std::to_string(t) + " needs " +
                          std::to_string(b * t) + " tokens and targets, got " + std::to_string(tokens.size()) +
                          " and " + std::to_string(targets.size()));
  if (p.n_ctx_train > 0 && t > p.n_ctx_train)
    return make_error(ErrorCode::invalid_argument,
                      "sequence length " + std::to_string(t) + " exceeds the model's context " +
                          std::to_string(p.n_ctx_train),
                      "lower the maximum length");
  const int64_t V = p.n_vocab;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= V)
      return make_error(ErrorCode::out_of_range, "token id " + std::to_string(tokens[i]) + " at position " +
                                                     std::to_string(i) + " is outside the vocabulary of " +
                                                     std::to_string(V));
    if (targets[i] >= V)
      return make_error(ErrorCode::out_of_range, "target id " + std::to_string(targets[i]) + " at position " +
                                                     std::to_string(i) + " is outside the vocabulary of " +
                                                     std::to_string(V));
  }
  return {};
}

TrainModel::TrainModel(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
TrainModel::~TrainModel() = default;

Expected<std::unique_ptr<TrainModel>> TrainModel::create(const Model& base, const ModelOptions& options) {
  if (options.method == Method::pretrain)
    return make_error(ErrorCode::invalid_argument, "method pretrain starts from no model",
                      "use create_from_scratch() with a model shape");
  HEARTH_TRY_VOID(check_options(options));
  return guarded([&]() -> Expected<std::unique_ptr<TrainModel>> {
    auto im = std::make_unique<Impl>();
    im->opt = options;
    const ModelDesc& d = base.desc();
    HEARTH_TRY_VOID(check_shape(d.params));
    im->set_shape(d.params);
    if (int64_t(d.layers.size()) != im->L)
      return make_error(ErrorCode::format, "model has " + std::to_string(d.layers.size()) + " layers, expected " +
                                               std::to_string(im->L));
    ops::set_threads(options.n_threads);
    if (options.method == Method::lora) {
      im->base = &base;
      im->build_lora();
    } else {
      HEARTH_TRY(auto w, read_weights(base));
      im->build_full(std::move(w));
    }
    im->set_inv_freq(d.rope_freq_factors);
    return std::unique_ptr<TrainModel>(new TrainModel(std::move(im)));
  });
}

Expected<std::unique_ptr<TrainModel>> TrainModel::create_from_scratch(const ModelParams& params,
                                                                      const ModelOptions& options) {
  HEARTH_TRY_VOID(check_shape(params));
  return guarded([&]() -> Expected<std::unique_ptr<TrainModel>> {
    auto im = std::make_unique<Impl>();
    im->opt = options;
    im->opt.method = Method::pretrain;
    im->set_shape(params);
    ops::set_threads(options.n_threads);
    HEARTH_TRY(auto w, make_random_weights(params, options.seed));
    im->build_full(std::move(w));
    im->set_inv_freq({});
    return std::unique_ptr<TrainModel>(new TrainModel(std::move(im)));
  });
}

uint64_t TrainModel::Structure::lora_dropout_seed(uint64_t step_seed, int64_t layer, int target) {
  return mix64(step_seed ^ mix64(uint64_t(layer) * N_TARGETS + uint64_t(target) + 0x51ed27ull));
}

const TrainModel::Structure& TrainModel::structure() const {
  Impl& im = *m_impl;
  if (!im.structure) {  // built on first use: the layout never changes after create()
    Structure s;
    for (const Impl::FullLayer& f : im.full)
      s.full.push_back({f.attn_norm, f.wq, f.bq, f.wk, f.bk, f.wv, f.bv, f.wo, f.bo, f.q_norm, f.k_norm, f.ffn_norm,
                        f.gate, f.up, f.down});
    s.embed = im.embed, s.norm = im.norm, s.lm_head = im.lm_head;
    for (const auto& row : im.lora) s.lora.emplace_back(row.begin(), row.end());
    s.base = im.base;
    s.permuted_qk = im.permuted_qk;
    s.inv_freq = im.inv_freq;
    im.structure = std::make_unique<Structure>(std::move(s));
  }
  return *im.structure;
}

const ModelParams& TrainModel::params() const { return m_impl->p; }
const ModelOptions& TrainModel::options() const { return m_impl->opt; }

std::vector<Param*> TrainModel::trainable() {
  std::vector<Param*> v;
  v.reserve(m_impl->params.size());
  for (Param& p : m_impl->params) v.push_back(&p);
  return v;
}

std::vector<const Param*> TrainModel::trainable() const {
  std::vector<const Param*> v;
  v.reserve(m_impl->params.size());
  for (const Param& p : m_impl->params) v.push_back(&p);
  return v;
}

int64_t TrainModel::n_trainable() const {
  int64_t n = 0;
  for (const Param& p : m_impl->params) n += p.numel();
  return n;
}

void TrainModel::zero_grad() {
  for (Param& p : m_impl->params) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
}

Expected<LossResult> TrainModel::forward_backward(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                                                  int64_t B, int64_t T, float grad_scale, uint64_t dropout_seed) {
  return guarded([&]() -> Expected<LossResult> {
    return m_impl->run(tokens, targets, B, T, true, grad_scale, dropout_seed);
  });
}

Expected<LossResult> TrainModel::evaluate(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                                          int64_t B, int64_t T) {
  return guarded([&]() -> Expected<LossResult> { return m_impl->run(tokens, targets, B, T, false, 0.0f, 0); });
}

Expected<ModelWeights> TrainModel::merged_weights() const {
  return guarded([&]() -> Expected<ModelWeights> {
    const Impl& im = *m_impl;
    if (im.is_lora()) {
      HEARTH_TRY(auto w, read_weights(*im.base));
      const float s = im.opt.lora.scale();
      for (int64_t l = 0; l < im.L; ++l) {
        LayerWeights& lw = w.layers[size_t(l)];
        std::array<std::vector<float>*, N_TARGETS> mats = {&lw.wq, &lw.wk,      &lw.wv,    &lw.wo,
                                                           &lw.ffn_gate, &lw.ffn_up, &lw.ffn_down};
        for (int t = 0; t < N_TARGETS; ++t) {
          int i = im.lora[size_t(l)][size_t(t)];
          if (i < 0) continue;
          const Param& a = im.params[size_t(i)];
          const Param& b = im.params[size_t(i) + 1];
          const auto [in, out] = im.target_dims(t);
          ops::gemm(false, false, out, in, im.R, s, b.value.data(), a.value.data(), 1.0f, mats[size_t(t)]->data());
        }
      }
      return w;
    }
    ModelWeights w;
    w.params = im.p;
    w.tok_embd = im.params[size_t(im.embed)].value;
    w.output_norm = im.params[size_t(im.norm)].value;
    if (im.lm_head >= 0) w.output = im.params[size_t(im.lm_head)].value;
    w.layers.resize(size_t(im.L));
    auto val = [&](int i) { return i < 0 ? std::vector<float>{} : im.params[size_t(i)].value; };
    for (int64_t l = 0; l < im.L; ++l) {
      const Impl::FullLayer& f = im.full[size_t(l)];
      LayerWeights& lw = w.layers[size_t(l)];
      lw.attn_norm = val(f.attn_norm), lw.wq = val(f.wq), lw.wk = val(f.wk), lw.wv = val(f.wv), lw.wo = val(f.wo);
      lw.bq = val(f.bq), lw.bk = val(f.bk), lw.bv = val(f.bv), lw.bo = val(f.bo);
      lw.q_norm = val(f.q_norm), lw.k_norm = val(f.k_norm), lw.ffn_norm = val(f.ffn_norm);
      lw.ffn_gate = val(f.gate), lw.ffn_up = val(f.up), lw.ffn_down = val(f.down);
    }
    return w;
  });
}

uint64_t TrainModel::memory_bytes() const {
  const Impl& im = *m_impl;
  uint64_t n = 0;
  for (const Param& p : im.params) n += (p.value.capacity() + p.grad.capacity()) * sizeof(float);
  n += im.arena_cap * sizeof(float);
  n += (im.layer_buf.capacity() + im.out_buf.capacity() + im.norm_buf.capacity() + im.cls_scratch.capacity()) *
       sizeof(float);
  return n;
}

}  // namespace hearth::train
