/* Causal attention over the F16 KV cache (engine/cuda/kernels.h): one kernel for prefill (n_tok > 1)
 * and decode (n_tok == 1, split-KV), plus the merge of the decode splits.
 *
 * Design: a block of 4 warps owns 8 "rows" (query token, query head) that share one KV head (GQA: the
 * heads of a group side by side; several queries of a head when the group is smaller than 8), so each
 * K/V tile is read from memory once for all of them. Tiles of 32 keys are staged in shared memory as
 * half2 words with an odd row stride (conflict-free both when lane j reads key j's row to score it and
 * when lanes read consecutive words of one value row). Each warp then runs the online softmax (running
 * maximum, rescaled sum and accumulator, all F32) for its 2 rows: lane j scores key j, the warp takes
 * the tile maximum and sum by shuffles, and accumulates p_j * V[j] with lane l owning words l, l+32, ...
 *
 * Decode splits the keys [0, n_ctx) into n_split ranges (n_split from n_ctx, so the launch shape does
 * not depend on the position and a CUDA graph can replay it); blocks whose range starts past the current
 * length (read from pos_dev) exit at once, the others write (max, sum, accumulator) per head to scratch
 * and attention_merge_kernel combines the valid ranges.
 *
 * Non-obvious choice: the score of a key is dot(q, k) * scale in F32, as the CPU computes it, not with
 * q pre-scaled: the two then differ only by summation order.
 */
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

#include "kernels-common.cuh"
#include "kernels.h"

namespace hearth::cuda {

namespace {

using namespace detail;

constexpr int ATT_WARPS = 4;
constexpr int ATT_ROWS = 8;                // (query, head) rows per block: 2 per warp
constexpr int ATT_TILE = 32;               // keys per shared-memory tile: one per lane when scoring
constexpr int64_t ATT_SPLIT_KEYS = 64;     // decode: at least this many cache rows per split
constexpr int64_t ATT_MAX_SPLITS = 256;

struct AttParams {
  int64_t n_tok, n_head, n_head_kv, group;  // group = n_head / n_head_kv
  int64_t gh, tq, n_hsub;                   // heads per block, queries per block, blocks per group
  int64_t kv_dim, n_ctx, keys_per_split;
  int n_split;
  float scale;
};

int64_t decode_splits(int64_t n_ctx) {
  int64_t s = (n_ctx + ATT_SPLIT_KEYS - 1) / ATT_SPLIT_KEYS;
  if (s < 1) s = 1;
  if (s > ATT_MAX_SPLITS) s = ATT_MAX_SPLITS;
  return s;
}

bool head_dim_supported(int64_t d) { return d == 64 || d == 80 || d == 96 || d == 128 || d == 256; }

__device__ __forceinline__ float2 half2_bits_to_float2(uint32_t w) {
  __half2 h;
  memcpy(&h, &w, 4);
  return __half22float2(h);
}

template <int D>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_kernel(const float* __restrict__ q, const uint16_t* __restrict__ k_cache,
                     const uint16_t* __restrict__ v_cache, float* __restrict__ out, float* __restrict__ partial,
                     AttParams p, const int32_t* __restrict__ pos_dev) {
  constexpr int W = D / 2;             // half2 words per key row
  constexpr int WS = W + 1;            // padded shared row stride (odd)
  constexpr int NA = (W + 31) / 32;    // accumulator words per lane
  constexpr int Q4 = W / 4;            // 16-byte pieces per key row (D is a multiple of 8)
  __shared__ uint32_t ks[ATT_TILE * WS];
  __shared__ uint32_t vs[ATT_TILE * WS];
  __shared__ float qs[ATT_ROWS][D];

  const int64_t pos0 = *pos_dev;
  const int64_t kvh = int64_t(blockIdx.x) / p.n_hsub, hsub = int64_t(blockIdx.x) % p.n_hsub;
  const int64_t t0 = int64_t(blockIdx.y) * p.tq;
  const int split = int(blockIdx.z);
  const int64_t t_last = (t0 + p.tq < p.n_tok ? t0 + p.tq : p.n_tok) - 1;
  const int64_t kbeg = int64_t(split) * p.keys_per_split;
  int64_t kend = kbeg + p.keys_per_split;
  if (kend > pos0 + t_last + 1) kend = pos0 + t_last + 1;
  if (kend > p.n_ctx) kend = p.n_ctx;  // a position past the cache never reads outside it
  if (kbeg >= kend) return;            // the whole block: nothing in its range yet

  // Row r: head gh = r % gh of this block's part of the group, query tq = r / gh.
  auto row_valid = [&](int r, int64_t& t, int64_t& h) {
    const int64_t g = hsub * p.gh + r % p.gh, tq = r / p.gh;
    t = t0 + tq;
    h = kvh * p.group + g;
    return tq < p.tq && g < p.group && t < p.n_tok;
  };

  for (int idx = int(threadIdx.x); idx < ATT_ROWS * D; idx += int(blockDim.x)) {
    const int r = idx / D, d = idx % D;
    int64_t t, h;
    qs[r][d] = row_valid(r, t, h) ? q[(t * p.n_head + h) * D + d] : 0.0f;
  }

  const int lane = int(threadIdx.x & 31u), warp = int(threadIdx.x >> 5);
  bool valid[2];
  int64_t rt[2], rh[2];
  float m[2], l[2], acc[2][NA][2];
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    valid[rr] = row_valid(warp + ATT_WARPS * rr, rt[rr], rh[rr]);
    m[rr] = -INFINITY;
    l[rr] = 0.0f;
#pragma unroll
    for (int a = 0; a < NA; ++a) acc[rr][a][0] = acc[rr][a][1] = 0.0f;
  }

