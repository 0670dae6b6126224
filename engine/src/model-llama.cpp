/* The forward pass of llama, qwen2 and qwen3 on the CPU (InferenceSession, hearth/inference.h), and
 * the hand-over to the CUDA runner (cuda-runner.h) when the session was asked for a GPU and one serves.
 *
 * One layer: x += Wo·attn(rope(norm_q(Wq·n(x) + bq)), rope(norm_k(Wk·n(x) + bk)), Wv·n(x) + bv) + bo;
 * x += Wdown·(silu(Wgate·n(x)) ⊙ Wup·n(x)), with n() the RMSNorm of the layer. Logits: Wout·n(x).
 *
 * Non-obvious choice: RoPE rotates the pairs the stored q/k rows expect (ModelDesc::rope_layout):
 * (2i, 2i+1) for GGUF llama files, whose rows the converter permuted, and (i, i + head_dim/2)
 * otherwise; both use frequency i, so the same network gives the same logits from either format.
 * Angles are computed in double (position × frequency reaches 1e5 radians in long contexts).
 */
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "../cpu/cpu-ops.h"
#include "cuda-runner.h"
#include "hearth/inference.h"
#include "kv-cache.h"
#include "lora-apply.h"

namespace hearth {

namespace {

cpu::MatView mat_view(const TensorRef& t) {
  cpu::MatView v;
  v.type = t.type;
  v.data = t.data;
  v.row_len = t.shape.empty() ? 0 : t.shape[0];
  v.n_rows = t.shape.size() < 2 ? 1 : t.shape[1];
  auto rb = row_nbytes(t.type, v.row_len);
  v.row_bytes = rb ? *rb : 0;
  return v;
}

std::vector<float> vec_f32(const TensorRef& t) {
  if (!t.present()) return {};
  auto r = tensor_to_f32(t);
  if (!r) throw std::runtime_error(r.error().message);
  return std::move(*r);
}

struct LayerData {
  cpu::MatView wq, wk, wv, wo, gate, up, down;
  std::vector<float> attn_norm, ffn_norm, bq, bk, bv, bo, q_norm, k_norm;
};

}  // namespace

struct InferenceSession::Impl {
  const Model* model = nullptr;
  ModelParams p;
  RopeLayout layout = RopeLayout::half_split;
  int64_t n_ctx = 0, n_batch = 512;
  bool quant_act = true;
  std::vector<LayerData> layers;
  cpu::MatView tok_embd, output;
  std::vector<float> output_norm;
  std::vector<double> inv_freq;  // head_dim/2 angular frequencies, scaling applied
  double pos_scale = 1.0;        // linear scaling divides positions
  std::unique_ptr<cpu::ThreadPool> pool;
  std::unique_ptr<KvCache> kv;
  std::vector<TokenId> tokens;
  std::unique_ptr<lora_detail::LoraRuntime> lora;  // null: no adapter
  std::unique_ptr<CudaRunner> gpu;                 // null: the CPU computes
  std::string backend = "cpu", backend_note;
  std::vector<std::shared_ptr<const void>> decode_copies;  // interleaved Q4_0/Q4_K/Q6_K copies the views point into

  // Scratch, sized for one chunk of n tokens.
  std::vector<float> x, xn, q, k, v, att, o, g, u, d;

