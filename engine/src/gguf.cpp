/* GGUF v2/v3 reader: maps the file read-only and parses header, metadata and tensor infos with every
 * length, count, offset and size checked against the bytes that remain before it is used.
 *
 * Non-obvious choice: an array's element count is checked against (remaining bytes / smallest possible
 * encoded element) *before* any allocation, so a 60-byte file that claims 10^8 strings is refused at once
 * instead of reserving gigabytes; nesting depth is capped so a file of nested arrays cannot exhaust the
 * stack. Parsing uses an internal exception that open()/parse() turn into an Error.
 */
#include "hearth/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <limits>
#include <new>
#include <unordered_map>

namespace hearth {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

const char* gguf_value_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: return "UINT8";
    case GgufValueType::INT8: return "INT8";
    case GgufValueType::UINT16: return "UINT16";
    case GgufValueType::INT16: return "INT16";
    case GgufValueType::UINT32: return "UINT32";
    case GgufValueType::INT32: return "INT32";
    case GgufValueType::FLOAT32: return "FLOAT32";
    case GgufValueType::BOOL: return "BOOL";
    case GgufValueType::STRING: return "STRING";
    case GgufValueType::ARRAY: return "ARRAY";
    case GgufValueType::UINT64: return "UINT64";
    case GgufValueType::INT64: return "INT64";
    case GgufValueType::FLOAT64: return "FLOAT64";
  }
  return "unknown";
}

// ---- GgufValue ------------------------------------------------------------------------------------

std::optional<int64_t> GgufValue::as_int() const {
  if (type == GgufValueType::BOOL || type == GgufValueType::FLOAT32 || type == GgufValueType::FLOAT64)
    return std::nullopt;
  if (auto* u = std::get_if<uint64_t>(&data)) {
    if (*u > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return int64_t(*u);
  }
  if (auto* i = std::get_if<int64_t>(&data)) return *i;
  return std::nullopt;
}

std::optional<double> GgufValue::as_float() const {
  if (type == GgufValueType::BOOL) return std::nullopt;
  if (auto* d = std::get_if<double>(&data)) return *d;
  if (auto* u = std::get_if<uint64_t>(&data)) return double(*u);
  if (auto* i = std::get_if<int64_t>(&data)) return double(*i);
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (auto* b = std::get_if<bool>(&data)) return *b;
  return std::nullopt;
}

const std::string* GgufValue::as_string() const { return std::get_if<std::string>(&data); }

const std::vector<GgufValue>* GgufValue::as_array() const {
  return std::get_if<std::vector<GgufValue>>(&data);
}

int64_t GgufTensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n)) return -1;
  return n;
}

// ---- parser -----------------------------------------------------------------------------------------

namespace {

constexpr uint32_t MAX_DIMS = 4;
constexpr int MAX_ARRAY_DEPTH = 8;
constexpr uint64_t DEFAULT_ALIGNMENT = 32;

struct ParseFailure {
  ErrorCode code;
  std::string message;
  std::string hint;
};

bool is_value_type(uint32_t t) { return t <= uint32_t(GgufValueType::FLOAT64); }

// Fixed encoded size of a scalar type; 0 for STRING and ARRAY.
uint64_t scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64: return 8;
    default: return 0;
  }
}

// The fewest bytes one element of type `t` can take: what a count is checked against before allocating.
uint64_t min_encoded_size(GgufValueType t) {
  if (t == GgufValueType::STRING) return 8;        // the length, for an empty string
  if (t == GgufValueType::ARRAY) return 4 + 8;     // element type and count, for an empty array
  return scalar_size(t);
}

std::string printable(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] >= 0x20 && p[i] < 0x7f) {
      s += char(p[i]);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", p[i]);
      s += buf;
    }
  }
  return s;
}

class Parser {
 public:
  Parser(const uint8_t* d, uint64_t size, const std::string& name) : m_d(d), m_size(size), m_name(name) {}

  [[noreturn]] void fail(uint64_t offset, const std::string& what, ErrorCode code = ErrorCode::format,
                         std::string hint = {}) const {
    throw ParseFailure{code, m_name + ": offset " + std::to_string(offset) + ": " + what, std::move(hint)};
  }

