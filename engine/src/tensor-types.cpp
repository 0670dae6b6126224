/* Tensor type traits (block sizes and bytes as ggml defines them), sizes with overflow checks, and the
 * dispatch of dequantize()/quantize() to the block kernels in quants.cpp and quants-k.cpp.
 *
 * Non-obvious choice: the traits table lists every type id ggml has given a fixed block layout, including
 * ones Hearth cannot decode (the IQ and ternary types), so that a file holding them still opens and a
 * user is told "type IQ4_XS is not supported" rather than "unknown type 23".
 */
#include "hearth/tensor-types.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <string>

#include "quants.h"

namespace hearth {

namespace {

using namespace quants;

constexpr TypeTraits TRAITS[] = {
    {GgmlType::F32, "F32", 1, 4, true},
    {GgmlType::F16, "F16", 1, 2, true},
    {GgmlType::Q4_0, "Q4_0", QK, Q4_0_BYTES, true},
    {GgmlType::Q4_1, "Q4_1", QK, Q4_1_BYTES, true},
    {GgmlType::Q5_0, "Q5_0", QK, Q5_0_BYTES, true},
    {GgmlType::Q5_1, "Q5_1", QK, Q5_1_BYTES, true},
    {GgmlType::Q8_0, "Q8_0", QK, Q8_0_BYTES, true},
    {GgmlType::Q8_1, "Q8_1", QK, Q8_1_BYTES, true},
    {GgmlType::Q2_K, "Q2_K", QK_K, Q2_K_BYTES, true},
    {GgmlType::Q3_K, "Q3_K", QK_K, Q3_K_BYTES, true},
    {GgmlType::Q4_K, "Q4_K", QK_K, Q4_K_BYTES, true},
    {GgmlType::Q5_K, "Q5_K", QK_K, Q5_K_BYTES, true},
    {GgmlType::Q6_K, "Q6_K", QK_K, Q6_K_BYTES, true},
    {GgmlType::Q8_K, "Q8_K", QK_K, Q8_K_BYTES, true},
    {GgmlType::IQ2_XXS, "IQ2_XXS", QK_K, 2 + QK_K / 4, false},
    {GgmlType::IQ2_XS, "IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32, false},
    {GgmlType::IQ3_XXS, "IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8, false},
    {GgmlType::IQ1_S, "IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16, false},
    {GgmlType::IQ4_NL, "IQ4_NL", QK, 2 + QK / 2, false},
    {GgmlType::IQ3_S, "IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4, false},
    {GgmlType::IQ2_S, "IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16, false},
    {GgmlType::IQ4_XS, "IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64, false},
    {GgmlType::I8, "I8", 1, 1, true},
    {GgmlType::I16, "I16", 1, 2, true},
    {GgmlType::I32, "I32", 1, 4, true},
    {GgmlType::I64, "I64", 1, 8, true},
    {GgmlType::F64, "F64", 1, 8, true},
    {GgmlType::IQ1_M, "IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32, false},
    {GgmlType::BF16, "BF16", 1, 2, true},
    {GgmlType::TQ1_0, "TQ1_0", QK_K, 2 + 4 * 13, false},
    {GgmlType::TQ2_0, "TQ2_0", QK_K, 2 + 64, false},
    {GgmlType::MXFP4, "MXFP4", QK, 1 + QK / 2, false},
};

constexpr uint32_t MAX_ID = 40;

struct TraitsIndex {
  const TypeTraits* by_id[MAX_ID] = {};
  constexpr TraitsIndex() {
    for (const auto& t : TRAITS) by_id[uint32_t(t.type)] = &t;
  }
};
constexpr TraitsIndex INDEX{};

template <class T>
void convert_ints(const void* src, float* dst, int64_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, p + i * int64_t(sizeof(T)), sizeof(T));
    dst[i] = float(v);
  }
}

}  // namespace

bool is_known_type(uint32_t id) { return id < MAX_ID && INDEX.by_id[id] != nullptr; }

const TypeTraits* type_traits(GgmlType type) {
  uint32_t id = uint32_t(type);
  return id < MAX_ID ? INDEX.by_id[id] : nullptr;
}

const char* type_name(GgmlType type) {
  const TypeTraits* t = type_traits(type);
  return t ? t->name : "unknown";
}

std::optional<GgmlType> type_from_name(std::string_view name) {
  for (const auto& t : TRAITS) {
    std::string_view tn = t.name;
    if (tn.size() == name.size() &&
        std::equal(tn.begin(), tn.end(), name.begin(), [](char a, char b) {
          return std::toupper(static_cast<unsigned char>(a)) == std::toupper(static_cast<unsigned char>(b));
        }))
      return t.type;
  }
  return std::nullopt;
}

bool can_quantize(GgmlType type) {
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0:
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1:
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: case GgmlType::Q2_K: case GgmlType::Q3_K:
      return true;
    default:
      return false;
  }
}

Expected<uint64_t> type_nbytes(GgmlType type, uint64_t n_elements) {
  const TypeTraits* t = type_traits(type);
  if (!t) return make_error(ErrorCode::unsupported, "unknown tensor type id " + std::to_string(uint32_t(type)));
  if (n_elements % uint64_t(t->block_size) != 0)
    return make_error(ErrorCode::invalid_argument,
                      std::to_string(n_elements) + " elements of type " + t->name +
                          " is not a whole number of blocks of " + std::to_string(t->block_size));
  uint64_t bytes;
  if (__builtin_mul_overflow(n_elements / uint64_t(t->block_size), uint64_t(t->block_bytes), &bytes))
    return make_error(ErrorCode::out_of_range,
                      std::to_string(n_elements) + " elements of type " + t->name + " overflow a 64-bit size");
  return bytes;
}

Expected<uint64_t> row_nbytes(GgmlType type, int64_t row_length) {
  if (row_length < 0)
    return make_error(ErrorCode::invalid_argument, "negative row length " + std::to_string(row_length));
  return type_nbytes(type, uint64_t(row_length));
}

Expected<void> dequantize(GgmlType type, const void* src, float* dst, int64_t n) {
  const TypeTraits* t = type_traits(type);
  if (!t) return make_error(ErrorCode::unsupported, "unknown tensor type id " + std::to_string(uint32_t(type)));
  if (!t->supported)
    return make_error(ErrorCode::unsupported, std::string("tensor type ") + t->name + " is not supported",
                      "re-quantize the model to a K-quant (Q4_K_M, Q5_K_M, Q6_K) or Q8_0");
  if (n < 0 || n % t->block_size != 0)
    return make_error(ErrorCode::invalid_argument, std::to_string(n) + " elements of type " + t->name +
                                                       " is not a whole number of blocks of " +
                                                       std::to_string(t->block_size));
  if (n == 0) return {};
  const uint8_t* x = static_cast<const uint8_t*>(src);
  const int64_t nb = n / t->block_size;
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, size_t(n) * 4); break;
    case GgmlType::F16: {
      const float* ht = half_table();
      for (int64_t i = 0; i < n; ++i) dst[i] = ht[load_u16(x + 2 * i)];
      break;
    }
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(uint32_t(load_u16(x + 2 * i)) << 16);
      break;
    case GgmlType::F64: convert_ints<double>(src, dst, n); break;
    case GgmlType::I8: convert_ints<int8_t>(src, dst, n); break;
    case GgmlType::I16: convert_ints<int16_t>(src, dst, n); break;
    case GgmlType::I32: convert_ints<int32_t>(src, dst, n); break;
    case GgmlType::I64: convert_ints<int64_t>(src, dst, n); break;
    case GgmlType::Q4_0: dequantize_q4_0(x, dst, nb); break;
    case GgmlType::Q4_1: dequantize_q4_1(x, dst, nb); break;
    case GgmlType::Q5_0: dequantize_q5_0(x, dst, nb); break;
    case GgmlType::Q5_1: dequantize_q5_1(x, dst, nb); break;
    case GgmlType::Q8_0: dequantize_q8_0(x, dst, nb); break;
    case GgmlType::Q8_1: dequantize_q8_1(x, dst, nb); break;
    case GgmlType::Q2_K: dequantize_q2_k(x, dst, nb); break;
    case GgmlType::Q3_K: dequantize_q3_k(x, dst, nb); break;
    case GgmlType::Q4_K: dequantize_q4_k(x, dst, nb); break;
    case GgmlType::Q5_K: dequantize_q5_k(x, dst, nb); break;
    case GgmlType::Q6_K: dequantize_q6_k(x, dst, nb); break;
    case GgmlType::Q8_K: dequantize_q8_k(x, dst, nb); break;
    default:
      return make_error(ErrorCode::internal, std::string("no decoder for supported type ") + t->name);
  }
  return {};
}

Expected<void> quantize(GgmlType type, const float* src, void* dst, int64_t n) {
  const TypeTraits* t = type_traits(type);
  if (!t) return make_error(ErrorCode::unsupported, "unknown tensor type id " + std::to_string(uint32_t(type)));
  if (!can_quantize(type))
    return make_error(ErrorCode::unsupported, std::string("cannot quantize to tensor type ") + t->name,
                      "choose F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K or Q6_K");
  if (n < 0 || n % t->block_size != 0)
    return make_error(ErrorCode::invalid_argument, std::to_string(n) + " elements of type " + t->name +
                                                       " is not a whole number of blocks of " +
                                                       std::to_string(t->block_size));
  uint8_t* y = static_cast<uint8_t*>(dst);
  const int64_t nb = n / t->block_size;
  if (t->block_size > 1) {
    // A block scale cannot represent infinities or NaN: say where the first one is.
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(src[i]))
        return make_error(ErrorCode::invalid_argument,
                          "cannot quantize to " + std::string(t->name) + ": value " + std::to_string(i) +
                              " is not finite (" + std::to_string(src[i]) + ")");
  }
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, size_t(n) * 4); break;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) store_half(y + 2 * i, src[i]);
      break;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h = fp32_to_bf16(src[i]);
        std::memcpy(y + 2 * i, &h, 2);
      }
      break;
    case GgmlType::Q4_0: quantize_q4_0(src, y, nb); break;
    case GgmlType::Q4_1: quantize_q4_1(src, y, nb); break;
    case GgmlType::Q5_0: quantize_q5_0(src, y, nb); break;
    case GgmlType::Q5_1: quantize_q5_1(src, y, nb); break;
    case GgmlType::Q8_0: quantize_q8_0(src, y, nb); break;
    case GgmlType::Q2_K: quantize_q2_k(src, y, nb); break;
    case GgmlType::Q3_K: quantize_q3_k(src, y, nb); break;
    case GgmlType::Q4_K: quantize_q4_k(src, y, nb); break;
    case GgmlType::Q5_K: quantize_q5_k(src, y, nb); break;
    case GgmlType::Q6_K: quantize_q6_k(src, y, nb); break;
    default:
      return make_error(ErrorCode::internal, std::string("no encoder for type ") + t->name);
  }
  return {};
}

float fp16_to_fp32(uint16_t h) { return quants::half_to_float(h); }
uint16_t fp32_to_fp16(float f) { return quants::float_to_half(f); }

float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

uint16_t fp32_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40);  // NaN stays a quiet NaN
  x += 0x7fffu + ((x >> 16) & 1);                                           // round to nearest even
  return uint16_t(x >> 16);
}

}  // namespace hearth
