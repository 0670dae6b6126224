/* The weight kernels of engine/cuda/kernels.h: matvec (decode-time matrix-vector products reading the
 * stored blocks directly), dequantize_bf16 (whole matrix to BF16 for a prefill GEMM) and get_rows
 * (embedding rows to F32), for F32, F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K.
 *
 * matvec design (memory-bound): a block of 4 warps (1 for matrices too small to fill the GPU that
 * way); each warp owns R rows (R = 2 for matrices of 2048 rows or more, so one activation load serves
 * two rows, else 1 to launch more warps). Lane l decodes
 * the chunks l, l + 32, ... of its rows (quant-decode.cuh: a chunk is a contiguous piece of one block,
 * 16 bytes of Q4_K quants, 4 bytes of Q8_0, ...), so a warp's loads cover consecutive bytes of each row;
 * the values stay in registers (as exact small integers plus a scale per run: no per-element scaling
 * and no int-to-float instructions) and meet the activations of up to 8 tokens (float4 loads of x
 * through the read-only cache), accumulating in F32; a shuffle reduction ends each row.
 *
 * Non-obvious choice: plain types take a 16-byte vector path only when the rows are 16-byte aligned
 * and k is a multiple of the vector; any other shape falls back to one element per lane, so every k
 * works (embedding and output matrices of odd sizes included).
 */
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels-common.cuh"
#include "kernels.h"
#include "quant-decode.cuh"

namespace hearth::cuda {

namespace {

using namespace detail;

constexpr int MV_WARPS = 4;  // warps per matvec block (at most; 1 for small matrices)
constexpr int MAX_TOK = int(MATVEC_MAX_TOKENS);

// RUN activations starting at p (element offset a multiple of 4 when RUN % 4 == 0).
template <int RUN>
__device__ __forceinline__ void load_x(const float* __restrict__ p, bool x_al16, float* xv) {
  if constexpr (RUN % 4 == 0) {
    if (x_al16) {
#pragma unroll
      for (int i = 0; i < RUN; i += 4) {
        const float4 f = __ldg(reinterpret_cast<const float4*>(p + i));
        xv[i] = f.x, xv[i + 1] = f.y, xv[i + 2] = f.z, xv[i + 3] = f.w;
      }
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < RUN; ++i) xv[i] = __ldg(p + i);
}

// NT: the largest n_tok the instance handles (1 for decoding, the lean common case, else MAX_TOK).
template <class T, int R, int NT>
__global__ void __launch_bounds__(MV_WARPS * 32)
    matvec_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n_rows, int64_t nb, int64_t k,
                  const float* __restrict__ x, int n_tok, float* __restrict__ y, bool w_al16, bool x_al16) {
  constexpr int NV = T::NRUN * T::RUN;
  const int lane = int(threadIdx.x & 31u);
  const int64_t warp = int64_t(blockIdx.x) * int64_t(blockDim.x >> 5) + int64_t(threadIdx.x >> 5);
  const int64_t row0 = warp * R;
  if (row0 >= n_rows) return;  // whole warp; no block-level synchronization below

  const uint8_t* wr[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    // A row past the end (odd n_rows) reads the last row again; its sum is never written.
    const int64_t row = row0 + r < n_rows ? row0 + r : n_rows - 1;
    wr[r] = w + uint64_t(row) * row_bytes;
  }
  float acc[R][NT];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[r][t] = 0.0f;

  const int64_t n_chunks = nb * T::CHUNKS;
#pragma unroll(NT == 1 ? 2 : 1)
  for (int64_t ci = lane; ci < n_chunks; ci += 32) {
    const int64_t b = ci / T::CHUNKS;
    const int c = int(ci % T::CHUNKS);
    float q[R][NV], sc[R][T::NRUN], mn[R][T::NRUN];
#pragma unroll
    for (int r = 0; r < R; ++r) T::decode_q(wr[r] + uint64_t(b) * T::BYTES, c, w_al16, q[r], sc[r], mn[r]);
    const float* xb = x + b * T::VALUES;
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t < n_tok) {
#pragma unroll
        for (int run = 0; run < T::NRUN; ++run) {
          float xv[T::RUN];
          load_x<T::RUN>(xb + int64_t(t) * k + T::run_start(c, run), x_al16, xv);
          // A run's contribution: scale * sum(q x) - min * sum(x); the sum of x serves every row.
          float sx = 0.0f;
          if constexpr (T::HAS_MIN) {
#pragma unroll
            for (int i = 0; i < T::RUN; ++i) sx += xv[i];
          }
#pragma unroll
          for (int r = 0; r < R; ++r) {
            float sq = 0.0f;
#pragma unroll
            for (int i = 0; i < T::RUN; ++i) sq += q[r][run * T::RUN + i] * xv[i];
            acc[r][t] += sc[r][run] * sq;
            if constexpr (T::HAS_MIN) acc[r][t] -= mn[r][run] * sx;
          }
        }
      }
    }
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    if (t < n_tok) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float s = warp_sum(acc[r][t]);
        if (lane == 0 && row0 + r < n_rows) y[int64_t(t) * n_rows + row0 + r] = s;
      }
    }
  }
}

