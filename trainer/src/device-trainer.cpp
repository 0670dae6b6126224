/* The trainer's CUDA path (device-trainer.h): TrainModel's network, one for one, as kernel launches and
 * cuBLAS products on one stream, with every trainable tensor, its gradient and its AdamW moments
 * resident on the GPU.
 *
 * Non-obvious choice: all device memory is ONE allocation made in create(). A planning pass walks the
 * same layout code with a null base to measure it (as TrainModel's arena does), the total is checked
 * against cudaMemGetInfo before anything is allocated, and a second pass carves the pointers. So a run
 * that does not fit fails at once with both figures, never halfway through a step, and device_bytes()
 * is exact. Activations are kept for every layer; the backward pass recomputes what the CPU's does too
 * (the norms' outputs and SwiGLU) and, with DeviceTrainOptions::recompute_attention (training.recompute)
 * or when keeping them all does not fit, every layer's attention probabilities but the last (the largest
 * activation, B · heads · T² floats per layer), from the kept q and k.
 *
 * Without the CUDA backend (HEARTH_HAVE_CUDA undefined) every call reports "built without CUDA".
 */
#include "device-trainer.h"

#ifdef HEARTH_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "cublas-loader.h"        // engine/cuda
#include "device-attention.h"
#include "kernels.h"              // engine/cuda: get_rows, dequantize_bf16, add_bias, weight_type_supported
#include "train-blas.h"
#include "train-kernels.h"        // trainer/cuda
#include "train-plan.h"
#include "hearth/tensor-types.h"
#endif

namespace hearth::train {

const char* precision_name(TrainPrecision p) { return p == TrainPrecision::f32 ? "f32" : "bf16"; }

#ifndef HEARTH_HAVE_CUDA

std::string cuda_training_unavailable(int) { return "built without CUDA"; }

struct DeviceTrainer::Impl {};
DeviceTrainer::DeviceTrainer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
DeviceTrainer::~DeviceTrainer() = default;

namespace {
Unexpected no_cuda() { return make_error(ErrorCode::unsupported, "built without CUDA"); }
}  // namespace

Expected<std::unique_ptr<DeviceTrainer>> DeviceTrainer::create(TrainModel&, const DeviceTrainOptions&, int64_t,
                                                               int64_t) {
  return no_cuda();
}
std::string DeviceTrainer::device_name() const { return {}; }
std::string DeviceTrainer::description() const { return {}; }
TrainPrecision DeviceTrainer::precision() const { return TrainPrecision::bf16; }
Expected<LossResult> DeviceTrainer::forward_backward(std::span<const int32_t>, std::span<const int32_t>, int64_t,
                                                     int64_t, float, uint64_t) {
  return no_cuda();
}
Expected<LossResult> DeviceTrainer::evaluate(std::span<const int32_t>, std::span<const int32_t>, int64_t, int64_t) {
  return no_cuda();
}
Expected<void> DeviceTrainer::zero_grad() { return no_cuda(); }
Expected<double> DeviceTrainer::clip_grad_norm(double) { return no_cuda(); }
Expected<void> DeviceTrainer::adamw_step(double, const AdamWSettings&, int64_t) { return no_cuda(); }
Expected<void> DeviceTrainer::download(TrainModel&, std::vector<std::vector<float>>*,
                                       std::vector<std::vector<float>>*) {
  return no_cuda();
}
Expected<void> DeviceTrainer::download_grads(TrainModel&) { return no_cuda(); }
Expected<void> DeviceTrainer::upload(const TrainModel&, const std::vector<std::vector<float>>&,
                                     const std::vector<std::vector<float>>&) {
  return no_cuda();
}
uint64_t DeviceTrainer::device_bytes() const { return 0; }

#else  // HEARTH_HAVE_CUDA

namespace {

using cuda::DType;
using cuda::Mat;
using Structure = TrainModel::Structure;

enum Target { T_Q = 0, T_K, T_V, T_O, T_GATE, T_UP, T_DOWN };

// Thrown inside, turned into an Error at the public boundary.
struct DevError : std::runtime_error {
  ErrorCode code;
  std::string hint;
  DevError(ErrorCode c, const std::string& m, std::string h = {})
      : std::runtime_error(m), code(c), hint(std::move(h)) {}
};

[[noreturn]] void cuda_fail(const char* call, cudaError_t e, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  throw DevError(ErrorCode::internal, std::string(call) + ": " + cudaGetErrorString(e) + " at " +
                                          (base ? base + 1 : file) + ":" + std::to_string(line));
}

#define HEARTH_CU(call)                                                                     \
  do {                                                                                      \
    cudaError_t hearth_cu_err = (call);                                                     \
    if (hearth_cu_err != cudaSuccess) cuda_fail(#call, hearth_cu_err, __FILE__, __LINE__);  \
  } while (0)

void check(Expected<void> r) {
  if (!r) throw DevError(r.error().code, r.error().message, r.error().hint);
}

std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / double(uint64_t(1) << 30));
  return buf;
}

// Bump allocation inside the one device block; with base == nullptr it only measures.
struct Arena {
  char* base = nullptr;
  uint64_t off = 0;
  template <class T>
  T* take(int64_t n) {
    T* p = base ? reinterpret_cast<T*>(base + off) : nullptr;
    off += (uint64_t(std::max<int64_t>(n, 0)) * sizeof(T) + 255) & ~uint64_t(255);
    return p;
  }
};

// A frozen base matrix on the device as stored (rows of k values, row_bytes each).
struct DevMat {
  GgmlType type = GgmlType::F32;
  const void* data = nullptr;
  uint64_t row_bytes = 0;
  int64_t rows = 0, k = 0;
};

// Where a matrix product takes a weight from.
struct WSrc {
  const float* f32 = nullptr;      // F32 values (f32 precision)
  const uint16_t* bf16 = nullptr;  // BF16 values (a trainable's copy, a BF16 base matrix)
  DevMat stored;                   // bf16 precision: a base matrix dequantized into scratch per use
};

struct DevParam {
  float *w = nullptr, *g = nullptr, *m = nullptr, *v = nullptr;
  uint16_t* w16 = nullptr;  // bf16 precision, weights of matrix products only
  int64_t n = 0;
  bool decay = true;
  bool wants16 = false;
};

// The frozen base of a LoRA run, one layer.
struct BaseLayer {
  std::array<const TensorRef*, 7> mats{};  // q, k, v, o, gate, up, down
  std::array<WSrc, 7> w{};
  std::array<const TensorRef*, 8> vecs{};  // attn_norm, ffn_norm, bq, bk, bv, bo, q_norm, k_norm
  std::array<float*, 8> v{};
};

// One layer's weights for this pass and where their gradients go (null: frozen or absent).
struct LayerW {
  std::array<WSrc, 7> w{};
  const float *attn_norm = nullptr, *ffn_norm = nullptr, *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr,
              *q_norm = nullptr, *k_norm = nullptr;
  std::array<float*, 7> dw{};
  float *d_attn_norm = nullptr, *d_ffn_norm = nullptr, *d_bq = nullptr, *d_bk = nullptr, *d_bv = nullptr,
        *d_bo = nullptr, *d_q_norm = nullptr, *d_k_norm = nullptr;
};

struct LayerActs {
  float* rstd1 = nullptr;
  float *q_lin = nullptr, *rstd_q = nullptr, *k_lin = nullptr, *rstd_k = nullptr;
  float *q = nullptr, *k = nullptr, *v = nullptr, *att = nullptr, *ao = nullptr, *x_mid = nullptr;
  float* rstd2 = nullptr;
  float *gate = nullptr, *up = nullptr;
  std::array<float*, 7> u{};
};

std::vector<float> host_f32(const TensorRef& t) {
  auto f = tensor_to_f32(t);
  if (!f) throw DevError(f.error().code, "tensor '" + t.name + "': " + f.error().message);
  return std::move(*f);
}

}  // namespace

