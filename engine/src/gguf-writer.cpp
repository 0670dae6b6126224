/* GGUF v3 writer: header, metadata in insertion order, tensor infos, then each tensor's data at an
 * offset aligned to general.alignment (padding after every tensor, as ggml writes it).
 *
 * Non-obvious choice: write() streams the header block and then each tensor straight to a temporary file
 * beside the target and renames it into place only after a successful flush, so a failure (disk full, a
 * bad value) never leaves a half-written model under the real name, and no second in-memory copy of a
 * multi-gigabyte model is made.
 */
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "hearth/gguf.h"

namespace hearth {

namespace {

constexpr uint32_t GGUF_VERSION = 3;

class Bytes {
 public:
  std::vector<uint8_t> out;
  template <class T>
  void put(T v) {
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &v, sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    out.insert(out.end(), s.begin(), s.end());
  }
};

struct Invalid {
  std::string message;
};

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Integer payload of a value as either alternative, range-checked for `t`.
template <class T>
T int_payload(const GgufValue& v, const std::string& where) {
  __int128 x;
  if (auto* u = std::get_if<uint64_t>(&v.data)) x = *u;
  else if (auto* i = std::get_if<int64_t>(&v.data)) x = *i;
  else throw Invalid{where + ": a " + gguf_value_type_name(v.type) + " value must hold an integer"};
  if (x < __int128(std::numeric_limits<T>::min()) || x > __int128(std::numeric_limits<T>::max()))
    throw Invalid{where + ": value does not fit " + gguf_value_type_name(v.type)};
  return T(x);
}

double float_payload(const GgufValue& v, const std::string& where) {
  if (auto* d = std::get_if<double>(&v.data)) return *d;
  if (auto* u = std::get_if<uint64_t>(&v.data)) return double(*u);
  if (auto* i = std::get_if<int64_t>(&v.data)) return double(*i);
  throw Invalid{where + ": a " + std::string(gguf_value_type_name(v.type)) + " value must hold a number"};
}

void put_value(Bytes& b, const GgufValue& v, const std::string& where, int depth) {
  switch (v.type) {
    case GgufValueType::UINT8: b.put(int_payload<uint8_t>(v, where)); break;
    case GgufValueType::INT8: b.put(int_payload<int8_t>(v, where)); break;
    case GgufValueType::UINT16: b.put(int_payload<uint16_t>(v, where)); break;
    case GgufValueType::INT16: b.put(int_payload<int16_t>(v, where)); break;
    case GgufValueType::UINT32: b.put(int_payload<uint32_t>(v, where)); break;
    case GgufValueType::INT32: b.put(int_payload<int32_t>(v, where)); break;
    case GgufValueType::UINT64: b.put(int_payload<uint64_t>(v, where)); break;
    case GgufValueType::INT64: b.put(int_payload<int64_t>(v, where)); break;
    case GgufValueType::FLOAT32: b.put(float(float_payload(v, where))); break;
    case GgufValueType::FLOAT64: b.put(float_payload(v, where)); break;
    case GgufValueType::BOOL: {
      auto* x = std::get_if<bool>(&v.data);
      if (!x) throw Invalid{where + ": a BOOL value must hold a bool"};
      b.put<uint8_t>(*x ? 1 : 0);
      break;
    }
    case GgufValueType::STRING: {
      auto* s = v.as_string();
      if (!s) throw Invalid{where + ": a STRING value must hold a string"};
      b.put_string(*s);
      break;
    }
    case GgufValueType::ARRAY: {
      auto* a = v.as_array();
      if (!a) throw Invalid{where + ": an ARRAY value must hold a vector of values"};
      if (depth >= 8) throw Invalid{where + ": arrays nested more than 8 deep"};
      b.put<uint32_t>(uint32_t(v.array_type));
      b.put<uint64_t>(a->size());
      for (size_t i = 0; i < a->size(); ++i) {
        const GgufValue& e = (*a)[i];
        if (e.type != v.array_type)
          throw Invalid{where + ": element " + std::to_string(i) + " is " + gguf_value_type_name(e.type) +
                        " in an array of " + gguf_value_type_name(v.array_type)};
        put_value(b, e, where, depth + 1);
      }
      break;
    }
    default:
      throw Invalid{where + ": unknown value type " + std::to_string(uint32_t(v.type))};
  }
}

GgufValue scalar(GgufValueType t, uint64_t v) {
  GgufValue x;
  x.type = t;
  x.data = v;
  return x;
}

Expected<uint64_t> check_shape(const std::string& name, const std::vector<int64_t>& shape, GgmlType type) {
  const TypeTraits* tr = type_traits(type);
  if (!tr)
    return make_error(ErrorCode::invalid_argument,
                      "tensor '" + name + "': unknown type id " + std::to_string(uint32_t(type)));
  if (shape.empty() || shape.size() > 4)
    return make_error(ErrorCode::invalid_argument, "tensor '" + name + "' has " + std::to_string(shape.size()) +
                                                       " dimensions, expected 1 to 4");
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d <= 0)
      return make_error(ErrorCode::invalid_argument,
                        "tensor '" + name + "' has dimension " + std::to_string(d) + ", expected a positive size");
    if (__builtin_mul_overflow(n, d, &n))
      return make_error(ErrorCode::invalid_argument, "tensor '" + name + "' has too many elements");
  }
  if (shape[0] % tr->block_size != 0)
    return make_error(ErrorCode::invalid_argument, "tensor '" + name + "' has rows of " + std::to_string(shape[0]) +
                                                       " elements, not a multiple of the " + tr->name +
                                                       " block size " + std::to_string(tr->block_size));
  return type_nbytes(type, uint64_t(n));
}

}  // namespace