template <class T>
cudaError_t launch_matvec(const void* w, uint64_t row_bytes, int64_t n_rows, int64_t k, const float* x, int64_t n_tok,
                          float* y, cudaStream_t stream, bool w_al16) {
  const int64_t nb = k / T::VALUES;
  const bool x_al16 = aligned(x, 16) && k % 4 == 0;
  const auto* wb = static_cast<const uint8_t*>(w);
  const int nt = int(n_tok);
  const int r = n_rows >= 2048 ? 2 : 1;
  // Few rows (e.g. the K/V projections of a GQA model): one warp per block, so the warps spread over
  // every SM instead of filling a few.
  const int64_t warps = (n_rows + r - 1) / r;
  const int wpb = warps >= 1024 ? MV_WARPS : 1;
  const unsigned blocks = unsigned((warps + wpb - 1) / wpb);
  const dim3 block(unsigned(wpb * 32));
  if (r == 2 && nt == 1)
    launch(matvec_kernel<T, 2, 1>, blocks, block, 0, stream, wb, row_bytes, n_rows, nb, k, x, nt, y, w_al16, x_al16);
  else if (r == 2)
    launch(matvec_kernel<T, 2, MAX_TOK>, blocks, block, 0, stream, wb, row_bytes, n_rows, nb, k, x, nt, y, w_al16, x_al16);
  else if (nt == 1)
    launch(matvec_kernel<T, 1, 1>, blocks, block, 0, stream, wb, row_bytes, n_rows, nb, k, x, nt, y, w_al16, x_al16);
  else
    launch(matvec_kernel<T, 1, MAX_TOK>, blocks, block, 0, stream, wb, row_bytes, n_rows, nb, k, x, nt, y, w_al16, x_al16);
  return launch_status();
}

// ---- whole-row conversions: one thread per chunk ---------------------------------------------------

// out[r * k + i] = BF16(W[r][i]).
template <class T>
__global__ void dequantize_bf16_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n_rows, int64_t nb,
                                       int64_t k, uint16_t* __restrict__ out, bool w_al16, bool vec_out) {
  constexpr int NV = T::NRUN * T::RUN;
  const int64_t per_row = nb * T::CHUNKS;
  const int64_t total = n_rows * per_row;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = idx / per_row, rem = idx % per_row;
    const int64_t b = rem / T::CHUNKS;
    const int c = int(rem % T::CHUNKS);
    float v[NV];
    T::decode(w + uint64_t(r) * row_bytes + uint64_t(b) * T::BYTES, c, w_al16, v);
    uint16_t* o = out + r * k + b * T::VALUES;
    if constexpr (T::RUN % 4 == 0) {
      if (vec_out) {  // a run of 4 (8 bytes) or 16 (32 bytes) values, stored with 8- / 16-byte stores
#pragma unroll
        for (int run = 0; run < T::NRUN; ++run) {
          uint32_t pk[T::RUN / 2];
#pragma unroll
          for (int i = 0; i < T::RUN / 2; ++i)
            pk[i] = uint32_t(qd::float_to_bf16(v[run * T::RUN + 2 * i])) |
                    (uint32_t(qd::float_to_bf16(v[run * T::RUN + 2 * i + 1])) << 16);
          uint16_t* dst = o + T::run_start(c, run);
          if constexpr (T::RUN == 4) {
            *reinterpret_cast<uint2*>(dst) = make_uint2(pk[0], pk[1]);
          } else {
#pragma unroll
            for (int j = 0; j < T::RUN / 8; ++j)
              reinterpret_cast<uint4*>(dst)[j] = make_uint4(pk[4 * j], pk[4 * j + 1], pk[4 * j + 2], pk[4 * j + 3]);
          }
        }
        continue;
      }
    }
#pragma unroll
    for (int run = 0; run < T::NRUN; ++run)
#pragma unroll
      for (int i = 0; i < T::RUN; ++i) o[T::run_start(c, run) + i] = qd::float_to_bf16(v[run * T::RUN + i]);
  }
}

