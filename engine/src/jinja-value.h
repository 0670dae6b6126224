/* Values of the Jinja interpreter behind chat templates (private to the engine).
 *
 * A Value mirrors the Python objects jinja2 handles in chat templates: Undefined, None, bool, int, float,
 * str, list/tuple, dict/namespace and callables. Lists and dicts are shared by reference (shared_ptr), as
 * in Python; the sandbox only lets templates mutate namespaces, so sharing is never observable otherwise.
 *
 * Non-obvious choice: dicts keep insertion order in a flat vector (Python dicts do, and chat messages
 * have a handful of keys), so `{{ message|tojson }}` and `for k, v in d.items()` print keys in the order
 * the caller gave them, exactly as json.loads + jinja2 would.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::jinja {

// An error raised while rendering (raise_exception, a type error, an undefined value used wrongly).
// `message` is what jinja2 would say; `line` is the template line (0 when unknown).
struct RenderError : std::runtime_error {
  RenderError(std::string message, int line = 0)
      : std::runtime_error(message), msg(std::move(message)), line(line) {}
  std::string msg;
  int line;
};

// A syntax error found while parsing.
struct SyntaxError : std::runtime_error {
  SyntaxError(std::string message, int line)
      : std::runtime_error(message), msg(std::move(message)), line(line) {}
  std::string msg;
  int line;
};

enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Callable };

// What Python type a Kind::List stands for. Filters such as map/select return generators and
// dict.items() returns a view: they iterate like lists but have no len() (generators), are always
// true (generators), cannot be indexed, and json.dumps rejects them. Templates trip over exactly that.
enum class Seq : uint8_t { list, tuple, generator, reverse_iterator, dict_items, dict_keys, dict_values, range };

struct Value;
struct Dict;
struct CallArgs;
class Interpreter;

using List = std::vector<Value>;
// A callable: builtin function, bound method, macro, loop.cycle.
using Function = std::function<Value(CallArgs& args, Interpreter& in)>;

struct Value {
  Kind kind = Kind::Undefined;
  bool is_tuple = false;      // List shown as (a, b)
  bool is_namespace = false;  // Dict created by namespace(): attribute assignment allowed
  bool is_safe = false;       // String is a markupsafe.Markup (|safe, |escape): `+` escapes the other side
  Seq seq = Seq::list;        // List: the Python type it stands for
  bool b = false;
  int64_t i = 0;  // Int, Bool; a Seq::range keeps its stop here (and its step in f) to print itself
  double f = 0;
  std::shared_ptr<const std::string> s;  // String; for Undefined: the message used when it is misused
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;
  std::shared_ptr<Function> fn;

  Value() = default;
  static Value undefined(std::string message);
  static Value none();
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value number(double v);
  static Value string(std::string v);
  static Value make_list(List v = {}, bool tuple = false);
  static Value make_seq(List v, Seq seq);  // a generator, view, range or reverse iterator
  static Value markup(std::string v);      // a Markup string
  static Value make_dict();
  static Value function(Function f);

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  // A list or tuple proper (indexable, sliceable, JSON-serialisable).
  bool is_plain_list() const { return kind == Kind::List && (seq == Seq::list || seq == Seq::tuple); }
  // A generator or iterator: no len(), always true, not indexable.
  bool is_lazy() const { return kind == Kind::List && (seq == Seq::generator || seq == Seq::reverse_iterator); }
  const std::string& str() const { return *s; }  // only for String
  const std::string& undefined_message() const;

  bool truthy() const;
  // Python's str(): what `{{ value }}` prints.
  std::string to_str() const;
  // Python's repr(): how the value prints inside a list or dict.
  std::string repr() const;
  // Python's type name, for error messages ("str", "int", "dict", ...).
  const char* type_name() const;
  // jinja2's object_type_repr, for undefined messages ("dict object", "None").
  std::string object_type_repr() const;

  static Value from_json(const nlohmann::ordered_json& j);
};

// Dict keys are strings; other hashable keys (ints, None, bools, floats: `{0: 1, 512: 2}`) are stored
// encoded behind a 0xff byte, which UTF-8 text never holds.
std::string encode_key(const Value& key);
Value decode_key(const std::string& key);

struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(std::string key, Value v);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  int line = 0;
  // The n-th positional argument or the keyword `name`, or `fallback` when neither is given.
  Value get(size_t n, std::string_view name, Value fallback = Value()) const;
  bool has(size_t n, std::string_view name) const;
};

// Python semantics used by the interpreter and the builtins.
bool values_equal(const Value& a, const Value& b);
// <0, 0, >0; throws RenderError with Python's message when the types do not order.
int values_compare(const Value& a, const Value& b, const char* op);
std::string python_float_repr(double v);
std::string python_string_repr(std::string_view s);
// json.dumps(v, ensure_ascii=False, indent=indent, separators=..., sort_keys=...). indent: nullptr when
// None. Throws RenderError for values JSON cannot hold (Undefined, callables).
std::string to_json(const Value& v, const std::string* indent, const std::string& item_sep,
                    const std::string& key_sep, bool sort_keys, bool ensure_ascii = false);

// markupsafe.escape of a plain string: & < > " ' as HTML entities.
std::string html_escape(std::string_view s);

// UTF-8 helpers: strings index by code point, as Python's do.
std::vector<uint32_t> utf8_decode(std::string_view s);
std::string utf8_encode(const std::vector<uint32_t>& cps, size_t begin, size_t end);
void utf8_append(std::string& out, uint32_t cp);
size_t utf8_length(std::string_view s);

}  // namespace hearth::jinja