struct DeviceTrainer::Impl {
  TrainModel* model = nullptr;
  const Structure* st = nullptr;
  ModelParams p;
  bool lora = false, bf16 = false;
  // One buffer of attention probabilities for all layers, recomputed in backward (B · Hq · T² floats
  // instead of L times that): asked for (training.recompute) or chosen when keeping them all does not fit.
  bool recompute_att = false, recompute_chosen = false;
  float* att_shared = nullptr;
  int device = 0;
  std::string name;
  int64_t max_B = 0, max_T = 0, maxN = 0;
  int64_t L = 0, D = 0, Hq = 0, Hkv = 0, hd = 0, Q = 0, K = 0, F = 0, V = 0, R = 0, Wmax = 0;
  float lora_scale = 0, lora_dropout = 0;
  int64_t chunk = 0;  // classifier rows per chunk

  cudaStream_t stream = nullptr;
  std::unique_ptr<cuda::TrainBlas> blas;
  void* block = nullptr;
  uint64_t bytes = 0;

  std::vector<DevParam> params;
  // lora base
  std::vector<BaseLayer> base_layers;
  DevMat embd;               // token embedding as stored (bf16) or F32 (f32)
  WSrc out;                  // classifier matrix
  float* out_norm = nullptr;
  bool out_is_embd = false;  // f32 lora with tied embeddings: out.f32 is embd's F32 table
  uint16_t* wscratch = nullptr;

  // batch
  int32_t *tokens_d = nullptr, *targets_d = nullptr, *plan_d = nullptr;
  double* inv_freq = nullptr;
  std::vector<float*> xs;
  std::vector<LayerActs> acts;
  float *xf = nullptr, *rstd_f = nullptr, *hn = nullptr, *hswi = nullptr, *tmp1 = nullptr, *tmp2 = nullptr;
  float *dhswi = nullptr, *dgate = nullptr, *dup = nullptr, *dh = nullptr, *dao = nullptr;
  float *dq = nullptr, *dk = nullptr, *dv = nullptr, *dq_lin = nullptr, *dk_lin = nullptr, *du = nullptr;
  float *dx = nullptr, *dxf = nullptr;
  std::array<uint16_t*, 4> s16{};  // BF16 operands: (N, Wmax) twice, (N, R), (N, max(D, F)) for a shared input
  const float* shared_src = nullptr;  // s16[3] holds BF16(shared_src[0 .. shared_n)) (see share())
  int64_t shared_n = 0;
  float* logits = nullptr;         // (chunk, V)
  uint16_t* logits16 = nullptr;    // (chunk, V), bf16
  double* row_loss = nullptr;
  cuda::CrossEntropyStats* stats = nullptr;  // one per chunk
  int64_t n_chunks_max = 0;
  float* partials = nullptr;
  int64_t n_partials = 0;
  double* norm_partials = nullptr;
  double* norm_out = nullptr;  // [sum of squares, norm]
  void* attn_scratch = nullptr;
  std::vector<const float*> grad_ptrs;
  std::vector<int64_t> grad_sizes;

  int64_t B = 0, T = 0, N = 0;

  ~Impl() {
    cudaSetDevice(device);
    if (stream) cudaStreamSynchronize(stream);
    blas.reset();
    if (block) cudaFree(block);
    if (stream) cudaStreamDestroy(stream);
    cudaGetLastError();
  }

  // ---- set-up --------------------------------------------------------------------------------------

  bool is_lora_target(int64_t l, int t) const { return lora && st->lora[size_t(l)][size_t(t)] >= 0; }
  bool any_target(int t) const {
    for (int64_t l = 0; l < L; ++l)
      if (is_lora_target(l, t)) return true;
    return false;
  }

  // Bytes per row of a stored matrix, checked against its size (the kernels read whole rows).
  static uint64_t stored_row_bytes(const TensorRef& t, int64_t k, int64_t rows) {
    auto rb = row_nbytes(t.type, k);
    if (!rb) throw DevError(ErrorCode::format, "tensor '" + t.name + "': " + rb.error().message);
    if (*rb * uint64_t(rows) != t.nbytes)
      throw DevError(ErrorCode::format, "tensor '" + t.name + "' holds " + std::to_string(t.nbytes) +
                                            " bytes, expected " + std::to_string(*rb * uint64_t(rows)));
    return *rb;
  }

  // A base matrix in bf16 precision: as stored when the kernels read that type, else BF16 converted here.
  void plan_base_mat(Arena& a, const TensorRef& t, WSrc& w, int64_t& scratch_need) {
    const int64_t k = t.shape.empty() ? 0 : t.shape[0];
    const int64_t rows = k > 0 ? t.n_elements() / k : 0;
    if (!bf16) {
      w.f32 = a.take<float>(t.n_elements());
      return;
    }
    if (t.type == GgmlType::BF16 || !hearth::cuda::weight_type_supported(t.type)) {
      w.bf16 = a.take<uint16_t>(t.n_elements());
      return;
    }
    w.stored = DevMat{t.type, a.take<uint8_t>(int64_t(t.nbytes)), stored_row_bytes(t, k, rows), rows, k};
    scratch_need = std::max(scratch_need, t.n_elements());
  }

