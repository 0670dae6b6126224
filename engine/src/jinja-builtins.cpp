/* Builtins of the chat-template interpreter: jinja2's filters and tests, the methods of Python's str,
 * dict and list that templates call, attribute/item lookup, and the globals transformers provides.
 *
 * Non-obvious choice: lookup mirrors jinja2's ImmutableSandboxedEnvironment exactly: `d.items` is the
 * method even when the dict has an "items" key, `d['items']` is the key, and mutating methods
 * (list.append, dict.pop, ...) are reachable names that fail with the sandbox's own message when used,
 * because transformers renders with that sandbox and templates rely on (or trip over) both behaviours.
 * Case mapping (upper/lower/title) covers ASCII, Latin-1, Greek and Cyrillic, not all of Unicode.
 */
#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "jinja-interpreter.h"

namespace hearth::jinja {
namespace {

// ---------- characters ----------

bool py_space(uint32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000;
}

uint32_t cp_upper(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c < 0x80) return c;
  if ((c >= 0xe0 && c <= 0xfe && c != 0xf7)) return c - 32;
  if (c == 0xff) return 0x178;
  if (c >= 0x100 && c <= 0x17f && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17f) {
    bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e);
    if (odd_upper) return (c % 2 == 0) ? c - 1 : c;
    return (c % 2 == 1) ? c - 1 : c;
  }
  if (c >= 0x3b1 && c <= 0x3c9 && c != 0x3c2) return c - 32;
  if (c == 0x3c2) return 0x3a3;
  if (c >= 0x3ac && c <= 0x3af) {
    static const uint32_t m[] = {0x386, 0x388, 0x389, 0x38a};
    return m[c - 0x3ac];
  }
  if (c >= 0x430 && c <= 0x44f) return c - 32;
  if (c >= 0x450 && c <= 0x45f) return c - 80;
  return c;
}

uint32_t cp_lower(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0x80) return c;
  if (c >= 0xc0 && c <= 0xde && c != 0xd7) return c + 32;
  if (c == 0x178) return 0xff;
  if (c >= 0x100 && c <= 0x17f && c != 0x130 && c != 0x138 && c != 0x149 && c != 0x17f) {
    bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e);
    if (odd_upper) return (c % 2 == 1) ? c + 1 : c;
    return (c % 2 == 0) ? c + 1 : c;
  }
  if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) return c + 32;
  if (c >= 0x410 && c <= 0x42f) return c + 32;
  if (c >= 0x400 && c <= 0x40f) return c + 80;
  return c;
}

bool cp_is_lower(uint32_t c) { return cp_upper(c) != c; }
bool cp_is_upper(uint32_t c) { return cp_lower(c) != c; }
bool cp_cased(uint32_t c) { return cp_is_lower(c) || cp_is_upper(c); }
bool cp_alpha(uint32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return cp_cased(c) || (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3040 && c <= 0x30ff) || (c >= 0xac00 && c <= 0xd7af);
}
bool cp_digit(uint32_t c) { return c >= '0' && c <= '9'; }

std::string map_cps(std::string_view s, uint32_t (*fn)(uint32_t)) {
  std::string out;
  out.reserve(s.size());
  bool ascii = true;
  for (char ch : s) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
  if (ascii) {
    for (char ch : s) out += static_cast<char>(fn(static_cast<unsigned char>(ch)));
    return out;
  }
  for (uint32_t c : utf8_decode(s)) {
    if (c == 0xdf && fn == cp_upper) out += "SS";  // Python: 'ß'.upper() == 'SS'
    else utf8_append(out, fn(c));
  }
  return out;
}
std::string str_upper(std::string_view s) { return map_cps(s, cp_upper); }
std::string str_lower(std::string_view s) { return map_cps(s, cp_lower); }

std::string str_capitalize(std::string_view s) {
  auto cps = utf8_decode(s);
  std::string out;
  for (size_t k = 0; k < cps.size(); ++k) utf8_append(out, k == 0 ? cp_upper(cps[k]) : cp_lower(cps[k]));
  return out;
}

// Python's str.title(): a cased character after an uncased one is upper-cased, the rest lower-cased.
std::string py_title(std::string_view s) {
  std::string out;
  bool prev_cased = false;
  for (uint32_t c : utf8_decode(s)) {
    utf8_append(out, prev_cased ? cp_lower(c) : cp_upper(c));
    prev_cased = cp_cased(c);
  }
  return out;
}

// jinja2's `title` filter: capitalise each word, words starting after - whitespace ( { [ <.
std::string jinja_title(std::string_view s) {
  std::string out;
  bool at_start = true;
  for (uint32_t c : utf8_decode(s)) {
    bool sep = c == '-' || py_space(c) || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      utf8_append(out, c);
      at_start = true;
    } else {
      utf8_append(out, at_start ? cp_upper(c) : cp_lower(c));
      at_start = false;
    }
  }
  return out;
}

// ---------- argument helpers ----------

bool is_none_or_undef(const Value& v) { return v.kind == Kind::None || v.kind == Kind::Undefined; }

int64_t as_int_arg(const Value& v, const char* what) {
  if (v.kind == Kind::Int || v.kind == Kind::Bool) return v.i;
  if (v.kind == Kind::Float) return static_cast<int64_t>(v.f);
  throw RenderError(std::string("'") + v.type_name() + "' object cannot be interpreted as an integer (" + what +
                    ")");
}

const std::string& need_str(const Value& v, const char* method) {
  if (v.kind != Kind::String)
    throw RenderError(std::string(method) + " arg must be None or str, not " + v.type_name());
  return v.str();
}

// ---------- string methods ----------

std::string py_strip(std::string_view s, const Value& chars, bool left, bool right) {
  auto cps = utf8_decode(s);
  std::vector<uint32_t> set;
  bool ws = is_none_or_undef(chars);
  if (!ws) set = utf8_decode(need_str(chars, "strip"));
  auto drop = [&](uint32_t c) { return ws ? py_space(c) : std::find(set.begin(), set.end(), c) != set.end(); };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && drop(cps[b])) ++b;
  if (right)
    while (e > b && drop(cps[e - 1])) --e;
  return utf8_encode(cps, b, e);
}

List py_split(std::string_view s, const Value& sepv, int64_t maxsplit) {
  List out;
  if (is_none_or_undef(sepv)) {
    auto cps = utf8_decode(s);
    size_t k = 0, n = cps.size();
    while (true) {
      while (k < n && py_space(cps[k])) ++k;
      if (k >= n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
        out.push_back(Value::string(utf8_encode(cps, k, n)));
        break;
      }
      size_t b = k;
      while (k < n && !py_space(cps[k])) ++k;
      out.push_back(Value::string(utf8_encode(cps, b, k)));
    }
    return out;
  }
  const std::string& sep = need_str(sepv, "split");
  if (sep.empty()) throw RenderError("empty separator");
  size_t pos = 0;
  while (true) {
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) break;
    size_t f = s.find(sep, pos);
    if (f == std::string_view::npos) break;
    out.push_back(Value::string(std::string(s.substr(pos, f - pos))));
    pos = f + sep.size();
  }
  out.push_back(Value::string(std::string(s.substr(pos))));
  return out;
}