// out[t * row_len + i] = table[ids[t]][i].
template <class T>
__global__ void get_rows_kernel(const uint8_t* __restrict__ table, uint64_t row_bytes, int64_t nb, int64_t row_len,
                                const int32_t* __restrict__ ids, int64_t n, float* __restrict__ out) {
  constexpr int NV = T::NRUN * T::RUN;
  const int64_t per_row = nb * T::CHUNKS;
  const int64_t total = n * per_row;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = idx / per_row, rem = idx % per_row;
    const int64_t b = rem / T::CHUNKS;
    const int c = int(rem % T::CHUNKS);
    const int64_t row = ids[t];
    float v[NV];
    T::decode(table + uint64_t(row) * row_bytes + uint64_t(b) * T::BYTES, c, false, v);
    float* o = out + t * row_len + b * T::VALUES;
#pragma unroll
    for (int run = 0; run < T::NRUN; ++run)
#pragma unroll
      for (int i = 0; i < T::RUN; ++i) o[T::run_start(c, run) + i] = v[run * T::RUN + i];
  }
}

constexpr int CONV_THREADS = 256;

template <class T>
cudaError_t launch_dequantize_bf16(const void* w, uint64_t row_bytes, int64_t n_rows, int64_t k, uint16_t* out,
                                   cudaStream_t stream) {
  const int64_t nb = k / T::VALUES;
  const unsigned grid = grid_for(n_rows * nb * T::CHUNKS, CONV_THREADS);
  // Runs start at element offsets that are multiples of their length (4 or 16), so with out 16-byte
  // aligned and k a multiple of 8 each run is 8- or 16-byte aligned.
  const bool vec_out = aligned(out, 16) && k % 8 == 0;
  const bool w_al16 = aligned(w, 16) && row_bytes % 16 == 0;
  launch(dequantize_bf16_kernel<T>, grid, CONV_THREADS, 0, stream, static_cast<const uint8_t*>(w), row_bytes, n_rows,
         nb, k, out, w_al16, vec_out);
  return launch_status();
}

template <class T>
cudaError_t launch_get_rows(const void* table, uint64_t row_bytes, int64_t row_len, const int32_t* ids, int64_t n,
                            float* out, cudaStream_t stream) {
  const int64_t nb = row_len / T::VALUES;
  const unsigned grid = grid_for(n * nb * T::CHUNKS, CONV_THREADS);
  launch(get_rows_kernel<T>, grid, CONV_THREADS, 0, stream, static_cast<const uint8_t*>(table), row_bytes, nb, row_len, ids,
                                                        n, out);
  return launch_status();
}

// Elements and bytes per block of a supported type (kept here, not taken from hearth::type_traits, so
// that hearth_cuda needs nothing from hearth_engine at link time).
bool block_shape(GgmlType type, int64_t& values, uint64_t& bytes) {
  switch (type) {
    case GgmlType::F32: values = 1, bytes = 4; return true;
    case GgmlType::F16:
    case GgmlType::BF16: values = 1, bytes = 2; return true;
    case GgmlType::Q8_0: values = qd::Q8_0::VALUES, bytes = qd::Q8_0::BYTES; return true;
    case GgmlType::Q4_0: values = qd::Q4_0::VALUES, bytes = qd::Q4_0::BYTES; return true;
    case GgmlType::Q4_K: values = qd::Q4_K::VALUES, bytes = qd::Q4_K::BYTES; return true;
    case GgmlType::Q6_K: values = qd::Q6_K::VALUES, bytes = qd::Q6_K::BYTES; return true;
    default: return false;
  }
}

// Checks shared by the three entry points: a supported type, k a positive multiple of the block size,
// rows long enough, and the alignment the decoders' loads need (2 bytes; 4 for F32 and Q4_K).
bool weight_args_ok(GgmlType type, const void* w, uint64_t row_bytes, int64_t n_rows, int64_t k) {
  int64_t values = 0;
  uint64_t bytes = 0;
  if (!block_shape(type, values, bytes) || w == nullptr || n_rows < 1 || k < 1) return false;
  if (k % values != 0 || n_rows > (int64_t(1) << 31) || k > (int64_t(1) << 31)) return false;
  if (row_bytes < uint64_t(k / values) * bytes) return false;
  const uint64_t al = (type == GgmlType::F32 || type == GgmlType::Q4_K) ? 4 : 2;
  return aligned(w, uintptr_t(al)) && row_bytes % al == 0;
}

}  // namespace

bool weight_type_supported(GgmlType type) {
  int64_t values = 0;
  uint64_t bytes = 0;
  return block_shape(type, values, bytes);
}