  void plan(Arena& a) {
    const auto tr = model->trainable();
    params.assign(tr.size(), DevParam{});
    for (size_t i = 0; i < tr.size(); ++i) {
      DevParam& d = params[i];
      d.n = tr[i]->numel();
      d.decay = tr[i]->decay;
      d.w = a.take<float>(d.n), d.g = a.take<float>(d.n), d.m = a.take<float>(d.n), d.v = a.take<float>(d.n);
      d.wants16 = bf16 && tr[i]->shape.size() == 2 &&
                  !(int(i) == st->embed && !p.tied_embeddings);  // an untied embedding is only gathered
      if (d.wants16) d.w16 = a.take<uint16_t>(d.n);
    }
    int64_t scratch_need = 0;
    if (lora) {
      const ModelDesc& md = st->base->desc();
      base_layers.assign(size_t(L), BaseLayer{});
      for (int64_t l = 0; l < L; ++l) {
        const LayerTensors& lt = md.layers[size_t(l)];
        BaseLayer& bl = base_layers[size_t(l)];
        bl.mats = {&lt.wq, &lt.wk, &lt.wv, &lt.wo, &lt.ffn_gate, &lt.ffn_up, &lt.ffn_down};
        bl.vecs = {&lt.attn_norm, &lt.ffn_norm, &lt.bq, &lt.bk, &lt.bv, &lt.bo, &lt.q_norm, &lt.k_norm};
        for (int t = 0; t < 7; ++t) plan_base_mat(a, *bl.mats[size_t(t)], bl.w[size_t(t)], scratch_need);
        for (int i = 0; i < 8; ++i)
          bl.v[size_t(i)] = bl.vecs[size_t(i)]->present() ? a.take<float>(bl.vecs[size_t(i)]->n_elements()) : nullptr;
      }
      const TensorRef& te = md.tok_embd;
      const bool embd_stored = bf16 && hearth::cuda::weight_type_supported(te.type);
      if (embd_stored) {
        embd = DevMat{te.type, a.take<uint8_t>(int64_t(te.nbytes)), stored_row_bytes(te, D, V), V, D};
      } else {
        embd = DevMat{GgmlType::F32, a.take<float>(V * D), uint64_t(D) * 4, V, D};
      }
      out = WSrc{};
      out_is_embd = !bf16 && p.tied_embeddings;
      if (out_is_embd)
        out.f32 = static_cast<const float*>(embd.data);
      else if (bf16)
        out.bf16 = a.take<uint16_t>(V * D);
      else
        out.f32 = a.take<float>(V * D);
      out_norm = a.take<float>(D);
      wscratch = a.take<uint16_t>(scratch_need);
    }
    const int64_t N = maxN;
    tokens_d = a.take<int32_t>(N);
    targets_d = a.take<int32_t>(N);
    plan_d = lora ? nullptr : a.take<int32_t>(3 * N + 1);
    inv_freq = a.take<double>(hd / 2);
    xs.assign(size_t(L + 1), nullptr);
    for (auto& x : xs) x = a.take<float>(N * D);
    acts.assign(size_t(L), LayerActs{});
    att_shared = recompute_att ? a.take<float>(max_B * Hq * max_T * max_T) : nullptr;
    for (LayerActs& s : acts) {
      s.rstd1 = a.take<float>(N);
      if (p.has_qk_norm) {
        s.q_lin = a.take<float>(N * Q), s.rstd_q = a.take<float>(N * Hq);
        s.k_lin = a.take<float>(N * K), s.rstd_k = a.take<float>(N * Hkv);
      }
      s.q = a.take<float>(N * Q), s.k = a.take<float>(N * K), s.v = a.take<float>(N * K);
      s.att = recompute_att ? att_shared : a.take<float>(max_B * Hq * max_T * max_T);
      s.ao = a.take<float>(N * Q);
      s.x_mid = a.take<float>(N * D);
      s.rstd2 = a.take<float>(N);
      s.gate = a.take<float>(N * F), s.up = a.take<float>(N * F);
      if (lora)
        for (int t = 0; t < 7; ++t)
          if (any_target(t)) s.u[size_t(t)] = a.take<float>(N * R);
    }
    xf = a.take<float>(N * D), rstd_f = a.take<float>(N);
    hn = a.take<float>(N * D), hswi = a.take<float>(N * F);
    tmp1 = a.take<float>(N * Wmax), tmp2 = a.take<float>(N * Wmax);
    dhswi = a.take<float>(N * F), dgate = a.take<float>(N * F), dup = a.take<float>(N * F);
    dh = a.take<float>(N * D), dao = a.take<float>(N * Q);
    dq = a.take<float>(N * Q), dk = a.take<float>(N * K), dv = a.take<float>(N * K);
    if (p.has_qk_norm) dq_lin = a.take<float>(N * Q), dk_lin = a.take<float>(N * K);
    du = a.take<float>(N * std::max<int64_t>(R, 1));
    dx = a.take<float>(N * D), dxf = a.take<float>(N * D);
    if (bf16) {
      s16[0] = a.take<uint16_t>(N * Wmax), s16[1] = a.take<uint16_t>(N * Wmax);
      s16[2] = a.take<uint16_t>(N * std::max<int64_t>(R, 1));
      s16[3] = a.take<uint16_t>(N * std::max(D, F));
    }
    logits = a.take<float>(chunk * V);
    if (bf16) logits16 = a.take<uint16_t>(chunk * V);
    row_loss = a.take<double>(chunk);
    stats = a.take<cuda::CrossEntropyStats>(n_chunks_max);
    partials = a.take<float>(n_partials);
    std::vector<int64_t> sizes;
    for (const DevParam& d : params) sizes.push_back(d.n);
    norm_partials = a.take<double>(cuda::grad_norm_partials(sizes.data(), int(sizes.size())));
    norm_out = a.take<double>(2);
    cuda::AttnShape as{max_B, max_T, Hq, Hkv, hd};
    attn_scratch = a.take<uint8_t>(int64_t(cuda::attention_scratch_bytes(as, bf16)));
  }