  uint64_t pos() const { return m_pos; }
  uint64_t remaining() const { return m_size - m_pos; }

  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      fail(m_pos, std::string("expected ") + what + " (" + std::to_string(n) + " bytes) but the file ends after " +
                      std::to_string(remaining()) + " more bytes (file size " + std::to_string(m_size) + ")" +
                      context());
  }

  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, m_d + m_pos, sizeof(T));
    m_pos += sizeof(T);
    return v;
  }

  // A GGUF string: u64 length + bytes (no terminator). Returns a view into the mapping.
  std::string_view read_string(const char* what) {
    const uint64_t at = m_pos;
    const uint64_t n = read<uint64_t>(what);
    if (n > remaining())
      fail(at, std::string(what) + " has length " + std::to_string(n) + " but only " +
                   std::to_string(remaining()) + " bytes of the file remain (file size " + std::to_string(m_size) +
                   ")" + context());
    std::string_view s(reinterpret_cast<const char*>(m_d + m_pos), size_t(n));
    m_pos += n;
    return s;
  }

  GgufValue read_value(GgufValueType t, int depth) {
    GgufValue v;
    v.type = t;
    read_value_into(v, t, depth);
    return v;
  }

  // Describes where we are ("in metadata 'x'"), set per key/tensor so hot loops need not build strings.
  void set_context(std::string c) { m_context = std::move(c); }
  std::string context() const { return m_context.empty() ? std::string() : " (" + m_context + ")"; }

 private:
  void read_value_into(GgufValue& v, GgufValueType t, int depth) {
    switch (t) {
      case GgufValueType::UINT8: v.data = uint64_t(read<uint8_t>("a UINT8 value")); break;
      case GgufValueType::INT8: v.data = int64_t(read<int8_t>("an INT8 value")); break;
      case GgufValueType::UINT16: v.data = uint64_t(read<uint16_t>("a UINT16 value")); break;
      case GgufValueType::INT16: v.data = int64_t(read<int16_t>("an INT16 value")); break;
      case GgufValueType::UINT32: v.data = uint64_t(read<uint32_t>("a UINT32 value")); break;
      case GgufValueType::INT32: v.data = int64_t(read<int32_t>("an INT32 value")); break;
      case GgufValueType::UINT64: v.data = read<uint64_t>("a UINT64 value"); break;
      case GgufValueType::INT64: v.data = read<int64_t>("an INT64 value"); break;
      case GgufValueType::FLOAT32: v.data = double(read<float>("a FLOAT32 value")); break;
      case GgufValueType::FLOAT64: v.data = read<double>("a FLOAT64 value"); break;
      case GgufValueType::BOOL: v.data = read<uint8_t>("a BOOL value") != 0; break;
      case GgufValueType::STRING: v.data = std::string(read_string("a string value")); break;
      case GgufValueType::ARRAY: read_array(v, depth); break;
    }
  }

  void read_array(GgufValue& v, int depth) {
    const uint64_t at = m_pos;
    if (depth >= MAX_ARRAY_DEPTH)
      fail(at, "arrays nested more than " + std::to_string(MAX_ARRAY_DEPTH) + " deep" + context());
    const uint32_t et = read<uint32_t>("an array element type");
    if (!is_value_type(et))
      fail(at, "unknown array element type " + std::to_string(et) + ", expected 0..12" + context());
    const GgufValueType etype = GgufValueType(et);
    v.array_type = etype;
    const uint64_t count_at = m_pos;
    const uint64_t count = read<uint64_t>("an array length");
    const uint64_t min_size = min_encoded_size(etype);
    if (count > remaining() / min_size)
      fail(count_at, "array of " + std::to_string(count) + " " + gguf_value_type_name(etype) +
                         " elements needs at least " +
                         (count > std::numeric_limits<uint64_t>::max() / min_size
                              ? std::string("more than 2^64")
                              : std::to_string(count * min_size)) +
                         " bytes but only " + std::to_string(remaining()) + " bytes of the file remain" + context());
    std::vector<GgufValue> elems;
    elems.reserve(static_cast<size_t>(count));
    const uint64_t ssz = scalar_size(etype);
    if (ssz != 0) {
      // Scalars: sizes were checked in bulk above, so decode without per-element checks.
      const uint8_t* p = m_d + m_pos;
      for (uint64_t i = 0; i < count; ++i, p += ssz) decode_scalar(elems.emplace_back(), etype, p);
      m_pos += count * ssz;
    } else if (etype == GgufValueType::STRING) {
      for (uint64_t i = 0; i < count; ++i) {
        const uint64_t len_at = m_pos;
        const uint64_t n = read<uint64_t>("a string length in an array");
        if (n > remaining())
          fail(len_at, "string " + std::to_string(i) + " of the array has length " + std::to_string(n) +
                           " but only " + std::to_string(remaining()) + " bytes of the file remain" + context());
        // Moved in whole (no default value to reset): vocabularies hold 10^5 of these. Braces, not
        // emplace_back's parentheses: clang 14 (the fuzz build) lacks C++20 aggregate paren-init.
        elems.push_back(GgufValue{etype, GgufValueType::UINT8,
                                  std::string(reinterpret_cast<const char*>(m_d + m_pos), size_t(n))});
        m_pos += n;
      }
    } else {
      for (uint64_t i = 0; i < count; ++i) {
        GgufValue& e = elems.emplace_back();
        e.type = etype;
        read_array(e, depth + 1);
      }
    }
    v.data = std::move(elems);
  }

  static void decode_scalar(GgufValue& e, GgufValueType t, const uint8_t* p) {
    e.type = t;
    switch (t) {
      case GgufValueType::UINT8: e.data = uint64_t(*p); break;
      case GgufValueType::INT8: e.data = int64_t(int8_t(*p)); break;
      case GgufValueType::BOOL: e.data = *p != 0; break;
      case GgufValueType::UINT16: { uint16_t x; std::memcpy(&x, p, 2); e.data = uint64_t(x); break; }
      case GgufValueType::INT16: { int16_t x; std::memcpy(&x, p, 2); e.data = int64_t(x); break; }
      case GgufValueType::UINT32: { uint32_t x; std::memcpy(&x, p, 4); e.data = uint64_t(x); break; }
      case GgufValueType::INT32: { int32_t x; std::memcpy(&x, p, 4); e.data = int64_t(x); break; }
      case GgufValueType::FLOAT32: { float x; std::memcpy(&x, p, 4); e.data = double(x); break; }
      case GgufValueType::UINT64: { uint64_t x; std::memcpy(&x, p, 8); e.data = x; break; }
      case GgufValueType::INT64: { int64_t x; std::memcpy(&x, p, 8); e.data = x; break; }
      case GgufValueType::FLOAT64: { double x; std::memcpy(&x, p, 8); e.data = x; break; }
      default: break;
    }
  }

  const uint8_t* m_d;
  uint64_t m_size;
  uint64_t m_pos = 0;
  const std::string& m_name;
  std::string m_context;
};