List py_rsplit(std::string_view s, const Value& sepv, int64_t maxsplit) {
  if (maxsplit < 0) return py_split(s, sepv, -1);
  List out;
  if (is_none_or_undef(sepv)) {
    auto cps = utf8_decode(s);
    int64_t k = static_cast<int64_t>(cps.size());
    while (true) {
      while (k > 0 && py_space(cps[static_cast<size_t>(k - 1)])) --k;
      if (k <= 0) break;
      if (static_cast<int64_t>(out.size()) >= maxsplit) {
        out.push_back(Value::string(utf8_encode(cps, 0, static_cast<size_t>(k))));
        break;
      }
      int64_t e = k;
      while (k > 0 && !py_space(cps[static_cast<size_t>(k - 1)])) --k;
      out.push_back(Value::string(utf8_encode(cps, static_cast<size_t>(k), static_cast<size_t>(e))));
    }
    std::reverse(out.begin(), out.end());
    return out;
  }
  const std::string& sep = need_str(sepv, "rsplit");
  if (sep.empty()) throw RenderError("empty separator");
  size_t end = s.size();
  while (static_cast<int64_t>(out.size()) < maxsplit) {
    if (end < sep.size()) break;
    size_t f = s.rfind(sep, end - sep.size());
    if (f == std::string_view::npos) break;
    out.push_back(Value::string(std::string(s.substr(f + sep.size(), end - f - sep.size()))));
    end = f;
  }
  out.push_back(Value::string(std::string(s.substr(0, end))));
  std::reverse(out.begin(), out.end());
  return out;
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view rep, int64_t count) {
  std::string out;
  if (old.empty()) {
    auto cps = utf8_decode(s);
    int64_t done = 0;
    for (size_t k = 0; k <= cps.size(); ++k) {
      if (count < 0 || done < count) {
        out += rep;
        ++done;
      }
      if (k < cps.size()) utf8_append(out, cps[k]);
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t f = s.find(old, pos);
    if (f == std::string_view::npos) break;
    out.append(s.substr(pos, f - pos));
    out.append(rep);
    pos = f + old.size();
    ++done;
  }
  out.append(s.substr(pos));
  return out;
}

bool affix_match(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& a) {
    if (a.kind != Kind::String)
      throw RenderError(std::string(prefix ? "startswith" : "endswith") +
                        " first arg must be str or a tuple of str, not " + a.type_name());
    const std::string& p = a.str();
    if (p.size() > s.size()) return false;
    return prefix ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0;
  };
  if (affix.kind == Kind::List) {
    for (auto& a : *affix.list)
      if (one(a)) return true;
    return false;
  }
  return one(affix);
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  std::vector<std::string> out;
  auto cps = utf8_decode(s);
  size_t b = 0, k = 0;
  while (k < cps.size()) {
    uint32_t c = cps[k];
    bool brk = c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e ||
               c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!brk) {
      ++k;
      continue;
    }
    size_t e = k + 1;
    if (c == '\r' && e < cps.size() && cps[e] == '\n') ++e;
    out.push_back(utf8_encode(cps, b, keepends ? e : k));
    b = k = e;
  }
  if (b < cps.size()) out.push_back(utf8_encode(cps, b, cps.size()));
  return out;
}

int64_t cp_index_of_byte(std::string_view s, size_t byte_pos) { return static_cast<int64_t>(utf8_length(s.substr(0, byte_pos))); }

std::string py_format(Interpreter& in, const std::string& fmt, CallArgs& args) {
  (void)in;
  std::string out;
  size_t auto_idx = 0;
  for (size_t k = 0; k < fmt.size(); ++k) {
    char c = fmt[k];
    if (c == '{') {
      if (k + 1 < fmt.size() && fmt[k + 1] == '{') {
        out += '{';
        ++k;
        continue;
      }
      size_t e = fmt.find('}', k);
      if (e == std::string::npos) throw RenderError("Single '{' encountered in format string");
      std::string field = fmt.substr(k + 1, e - k - 1);
      k = e;
      std::string spec, conv;
      size_t colon = field.find(':');
      if (colon != std::string::npos) {
        spec = field.substr(colon + 1);
        field = field.substr(0, colon);
      }
      size_t bang = field.find('!');
      if (bang != std::string::npos) {
        conv = field.substr(bang + 1);
        field = field.substr(0, bang);
      }
      Value v;
      if (field.empty()) {
        if (auto_idx >= args.positional.size())
          throw RenderError("Replacement index " + std::to_string(auto_idx) + " out of range for positional args tuple");
        v = args.positional[auto_idx++];
      } else if (std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
        size_t idx = std::stoul(field);
        if (idx >= args.positional.size())
          throw RenderError("Replacement index " + field + " out of range for positional args tuple");
        v = args.positional[idx];
      } else {
        bool found = false;
        for (auto& [kk, vv] : args.keyword)
          if (kk == field) { v = vv; found = true; }
        if (!found) throw RenderError("'" + field + "'");
      }
      std::string text = conv == "r" ? v.repr() : v.to_str();
      if (!spec.empty()) {
        // [[fill]align][width]
        char fill = ' ', align = v.kind == Kind::String ? '<' : '>';
        size_t p = 0;
        if (spec.size() >= 2 && (spec[1] == '<' || spec[1] == '>' || spec[1] == '^')) {
          fill = spec[0];
          align = spec[1];
          p = 2;
        } else if (spec[0] == '<' || spec[0] == '>' || spec[0] == '^') {
          align = spec[0];
          p = 1;
        }
        std::string w = spec.substr(p);
        if (w.empty() || !std::all_of(w.begin(), w.end(), [](char d) { return d >= '0' && d <= '9'; }))
          throw RenderError("unsupported format specification '" + spec + "'");
        size_t width = std::stoul(w), len = utf8_length(text);
        if (len < width) {
          size_t pad = width - len;
          if (align == '<') text += std::string(pad, fill);
          else if (align == '>') text = std::string(pad, fill) + text;
          else text = std::string(pad / 2, fill) + text + std::string(pad - pad / 2, fill);
        }
      }
      out += text;
    } else if (c == '}') {
      if (k + 1 < fmt.size() && fmt[k + 1] == '}') ++k;
      else throw RenderError("Single '}' encountered in format string");
      out += '}';
    } else {
      out += c;
    }
  }
  return out;
}