  void setup(TrainModel& m, const DeviceTrainOptions& o, int64_t mb, int64_t mt) {
    model = &m;
    st = &m.structure();
    p = m.params();
    lora = m.options().method == Method::lora;
    bf16 = o.precision == TrainPrecision::bf16;
    device = o.gpu_index;
    max_B = mb, max_T = mt, maxN = mb * mt;
    L = p.n_layer, D = p.n_embd, Hq = p.n_head, Hkv = p.n_head_kv, hd = p.head_dim;
    Q = Hq * hd, K = Hkv * hd, F = p.n_ff, V = p.n_vocab;
    R = lora ? m.options().lora.rank : 0;
    lora_scale = lora ? m.options().lora.scale() : 0.0f;
    lora_dropout = lora ? m.options().lora.dropout : 0.0f;
    Wmax = std::max({D, Q, K, F, R, int64_t(1)});
    // Classifier rows per chunk: up to 256 MB of F32 logits. HEARTH_TRAIN_GPU_CHUNK (tests) forces a count.
    chunk = std::clamp<int64_t>((int64_t(64) << 20) / std::max<int64_t>(V, 1), 64, 4096);
    if (const char* c = std::getenv("HEARTH_TRAIN_GPU_CHUNK"); c && std::atoll(c) > 0) chunk = std::atoll(c);
    chunk = std::min(maxN, chunk);
    n_chunks_max = (maxN + chunk - 1) / chunk;
    n_partials = std::max({cuda::rmsnorm_dw_partials(maxN, D), cuda::rmsnorm_dw_partials(maxN * Hq, hd),
                           cuda::rmsnorm_dw_partials(maxN * Hkv, hd), cuda::bias_grad_partials(maxN, Q),
                           cuda::bias_grad_partials(maxN, K), cuda::bias_grad_partials(maxN, D), int64_t(1)});
    if (st->inv_freq.size() < size_t(hd / 2))
      throw DevError(ErrorCode::internal, "the model has " + std::to_string(st->inv_freq.size()) +
                                              " RoPE frequencies, expected " + std::to_string(hd / 2));

    HEARTH_CU(cudaSetDevice(device));
    cudaDeviceProp prop{};
    HEARTH_CU(cudaGetDeviceProperties(&prop, device));
    name = prop.name;
    HEARTH_CU(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    {
      auto b = cuda::TrainBlas::create(stream);
      if (!b) throw DevError(b.error().code, b.error().message, b.error().hint);
      blas = std::move(*b);
    }

    recompute_att = o.recompute_attention;
    Arena measure;
    plan(measure);
    size_t free_b = 0, total_b = 0;
    HEARTH_CU(cudaMemGetInfo(&free_b, &total_b));
    if (measure.off > free_b && !recompute_att && L > 1) {  // try with one layer's probabilities
      recompute_att = recompute_chosen = true;
      measure = Arena{};
      plan(measure);  // when even this does not fit, the error below gives its (smaller) figure
    }
    if (measure.off > free_b)
      throw DevError(ErrorCode::unsupported,
                     "out of GPU memory: training needs " + gib(measure.off) + " on " + name + ", which has " +
                         gib(free_b) + " free",
                     "use a smaller batch or sequence length, LoRA, or the CPU");
    if (cudaError_t e = cudaMalloc(&block, std::max<uint64_t>(measure.off, 256)); e != cudaSuccess) {
      cudaGetLastError();
      block = nullptr;
      throw DevError(ErrorCode::unsupported, "out of GPU memory: allocating " + gib(measure.off) + " on " + name +
                                                 " (" + gib(free_b) + " free) failed: " + cudaGetErrorString(e));
    }
    bytes = measure.off;
    Arena real{static_cast<char*>(block), 0};
    plan(real);

    // Contents.
    upload_params(m, {}, {}, true);
    std::vector<double> fr(size_t(hd / 2));
    for (size_t i = 0; i < fr.size(); ++i) fr[i] = double(st->inv_freq[i]);
    put(inv_freq, fr.data(), fr.size() * sizeof(double));
    if (lora) upload_base();
    for (const DevParam& d : params) grad_ptrs.push_back(d.g), grad_sizes.push_back(d.n);
    HEARTH_CU(cudaStreamSynchronize(stream));
  }

  // Host -> device in stream order: a plain cudaMemcpy runs on the legacy stream, which a non-blocking
  // stream does not wait for (and from pageable memory it may return before the DMA is done).
  void put(void* dst, const void* src, uint64_t n) {
    if (n) HEARTH_CU(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, stream));
  }
  void get(void* dst, const void* src, uint64_t n) {
    if (n) HEARTH_CU(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, stream));
  }
  void put_bf16(uint16_t* dst, const std::vector<float>& v) {
    std::vector<uint16_t> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = fp32_to_bf16(v[i]);
    put(dst, h.data(), h.size() * 2);
  }
  void put_base_mat(const TensorRef& t, const WSrc& w) {
    if (w.f32) put(const_cast<float*>(w.f32), host_f32(t).data(), uint64_t(t.n_elements()) * 4);
    else if (w.bf16) put_bf16(const_cast<uint16_t*>(w.bf16), host_f32(t));
    else put(const_cast<void*>(w.stored.data), t.data, t.nbytes);
  }

  void upload_base() {
    const ModelDesc& md = st->base->desc();
    for (BaseLayer& bl : base_layers) {
      for (int t = 0; t < 7; ++t) put_base_mat(*bl.mats[size_t(t)], bl.w[size_t(t)]);
      for (int i = 0; i < 8; ++i) {
        const TensorRef& t = *bl.vecs[size_t(i)];
        if (bl.v[size_t(i)]) put(bl.v[size_t(i)], host_f32(t).data(), uint64_t(t.n_elements()) * 4);
      }
    }
    const TensorRef& te = md.tok_embd;
    if (embd.type == GgmlType::F32)
      put(const_cast<void*>(embd.data), host_f32(te).data(), uint64_t(V * D) * 4);
    else
      put(const_cast<void*>(embd.data), te.data, te.nbytes);
    if (!out_is_embd) {
      std::vector<float> o = host_f32(md.output_weight());
      if (int64_t(o.size()) != V * D) throw DevError(ErrorCode::format, "output matrix size");
      if (out.bf16) put_bf16(const_cast<uint16_t*>(out.bf16), o);
      else put(const_cast<float*>(out.f32), o.data(), o.size() * 4);
    }
    put(out_norm, host_f32(md.output_norm).data(), uint64_t(D) * 4);
  }

  // The model's trainable tensors, which must be the ones this trainer was made for (their count).
  template <class M>
  auto checked_trainable(M& m) const {
    auto tr = m.trainable();
    if (tr.size() != params.size())
      throw DevError(ErrorCode::invalid_argument, "the model has " + std::to_string(tr.size()) +
                                                      " trainable tensors, the GPU trainer " +
                                                      std::to_string(params.size()));
    return tr;
  }

  void upload_params(const TrainModel& m, const std::vector<std::vector<float>>& mm,
                     const std::vector<std::vector<float>>& vv, bool fresh) {
    const auto tr = checked_trainable(m);
    auto check_sizes = [&](const std::vector<std::vector<float>>& x, const char* what) {
      if (x.empty()) return;
      if (x.size() != params.size())
        throw DevError(ErrorCode::invalid_argument, std::string(what) + ": " + std::to_string(x.size()) +
                                                        " tensors, expected " + std::to_string(params.size()));
      for (size_t i = 0; i < x.size(); ++i)
        if (int64_t(x[i].size()) != params[i].n)
          throw DevError(ErrorCode::invalid_argument, std::string(what) + " of '" + tr[i]->name + "': " +
                                                          std::to_string(x[i].size()) + " values, expected " +
                                                          std::to_string(params[i].n));
    };
    for (size_t i = 0; i < tr.size(); ++i)
      if (int64_t(tr[i]->value.size()) != params[i].n)
        throw DevError(ErrorCode::invalid_argument, "'" + tr[i]->name + "' has " +
                                                        std::to_string(tr[i]->value.size()) + " values, expected " +
                                                        std::to_string(params[i].n));
    check_sizes(mm, "first moments");
    check_sizes(vv, "second moments");
    for (size_t i = 0; i < tr.size(); ++i) {
      DevParam& d = params[i];
      put(d.w, tr[i]->value.data(), uint64_t(d.n) * 4);
      if (d.w16) HEARTH_CU(cuda::f32_to_bf16(d.w, d.w16, d.n, stream));
      if (fresh) {
        HEARTH_CU(cudaMemsetAsync(d.g, 0, uint64_t(d.n) * 4, stream));
        HEARTH_CU(cudaMemsetAsync(d.m, 0, uint64_t(d.n) * 4, stream));
        HEARTH_CU(cudaMemsetAsync(d.v, 0, uint64_t(d.n) * 4, stream));
      }
      if (!mm.empty()) put(d.m, mm[i].data(), uint64_t(d.n) * 4);
      if (!vv.empty()) put(d.v, vv[i].data(), uint64_t(d.n) * 4);
    }
    HEARTH_CU(cudaStreamSynchronize(stream));
  }

  // ---- operands ------------------------------------------------------------------------------------

  Mat wmat(const WSrc& w) {
    if (!bf16) return Mat{w.f32, DType::f32, 0};
    if (w.bf16) return Mat{w.bf16, DType::bf16, 0};
    const DevMat& s = w.stored;
    HEARTH_CU(hearth::cuda::dequantize_bf16(s.type, s.data, s.row_bytes, s.rows, s.k, wscratch, stream));
    return Mat{wscratch, DType::bf16, 0};
  }
  // An activation (n values) as a product operand: itself in f32, converted into slot in bf16.
  Mat act(const float* x, int64_t n, int slot) {
    if (!bf16) return Mat{x, DType::f32, 0};
    if (x == shared_src && n == shared_n) return Mat{s16[3], DType::bf16, 0};
    HEARTH_CU(cuda::f32_to_bf16(x, s16[size_t(slot)], n, stream));
    return Mat{s16[size_t(slot)], DType::bf16, 0};
  }
  // One input read by several products (q/k/v, gate/up): converted once while shared. The caller
  // unshares before anything writes x again.
  void share(const float* x, int64_t n) {
    if (!bf16) return;
    HEARTH_CU(cuda::f32_to_bf16(x, s16[3], n, stream));
    shared_src = x, shared_n = n;
  }
  void unshare() { shared_src = nullptr, shared_n = 0; }
  WSrc param_src(int i) const {
    WSrc w;
    w.f32 = params[size_t(i)].w;
    w.bf16 = params[size_t(i)].w16;
    return w;
  }
  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, Mat a, Mat b, float beta, float* c) {
    check(blas->gemm(ta, tb, m, n, k, alpha, a, b, beta, c));
  }

  LayerW view(int64_t l) const {
    LayerW w;
    if (!lora) {
      const Structure::FullLayer& f = st->full[size_t(l)];
      const std::array<int, 7> mi = {f.wq, f.wk, f.wv, f.wo, f.gate, f.up, f.down};
      for (int t = 0; t < 7; ++t) {
        w.w[size_t(t)] = param_src(mi[size_t(t)]);
        w.dw[size_t(t)] = params[size_t(mi[size_t(t)])].g;
      }
      auto pv = [&](int i) -> const float* { return i < 0 ? nullptr : params[size_t(i)].w; };
      auto pg = [&](int i) -> float* { return i < 0 ? nullptr : params[size_t(i)].g; };
      w.attn_norm = pv(f.attn_norm), w.ffn_norm = pv(f.ffn_norm), w.bq = pv(f.bq), w.bk = pv(f.bk);
      w.bv = pv(f.bv), w.bo = pv(f.bo), w.q_norm = pv(f.q_norm), w.k_norm = pv(f.k_norm);
      w.d_attn_norm = pg(f.attn_norm), w.d_ffn_norm = pg(f.ffn_norm), w.d_bq = pg(f.bq), w.d_bk = pg(f.bk);
      w.d_bv = pg(f.bv), w.d_bo = pg(f.bo), w.d_q_norm = pg(f.q_norm), w.d_k_norm = pg(f.k_norm);
      return w;
    }
    const BaseLayer& bl = base_layers[size_t(l)];
    w.w = bl.w;
    w.attn_norm = bl.v[0], w.ffn_norm = bl.v[1], w.bq = bl.v[2], w.bk = bl.v[3], w.bv = bl.v[4], w.bo = bl.v[5];
    w.q_norm = bl.v[6], w.k_norm = bl.v[7];
    return w;
  }

  // ---- linear with LoRA (train-model.cpp's lin_forward / lin_backward) ------------------------------

  float dropout_p(bool train) const { return lora && train ? lora_dropout : 0.0f; }

  // u = dropout(x) · A^T (N, R).
  void lora_u(float* u, const float* x, int64_t l, int t, int64_t in, bool train, uint64_t step_seed) {
    const int ia = st->lora[size_t(l)][size_t(t)];
    const float pd = dropout_p(train);
    const float* xd = x;
    if (pd > 0) {
      HEARTH_CU(cuda::dropout_forward(tmp2, x, N * in, pd, Structure::lora_dropout_seed(step_seed, l, t), stream));
      xd = tmp2;
    }
    gemm(false, true, N, R, in, 1.0f, act(xd, N * in, 1), wmat(param_src(ia)), 0.0f, u);
  }

  void lin_forward(float* y, const float* x, const WSrc& w, const float* b, int64_t in, int64_t out, bool accumulate,
                   int64_t l, int t, float* u, int64_t perm_heads, bool train, uint64_t seed) {
    float* dst = perm_heads > 0 ? tmp1 : y;
    const bool acc = perm_heads > 0 ? false : accumulate;
    float beta = acc ? 1.0f : 0.0f;
    if (b) {
      if (!acc) HEARTH_CU(cudaMemsetAsync(dst, 0, uint64_t(N * out) * 4, stream));
      HEARTH_CU(hearth::cuda::add_bias(dst, b, N, out, stream));
      beta = 1.0f;
    }
    gemm(false, true, N, out, in, 1.0f, act(x, N * in, 0), wmat(w), beta, dst);
    if (perm_heads > 0) HEARTH_CU(cuda::qk_to_hf(y, tmp1, N, perm_heads, hd, stream));
    if (is_lora_target(l, t)) {
      lora_u(u, x, l, t, in, train, seed);
      const int ib = st->lora[size_t(l)][size_t(t)] + 1;
      gemm(false, true, N, out, R, lora_scale, act(u, N * R, 2), wmat(param_src(ib)), 1.0f, y);
    }
  }

  void lin_backward(float* dxp, float* dw, float* db, const float* dy, const float* x, const WSrc& w, int64_t in,
                    int64_t out, int64_t l, int t, const float* u, int64_t perm_heads, uint64_t seed) {
    if (is_lora_target(l, t)) {
      const int ia = st->lora[size_t(l)][size_t(t)], ib = ia + 1;
      const float s = lora_scale;
      const Mat DY = act(dy, N * out, 0);
      gemm(true, false, out, R, N, s, DY, act(u, N * R, 1), 1.0f, params[size_t(ib)].g);  // dB += s dy^T u
      gemm(false, false, N, R, out, s, DY, wmat(param_src(ib)), 0.0f, du);                // du = s dy B
      const float pd = dropout_p(true);
      const uint64_t ds = Structure::lora_dropout_seed(seed, l, t);
      const float* xd = x;
      if (pd > 0) {
        HEARTH_CU(cuda::dropout_forward(tmp2, x, N * in, pd, ds, stream));
        xd = tmp2;
      }
      const Mat DU = act(du, N * R, 2);
      gemm(true, false, R, in, N, 1.0f, DU, act(xd, N * in, 1), 1.0f, params[size_t(ia)].g);  // dA += du^T xd
      if (!dxp) {
      } else if (pd > 0) {
        gemm(false, false, N, in, R, 1.0f, DU, wmat(param_src(ia)), 0.0f, tmp2);
        HEARTH_CU(cuda::dropout_backward(dxp, tmp2, N * in, pd, ds, stream));
      } else {
        gemm(false, false, N, in, R, 1.0f, DU, wmat(param_src(ia)), 1.0f, dxp);  // dx += du A
      }
    }
    if (!dxp && !dw && !db) return;
    if (perm_heads > 0) {
      HEARTH_CU(cuda::qk_from_hf(tmp1, dy, N, perm_heads, hd, stream));
      dy = tmp1;
    }
    const Mat DY = act(dy, N * out, 0);
    if (dxp) gemm(false, false, N, in, out, 1.0f, DY, wmat(w), 1.0f, dxp);           // dx += dy W
    if (dw) gemm(true, false, out, in, N, 1.0f, DY, act(x, N * in, 1), 1.0f, dw);    // dW += dy^T x
    if (db) HEARTH_CU(cuda::bias_backward(db, dy, N, out, partials, stream));
  }

  // ---- one layer -----------------------------------------------------------------------------------

  void zero(float* ptr, int64_t n) { HEARTH_CU(cudaMemsetAsync(ptr, 0, uint64_t(n) * 4, stream)); }
  void copy(float* dst, const float* src, int64_t n) {
    HEARTH_CU(cudaMemcpyAsync(dst, src, uint64_t(n) * 4, cudaMemcpyDeviceToDevice, stream));
  }
  cuda::AttnShape attn_shape() const { return cuda::AttnShape{B, T, Hq, Hkv, hd}; }

  void layer_forward(int64_t l, const LayerW& w, LayerActs& a, const float* x_in, float* x_out, bool train,
                     uint64_t seed) {
    const float eps = p.rms_eps;
    const int64_t pq = lora && st->permuted_qk ? Hq : 0, pk = lora && st->permuted_qk ? Hkv : 0;
    HEARTH_CU(cuda::rmsnorm_forward(hn, a.rstd1, x_in, w.attn_norm, N, D, eps, stream));
    float* qdst = p.has_qk_norm ? a.q_lin : a.q;
    float* kdst = p.has_qk_norm ? a.k_lin : a.k;
    share(hn, N * D);
    lin_forward(qdst, hn, w.w[T_Q], w.bq, D, Q, false, l, T_Q, a.u[T_Q], pq, train, seed);
    lin_forward(kdst, hn, w.w[T_K], w.bk, D, K, false, l, T_K, a.u[T_K], pk, train, seed);
    lin_forward(a.v, hn, w.w[T_V], w.bv, D, K, false, l, T_V, a.u[T_V], 0, train, seed);
    unshare();
    if (p.has_qk_norm) {
      HEARTH_CU(cuda::rmsnorm_forward(a.q, a.rstd_q, a.q_lin, w.q_norm, N * Hq, hd, eps, stream));
      HEARTH_CU(cuda::rmsnorm_forward(a.k, a.rstd_k, a.k_lin, w.k_norm, N * Hkv, hd, eps, stream));
    }
    HEARTH_CU(cuda::rope_forward(a.q, B, T, Hq, hd, inv_freq, false, stream));
    HEARTH_CU(cuda::rope_forward(a.k, B, T, Hkv, hd, inv_freq, false, stream));
    check(cuda::attention_forward(*blas, bf16, a.ao, a.att, a.q, a.k, a.v, attn_shape(), attn_scratch));
    copy(a.x_mid, x_in, N * D);
    lin_forward(a.x_mid, a.ao, w.w[T_O], w.bo, Q, D, true, l, T_O, a.u[T_O], 0, train, seed);
    HEARTH_CU(cuda::rmsnorm_forward(hn, a.rstd2, a.x_mid, w.ffn_norm, N, D, eps, stream));
    share(hn, N * D);
    lin_forward(a.gate, hn, w.w[T_GATE], nullptr, D, F, false, l, T_GATE, a.u[T_GATE], 0, train, seed);
    lin_forward(a.up, hn, w.w[T_UP], nullptr, D, F, false, l, T_UP, a.u[T_UP], 0, train, seed);
    unshare();
    HEARTH_CU(cuda::swiglu_forward(hswi, a.gate, a.up, N * F, stream));
    copy(x_out, a.x_mid, N * D);
    lin_forward(x_out, hswi, w.w[T_DOWN], nullptr, F, D, true, l, T_DOWN, a.u[T_DOWN], 0, train, seed);
  }

  // dx holds d(layer output) on entry and d(layer input) on return (d(x_mid) when !need_dx_in).
  void layer_backward(int64_t l, const LayerW& w, LayerActs& a, const float* x_in, bool need_dx_in, uint64_t seed) {
    const int64_t pq = lora && st->permuted_qk ? Hq : 0, pk = lora && st->permuted_qk ? Hkv : 0;
    HEARTH_CU(cuda::swiglu_forward(hswi, a.gate, a.up, N * F, stream));
    zero(dhswi, N * F);
    lin_backward(dhswi, w.dw[T_DOWN], nullptr, dx, hswi, w.w[T_DOWN], F, D, l, T_DOWN, a.u[T_DOWN], 0, seed);
    zero(dgate, N * F);
    zero(dup, N * F);
    HEARTH_CU(cuda::swiglu_backward(dgate, dup, dhswi, a.gate, a.up, N * F, stream));
    zero(dh, N * D);
    HEARTH_CU(cuda::rmsnorm_forward(hn, a.rstd2, a.x_mid, w.ffn_norm, N, D, p.rms_eps, stream));
    share(hn, N * D);
    lin_backward(dh, w.dw[T_GATE], nullptr, dgate, hn, w.w[T_GATE], D, F, l, T_GATE, a.u[T_GATE], 0, seed);
    lin_backward(dh, w.dw[T_UP], nullptr, dup, hn, w.w[T_UP], D, F, l, T_UP, a.u[T_UP], 0, seed);
    unshare();
    HEARTH_CU(cuda::rmsnorm_backward(dx, w.d_ffn_norm, dh, a.x_mid, w.ffn_norm, a.rstd2, N, D, partials, stream));

    zero(dao, N * Q);
    lin_backward(dao, w.dw[T_O], w.d_bo, dx, a.ao, w.w[T_O], Q, D, l, T_O, a.u[T_O], 0, seed);
    zero(dq, N * Q);
    zero(dk, N * K);
    zero(dv, N * K);
    // A shared probabilities buffer still holds the last layer's from the forward pass; others are redone.
    if (recompute_att && l != L - 1)
      check(cuda::attention_probs(*blas, bf16, a.att, a.q, a.k, attn_shape(), attn_scratch));
    check(cuda::attention_backward(*blas, bf16, dq, dk, dv, dao, a.att, a.q, a.k, a.v, attn_shape(), attn_scratch));
    HEARTH_CU(cuda::rope_backward(dq, B, T, Hq, hd, inv_freq, false, stream));
    HEARTH_CU(cuda::rope_backward(dk, B, T, Hkv, hd, inv_freq, false, stream));
    const float* dqp = dq;
    const float* dkp = dk;
    if (p.has_qk_norm) {
      zero(dq_lin, N * Q);
      zero(dk_lin, N * K);
      HEARTH_CU(cuda::rmsnorm_backward(dq_lin, w.d_q_norm, dq, a.q_lin, w.q_norm, a.rstd_q, N * Hq, hd, partials,
                                       stream));
      HEARTH_CU(cuda::rmsnorm_backward(dk_lin, w.d_k_norm, dk, a.k_lin, w.k_norm, a.rstd_k, N * Hkv, hd, partials,
                                       stream));
      dqp = dq_lin, dkp = dk_lin;
    }
    float* dh1 = need_dx_in ? dh : nullptr;
    HEARTH_CU(cuda::rmsnorm_forward(hn, a.rstd1, x_in, w.attn_norm, N, D, p.rms_eps, stream));
    if (dh1) zero(dh1, N * D);
    share(hn, N * D);
    lin_backward(dh1, w.dw[T_Q], w.d_bq, dqp, hn, w.w[T_Q], D, Q, l, T_Q, a.u[T_Q], pq, seed);
    lin_backward(dh1, w.dw[T_K], w.d_bk, dkp, hn, w.w[T_K], D, K, l, T_K, a.u[T_K], pk, seed);
    lin_backward(dh1, w.dw[T_V], w.d_bv, dv, hn, w.w[T_V], D, K, l, T_V, a.u[T_V], 0, seed);
    unshare();
    if (dh1)
      HEARTH_CU(cuda::rmsnorm_backward(dx, w.d_attn_norm, dh1, x_in, w.attn_norm, a.rstd1, N, D, partials, stream));
  }

  // ---- whole network ---------------------------------------------------------------------------------

  void check_batch(std::span<const int32_t> tokens, std::span<const int32_t> targets, int64_t b, int64_t t) {
    if (auto ok = train::check_batch(p, tokens, targets, b, t); !ok)
      throw DevError(ok.error().code, ok.error().message, ok.error().hint);
    if (b > max_B || t > max_T)
      throw DevError(ErrorCode::invalid_argument,
                     "batch of " + std::to_string(b) + " x " + std::to_string(t) +
                         " exceeds the GPU trainer's " + std::to_string(max_B) + " x " + std::to_string(max_T));
  }


  // The fused classifier in chunks of rows: logits, cross-entropy (dlogits in place), dx and dW. Enqueues
  // only: the chunks' statistics are read by loss_sum() once the backward pass is enqueued too, so the
  // host never waits in the middle of a step. Returns the number of counted targets.
  std::vector<int64_t> used;  // chunks whose statistics hold losses
  int64_t classify(std::span<const int32_t> targets, bool train, float grad_scale) {
    int64_t total = 0;
    for (int64_t i = 0; i < N; ++i) total += targets[size_t(i)] >= 0;
    used.clear();
    if (train) zero(dxf, N * D);
    if (total == 0) return 0;
    const WSrc ws = lora ? out : param_src(p.tied_embeddings ? st->embed : st->lm_head);
    float* dW = train && !lora ? params[size_t(p.tied_embeddings ? st->embed : st->lm_head)].g : nullptr;
    for (int64_t c0 = 0, ci = 0; c0 < N; c0 += chunk, ++ci) {
      const int64_t n = std::min(chunk, N - c0);
      int64_t cnt = 0;
      for (int64_t i = c0; i < c0 + n; ++i) cnt += targets[size_t(i)] >= 0;
      if (cnt == 0) continue;
      used.push_back(ci);
      const Mat W = wmat(ws);
      const Mat X = act(xf + c0 * D, n * D, 1);
      gemm(false, true, n, V, D, 1.0f, X, W, 0.0f, logits);
      // The kernel divides by the chunk's count; the loss is the mean over all chunks' rows.
      const float gs = float(double(grad_scale) * double(cnt) / double(total));
      // dlogits in place (f32), or straight into the BF16 operand buffer (bf16).
      void* dl = !train ? nullptr : bf16 ? static_cast<void*>(logits16) : static_cast<void*>(logits);
      const DType dlt = bf16 ? DType::bf16 : DType::f32;
      HEARTH_CU(cuda::cross_entropy(logits, DType::f32, dl, dlt, targets_d + c0, n, V, gs, row_loss, stats + ci,
                                    stream));
      if (!train) continue;
      const Mat DL{dl, dlt, 0};
      gemm(false, false, n, D, V, 1.0f, DL, W, 1.0f, dxf + c0 * D);     // dx += dlogits W
      if (dW) gemm(true, false, V, D, n, 1.0f, DL, X, 1.0f, dW);        // dW += dlogits^T x
    }
    return total;
  }

  // The sum of the losses of the last classify() (synchronizes the stream).
  double loss_sum(int64_t total) {
    if (used.empty()) {
      HEARTH_CU(cudaStreamSynchronize(stream));
      return 0.0;
    }
    std::vector<cuda::CrossEntropyStats> hs(static_cast<size_t>(n_chunks_max));
    HEARTH_CU(cudaMemcpyAsync(hs.data(), stats, hs.size() * sizeof(cuda::CrossEntropyStats), cudaMemcpyDeviceToHost,
                              stream));
    HEARTH_CU(cudaStreamSynchronize(stream));
    double sum = 0;
    int64_t n_dev = 0;
    for (int64_t ci : used) sum += hs[size_t(ci)].loss_sum, n_dev += hs[size_t(ci)].n_counted;
    if (n_dev != total)
      throw DevError(ErrorCode::internal, "the GPU counted " + std::to_string(n_dev) + " targets, the host " +
                                              std::to_string(total));
    return sum;
  }

  LossResult run(std::span<const int32_t> tokens, std::span<const int32_t> targets, int64_t b, int64_t t,
                 bool train, float grad_scale, uint64_t seed) {
    check_batch(tokens, targets, b, t);
    HEARTH_CU(cudaSetDevice(device));
    B = b, T = t, N = b * t;
    cuda::EmbeddingGradPlan plan;
    if (train && !lora) {
      auto pl = cuda::plan_embedding_backward(tokens.data(), N, V);
      if (!pl) throw DevError(pl.error().code, pl.error().message, pl.error().hint);
      plan = std::move(*pl);
    }
    HEARTH_CU(cudaMemcpyAsync(tokens_d, tokens.data(), uint64_t(N) * 4, cudaMemcpyHostToDevice, stream));
    HEARTH_CU(cudaMemcpyAsync(targets_d, targets.data(), uint64_t(N) * 4, cudaMemcpyHostToDevice, stream));
    if (!plan.packed.empty())
      HEARTH_CU(cudaMemcpyAsync(plan_d, plan.packed.data(), plan.packed.size() * 4, cudaMemcpyHostToDevice, stream));

    if (lora)
      HEARTH_CU(hearth::cuda::get_rows(embd.type, embd.data, embd.row_bytes, D, tokens_d, N, xs[0], stream));
    else
      HEARTH_CU(hearth::cuda::get_rows(GgmlType::F32, params[size_t(st->embed)].w, uint64_t(D) * 4, D, tokens_d, N,
                                       xs[0], stream));
    for (int64_t l = 0; l < L; ++l)
      layer_forward(l, view(l), acts[size_t(l)], xs[size_t(l)], xs[size_t(l) + 1], train, seed);
    const float* nw = lora ? out_norm : params[size_t(st->norm)].w;
    HEARTH_CU(cuda::rmsnorm_forward(xf, rstd_f, xs[size_t(L)], nw, N, D, p.rms_eps, stream));
    const int64_t counted = classify(targets, train, grad_scale);
    LossResult r;
    r.n_tokens = counted;
    if (!train) {
      r.loss = counted > 0 ? loss_sum(counted) / double(counted) : 0.0;
      return r;
    }

    zero(dx, N * D);
    HEARTH_CU(cuda::rmsnorm_backward(dx, lora ? nullptr : params[size_t(st->norm)].g, dxf, xs[size_t(L)], nw, rstd_f,
                                     N, D, partials, stream));
    for (int64_t l = L - 1; l >= 0; --l)
      layer_backward(l, view(l), acts[size_t(l)], xs[size_t(l)], !(lora && l == 0), seed);
    if (!lora)
      HEARTH_CU(cuda::embedding_backward(params[size_t(st->embed)].g, dx, plan_d, plan.n_segments, N, D, stream));
    const double sum = loss_sum(counted);  // synchronizes: the step is done when this returns
    r.loss = counted > 0 ? sum / double(counted) : 0.0;
    return r;
  }
};

