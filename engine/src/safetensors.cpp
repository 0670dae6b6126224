/* safetensors reader and writer (see hearth/safetensors.h for the format and the checks).
 *
 * Non-obvious choice: the header is parsed with nlohmann::json from the mapped bytes, but no number
 * from it is trusted as a size until converted with explicit range checks: JSON integers arrive as
 * int64/uint64/double and a hostile header may use any of them (or negative values) for shapes and
 * offsets.
 */
#include "hearth/safetensors.h"

#include "file-write.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

namespace hearth {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct FormatError {
  std::string message;
};

int64_t element_size(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return 4;
    case GgmlType::F16: return 2;
    case GgmlType::BF16: return 2;
    default: return 0;
  }
}

bool dtype_from_name(const std::string& s, GgmlType& out) {
  if (s == "F32") out = GgmlType::F32;
  else if (s == "F16") out = GgmlType::F16;
  else if (s == "BF16") out = GgmlType::BF16;
  else return false;
  return true;
}

// A JSON number as a non-negative integer, or nullopt (negative, fractional, or not a number).
std::optional<uint64_t> json_uint(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    if (i < 0) return std::nullopt;
    return uint64_t(i);
  }
  return std::nullopt;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

int64_t SafetensorsTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // checked not to overflow at parse time
  return n;
}

const char* safetensors_dtype_name(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::BF16: return "BF16";
    default: return nullptr;
  }
}

struct SafetensorsFile::Impl {
  fs::path path;
  void* map = nullptr;
  size_t map_size = 0;
  const uint8_t* base = nullptr;
  uint64_t size = 0;
  uint64_t data_offset = 0;
  std::map<std::string, std::string> metadata;
  std::vector<SafetensorsTensor> tensors;

  ~Impl() {
    if (map) ::munmap(map, map_size);
  }

  // Parses base[0, size). Throws FormatError for malformed input; returns an unsupported Error
  // message through `unsupported` for a dtype we do not handle.
  void parse(std::string& unsupported);
};

void SafetensorsFile::Impl::parse(std::string& unsupported) {
  const std::string where = path.string();
  if (size < 8)
    throw FormatError{where + ": file is " + std::to_string(size) +
                      " bytes, too short for the 8-byte safetensors header length"};
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(base[i]) << (8 * i);
  if (n > SAFETENSORS_MAX_HEADER)
    throw FormatError{where + ": header length " + std::to_string(n) + " exceeds the " +
                      std::to_string(SAFETENSORS_MAX_HEADER) + "-byte limit"};
  if (n > size - 8)
    throw FormatError{where + ": header length " + std::to_string(n) + " runs past the end of the file (" +
                      std::to_string(size) + " bytes)"};
  if (n == 0) throw FormatError{where + ": header length is 0, expected a JSON object"};
  data_offset = 8 + n;
  const uint64_t data_size = size - data_offset;

  json header;
  try {
    header = json::parse(base + 8, base + 8 + n);
  } catch (const json::exception& e) {
    throw FormatError{where + ": header is not valid JSON: " + e.what()};
  }
  if (!header.is_object()) throw FormatError{where + ": header JSON is not an object"};

  struct Span {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw FormatError{where + ": __metadata__ is not an object"};
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw FormatError{where + ": __metadata__ value '" + m.key() + "' is not a string"};
        metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string at = where + ": tensor '" + name + "'";
    if (!v.is_object()) throw FormatError{at + " is not an object"};
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto of = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) throw FormatError{at + ": missing or non-string \"dtype\""};
    if (sh == v.end() || !sh->is_array()) throw FormatError{at + ": missing or non-array \"shape\""};
    if (of == v.end() || !of->is_array() || of->size() != 2)
      throw FormatError{at + ": \"data_offsets\" must be an array [begin, end]"};
    SafetensorsTensor t;
    t.name = name;
    const std::string dtype = dt->get<std::string>();
    if (!dtype_from_name(dtype, t.type)) {
      if (unsupported.empty())
        unsupported = at + " has dtype '" + dtype + "'; only F32, F16 and BF16 are supported";
      continue;
    }
    if (sh->size() > 8) throw FormatError{at + ": shape has " + std::to_string(sh->size()) + " dimensions"};
    uint64_t count = 1;
    for (const json& d : *sh) {
      auto u = json_uint(d);
      if (!u || *u > uint64_t(std::numeric_limits<int64_t>::max()))
        throw FormatError{at + ": shape entry " + d.dump() + " is not a non-negative integer"};
      if (*u != 0 && count > std::numeric_limits<uint64_t>::max() / *u)
        throw FormatError{at + ": shape " + sh->dump() + " overflows"};
      count *= *u;
      t.shape.push_back(int64_t(*u));
    }
    const uint64_t esize = uint64_t(element_size(t.type));
    if (count > std::numeric_limits<uint64_t>::max() / esize ||
        count * esize > uint64_t(std::numeric_limits<int64_t>::max()))
      throw FormatError{at + ": shape " + sh->dump() + " overflows"};
    auto b = json_uint((*of)[0]);
    auto e = json_uint((*of)[1]);
    if (!b || !e) throw FormatError{at + ": data_offsets " + of->dump() + " are not non-negative integers"};
    if (*b > *e) throw FormatError{at + ": data_offsets " + of->dump() + " begin after they end"};
    if (*e > data_size)
      throw FormatError{at + ": data_offsets " + of->dump() + " run past the data section (" +
                        std::to_string(data_size) + " bytes)"};
    if (*e - *b != count * esize)
      throw FormatError{at + ": data_offsets " + of->dump() + " hold " + std::to_string(*e - *b) +
                        " bytes but shape " + sh->dump() + " of " + dtype + " needs " +
                        std::to_string(count * esize)};
    t.begin = *b;
    t.end = *e;
    t.data = base + data_offset + *b;
    spans.push_back({*b, *e, tensors.size()});
    tensors.push_back(std::move(t));
  }

  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  // Compare each span with the non-empty span reaching furthest so far; empty tensors occupy no bytes.
  const Span* reach = nullptr;
  for (const Span& c : spans) {
    if (c.end == c.begin) continue;
    if (reach && c.begin < reach->end)
      throw FormatError{where + ": tensors '" + tensors[reach->index].name + "' [" + std::to_string(reach->begin) +
                        ", " + std::to_string(reach->end) + ") and '" + tensors[c.index].name + "' [" +
                        std::to_string(c.begin) + ", " + std::to_string(c.end) + ") overlap"};
    if (!reach || c.end > reach->end) reach = &c;
  }
  std::sort(tensors.begin(), tensors.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) { return a.name < b.name; });
}

