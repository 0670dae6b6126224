/* Internal: dot products of quantized weight rows against activations quantized on the fly (ggml's
 * vec_dot scheme): Q8_0/Q4_0 rows against Q8_0 activations, K-quant rows against Q8_K activations.
 *
 * Non-obvious choice: the activation is quantized once per matrix product and shared by every row and
 * thread; its rounding (about 0.4% of each block's largest value) is the price of integer dot products,
 * which read a quarter (Q8) or an eighth (Q4) of the bytes an F32 row would.
 */
#pragma once

#include <cstdint>
#include <vector>

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
  // Where an 8-bit activation of n values keeps block b's scale and its `block` int8 values (each layout
  // is the kernel's own); null when the activation stays F32. For tests that check the arithmetic.
  void (*act_block)(const uint8_t* act, int64_t n, int64_t b, float* d, const int8_t** q) = nullptr;
  const char* isa = "generic";  // "generic", "avx2", "avx512-vnni"
  uint64_t act_row_bytes(int64_t n) const { return uint64_t(n / block) * act_block_bytes; }
};

// The kernel for weights of `type`, or nullptr when there is none (the F32 path serves).
const QuantDot* quant_dot_for(GgmlType type);
// The portable version of the same kernel (for tests that compare it with the SIMD one).
const QuantDot* quant_dot_generic_for(GgmlType type);
// Every version of the kernel this CPU can run, portable first (for tests and benchmarks).
std::vector<const QuantDot*> quant_dot_variants(GgmlType type);

// The 256-value activation blocks of the integer K-quant kernels: float d, int16 sums of each 16 values,
// int8 q[256] (Q8K_ACT_BYTES a block). The portable version, exposed so tests can check the SIMD one.
constexpr uint64_t Q8K_ACT_BYTES = 4 + 32 + 256;
void quantize_act_q8k(const float* x, uint8_t* dst, int64_t n);

// ---- Matrices repacked eight rows at a time (decoding): Q4_0, Q4_K, Q6_K.
// A row-at-a-time dot spends much of its time on each block's float and scale work (scale conversion,
// int to float, FMA, decoding a K-quant's packed scales), not on the values. With eight rows interleaved,
// one 32-bit lane of an integer dot product belongs to one row: the activation's four bytes are broadcast
// to all lanes, the eight rows' scales are one load, and a block costs that work once for eight rows.
// A group keeps the stored bytes (8 * row_bytes), only their order changes.
constexpr int64_t X8_ROWS = 8;

// Q4_0, per 32-value block b (Q4_0_X8_BLOCK bytes): the 8 rows' F16 scales, then 4 chunks of 32 bytes;
// chunk c holds bytes 4c..4c+3 of each row's 16 nibble bytes, row 0 first. (Low nibbles of chunk c are
// values 4c..4c+3 of each row, high nibbles values 16+4c..16+4c+3.)
constexpr uint64_t Q4_0_X8_BLOCK = 16 + 128;

// Q4_K, per 256-value super-block (Q4_K_X8_BLOCK bytes): the 8 rows' F16 d, their 8 F16 dmin, then the
// rest of each row's block (12 scale bytes, 128 nibble bytes) as 35 four-byte words interleaved: word w of
// row r at 32 + 32 w + 4 r. So words 0..2 are the packed 6-bit scales and minimums (one 32-byte vector each,
// a row per 32-bit lane, decoded for eight rows at once) and word 3 + 8c + p holds nibble bytes 32c+4p..+3:
// low nibbles values 64c+4p..+3 (sub-block 2c), high nibbles values 64c+32+4p..+3 (sub-block 2c+1).
constexpr uint64_t Q4_K_X8_BLOCK = 8 * (2 + 2 + 12 + 128);

// Q6_K, per 256-value super-block (Q6_K_X8_BLOCK bytes): the 8 rows' F16 d, their 16 int8 scales as four
// 32-byte vectors (word w of row r at 16 + 32 w + 4 r: scales 4w..4w+3), then the 6-bit values (stored
// q + 32) re-packed so that three of every four need one AND: 16 steps of three 32-byte vectors X, Y, Z
// (step 8c+p, c < 2, p < 8; row r's bytes at 4 r). With i = 4p + t (t < 4) and v_k the row's value
// 128c + 32k + i: X byte = v_0 | (v_3 & 3) << 6, Y byte = v_1 | (v_3 >> 2 & 3) << 6, Z byte = v_2 | (v_3 >> 4) << 6.
constexpr uint64_t Q6_K_X8_BLOCK = 8 * (128 + 64 + 16 + 2);

// Interleaves 8 stored rows of k values (row r at rows + r * row_bytes) into one group, and back: row r
// (0..7) of a group in the stored layout (row_bytes bytes).
void repack_q4_0_x8(const uint8_t* rows, uint64_t row_bytes, int64_t k, uint8_t* group);
void unpack_q4_0_x8(const uint8_t* group, int64_t k, int r, uint8_t* row);
void repack_q4_k_x8(const uint8_t* rows, uint64_t row_bytes, int64_t k, uint8_t* group);
void unpack_q4_k_x8(const uint8_t* group, int64_t k, int r, uint8_t* row);
void repack_q6_k_x8(const uint8_t* rows, uint64_t row_bytes, int64_t k, uint8_t* group);
void unpack_q6_k_x8(const uint8_t* group, int64_t k, int r, uint8_t* row);

struct QuantDotX8 {
  GgmlType weight_type;
  int64_t block;
  uint64_t act_block_bytes;
  void (*quantize_act)(const float* x, uint8_t* dst, int64_t n);
  // y8[r] = dot(row r of the group, activation) for r < 8.
  void (*dot8)(const uint8_t* group, const uint8_t* act, int64_t n, float* y8);
  void (*act_block)(const uint8_t* act, int64_t n, int64_t b, float* d, const int8_t** q);
  void (*repack)(const uint8_t* rows, uint64_t row_bytes, int64_t k, uint8_t* group);
  void (*unpack)(const uint8_t* group, int64_t k, int r, uint8_t* row);
  const char* isa;
  // Whether decoding should use it: clearly faster (at least 1.3x from L2, bench-quant-dot) than the row
  // kernel of the same instruction set. All are today; Q6_K's AVX2 version is the narrowest (1.28-1.38x).
  bool decode = true;
  uint64_t act_row_bytes(int64_t n) const { return uint64_t(n / block) * act_block_bytes; }
};

// The best interleaved kernel this CPU has for `type`, or nullptr where it would not pay (no SIMD kernel,
// or one not clearly faster than the row kernel): the caller then keeps the stored rows.
const QuantDotX8* quant_dot_x8_for(GgmlType type);
// The portable version, for every type with an interleaved layout whatever the CPU (its repack/unpack
// serve any view with x8 set), or nullptr.
const QuantDotX8* quant_dot_x8_generic_for(GgmlType type);
// Every version this CPU can run, portable first (for tests and benchmarks).
std::vector<const QuantDotX8*> quant_dot_x8_variants(GgmlType type);

}  // namespace hearth::cpu