namespace {

template <class F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const DevError& e) {
    return make_error(e.code, e.what(), e.hint);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::io, "out of host memory in the GPU trainer");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("GPU trainer: ") + e.what());
  }
}

}  // namespace

std::string cuda_training_unavailable(int gpu_index) {
  int n = 0;
  if (cudaError_t e = cudaGetDeviceCount(&n); e != cudaSuccess) {
    cudaGetLastError();
    return std::string("no usable CUDA device: ") + cudaGetErrorString(e);
  }
  if (n <= 0) return "no CUDA device found";
  if (gpu_index < 0 || gpu_index >= n)
    return "GPU " + std::to_string(gpu_index) + " does not exist (" + std::to_string(n) + " CUDA device" +
           (n == 1 ? "" : "s") + " found)";
  cudaDeviceProp prop{};
  if (cudaError_t e = cudaGetDeviceProperties(&prop, gpu_index); e != cudaSuccess) {
    cudaGetLastError();
    return "GPU " + std::to_string(gpu_index) + ": " + cudaGetErrorString(e);
  }
  if (prop.major < 8)
    return std::string(prop.name) + " has compute capability " + std::to_string(prop.major) + "." +
           std::to_string(prop.minor) + "; GPU training needs 8.0 or newer";
  std::string why;
  if (!hearth::cuda::cublas_api(&why)) return why.empty() ? "cuBLAS not found" : why;
  return {};
}

