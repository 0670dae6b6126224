/* The CUDA forward pass (cuda-runner.h): device buffers, the layer loop as kernel launches on one
 * stream, cuBLAS GEMMs for prefill chunks, and the CUDA graph of one decode step.
 *
 * Non-obvious choice: the stream is synchronized at the end of every forward() call, even one whose
 * logits nobody wants, so the pinned staging buffer of positions and token ids (copied in
 * asynchronously) is never rewritten while a copy from it may still be pending.
 */
#include "cuda-runner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

#ifdef HEARTH_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "../cuda/cublas-loader.h"
#include "../cuda/kernels.h"
#include "hearth/gpu-estimate.h"
#endif

namespace hearth {

#ifndef HEARTH_HAVE_CUDA

struct CudaRunner::State {};

std::unique_ptr<CudaRunner> CudaRunner::create(const ModelDesc&, const CudaRunnerConfig&, std::string& why) {
  why = "built without CUDA";
  return nullptr;
}
CudaRunner::CudaRunner(std::unique_ptr<State> s) : m(std::move(s)) {}
CudaRunner::~CudaRunner() = default;
void CudaRunner::forward(std::span<const TokenId>, int64_t, float*, bool, const KeepGoing&) {
  throw std::logic_error("the CUDA runner is not built");
}
const std::string& CudaRunner::name() const {
  static const std::string none = "cpu";
  return none;
}
uint64_t CudaRunner::kv_bytes() const { return 0; }

#else  // HEARTH_HAVE_CUDA

namespace {

[[noreturn]] void cuda_fail(const char* call, cudaError_t e, const char* file, int line) {
  throw std::runtime_error(std::string(call) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
                           ") at " + file + ":" + std::to_string(line));
}

#define HEARTH_CU(call)                                                  \
  do {                                                                   \
    cudaError_t hearth_cu_err = (call);                                  \
    if (hearth_cu_err != cudaSuccess) cuda_fail(#call, hearth_cu_err, __FILE__, __LINE__); \
  } while (0)

// A cudaMalloc that failed: create() turns it into the "not enough GPU memory" reason.
struct DeviceOutOfMemory : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", double(bytes) / double(uint64_t(1) << 30));
  return buf;
}

bool env_flag(const char* name, bool dflt) {
  const char* v = std::getenv(name);
  if (!v || !*v) return dflt;
  return !(std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0 || std::strcmp(v, "false") == 0);
}

// A weight matrix on the device, stored as in the file: n_rows rows of k values, row_bytes each.
struct DevMat {
  GgmlType type = GgmlType::F32;
  const void* data = nullptr;
  uint64_t row_bytes = 0;
  int64_t n_rows = 0, k = 0;
};

struct DevLayer {
  DevMat wq, wk, wv, wo, gate, up, down;
  const float* attn_norm = nullptr;  // (n_embd)
  const float* ffn_norm = nullptr;   // (n_embd)
  const float *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr;  // null when absent
  const float *q_norm = nullptr, *k_norm = nullptr;                          // (head_dim), qwen3
};

bool is_plain_type(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

// Row length and row count of a weight as stored (shape[0] is the row length).
void mat_shape(const TensorRef& t, int64_t& k, int64_t& n_rows) {
  k = t.shape.empty() ? 0 : t.shape[0];
  n_rows = t.shape.size() < 2 ? 1 : t.shape[1];
}

// The matrices the runner multiplies with (the per-layer seven, the embedding, the output).
std::vector<const TensorRef*> weight_matrices(const ModelDesc& md) {
  std::vector<const TensorRef*> v{&md.tok_embd};
  if (!md.params.tied_embeddings) v.push_back(&md.output);
  for (const LayerTensors& L : md.layers)
    for (const TensorRef* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down}) v.push_back(t);
  return v;
}

// Why this model cannot run on the GPU whatever the device (empty: it can).
std::string model_unsupported_reason(const ModelDesc& md) {
  const ModelParams& p = md.params;
  for (const TensorRef* t : weight_matrices(md)) {
    if (!t->present()) return "tensor '" + t->name + "' is missing";
    if (!cuda::weight_type_supported(t->type))
      return std::string("weight type ") + type_name(t->type) + " has no CUDA kernel (tensor '" + t->name + "')";
  }
  const int64_t hd = p.head_dim;
  if (hd != 64 && hd != 80 && hd != 96 && hd != 128 && hd != 256)
    return "head size " + std::to_string(hd) + " has no CUDA attention kernel (64, 80, 96, 128 or 256)";
  if (p.n_head <= 0 || p.n_head_kv <= 0 || p.n_head % p.n_head_kv != 0)
    return "heads " + std::to_string(p.n_head) + "/" + std::to_string(p.n_head_kv) + " cannot be computed";
  return {};
}

}  // namespace

struct CudaRunner::State {
  ModelParams p;
  RopeLayout layout = RopeLayout::half_split;
  int device = 0;
  std::string name;
  int64_t n_ctx = 0, n_batch = 0;
  double pos_scale = 1.0;
  bool use_graphs = true;
  bool verbose = false;