SafetensorsFile::SafetensorsFile(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

Expected<SafetensorsFile> SafetensorsFile::parse(const uint8_t* data, size_t size, std::string name) {
  auto impl = std::make_unique<Impl>();
  impl->path = name;
  impl->base = data;
  impl->size = size;
  std::string unsupported;
  try {
    impl->parse(unsupported);
  } catch (const FormatError& e) {
    return make_error(ErrorCode::format, e.message);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::format, name + ": " + e.what());
  }
  if (!unsupported.empty())
    return make_error(ErrorCode::unsupported, unsupported, "convert the model to F32, F16 or BF16");
  return SafetensorsFile(std::move(impl));
}

Expected<SafetensorsFile> SafetensorsFile::open(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::io, path.string() + ": cannot open: " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string m = errno_text();
    ::close(fd);
    return make_error(ErrorCode::io, path.string() + ": cannot stat: " + m);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::io, path.string() + ": not a regular file");
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->size = uint64_t(st.st_size);
  if (st.st_size > 0) {
    void* m = ::mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      std::string msg = errno_text();
      ::close(fd);
      return make_error(ErrorCode::io, path.string() + ": cannot map: " + msg);
    }
    impl->map = m;
    impl->map_size = size_t(st.st_size);
    impl->base = static_cast<const uint8_t*>(m);
  }
  ::close(fd);
  std::string unsupported;
  try {
    impl->parse(unsupported);
  } catch (const FormatError& e) {
    return make_error(ErrorCode::format, e.message);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::format, path.string() + ": " + e.what());
  }
  if (!unsupported.empty())
    return make_error(ErrorCode::unsupported, unsupported, "convert the model to F32, F16 or BF16");
  return SafetensorsFile(std::move(impl));
}

const fs::path& SafetensorsFile::path() const { return m_impl->path; }
uint64_t SafetensorsFile::file_size() const { return m_impl->size; }
uint64_t SafetensorsFile::data_offset() const { return m_impl->data_offset; }
const std::map<std::string, std::string>& SafetensorsFile::metadata() const { return m_impl->metadata; }
const std::vector<SafetensorsTensor>& SafetensorsFile::tensors() const { return m_impl->tensors; }

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  auto& v = m_impl->tensors;
  auto it = std::lower_bound(v.begin(), v.end(), name,
                             [](const SafetensorsTensor& t, std::string_view n) { return t.name < n; });
  if (it == v.end() || it->name != name) return nullptr;
  return &*it;
}

