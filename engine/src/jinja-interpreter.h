/* Interpreter of the chat-template language: walks a parsed Program and writes the rendered text.
 *
 * Scoping follows jinja2: a for-loop body gets a fresh scope on every iteration (a `set` inside it is
 * gone at the next one), `if` opens no scope, and a macro sees its arguments plus the template's
 * top-level names at call time. Everything a template can do is bounded (output size, loop steps,
 * macro depth), so a hostile template ends with a RenderError instead of running away.
 */
#pragma once

#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "jinja-ast.h"
#include "jinja-value.h"

namespace hearth::jinja {

// One scope of names. Lookups walk up the parent chain.
struct Frame {
  Frame* parent = nullptr;
  std::vector<std::pair<std::string, Value>> vars;

  const Value* find(std::string_view name) const;
  void set(std::string_view name, Value v);
};

struct Limits {
  size_t max_output_bytes = 64u << 20;  // rendered text
  uint64_t max_steps = 20'000'000;      // loop iterations + macro calls + filter items
  int max_call_depth = 100;             // nested macro calls
  int max_eval_depth = 1000;            // nested evaluation (expressions inside macros inside loops);
                                        // about 1 KiB of stack each in a Release build
};

class Interpreter {
 public:
  Interpreter(Limits limits, std::tm now) : m_limits(limits), m_now(now) {}

  // Renders `program` with `root` as the outermost scope (the globals and the caller's context).
  std::string render(const Program& program, Frame& root);

  Value eval(const Expr& e, Frame& f);
  // Calls a callable value (raises for undefined and non-callables).
  Value call(const Value& callee, CallArgs& args, int line);
  Value apply_filter(const std::string& name, const Value& input, CallArgs& args, int line);
  bool apply_test(const std::string& name, const Value& input, CallArgs& args, int line);
  // Counts one unit of work; raises when the template runs past Limits::max_steps.
  void step(uint64_t n = 1);
  const std::tm& now() const { return m_now; }

 private:
  enum class Flow { Normal, Break, Continue };
  Flow exec(const Body& body, Frame& f, std::string& out);
  Flow exec_for(const Stmt& s, Frame& f, std::string& out);
  void exec_set(const Stmt& s, Frame& f);
  Value make_macro(const Stmt& s, Frame& defining);
  Value eval_binary(const Expr& e, Frame& f);
  Value eval_compare(const Expr& e, Frame& f);
  Value eval_call(const Expr& e, Frame& f);
  CallArgs eval_args(const Expr& e, Frame& f, size_t first);
  void append(std::string& out, std::string_view s);

  Limits m_limits;
  std::tm m_now;
  Frame* m_root = nullptr;
  uint64_t m_steps = 0;
  int m_depth = 0;       // macro calls in progress
  int m_eval_depth = 0;  // C++ recursion of eval/exec, bounded so no template can exhaust the stack
};

// Builtins (jinja-builtins.cpp): filters, tests, methods of str/dict/list, and the globals.
using FilterFn = Value (*)(Interpreter& in, const Value& input, CallArgs& args);
using TestFn = bool (*)(Interpreter& in, const Value& input, CallArgs& args);
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);
// `obj.name` as jinja2's sandboxed getattr: a safe method of str/dict/list first, then a dict key;
// an unsafe (mutating) method gives an undefined that raises SecurityError's message when used.
Value get_attr(const Value& obj, const std::string& name);
// `obj[key]` as jinja2's getitem: the element or key first, then a method named by a string key.
Value get_item(const Value& obj, const Value& key);
// Whether `name` is a safe method of obj's type, and calling it.
bool has_method(const Value& obj, std::string_view name);
Value call_method(Interpreter& in, const Value& obj, const std::string& name, CallArgs& args);
// Python's `fmt % args` for strings (%s %r %d %i %x %o %f %e %g with flags, width and precision).
std::string percent_format(const std::string& fmt, const List& args);
// Python iteration: list items, dict keys, string characters; undefined iterates as empty.
List iterate(const Value& v);
// Python len() where defined.
int64_t length_of(const Value& v);
// The globals transformers gives templates plus jinja2's: range, dict, namespace, raise_exception,
// strftime_now.
void install_globals(Frame& root);

}  // namespace hearth::jinja