  cudaStream_t stream = nullptr;
  const cuda::CublasApi* blas = nullptr;  // null when n_batch <= MATVEC_MAX_TOKENS (never needed)
  cublasHandle_t blas_handle = nullptr;
  cudaGraphExec_t decode_graph = nullptr;
  bool graph_failed = false;

  std::vector<void*> allocations;  // every cudaMalloc, freed in the destructor
  uint64_t allocated = 0;
  int32_t* ints_host = nullptr;    // pinned: [pos0, id_0, ..., id_{n_batch-1}]
  float* logits_row_host = nullptr;  // pinned: one row of n_vocab logits (the decode copy)

  // Weights.
  std::vector<DevLayer> layers;
  DevMat tok_embd, output;
  const float* output_norm = nullptr;

  // Device buffers of one chunk of n_batch tokens.
  int32_t* ints = nullptr;  // ints[0]: the chunk's first position (pos_dev); ints + 1: token ids
  const double* inv_freq = nullptr;
  float *x = nullptr, *xn = nullptr, *q = nullptr, *k = nullptr, *v = nullptr, *att = nullptr, *o = nullptr;
  float *g = nullptr, *u = nullptr, *logits = nullptr;
  uint16_t* act16 = nullptr;    // activations converted for an F16/BF16 GEMM (n_batch * max k)
  uint16_t* dequant = nullptr;  // BF16 copy of one quantized matrix (prefill); null when none is quantized
  void* att_scratch = nullptr;
  uint16_t* kv = nullptr;       // per layer: K then V, each [n_ctx][kv_dim] F16
  uint64_t kv_bytes = 0;

  ~State() {
    if (device >= 0) cudaSetDevice(device);
    if (stream) cudaStreamSynchronize(stream);
    if (decode_graph) cudaGraphExecDestroy(decode_graph);
    if (blas_handle && blas) blas->destroy(blas_handle);
    for (void* a : allocations) cudaFree(a);
    if (ints_host) cudaFreeHost(ints_host);
    if (logits_row_host) cudaFreeHost(logits_row_host);
    if (stream) cudaStreamDestroy(stream);
    cudaGetLastError();  // leave no sticky error behind for the next user of the device
  }

  void* alloc(uint64_t bytes) {
    if (bytes == 0) return nullptr;
    void* ptr = nullptr;
    cudaError_t e = cudaMalloc(&ptr, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw DeviceOutOfMemory("allocating " + gib(bytes) + " GiB after " + gib(allocated) +
                              " GiB failed: " + cudaGetErrorString(e));
    }
    allocations.push_back(ptr);
    allocated += bytes;
    return ptr;
  }
  template <class T>
  T* alloc_n(uint64_t n) {
    return static_cast<T*>(alloc(n * sizeof(T)));
  }

  DevMat upload_mat(const TensorRef& t) {
    DevMat m;
    m.type = t.type;
    mat_shape(t, m.k, m.n_rows);
    auto rb = row_nbytes(t.type, m.k);
    if (!rb) throw std::runtime_error("tensor '" + t.name + "': " + rb.error().message);
    m.row_bytes = *rb;
    if (m.row_bytes * uint64_t(m.n_rows) != t.nbytes)
      throw std::runtime_error("tensor '" + t.name + "' holds " + std::to_string(t.nbytes) + " bytes, expected " +
                               std::to_string(m.row_bytes * uint64_t(m.n_rows)));
    void* d = alloc(t.nbytes);
    HEARTH_CU(cudaMemcpy(d, t.data, t.nbytes, cudaMemcpyHostToDevice));
    m.data = d;
    return m;
  }

