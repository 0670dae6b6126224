/* Values of the chat-template interpreter: construction, Python str()/repr(), comparisons, json.dumps.
 *
 * Non-obvious choice: floats print through std::to_chars' shortest round-trip digits, re-laid out the way
 * CPython's float.__repr__ does (scientific below 1e-4 and from 1e16 on, "1.0" not "1"), because jinja2
 * prints floats with str() and tojson with repr(); the two agree in Python 3, so one function serves both.
 */
#include "jinja-value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace hearth::jinja {

Value Value::undefined(std::string message) {
  Value v;
  v.kind = Kind::Undefined;
  v.s = std::make_shared<const std::string>(std::move(message));
  return v;
}
Value Value::none() {
  Value v;
  v.kind = Kind::None;
  return v;
}
Value Value::boolean(bool x) {
  Value v;
  v.kind = Kind::Bool;
  v.b = x;
  v.i = x ? 1 : 0;
  return v;
}
Value Value::integer(int64_t x) {
  Value v;
  v.kind = Kind::Int;
  v.i = x;
  return v;
}
Value Value::number(double x) {
  Value v;
  v.kind = Kind::Float;
  v.f = x;
  return v;
}
Value Value::string(std::string x) {
  Value v;
  v.kind = Kind::String;
  v.s = std::make_shared<const std::string>(std::move(x));
  return v;
}
Value Value::make_list(List x, bool tuple) {
  Value v;
  v.kind = Kind::List;
  v.is_tuple = tuple;
  v.seq = tuple ? Seq::tuple : Seq::list;
  v.list = std::make_shared<List>(std::move(x));
  return v;
}
Value Value::make_seq(List x, Seq seq) {
  Value v = make_list(std::move(x), seq == Seq::tuple);
  v.seq = seq;
  return v;
}
Value Value::markup(std::string x) {
  Value v = string(std::move(x));
  v.is_safe = true;
  return v;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}
Value Value::make_dict() {
  Value v;
  v.kind = Kind::Dict;
  v.dict = std::make_shared<Dict>();
  return v;
}
Value Value::function(Function f) {
  Value v;
  v.kind = Kind::Callable;
  v.fn = std::make_shared<Function>(std::move(f));
  return v;
}

const std::string& Value::undefined_message() const {
  static const std::string generic = "value is undefined";
  return (kind == Kind::Undefined && s) ? *s : generic;
}

bool Value::truthy() const {
  switch (kind) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return b;
    case Kind::Int: return i != 0;
    case Kind::Float: return f != 0.0;
    case Kind::String: return !s->empty();
    case Kind::List: return is_lazy() || !list->empty();
    case Kind::Dict: return is_namespace || !dict->items.empty();
    case Kind::Callable: return true;
  }
  return false;
}

const char* Value::type_name() const {
  switch (kind) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return is_safe ? "Markup" : "str";
    case Kind::List:
      switch (seq) {
        case Seq::list: return "list";
        case Seq::tuple: return "tuple";
        case Seq::generator: return "generator";
        case Seq::reverse_iterator: return "list_reverseiterator";
        case Seq::dict_items: return "dict_items";
        case Seq::dict_keys: return "dict_keys";
        case Seq::dict_values: return "dict_values";
        case Seq::range: return "range";
      }
      return "list";
    case Kind::Dict: return is_namespace ? "Namespace" : "dict";
    case Kind::Callable: return "function";
  }
  return "object";
}

std::string Value::object_type_repr() const {
  if (kind == Kind::None) return "None";
  if (kind == Kind::Dict && is_namespace) return "jinja2.utils.Namespace object";
  return std::string(type_name()) + " object";
}

std::string python_float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  // sci: [-]d[.ddd]e[+-]XX
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t epos = sci.find('e');
  std::string mant = sci.substr(0, epos);
  int exp10 = std::stoi(sci.substr(epos + 1));
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int decpt = exp10 + 1;  // value = 0.digits * 10^decpt
  std::string out = neg ? "-" : "";
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-decpt), '0');
      out += digits;
    } else if (static_cast<size_t>(decpt) >= digits.size()) {
      out += digits;
      out.append(static_cast<size_t>(decpt) - digits.size(), '0');
      out += ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(decpt));
      out += '.';
      out += digits.substr(static_cast<size_t>(decpt));
    }
    return out;
  }
  out += digits[0];
  if (digits.size() > 1) {
    out += '.';
    out += digits.substr(1);
  }
  int e = decpt - 1;
  char eb[16];
  std::snprintf(eb, sizeof eb, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
  out += eb;
  return out;
}

