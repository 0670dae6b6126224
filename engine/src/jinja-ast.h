/* Syntax tree of the chat-template interpreter: expressions and statements as jinja2's parser builds them.
 *
 * Non-obvious choice: one plain struct per family (Expr, Stmt) tagged by an enum, instead of a class per
 * node, so the interpreter is a pair of switches and the parser stays short; unused fields stay empty.
 */
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "jinja-value.h"

namespace hearth::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprType : uint8_t {
  Const,    // value
  Name,     // name
  List,     // args
  Tuple,    // args
  Dict,     // args = key0, value0, key1, value1, ...
  Attr,     // args[0].name
  Item,     // args[0][args[1]]
  Slice,    // args[0][args[1]:args[2]:args[3]] (null parts omitted)
  Call,     // args[0](args[1..], kwargs)
  Filter,   // args[0] | name(args[1..], kwargs); args[0] null inside a filter block
  Test,     // args[0] is name(args[1..]); negated for `is not`
  Not,      // not args[0]
  Neg,      // -args[0]
  Pos,      // +args[0]
  Binary,   // args[0] op args[1]: + - * / // % ** ~ and or
  Compare,  // args[0] ops[0] args[1] ops[1] args[2] ... (== != < <= > >= in notin)
  Cond,     // args[1] if args[0] else args[2] (args[2] null: undefined)
};

struct Expr {
  ExprType type = ExprType::Const;
  int line = 0;
  bool negated = false;
  Value value;
  std::string name;                 // Name, Attr, Filter, Test; Binary: the operator
  std::vector<std::string> ops;     // Compare
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

enum class StmtType : uint8_t {
  Text,         // text
  Output,       // {{ expr }}
  If,           // conds[i] -> bodies[i]; bodies.back() is else when bodies.size() > conds.size()
  For,          // targets in expr [if cond]: body, else_body
  Set,          // targets (or ns.attr: target_attr) = expr
  SetBlock,     // targets[0] = rendered body | filters
  Macro,        // name(params = defaults) body
  CallBlock,    // expr (a call) with caller(params) = body
  FilterBlock,  // body | filters
  Break,
  Continue,
  With,         // targets = values; body
  Generation,   // body (transformers' {% generation %}: renders its body)
};

struct Stmt {
  StmtType type = StmtType::Text;
  int line = 0;
  std::string text;                   // Text
  std::string name;                   // Macro name
  ExprPtr expr;                       // Output, For (iterable), Set, CallBlock
  ExprPtr cond;                       // For's `if`
  std::vector<ExprPtr> conds;         // If
  std::vector<Body> bodies;           // If
  std::vector<std::string> targets;   // For, Set, SetBlock, With; Macro/CallBlock: parameter names
  bool target_tuple = false;          // For/Set: unpack into targets
  std::string target_attr;            // Set: `set targets[0].target_attr = ...`
  std::vector<ExprPtr> defaults;      // Macro/CallBlock: default per parameter (null: none); With: values
  std::vector<ExprPtr> filters;       // SetBlock, FilterBlock: Filter exprs applied in order
  Body body;
  Body else_body;
};

// A parsed template: its statements.
struct Program {
  Body body;
};

// Parses template source (throws SyntaxError with the line).
std::shared_ptr<Program> parse_program(std::string_view source);

}  // namespace hearth::jinja