  void forward(std::span<const TokenId> toks, int64_t pos0, std::vector<float>* logits, bool all_logits,
               int64_t logit_row0, const KeepGoing& keep_going);
  void rope(float* vec, int64_t n_heads, int64_t pos) const;
  // The LoRA hook: y += scale · B (A x) for a targeted projection of n tokens (no-op without adapter).
  void lora_add(size_t layer, lora_detail::LoraTarget t, const float* x, int64_t n, float* y) const {
    if (lora) lora->add(*pool, layer, t, x, n, y);
  }
};

namespace {

void check_type(const TensorRef& t) {
  const TypeTraits* tr = type_traits(t.type);
  if (!tr || !tr->supported)
    throw std::invalid_argument("tensor '" + t.name + "' has type " + type_name(t.type) +
                                ", which the CPU backend cannot compute with");
}

}  // namespace

void InferenceSession::Impl::rope(float* vec, int64_t n_heads, int64_t pos) const {
  const int64_t hd = p.head_dim, half = hd / 2;
  for (int64_t i = 0; i < half; ++i) {
    double a = double(pos) * pos_scale * inv_freq[size_t(i)];
    float c = float(std::cos(a)), s = float(std::sin(a));
    for (int64_t h = 0; h < n_heads; ++h) {
      float* hv = vec + h * hd;
      int64_t i0 = layout == RopeLayout::interleaved ? 2 * i : i;
      int64_t i1 = layout == RopeLayout::interleaved ? 2 * i + 1 : i + half;
      float x0 = hv[i0], x1 = hv[i1];
      hv[i0] = x0 * c - x1 * s;
      hv[i1] = x0 * s + x1 * c;
    }
  }
}

void InferenceSession::Impl::forward(std::span<const TokenId> toks, int64_t pos0, std::vector<float>* logits,
                                     bool all_logits, int64_t logit_row0, const KeepGoing& keep_going) {
  const int64_t n = int64_t(toks.size());
  const int64_t E = p.n_embd, hd = p.head_dim, nh = p.n_head, nkv = p.n_head_kv, F = p.n_ff;
  const int64_t qd = nh * hd, kvd = nkv * hd;
  auto sz = [&](std::vector<float>& b, int64_t m) {
    if (b.size() < size_t(m)) b.resize(size_t(m));
  };
  sz(x, n * E), sz(xn, n * E), sz(q, n * qd), sz(k, n * kvd), sz(v, n * kvd), sz(att, n * qd), sz(o, n * E);
  sz(g, n * F), sz(u, n * F), sz(d, n * E);

  for (int64_t t = 0; t < n; ++t) cpu::dequantize_row(tok_embd, toks[size_t(t)], x.data() + t * E);
  kv->ensure(pos0 + n);
  cpu::ThreadPool& tp = *pool;
  const float eps = p.rms_eps;
  const float att_scale = float(1.0 / std::sqrt(double(hd)));
  const int64_t group = nh / nkv;

  for (size_t li = 0; li < layers.size(); ++li) {
    if (keep_going && !keep_going()) throw std::system_error(std::make_error_code(std::errc::operation_canceled));
    const LayerData& L = layers[li];
    const int64_t l = int64_t(li);
    for (int64_t t = 0; t < n; ++t) cpu::rms_norm(x.data() + t * E, L.attn_norm.data(), E, eps, xn.data() + t * E);
    if (n == 1) {  // decoding: q, k and v in one parallel job
      const cpu::MatView* ws[] = {&L.wq, &L.wk, &L.wv};
      float* ys[] = {q.data(), k.data(), v.data()};
      cpu::matvec_multi(tp, ws, xn.data(), ys, quant_act);
    } else {
      cpu::matmul(tp, L.wq, xn.data(), n, q.data(), quant_act);
      cpu::matmul(tp, L.wk, xn.data(), n, k.data(), quant_act);
      cpu::matmul(tp, L.wv, xn.data(), n, v.data(), quant_act);
    }
    lora_add(li, lora_detail::LoraTarget::q, xn.data(), n, q.data());
    lora_add(li, lora_detail::LoraTarget::k, xn.data(), n, k.data());
    lora_add(li, lora_detail::LoraTarget::v, xn.data(), n, v.data());
    auto qk_post = [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        float* qt = q.data() + t * qd;
        float* kt = k.data() + t * kvd;
        float* vt = v.data() + t * kvd;
        if (!L.bq.empty()) {
          for (int64_t i = 0; i < qd; ++i) qt[i] += L.bq[size_t(i)];
          for (int64_t i = 0; i < kvd; ++i) kt[i] += L.bk[size_t(i)];
          for (int64_t i = 0; i < kvd; ++i) vt[i] += L.bv[size_t(i)];
        }
        if (!L.q_norm.empty()) {
          for (int64_t h = 0; h < nh; ++h) cpu::rms_norm(qt + h * hd, L.q_norm.data(), hd, eps, qt + h * hd);
          for (int64_t h = 0; h < nkv; ++h) cpu::rms_norm(kt + h * hd, L.k_norm.data(), hd, eps, kt + h * hd);
        }
        rope(qt, nh, pos0 + t);
        rope(kt, nkv, pos0 + t);
        kv->store_k(l, pos0 + t, kt);
        kv->store_v(l, pos0 + t, vt);
      }
    };
    if (n == 1) qk_post(0, 1);  // one token's biases and rotations are not worth waking the workers
    else tp.parallel_for(n, qk_post);
    // Causal attention: token t sees positions [0, pos0 + t]. Work items are (token, head).
    tp.parallel_for(n * nh, [&](int64_t w0, int64_t w1) {
      std::vector<float> sc(size_t(pos0 + n));
      for (int64_t w = w0; w < w1; ++w) {
        const int64_t t = w / nh, h = w % nh, kvh = h / group;
        const int64_t n_pos = pos0 + t + 1;
        const float* qh = q.data() + t * qd + h * hd;
        float mx = -INFINITY;
        for (int64_t j = 0; j < n_pos; ++j) {
          sc[size_t(j)] = kv->dot_k(l, j, kvh * hd, qh, hd) * att_scale;
          mx = std::max(mx, sc[size_t(j)]);
        }
        double sum = 0;
        for (int64_t j = 0; j < n_pos; ++j) {
          sc[size_t(j)] = std::exp(sc[size_t(j)] - mx);
          sum += sc[size_t(j)];
        }
        float inv = float(1.0 / sum);
        float* out = att.data() + t * qd + h * hd;
        std::fill(out, out + hd, 0.0f);
        for (int64_t j = 0; j < n_pos; ++j) kv->add_v(l, j, kvh * hd, sc[size_t(j)] * inv, out, hd);
      }
    });
    cpu::matmul(tp, L.wo, att.data(), n, o.data(), quant_act);
    lora_add(li, lora_detail::LoraTarget::o, att.data(), n, o.data());
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < E; ++i) x[size_t(t * E + i)] += o[size_t(t * E + i)] + (L.bo.empty() ? 0.0f : L.bo[size_t(i)]);