std::vector<uint32_t> utf8_decode(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    size_t n;
    if (c < 0x80) { cp = c; n = 1; }
    else if ((c >> 5) == 6) { cp = c & 0x1f; n = 2; }
    else if ((c >> 4) == 14) { cp = c & 0x0f; n = 3; }
    else if ((c >> 3) == 30) { cp = c & 0x07; n = 4; }
    else { out.push_back(0xfffd); ++i; continue; }
    if (i + n > s.size()) { out.push_back(0xfffd); ++i; continue; }
    bool ok = true;
    for (size_t k = 1; k < n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 2) { ok = false; break; }
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (!ok) { out.push_back(0xfffd); ++i; continue; }
    out.push_back(cp);
    i += n;
  }
  return out;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::string utf8_encode(const std::vector<uint32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t k = begin; k < end && k < cps.size(); ++k) utf8_append(out, cps[k]);
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++n;
  return n;
}

namespace {

// Code points Python's str.isprintable() rejects (besides ASCII controls): the ones real text carries.
bool python_nonprintable(uint32_t cp) {
  if (cp < 0x20 || cp == 0x7f) return true;
  if (cp >= 0x80 && cp <= 0xa0) return true;
  if (cp == 0xad || cp == 0x1680 || cp == 0x3000 || cp == 0xfeff) return true;
  if (cp >= 0x2000 && cp <= 0x200f) return true;
  if (cp >= 0x2028 && cp <= 0x202f) return true;
  if (cp >= 0x205f && cp <= 0x2064) return true;
  if (cp >= 0xd800 && cp <= 0xf8ff) return true;  // surrogates and private use
  if (cp == 0xfffe || cp == 0xffff) return true;
  return false;
}

}  // namespace