Value string_method(Interpreter& in, const std::string& s, const std::string& name, CallArgs& a) {
  const Value none = Value::none();
  if (name == "strip") return Value::string(py_strip(s, a.get(0, "chars", none), true, true));
  if (name == "lstrip") return Value::string(py_strip(s, a.get(0, "chars", none), true, false));
  if (name == "rstrip") return Value::string(py_strip(s, a.get(0, "chars", none), false, true));
  if (name == "split" || name == "rsplit") {
    Value sep = a.get(0, "sep", none);
    int64_t maxsplit = as_int_arg(a.get(1, "maxsplit", Value::integer(-1)), "maxsplit");
    return Value::make_list(name == "split" ? py_split(s, sep, maxsplit) : py_rsplit(s, sep, maxsplit));
  }
  if (name == "startswith" || name == "endswith") {
    if (!a.has(0, "prefix")) throw RenderError(name + "() takes at least 1 argument (0 given)");
    std::string sub = s;
    if (a.has(1, "start")) {
      auto cps = utf8_decode(s);
      int64_t st = as_int_arg(a.get(1, "start"), "start");
      if (st < 0) st = std::max<int64_t>(0, st + static_cast<int64_t>(cps.size()));
      sub = utf8_encode(cps, static_cast<size_t>(std::min<int64_t>(st, static_cast<int64_t>(cps.size()))), cps.size());
    }
    return Value::boolean(affix_match(sub, a.get(0, "prefix"), name == "startswith"));
  }
  if (name == "replace") {
    if (a.positional.size() < 2) throw RenderError("replace expected at least 2 arguments");
    int64_t count = as_int_arg(a.get(2, "count", Value::integer(-1)), "count");
    return Value::string(py_replace(s, need_str(a.positional[0], "replace"), need_str(a.positional[1], "replace"), count));
  }
  if (name == "upper") return Value::string(str_upper(s));
  if (name == "lower" || name == "casefold") return Value::string(str_lower(s));
  if (name == "title") return Value::string(py_title(s));
  if (name == "capitalize") return Value::string(str_capitalize(s));
  if (name == "swapcase") {
    std::string out;
    for (uint32_t c : utf8_decode(s)) utf8_append(out, cp_is_upper(c) ? cp_lower(c) : cp_upper(c));
    return Value::string(out);
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    const std::string& sub = need_str(a.get(0, "sub"), name.c_str());
    size_t f = (name[0] == 'r') ? s.rfind(sub) : s.find(sub);
    if (f == std::string::npos) {
      if (name == "index" || name == "rindex") throw RenderError("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(cp_index_of_byte(s, f));
  }
  if (name == "count") {
    const std::string& sub = need_str(a.get(0, "sub"), "count");
    if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_length(s)) + 1);
    int64_t n = 0;
    for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
    return Value::integer(n);
  }
  if (name == "join") {
    List items = iterate(a.get(0, "iterable"));
    std::string out;
    for (size_t k = 0; k < items.size(); ++k) {
      if (items[k].kind != Kind::String)
        throw RenderError("sequence item " + std::to_string(k) + ": expected str instance, " +
                          items[k].type_name() + " found");
      if (k) out += s;
      out += items[k].str();
    }
    return Value::string(out);
  }
  if (name == "format") return Value::string(py_format(in, s, a));
  if (name == "splitlines") {
    List out;
    for (auto& l : splitlines(s, a.get(0, "keepends", Value::boolean(false)).truthy())) out.push_back(Value::string(l));
    return Value::make_list(std::move(out));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    const std::string& p = need_str(a.get(0, "prefix"), name.c_str());
    if (name == "removeprefix" && s.compare(0, p.size(), p) == 0 && p.size() <= s.size())
      return Value::string(s.substr(p.size()));
    if (name == "removesuffix" && p.size() <= s.size() && !p.empty() && s.compare(s.size() - p.size(), p.size(), p) == 0)
      return Value::string(s.substr(0, s.size() - p.size()));
    return Value::string(s);
  }
  if (name == "partition" || name == "rpartition") {
    const std::string& sep = need_str(a.get(0, "sep"), name.c_str());
    if (sep.empty()) throw RenderError("empty separator");
    size_t f = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (f == std::string::npos) {
      if (name == "partition")
        return Value::make_list({Value::string(s), Value::string(""), Value::string("")}, true);
      return Value::make_list({Value::string(""), Value::string(""), Value::string(s)}, true);
    }
    return Value::make_list({Value::string(s.substr(0, f)), Value::string(sep), Value::string(s.substr(f + sep.size()))},
                            true);
  }
  auto all_cps = [&](bool (*pred)(uint32_t)) {
    auto cps = utf8_decode(s);
    if (cps.empty()) return false;
    for (uint32_t c : cps)
      if (!pred(c)) return false;
    return true;
  };
  if (name == "isdigit" || name == "isdecimal" || name == "isnumeric") return Value::boolean(all_cps(cp_digit));
  if (name == "isalpha") return Value::boolean(all_cps(cp_alpha));
  if (name == "isalnum") return Value::boolean(all_cps([](uint32_t c) { return cp_alpha(c) || cp_digit(c); }));
  if (name == "isspace") return Value::boolean(all_cps(py_space));
  if (name == "islower" || name == "isupper") {
    bool any_cased = false, ok = true;
    for (uint32_t c : utf8_decode(s)) {
      if (cp_is_lower(c) || cp_is_upper(c)) any_cased = true;
      if (name == "islower" ? cp_is_upper(c) : cp_is_lower(c)) ok = false;
    }
    return Value::boolean(any_cased && ok);
  }
  if (name == "zfill" || name == "ljust" || name == "rjust" || name == "center") {
    int64_t width = as_int_arg(a.get(0, "width"), "width");
    std::string fill = name == "zfill" ? "0" : a.get(1, "fillchar", Value::string(" ")).to_str();
    int64_t len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return Value::string(s);
    int64_t pad = width - len;
    auto rep = [&](int64_t n) {
      std::string r;
      for (int64_t k = 0; k < n; ++k) r += fill;
      return r;
    };
    if (name == "ljust") return Value::string(s + rep(pad));
    if (name == "rjust") return Value::string(rep(pad) + s);
    if (name == "zfill") {
      if (!s.empty() && (s[0] == '-' || s[0] == '+')) return Value::string(s.substr(0, 1) + rep(pad) + s.substr(1));
      return Value::string(rep(pad) + s);
    }
    int64_t left = pad / 2 + (pad & width & 1);
    return Value::string(rep(left) + s + rep(pad - left));
  }
  throw RenderError("'str' object has no attribute '" + name + "'");
}

const char* const STRING_METHODS[] = {
    "strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith", "replace", "upper", "lower",
    "casefold", "title", "capitalize", "swapcase", "find", "rfind", "index", "rindex", "count", "join",
    "format", "splitlines", "removeprefix", "removesuffix", "partition", "rpartition", "isdigit", "isdecimal",
    "isnumeric", "isalpha", "isalnum", "isspace", "islower", "isupper", "zfill", "ljust", "rjust", "center"};
const char* const DICT_METHODS[] = {"get", "items", "keys", "values", "copy"};
const char* const DICT_UNSAFE[] = {"pop", "popitem", "setdefault", "update", "clear"};
const char* const LIST_METHODS[] = {"index", "count", "copy"};
const char* const LIST_UNSAFE[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"};

template <size_t N>
bool in_set(const char* const (&set)[N], std::string_view name) {
  for (const char* s : set)
    if (name == s) return true;
  return false;
}

Value dict_items(const Value& d) {
  List out;
  out.reserve(d.dict->items.size());
  for (auto& [k, v] : d.dict->items) out.push_back(Value::make_list({decode_key(k), v}, true));
  return Value::make_list(std::move(out));
}

Value bound_method(const Value& obj, const std::string& name) {
  return Value::function([obj, name](CallArgs& a, Interpreter& in) { return call_method(in, obj, name, a); });
}

Value unsafe_attr(const Value& obj, const std::string& name) {
  return Value::undefined("access to attribute '" + name + "' of '" + obj.type_name() + "' object is unsafe.");
}

Value missing_attr(const Value& obj, const std::string& name) {
  return Value::undefined(python_string_repr(obj.object_type_repr()) + " has no attribute " +
                          python_string_repr(name));
}

Value missing_item(const Value& obj, const Value& key) {
  if (key.kind == Kind::String) return missing_attr(obj, key.str());
  return Value::undefined(obj.object_type_repr() + " has no element " + key.repr());
}

}  // namespace