    for (int64_t t = 0; t < n; ++t) cpu::rms_norm(x.data() + t * E, L.ffn_norm.data(), E, eps, xn.data() + t * E);
    if (n == 1 && !lora) {  // decoding: gate, up and SwiGLU in one parallel job
      cpu::matvec_swiglu(tp, L.gate, L.up, xn.data(), g.data(), quant_act);
    } else {
      cpu::matmul(tp, L.gate, xn.data(), n, g.data(), quant_act);
      lora_add(li, lora_detail::LoraTarget::gate, xn.data(), n, g.data());
      cpu::matmul(tp, L.up, xn.data(), n, u.data(), quant_act);
      lora_add(li, lora_detail::LoraTarget::up, xn.data(), n, u.data());
      tp.parallel_for(n * F, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          float gv = g[size_t(i)];
          g[size_t(i)] = gv / (1.0f + std::exp(-gv)) * u[size_t(i)];
        }
      });
    }
    cpu::matmul(tp, L.down, g.data(), n, d.data(), quant_act);
    lora_add(li, lora_detail::LoraTarget::down, g.data(), n, d.data());
    for (int64_t i = 0; i < n * E; ++i) x[size_t(i)] += d[size_t(i)];
  }

  if (!logits) return;
  const int64_t V = p.n_vocab;
  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t n_out = n - first;
  for (int64_t t = first; t < n; ++t)
    cpu::rms_norm(x.data() + t * E, output_norm.data(), E, eps, xn.data() + (t - first) * E);
  float* dst = logits->data() + logit_row0 * V;
  cpu::matmul(tp, output, xn.data(), n_out, dst, quant_act);
}