std::string quote_name(std::string_view s) {
  std::string out(1, '\'');
  out += printable(reinterpret_cast<const uint8_t*>(s.data()), std::min<size_t>(s.size(), 200));
  out += s.size() > 200 ? "...'" : "'";
  return out;
}

}  // namespace

// ---- GgufFile ---------------------------------------------------------------------------------------

struct GgufFile::Impl {
  std::filesystem::path path;
  std::string name;
  void* map = nullptr;  // owned mapping (nullptr for parse() of caller memory)
  size_t map_size = 0;
  const uint8_t* data = nullptr;
  uint64_t size = 0;

  uint32_t version = 0;
  uint64_t alignment = DEFAULT_ALIGNMENT;
  uint64_t data_offset = 0;
  std::vector<GgufKV> kv;
  std::unordered_map<std::string_view, size_t> kv_index;  // views into kv[i].key
  std::vector<GgufTensorInfo> tensors;
  std::unordered_map<std::string_view, size_t> tensor_index;

  ~Impl() {
    if (map) ::munmap(map, map_size);
  }

  void parse();
};

void GgufFile::Impl::parse() {
  Parser p(data, size, name);
  if (size < 4 || std::memcmp(data, "GGUF", 4) != 0) {
    if (size < 4)
      p.fail(0, "the file has " + std::to_string(size) + " bytes, too few for the GGUF magic 'GGUF'");
    p.fail(0, "not a GGUF file: expected the magic 'GGUF', found '" + printable(data, 4) + "'");
  }
  p.read<uint32_t>("magic");
  const uint32_t ver = p.read<uint32_t>("the format version (u32)");
  if (ver != 2 && ver != 3) {
    std::string what = "GGUF version " + std::to_string(ver) + " is not supported (Hearth reads versions 2 and 3)";
    const uint32_t swapped = __builtin_bswap32(ver);
    if (swapped == 2 || swapped == 3) what = "big-endian GGUF files are not supported (Hearth reads little-endian)";
    p.fail(4, what, ErrorCode::unsupported,
           ver == 1 ? "convert the model again with a current llama.cpp (convert_hf_to_gguf.py)" : "");
  }
  version = ver;
  const uint64_t n_tensors = p.read<uint64_t>("the tensor count (u64)");
  const uint64_t n_kv = p.read<uint64_t>("the metadata count (u64)");
  // Each entry takes some minimum number of bytes: refuse impossible counts before reserving anything.
  if (n_kv > p.remaining() / (8 + 4 + 1))
    p.fail(16, "metadata count " + std::to_string(n_kv) + " cannot fit in the " +
                   std::to_string(p.remaining()) + " bytes that follow the header");
  if (n_tensors > p.remaining() / (8 + 4 + 8 + 4 + 8))
    p.fail(8, "tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
                  std::to_string(p.remaining()) + " bytes that follow the header");

  kv.reserve(size_t(n_kv));
  std::vector<uint64_t> kv_offsets;  // where each entry starts, for messages about its value
  kv_offsets.reserve(size_t(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t at = p.pos();
    kv_offsets.push_back(at);
    p.set_context("metadata entry " + std::to_string(i));
    std::string_view key = p.read_string("a metadata key");
    p.set_context("metadata " + quote_name(key));
    const uint64_t type_at = p.pos();
    const uint32_t t = p.read<uint32_t>("a value type (u32)");
    if (!is_value_type(t))
      p.fail(type_at, "unknown value type " + std::to_string(t) + " for metadata " + quote_name(key) +
                          ", expected 0..12");
    GgufValue value = p.read_value(GgufValueType(t), 0);
    kv.push_back(GgufKV{std::string(key), std::move(value)});
    // kv was reserved, so the element (and the key's characters) stay put: the view stays valid.
    auto [it, fresh] = kv_index.emplace(std::string_view(kv.back().key), kv.size() - 1);
    if (!fresh)
      p.fail(at, "duplicate metadata key " + quote_name(key) + " (already entry " + std::to_string(it->second) + ")");
  }

  if (auto it = kv_index.find("general.alignment"); it != kv_index.end()) {
    const GgufValue& a = kv[it->second].value;
    auto v = a.as_int();
    if (a.type == GgufValueType::ARRAY || !v || *v <= 0 || (uint64_t(*v) & (uint64_t(*v) - 1)) != 0)
      p.fail(kv_offsets[it->second], "general.alignment must be a non-zero power of two, found " +
                    (v ? std::to_string(*v) : std::string("a ") + gguf_value_type_name(a.type) + " value"));
    alignment = uint64_t(*v);
  }

  p.set_context("");
  tensors.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const uint64_t at = p.pos();
    p.set_context("tensor info " + std::to_string(i));
    GgufTensorInfo info;
    info.name = std::string(p.read_string("a tensor name"));
    p.set_context("tensor " + quote_name(info.name));
    const uint64_t dims_at = p.pos();
    const uint32_t n_dims = p.read<uint32_t>("the number of dimensions (u32)");
    if (n_dims == 0 || n_dims > MAX_DIMS)
      p.fail(dims_at, "tensor " + quote_name(info.name) + " has " + std::to_string(n_dims) +
                          " dimensions, expected 1 to " + std::to_string(MAX_DIMS));
    info.shape.resize(n_dims);
    int64_t n_el = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim_at = p.pos();
      const uint64_t dim = p.read<uint64_t>("a dimension (u64)");
      if (dim == 0 || dim > uint64_t(std::numeric_limits<int64_t>::max()))
        p.fail(dim_at, "tensor " + quote_name(info.name) + " dimension " + std::to_string(d) + " is " +
                           (dim == 0 ? std::string("0") : std::to_string(int64_t(dim))) + ", expected a positive size");
      info.shape[d] = int64_t(dim);
      if (__builtin_mul_overflow(n_el, int64_t(dim), &n_el))
        p.fail(dim_at, "tensor " + quote_name(info.name) + " has dimensions whose product overflows a 64-bit count");
    }
    const uint64_t type_at = p.pos();
    const uint32_t type_id = p.read<uint32_t>("a tensor type (u32)");
    if (!is_known_type(type_id))
      p.fail(type_at, "tensor " + quote_name(info.name) + " has unknown type id " + std::to_string(type_id),
             ErrorCode::unsupported);
    info.type = GgmlType(type_id);
    const TypeTraits* tr = type_traits(info.type);
    if (info.shape[0] % tr->block_size != 0)
      p.fail(dims_at, "tensor " + quote_name(info.name) + " has rows of " + std::to_string(info.shape[0]) +
                          " elements, not a multiple of the " + tr->name + " block size " +
                          std::to_string(tr->block_size));
    auto nbytes = type_nbytes(info.type, uint64_t(n_el));
    if (!nbytes) p.fail(dims_at, "tensor " + quote_name(info.name) + ": " + nbytes.error().message);
    info.nbytes = *nbytes;
    const uint64_t off_at = p.pos();
    info.offset = p.read<uint64_t>("a tensor data offset (u64)");
    if (info.offset % alignment != 0)
      p.fail(off_at, "tensor " + quote_name(info.name) + " data offset " + std::to_string(info.offset) +
                         " is not a multiple of the alignment " + std::to_string(alignment));
    tensors.push_back(std::move(info));
    auto [it, fresh] = tensor_index.emplace(std::string_view(tensors.back().name), tensors.size() - 1);
    if (!fresh)
      p.fail(at, "duplicate tensor name " + quote_name(tensors.back().name) + " (already tensor " +
                     std::to_string(it->second) + ")");
  }
  p.set_context("");

  const uint64_t end_of_infos = p.pos();
  if (__builtin_add_overflow(end_of_infos, alignment - 1, &data_offset))
    p.fail(end_of_infos, "alignment " + std::to_string(alignment) + " puts the data section past 2^64");
  data_offset -= data_offset % alignment;

  for (const GgufTensorInfo& t : tensors) {
    uint64_t begin = 0, end = 0;
    const bool overflow =
        __builtin_add_overflow(data_offset, t.offset, &begin) || __builtin_add_overflow(begin, t.nbytes, &end);
    if (overflow || end > size)
      throw ParseFailure{ErrorCode::format,
                         name + ": tensor " + quote_name(t.name) + " data [offset " +
                             (overflow ? std::string("past 2^64")
                                       : std::to_string(begin) + ".." + std::to_string(end)) +
                             "] lies past the end of the file (size " + std::to_string(size) + ")",
                         "the file is truncated or corrupt; download or convert it again"};
  }
}