std::string percent_format(const std::string& fmt, const List& args) {
  std::string out;
  size_t idx = 0;
  for (size_t k = 0; k < fmt.size(); ++k) {
    if (fmt[k] != '%') {
      out += fmt[k];
      continue;
    }
    if (++k >= fmt.size()) throw RenderError("incomplete format");
    // %[flags][width][.precision]conversion
    std::string spec = "%";
    while (k < fmt.size() && std::strchr("-+ 0#", fmt[k])) spec += fmt[k++];
    while (k < fmt.size() && fmt[k] >= '0' && fmt[k] <= '9') spec += fmt[k++];
    if (k < fmt.size() && fmt[k] == '.') {
      spec += fmt[k++];
      while (k < fmt.size() && fmt[k] >= '0' && fmt[k] <= '9') spec += fmt[k++];
    }
    if (k >= fmt.size()) throw RenderError("incomplete format");
    char c = fmt[k];
    if (c == '%') {
      out += '%';
      continue;
    }
    if (idx >= args.size()) throw RenderError("not enough arguments for format string");
    const Value& v = args[idx++];
    char buf[512];
    if (c == 's' || c == 'r') {
      std::string text = c == 's' ? v.to_str() : v.repr();
      if (spec == "%") {
        out += text;
      } else {
        std::snprintf(buf, sizeof buf, (spec + "s").c_str(), text.c_str());
        out += buf;
      }
    } else if (c == 'd' || c == 'i' || c == 'x' || c == 'X' || c == 'o') {
      if (!v.is_number())
        throw RenderError(std::string("%") + c + " format: a real number is required, not " + v.type_name());
      long long n = v.kind == Kind::Float ? static_cast<long long>(v.f) : static_cast<long long>(v.i);
      std::snprintf(buf, sizeof buf, (spec + "ll" + (c == 'i' ? 'd' : c)).c_str(), n);
      out += buf;
    } else if (c == 'f' || c == 'F' || c == 'e' || c == 'E' || c == 'g' || c == 'G') {
      if (!v.is_number())
        throw RenderError(std::string("must be real number, not ") + v.type_name());
      std::snprintf(buf, sizeof buf, (spec + c).c_str(), v.kind == Kind::Float ? v.f : static_cast<double>(v.i));
      out += buf;
    } else {
      throw RenderError(std::string("unsupported format character '") + c + "'");
    }
  }
  if (idx < args.size()) throw RenderError("not all arguments converted during string formatting");
  return out;
}

bool has_method(const Value& obj, std::string_view name) {
  switch (obj.kind) {
    case Kind::String: return in_set(STRING_METHODS, name);
    case Kind::Dict: return !obj.is_namespace && in_set(DICT_METHODS, name);
    case Kind::List: return obj.is_plain_list() && in_set(LIST_METHODS, name);
    default: return false;
  }
}

Value call_method(Interpreter& in, const Value& obj, const std::string& name, CallArgs& a) {
  in.step();
  if (obj.kind == Kind::String) return string_method(in, obj.str(), name, a);
  if (obj.kind == Kind::Dict) {
    if (name == "get") {
      Value key = a.get(0, "key");
      if (key.kind != Kind::List && key.kind != Kind::Dict && key.kind != Kind::Undefined)
        if (const Value* v = obj.dict->find(encode_key(key))) return *v;
      return a.get(1, "default", Value::none());
    }
    if (name == "items") return Value::make_seq(*dict_items(obj).list, Seq::dict_items);
    if (name == "keys" || name == "values") {
      List out;
      for (auto& [k, v] : obj.dict->items) out.push_back(name == "keys" ? decode_key(k) : v);
      return Value::make_seq(std::move(out), name == "keys" ? Seq::dict_keys : Seq::dict_values);
    }
    if (name == "copy") {
      Value d = Value::make_dict();
      d.dict->items = obj.dict->items;
      return d;
    }
  }
  if (obj.kind == Kind::List) {
    if (name == "index") {
      Value x = a.get(0, "value");
      for (size_t k = 0; k < obj.list->size(); ++k)
        if (values_equal((*obj.list)[k], x)) return Value::integer(static_cast<int64_t>(k));
      throw RenderError(x.repr() + " is not in list");
    }
    if (name == "count") {
      Value x = a.get(0, "value");
      int64_t n = 0;
      for (auto& v : *obj.list) n += values_equal(v, x) ? 1 : 0;
      return Value::integer(n);
    }
    if (name == "copy") return Value::make_list(*obj.list, obj.is_tuple);
  }
  throw RenderError(python_string_repr(obj.object_type_repr()) + " has no attribute " + python_string_repr(name));
}

Value get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind) {
    case Kind::String:
      if (in_set(STRING_METHODS, name)) return bound_method(obj, name);
      break;
    case Kind::Dict:
      if (obj.is_namespace) {
        if (const Value* v = obj.dict->find(name)) return *v;
        break;
      }
      if (in_set(DICT_METHODS, name)) return bound_method(obj, name);
      if (in_set(DICT_UNSAFE, name)) return unsafe_attr(obj, name);
      if (const Value* v = obj.dict->find(name)) return *v;
      break;
    case Kind::List:
      if (!obj.is_plain_list()) break;
      if (in_set(LIST_METHODS, name)) return bound_method(obj, name);
      if (in_set(LIST_UNSAFE, name)) return unsafe_attr(obj, name);
      break;
    default: break;
  }
  return missing_attr(obj, name);
}

Value get_item(const Value& obj, const Value& key) {
  switch (obj.kind) {
    case Kind::List:
      if ((key.kind == Kind::Int || key.kind == Kind::Bool) && (obj.is_plain_list() || obj.seq == Seq::range)) {
        int64_t n = static_cast<int64_t>(obj.list->size());
        int64_t k = key.i < 0 ? key.i + n : key.i;
        if (k >= 0 && k < n) return (*obj.list)[static_cast<size_t>(k)];
        return missing_item(obj, key);
      }
      break;
    case Kind::String:
      if (key.kind == Kind::Int || key.kind == Kind::Bool) {
        auto cps = utf8_decode(obj.str());
        int64_t n = static_cast<int64_t>(cps.size());
        int64_t k = key.i < 0 ? key.i + n : key.i;
        if (k >= 0 && k < n) return Value::string(utf8_encode(cps, static_cast<size_t>(k), static_cast<size_t>(k) + 1));
        return missing_item(obj, key);
      }
      break;
    case Kind::Dict:
      if (!obj.is_namespace && key.kind != Kind::List && key.kind != Kind::Dict) {
        if (const Value* v = obj.dict->find(encode_key(key))) return *v;
      }
      break;
    default: break;
  }
  if (key.kind == Kind::String) {
    if (obj.kind == Kind::Dict && obj.is_namespace) return missing_item(obj, key);
    return get_attr(obj, key.str());
  }
  return missing_item(obj, key);
}

List iterate(const Value& v) {
  switch (v.kind) {
    case Kind::List: return *v.list;
    case Kind::Dict: {
      if (v.is_namespace) throw RenderError("'Namespace' object is not iterable");
      List out;
      out.reserve(v.dict->items.size());
      for (auto& kv : v.dict->items) out.push_back(decode_key(kv.first));
      return out;
    }
    case Kind::String: {
      List out;
      for (uint32_t c : utf8_decode(v.str())) {
        std::string s;
        utf8_append(s, c);
        out.push_back(Value::string(std::move(s)));
      }
      return out;
    }
    case Kind::Undefined: return {};
    default: throw RenderError(std::string("'") + v.type_name() + "' object is not iterable");
  }
}