InferenceSession::InferenceSession(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
InferenceSession::~InferenceSession() = default;

Expected<std::unique_ptr<InferenceSession>> InferenceSession::create(const Model& model,
                                                                     const InferenceOptions& opt) {
  if (opt.n_ctx < 0) return make_error(ErrorCode::invalid_argument, "context length must be >= 0, got " + std::to_string(opt.n_ctx));
  if (opt.n_threads < 0) return make_error(ErrorCode::invalid_argument, "thread count must be >= 0, got " + std::to_string(opt.n_threads));
  if (opt.n_batch < 1) return make_error(ErrorCode::invalid_argument, "batch size must be >= 1, got " + std::to_string(opt.n_batch));
  try {
    const ModelDesc& md = model.desc();
    auto impl = std::make_unique<Impl>();
    impl->model = &model;
    impl->p = md.params;
    impl->layout = md.rope_layout;
    const ModelParams& p = impl->p;
    if (p.n_head <= 0 || p.n_head_kv <= 0 || p.n_head % p.n_head_kv != 0 || p.head_dim <= 0 || p.head_dim % 2)
      return make_error(ErrorCode::unsupported, md.path.string() + ": heads " + std::to_string(p.n_head) + "/" +
                                                    std::to_string(p.n_head_kv) + " with head_dim " +
                                                    std::to_string(p.head_dim) + " cannot be computed");
    impl->n_ctx = opt.n_ctx > 0 ? opt.n_ctx : (p.n_ctx_train > 0 ? p.n_ctx_train : 4096);
    impl->n_batch = opt.n_batch;
    impl->quant_act = opt.quantized_activations;
    for (const TensorRef* t : md.all_tensors()) check_type(*t);
    impl->tok_embd = mat_view(md.tok_embd);
    impl->output = mat_view(md.output_weight());
    impl->output_norm = vec_f32(md.output_norm);
    for (const LayerTensors& lt : md.layers) {
      LayerData L;
      L.wq = mat_view(lt.wq), L.wk = mat_view(lt.wk), L.wv = mat_view(lt.wv), L.wo = mat_view(lt.wo);
      L.gate = mat_view(lt.ffn_gate), L.up = mat_view(lt.ffn_up), L.down = mat_view(lt.ffn_down);
      L.attn_norm = vec_f32(lt.attn_norm), L.ffn_norm = vec_f32(lt.ffn_norm);
      L.bq = vec_f32(lt.bq), L.bk = vec_f32(lt.bk), L.bv = vec_f32(lt.bv), L.bo = vec_f32(lt.bo);
      L.q_norm = vec_f32(lt.q_norm), L.k_norm = vec_f32(lt.k_norm);
      impl->layers.push_back(std::move(L));
    }
    const int64_t half = p.head_dim / 2;
    for (int64_t i = 0; i < half; ++i) {
      double f = std::pow(double(p.rope_theta), -2.0 * double(i) / double(p.head_dim));
      if (!md.rope_freq_factors.empty() && size_t(i) < md.rope_freq_factors.size())
        f /= double(md.rope_freq_factors[size_t(i)]);
      impl->inv_freq.push_back(f);
    }
    if (p.rope_scaling.kind == RopeScalingKind::linear && p.rope_scaling.factor > 0)
      impl->pos_scale = 1.0 / double(p.rope_scaling.factor);
    if (opt.device != InferenceOptions::Device::cpu) {
      // The CPU parts are prepared either way, so a GPU that cannot serve leaves a complete CPU session.
      if (!CUDA_RUNNER_BUILT) {
        impl->backend_note = "built without CUDA";
      } else if (opt.lora) {
        impl->backend_note = "LoRA adapters run on the CPU";
      } else if (opt.kv_type != KvType::f16) {
        impl->backend_note = "an F32 KV cache runs on the CPU (the GPU keeps its cache in F16)";
      } else {
        CudaRunnerConfig c;
        c.gpu_index = opt.gpu_index;
        c.n_ctx = impl->n_ctx;
        c.n_batch = std::min(impl->n_batch, impl->n_ctx);  // no chunk is longer than the context
        c.inv_freq = impl->inv_freq;
        c.pos_scale = impl->pos_scale;
        impl->gpu = CudaRunner::create(md, c, impl->backend_note);
        if (impl->gpu) {
          impl->backend = impl->gpu->name();
          impl->backend_note.clear();
        } else if (impl->backend_note.empty()) {
          impl->backend_note = "the GPU could not be used";
        }
      }
    }
    int nt = opt.n_threads > 0 ? opt.n_threads : int(std::max(1u, std::thread::hardware_concurrency()));
    impl->pool = std::make_unique<cpu::ThreadPool>(nt);
    if (impl->quant_act && !impl->gpu) {
      // Decoding reads Q4_0, Q4_K and Q6_K matrices from a copy with their rows interleaved eight at a
      // time (shared with other sessions on the same model); the stored pages then leave resident memory
      // (the token embedding keeps its stored rows: it is read one row per token). A GPU session needs
      // no copy.
      auto use_copy = [&](cpu::MatView& w) {
        std::shared_ptr<const void> keep;
        cpu::MatView copy;
        const uint8_t* stored = w.data;
        if (!cpu::decode_view(w, *impl->pool, copy, keep)) return;
        if (stored != impl->tok_embd.data) model.release_pages(stored, uint64_t(w.n_rows) * w.row_bytes);
        w = copy;
        impl->decode_copies.push_back(std::move(keep));
      };
      for (LayerData& L : impl->layers)
        for (cpu::MatView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down}) use_copy(*w);
      use_copy(impl->output);
    }
    impl->kv = std::make_unique<KvCache>(p.n_layer, impl->n_ctx, p.n_head_kv * p.head_dim, opt.kv_type);
    if (opt.lora) {
      HEARTH_TRY_VOID(lora_detail::check_adapter_fits(*opt.lora, p, "LoRA adapter"));
      impl->lora = std::make_unique<lora_detail::LoraRuntime>(opt.lora, md);
    }
    return std::unique_ptr<InferenceSession>(new InferenceSession(std::move(impl)));
  } catch (const std::invalid_argument& e) {
    return make_error(ErrorCode::unsupported, model.desc().path.string() + ": " + e.what());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("preparing the model: ") + e.what());
  }
}