GgufWriter::GgufWriter(uint64_t alignment) : m_alignment(alignment) {}

void GgufWriter::set(std::string key, GgufValue value) {
  for (auto& kv : m_kv)
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  m_kv.push_back(GgufKV{std::move(key), std::move(value)});
}

void GgufWriter::set_string(std::string key, std::string value) {
  GgufValue v;
  v.type = GgufValueType::STRING;
  v.data = std::move(value);
  set(std::move(key), std::move(v));
}
void GgufWriter::set_u32(std::string key, uint32_t value) {
  set(std::move(key), scalar(GgufValueType::UINT32, value));
}
void GgufWriter::set_i32(std::string key, int32_t value) {
  GgufValue v;
  v.type = GgufValueType::INT32;
  v.data = int64_t(value);
  set(std::move(key), std::move(v));
}
void GgufWriter::set_u64(std::string key, uint64_t value) {
  set(std::move(key), scalar(GgufValueType::UINT64, value));
}
void GgufWriter::set_f32(std::string key, float value) {
  GgufValue v;
  v.type = GgufValueType::FLOAT32;
  v.data = double(value);
  set(std::move(key), std::move(v));
}
void GgufWriter::set_bool(std::string key, bool value) {
  GgufValue v;
  v.type = GgufValueType::BOOL;
  v.data = value;
  set(std::move(key), std::move(v));
}
void GgufWriter::set_string_array(std::string key, const std::vector<std::string>& values) {
  GgufValue v;
  v.type = GgufValueType::ARRAY;
  v.array_type = GgufValueType::STRING;
  std::vector<GgufValue> elems(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    elems[i].type = GgufValueType::STRING;
    elems[i].data = values[i];
  }
  v.data = std::move(elems);
  set(std::move(key), std::move(v));
}
void GgufWriter::set_f32_array(std::string key, const std::vector<float>& values) {
  GgufValue v;
  v.type = GgufValueType::ARRAY;
  v.array_type = GgufValueType::FLOAT32;
  std::vector<GgufValue> elems(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    elems[i].type = GgufValueType::FLOAT32;
    elems[i].data = double(values[i]);
  }
  v.data = std::move(elems);
  set(std::move(key), std::move(v));
}
void GgufWriter::set_i32_array(std::string key, const std::vector<int32_t>& values) {
  GgufValue v;
  v.type = GgufValueType::ARRAY;
  v.array_type = GgufValueType::INT32;
  std::vector<GgufValue> elems(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    elems[i].type = GgufValueType::INT32;
    elems[i].data = int64_t(values[i]);
  }
  v.data = std::move(elems);
  set(std::move(key), std::move(v));
}

Expected<void> GgufWriter::add_tensor_f32(std::string name, std::vector<int64_t> shape, const float* values,
                                          GgmlType type) {
  for (const auto& t : m_tensors)
    if (t.info.name == name) return make_error(ErrorCode::invalid_argument, "duplicate tensor name '" + name + "'");
  HEARTH_TRY(uint64_t nbytes, check_shape(name, shape, type));
  Tensor t;
  t.info.name = std::move(name);
  t.info.shape = std::move(shape);
  t.info.type = type;
  t.info.nbytes = nbytes;
  t.data.resize(size_t(nbytes));
  auto r = quantize(type, values, t.data.data(), t.info.n_elements());
  if (!r) return make_error(r.error().code, "tensor '" + t.info.name + "': " + r.error().message, r.error().hint);
  m_tensors.push_back(std::move(t));
  return {};
}

