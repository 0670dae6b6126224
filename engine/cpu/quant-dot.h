/* Internal: dot products of quantized weight rows against activations quantized on the fly (ggml's
 * vec_dot scheme): Q8_0/Q4_0 rows against Q8_0 activations, K-quant rows against Q8_K activations.
 *
 * Non-obvious choice: the activation is quantized once per matrix product and shared by every row and
 * thread; its rounding (about 0.4% of each block's largest value) is the price of integer dot products,
 * which read a quarter (Q8) or an eighth (Q4) of the bytes an F32 row would.
 */
#pragma once

#include <cstdint>

#include "hearth/tensor-types.h"

namespace hearth::cpu {

// Up to this many tokens a matrix product uses the quantized dot; larger batches (prefill) dequantize
// tiles of rows and use the F32 path, whose cost is spread over the batch.
constexpr int64_t QUANT_DOT_MAX_TOKENS = 1;

struct QuantDot {
  GgmlType weight_type;
  int64_t block;                                             // elements per activation block
  uint64_t act_block_bytes;                                  // bytes per activation block
  void (*quantize_act)(const float* x, uint8_t* dst, int64_t n);
  float (*dot)(const uint8_t* w_row, const uint8_t* act, int64_t n);
  uint64_t act_row_bytes(int64_t n) const { return uint64_t(n / block) * act_block_bytes; }
};

// The kernel for weights of `type`, or nullptr when there is none (the F32 path serves).
const QuantDot* quant_dot_for(GgmlType type);
// The portable version of the same kernel (for tests that compare it with the SIMD one).
const QuantDot* quant_dot_generic_for(GgmlType type);

// The 256-value activation blocks of the integer K-quant kernels: float d, int16 sums of each 16 values,
// int8 q[256] (Q8K_ACT_BYTES a block). The portable version, exposed so tests can check the SIMD one.
constexpr uint64_t Q8K_ACT_BYTES = 4 + 32 + 256;
void quantize_act_q8k(const float* x, uint8_t* dst, int64_t n);

}  // namespace hearth::cpu
