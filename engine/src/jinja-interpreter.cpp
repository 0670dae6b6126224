/* Interpreter of the chat-template language (see jinja-interpreter.h): statements, scopes, operators.
 *
 * Non-obvious choice: undefined values travel as ordinary Values carrying the message jinja2 would raise
 * ("'dict object' has no attribute 'x'"), and only raise where jinja2's Undefined raises (attribute or
 * item access, arithmetic, calls, ordering); printing, `~`, iteration, `default` and `is defined`
 * accept them, so templates that probe optional message fields behave as in Python.
 */
#include "jinja-interpreter.h"

#include <cmath>
#include <optional>

namespace hearth::jinja {

namespace {
// Counts one level of C++ recursion for its lifetime.
struct EvalDepth {
  int& depth;
  EvalDepth(int& d, int limit) : depth(d) {
    if (++depth > limit) {
      --depth;
      throw RenderError("template evaluation nested deeper than " + std::to_string(limit) + " levels");
    }
  }
  ~EvalDepth() { --depth; }
};
}  // namespace


const Value* Frame::find(std::string_view name) const {
  for (const Frame* f = this; f; f = f->parent)
    for (auto it = f->vars.rbegin(); it != f->vars.rend(); ++it)
      if (it->first == name) return &it->second;
  return nullptr;
}

void Frame::set(std::string_view name, Value v) {
  for (auto& kv : vars) {
    if (kv.first == name) {
      kv.second = std::move(v);
      return;
    }
  }
  vars.emplace_back(std::string(name), std::move(v));
}

void Interpreter::step(uint64_t n) {
  m_steps += n;
  if (m_steps > m_limits.max_steps)
    throw RenderError("template did too much work (more than " + std::to_string(m_limits.max_steps) +
                      " loop iterations and calls): an endless loop?");
}

void Interpreter::append(std::string& out, std::string_view s) {
  out.append(s);
  if (out.size() > m_limits.max_output_bytes)
    throw RenderError("rendered text is larger than the limit of " + std::to_string(m_limits.max_output_bytes) +
                      " bytes");
}

std::string Interpreter::render(const Program& program, Frame& root) {
  m_root = &root;
  m_steps = 0;
  m_depth = 0;
  m_eval_depth = 0;
  std::string out;
  exec(program.body, root, out);
  return out;
}

namespace {

[[noreturn]] void raise_undefined(const Value& v, int line) { throw RenderError(v.undefined_message(), line); }

void unpack_into(Frame& f, const std::vector<std::string>& names, const Value& v, int line) {
  List items = iterate(v);
  if (v.kind != Kind::List && v.kind != Kind::String && v.kind != Kind::Dict)
    throw RenderError(std::string("cannot unpack non-iterable ") + v.type_name() + " object", line);
  if (items.size() != names.size()) {
    if (items.size() > names.size())
      throw RenderError("too many values to unpack (expected " + std::to_string(names.size()) + ")", line);
    throw RenderError("not enough values to unpack (expected " + std::to_string(names.size()) + ", got " +
                          std::to_string(items.size()) + ")",
                      line);
  }
  for (size_t k = 0; k < names.size(); ++k) f.set(names[k], items[k]);
}

}  // namespace

Interpreter::Flow Interpreter::exec(const Body& body, Frame& f, std::string& out) {
  EvalDepth guard(m_eval_depth, m_limits.max_eval_depth);
  for (const StmtPtr& sp : body) {
    const Stmt& s = *sp;
    try {
      switch (s.type) {
        case StmtType::Text: append(out, s.text); break;
        case StmtType::Output: {
          Value v = eval(*s.expr, f);
          if (v.kind == Kind::String) append(out, v.str());
          else append(out, v.to_str());
          break;
        }
        case StmtType::If: {
          size_t k = 0;
          for (; k < s.conds.size(); ++k) {
            if (eval(*s.conds[k], f).truthy()) break;
          }
          if (k < s.bodies.size()) {
            Flow fl = exec(s.bodies[k], f, out);
            if (fl != Flow::Normal) return fl;
          }
          break;
        }
        case StmtType::For: {
          Flow fl = exec_for(s, f, out);
          if (fl != Flow::Normal) return fl;
          break;
        }
        case StmtType::Set: exec_set(s, f); break;
        case StmtType::SetBlock: {
          std::string text;
          Frame inner{&f, {}};
          exec(s.body, inner, text);
          Value v = Value::string(std::move(text));
          for (auto& flt : s.filters) {
            CallArgs args = eval_args(*flt, f, 1);
            v = apply_filter(flt->name, v, args, flt->line);
          }
          f.set(s.targets[0], std::move(v));
          break;
        }
        case StmtType::Macro: f.set(s.name, make_macro(s, f)); break;
        case StmtType::CallBlock: {
          const Stmt* sp2 = &s;
          Frame* here = &f;
          Value caller = Value::function([this, sp2, here](CallArgs& args, Interpreter&) -> Value {
            Frame cf{here, {}};
            for (size_t k = 0; k < sp2->targets.size(); ++k) {
              Value a = args.get(k, sp2->targets[k], Value::undefined("'" + sp2->targets[k] + "' is undefined"));
              if (!args.has(k, sp2->targets[k]) && sp2->defaults[k]) a = eval(*sp2->defaults[k], cf);
              cf.set(sp2->targets[k], a);
            }
            std::string text;
            exec(sp2->body, cf, text);
            return Value::string(std::move(text));
          });
          const Expr& call = *s.expr;
          Value callee = eval(*call.args[0], f);
          CallArgs args = eval_args(call, f, 1);
          args.keyword.emplace_back("caller", caller);
          Value r = this->call(callee, args, s.line);
          append(out, r.to_str());
          break;
        }
        case StmtType::FilterBlock: {
          std::string text;
          exec(s.body, f, text);
          Value v = Value::string(std::move(text));
          for (auto& flt : s.filters) {
            CallArgs args = eval_args(*flt, f, 1);
            v = apply_filter(flt->name, v, args, flt->line);
          }
          append(out, v.to_str());
          break;
        }
        case StmtType::Break: return Flow::Break;
        case StmtType::Continue: return Flow::Continue;
        case StmtType::With: {
          Frame inner{&f, {}};
          for (size_t k = 0; k < s.targets.size(); ++k) inner.set(s.targets[k], eval(*s.defaults[k], f));
          Flow fl = exec(s.body, inner, out);
          if (fl != Flow::Normal) return fl;
          break;
        }
        case StmtType::Generation: {
          Frame inner{&f, {}};
          exec(s.body, inner, out);
          break;
        }
      }
    } catch (RenderError& e) {
      if (e.line == 0) e.line = s.line;
      throw;
    }
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec_for(const Stmt& s, Frame& f, std::string& out) {
  Value seq = eval(*s.expr, f);
  if (seq.kind == Kind::None || seq.kind == Kind::Int || seq.kind == Kind::Float || seq.kind == Kind::Bool ||
      seq.kind == Kind::Callable)
    throw RenderError(std::string("'") + seq.type_name() + "' object is not iterable", s.line);
  List items = iterate(seq);
  if (s.cond) {
    List kept;
    for (auto& it : items) {
      step();
      Frame cf{&f, {}};
      if (s.target_tuple) unpack_into(cf, s.targets, it, s.line);
      else cf.set(s.targets[0], it);
      if (eval(*s.cond, cf).truthy()) kept.push_back(it);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    // break/continue inside the else block belong to an enclosing loop, as in jinja2.
    if (!s.else_body.empty()) {
      Frame inner{&f, {}};
      return exec(s.else_body, inner, out);
    }
    return Flow::Normal;
  }
  const int64_t n = static_cast<int64_t>(items.size());
  const List& its = items;
  for (int64_t k = 0; k < n; ++k) {
    step();
    // A fresh `loop` per iteration: a template may keep it in a variable.
    Value this_loop = Value::make_dict();
    auto& ld = *this_loop.dict;
    ld.items.reserve(12);
    ld.items.emplace_back("index", Value::integer(k + 1));
    ld.items.emplace_back("index0", Value::integer(k));
    ld.items.emplace_back("revindex", Value::integer(n - k));
    ld.items.emplace_back("revindex0", Value::integer(n - k - 1));
    ld.items.emplace_back("first", Value::boolean(k == 0));
    ld.items.emplace_back("last", Value::boolean(k == n - 1));
    ld.items.emplace_back("length", Value::integer(n));
    ld.items.emplace_back("depth", Value::integer(1));
    ld.items.emplace_back("depth0", Value::integer(0));
    ld.items.emplace_back("previtem", k > 0 ? its[static_cast<size_t>(k - 1)]
                                             : Value::undefined("there is no previous item"));
    ld.items.emplace_back("nextitem", k + 1 < n ? its[static_cast<size_t>(k + 1)]
                                                : Value::undefined("there is no next item"));
    int64_t idx = k;
    ld.items.emplace_back("cycle", Value::function([idx](CallArgs& a, Interpreter&) -> Value {
                            if (a.positional.empty()) throw RenderError("no items for cycling given");
                            return a.positional[static_cast<size_t>(idx) % a.positional.size()];
                          }));
    Frame cf{&f, {}};
    cf.vars.reserve(4);
    if (s.target_tuple) unpack_into(cf, s.targets, its[static_cast<size_t>(k)], s.line);
    else cf.set(s.targets[0], its[static_cast<size_t>(k)]);
    cf.set("loop", std::move(this_loop));
    Flow fl = exec(s.body, cf, out);
    if (fl == Flow::Break) break;
  }
  return Flow::Normal;
}

void Interpreter::exec_set(const Stmt& s, Frame& f) {
  Value v = eval(*s.expr, f);
  if (!s.target_attr.empty()) {
    const Value* ns = f.find(s.targets[0]);
    if (!ns || ns->kind != Kind::Dict || !ns->is_namespace)
      throw RenderError("cannot assign attribute on non-namespace object", s.line);
    ns->dict->set(s.target_attr, std::move(v));
    return;
  }
  if (s.target_tuple) {
    unpack_into(f, s.targets, v, s.line);
    return;
  }
  f.set(s.targets[0], std::move(v));
}

Value Interpreter::make_macro(const Stmt& s, Frame& defining) {
  (void)defining;
  const Stmt* sp = &s;
  return Value::function([this, sp](CallArgs& args, Interpreter&) -> Value {
    if (++m_depth > m_limits.max_call_depth) {
      --m_depth;
      throw RenderError("macro calls nested deeper than " + std::to_string(m_limits.max_call_depth) +
                        " (endless recursion?)");
    }
    step();
    struct DepthGuard {
      int& d;
      ~DepthGuard() { --d; }
    } guard{m_depth};
    Frame mf{m_root, {}};
    const size_t np = sp->targets.size();
    for (size_t k = 0; k < np; ++k) {
      const std::string& pname = sp->targets[k];
      if (args.has(k, pname)) mf.set(pname, args.get(k, pname));
      else if (sp->defaults[k]) mf.set(pname, eval(*sp->defaults[k], mf));
      else mf.set(pname, Value::undefined("'" + pname + "' is undefined"));
    }
    List varargs;
    for (size_t k = np; k < args.positional.size(); ++k) varargs.push_back(args.positional[k]);
    Value kwargs = Value::make_dict();
    for (auto& [key, val] : args.keyword) {
      bool is_param = false;
      for (auto& p : sp->targets) is_param = is_param || p == key;
      if (key == "caller") mf.set("caller", val);
      else if (!is_param) kwargs.dict->set(key, val);
    }
    mf.set("varargs", Value::make_list(std::move(varargs), true));
    mf.set("kwargs", kwargs);
    std::string text;
    exec(sp->body, mf, text);
    return Value::string(std::move(text));
  });
}

CallArgs Interpreter::eval_args(const Expr& e, Frame& f, size_t first) {
  CallArgs a;
  a.line = e.line;
  for (size_t k = first; k < e.args.size(); ++k) a.positional.push_back(eval(*e.args[k], f));
  for (auto& [key, ex] : e.kwargs) a.keyword.emplace_back(key, eval(*ex, f));
  return a;
}

Value Interpreter::call(const Value& callee, CallArgs& args, int line) {
  if (callee.kind == Kind::Callable) return (*callee.fn)(args, *this);
  if (callee.kind == Kind::Undefined) raise_undefined(callee, line);
  throw RenderError(std::string("'") + callee.type_name() + "' object is not callable", line);
}

Value Interpreter::apply_filter(const std::string& name, const Value& input, CallArgs& args, int line) {
  FilterFn fn = find_filter(name);
  if (!fn) throw RenderError("No filter named '" + name + "' found.", line);
  args.line = line;
  return fn(*this, input, args);
}

bool Interpreter::apply_test(const std::string& name, const Value& input, CallArgs& args, int line) {
  TestFn fn = find_test(name);
  if (!fn) throw RenderError("No test named '" + name + "' found.", line);
  args.line = line;
  return fn(*this, input, args);
}

Value Interpreter::eval_call(const Expr& e, Frame& f) {
  const Expr& callee = *e.args[0];
  if (callee.type == ExprType::Attr) {
    Value obj = eval(*callee.args[0], f);
    if (obj.kind == Kind::Undefined) raise_undefined(obj, e.line);
    if (has_method(obj, callee.name)) {
      CallArgs args = eval_args(e, f, 1);
      return call_method(*this, obj, callee.name, args);
    }
    Value fn = get_attr(obj, callee.name);
    CallArgs args = eval_args(e, f, 1);
    return call(fn, args, e.line);
  }
  Value fn = eval(callee, f);
  CallArgs args = eval_args(e, f, 1);
  return call(fn, args, e.line);
}

namespace {

int64_t py_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
int64_t py_mod(int64_t a, int64_t b) {
  int64_t m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}
double num(const Value& v) { return v.kind == Kind::Float ? v.f : static_cast<double>(v.i); }

[[noreturn]] void bad_operands(const char* op, const Value& a, const Value& b, int line) {
  throw RenderError(std::string("unsupported operand type(s) for ") + op + ": '" + a.type_name() + "' and '" +
                        b.type_name() + "'",
                    line);
}

Value repeat(const Value& seq, int64_t n) {
  if (n < 0) n = 0;
  if (seq.kind == Kind::String) {
    if (seq.str().size() * static_cast<size_t>(n) > (64u << 20)) throw RenderError("string repetition too large");
    std::string out;
    for (int64_t k = 0; k < n; ++k) out += seq.str();
    Value r = Value::string(std::move(out));
    r.is_safe = seq.is_safe;
    return r;
  }
  if (!seq.is_plain_list())
    throw RenderError(std::string("unsupported operand type(s) for *: '") + seq.type_name() + "' and 'int'");
  if (seq.list->size() * static_cast<size_t>(n) > (1u << 22)) throw RenderError("list repetition too large");
  List out;
  for (int64_t k = 0; k < n; ++k) out.insert(out.end(), seq.list->begin(), seq.list->end());
  return Value::make_list(std::move(out), seq.is_tuple);
}

}  // namespace

Value Interpreter::eval_binary(const Expr& e, Frame& f) {
  const std::string& op = e.name;
  if (op == "and") {
    Value a = eval(*e.args[0], f);
    return a.truthy() ? eval(*e.args[1], f) : a;
  }
  if (op == "or") {
    Value a = eval(*e.args[0], f);
    return a.truthy() ? a : eval(*e.args[1], f);
  }
  Value a = eval(*e.args[0], f);
  Value b = eval(*e.args[1], f);
  if (op == "~") {
    std::string s = a.to_str();
    s += b.to_str();
    if (s.size() > m_limits.max_output_bytes)
      throw RenderError("string built by the template is larger than the limit of " +
                            std::to_string(m_limits.max_output_bytes) + " bytes",
                        e.line);
    return Value::string(std::move(s));
  }
  if (a.kind == Kind::Undefined) raise_undefined(a, e.line);
  if (b.kind == Kind::Undefined) raise_undefined(b, e.line);
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && a.kind != Kind::Float && b.kind != Kind::Float;
  if (op == "+") {
    if (ints) return Value::integer(a.i + b.i);
    if (nums) return Value::number(num(a) + num(b));
    if (a.kind == Kind::String && b.kind == Kind::String) {
      if (a.str().size() + b.str().size() > m_limits.max_output_bytes)
        throw RenderError("string built by the template is larger than the limit of " +
                              std::to_string(m_limits.max_output_bytes) + " bytes",
                          e.line);
      // markupsafe: Markup + str (either order) escapes the plain side and stays Markup.
      if (a.is_safe || b.is_safe)
        return Value::markup((a.is_safe ? a.str() : html_escape(a.str())) + (b.is_safe ? b.str() : html_escape(b.str())));
      return Value::string(a.str() + b.str());
    }
    if (a.kind == Kind::List && b.kind == Kind::List && a.seq == b.seq && a.is_plain_list()) {
      if (a.list->size() + b.list->size() > (1u << 22)) throw RenderError("list built by the template is too long", e.line);
      step(a.list->size() + b.list->size());
      List l = *a.list;
      l.insert(l.end(), b.list->begin(), b.list->end());
      return Value::make_list(std::move(l), a.is_tuple);
    }
    if (a.kind == Kind::String && !a.is_safe)
      throw RenderError(std::string("can only concatenate str (not \"") + b.type_name() + "\") to str", e.line);
    if (a.is_plain_list())
      throw RenderError(std::string("can only concatenate ") + a.type_name() + " (not \"" + b.type_name() + "\") to " +
                            a.type_name(),
                        e.line);
    bad_operands("+", a, b, e.line);
  }
  if (op == "-") {
    if (ints) return Value::integer(a.i - b.i);
    if (nums) return Value::number(num(a) - num(b));
    bad_operands("-", a, b, e.line);
  }
  if (op == "*") {
    if (ints) return Value::integer(a.i * b.i);
    if (nums) return Value::number(num(a) * num(b));
    if ((a.kind == Kind::String || a.kind == Kind::List) && (b.kind == Kind::Int || b.kind == Kind::Bool))
      return repeat(a, b.i);
    if ((b.kind == Kind::String || b.kind == Kind::List) && (a.kind == Kind::Int || a.kind == Kind::Bool))
      return repeat(b, a.i);
    bad_operands("*", a, b, e.line);
  }
  if (op == "/") {
    if (!nums) bad_operands("/", a, b, e.line);
    if (num(b) == 0) throw RenderError("division by zero", e.line);
    return Value::number(num(a) / num(b));
  }
  if (op == "//") {
    if (!nums) bad_operands("//", a, b, e.line);
    if (num(b) == 0) throw RenderError("integer division or modulo by zero", e.line);
    if (ints) return Value::integer(py_floordiv(a.i, b.i));
    return Value::number(std::floor(num(a) / num(b)));
  }
  if (op == "%") {
    if (a.kind == Kind::String) {
      List args = (b.kind == Kind::List && b.seq == Seq::tuple) ? *b.list : List{b};
      return Value::string(percent_format(a.str(), args));
    }
    if (!nums) bad_operands("%", a, b, e.line);
    if (num(b) == 0) throw RenderError("integer division or modulo by zero", e.line);
    if (ints) return Value::integer(py_mod(a.i, b.i));
    double m = std::fmod(num(a), num(b));
    if (m != 0 && ((m < 0) != (num(b) < 0))) m += num(b);
    return Value::number(m);
  }
  if (op == "**") {
    if (!nums) bad_operands("** or pow()", a, b, e.line);
    if (ints && b.i >= 0) {
      int64_t r = 1;
      for (int64_t k = 0; k < b.i && k < 64; ++k) r *= a.i;
      return Value::integer(r);
    }
    return Value::number(std::pow(num(a), num(b)));
  }
  throw RenderError("unknown operator " + op, e.line);
}

namespace {

bool contains(const Value& item, const Value& container, int line) {
  switch (container.kind) {
    case Kind::String:
      if (item.kind != Kind::String)
        throw RenderError(std::string("'in <string>' requires string as left operand, not ") + item.type_name(),
                          line);
      return container.str().find(item.str()) != std::string::npos;
    case Kind::List:
      for (auto& v : *container.list)
        if (values_equal(v, item)) return true;
      return false;
    case Kind::Dict:
      if (item.kind == Kind::List || item.kind == Kind::Dict)
        throw RenderError(std::string("unhashable type: '") + item.type_name() + "'", line);
      return container.dict->find(encode_key(item)) != nullptr;
    case Kind::Undefined: return false;
    default:
      throw RenderError(std::string("argument of type '") + container.type_name() + "' is not iterable", line);
  }
}

}  // namespace

Value Interpreter::eval_compare(const Expr& e, Frame& f) {
  Value left = eval(*e.args[0], f);
  for (size_t k = 0; k < e.ops.size(); ++k) {
    Value right = eval(*e.args[k + 1], f);
    const std::string& op = e.ops[k];
    bool r;
    if (op == "==") r = values_equal(left, right);
    else if (op == "!=") r = !values_equal(left, right);
    else if (op == "in") r = contains(left, right, e.line);
    else if (op == "notin") r = !contains(left, right, e.line);
    else {
      int c = values_compare(left, right, op.c_str());
      if (op == "<") r = c < 0;
      else if (op == "<=") r = c <= 0;
      else if (op == ">") r = c > 0;
      else r = c >= 0;
    }
    if (!r) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

namespace {

// Python slice indices for a sequence of length n.
void slice_indices(int64_t n, const Value* start, const Value* stop, const Value* stepv, int64_t& b, int64_t& e,
                   int64_t& st) {
  auto as_int = [](const Value* v, const char* what) -> std::optional<int64_t> {
    if (!v || v->kind == Kind::None) return std::nullopt;
    if (v->kind == Kind::Int || v->kind == Kind::Bool) return v->i;
    if (v->kind == Kind::Undefined) throw RenderError(v->undefined_message());
    throw RenderError(std::string("slice indices must be integers or None (") + what + ")");
  };
  st = as_int(stepv, "step").value_or(1);
  if (st == 0) throw RenderError("slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = st < 0 ? -1 : 0;
    } else if (x >= n) {
      x = st < 0 ? n - 1 : n;
    }
    return x;
  };
  b = clamp(as_int(start, "start"), st < 0 ? n - 1 : 0);
  e = clamp(as_int(stop, "stop"), st < 0 ? -1 : n);
}

}  // namespace

Value Interpreter::eval(const Expr& e, Frame& f) {
  EvalDepth guard(m_eval_depth, m_limits.max_eval_depth);
  switch (e.type) {
    case ExprType::Const: return e.value;
    case ExprType::Name: {
      const Value* v = f.find(e.name);
      if (v) return *v;
      return Value::undefined("'" + e.name + "' is undefined");
    }
    case ExprType::List:
    case ExprType::Tuple: {
      List l;
      l.reserve(e.args.size());
      for (auto& a : e.args) l.push_back(eval(*a, f));
      return Value::make_list(std::move(l), e.type == ExprType::Tuple);
    }
    case ExprType::Dict: {
      Value d = Value::make_dict();
      for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
        Value key = eval(*e.args[k], f);
        d.dict->set(encode_key(key), eval(*e.args[k + 1], f));
      }
      return d;
    }
    case ExprType::Attr: {
      Value obj = eval(*e.args[0], f);
      if (obj.kind == Kind::Undefined) raise_undefined(obj, e.line);
      return get_attr(obj, e.name);
    }
    case ExprType::Item: {
      Value obj = eval(*e.args[0], f);
      if (obj.kind == Kind::Undefined) raise_undefined(obj, e.line);
      Value key = eval(*e.args[1], f);
      return get_item(obj, key);
    }
    case ExprType::Slice: {
      Value obj = eval(*e.args[0], f);
      if (obj.kind == Kind::Undefined) raise_undefined(obj, e.line);
      Value parts[3];
      const Value* ptr[3] = {nullptr, nullptr, nullptr};
      for (int k = 0; k < 3; ++k) {
        if (e.args[static_cast<size_t>(k) + 1]) {
          parts[k] = eval(*e.args[static_cast<size_t>(k) + 1], f);
          ptr[k] = &parts[k];
        }
      }
      int64_t b, en, st;
      if (obj.kind == Kind::String) {
        std::vector<uint32_t> cps = utf8_decode(obj.str());
        slice_indices(static_cast<int64_t>(cps.size()), ptr[0], ptr[1], ptr[2], b, en, st);
        std::string out;
        for (int64_t k = b; st > 0 ? k < en : k > en; k += st) utf8_append(out, cps[static_cast<size_t>(k)]);
        return Value::string(std::move(out));
      }
      if (obj.kind == Kind::List && (obj.is_plain_list() || obj.seq == Seq::range)) {
        slice_indices(static_cast<int64_t>(obj.list->size()), ptr[0], ptr[1], ptr[2], b, en, st);
        List out;
        for (int64_t k = b; st > 0 ? k < en : k > en; k += st) out.push_back((*obj.list)[static_cast<size_t>(k)]);
        return Value::make_list(std::move(out), obj.is_tuple);
      }
      throw RenderError(std::string("'") + obj.type_name() + "' object is not subscriptable", e.line);
    }
    case ExprType::Call: return eval_call(e, f);
    case ExprType::Filter: {
      Value input = eval(*e.args[0], f);
      CallArgs args = eval_args(e, f, 1);
      return apply_filter(e.name, input, args, e.line);
    }
    case ExprType::Test: {
      Value input;
      // `is defined` and friends must see an undefined name without raising.
      input = eval(*e.args[0], f);
      CallArgs args = eval_args(e, f, 1);
      bool r = apply_test(e.name, input, args, e.line);
      return Value::boolean(e.negated ? !r : r);
    }
    case ExprType::Not: return Value::boolean(!eval(*e.args[0], f).truthy());
    case ExprType::Neg:
    case ExprType::Pos: {
      Value v = eval(*e.args[0], f);
      if (v.kind == Kind::Undefined) raise_undefined(v, e.line);
      bool neg = e.type == ExprType::Neg;
      if (v.kind == Kind::Int || v.kind == Kind::Bool) return Value::integer(neg ? -v.i : v.i);
      if (v.kind == Kind::Float) return Value::number(neg ? -v.f : v.f);
      throw RenderError(std::string("bad operand type for unary ") + (neg ? "-" : "+") + ": '" + v.type_name() +
                            "'",
                        e.line);
    }
    case ExprType::Binary: return eval_binary(e, f);
    case ExprType::Compare: return eval_compare(e, f);
    case ExprType::Cond: {
      if (eval(*e.args[0], f).truthy()) return eval(*e.args[1], f);
      if (e.args[2]) return eval(*e.args[2], f);
      return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                              " evaluated to false and no else section was defined.");
    }
  }
  throw RenderError("internal: unknown expression", e.line);
}

}  // namespace hearth::jinja
