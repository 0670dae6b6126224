/* Causal grouped-query attention on the GPU for the trainer (device-attention.h): head-major permutes,
 * cuBLAS strided-batched products over (batch row, kv head), and the softmax kernels of
 * trainer/cuda/train-kernels.h.
 *
 * Non-obvious choice: the scale 1/sqrt(hd) goes into the products' alpha exactly where the CPU op puts it
 * (the scores' product, and dQ / dK's), and the softmax kernels get scale 1, so the F32 path performs the
 * CPU's float operations up to the products' summation order.
 *
 * Compiled only with the CUDA backend (hearth_trainer globs this file in every build).
 */
#ifdef HEARTH_HAVE_CUDA

#include "device-attention.h"

#include <cmath>
#include <string>

#include "train-kernels.h"

namespace hearth::train::cuda {

namespace {

constexpr uint64_t ALIGN = 256;  // every scratch region starts on a 256-byte boundary (cuBLAS likes 16)

// The scratch regions, in order; with base == nullptr only the total size is computed. With BF16 the
// F32 head-major copies are only a staging step before the BF16 ones, so they all share `tmp`; dS (BF16)
// reuses the BF16 probabilities' region, which the backward reads (dV) before dS is written (stream order).
struct Scratch {
  float *qh = nullptr, *kh = nullptr, *vh = nullptr, *doh = nullptr, *tmp = nullptr, *dp = nullptr;
  uint16_t *qh16 = nullptr, *kh16 = nullptr, *vh16 = nullptr, *doh16 = nullptr, *p16 = nullptr, *ds16 = nullptr;
  uint64_t bytes = 0;

  Scratch(const AttnShape& s, bool bf16, void* base) {
    const uint64_t nq = uint64_t(s.B * s.n_head * s.T * s.hd), nkv = uint64_t(s.B * s.n_head_kv * s.T * s.hd),
                   ntt = uint64_t(s.B * s.n_head * s.T * s.T);
    char* b = static_cast<char*>(base);
    auto take = [&](uint64_t n, uint64_t elem) -> void* {
      void* p = b ? b + bytes : nullptr;
      bytes += (n * elem + ALIGN - 1) / ALIGN * ALIGN;
      return p;
    };
    tmp = static_cast<float*>(take(nq, 4));
    dp = static_cast<float*>(take(ntt, 4));
    if (bf16) {
      qh = kh = vh = doh = tmp;
      qh16 = static_cast<uint16_t*>(take(nq, 2));
      kh16 = static_cast<uint16_t*>(take(nkv, 2));
      vh16 = static_cast<uint16_t*>(take(nkv, 2));
      doh16 = static_cast<uint16_t*>(take(nq, 2));
      p16 = ds16 = static_cast<uint16_t*>(take(ntt, 2));
    } else {
      qh = static_cast<float*>(take(nq, 4));
      kh = static_cast<float*>(take(nkv, 4));
      vh = static_cast<float*>(take(nkv, 4));
      doh = static_cast<float*>(take(nq, 4));
    }
  }
};

Expected<void> check_shape(const AttnShape& s) {
  if (s.B <= 0 || s.T <= 0 || s.n_head <= 0 || s.n_head_kv <= 0 || s.hd <= 0)
    return make_error(ErrorCode::invalid_argument,
                      "device attention: sizes must be positive (B " + std::to_string(s.B) + ", T " +
                          std::to_string(s.T) + ", n_head " + std::to_string(s.n_head) + ", n_head_kv " +
                          std::to_string(s.n_head_kv) + ", head_dim " + std::to_string(s.hd) + ")");
  if (s.n_head % s.n_head_kv != 0)
    return make_error(ErrorCode::invalid_argument, "device attention: n_head " + std::to_string(s.n_head) +
                                                       " is not a multiple of n_head_kv " +
                                                       std::to_string(s.n_head_kv));
  return {};
}

Expected<void> ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return {};
  return make_error(ErrorCode::internal, std::string("device attention: ") + what + ": " + cudaGetErrorString(e));
}

// Head-major F32 copy of x (B·T, heads, hd) into dst, and its BF16 copy into dst16 when bf16.
Expected<void> to_head_major_as(float* dst, uint16_t* dst16, const float* x, const AttnShape& s, int64_t heads,
                                bool bf16, cudaStream_t st) {
  HEARTH_TRY_VOID(ok(to_head_major(dst, x, s.B, s.T, heads, s.hd, st), "to_head_major"));
  if (bf16) HEARTH_TRY_VOID(ok(f32_to_bf16(dst, dst16, s.B * s.T * heads * s.hd, st), "f32_to_bf16"));
  return {};
}

}  // namespace

