/* Lexer of the chat-template interpreter: template source to tokens, with jinja2's whitespace rules.
 *
 * Non-obvious choice: trim_blocks, lstrip_blocks and the `-`/`+` markers are applied here, to the text
 * tokens, exactly where jinja2's lexer applies them (lstrip only when the tag starts a line, counting a
 * line start left by the previous tag's trimmed newline), so the parser and interpreter never see
 * whitespace rules at all.
 */
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::jinja {

enum class TokenType : uint8_t {
  Text,        // raw template text (value)
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,        // identifier or keyword (value)
  String,      // string literal, escapes already decoded (value)
  Integer,     // (ivalue)
  Float,       // (fvalue)
  Operator,    // + - * / // % ** ~ ( ) [ ] { } , . : | = == != < <= > >= (value)
  End,         // end of the source
};

struct Token {
  TokenType type = TokenType::End;
  std::string value;
  int64_t ivalue = 0;
  double fvalue = 0;
  int line = 1;
};

// Splits `source` into tokens. Throws SyntaxError (jinja-value.h) naming the line on unterminated
// tags, comments or strings and on characters that start no token.
std::vector<Token> lex(std::string_view source);

}  // namespace hearth::jinja