  for (int64_t j0 = kbeg; j0 < kend; j0 += ATT_TILE) {
    const int nk = int(kend - j0 < ATT_TILE ? kend - j0 : ATT_TILE);
    __syncthreads();  // the previous tile (and, the first time, nothing) is no longer read
    for (int idx = int(threadIdx.x); idx < ATT_TILE * Q4; idx += int(blockDim.x)) {
      const int jj = idx / Q4, c = idx % Q4;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (jj < nk) {
        const int64_t off = (j0 + jj) * p.kv_dim + kvh * D;  // in halves; a multiple of 8
        kv = __ldg(reinterpret_cast<const uint4*>(k_cache + off) + c);
        vv = __ldg(reinterpret_cast<const uint4*>(v_cache + off) + c);
      }
      uint32_t* kd = ks + jj * WS + 4 * c;
      uint32_t* vd = vs + jj * WS + 4 * c;
      kd[0] = kv.x, kd[1] = kv.y, kd[2] = kv.z, kd[3] = kv.w;
      vd[0] = vv.x, vd[1] = vv.y, vd[2] = vv.z, vd[3] = vv.w;
    }
    __syncthreads();

#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      if (!valid[rr]) continue;  // warp-uniform
      const int r = warp + ATT_WARPS * rr;
      const int64_t qpos = pos0 + rt[rr];
      float s = -INFINITY;
      if (lane < nk && j0 + lane <= qpos) {
        const uint32_t* kr = ks + lane * WS;
        const float* qr = qs[r];
        float dot = 0.0f;
#pragma unroll 8
        for (int w = 0; w < W; ++w) {
          const float2 kf = half2_bits_to_float2(kr[w]);
          dot += qr[2 * w] * kf.x + qr[2 * w + 1] * kf.y;
        }
        s = dot * p.scale;
      }
      const float mt = warp_max(s);
      if (mt == -INFINITY) continue;  // no visible key in this tile for this row (warp-uniform)
      const float m_new = fmaxf(m[rr], mt);
      const float corr = expf(m[rr] - m_new);  // 0 on the first tile (m = -inf)
      const float pj = s == -INFINITY ? 0.0f : expf(s - m_new);
      l[rr] = l[rr] * corr + warp_sum(pj);
#pragma unroll
      for (int a = 0; a < NA; ++a) acc[rr][a][0] *= corr, acc[rr][a][1] *= corr;
      for (int jj = 0; jj < nk; ++jj) {
        const float pb = __shfl_sync(FULL_MASK, pj, jj);
        const uint32_t* vr = vs + jj * WS;
#pragma unroll
        for (int a = 0; a < NA; ++a) {
          const int w = lane + 32 * a;
          if (w < W) {
            const float2 vf = half2_bits_to_float2(vr[w]);
            acc[rr][a][0] += pb * vf.x;
            acc[rr][a][1] += pb * vf.y;
          }
        }
      }
      m[rr] = m_new;
    }
  }

#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    if (!valid[rr]) continue;
    if (partial != nullptr) {  // decode split: (max, sum, accumulator) of head rh for this range
      float* pr = partial + (rh[rr] * p.n_split + split) * (D + 2);
      if (lane == 0) pr[0] = m[rr], pr[1] = l[rr];
#pragma unroll
      for (int a = 0; a < NA; ++a) {
        const int w = lane + 32 * a;
        if (w < W) pr[2 + 2 * w] = acc[rr][a][0], pr[3 + 2 * w] = acc[rr][a][1];
      }
    } else {
      const float inv = 1.0f / l[rr];
      float* o = out + (rt[rr] * p.n_head + rh[rr]) * D;
#pragma unroll
      for (int a = 0; a < NA; ++a) {
        const int w = lane + 32 * a;
        if (w < W) o[2 * w] = acc[rr][a][0] * inv, o[2 * w + 1] = acc[rr][a][1] * inv;
      }
    }
  }
}