Expected<void> InferenceSession::eval(std::span<const TokenId> toks, std::vector<float>* logits, bool all_logits,
                                      const KeepGoing& keep_going) {
  Impl& m = *m_impl;
  const int64_t n = int64_t(toks.size());
  const int64_t past = int64_t(m.tokens.size());
  for (size_t i = 0; i < toks.size(); ++i)
    if (toks[i] < 0 || toks[i] >= m.p.n_vocab)
      return make_error(ErrorCode::out_of_range, "token id " + std::to_string(toks[i]) + " at index " +
                                                     std::to_string(i) + " is outside the vocabulary (0.." +
                                                     std::to_string(m.p.n_vocab - 1) + ")");
  if (past + n > m.n_ctx)
    return make_error(ErrorCode::out_of_range,
                      "context full: " + std::to_string(past) + " tokens in the cache + " + std::to_string(n) +
                          " new exceed the context length " + std::to_string(m.n_ctx),
                      "start a new conversation, shorten the prompt, or raise the context (--ctx)");
  if (logits) logits->assign(size_t(all_logits ? n : (n > 0 ? 1 : 0)) * size_t(m.p.n_vocab), 0.0f);
  if (n == 0) return {};
  try {
    for (int64_t c0 = 0; c0 < n; c0 += m.n_batch) {
      int64_t c1 = std::min(n, c0 + m.n_batch);
      bool want = logits && (all_logits || c1 == n);
      if (m.gpu)
        m.gpu->forward(toks.subspan(size_t(c0), size_t(c1 - c0)), past + c0,
                       want ? logits->data() + (all_logits ? c0 : 0) * m.p.n_vocab : nullptr, all_logits, keep_going);
      else
        m.forward(toks.subspan(size_t(c0), size_t(c1 - c0)), past + c0, want ? logits : nullptr, all_logits,
                  all_logits ? c0 : 0, keep_going);
      m.tokens.insert(m.tokens.end(), toks.begin() + c0, toks.begin() + c1);
    }
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::operation_canceled) return make_error(ErrorCode::cancelled, "evaluation cancelled");
    return make_error(ErrorCode::internal, std::string("forward pass: ") + e.what());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("forward pass: ") + e.what());
  }
  return {};
}

const std::vector<TokenId>& InferenceSession::tokens() const { return m_impl->tokens; }
int64_t InferenceSession::n_past() const { return int64_t(m_impl->tokens.size()); }
int64_t InferenceSession::n_ctx() const { return m_impl->n_ctx; }
int64_t InferenceSession::n_vocab() const { return m_impl->p.n_vocab; }
int InferenceSession::n_threads() const { return m_impl->pool->size(); }
KvType InferenceSession::kv_type() const { return m_impl->gpu ? KvType::f16 : m_impl->kv->type(); }
uint64_t InferenceSession::kv_bytes() const { return m_impl->gpu ? m_impl->gpu->kv_bytes() : m_impl->kv->bytes(); }
const Model& InferenceSession::model() const { return *m_impl->model; }
std::string InferenceSession::backend() const { return m_impl->backend; }
const std::string& InferenceSession::backend_note() const { return m_impl->backend_note; }

void InferenceSession::truncate(int64_t n) {
  if (n < 0) n = 0;
  if (n < int64_t(m_impl->tokens.size())) m_impl->tokens.resize(size_t(n));
}

int64_t InferenceSession::common_prefix(std::span<const TokenId> toks) const {
  const auto& mine = m_impl->tokens;
  size_t i = 0;
  while (i < mine.size() && i < toks.size() && mine[i] == toks[i]) ++i;
  return int64_t(i);
}

}  // namespace hearth
