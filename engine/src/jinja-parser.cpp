/* Parser of the chat-template interpreter: tokens to the syntax tree of jinja-ast.h.
 *
 * Non-obvious choice: the grammar follows jinja2's parser function by function (parse_tuple,
 * parse_condexpr, parse_or … parse_unary, parse_postfix, parse_filter_expr), including its quirks: a test
 * takes one bare argument (`x is divisibleby 3`), `-x|abs` applies the filter to `-x`, adjacent string
 * literals concatenate, and a conditional without `else` yields undefined.
 */
#include <string_view>

#include "jinja-ast.h"
#include "jinja-lexer.h"

namespace hearth::jinja {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : m_t(std::move(tokens)) {}

  std::shared_ptr<Program> run() {
    auto prog = std::make_shared<Program>();
    std::string end;
    prog->body = parse_body({}, end);
    return prog;
  }

 private:
  const Token& cur() const { return m_t[m_pos]; }
  const Token& peek(size_t n = 1) const { return m_t[std::min(m_pos + n, m_t.size() - 1)]; }
  void next() {
    if (m_pos + 1 < m_t.size()) ++m_pos;
  }
  bool is_op(std::string_view op) const { return cur().type == TokenType::Operator && cur().value == op; }
  bool is_name(std::string_view n) const { return cur().type == TokenType::Name && cur().value == n; }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::Text: return "template text";
      case TokenType::VarBegin: return "'{{'";
      case TokenType::VarEnd: return "end of print statement '}}'";
      case TokenType::BlockBegin: return "'{%'";
      case TokenType::BlockEnd: return "end of statement block '%}'";
      case TokenType::Name: return "'" + t.value + "'";
      case TokenType::String: return "string literal";
      case TokenType::Integer:
      case TokenType::Float: return "number " + t.value;
      case TokenType::Operator: return "'" + t.value + "'";
      case TokenType::End: return "end of template";
    }
    return "token";
  }

  [[noreturn]] void fail(const std::string& what) const { throw SyntaxError(what, cur().line); }
  [[noreturn]] void unexpected(const std::string& expected) const {
    fail("expected " + expected + ", got " + describe(cur()));
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) unexpected("'" + std::string(op) + "'");
  }
  std::string expect_name() {
    if (cur().type != TokenType::Name) unexpected("a name");
    std::string n = cur().value;
    next();
    return n;
  }
  void expect_block_end() {
    if (cur().type != TokenType::BlockEnd) unexpected("end of statement block '%}'");
    next();
  }

  static ExprPtr make(ExprType type, int line) {
    auto e = std::make_unique<Expr>();
    e->type = type;
    e->line = line;
    return e;
  }

  // ---- statements ----

  // Parses statements until a block tag named in `ends`; leaves the position after that tag's name and
  // reports it in `end`. With `ends` empty, parses to the end of the template.
  Body parse_body(const std::vector<std::string_view>& ends, std::string& end) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::End) {
        if (!ends.empty()) {
          std::string want;
          for (auto e : ends) {
            want += want.empty() ? "'" : " or '";
            want.append(e.data(), e.size());
            want += '\'';
          }
          fail("unexpected end of template: missing " + want);
        }
        return body;
      }
      if (t.type == TokenType::Text) {
        auto s = std::make_unique<Stmt>();
        s->type = StmtType::Text;
        s->line = t.line;
        s->text = t.value;
        body.push_back(std::move(s));
        next();
        continue;
      }
      if (t.type == TokenType::VarBegin) {
        int line = t.line;
        next();
        auto s = std::make_unique<Stmt>();
        s->type = StmtType::Output;
        s->line = line;
        s->expr = parse_tuple();
        if (cur().type != TokenType::VarEnd) unexpected("end of print statement '}}'");
        next();
        body.push_back(std::move(s));
        continue;
      }
      if (t.type == TokenType::BlockBegin) {
        next();
        if (cur().type != TokenType::Name) unexpected("a statement name");
        std::string name = cur().value;
        for (auto e : ends) {
          if (name == e) {
            next();
            end = name;
            return body;
          }
        }
        body.push_back(parse_statement());
        continue;
      }
      unexpected("template text or a tag");
    }
  }

  // Counts one level of nesting for its lifetime.
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.m_depth > MAX_DEPTH) p.fail("template nested too deeply (more than " + std::to_string(MAX_DEPTH) + " levels)");
    }
    ~DepthGuard() { --p.m_depth; }
  };
  static constexpr int MAX_DEPTH = 300;

  StmtPtr parse_statement() {
    DepthGuard guard(*this);
    const Token& t = cur();
    int line = t.line;
    std::string name = t.value;
    next();
    auto s = std::make_unique<Stmt>();
    s->line = line;
    std::string end;
    if (name == "if") {
      s->type = StmtType::If;
      s->conds.push_back(parse_tuple());
      expect_block_end();
      while (true) {
        s->bodies.push_back(parse_body({"elif", "else", "endif"}, end));
        if (end == "elif") {
          s->conds.push_back(parse_tuple());
          expect_block_end();
        } else if (end == "else") {
          expect_block_end();
          s->bodies.push_back(parse_body({"endif"}, end));
          expect_block_end();
          break;
        } else {
          expect_block_end();
          break;
        }
      }
    } else if (name == "for") {
      s->type = StmtType::For;
      parse_assign_targets(*s, false);
      if (!skip_name("in")) unexpected("'in'");
      s->expr = parse_tuple(/*with_condexpr=*/false);
      if (skip_name("if")) s->cond = parse_expression();
      if (skip_name("recursive")) fail("recursive for loops are not supported");
      expect_block_end();
      s->body = parse_body_loop({"endfor", "else"}, end);
      if (end == "else") {
        expect_block_end();
        s->else_body = parse_body({"endfor"}, end);
      }
      expect_block_end();
    } else if (name == "set") {
      parse_assign_targets(*s, true);
      if (skip_op("=")) {
        s->type = StmtType::Set;
        s->expr = parse_tuple();
        expect_block_end();
      } else {
        if (s->target_tuple || !s->target_attr.empty()) unexpected("'='");
        s->type = StmtType::SetBlock;
        parse_filter_chain(s->filters);
        expect_block_end();
        s->body = parse_body({"endset"}, end);
        expect_block_end();
      }
    } else if (name == "macro") {
      s->type = StmtType::Macro;
      s->name = expect_name();
      parse_signature(*s);
      expect_block_end();
      s->body = parse_body({"endmacro"}, end);
      if (cur().type == TokenType::Name) next();  // {% endmacro name %}
      expect_block_end();
    } else if (name == "call") {
      s->type = StmtType::CallBlock;
      if (is_op("(")) parse_signature(*s);
      s->expr = parse_expression();
      if (s->expr->type != ExprType::Call) fail("expected a call after 'call'");
      expect_block_end();
      s->body = parse_body({"endcall"}, end);
      expect_block_end();
    } else if (name == "filter") {
      s->type = StmtType::FilterBlock;
      parse_filter_chain(s->filters, /*first_without_pipe=*/true);
      expect_block_end();
      s->body = parse_body({"endfilter"}, end);
      expect_block_end();
    } else if (name == "break" || name == "continue") {
      s->type = name == "break" ? StmtType::Break : StmtType::Continue;
      if (m_loop_depth == 0) fail("'" + name + "' outside of a loop");
      expect_block_end();
    } else if (name == "with") {
      s->type = StmtType::With;
      while (cur().type != TokenType::BlockEnd) {
        if (!s->targets.empty()) expect_op(",");
        s->targets.push_back(expect_name());
        expect_op("=");
        s->defaults.push_back(parse_expression());
      }
      expect_block_end();
      s->body = parse_body({"endwith"}, end);
      expect_block_end();
    } else if (name == "generation") {
      s->type = StmtType::Generation;
      expect_block_end();
      s->body = parse_body({"endgeneration"}, end);
      expect_block_end();
    } else {
      throw SyntaxError("Encountered unknown tag '" + name + "'.", line);
    }
    return s;
  }

  // Loop depth is tracked for break/continue validation: incremented around for bodies.
  Body parse_body_loop(const std::vector<std::string_view>& ends, std::string& end) {
    ++m_loop_depth;
    Body b = parse_body(ends, end);
    --m_loop_depth;
    return b;
  }

  void parse_assign_targets(Stmt& s, bool allow_attr) {
    bool paren = skip_op("(");
    s.targets.push_back(expect_name());
    if (allow_attr && is_op(".")) {
      next();
      s.target_attr = expect_name();
      if (paren) expect_op(")");
      return;
    }
    while (skip_op(",")) {
      s.target_tuple = true;
      if (cur().type != TokenType::Name) break;
      s.targets.push_back(expect_name());
    }
    if (paren) {
      expect_op(")");
      s.target_tuple = true;
    }
  }

  void parse_signature(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      if (!s.targets.empty()) expect_op(",");
      if (is_op(")")) break;
      s.targets.push_back(expect_name());
      if (skip_op("=")) s.defaults.push_back(parse_expression());
      else s.defaults.push_back(nullptr);
    }
    expect_op(")");
  }

  void parse_filter_chain(std::vector<ExprPtr>& out, bool first_without_pipe = false) {
    bool first = first_without_pipe;
    while (first || is_op("|")) {
      if (!first) next();
      first = false;
      auto f = make(ExprType::Filter, cur().line);
      f->args.push_back(nullptr);
      f->name = expect_name();
      while (skip_op(".")) {
            f->name += '.';
            f->name += expect_name();
          }
      if (is_op("(")) parse_call_args(*f);
      out.push_back(std::move(f));
    }
  }

  // ---- expressions ----

  // jinja2's parse_tuple: one expression, or a tuple when commas follow. `with_condexpr` false stops
  // before `if` (a for loop's filter); `explicit_parens` allows the empty tuple `()`.
  ExprPtr parse_tuple(bool with_condexpr = true, bool explicit_parens = false) {
    int line = cur().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        is_tuple = true;
      }
      if (tuple_end()) break;
      items.push_back(with_condexpr ? parse_expression() : parse_or());
    }
    if (!is_tuple) {
      if (items.empty()) {
        if (explicit_parens) return make(ExprType::Tuple, line);
        unexpected("an expression");
      }
      return std::move(items[0]);
    }
    auto t = make(ExprType::Tuple, line);
    t->args = std::move(items);
    return t;
  }

  bool tuple_end() const {
    const Token& t = cur();
    if (t.type == TokenType::VarEnd || t.type == TokenType::BlockEnd || t.type == TokenType::End) return true;
    return t.type == TokenType::Operator && (t.value == ")" || t.value == "]" || t.value == "}" || t.value == "=");
  }

  ExprPtr parse_expression() {
    DepthGuard guard(*this);
    return parse_condexpr();
  }

  ExprPtr parse_condexpr() {
    int line = cur().line;
    ExprPtr e = parse_or();
    while (is_name("if")) {
      next();
      auto c = make(ExprType::Cond, line);
      c->args.push_back(parse_or());
      c->args.push_back(std::move(e));
      if (skip_name("else")) c->args.push_back(parse_condexpr());
      else c->args.push_back(nullptr);
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(std::string op, ExprPtr a, ExprPtr b, int line) {
    auto e = make(ExprType::Binary, line);
    e->name = std::move(op);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    int line = cur().line;
    ExprPtr e = parse_and();
    while (skip_name("or")) e = binary("or", std::move(e), parse_and(), line);
    return e;
  }
  ExprPtr parse_and() {
    int line = cur().line;
    ExprPtr e = parse_not();
    while (skip_name("and")) e = binary("and", std::move(e), parse_not(), line);
    return e;
  }
  ExprPtr parse_not() {
    DepthGuard guard(*this);
    if (is_name("not")) {
      int line = cur().line;
      next();
      auto e = make(ExprType::Not, line);
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    int line = cur().line;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().type == TokenType::Operator &&
          (cur().value == "==" || cur().value == "!=" || cur().value == "<" || cur().value == "<=" ||
           cur().value == ">" || cur().value == ">=")) {
        op = cur().value;
        next();
      } else if (is_name("in")) {
        op = "in";
        next();
      } else if (is_name("not") && peek().type == TokenType::Name && peek().value == "in") {
        op = "notin";
        next();
        next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(ExprType::Compare, line);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }
  ExprPtr parse_math1() {
    int line = cur().line;
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().value;
      next();
      e = binary(op, std::move(e), parse_concat(), line);
    }
    return e;
  }
  ExprPtr parse_concat() {
    int line = cur().line;
    ExprPtr e = parse_math2();
    while (skip_op("~")) e = binary("~", std::move(e), parse_math2(), line);
    return e;
  }
  ExprPtr parse_math2() {
    int line = cur().line;
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().value;
      next();
      e = binary(op, std::move(e), parse_pow(), line);
    }
    return e;
  }
  ExprPtr parse_pow() {
    int line = cur().line;
    ExprPtr e = parse_unary(true);
    while (skip_op("**")) e = binary("**", std::move(e), parse_unary(true), line);
    return e;
  }
  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    int line = cur().line;
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      bool neg = cur().value == "-";
      next();
      e = make(neg ? ExprType::Neg : ExprType::Pos, line);
      e->args.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    int line = t.line;
    if (t.type == TokenType::Name) {
      const std::string& n = t.value;
      auto c = make(ExprType::Const, line);
      if (n == "true" || n == "True") c->value = Value::boolean(true);
      else if (n == "false" || n == "False") c->value = Value::boolean(false);
      else if (n == "none" || n == "None") c->value = Value::none();
      else {
        auto e = make(ExprType::Name, line);
        e->name = n;
        next();
        return e;
      }
      next();
      return c;
    }
    if (t.type == TokenType::String) {
      std::string s = t.value;
      next();
      while (cur().type == TokenType::String) {
        s += cur().value;
        next();
      }
      auto c = make(ExprType::Const, line);
      c->value = Value::string(std::move(s));
      return c;
    }
    if (t.type == TokenType::Integer || t.type == TokenType::Float) {
      auto c = make(ExprType::Const, line);
      c->value = t.type == TokenType::Integer ? Value::integer(t.ivalue) : Value::number(t.fvalue);
      next();
      return c;
    }
    if (is_op("(")) {
      next();
      ExprPtr e = parse_tuple(true, true);
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      next();
      auto l = make(ExprType::List, line);
      while (!is_op("]")) {
        if (!l->args.empty()) {
          expect_op(",");
          if (is_op("]")) break;
        }
        l->args.push_back(parse_expression());
      }
      expect_op("]");
      return l;
    }
    if (is_op("{")) {
      next();
      auto d = make(ExprType::Dict, line);
      while (!is_op("}")) {
        if (!d->args.empty()) {
          expect_op(",");
          if (is_op("}")) break;
        }
        d->args.push_back(parse_expression());
        expect_op(":");
        d->args.push_back(parse_expression());
      }
      expect_op("}");
      return d;
    }
    unexpected("an expression");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      int line = cur().line;
      if (is_op(".")) {
        next();
        if (cur().type == TokenType::Name) {
          auto a = make(ExprType::Attr, line);
          a->name = cur().value;
          next();
          a->args.push_back(std::move(e));
          e = std::move(a);
        } else if (cur().type == TokenType::Integer) {
          auto a = make(ExprType::Item, line);
          a->args.push_back(std::move(e));
          auto c = make(ExprType::Const, line);
          c->value = Value::integer(cur().ivalue);
          a->args.push_back(std::move(c));
          next();
          e = std::move(a);
        } else {
          unexpected("an attribute name");
        }
      } else if (is_op("[")) {
        next();
        e = parse_subscript(std::move(e), line);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj, int line) {
    std::vector<ExprPtr> parts;  // one per comma-separated subscript
    ExprPtr slice;
    auto parse_one = [&]() -> ExprPtr {
      ExprPtr start, stop, step;
      if (!is_op(":")) {
        start = parse_expression();
        if (!is_op(":")) return start;
      }
      next();  // ':'
      if (!is_op("]") && !is_op(",") && !is_op(":")) stop = parse_expression();
      if (skip_op(":")) {
        if (!is_op("]") && !is_op(",")) step = parse_expression();
      }
      auto s = make(ExprType::Slice, line);
      s->args.push_back(nullptr);
      s->args.push_back(std::move(start));
      s->args.push_back(std::move(stop));
      s->args.push_back(std::move(step));
      return s;
    };
    parts.push_back(parse_one());
    while (skip_op(",")) {
      if (is_op("]")) break;
      parts.push_back(parse_one());
    }
    expect_op("]");
    if (parts.size() == 1 && parts[0]->type == ExprType::Slice) {
      parts[0]->args[0] = std::move(obj);
      return std::move(parts[0]);
    }
    auto item = make(ExprType::Item, line);
    item->args.push_back(std::move(obj));
    if (parts.size() == 1) {
      item->args.push_back(std::move(parts[0]));
    } else {
      auto t = make(ExprType::Tuple, line);
      t->args = std::move(parts);
      item->args.push_back(std::move(t));
    }
    return item;
  }

  void parse_call_args(Expr& call) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
      if (cur().type == TokenType::Name && peek().type == TokenType::Operator && peek().value == "=") {
        std::string key = cur().value;
        next();
        next();
        call.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        if (!call.kwargs.empty()) fail("positional argument after a keyword argument");
        call.args.push_back(parse_expression());
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = make(ExprType::Call, cur().line);
    c->args.push_back(std::move(callee));
    parse_call_args(*c);
    return c;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        while (skip_op("|")) {
          auto f = make(ExprType::Filter, cur().line);
          f->name = expect_name();
          while (skip_op(".")) {
            f->name += '.';
            f->name += expect_name();
          }
          f->args.push_back(std::move(e));
          if (is_op("(")) parse_call_args(*f);
          e = std::move(f);
        }
      } else if (is_name("is")) {
        int line = cur().line;
        next();
        auto t = make(ExprType::Test, line);
        if (skip_name("not")) t->negated = true;
        t->name = expect_name();
        while (skip_op(".")) {
            t->name += '.';
            t->name += expect_name();
          }
        t->args.push_back(std::move(e));
        const Token& c = cur();
        if (is_op("(")) {
          parse_call_args(*t);
        } else if ((c.type == TokenType::Name || c.type == TokenType::String || c.type == TokenType::Integer ||
                    c.type == TokenType::Float || is_op("[") || is_op("{")) &&
                   !(c.type == TokenType::Name && (c.value == "else" || c.value == "or" || c.value == "and"))) {
          if (is_name("is")) fail("You cannot chain multiple tests with is");
          ExprPtr arg = parse_primary();
          t->args.push_back(parse_postfix(std::move(arg)));
        }
        e = std::move(t);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  std::vector<Token> m_t;
  size_t m_pos = 0;
  int m_loop_depth = 0;
  int m_depth = 0;  // nesting of statements and expressions, bounded so hostile input cannot
                    // exhaust the stack (here or in the interpreter, which recurses the same way)
};

}  // namespace

std::shared_ptr<Program> parse_program(std::string_view source) { return Parser(lex(source)).run(); }

}  // namespace hearth::jinja