  // A 1-D weight converted to F32 (null when absent).
  const float* upload_vec(const TensorRef& t) {
    if (!t.present()) return nullptr;
    auto f = tensor_to_f32(t);
    if (!f) throw std::runtime_error("tensor '" + t.name + "': " + f.error().message);
    float* d = alloc_n<float>(f->size());
    HEARTH_CU(cudaMemcpy(d, f->data(), f->size() * sizeof(float), cudaMemcpyHostToDevice));
    return d;
  }

  uint16_t* k_cache(int64_t l) const { return kv + uint64_t(l) * 2 * uint64_t(n_ctx * p.n_head_kv * p.head_dim); }
  uint16_t* v_cache(int64_t l) const { return k_cache(l) + uint64_t(n_ctx * p.n_head_kv * p.head_dim); }

  // y[t][r] = W[r] . x[t] for t < n: the kernels' matvec for a few tokens, cuBLAS for more.
  void project(const DevMat& w, const float* xin, int64_t n, float* y) {
    if (n <= cuda::MATVEC_MAX_TOKENS) {
      HEARTH_CU(cuda::matvec(w.type, w.data, w.row_bytes, w.n_rows, w.k, xin, n, y, stream));
      return;
    }
    if (!blas_handle) throw std::logic_error("a GEMM of " + std::to_string(n) + " tokens without cuBLAS");
    const void* a = w.data;
    const void* b = xin;
    cudaDataType at = CUDA_R_32F, bt = CUDA_R_32F;
    switch (w.type) {
      case GgmlType::F32:
        break;
      case GgmlType::F16:
        HEARTH_CU(cuda::f32_to_f16(xin, act16, n * w.k, stream));
        at = bt = CUDA_R_16F;
        b = act16;
        break;
      case GgmlType::BF16:
        HEARTH_CU(cuda::f32_to_bf16(xin, act16, n * w.k, stream));
        at = bt = CUDA_R_16BF;
        b = act16;
        break;
      default:
        HEARTH_CU(cuda::dequantize_bf16(w.type, w.data, w.row_bytes, w.n_rows, w.k, dequant, stream));
        HEARTH_CU(cuda::f32_to_bf16(xin, act16, n * w.k, stream));
        at = bt = CUDA_R_16BF;
        a = dequant;
        b = act16;
        break;
    }
    // Row-major W [n_rows][k] is column-major k x n_rows, so C (column-major n_rows x n, i.e. row-major
    // y[n][n_rows]) = W^T-as-stored x X.
    const float alpha = 1.0f, beta = 0.0f;
    cublasStatus_t s = blas->gemm_ex(blas_handle, CUBLAS_OP_T, CUBLAS_OP_N, int(w.n_rows), int(n), int(w.k), &alpha, a,
                                     at, int(w.k), b, bt, int(w.k), &beta, y, CUDA_R_32F, int(w.n_rows),
                                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS)
      throw std::runtime_error("cublasGemmEx (" + std::string(type_name(w.type)) + ", " + std::to_string(w.n_rows) +
                               " x " + std::to_string(w.k) + " x " + std::to_string(n) +
                               "): " + cuda::cublas_status_text(*blas, s));
  }