cudaError_t matvec(GgmlType type, const void* w, uint64_t row_bytes, int64_t n_rows, int64_t k, const float* x,
                   int64_t n_tok, float* y, cudaStream_t stream) {
  if (!weight_args_ok(type, w, row_bytes, n_rows, k) || x == nullptr || y == nullptr) return cudaErrorInvalidValue;
  if (n_tok < 1 || n_tok > MATVEC_MAX_TOKENS) return cudaErrorInvalidValue;
  const bool w_al16 = aligned(w, 16) && row_bytes % 16 == 0;
  switch (type) {
    case GgmlType::F32:
      if (w_al16 && k % 4 == 0) return launch_matvec<qd::F32Vec>(w, row_bytes, n_rows, k, x, n_tok, y, stream, true);
      return launch_matvec<qd::F32Scalar>(w, row_bytes, n_rows, k, x, n_tok, y, stream, false);
    case GgmlType::F16:
      if (w_al16 && k % 8 == 0) return launch_matvec<qd::F16Vec>(w, row_bytes, n_rows, k, x, n_tok, y, stream, true);
      return launch_matvec<qd::F16Scalar>(w, row_bytes, n_rows, k, x, n_tok, y, stream, false);
    case GgmlType::BF16:
      if (w_al16 && k % 8 == 0) return launch_matvec<qd::BF16Vec>(w, row_bytes, n_rows, k, x, n_tok, y, stream, true);
      return launch_matvec<qd::BF16Scalar>(w, row_bytes, n_rows, k, x, n_tok, y, stream, false);
    case GgmlType::Q8_0: return launch_matvec<qd::Q8_0>(w, row_bytes, n_rows, k, x, n_tok, y, stream, w_al16);
    case GgmlType::Q4_0: return launch_matvec<qd::Q4_0>(w, row_bytes, n_rows, k, x, n_tok, y, stream, w_al16);
    case GgmlType::Q4_K: return launch_matvec<qd::Q4_K>(w, row_bytes, n_rows, k, x, n_tok, y, stream, w_al16);
    case GgmlType::Q6_K: return launch_matvec<qd::Q6_K>(w, row_bytes, n_rows, k, x, n_tok, y, stream, w_al16);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t dequantize_bf16(GgmlType type, const void* w, uint64_t row_bytes, int64_t n_rows, int64_t k,
                            uint16_t* out, cudaStream_t stream) {
  if (!weight_args_ok(type, w, row_bytes, n_rows, k) || out == nullptr) return cudaErrorInvalidValue;
  switch (type) {
    case GgmlType::F32: return launch_dequantize_bf16<qd::F32Scalar>(w, row_bytes, n_rows, k, out, stream);
    case GgmlType::F16: return launch_dequantize_bf16<qd::F16Scalar>(w, row_bytes, n_rows, k, out, stream);
    case GgmlType::BF16: return launch_dequantize_bf16<qd::BF16Scalar>(w, row_bytes, n_rows, k, out, stream);
    case GgmlType::Q8_0: return launch_dequantize_bf16<qd::Q8_0>(w, row_bytes, n_rows, k, out, stream);
    case GgmlType::Q4_0: return launch_dequantize_bf16<qd::Q4_0>(w, row_bytes, n_rows, k, out, stream);
    case GgmlType::Q4_K: return launch_dequantize_bf16<qd::Q4_K>(w, row_bytes, n_rows, k, out, stream);
    case GgmlType::Q6_K: return launch_dequantize_bf16<qd::Q6_K>(w, row_bytes, n_rows, k, out, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t get_rows(GgmlType type, const void* table, uint64_t row_bytes, int64_t row_len, const int32_t* ids,
                     int64_t n, float* out, cudaStream_t stream) {
  if (n < 1 || ids == nullptr || out == nullptr) return cudaErrorInvalidValue;
  // n_rows is unknown here (ids are validated by the caller); 1 stands in for the shape checks.
  if (!weight_args_ok(type, table, row_bytes, 1, row_len)) return cudaErrorInvalidValue;
  switch (type) {
    case GgmlType::F32: return launch_get_rows<qd::F32Scalar>(table, row_bytes, row_len, ids, n, out, stream);
    case GgmlType::F16: return launch_get_rows<qd::F16Scalar>(table, row_bytes, row_len, ids, n, out, stream);
    case GgmlType::BF16: return launch_get_rows<qd::BF16Scalar>(table, row_bytes, row_len, ids, n, out, stream);
    case GgmlType::Q8_0: return launch_get_rows<qd::Q8_0>(table, row_bytes, row_len, ids, n, out, stream);
    case GgmlType::Q4_0: return launch_get_rows<qd::Q4_0>(table, row_bytes, row_len, ids, n, out, stream);
    case GgmlType::Q4_K: return launch_get_rows<qd::Q4_K>(table, row_bytes, row_len, ids, n, out, stream);
    case GgmlType::Q6_K: return launch_get_rows<qd::Q6_K>(table, row_bytes, row_len, ids, n, out, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace hearth::cuda