std::string python_string_repr(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char q = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, q);
  for (uint32_t cp : utf8_decode(s)) {
    if (cp == static_cast<uint32_t>(q) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (python_nonprintable(cp)) {
      char buf[16];
      if (cp < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      else if (cp < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      else std::snprintf(buf, sizeof buf, "\\U%08x", cp);
      out += buf;
    } else {
      utf8_append(out, cp);
    }
  }
  out += q;
  return out;
}

std::string Value::repr() const {
  switch (kind) {
    case Kind::Undefined: return "Undefined";
    case Kind::String: return python_string_repr(*s);
    case Kind::List: {
      if (is_lazy()) return std::string("<") + type_name() + " object>";
      if (seq == Seq::range) {
        int64_t start = list->empty() ? i : list->front().i, step = static_cast<int64_t>(f);
        std::string r = "range(" + std::to_string(start) + ", " + std::to_string(i);
        return r + (step == 1 ? ")" : ", " + std::to_string(step) + ")");
      }
      if (seq == Seq::dict_items || seq == Seq::dict_keys || seq == Seq::dict_values)
        return std::string(type_name()) + "(" + make_list(*list).repr() + ")";
      std::string out = is_tuple ? "(" : "[";
      for (size_t k = 0; k < list->size(); ++k) {
        if (k) out += ", ";
        out += (*list)[k].repr();
      }
      if (is_tuple && list->size() == 1) out += ",";
      out += is_tuple ? ")" : "]";
      return out;
    }
    case Kind::Dict: {
      std::string out = "{";
      bool first = true;
      for (auto& [k, v] : dict->items) {
        if (!first) out += ", ";
        first = false;
        out += decode_key(k).repr();
        out += ": ";
        out += v.repr();
      }
      out += "}";
      if (is_namespace) return "<Namespace " + out + ">";
      return out;
    }
    default: return to_str();
  }
}

std::string Value::to_str() const {
  switch (kind) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return b ? "True" : "False";
    case Kind::Int: return std::to_string(i);
    case Kind::Float: return python_float_repr(f);
    case Kind::String: return *s;
    case Kind::List:
    case Kind::Dict: return repr();
    case Kind::Callable: return "<function>";
  }
  return "";
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return number(static_cast<double>(u));
      return integer(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return number(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List l;
      l.reserve(j.size());
      for (auto& e : j) l.push_back(from_json(e));
      return make_list(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value d = make_dict();
      d.dict->items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) d.dict->items.emplace_back(it.key(), from_json(it.value()));
      return d;
    }
    default: return none();
  }
}

std::string encode_key(const Value& key) {
  auto tagged = [](char tag, const std::string& body) {
    std::string out(1, static_cast<char>(0xff));
    out += tag;
    out += body;
    return out;
  };
  switch (key.kind) {
    case Kind::String: return *key.s;
    case Kind::Int: return tagged('i', std::to_string(key.i));
    case Kind::Bool: return tagged('b', key.b ? "1" : "0");
    case Kind::Float: return tagged('f', python_float_repr(key.f));
    case Kind::None: return tagged('n', "");
    case Kind::Undefined: throw RenderError(key.undefined_message());
    default: throw RenderError(std::string("unhashable type: '") + key.type_name() + "'");
  }
}

Value decode_key(const std::string& key) {
  if (key.empty() || static_cast<unsigned char>(key[0]) != 0xff || key.size() < 2) return Value::string(key);
  switch (key[1]) {
    case 'i': return Value::integer(std::stoll(key.substr(2)));
    case 'b': return Value::boolean(key[2] == '1');
    case 'f': return Value::number(std::strtod(key.c_str() + 2, nullptr));
    default: return Value::none();
  }
}

const Value* Dict::find(std::string_view key) const {
  for (auto& kv : items)
    if (kv.first == key) return &kv.second;
  return nullptr;
}
Value* Dict::find(std::string_view key) {
  for (auto& kv : items)
    if (kv.first == key) return &kv.second;
  return nullptr;
}
void Dict::set(std::string key, Value v) {
  if (Value* p = find(key)) {
    *p = std::move(v);
    return;
  }
  items.emplace_back(std::move(key), std::move(v));
}

Value CallArgs::get(size_t n, std::string_view name, Value fallback) const {
  if (n < positional.size()) return positional[n];
  for (auto& kv : keyword)
    if (kv.first == name) return kv.second;
  return fallback;
}
bool CallArgs::has(size_t n, std::string_view name) const {
  if (n < positional.size()) return true;
  for (auto& kv : keyword)
    if (kv.first == name) return true;
  return false;
}

namespace {
double as_double(const Value& v) { return v.kind == Kind::Float ? v.f : static_cast<double>(v.i); }
}  // namespace

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Kind::Float || b.kind == Kind::Float) return as_double(a) == as_double(b);
    return a.i == b.i;
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::String: return *a.s == *b.s;
    case Kind::List: {
      if (a.list == b.list) return true;
      if (a.seq != b.seq || a.is_lazy() || a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k)
        if (!values_equal((*a.list)[k], (*b.list)[k])) return false;
      return true;
    }
    case Kind::Dict: {
      if (a.dict == b.dict) return true;
      if (a.is_namespace || b.is_namespace) return false;
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (auto& [k, v] : a.dict->items) {
        const Value* o = b.dict->find(k);
        if (!o || !values_equal(v, *o)) return false;
      }
      return true;
    }
    case Kind::Callable: return a.fn == b.fn;
    default: return false;
  }
}

int values_compare(const Value& a, const Value& b, const char* op) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Kind::Float || b.kind == Kind::Float) {
      double x = as_double(a), y = as_double(b);
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    return a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
  }
  if (a.kind == Kind::String && b.kind == Kind::String) {
    int c = a.s->compare(*b.s);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.kind == Kind::List && b.kind == Kind::List && a.seq == b.seq && a.is_plain_list()) {
    size_t n = std::min(a.list->size(), b.list->size());
    for (size_t k = 0; k < n; ++k) {
      if (values_equal((*a.list)[k], (*b.list)[k])) continue;
      return values_compare((*a.list)[k], (*b.list)[k], op);
    }
    return a.list->size() < b.list->size() ? -1 : (a.list->size() > b.list->size() ? 1 : 0);
  }
  if (a.is_undefined()) throw RenderError(a.undefined_message());
  if (b.is_undefined()) throw RenderError(b.undefined_message());
  throw RenderError(std::string("'") + op + "' not supported between instances of '" + a.type_name() +
                    "' and '" + b.type_name() + "'");
}