GgufFile::GgufFile(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

Expected<GgufFile> GgufFile::parse(const uint8_t* data, size_t size, std::string name) {
  auto impl = std::make_unique<Impl>();
  impl->name = std::move(name);
  impl->path = impl->name;
  impl->data = data;
  impl->size = size;
  try {
    impl->parse();
  } catch (const ParseFailure& f) {
    return make_error(f.code, f.message, f.hint);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::format, impl->name + ": out of memory while reading the metadata");
  } catch (const std::length_error&) {
    return make_error(ErrorCode::format, impl->name + ": a count in the file is too large to hold");
  }
  return GgufFile(std::move(impl));
}

Expected<GgufFile> GgufFile::open(const std::filesystem::path& path) {
  const std::string name = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_error(ErrorCode::io, name + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return make_error(ErrorCode::io, name + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::io, name + ": not a regular file");
  }
  const size_t size = size_t(st.st_size);
  void* map = nullptr;
  if (size > 0) {
    map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      return make_error(ErrorCode::io, name + ": cannot map " + std::to_string(size) + " bytes: " + std::strerror(e));
    }
  }
  ::close(fd);  // the mapping keeps the file alive

  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->name = name;
  impl->map = map;
  impl->map_size = size;
  static const uint8_t empty = 0;
  impl->data = map ? static_cast<const uint8_t*>(map) : &empty;
  impl->size = size;
  try {
    impl->parse();
  } catch (const ParseFailure& f) {
    return make_error(f.code, f.message, f.hint);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::format, name + ": out of memory while reading the metadata");
  } catch (const std::length_error&) {
    return make_error(ErrorCode::format, name + ": a count in the file is too large to hold");
  }
  return GgufFile(std::move(impl));
}