  // Enqueues the pass over n tokens whose ids and first position are already in `ints`. When
  // `want_logits`, the logits of the last token (or of all n when `all_logits`) end in `logits`.
  void enqueue(int64_t n, bool want_logits, bool all_logits, const KeepGoing& keep_going) {
    const int64_t E = p.n_embd, hd = p.head_dim, nh = p.n_head, nkv = p.n_head_kv, F = p.n_ff;
    const int64_t qd = nh * hd, kvd = nkv * hd;
    const float eps = p.rms_eps;
    const int32_t* pos_dev = ints;
    const bool interleaved = layout == RopeLayout::interleaved;
    cuda::AttentionShape shape;
    shape.n_tok = n;
    shape.n_head = nh;
    shape.n_head_kv = nkv;
    shape.head_dim = hd;
    shape.n_ctx = n_ctx;
    shape.scale = float(1.0 / std::sqrt(double(hd)));  // as the CPU pass computes it

    HEARTH_CU(cuda::get_rows(tok_embd.type, tok_embd.data, tok_embd.row_bytes, E, ints + 1, n, x, stream));
    for (size_t li = 0; li < layers.size(); ++li) {
      if (keep_going && !keep_going()) throw std::system_error(std::make_error_code(std::errc::operation_canceled));
      const DevLayer& L = layers[li];
      const int64_t l = int64_t(li);
      HEARTH_CU(cuda::rms_norm(x, L.attn_norm, xn, n, E, eps, stream));
      project(L.wq, xn, n, q);
      project(L.wk, xn, n, k);
      project(L.wv, xn, n, v);
      if (L.bq) {
        HEARTH_CU(cuda::add_bias(q, L.bq, n, qd, stream));
        HEARTH_CU(cuda::add_bias(k, L.bk, n, kvd, stream));
        HEARTH_CU(cuda::add_bias(v, L.bv, n, kvd, stream));
      }
      if (L.q_norm) {
        HEARTH_CU(cuda::rms_norm(q, L.q_norm, q, n * nh, hd, eps, stream));
        HEARTH_CU(cuda::rms_norm(k, L.k_norm, k, n * nkv, hd, eps, stream));
      }
      HEARTH_CU(cuda::rope(q, n, nh, hd, pos_dev, inv_freq, pos_scale, interleaved, stream));
      HEARTH_CU(cuda::rope(k, n, nkv, hd, pos_dev, inv_freq, pos_scale, interleaved, stream));
      HEARTH_CU(cuda::kv_store(k, v, k_cache(l), v_cache(l), n, kvd, pos_dev, stream));
      HEARTH_CU(cuda::attention(q, k_cache(l), v_cache(l), att, shape, pos_dev, att_scratch, stream));
      project(L.wo, att, n, o);
      if (L.bo) HEARTH_CU(cuda::add_bias(o, L.bo, n, E, stream));  // x + (o + bo), as the CPU adds
      HEARTH_CU(cuda::add(x, o, n * E, stream));

      HEARTH_CU(cuda::rms_norm(x, L.ffn_norm, xn, n, E, eps, stream));
      project(L.gate, xn, n, g);
      project(L.up, xn, n, u);
      HEARTH_CU(cuda::swiglu(g, u, g, n * F, stream));
      project(L.down, g, n, o);
      HEARTH_CU(cuda::add(x, o, n * E, stream));
    }
    if (!want_logits) return;
    const int64_t first = all_logits ? 0 : n - 1;
    const int64_t n_out = n - first;
    HEARTH_CU(cuda::rms_norm(x + first * E, output_norm, xn, n_out, E, eps, stream));
    project(output, xn, n_out, logits);
  }

  // Captures one decode step (n = 1, logits of that token) into decode_graph. False (graphs then stay
  // off for this runner) when capture or instantiation fails; the reason goes to stderr when verbose.
  bool capture_decode_graph() {
    if (cudaError_t e = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal); e != cudaSuccess) {
      cudaGetLastError();
      if (verbose) std::fprintf(stderr, "hearth: no CUDA graph capture (%s); decoding without graphs\n", cudaGetErrorString(e));
      return false;
    }
    std::string why;
    try {
      enqueue(1, true, false, {});
    } catch (const std::exception& e) {
      why = e.what();
    }
    cudaGraph_t graph = nullptr;
    cudaError_t e = cudaStreamEndCapture(stream, &graph);
    if (why.empty() && e != cudaSuccess) why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(e);
    if (why.empty()) {
      e = cudaGraphInstantiate(&decode_graph, graph, 0);
      if (e != cudaSuccess) {
        decode_graph = nullptr;
        why = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(e);
      }
    }
    if (graph) cudaGraphDestroy(graph);
    if (why.empty()) return true;
    cudaGetLastError();
    if (verbose) std::fprintf(stderr, "hearth: CUDA graph capture failed, decoding without graphs: %s\n", why.c_str());
    return false;
  }
};

CudaRunner::CudaRunner(std::unique_ptr<State> s) : m(std::move(s)) {}
CudaRunner::~CudaRunner() = default;
const std::string& CudaRunner::name() const { return m->name; }
uint64_t CudaRunner::kv_bytes() const { return m->kv_bytes; }