DeviceTrainer::DeviceTrainer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
DeviceTrainer::~DeviceTrainer() = default;

Expected<std::unique_ptr<DeviceTrainer>> DeviceTrainer::create(TrainModel& model, const DeviceTrainOptions& options,
                                                               int64_t max_B, int64_t max_T) {
  if (max_B <= 0 || max_T <= 0)
    return make_error(ErrorCode::invalid_argument, "GPU trainer for batches of " + std::to_string(max_B) + " x " +
                                                       std::to_string(max_T) + " tokens: both must be positive");
  if (std::string why = cuda_training_unavailable(options.gpu_index); !why.empty())
    return make_error(ErrorCode::unsupported, why);
  return guarded([&]() -> Expected<std::unique_ptr<DeviceTrainer>> {
    auto im = std::make_unique<Impl>();
    im->setup(model, options, max_B, max_T);
    return std::unique_ptr<DeviceTrainer>(new DeviceTrainer(std::move(im)));
  });
}

std::string DeviceTrainer::device_name() const { return m_impl->name; }
std::string DeviceTrainer::description() const {
  return m_impl->name + " (GPU " + std::to_string(m_impl->device) + "), " +
         (m_impl->bf16 ? "BF16 mixed precision" : "F32") +
         (m_impl->recompute_chosen ? ", attention recomputed in backward to fit"
          : m_impl->recompute_att  ? ", attention recomputed in backward"
                                   : "");
}
TrainPrecision DeviceTrainer::precision() const { return m_impl->bf16 ? TrainPrecision::bf16 : TrainPrecision::f32; }