int64_t length_of(const Value& v) {
  switch (v.kind) {
    case Kind::String: return static_cast<int64_t>(utf8_length(v.str()));
    case Kind::List:
      if (v.is_lazy()) throw RenderError(std::string("object of type '") + v.type_name() + "' has no len()");
      return static_cast<int64_t>(v.list->size());
    case Kind::Dict: return static_cast<int64_t>(v.dict->items.size());
    case Kind::Undefined: return 0;
    default: throw RenderError(std::string("object of type '") + v.type_name() + "' has no len()");
  }
}

namespace {

// ---------- filters ----------

// jinja2's make_attrgetter: "a.b.0" walks keys/attributes, integer parts index.
Value attr_path(const Value& item, const std::string& path) {
  Value cur = item;
  size_t pos = 0;
  while (true) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (cur.kind == Kind::Undefined) throw RenderError(cur.undefined_message());
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = numeric ? get_item(cur, Value::integer(std::stoll(part))) : get_item(cur, Value::string(part));
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return cur;
}

// markupsafe keeps Markup through strip/upper/lower/capitalize.
Value keep_safe(const Value& from, std::string s) {
  Value v = Value::string(std::move(s));
  v.is_safe = from.kind == Kind::String && from.is_safe;
  return v;
}

Value f_tojson(Interpreter&, const Value& x, CallArgs& a) {
  bool ensure_ascii = a.get(0, "ensure_ascii", Value::boolean(false)).truthy();
  Value indent = a.get(1, "indent", Value::none());
  Value seps = a.get(2, "separators", Value::none());
  bool sort_keys = a.get(3, "sort_keys", Value::boolean(false)).truthy();
  std::string ind;
  const std::string* indp = nullptr;
  if (indent.kind == Kind::Int || indent.kind == Kind::Bool) {
    ind = std::string(static_cast<size_t>(std::max<int64_t>(0, indent.i)), ' ');
    indp = &ind;
  } else if (indent.kind == Kind::String) {
    ind = indent.str();
    indp = &ind;
  } else if (!is_none_or_undef(indent)) {
    throw RenderError(std::string("tojson: indent must be an integer or a string, not ") + indent.type_name());
  }
  std::string item_sep = indp ? "," : ", ", key_sep = ": ";
  if (seps.kind == Kind::List && seps.list->size() == 2) {
    item_sep = (*seps.list)[0].to_str();
    key_sep = (*seps.list)[1].to_str();
  }
  return Value::string(to_json(x, indp, item_sep, key_sep, sort_keys, ensure_ascii));
}

Value f_length(Interpreter&, const Value& x, CallArgs&) { return Value::integer(length_of(x)); }

Value f_trim(Interpreter&, const Value& x, CallArgs& a) {
  return keep_safe(x, py_strip(x.to_str(), a.get(0, "chars", Value::none()), true, true));
}

Value f_default(Interpreter&, const Value& x, CallArgs& a) {
  Value dflt = a.get(0, "default_value", Value::string(""));
  bool boolean = a.get(1, "boolean", Value::boolean(false)).truthy();
  if (x.kind == Kind::Undefined || (boolean && !x.truthy())) return dflt;
  return x;
}

Value f_string(Interpreter&, const Value& x, CallArgs&) {
  return x.kind == Kind::String ? x : Value::string(x.to_str());
}

Value f_join(Interpreter&, const Value& x, CallArgs& a) {
  std::string sep = a.get(0, "d", Value::string("")).to_str();
  Value attr = a.get(1, "attribute", Value::none());
  List items = iterate(x);
  std::string out;
  for (size_t k = 0; k < items.size(); ++k) {
    if (k) out += sep;
    const Value& v = items[k];
    out += is_none_or_undef(attr) ? v.to_str() : attr_path(v, attr.to_str()).to_str();
  }
  return Value::string(std::move(out));
}

Value f_upper(Interpreter&, const Value& x, CallArgs&) { return keep_safe(x, str_upper(x.to_str())); }
Value f_lower(Interpreter&, const Value& x, CallArgs&) { return keep_safe(x, str_lower(x.to_str())); }
Value f_capitalize(Interpreter&, const Value& x, CallArgs&) { return keep_safe(x, str_capitalize(x.to_str())); }
Value f_title(Interpreter&, const Value& x, CallArgs&) { return Value::string(jinja_title(x.to_str())); }

Value f_items(Interpreter&, const Value& x, CallArgs&) {
  if (x.kind == Kind::Undefined) return Value::make_seq({}, Seq::generator);
  if (x.kind != Kind::Dict || x.is_namespace) throw RenderError("Can only get item pairs from a mapping.");
  return Value::make_seq(*dict_items(x).list, Seq::generator);
}

Value f_safe(Interpreter&, const Value& x, CallArgs&) {
  if (x.kind == Kind::String && x.is_safe) return x;
  return Value::markup(x.to_str());
}

Value f_escape(Interpreter&, const Value& x, CallArgs&) {
  if (x.kind == Kind::String && x.is_safe) return x;  // already Markup: escape() leaves it alone
  return Value::markup(html_escape(x.to_str()));
}

Value f_forceescape(Interpreter&, const Value& x, CallArgs&) { return Value::markup(html_escape(x.to_str())); }


Value f_list(Interpreter&, const Value& x, CallArgs&) { return Value::make_list(iterate(x)); }

Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.kind == Kind::String) return Value::string(str_lower(v.str()));
  return v;
}

void sort_values(List& items, bool reverse, const std::function<Value(const Value&)>& key) {
  std::vector<std::pair<Value, size_t>> keyed;
  keyed.reserve(items.size());
  for (size_t k = 0; k < items.size(); ++k) keyed.emplace_back(key(items[k]), k);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    int c = values_compare(a.first, b.first, "<");
    return reverse ? c > 0 : c < 0;
  });
  List out;
  out.reserve(items.size());
  for (auto& kv : keyed) out.push_back(items[kv.second]);
  items = std::move(out);
}

Value f_dictsort(Interpreter&, const Value& x, CallArgs& a) {
  bool cs = a.get(0, "case_sensitive", Value::boolean(false)).truthy();
  std::string by = a.get(1, "by", Value::string("key")).to_str();
  bool reverse = a.get(2, "reverse", Value::boolean(false)).truthy();
  if (x.kind != Kind::Dict) throw RenderError("dictsort: value is not a mapping");
  List items = dict_items(x).list ? *dict_items(x).list : List{};
  size_t pos = by == "key" ? 0 : (by == "value" ? 1 : 2);
  if (pos == 2) throw RenderError("You can only sort by either \"key\" or \"value\"");
  sort_values(items, reverse, [&](const Value& it) { return sort_key((*it.list)[pos], cs); });
  return Value::make_list(std::move(items));
}

Value f_sort(Interpreter&, const Value& x, CallArgs& a) {
  bool reverse = a.get(0, "reverse", Value::boolean(false)).truthy();
  bool cs = a.get(1, "case_sensitive", Value::boolean(false)).truthy();
  Value attr = a.get(2, "attribute", Value::none());
  List items = iterate(x);
  sort_values(items, reverse, [&](const Value& it) {
    return sort_key(is_none_or_undef(attr) ? it : attr_path(it, attr.to_str()), cs);
  });
  return Value::make_list(std::move(items));
}