// ---- sharded sets ------------------------------------------------------------------------------

Expected<SafetensorsSet> SafetensorsSet::open_folder(const fs::path& folder) {
  SafetensorsSet set;
  const fs::path index_path = folder / "model.safetensors.index.json";
  const fs::path single = folder / "model.safetensors";
  std::error_code ec;
  if (fs::exists(index_path, ec)) {
    std::ifstream in(index_path, std::ios::binary);
    if (!in) return make_error(ErrorCode::io, index_path.string() + ": cannot open");
    json index;
    try {
      index = json::parse(in);
    } catch (const json::exception& e) {
      return make_error(ErrorCode::format, index_path.string() + ": not valid JSON: " + e.what());
    }
    auto wm = index.is_object() ? index.find("weight_map") : index.end();
    if (!index.is_object() || wm == index.end() || !wm->is_object())
      return make_error(ErrorCode::format, index_path.string() + ": missing \"weight_map\" object");
    std::map<std::string, std::vector<std::string>> by_shard;  // shard file -> tensor names
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string())
        return make_error(ErrorCode::format,
                          index_path.string() + ": weight_map entry '" + it.key() + "' is not a file name");
      std::string shard = it.value().get<std::string>();
      fs::path sp(shard);
      if (shard.empty() || sp.is_absolute() || sp.has_parent_path() || shard == "." || shard == "..")
        return make_error(ErrorCode::format, index_path.string() + ": weight_map entry '" + it.key() +
                                                 "' names '" + shard + "', expected a file in the same folder");
      by_shard[shard].push_back(it.key());
    }
    if (by_shard.empty()) return make_error(ErrorCode::format, index_path.string() + ": weight_map is empty");
    for (auto& [shard, names] : by_shard) {
      fs::path p = folder / shard;
      if (!fs::exists(p, ec))
        return make_error(ErrorCode::not_found,
                          index_path.string() + ": shard '" + shard + "' (holding '" + names.front() +
                              "') is missing",
                          "download every shard listed in the index");
      auto f = SafetensorsFile::open(p);
      if (!f) return Unexpected{f.error()};
      for (auto& n : names)
        if (!f->find(n))
          return make_error(ErrorCode::format, index_path.string() + ": tensor '" + n + "' is mapped to '" +
                                                   shard + "' but that file does not contain it");
      set.m_files.push_back(std::move(*f));
    }
  } else if (fs::exists(single, ec)) {
    auto f = SafetensorsFile::open(single);
    if (!f) return Unexpected{f.error()};
    set.m_files.push_back(std::move(*f));
  } else {
    bool has_bin = fs::exists(folder / "pytorch_model.bin", ec) ||
                   fs::exists(folder / "pytorch_model.bin.index.json", ec);
    return make_error(ErrorCode::not_found,
                      folder.string() + ": no model.safetensors or model.safetensors.index.json",
                      has_bin ? "PyTorch .bin weights are not read (they are pickles); convert them to safetensors"
                              : "a Hugging Face model folder holds its weights in safetensors files");
  }
  for (auto& f : set.m_files)
    for (auto& t : f.tensors()) set.m_all.push_back(&t);
  std::sort(set.m_all.begin(), set.m_all.end(),
            [](const SafetensorsTensor* a, const SafetensorsTensor* b) { return a->name < b->name; });
  for (size_t i = 1; i < set.m_all.size(); ++i)
    if (set.m_all[i]->name == set.m_all[i - 1]->name)
      return make_error(ErrorCode::format, folder.string() + ": tensor '" + set.m_all[i]->name +
                                               "' appears in more than one shard");
  return set;
}

const SafetensorsTensor* SafetensorsSet::find(std::string_view name) const {
  auto it = std::lower_bound(m_all.begin(), m_all.end(), name,
                             [](const SafetensorsTensor* t, std::string_view n) { return t->name < n; });
  if (it == m_all.end() || (*it)->name != name) return nullptr;
  return *it;
}

uint64_t SafetensorsSet::total_file_size() const {
  uint64_t s = 0;
  for (auto& f : m_files) s += f.file_size();
  return s;
}

// ---- writer ------------------------------------------------------------------------------------

void SafetensorsWriter::set_metadata(std::string key, std::string value) {
  m_metadata[std::move(key)] = std::move(value);
}