namespace {

void json_escape_byte(std::string& out, char ch) {
  unsigned char c = static_cast<unsigned char>(ch);
  switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    default:
      if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += ch;
      }
  }
}

void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  if (ensure_ascii) {
    for (uint32_t cp : utf8_decode(s)) {
      if (cp < 0x80) {
        json_escape_byte(out, static_cast<char>(cp));
      } else if (cp < 0x10000) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", cp);
        out += buf;
      } else {
        uint32_t v = cp - 0x10000;
        char buf[16];
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
        out += buf;
      }
    }
    out += '"';
    return;
  }
  // Bytes of 0x80 and up pass through unchanged: the UTF-8 text is copied as it is.
  for (char ch : s) json_escape_byte(out, ch);
  out += '"';
}

void json_value(std::string& out, const Value& v, const std::string* indent, const std::string& item_sep,
                const std::string& key_sep, bool sort_keys, bool ensure_ascii, int level) {
  if (level > 200) throw RenderError("tojson: value nested too deeply");
  auto newline = [&](int lvl) {
    out += '\n';
    for (int k = 0; k < lvl; ++k) out += *indent;
  };
  switch (v.kind) {
    case Kind::None: out += "null"; return;
    case Kind::Bool: out += v.b ? "true" : "false"; return;
    case Kind::Int: out += std::to_string(v.i); return;
    case Kind::Float:
      if (std::isnan(v.f)) out += "NaN";
      else if (std::isinf(v.f)) out += v.f > 0 ? "Infinity" : "-Infinity";
      else out += python_float_repr(v.f);
      return;
    case Kind::String: json_string(out, *v.s, ensure_ascii); return;
    case Kind::List: {
      if (!v.is_plain_list())
        throw RenderError(std::string("Object of type ") + v.type_name() + " is not JSON serializable");
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      bool first = true;
      for (auto& e : *v.list) {
        if (!first) out += item_sep;
        first = false;
        if (indent) newline(level + 1);
        json_value(out, e, indent, item_sep, key_sep, sort_keys, ensure_ascii, level + 1);
      }
      if (indent) newline(level);
      out += ']';
      return;
    }
    case Kind::Dict: {
      if (v.is_namespace) throw RenderError("Object of type Namespace is not JSON serializable");
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (auto& kv : v.dict->items) items.push_back(&kv);
      if (sort_keys)
        std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out += '{';
      bool first = true;
      for (auto* kv : items) {
        if (!first) out += item_sep;
        first = false;
        if (indent) newline(level + 1);
        if (!kv->first.empty() && static_cast<unsigned char>(kv->first[0]) == 0xff) {
          Value k = decode_key(kv->first);
          std::string ks = k.kind == Kind::None ? "null" : (k.kind == Kind::Bool ? (k.b ? "true" : "false") : k.to_str());
          json_string(out, ks, ensure_ascii);
        } else {
          json_string(out, kv->first, ensure_ascii);
        }
        out += key_sep;
        json_value(out, kv->second, indent, item_sep, key_sep, sort_keys, ensure_ascii, level + 1);
      }
      if (indent) newline(level);
      out += '}';
      return;
    }
    case Kind::Undefined: throw RenderError("Object of type Undefined is not JSON serializable");
    case Kind::Callable: throw RenderError("Object of type function is not JSON serializable");
  }
}

}  // namespace

std::string to_json(const Value& v, const std::string* indent, const std::string& item_sep,
                    const std::string& key_sep, bool sort_keys, bool ensure_ascii) {
  std::string out;
  json_value(out, v, indent, item_sep, key_sep, sort_keys, ensure_ascii, 0);
  return out;
}

}  // namespace hearth::jinja
