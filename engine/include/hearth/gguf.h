/* GGUF (v2 and v3) reader and writer.
 *
 * Reader: memory-maps the file, parses every metadata key/value (all 13 value types, nested arrays) and
 * every tensor info, and checks every length, offset and size against the file before it is used: a
 * truncated or hostile file gives an Error naming the file, the byte offset and what was expected.
 * Writer: builds a file in memory-order (header, KV, tensor infos, aligned data) with llama.cpp's keys.
 *
 * Ownership: a GgufFile owns its mapping; tensor_data() pointers live as long as the GgufFile. GgufFile is
 * move-only and immutable after open(), so it may be read from many threads at once.
 */
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "hearth/error.h"
#include "hearth/tensor-types.h"

namespace hearth {

enum class GgufValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_value_type_name(GgufValueType t);

// One metadata value. Arrays hold their element type and elements (which may themselves be arrays).
struct GgufValue {
  GgufValueType type = GgufValueType::UINT8;
  GgufValueType array_type = GgufValueType::UINT8;  // element type when type == ARRAY
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<GgufValue>> data;

  // Typed accessors: nullopt when the value is not of a compatible kind.
  std::optional<int64_t> as_int() const;     // any integer type (uint64 > INT64_MAX: nullopt)
  std::optional<double> as_float() const;    // float or integer types
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;
  const std::vector<GgufValue>* as_array() const;
};

struct GgufKV {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // GGUF order: shape[0] is the fastest-varying (row length)
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;         // relative to the start of the data section
  uint64_t nbytes = 0;         // checked: type_nbytes(type, product(shape))
  int64_t n_elements() const;
};

class GgufFile {
 public:
  // Maps and parses `path`. Every failure is an Error naming the path.
  static Expected<GgufFile> open(const std::filesystem::path& path);
  // Parses a GGUF image already in memory (used by the fuzzers); `data` must outlive the GgufFile.
  static Expected<GgufFile> parse(const uint8_t* data, size_t size, std::string name = "<memory>");

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  const std::filesystem::path& path() const;
  uint32_t version() const;
  uint64_t alignment() const;
  uint64_t file_size() const;
  uint64_t data_offset() const;  // absolute offset of the tensor data section

  const std::vector<GgufKV>& metadata() const;
  const GgufValue* find(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::vector<std::string>> get_string_array(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;
  std::optional<std::vector<float>> get_float_array(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const;
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // Pointer to a tensor's bytes inside the mapping (bounds were checked at open()).
  const uint8_t* tensor_data(const GgufTensorInfo& info) const;
  // Says the process will not read [p, p + n) again soon (a copy in another layout serves instead): the
  // whole pages inside it leave this process's resident memory (MADV_DONTNEED; they stay in the page
  // cache, and a later read maps them back). No-op for a parsed memory image or a range outside the file.
  void release_pages(const void* p, size_t n) const;
  // Dequantizes a whole tensor to F32.
  Expected<std::vector<float>> read_f32(const GgufTensorInfo& info) const;

 private:
  struct Impl;
  explicit GgufFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

// Builds a GGUF v3 file. Keys keep insertion order; setting a key twice replaces its value.
class GgufWriter {
 public:
  explicit GgufWriter(uint64_t alignment = 32);

  void set(std::string key, GgufValue value);
  void set_string(std::string key, std::string value);
  void set_u32(std::string key, uint32_t value);
  void set_i32(std::string key, int32_t value);
  void set_u64(std::string key, uint64_t value);
  void set_f32(std::string key, float value);
  void set_bool(std::string key, bool value);
  void set_string_array(std::string key, const std::vector<std::string>& values);
  void set_f32_array(std::string key, const std::vector<float>& values);
  void set_i32_array(std::string key, const std::vector<int32_t>& values);

  // Adds a tensor from F32 values, converted to `type` (quantized where `type` is a block type).
  // `shape` in GGUF order (shape[0] fastest).
  Expected<void> add_tensor_f32(std::string name, std::vector<int64_t> shape, const float* values,
                                GgmlType type);
  // Adds a tensor whose bytes are already in `type`'s layout.
  Expected<void> add_tensor_raw(std::string name, std::vector<int64_t> shape, GgmlType type,
                                const void* data, size_t nbytes);

  // Writes the file (to a temporary name, then renamed, so a failure leaves no half file).
  Expected<void> write(const std::filesystem::path& path) const;
  // The whole file as bytes (tests and fuzz seeds); empty when serialize() would fail.
  std::vector<uint8_t> to_bytes() const;
  // The whole file as bytes, or why it cannot be written (a value whose payload does not match its
  // type, an array with mixed element types, an alignment that is not a power of two).
  Expected<std::vector<uint8_t>> serialize() const;

 private:
  // Header, metadata and tensor infos, padded to the alignment (everything before the tensor data).
  Expected<std::vector<uint8_t>> serialize_header() const;

  struct Tensor {
    GgufTensorInfo info;
    std::vector<uint8_t> data;
  };
  uint64_t m_alignment;
  std::vector<GgufKV> m_kv;
  std::vector<Tensor> m_tensors;
};

}  // namespace hearth