Value f_unique(Interpreter&, const Value& x, CallArgs& a) {
  bool cs = a.get(0, "case_sensitive", Value::boolean(false)).truthy();
  Value attr = a.get(1, "attribute", Value::none());
  List out, seen;
  for (auto& it : iterate(x)) {
    Value k = sort_key(is_none_or_undef(attr) ? it : attr_path(it, attr.to_str()), cs);
    bool dup = false;
    for (auto& s : seen) dup = dup || values_equal(s, k);
    if (!dup) {
      seen.push_back(k);
      out.push_back(it);
    }
  }
  return Value::make_seq(std::move(out), Seq::generator);
}

Value min_max(const Value& x, CallArgs& a, bool want_max) {
  bool cs = a.get(0, "case_sensitive", Value::boolean(false)).truthy();
  Value attr = a.get(1, "attribute", Value::none());
  List items = iterate(x);
  if (items.empty()) return Value::undefined(std::string("No aggregated item, sequence was empty."));
  size_t best = 0;
  auto key = [&](const Value& it) { return sort_key(is_none_or_undef(attr) ? it : attr_path(it, attr.to_str()), cs); };
  Value bk = key(items[0]);
  for (size_t k = 1; k < items.size(); ++k) {
    Value kk = key(items[k]);
    int c = values_compare(kk, bk, want_max ? ">" : "<");
    if (want_max ? c > 0 : c < 0) {
      best = k;
      bk = kk;
    }
  }
  return items[best];
}
Value f_min(Interpreter&, const Value& x, CallArgs& a) { return min_max(x, a, false); }
Value f_max(Interpreter&, const Value& x, CallArgs& a) { return min_max(x, a, true); }

// select/reject/selectattr/rejectattr share jinja2's prepare_select_or_reject.
Value select_impl(Interpreter& in, const Value& x, CallArgs& a, bool by_attr, bool keep_when) {
  size_t first = 0;
  std::string attr;
  if (by_attr) {
    if (a.positional.empty()) throw RenderError("Missing parameter for attribute name");
    attr = a.positional[0].to_str();
    first = 1;
  }
  std::string test;
  CallArgs targs;
  targs.line = a.line;
  if (a.positional.size() > first) {
    test = a.positional[first].to_str();
    for (size_t k = first + 1; k < a.positional.size(); ++k) targs.positional.push_back(a.positional[k]);
    targs.keyword = a.keyword;
  }
  List out;
  if (!x.truthy()) return Value::make_seq({}, Seq::generator);  // jinja2: `if value:` guards the loop
  for (auto& it : iterate(x)) {
    in.step();
    Value v = by_attr ? attr_path(it, attr) : it;
    bool r;
    if (test.empty()) {
      r = v.truthy();
    } else {
      CallArgs copy = targs;
      r = in.apply_test(test, v, copy, a.line);
    }
    if (r == keep_when) out.push_back(it);
  }
  return Value::make_seq(std::move(out), Seq::generator);
}
Value f_select(Interpreter& in, const Value& x, CallArgs& a) { return select_impl(in, x, a, false, true); }
Value f_reject(Interpreter& in, const Value& x, CallArgs& a) { return select_impl(in, x, a, false, false); }
Value f_selectattr(Interpreter& in, const Value& x, CallArgs& a) { return select_impl(in, x, a, true, true); }
Value f_rejectattr(Interpreter& in, const Value& x, CallArgs& a) { return select_impl(in, x, a, true, false); }

Value f_map(Interpreter& in, const Value& x, CallArgs& a) {
  List out;
  if (!x.truthy()) return Value::make_seq({}, Seq::generator);  // jinja2: `if value:` guards the loop
  if (a.positional.empty()) {
    Value attr = a.get(99, "attribute", Value::none());
    if (is_none_or_undef(attr)) throw RenderError("map requires a filter name or attribute=");
    bool has_default = a.has(99, "default");
    Value dflt = a.get(99, "default");
    for (auto& it : iterate(x)) {
      in.step();
      Value v = attr_path(it, attr.to_str());
      if (v.kind == Kind::Undefined && has_default) v = dflt;
      out.push_back(v);
    }
    return Value::make_seq(std::move(out), Seq::generator);
  }
  std::string filter = a.positional[0].to_str();
  CallArgs fargs;
  fargs.line = a.line;
  for (size_t k = 1; k < a.positional.size(); ++k) fargs.positional.push_back(a.positional[k]);
  fargs.keyword = a.keyword;
  for (auto& it : iterate(x)) {
    in.step();
    CallArgs copy = fargs;
    out.push_back(in.apply_filter(filter, it, copy, a.line));
  }
  return Value::make_seq(std::move(out), Seq::generator);
}

Value f_indent(Interpreter&, const Value& x, CallArgs& a) {
  Value w = a.get(0, "width", Value::integer(4));
  bool first = a.get(1, "first", Value::boolean(false)).truthy();
  bool blank = a.get(2, "blank", Value::boolean(false)).truthy();
  std::string ind = w.kind == Kind::String ? w.str() : std::string(static_cast<size_t>(std::max<int64_t>(0, as_int_arg(w, "width"))), ' ');
  std::string s = x.to_str() + "\n";
  std::vector<std::string> lines = splitlines(s, false);
  std::string rv;
  if (blank) {
    for (size_t k = 0; k < lines.size(); ++k) {
      if (k) rv += "\n" + ind;
      rv += lines[k];
    }
  } else {
    if (!lines.empty()) rv = lines[0];
    for (size_t k = 1; k < lines.size(); ++k) {
      rv += "\n";
      if (!lines[k].empty()) rv += ind;
      rv += lines[k];
    }
  }
  if (first) rv = ind + rv;
  return Value::string(std::move(rv));
}

Value f_replace(Interpreter&, const Value& x, CallArgs& a) {
  Value cnt = a.get(2, "count", Value::none());
  int64_t count = is_none_or_undef(cnt) ? -1 : as_int_arg(cnt, "count");
  return Value::string(py_replace(x.to_str(), a.get(0, "old").to_str(), a.get(1, "new").to_str(), count));
}

std::optional<int64_t> parse_py_int(std::string s, int base) {
  std::string t;
  for (char c : s)
    if (c != '_') t += c;
  size_t b = 0, e = t.size();
  while (b < e && py_space(static_cast<unsigned char>(t[b]))) ++b;
  while (e > b && py_space(static_cast<unsigned char>(t[e - 1]))) --e;
  t = t.substr(b, e - b);
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(t.c_str(), &end, base);
  if (errno || *end) return std::nullopt;
  return v;
}

Value f_int(Interpreter&, const Value& x, CallArgs& a) {
  Value dflt = a.get(0, "default", Value::integer(0));
  int base = static_cast<int>(as_int_arg(a.get(1, "base", Value::integer(10)), "base"));
  switch (x.kind) {
    case Kind::Int:
    case Kind::Bool: return Value::integer(x.i);
    case Kind::Float: return std::isfinite(x.f) ? Value::integer(static_cast<int64_t>(x.f)) : dflt;
    case Kind::String: {
      if (auto v = parse_py_int(x.str(), base)) return Value::integer(*v);
      char* end = nullptr;
      std::string s = x.str();
      double d = std::strtod(s.c_str(), &end);
      if (end != s.c_str() && *end == 0 && std::isfinite(d)) return Value::integer(static_cast<int64_t>(d));
      return dflt;
    }
    default: return dflt;
  }
}