// One block per head: combines the splits that hold keys at the current length.
__global__ void attention_merge_kernel(const float* __restrict__ partial, float* __restrict__ out, int64_t head_dim,
                                       int n_split, int64_t keys_per_split, int64_t n_ctx,
                                       const int32_t* __restrict__ pos_dev) {
  const int64_t h = blockIdx.x;
  int64_t len = int64_t(*pos_dev) + 1;
  if (len > n_ctx) len = n_ctx;
  int64_t n_valid = (len + keys_per_split - 1) / keys_per_split;
  if (n_valid > n_split) n_valid = n_split;
  if (n_valid < 1) return;
  const int64_t stride = head_dim + 2;
  const float* ph = partial + h * n_split * stride;
  float mx = -INFINITY;
  for (int64_t s = 0; s < n_valid; ++s) mx = fmaxf(mx, ph[s * stride]);
  float sum = 0.0f;
  for (int64_t s = 0; s < n_valid; ++s) sum += ph[s * stride + 1] * expf(ph[s * stride] - mx);
  const float inv = 1.0f / sum;
  for (int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float o = 0.0f;
    for (int64_t s = 0; s < n_valid; ++s) o += ph[s * stride + 2 + d] * expf(ph[s * stride] - mx);
    out[h * head_dim + d] = o * inv;
  }
}

template <int D>
void launch_attention(dim3 grid, const float* q, const uint16_t* k_cache, const uint16_t* v_cache, float* out,
                      float* partial, const AttParams& p, const int32_t* pos_dev, cudaStream_t stream) {
  launch(attention_kernel<D>, grid, ATT_WARPS * 32, 0, stream, q, k_cache, v_cache, out, partial, p, pos_dev);
}

}  // namespace

size_t attention_scratch_bytes(const AttentionShape& shape) {
  if (shape.n_tok != 1 || shape.n_head < 1 || shape.n_ctx < 1 || !head_dim_supported(shape.head_dim)) return 0;
  const int64_t n_split = decode_splits(shape.n_ctx);
  if (n_split <= 1) return 0;
  return size_t(shape.n_head) * size_t(n_split) * size_t(shape.head_dim + 2) * sizeof(float);
}

cudaError_t attention(const float* q, const uint16_t* k_cache, const uint16_t* v_cache, float* out,
                      const AttentionShape& shape, const int32_t* pos_dev, void* scratch, cudaStream_t stream) {
  const int64_t D = shape.head_dim;
  if (!head_dim_supported(D) || shape.n_tok < 1 || shape.n_head < 1 || shape.n_head_kv < 1 || shape.n_ctx < 1 ||
      shape.n_head % shape.n_head_kv != 0)
    return cudaErrorInvalidValue;
  if (q == nullptr || k_cache == nullptr || v_cache == nullptr || out == nullptr || pos_dev == nullptr)
    return cudaErrorInvalidValue;
  // The tile loads read 16 bytes at a time.
  if (!aligned(k_cache, 16) || !aligned(v_cache, 16)) return cudaErrorInvalidValue;

  AttParams p{};
  p.n_tok = shape.n_tok;
  p.n_head = shape.n_head;
  p.n_head_kv = shape.n_head_kv;
  p.group = shape.n_head / shape.n_head_kv;
  p.gh = p.group < ATT_ROWS ? p.group : ATT_ROWS;
  p.n_hsub = (p.group + p.gh - 1) / p.gh;
  p.kv_dim = shape.n_head_kv * D;
  p.n_ctx = shape.n_ctx;
  p.scale = shape.scale;

  float* partial = nullptr;
  dim3 grid;
  if (shape.n_tok == 1) {
    p.tq = 1;
    p.n_split = int(decode_splits(shape.n_ctx));
    p.keys_per_split = (shape.n_ctx + p.n_split - 1) / p.n_split;
    if (p.n_split > 1) {
      if (scratch == nullptr) return cudaErrorInvalidValue;
      partial = static_cast<float*>(scratch);
    }
    grid = dim3(unsigned(p.n_head_kv * p.n_hsub), 1u, unsigned(p.n_split));
  } else {
    p.tq = ATT_ROWS / p.gh;
    p.n_split = 1;
    p.keys_per_split = shape.n_ctx;
    const int64_t n_qblocks = (shape.n_tok + p.tq - 1) / p.tq;
    if (n_qblocks > 65535) return cudaErrorInvalidValue;
    grid = dim3(unsigned(p.n_head_kv * p.n_hsub), unsigned(n_qblocks), 1u);
  }
  if (int64_t(grid.x) != p.n_head_kv * p.n_hsub) return cudaErrorInvalidValue;

  switch (D) {
    case 64: launch_attention<64>(grid, q, k_cache, v_cache, out, partial, p, pos_dev, stream); break;
    case 80: launch_attention<80>(grid, q, k_cache, v_cache, out, partial, p, pos_dev, stream); break;
    case 96: launch_attention<96>(grid, q, k_cache, v_cache, out, partial, p, pos_dev, stream); break;
    case 128: launch_attention<128>(grid, q, k_cache, v_cache, out, partial, p, pos_dev, stream); break;
    case 256: launch_attention<256>(grid, q, k_cache, v_cache, out, partial, p, pos_dev, stream); break;
    default: return cudaErrorInvalidValue;
  }
  cudaError_t err = launch_status();
  if (err != cudaSuccess || partial == nullptr) return err;
  const int threads = D <= 128 ? 128 : 256;
  launch(attention_merge_kernel, unsigned(p.n_head), threads, 0, stream, partial, out, D, p.n_split, p.keys_per_split,
                                                                      p.n_ctx, pos_dev);
  return launch_status();
}

}  // namespace hearth::cuda