uint64_t attention_scratch_bytes(const AttnShape& s, bool bf16) {
  if (s.B <= 0 || s.T <= 0 || s.n_head <= 0 || s.n_head_kv <= 0 || s.hd <= 0) return 0;
  return Scratch(s, bf16, nullptr).bytes;
}

// The probabilities: q and k to head-major (and BF16), the scores GEMM straight into att, the causal
// softmax in place (its BF16 copy into the scratch's p16 when bf16). Shared by attention_forward and
// attention_probs.
Expected<void> probabilities(TrainBlas& blas, bool bf16, float* att, const float* q, const float* k,
                             const AttnShape& s, const Scratch& sc) {
  const cudaStream_t st = blas.stream();
  const int64_t G = s.n_head / s.n_head_kv, T = s.T, hd = s.hd, batch = s.B * s.n_head_kv;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const DType ty = bf16 ? DType::bf16 : DType::f32;
  HEARTH_TRY_VOID(to_head_major_as(sc.qh, sc.qh16, q, s, s.n_head, bf16, st));
  HEARTH_TRY_VOID(to_head_major_as(sc.kh, sc.kh16, k, s, s.n_head_kv, bf16, st));
  const void* Q = bf16 ? static_cast<const void*>(sc.qh16) : sc.qh;
  const void* K = bf16 ? static_cast<const void*>(sc.kh16) : sc.kh;
  // Scores of one (b, kv head): (G·T, T) = scale · Q_g (G·T, hd) · K^T, straight into att (B, n_head, T, T).
  HEARTH_TRY_VOID(blas.gemm_batched(false, true, G * T, T, hd, scale, Mat{Q, ty, hd}, G * T * hd, Mat{K, ty, hd}, T * hd,
                                    0.0f, att, T, G * T * T, batch));
  return ok(causal_softmax(att, bf16 ? sc.p16 : nullptr, s.B * s.n_head, T, 1.0f, st), "causal_softmax");
}

Expected<void> attention_probs(TrainBlas& blas, bool bf16, float* att, const float* q, const float* k,
                               const AttnShape& s, void* scratch) {
  HEARTH_TRY_VOID(check_shape(s));
  if (!att || !q || !k || !scratch)
    return make_error(ErrorCode::invalid_argument, "device attention probabilities: a null pointer");
  return probabilities(blas, bf16, att, q, k, s, Scratch(s, bf16, scratch));
}

Expected<void> attention_forward(TrainBlas& blas, bool bf16, float* out, float* att, const float* q, const float* k,
                                 const float* v, const AttnShape& s, void* scratch) {
  HEARTH_TRY_VOID(check_shape(s));
  if (!out || !att || !q || !k || !v || !scratch)
    return make_error(ErrorCode::invalid_argument, "device attention forward: a null pointer");
  const Scratch sc(s, bf16, scratch);
  const cudaStream_t st = blas.stream();
  const int64_t G = s.n_head / s.n_head_kv, T = s.T, hd = s.hd, batch = s.B * s.n_head_kv;
  const DType ty = bf16 ? DType::bf16 : DType::f32;
  HEARTH_TRY_VOID(probabilities(blas, bf16, att, q, k, s, sc));
  HEARTH_TRY_VOID(to_head_major_as(sc.vh, sc.vh16, v, s, s.n_head_kv, bf16, st));
  const void* V = bf16 ? static_cast<const void*>(sc.vh16) : sc.vh;
  // out_g (G·T, hd) = P (G·T, T) · V (T, hd), head-major, then back to (B·T, n_head, hd).
  const void* P = bf16 ? static_cast<const void*>(sc.p16) : att;
  HEARTH_TRY_VOID(blas.gemm_batched(false, false, G * T, hd, T, 1.0f, Mat{P, ty, T}, G * T * T, Mat{V, ty, hd}, T * hd,
                                    0.0f, sc.tmp, hd, G * T * hd, batch));
  HEARTH_TRY_VOID(ok(from_head_major(out, sc.tmp, s.B, T, s.n_head, hd, false, st), "from_head_major"));
  return {};
}