Value f_float(Interpreter&, const Value& x, CallArgs& a) {
  Value dflt = a.get(0, "default", Value::number(0.0));
  switch (x.kind) {
    case Kind::Int:
    case Kind::Bool: return Value::number(static_cast<double>(x.i));
    case Kind::Float: return x;
    case Kind::String: {
      std::string s = x.str();
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      if (end != s.c_str() && *end == 0) return Value::number(d);
      return dflt;
    }
    default: return dflt;
  }
}

Value f_first(Interpreter&, const Value& x, CallArgs&) {
  List items = iterate(x);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}
Value f_last(Interpreter&, const Value& x, CallArgs&) {
  if (x.is_lazy()) throw RenderError(std::string("'") + x.type_name() + "' object is not reversible");
  List items = iterate(x);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}
Value f_reverse(Interpreter&, const Value& x, CallArgs&) {
  if (x.kind == Kind::String) {
    auto cps = utf8_decode(x.str());
    std::reverse(cps.begin(), cps.end());
    return Value::string(utf8_encode(cps, 0, cps.size()));
  }
  List items = iterate(x);
  std::reverse(items.begin(), items.end());
  if (x.is_lazy()) return Value::make_list(std::move(items));  // jinja2 falls back to list(value)
  if (x.kind == Kind::Dict) throw RenderError("argument to reversed() must be a sequence");
  return Value::make_seq(std::move(items), x.seq == Seq::list ? Seq::reverse_iterator : Seq::generator);
}
Value f_abs(Interpreter&, const Value& x, CallArgs&) {
  if (x.kind == Kind::Int || x.kind == Kind::Bool) return Value::integer(x.i < 0 ? -x.i : x.i);
  if (x.kind == Kind::Float) return Value::number(std::fabs(x.f));
  throw RenderError(std::string("bad operand type for abs(): '") + x.type_name() + "'");
}
Value f_round(Interpreter&, const Value& x, CallArgs& a) {
  int64_t precision = as_int_arg(a.get(0, "precision", Value::integer(0)), "precision");
  std::string method = a.get(1, "method", Value::string("common")).to_str();
  double v = x.kind == Kind::Float ? x.f : static_cast<double>(x.i);
  double m = std::pow(10.0, static_cast<double>(precision));
  double r;
  if (method == "common") r = std::nearbyint(v * m) / m;  // Python's round(): half to even
  else if (method == "ceil") r = std::ceil(v * m) / m;
  else if (method == "floor") r = std::floor(v * m) / m;
  else throw RenderError("method must be common, ceil or floor");
  return Value::number(r);
}
Value f_sum(Interpreter&, const Value& x, CallArgs& a) {
  Value attr = a.get(0, "attribute", Value::none());
  Value acc = a.get(1, "start", Value::integer(0));
  for (auto& it : iterate(x)) {
    Value v = is_none_or_undef(attr) ? it : attr_path(it, attr.to_str());
    if (!v.is_number() || !acc.is_number()) throw RenderError("sum: items must be numbers");
    if (acc.kind == Kind::Float || v.kind == Kind::Float)
      acc = Value::number((acc.kind == Kind::Float ? acc.f : static_cast<double>(acc.i)) +
                          (v.kind == Kind::Float ? v.f : static_cast<double>(v.i)));
    else
      acc = Value::integer(acc.i + v.i);
  }
  return acc;
}
Value f_wordcount(Interpreter&, const Value& x, CallArgs&) {
  int64_t n = 0;
  bool in_word = false;
  for (uint32_t c : utf8_decode(x.to_str())) {
    bool w = cp_alpha(c) || cp_digit(c) || c == '_' || c >= 0x80;
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value::integer(n);
}
Value f_attr(Interpreter&, const Value& x, CallArgs& a) { return get_attr(x, a.get(0, "name").to_str()); }
Value f_batch(Interpreter&, const Value& x, CallArgs& a) {
  int64_t n = as_int_arg(a.get(0, "linecount"), "linecount");
  if (n <= 0) throw RenderError("batch size must be positive");
  bool fill = a.has(1, "fill_with");
  Value fw = a.get(1, "fill_with");
  List out, cur;
  for (auto& it : iterate(x)) {
    cur.push_back(it);
    if (static_cast<int64_t>(cur.size()) == n) {
      out.push_back(Value::make_list(std::move(cur)));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (fill)
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(fw);
    out.push_back(Value::make_list(std::move(cur)));
  }
  return Value::make_seq(std::move(out), Seq::generator);
}
Value f_center(Interpreter& in, const Value& x, CallArgs& a) {
  CallArgs ca;
  ca.positional.push_back(a.get(0, "width", Value::integer(80)));
  return string_method(in, x.to_str(), "center", ca);
}
Value f_format(Interpreter&, const Value& x, CallArgs& a) {
  return Value::string(percent_format(x.to_str(), a.positional));
}

// ---------- tests ----------

bool t_defined(Interpreter&, const Value& x, CallArgs&) { return x.kind != Kind::Undefined; }
bool t_undefined(Interpreter&, const Value& x, CallArgs&) { return x.kind == Kind::Undefined; }
bool t_none(Interpreter&, const Value& x, CallArgs&) { return x.kind == Kind::None; }
bool t_string(Interpreter&, const Value& x, CallArgs&) { return x.kind == Kind::String; }
bool t_mapping(Interpreter&, const Value& x, CallArgs&) { return x.kind == Kind::Dict && !x.is_namespace; }
bool t_iterable(Interpreter&, const Value& x, CallArgs&) {
  return x.kind == Kind::String || x.kind == Kind::List || (x.kind == Kind::Dict && !x.is_namespace) ||
         x.kind == Kind::Undefined;
}
bool t_sequence(Interpreter& in, const Value& x, CallArgs& a) {
  if (x.kind == Kind::List) return x.is_plain_list() || x.seq == Seq::range;
  return t_iterable(in, x, a);
}
bool t_number(Interpreter&, const Value& x, CallArgs&) { return x.is_number(); }
bool t_integer(Interpreter&, const Value& x, CallArgs&) { return x.kind == Kind::Int; }
bool t_float(Interpreter&, const Value& x, CallArgs&) { return x.kind == Kind::Float; }
bool t_boolean(Interpreter&, const Value& x, CallArgs&) { return x.kind == Kind::Bool; }
bool t_true(Interpreter&, const Value& x, CallArgs&) { return x.kind == Kind::Bool && x.b; }
bool t_false(Interpreter&, const Value& x, CallArgs&) { return x.kind == Kind::Bool && !x.b; }
bool t_callable(Interpreter&, const Value& x, CallArgs&) { return x.kind == Kind::Callable; }
bool t_odd(Interpreter&, const Value& x, CallArgs&) { return (as_int_arg(x, "odd") % 2 + 2) % 2 == 1; }
bool t_even(Interpreter&, const Value& x, CallArgs&) { return as_int_arg(x, "even") % 2 == 0; }
bool t_divisibleby(Interpreter&, const Value& x, CallArgs& a) {
  int64_t n = as_int_arg(a.get(0, "num"), "num");
  if (n == 0) throw RenderError("integer division or modulo by zero");
  return as_int_arg(x, "value") % n == 0;
}
bool t_eq(Interpreter&, const Value& x, CallArgs& a) { return values_equal(x, a.get(0, "other")); }
bool t_ne(Interpreter&, const Value& x, CallArgs& a) { return !values_equal(x, a.get(0, "other")); }
bool t_lt(Interpreter&, const Value& x, CallArgs& a) { return values_compare(x, a.get(0, "other"), "<") < 0; }
bool t_le(Interpreter&, const Value& x, CallArgs& a) { return values_compare(x, a.get(0, "other"), "<=") <= 0; }
bool t_gt(Interpreter&, const Value& x, CallArgs& a) { return values_compare(x, a.get(0, "other"), ">") > 0; }
bool t_ge(Interpreter&, const Value& x, CallArgs& a) { return values_compare(x, a.get(0, "other"), ">=") >= 0; }
bool t_in(Interpreter&, const Value& x, CallArgs& a) {
  Value seq = a.get(0, "seq");
  if (seq.kind == Kind::String) return x.kind == Kind::String && seq.str().find(x.str()) != std::string::npos;
  if (seq.kind == Kind::Dict)
    return x.kind != Kind::List && x.kind != Kind::Dict && x.kind != Kind::Undefined && seq.dict->find(encode_key(x));
  for (auto& v : iterate(seq))
    if (values_equal(v, x)) return true;
  return false;
}
bool t_lower(Interpreter&, const Value& x, CallArgs&) {
  std::string s = x.to_str();
  return str_lower(s) == s && str_upper(s) != s;
}
bool t_upper(Interpreter&, const Value& x, CallArgs&) {
  std::string s = x.to_str();
  return str_upper(s) == s && str_lower(s) != s;
}
bool t_sameas(Interpreter&, const Value& x, CallArgs& a) {
  Value o = a.get(0, "other");
  if (x.kind != o.kind) return false;
  switch (x.kind) {
    case Kind::None:
    case Kind::Undefined: return true;
    case Kind::Bool: return x.b == o.b;
    case Kind::Int: return x.i == o.i;
    case Kind::List: return x.list == o.list;
    case Kind::Dict: return x.dict == o.dict;
    case Kind::String: return x.s == o.s || *x.s == *o.s;
    default: return false;
  }
}
bool t_escaped(Interpreter&, const Value&, CallArgs&) { return false; }

}  // namespace

FilterFn find_filter(std::string_view name) {
  static const std::unordered_map<std::string_view, FilterFn> filters = {
      {"tojson", f_tojson},       {"length", f_length},         {"count", f_length},
      {"trim", f_trim},           {"default", f_default},       {"d", f_default},
      {"string", f_string},       {"join", f_join},             {"upper", f_upper},
      {"lower", f_lower},         {"capitalize", f_capitalize}, {"title", f_title},
      {"items", f_items},         {"safe", f_safe},             {"escape", f_escape},
      {"e", f_escape},            {"forceescape", f_forceescape},    {"dictsort", f_dictsort},
      {"list", f_list},           {"sort", f_sort},             {"unique", f_unique},
      {"min", f_min},             {"max", f_max},               {"select", f_select},
      {"reject", f_reject},       {"selectattr", f_selectattr}, {"rejectattr", f_rejectattr},
      {"map", f_map},             {"indent", f_indent},         {"replace", f_replace},
      {"int", f_int},             {"float", f_float},           {"first", f_first},
      {"last", f_last},           {"reverse", f_reverse},       {"abs", f_abs},
      {"round", f_round},         {"sum", f_sum},               {"wordcount", f_wordcount},
      {"attr", f_attr},           {"batch", f_batch},           {"center", f_center},
      {"format", f_format},
  };
  auto it = filters.find(name);
  return it == filters.end() ? nullptr : it->second;
}

TestFn find_test(std::string_view name) {
  static const std::unordered_map<std::string_view, TestFn> tests = {
      {"defined", t_defined},     {"undefined", t_undefined}, {"none", t_none},
      {"string", t_string},       {"mapping", t_mapping},     {"iterable", t_iterable},
      {"sequence", t_sequence},   {"number", t_number},       {"integer", t_integer},
      {"float", t_float},         {"boolean", t_boolean},     {"true", t_true},
      {"false", t_false},         {"callable", t_callable},   {"odd", t_odd},
      {"even", t_even},           {"divisibleby", t_divisibleby}, {"eq", t_eq},
      {"equalto", t_eq},          {"==", t_eq},               {"ne", t_ne},
      {"!=", t_ne},               {"lt", t_lt},               {"lessthan", t_lt},
      {"<", t_lt},                {"le", t_le},               {"<=", t_le},
      {"gt", t_gt},               {"greaterthan", t_gt},      {">", t_gt},
      {"ge", t_ge},               {">=", t_ge},               {"in", t_in},
      {"lower", t_lower},         {"upper", t_upper},         {"sameas", t_sameas},
      {"escaped", t_escaped},
  };
  auto it = tests.find(name);
  return it == tests.end() ? nullptr : it->second;
}

void install_globals(Frame& root) {
  root.set("range", Value::function([](CallArgs& a, Interpreter& in) -> Value {
             int64_t start = 0, stop, step = 1;
             if (a.positional.empty()) throw RenderError("range expected at least 1 argument, got 0");
             if (a.positional.size() == 1) {
               stop = as_int_arg(a.positional[0], "range");
             } else {
               start = as_int_arg(a.positional[0], "range");
               stop = as_int_arg(a.positional[1], "range");
               if (a.positional.size() > 2) step = as_int_arg(a.positional[2], "range");
             }
             if (step == 0) throw RenderError("range() arg 3 must not be zero");
             List out;
             for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
               if (out.size() >= 100000) throw RenderError("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
               in.step();
               out.push_back(Value::integer(k));
             }
             Value r = Value::make_seq(std::move(out), Seq::range);
             r.i = stop;
             r.f = static_cast<double>(step);
             return r;
           }));
  root.set("dict", Value::function([](CallArgs& a, Interpreter&) -> Value {
             Value d = Value::make_dict();
             if (!a.positional.empty() && a.positional[0].kind == Kind::Dict) d.dict->items = a.positional[0].dict->items;
             for (auto& [k, v] : a.keyword) d.dict->set(k, v);
             return d;
           }));
  root.set("namespace", Value::function([](CallArgs& a, Interpreter&) -> Value {
             Value d = Value::make_dict();
             d.is_namespace = true;
             if (!a.positional.empty() && a.positional[0].kind == Kind::Dict) d.dict->items = a.positional[0].dict->items;
             for (auto& [k, v] : a.keyword) d.dict->set(k, v);
             return d;
           }));
  root.set("raise_exception", Value::function([](CallArgs& a, Interpreter&) -> Value {
             throw RenderError(a.get(0, "message", Value::string("")).to_str(), a.line);
           }));
  root.set("strftime_now", Value::function([](CallArgs& a, Interpreter& in) -> Value {
             std::string fmt = a.get(0, "format", Value::string("")).to_str();
             if (fmt.empty()) return Value::string("");
             std::tm t = in.now();
             std::string buf(fmt.size() * 8 + 64, '\0');
             size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &t);
             buf.resize(n);
             return Value::string(buf);
           }));
}

}  // namespace hearth::jinja
