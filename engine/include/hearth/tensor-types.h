/* Tensor element types as GGUF numbers them (ggml's `ggml_type`), their block layouts, and conversion
 * between each type and F32.
 *
 * Non-obvious choice: the numeric values are the on-disk GGUF type ids, so a GgmlType read from a file is
 * only valid after `is_known_type()` says so; unknown ids are rejected by the readers, never cast blindly.
 *
 * Thread-safety: pure functions.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "hearth/error.h"

namespace hearth {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
  // Known so that files using them open (names, sizes, `hearth-cli info`), but not dequantized here:
  // their traits say supported == false and read_f32/dequantize give ErrorCode::unsupported.
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  IQ1_M = 29,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct TypeTraits {
  GgmlType type;
  const char* name;      // "F32", "Q4_K", ... as llama.cpp prints them
  int64_t block_size;    // elements per block (1 for plain types)
  size_t block_bytes;    // bytes per block
  bool supported;        // Hearth can dequantize it
};

// True when `id` is a type id Hearth knows (supported or not).
bool is_known_type(uint32_t id);
// Traits of a known type; nullptr for an unknown id.
const TypeTraits* type_traits(GgmlType type);
const char* type_name(GgmlType type);
std::optional<GgmlType> type_from_name(std::string_view name);  // case-insensitive

// Bytes taken by `n_elements` elements of `type`; an error when n is not a multiple of the block size
// or the product overflows.
Expected<uint64_t> type_nbytes(GgmlType type, uint64_t n_elements);

// Converts `n` elements stored as `type` at `src` into F32. n must be a multiple of the block size.
Expected<void> dequantize(GgmlType type, const void* src, float* dst, int64_t n);

// Converts `n` F32 values into `type` (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K,
// Q6_K; see can_quantize()). Values must be finite for the block types.
// dst must hold type_nbytes(type, n) bytes.
Expected<void> quantize(GgmlType type, const float* src, void* dst, int64_t n);

// True when quantize() can produce `type`.
bool can_quantize(GgmlType type);

// Bytes of one row of `row_length` elements (row_length must be a multiple of the block size).
Expected<uint64_t> row_nbytes(GgmlType type, int64_t row_length);

// IEEE half and bfloat16 conversions (round to nearest even).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

}  // namespace hearth