Expected<void> attention_backward(TrainBlas& blas, bool bf16, float* dq, float* dk, float* dv, const float* dout,
                                  const float* att, const float* q, const float* k, const float* v,
                                  const AttnShape& s, void* scratch) {
  HEARTH_TRY_VOID(check_shape(s));
  if (!dq && !dk && !dv) return {};
  if (!dout || !att || !scratch || (dk && !q) || (dq && !k) || ((dq || dk) && !v))
    return make_error(ErrorCode::invalid_argument, "device attention backward: a null pointer");
  const Scratch sc(s, bf16, scratch);
  const cudaStream_t st = blas.stream();
  const int64_t G = s.n_head / s.n_head_kv, T = s.T, hd = s.hd, batch = s.B * s.n_head_kv;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const DType ty = bf16 ? DType::bf16 : DType::f32;
  const int64_t sq = G * T * hd, skv = T * hd, stt = G * T * T;  // per-(b, kv head) matrix strides

  HEARTH_TRY_VOID(to_head_major_as(sc.doh, sc.doh16, dout, s, s.n_head, bf16, st));
  const void* dO = bf16 ? static_cast<const void*>(sc.doh16) : sc.doh;
  const void* P = att;
  if (bf16) {
    HEARTH_TRY_VOID(ok(f32_to_bf16(att, sc.p16, s.B * s.n_head * T * T, st), "f32_to_bf16"));
    P = sc.p16;
  }
  // dV (T, hd) = P^T (T, G·T) · dO_g (G·T, hd): the group's query heads summed inside the product.
  if (dv) {
    HEARTH_TRY_VOID(blas.gemm_batched(true, false, T, hd, G * T, 1.0f, Mat{P, ty, T}, stt, Mat{dO, ty, hd}, sq, 0.0f,
                                      sc.tmp, hd, skv, batch));
    HEARTH_TRY_VOID(ok(from_head_major(dv, sc.tmp, s.B, T, s.n_head_kv, hd, true, st), "from_head_major"));
  }
  if (!dq && !dk) return {};
  HEARTH_TRY_VOID(to_head_major_as(sc.vh, sc.vh16, v, s, s.n_head_kv, bf16, st));
  const void* V = bf16 ? static_cast<const void*>(sc.vh16) : sc.vh;
  // dP (G·T, T) = dO_g · V^T, then dS = P ⊙ (dP - Σ P·dP) in place (upper triangle 0).
  HEARTH_TRY_VOID(blas.gemm_batched(false, true, G * T, T, hd, 1.0f, Mat{dO, ty, hd}, sq, Mat{V, ty, hd}, skv, 0.0f, sc.dp,
                                    T, stt, batch));
  HEARTH_TRY_VOID(ok(softmax_backward(sc.dp, sc.ds16, att, s.B * s.n_head, T, 1.0f, st), "softmax_backward"));
  const void* dS = bf16 ? static_cast<const void*>(sc.ds16) : sc.dp;
  // dQ_g (G·T, hd) = scale · dS (G·T, T) · K (T, hd)
  if (dq) {
    HEARTH_TRY_VOID(to_head_major_as(sc.kh, sc.kh16, k, s, s.n_head_kv, bf16, st));
    const void* K = bf16 ? static_cast<const void*>(sc.kh16) : sc.kh;
    HEARTH_TRY_VOID(blas.gemm_batched(false, false, G * T, hd, T, scale, Mat{dS, ty, T}, stt, Mat{K, ty, hd}, skv, 0.0f,
                                      sc.tmp, hd, sq, batch));
    HEARTH_TRY_VOID(ok(from_head_major(dq, sc.tmp, s.B, T, s.n_head, hd, true, st), "from_head_major"));
  }
  // dK (T, hd) = scale · dS^T (T, G·T) · Q_g (G·T, hd)
  if (dk) {
    HEARTH_TRY_VOID(to_head_major_as(sc.qh, sc.qh16, q, s, s.n_head, bf16, st));
    const void* Q = bf16 ? static_cast<const void*>(sc.qh16) : sc.qh;
    HEARTH_TRY_VOID(blas.gemm_batched(true, false, T, hd, G * T, scale, Mat{dS, ty, T}, stt, Mat{Q, ty, hd}, sq, 0.0f,
                                      sc.tmp, hd, skv, batch));
    HEARTH_TRY_VOID(ok(from_head_major(dk, sc.tmp, s.B, T, s.n_head_kv, hd, true, st), "from_head_major"));
  }
  return {};
}

}  // namespace hearth::train::cuda

#endif  // HEARTH_HAVE_CUDA