Expected<LossResult> DeviceTrainer::forward_backward(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                                                     int64_t B, int64_t T, float grad_scale, uint64_t dropout_seed) {
  return guarded([&]() -> Expected<LossResult> {
    return m_impl->run(tokens, targets, B, T, true, grad_scale, dropout_seed);
  });
}

Expected<LossResult> DeviceTrainer::evaluate(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                                             int64_t B, int64_t T) {
  return guarded([&]() -> Expected<LossResult> { return m_impl->run(tokens, targets, B, T, false, 0.0f, 0); });
}

Expected<void> DeviceTrainer::zero_grad() {
  return guarded([&]() -> Expected<void> {
    Impl& im = *m_impl;
    HEARTH_CU(cudaSetDevice(im.device));
    for (const DevParam& d : im.params) im.zero(d.g, d.n);
    return {};
  });
}

Expected<double> DeviceTrainer::clip_grad_norm(double max_norm) {
  return guarded([&]() -> Expected<double> {
    Impl& im = *m_impl;
    HEARTH_CU(cudaSetDevice(im.device));
    const int nt = int(im.params.size());
    HEARTH_CU(cuda::grad_norm(im.grad_ptrs.data(), im.grad_sizes.data(), nt, im.norm_partials, im.norm_out,
                              im.stream));
    if (max_norm > 0)
      for (const DevParam& d : im.params) HEARTH_CU(cuda::clip_by_norm(d.g, d.n, im.norm_out + 1, max_norm, im.stream));
    double h[2] = {0, 0};
    HEARTH_CU(cudaMemcpyAsync(h, im.norm_out, sizeof h, cudaMemcpyDeviceToHost, im.stream));
    HEARTH_CU(cudaStreamSynchronize(im.stream));
    return h[1];
  });
}