Expected<void> SafetensorsWriter::add_tensor(std::string name, GgmlType type, std::vector<int64_t> shape,
                                             const void* data, size_t nbytes) {
  const int64_t es = element_size(type);
  if (es == 0)
    return make_error(ErrorCode::unsupported,
                      "safetensors tensor '" + name + "': type " + type_name(type) + " is not F32, F16 or BF16");
  if (name.empty() || name == "__metadata__")
    return make_error(ErrorCode::invalid_argument, "safetensors tensor name '" + name + "' is not allowed");
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return make_error(ErrorCode::invalid_argument, "safetensors tensor '" + name + "': negative dimension");
    n *= uint64_t(d);
  }
  if (n * uint64_t(es) != nbytes)
    return make_error(ErrorCode::invalid_argument, "safetensors tensor '" + name + "': " + std::to_string(nbytes) +
                                                       " bytes given, shape needs " + std::to_string(n * es));
  for (auto& t : m_tensors)
    if (t.name == name)
      return make_error(ErrorCode::invalid_argument, "safetensors tensor '" + name + "' added twice");
  Tensor t{std::move(name), type, std::move(shape), {}};
  t.bytes.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + nbytes);
  m_tensors.push_back(std::move(t));
  return {};
}

Expected<void> SafetensorsWriter::add_tensor_f32(std::string name, GgmlType type, std::vector<int64_t> shape,
                                                 const float* values) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const int64_t es = element_size(type);
  if (es == 0)
    return make_error(ErrorCode::unsupported,
                      "safetensors tensor '" + name + "': type " + type_name(type) + " is not F32, F16 or BF16");
  std::vector<uint8_t> buf(size_t(n * es));
  if (type == GgmlType::F32) {
    if (n) std::memcpy(buf.data(), values, buf.size());
  } else {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h = type == GgmlType::F16 ? fp32_to_fp16(values[i]) : fp32_to_bf16(values[i]);
      buf[2 * i] = uint8_t(h);
      buf[2 * i + 1] = uint8_t(h >> 8);
    }
  }
  return add_tensor(std::move(name), type, std::move(shape), buf.data(), buf.size());
}

std::vector<uint8_t> SafetensorsWriter::bytes_of(const std::vector<const Tensor*>& list) const {
  json header = json::object();
  if (!m_metadata.empty()) header["__metadata__"] = m_metadata;
  uint64_t off = 0;
  for (const Tensor* t : list) {
    header[t->name] = {{"dtype", safetensors_dtype_name(t->type)},
                       {"shape", t->shape},
                       {"data_offsets", {off, off + t->bytes.size()}}};
    off += t->bytes.size();
  }
  std::string h = header.dump();
  while (h.size() % 8) h.push_back(' ');
  std::vector<uint8_t> out;
  out.reserve(8 + h.size() + off);
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(uint64_t(h.size()) >> (8 * i)));
  out.insert(out.end(), h.begin(), h.end());
  for (const Tensor* t : list) out.insert(out.end(), t->bytes.begin(), t->bytes.end());
  return out;
}

std::vector<uint8_t> SafetensorsWriter::to_bytes() const {
  std::vector<const Tensor*> all;
  for (auto& t : m_tensors) all.push_back(&t);
  return bytes_of(all);
}

Expected<void> SafetensorsWriter::write(const fs::path& path) const {
  const std::vector<uint8_t> bytes = to_bytes();
  return detail::write_file_atomic(path, bytes.data(), bytes.size());
}

Expected<void> SafetensorsWriter::write_folder(const fs::path& folder, uint64_t max_shard_bytes) const {
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) return make_error(ErrorCode::io, folder.string() + ": cannot create folder: " + ec.message());
  uint64_t total = 0;
  for (auto& t : m_tensors) total += t.bytes.size();
  if (max_shard_bytes == 0 || total <= max_shard_bytes) return write(folder / "model.safetensors");

  // Greedy packing in insertion order; a tensor larger than the limit gets a shard of its own.
  std::vector<std::vector<const Tensor*>> shards(1);
  uint64_t cur = 0;
  for (auto& t : m_tensors) {
    if (!shards.back().empty() && cur + t.bytes.size() > max_shard_bytes) {
      shards.emplace_back();
      cur = 0;
    }
    shards.back().push_back(&t);
    cur += t.bytes.size();
  }
  json weight_map = json::object();
  char name[64];
  for (size_t i = 0; i < shards.size(); ++i) {
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    const std::vector<uint8_t> bytes = bytes_of(shards[i]);
    HEARTH_TRY_VOID(detail::write_file_atomic(folder / name, bytes.data(), bytes.size()));
    for (const Tensor* t : shards[i]) weight_map[t->name] = name;
  }
  json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  std::string text = index.dump(2) + "\n";
  return detail::write_file_atomic(folder / "model.safetensors.index.json", text.data(), text.size());
}

}  // namespace hearth