std::unique_ptr<CudaRunner> CudaRunner::create(const ModelDesc& md, const CudaRunnerConfig& cfg, std::string& why) {
  try {
    const ModelParams& p = md.params;
    if (std::string r = model_unsupported_reason(md); !r.empty()) {
      why = r;
      return nullptr;
    }
    if (cfg.n_ctx <= 0 || cfg.n_batch <= 0 || int64_t(cfg.inv_freq.size()) != p.head_dim / 2) {
      why = "internal: bad CUDA runner configuration";
      return nullptr;
    }
    // The GPU.
    int count = 0;
    if (cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess) {
      cudaGetLastError();
      why = std::string("no usable GPU: ") + cudaGetErrorString(e);
      return nullptr;
    }
    if (count == 0) {
      why = "no usable GPU: no CUDA device found";
      return nullptr;
    }
    if (cfg.gpu_index < 0 || cfg.gpu_index >= count) {
      why = "no usable GPU: GPU " + std::to_string(cfg.gpu_index) + " asked for, " + std::to_string(count) +
            " present (0.." + std::to_string(count - 1) + ")";
      return nullptr;
    }
    cudaDeviceProp prop{};
    if (cudaError_t e = cudaGetDeviceProperties(&prop, cfg.gpu_index); e != cudaSuccess) {
      cudaGetLastError();
      why = std::string("no usable GPU: ") + cudaGetErrorString(e);
      return nullptr;
    }
    const std::string dev_name = "cuda:" + std::to_string(cfg.gpu_index) + " " + prop.name;
    if (prop.major < 8) {
      why = "no usable GPU: " + std::string(prop.name) + " has compute capability " + std::to_string(prop.major) + "." +
            std::to_string(prop.minor) + "; Hearth's CUDA kernels need 8.0 or newer";
      return nullptr;
    }
    // cuBLAS, only when a chunk can be longer than what matvec takes.
    const cuda::CublasApi* blas = nullptr;
    if (cfg.n_batch > cuda::MATVEC_MAX_TOKENS) {
      std::string blas_why;
      blas = cuda::cublas_api(&blas_why);
      if (!blas) {
        why = blas_why;
        return nullptr;
      }
    }
    if (cudaError_t e = cudaSetDevice(cfg.gpu_index); e != cudaSuccess) {
      cudaGetLastError();
      why = std::string("no usable GPU: cudaSetDevice: ") + cudaGetErrorString(e);
      return nullptr;
    }
    // Memory: the estimate is the allocation plan below plus the context and cuBLAS allowance.
    size_t free_b = 0, total_b = 0;
    if (cudaError_t e = cudaMemGetInfo(&free_b, &total_b); e != cudaSuccess) {
      cudaGetLastError();
      why = std::string("no usable GPU: cudaMemGetInfo: ") + cudaGetErrorString(e);
      return nullptr;
    }
    const GpuMemoryEstimate est = estimate_gpu_inference(md, cfg.n_ctx, cfg.n_batch);
    if (est.total > free_b) {
      why = "not enough GPU memory: needs " + gib(est.total) + " GiB, " + gib(free_b) + " GiB free on " + prop.name;
      return nullptr;
    }

    auto s = std::make_unique<State>();
    s->device = cfg.gpu_index;
    s->name = dev_name;
    s->p = p;
    s->layout = md.rope_layout;
    s->n_ctx = cfg.n_ctx;
    s->n_batch = cfg.n_batch;
    s->pos_scale = cfg.pos_scale;
    s->use_graphs = env_flag("HEARTH_CUDA_GRAPHS", true);
    s->verbose = env_flag("HEARTH_CUDA_VERBOSE", false);
    try {
      HEARTH_CU(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
      if (blas) {
        s->blas = blas;
        if (cublasStatus_t st = blas->create(&s->blas_handle); st != CUBLAS_STATUS_SUCCESS) {
          s->blas_handle = nullptr;
          why = "cuBLAS could not start (" + blas->library + "): " + cuda::cublas_status_text(*blas, st);
          return nullptr;
        }
        if (cublasStatus_t st = blas->set_stream(s->blas_handle, s->stream); st != CUBLAS_STATUS_SUCCESS)
          throw std::runtime_error("cublasSetStream: " + cuda::cublas_status_text(*blas, st));
        // Default math: no TF32 for F32 GEMMs, so F32 prefill stays F32 like the CPU's.
        if (cublasStatus_t st = blas->set_math_mode(s->blas_handle, CUBLAS_DEFAULT_MATH); st != CUBLAS_STATUS_SUCCESS)
          throw std::runtime_error("cublasSetMathMode: " + cuda::cublas_status_text(*blas, st));
      }
      // Weights as stored; 1-D weights in F32.
      s->tok_embd = s->upload_mat(md.tok_embd);
      s->output = p.tied_embeddings ? s->tok_embd : s->upload_mat(md.output);
      s->output_norm = s->upload_vec(md.output_norm);
      uint64_t largest_quant = 0;  // elements of the largest quantized matrix
      for (const TensorRef* t : weight_matrices(md)) {
        if (is_plain_type(t->type)) continue;
        int64_t k = 0, rows = 0;
        mat_shape(*t, k, rows);
        largest_quant = std::max(largest_quant, uint64_t(k) * uint64_t(rows));
      }
      for (const LayerTensors& lt : md.layers) {
        DevLayer L;
        L.wq = s->upload_mat(lt.wq), L.wk = s->upload_mat(lt.wk), L.wv = s->upload_mat(lt.wv);
        L.wo = s->upload_mat(lt.wo);
        L.gate = s->upload_mat(lt.ffn_gate), L.up = s->upload_mat(lt.ffn_up), L.down = s->upload_mat(lt.ffn_down);
        L.attn_norm = s->upload_vec(lt.attn_norm), L.ffn_norm = s->upload_vec(lt.ffn_norm);
        L.bq = s->upload_vec(lt.bq), L.bk = s->upload_vec(lt.bk), L.bv = s->upload_vec(lt.bv);
        L.bo = s->upload_vec(lt.bo);
        L.q_norm = s->upload_vec(lt.q_norm), L.k_norm = s->upload_vec(lt.k_norm);
        if ((L.bq && (!L.bk || !L.bv)) || (L.q_norm && !L.k_norm))
          throw std::runtime_error("a layer has a q bias or norm without the matching k/v one");
        s->layers.push_back(L);
      }
      // The KV cache for every position, F16.
      const int64_t E = p.n_embd, hd = p.head_dim, qd = p.n_head * hd, kvd = p.n_head_kv * hd, F = p.n_ff;
      const int64_t B = cfg.n_batch;
      s->kv_bytes = uint64_t(p.n_layer) * 2 * uint64_t(cfg.n_ctx) * uint64_t(kvd) * 2;
      s->kv = static_cast<uint16_t*>(s->alloc(s->kv_bytes));
      // Zeros, not whatever the memory held: rows past the current position are masked by attention, but a
      // tile may still load them, and a stale NaN pattern times a zero weight would still be NaN.
      HEARTH_CU(cudaMemsetAsync(s->kv, 0, s->kv_bytes, s->stream));
      // One chunk of activations.
      s->ints = s->alloc_n<int32_t>(uint64_t(B) + 1);
      double* inv = s->alloc_n<double>(cfg.inv_freq.size());
      HEARTH_CU(cudaMemcpy(inv, cfg.inv_freq.data(), cfg.inv_freq.size() * sizeof(double), cudaMemcpyHostToDevice));
      s->inv_freq = inv;
      s->x = s->alloc_n<float>(uint64_t(B * E));
      s->xn = s->alloc_n<float>(uint64_t(B * E));
      s->q = s->alloc_n<float>(uint64_t(B * qd));
      s->k = s->alloc_n<float>(uint64_t(B * kvd));
      s->v = s->alloc_n<float>(uint64_t(B * kvd));
      s->att = s->alloc_n<float>(uint64_t(B * qd));
      s->o = s->alloc_n<float>(uint64_t(B * E));
      s->g = s->alloc_n<float>(uint64_t(B * F));
      s->u = s->alloc_n<float>(uint64_t(B * F));
      s->logits = s->alloc_n<float>(uint64_t(B) * uint64_t(p.n_vocab));
      if (blas) {
        s->act16 = s->alloc_n<uint16_t>(uint64_t(B) * uint64_t(std::max({E, qd, F})));
        s->dequant = s->alloc_n<uint16_t>(largest_quant);  // null when nothing is quantized
      }
      // Attention scratch: the most any chunk length needs (the decode split-KV kernel's may differ).
      size_t scratch = 0;
      for (int64_t t = 1; t <= B; ++t) {
        cuda::AttentionShape sh;
        sh.n_tok = t, sh.n_head = p.n_head, sh.n_head_kv = p.n_head_kv, sh.head_dim = hd, sh.n_ctx = cfg.n_ctx;
        sh.scale = float(1.0 / std::sqrt(double(hd)));
        scratch = std::max(scratch, cuda::attention_scratch_bytes(sh));
      }
      s->att_scratch = s->alloc(scratch);
      HEARTH_CU(cudaMallocHost(reinterpret_cast<void**>(&s->ints_host), (uint64_t(B) + 1) * sizeof(int32_t)));
      HEARTH_CU(cudaMallocHost(reinterpret_cast<void**>(&s->logits_row_host), uint64_t(p.n_vocab) * sizeof(float)));
      // A first launch proves the kernels have code for this GPU before the session relies on them.
      HEARTH_CU(cudaMemsetAsync(s->o, 0, sizeof(float), s->stream));
      HEARTH_CU(cuda::add(s->o, s->o, 1, s->stream));
      HEARTH_CU(cudaStreamSynchronize(s->stream));
      // The uploads above are plain cudaMemcpy calls on the legacy stream, and a pageable source lets
      // cudaMemcpy return before its DMA lands; the session's non-blocking stream does not wait for the
      // legacy one, so wait here once for every copy, before any kernel may read the weights.
      HEARTH_CU(cudaDeviceSynchronize());
    } catch (const DeviceOutOfMemory& e) {
      why = "not enough GPU memory: " + std::string(e.what()) + " (estimate " + gib(est.total) + " GiB, " + gib(free_b) +
            " GiB free on " + prop.name + ")";
      return nullptr;
    }
    return std::unique_ptr<CudaRunner>(new CudaRunner(std::move(s)));
  } catch (const std::exception& e) {
    cudaGetLastError();
    why = std::string("the GPU could not be set up: ") + e.what();
    return nullptr;
  }
}

void CudaRunner::forward(std::span<const TokenId> toks, int64_t pos0, float* logits_host, bool all_logits,
                         const KeepGoing& keep_going) {
  State& s = *m;
  const int64_t n = int64_t(toks.size());
  if (n < 1 || n > s.n_batch || pos0 < 0 || pos0 + n > s.n_ctx)
    throw std::out_of_range("CUDA forward of " + std::to_string(n) + " tokens at position " + std::to_string(pos0) +
                            " (batch " + std::to_string(s.n_batch) + ", context " + std::to_string(s.n_ctx) + ")");
  HEARTH_CU(cudaSetDevice(s.device));
  s.ints_host[0] = int32_t(pos0);
  for (int64_t i = 0; i < n; ++i) s.ints_host[1 + i] = int32_t(toks[size_t(i)]);
  try {
    HEARTH_CU(cudaMemcpyAsync(s.ints, s.ints_host, uint64_t(n + 1) * sizeof(int32_t), cudaMemcpyHostToDevice, s.stream));
    const bool want = logits_host != nullptr;
    const int64_t V = s.p.n_vocab;
    if (n == 1 && s.use_graphs && !s.graph_failed) {
      if (keep_going && !keep_going()) throw std::system_error(std::make_error_code(std::errc::operation_canceled));
      if (!s.decode_graph && !s.capture_decode_graph()) s.graph_failed = true;
    }
    if (n == 1 && s.decode_graph) {
      HEARTH_CU(cudaGraphLaunch(s.decode_graph, s.stream));
    } else {
      s.enqueue(n, want, all_logits, keep_going);
    }
    if (want && (n == 1 || !all_logits)) {
      HEARTH_CU(cudaMemcpyAsync(s.logits_row_host, s.logits, uint64_t(V) * sizeof(float), cudaMemcpyDeviceToHost, s.stream));
      HEARTH_CU(cudaStreamSynchronize(s.stream));
      std::memcpy(logits_host, s.logits_row_host, uint64_t(V) * sizeof(float));
    } else if (want) {
      HEARTH_CU(cudaMemcpyAsync(logits_host, s.logits, uint64_t(n) * uint64_t(V) * sizeof(float), cudaMemcpyDeviceToHost,
                                s.stream));
      HEARTH_CU(cudaStreamSynchronize(s.stream));
    } else {
      HEARTH_CU(cudaStreamSynchronize(s.stream));
    }
  } catch (...) {
    cudaStreamSynchronize(s.stream);  // nothing may still read ints_host when the next call rewrites it
    throw;
  }
}

#endif  // HEARTH_HAVE_CUDA

}  // namespace hearth