const std::filesystem::path& GgufFile::path() const { return m_impl->path; }
uint32_t GgufFile::version() const { return m_impl->version; }
uint64_t GgufFile::alignment() const { return m_impl->alignment; }
uint64_t GgufFile::file_size() const { return m_impl->size; }

void GgufFile::release_pages(const void* p, size_t n) const {
  const auto* base = static_cast<const uint8_t*>(m_impl->map);
  const auto* begin = static_cast<const uint8_t*>(p);
  if (!base || begin < base || n > m_impl->map_size || size_t(begin - base) > m_impl->map_size - n) return;
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = (uintptr_t(begin) + page - 1) / page * page, hi = (uintptr_t(begin) + n) / page * page;
  // Read-only private mapping: dropping pages loses nothing (a later access reads the file again).
  if (lo < hi) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}
uint64_t GgufFile::data_offset() const { return m_impl->data_offset; }

const std::vector<GgufKV>& GgufFile::metadata() const { return m_impl->kv; }

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = m_impl->kv_index.find(key);
  return it == m_impl->kv_index.end() ? nullptr : &m_impl->kv[it->second].value;
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || !v->as_string()) return std::nullopt;
  return *v->as_string();
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  return v ? v->as_int() : std::nullopt;
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  return v ? v->as_float() : std::nullopt;
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  return v ? v->as_bool() : std::nullopt;
}