Expected<void> DeviceTrainer::adamw_step(double lr, const AdamWSettings& s, int64_t t) {
  if (t < 1) return make_error(ErrorCode::invalid_argument, "AdamW step count " + std::to_string(t) + " is below 1");
  return guarded([&]() -> Expected<void> {
    Impl& im = *m_impl;
    HEARTH_CU(cudaSetDevice(im.device));
    for (const DevParam& d : im.params) {
      cuda::AdamWStep a;
      a.lr = lr, a.beta1 = s.beta1, a.beta2 = s.beta2, a.eps = s.eps, a.weight_decay = s.weight_decay;
      a.t = t;
      a.decay = d.decay;
      HEARTH_CU(cuda::adamw_step(d.w, d.g, d.m, d.v, d.w16, d.n, a, im.stream));
    }
    return {};
  });
}

Expected<void> DeviceTrainer::download(TrainModel& model, std::vector<std::vector<float>>* m,
                                       std::vector<std::vector<float>>* v) {
  return guarded([&]() -> Expected<void> {
    Impl& im = *m_impl;
    HEARTH_CU(cudaSetDevice(im.device));
    auto tr = im.checked_trainable(model);
    HEARTH_CU(cudaStreamSynchronize(im.stream));
    if (m) m->resize(tr.size());
    if (v) v->resize(tr.size());
    for (size_t i = 0; i < tr.size(); ++i) {
      const DevParam& d = im.params[i];
      tr[i]->value.resize(size_t(d.n));
      im.get(tr[i]->value.data(), d.w, uint64_t(d.n) * 4);
      if (m) {
        (*m)[i].resize(size_t(d.n));
        im.get((*m)[i].data(), d.m, uint64_t(d.n) * 4);
      }
      if (v) {
        (*v)[i].resize(size_t(d.n));
        im.get((*v)[i].data(), d.v, uint64_t(d.n) * 4);
      }
    }
    HEARTH_CU(cudaStreamSynchronize(im.stream));
    return {};
  });
}

Expected<void> DeviceTrainer::download_grads(TrainModel& model) {
  return guarded([&]() -> Expected<void> {
    Impl& im = *m_impl;
    HEARTH_CU(cudaSetDevice(im.device));
    auto tr = im.checked_trainable(model);
    HEARTH_CU(cudaStreamSynchronize(im.stream));
    for (size_t i = 0; i < tr.size(); ++i) {
      const DevParam& d = im.params[i];
      tr[i]->grad.resize(size_t(d.n));
      im.get(tr[i]->grad.data(), d.g, uint64_t(d.n) * 4);
    }
    HEARTH_CU(cudaStreamSynchronize(im.stream));
    return {};
  });
}

Expected<void> DeviceTrainer::upload(const TrainModel& model, const std::vector<std::vector<float>>& m,
                                     const std::vector<std::vector<float>>& v) {
  return guarded([&]() -> Expected<void> {
    Impl& im = *m_impl;
    HEARTH_CU(cudaSetDevice(im.device));
    HEARTH_CU(cudaStreamSynchronize(im.stream));
    im.upload_params(model, m, v, false);
    return {};
  });
}

uint64_t DeviceTrainer::device_bytes() const { return m_impl->bytes; }

#endif  // HEARTH_HAVE_CUDA

}  // namespace hearth::train