Expected<void> GgufWriter::add_tensor_raw(std::string name, std::vector<int64_t> shape, GgmlType type,
                                          const void* data, size_t nbytes) {
  for (const auto& t : m_tensors)
    if (t.info.name == name) return make_error(ErrorCode::invalid_argument, "duplicate tensor name '" + name + "'");
  HEARTH_TRY(uint64_t expected, check_shape(name, shape, type));
  if (expected != nbytes)
    return make_error(ErrorCode::invalid_argument, "tensor '" + name + "': " + std::to_string(nbytes) +
                                                       " bytes given, its shape and type " + type_name(type) +
                                                       " need " + std::to_string(expected));
  Tensor t;
  t.info.name = std::move(name);
  t.info.shape = std::move(shape);
  t.info.type = type;
  t.info.nbytes = nbytes;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  t.data.assign(p, p + nbytes);
  m_tensors.push_back(std::move(t));
  return {};
}

// Header, metadata and tensor infos, padded to the alignment: everything before the data section.
Expected<std::vector<uint8_t>> GgufWriter::serialize_header() const {
  if (m_alignment == 0 || (m_alignment & (m_alignment - 1)) != 0 || m_alignment > (1u << 30))
    return make_error(ErrorCode::invalid_argument,
                      "GGUF alignment " + std::to_string(m_alignment) + " is not a power of two up to 2^30");
  std::vector<const GgufKV*> kvs;
  bool has_alignment = false;
  for (const auto& kv : m_kv) {
    kvs.push_back(&kv);
    if (kv.key == "general.alignment") {
      has_alignment = true;
      auto a = kv.value.as_int();
      if (kv.value.type != GgufValueType::UINT32 || !a || uint64_t(*a) != m_alignment)
        return make_error(ErrorCode::invalid_argument,
                          "general.alignment must be the UINT32 " + std::to_string(m_alignment) +
                              " this writer was made with");
    }
  }
  GgufKV align_kv{"general.alignment", scalar(GgufValueType::UINT32, m_alignment)};
  if (!has_alignment && m_alignment != 32) kvs.push_back(&align_kv);

  Bytes b;
  try {
    b.out.insert(b.out.end(), {'G', 'G', 'U', 'F'});
    b.put<uint32_t>(GGUF_VERSION);
    b.put<uint64_t>(m_tensors.size());
    b.put<uint64_t>(kvs.size());
    for (const GgufKV* kv : kvs) {
      b.put_string(kv->key);
      b.put<uint32_t>(uint32_t(kv->value.type));
      put_value(b, kv->value, "metadata '" + kv->key + "'", 0);
    }
    uint64_t offset = 0;
    for (const auto& t : m_tensors) {
      b.put_string(t.info.name);
      b.put<uint32_t>(uint32_t(t.info.shape.size()));
      for (int64_t d : t.info.shape) b.put<uint64_t>(uint64_t(d));
      b.put<uint32_t>(uint32_t(t.info.type));
      b.put<uint64_t>(offset);
      offset = align_up(offset + t.data.size(), m_alignment);
    }
  } catch (const Invalid& e) {
    return make_error(ErrorCode::invalid_argument, e.message);
  }
  b.out.resize(size_t(align_up(b.out.size(), m_alignment)), 0);
  return std::move(b.out);
}

Expected<std::vector<uint8_t>> GgufWriter::serialize() const {
  HEARTH_TRY(std::vector<uint8_t> out, serialize_header());
  for (const auto& t : m_tensors) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    out.resize(size_t(align_up(out.size(), m_alignment)), 0);
  }
  return out;
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  auto r = serialize();
  return r ? std::move(*r) : std::vector<uint8_t>{};
}

Expected<void> GgufWriter::write(const std::filesystem::path& path) const {
  HEARTH_TRY(std::vector<uint8_t> header, serialize_header());
  const std::filesystem::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return make_error(ErrorCode::io, tmp.string() + ": cannot create: " + std::strerror(errno));
  auto fail = [&](const char* what) -> Expected<void> {
    const int e = errno;
    std::fclose(f);
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    return make_error(ErrorCode::io, path.string() + ": " + what + ": " + std::strerror(e));
  };
  static const uint8_t zeros[64] = {};
  uint64_t pos = header.size();
  if (std::fwrite(header.data(), 1, header.size(), f) != header.size()) return fail("write failed");
  for (const auto& t : m_tensors) {
    if (!t.data.empty() && std::fwrite(t.data.data(), 1, t.data.size(), f) != t.data.size())
      return fail("write failed");
    pos += t.data.size();
    uint64_t pad = align_up(pos, m_alignment) - pos;
    pos += pad;
    while (pad > 0) {
      const size_t n = size_t(std::min<uint64_t>(pad, sizeof zeros));
      if (std::fwrite(zeros, 1, n, f) != n) return fail("write failed");
      pad -= n;
    }
  }
  if (std::fflush(f) != 0) return fail("write failed");
  if (std::fclose(f) != 0) {
    const int e = errno;
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    return make_error(ErrorCode::io, path.string() + ": close failed: " + std::strerror(e));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return make_error(ErrorCode::io, path.string() + ": cannot rename the temporary file into place: " + ec.message());
  }
  return {};
}

}  // namespace hearth