std::optional<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || !v->as_array() || v->array_type != GgufValueType::STRING) return std::nullopt;
  std::vector<std::string> out;
  out.reserve(v->as_array()->size());
  for (const GgufValue& e : *v->as_array()) out.push_back(*e.as_string());
  return out;
}

std::optional<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || !v->as_array()) return std::nullopt;
  std::vector<int64_t> out;
  out.reserve(v->as_array()->size());
  for (const GgufValue& e : *v->as_array()) {
    auto i = e.as_int();
    if (!i) return std::nullopt;
    out.push_back(*i);
  }
  return out;
}

std::optional<std::vector<float>> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || !v->as_array()) return std::nullopt;
  std::vector<float> out;
  out.reserve(v->as_array()->size());
  for (const GgufValue& e : *v->as_array()) {
    auto f = e.as_float();
    if (!f) return std::nullopt;
    out.push_back(float(*f));
  }
  return out;
}

const std::vector<GgufTensorInfo>& GgufFile::tensors() const { return m_impl->tensors; }

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = m_impl->tensor_index.find(name);
  return it == m_impl->tensor_index.end() ? nullptr : &m_impl->tensors[it->second];
}

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& info) const {
  return m_impl->data + m_impl->data_offset + info.offset;
}

Expected<std::vector<float>> GgufFile::read_f32(const GgufTensorInfo& info) const {
  // `info` may be a caller's copy: check it against the file again rather than trust it.
  const int64_t n = info.n_elements();
  if (n < 0) return make_error(ErrorCode::format, m_impl->name + ": tensor " + quote_name(info.name) + " has no valid shape");
  auto nbytes = type_nbytes(info.type, uint64_t(n));
  if (!nbytes) return make_error(nbytes.error().code, m_impl->name + ": tensor " + quote_name(info.name) + ": " + nbytes.error().message);
  uint64_t begin, end;
  if (*nbytes != info.nbytes || __builtin_add_overflow(m_impl->data_offset, info.offset, &begin) ||
      __builtin_add_overflow(begin, *nbytes, &end) || end > m_impl->size)
    return make_error(ErrorCode::out_of_range,
                      m_impl->name + ": tensor " + quote_name(info.name) + " does not lie inside the file");
  std::vector<float> out;
  try {
    out.resize(size_t(n));
  } catch (const std::exception&) {
    return make_error(ErrorCode::out_of_range, m_impl->name + ": tensor " + quote_name(info.name) + " of " +
                                                   std::to_string(n) + " elements does not fit in memory as F32");
  }
  auto r = dequantize(info.type, m_impl->data + begin, out.data(), n);
  if (!r) return make_error(r.error().code, m_impl->name + ": tensor " + quote_name(info.name) + ": " + r.error().message,
                            r.error().hint);
  return out;
}

}  // namespace hearth
