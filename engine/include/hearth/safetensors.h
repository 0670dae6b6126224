/* safetensors reader and writer (Hugging Face's tensor file format), single files and sharded sets.
 *
 * Layout of a file: an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}),
 * then the data section, to which data_offsets are relative.
 *
 * Non-obvious choice: every header claim is checked before a pointer is formed: the header length
 * (at most 100 MB and within the file), each [begin, end) inside the data section, end - begin equal to
 * product(shape) * element size (with overflow checks), and no two tensors overlapping (the entries are
 * sorted by begin and compared neighbour to neighbour). Only F32, F16 and BF16 are accepted; any other
 * dtype is an `unsupported` error naming the tensor.
 *
 * Shapes here are in the file's own (PyTorch, row-major) order: shape[0] is the slowest-varying
 * dimension, so a Linear weight is [out, in]. (model.h converts to GGUF order.)
 *
 * Ownership: a SafetensorsFile owns its mapping; tensor data pointers live as long as the file object
 * (moving it keeps them valid). Objects are immutable after open(), so they may be read from many
 * threads at once.
 */
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/error.h"
#include "hearth/tensor-types.h"

namespace hearth {

// The most header bytes a safetensors file may claim (the reference implementation's limit).
inline constexpr uint64_t SAFETENSORS_MAX_HEADER = 100'000'000;

struct SafetensorsTensor {
  std::string name;
  GgmlType type = GgmlType::F32;  // F32, F16 or BF16
  std::vector<int64_t> shape;     // file order: shape[0] slowest (Linear weights are [out, in])
  uint64_t begin = 0;             // byte range [begin, end) relative to the data section
  uint64_t end = 0;
  const uint8_t* data = nullptr;  // inside the owning file's mapping
  uint64_t nbytes() const { return end - begin; }
  int64_t n_elements() const;
};

// "F32", "F16", "BF16" as safetensors spells them; nullptr for other types.
const char* safetensors_dtype_name(GgmlType type);

class SafetensorsFile {
 public:
  // Maps and parses `path`. Errors: io (cannot open/map), format (any lying or malformed header),
  // unsupported (a dtype other than F32/F16/BF16).
  static Expected<SafetensorsFile> open(const std::filesystem::path& path);
  // Parses an image already in memory (fuzzers, tests); `data` must outlive the object.
  static Expected<SafetensorsFile> parse(const uint8_t* data, size_t size, std::string name = "<memory>");

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  const std::filesystem::path& path() const;
  uint64_t file_size() const;
  uint64_t data_offset() const;  // absolute offset of the data section (8 + header length)
  const std::map<std::string, std::string>& metadata() const;  // "__metadata__"
  // Tensors sorted by name.
  const std::vector<SafetensorsTensor>& tensors() const;
  const SafetensorsTensor* find(std::string_view name) const;

 private:
  struct Impl;
  explicit SafetensorsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

// The weights of a Hugging Face folder: `model.safetensors`, or the shards listed by
// `model.safetensors.index.json` (its weight_map names a shard per tensor; every shard is opened and
// checked, every mapped tensor must be present in its shard, and no tensor may appear twice).
class SafetensorsSet {
 public:
  // Errors: not_found (neither file present), format (bad index, missing tensor), plus those of open().
  static Expected<SafetensorsSet> open_folder(const std::filesystem::path& folder);

  const std::vector<SafetensorsFile>& files() const { return m_files; }
  const SafetensorsTensor* find(std::string_view name) const;
  // Every tensor of every file, sorted by name.
  const std::vector<const SafetensorsTensor*>& tensors() const { return m_all; }
  uint64_t total_file_size() const;

 private:
  std::vector<SafetensorsFile> m_files;
  std::vector<const SafetensorsTensor*> m_all;
};

// Builds safetensors files. Tensors keep their bytes in memory until written; the header is padded
// with spaces to a multiple of 8 bytes so the data section is 8-byte aligned.
class SafetensorsWriter {
 public:
  void set_metadata(std::string key, std::string value);
  // `shape` in file order; `nbytes` must equal product(shape) * element size of `type`.
  Expected<void> add_tensor(std::string name, GgmlType type, std::vector<int64_t> shape, const void* data,
                            size_t nbytes);
  // Converts F32 values to `type` (F32, F16 or BF16) and adds them.
  Expected<void> add_tensor_f32(std::string name, GgmlType type, std::vector<int64_t> shape,
                                const float* values);

  std::vector<uint8_t> to_bytes() const;
  // Writes one file (to a temporary name, then renamed).
  Expected<void> write(const std::filesystem::path& path) const;
  // Writes `folder/model.safetensors`, or, when the tensors take more than `max_shard_bytes` (> 0),
  // `model-0000i-of-0000n.safetensors` shards and `model.safetensors.index.json`.
  Expected<void> write_folder(const std::filesystem::path& folder, uint64_t max_shard_bytes = 0) const;

  size_t size() const { return m_tensors.size(); }

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<uint8_t> bytes_of(const std::vector<const Tensor*>& list) const;
  std::map<std::string, std::string> m_metadata;
  std::vector<Tensor> m_tensors;
};

}  // namespace hearth
