/* Lexer of the chat-template interpreter (see jinja-lexer.h).
 *
 * Non-obvious choice: the source is first normalised as jinja2 does before lexing (\r\n and \r become
 * \n, and one trailing newline is dropped: keep_trailing_newline=False), and a tag ends only at a
 * delimiter met outside brackets, so `{{ {'a': 1}}}` and strings holding "%}" lex as jinja2 lexes them.
 */
#include "jinja-lexer.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "jinja-value.h"

namespace hearth::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Python's str.isspace() for a code point (what rstrip() and the regex \s strip around `-` markers).
bool is_py_space(uint32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000;
}

// Length in bytes of the whitespace character starting at s[k] (0 if none).
size_t space_at(std::string_view s, size_t k) {
  unsigned char c = static_cast<unsigned char>(s[k]);
  if (c < 0x80) return is_py_space(c) ? 1 : 0;
  size_t n = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 0;
  if (n == 0 || k + n > s.size()) return 0;
  uint32_t cp = n == 2 ? (c & 0x1f) : (c & 0x0f);
  for (size_t j = 1; j < n; ++j) cp = (cp << 6) | (static_cast<unsigned char>(s[k + j]) & 0x3f);
  return is_py_space(cp) ? n : 0;
}

// Length in bytes of the whitespace character ending at s[e-1] (0 if none).
size_t space_before(std::string_view s, size_t e) {
  for (size_t n = 1; n <= 3 && n <= e; ++n) {
    unsigned char c = static_cast<unsigned char>(s[e - n]);
    if ((c & 0xc0) == 0x80) continue;  // a continuation byte: the character starts further back
    return space_at(s, e - n) == n ? n : 0;
  }
  return 0;
}

// Python's str.rstrip().
void rstrip_py(std::string& s) {
  size_t e = s.size(), n;
  while (e > 0 && (n = space_before(s, e)) > 0) e -= n;
  s.resize(e);
}

std::string normalize(std::string_view src) {
  std::string out;
  out.reserve(src.size());
  for (size_t k = 0; k < src.size(); ++k) {
    if (src[k] == '\r') {
      out += '\n';
      if (k + 1 < src.size() && src[k + 1] == '\n') ++k;
    } else {
      out += src[k];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Python's "unicode-escape" decoding of a string literal's body, as jinja2's lexer applies it.
std::string unescape(std::string_view body, int line) {
  std::string out;
  out.reserve(body.size());
  for (size_t k = 0; k < body.size(); ++k) {
    char c = body[k];
    if (c != '\\' || k + 1 >= body.size()) {
      out += c;
      continue;
    }
    char e = body[++k];
    auto hex = [&](size_t n) -> uint32_t {
      uint32_t v = 0;
      for (size_t j = 1; j <= n; ++j) {
        if (k + j >= body.size() || !std::isxdigit(static_cast<unsigned char>(body[k + j])))
          throw SyntaxError("truncated \\x/\\u escape in a string", line);
        char h = body[k + j];
        v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      k += n;
      return v;
    };
    switch (e) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case '\n': break;  // line continuation
      case 'x': utf8_append(out, hex(2)); break;
      case 'u': utf8_append(out, hex(4)); break;
      case 'U': utf8_append(out, hex(8)); break;
      default:
        if (e >= '0' && e <= '7') {
          uint32_t v = static_cast<uint32_t>(e - '0');
          for (int j = 0; j < 2 && k + 1 < body.size() && body[k + 1] >= '0' && body[k + 1] <= '7'; ++j)
            v = v * 8 + static_cast<uint32_t>(body[++k] - '0');
          utf8_append(out, v);
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : m_src(normalize(src)) {}

  std::vector<Token> run() {
    bool line_starting = true;
    while (m_pos < m_src.size()) {
      size_t start = find_tag(m_pos);
      std::string text = m_src.substr(m_pos, (start == std::string::npos ? m_src.size() : start) - m_pos);
      if (start == std::string::npos) {
        emit_text(std::move(text), m_line);
        break;
      }
      char kind = m_src[start + 1];  // '{', '%' or '#'
      char sign = start + 2 < m_src.size() ? m_src[start + 2] : 0;
      if (sign == '-') {
        rstrip_py(text);
      } else if (sign != '+' && kind != '{') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 || line_starting) {
          bool only_ws = true;
          for (size_t k = l_pos; k < text.size(); ++k)
            if (text[k] != ' ' && text[k] != '\t') { only_ws = false; break; }
          if (only_ws) text.resize(l_pos);
        }
      }
      int text_line = m_line;
      count_lines(m_pos, start);
      emit_text(std::move(text), text_line);
      m_pos = start + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      if (kind == '#') {
        line_starting = lex_comment();
      } else if (kind == '%' && try_raw()) {
        line_starting = m_last_end_newline;
      } else {
        line_starting = lex_tag(kind);
      }
    }
    Token end;
    end.type = TokenType::End;
    end.line = m_line;
    m_tokens.push_back(end);
    return std::move(m_tokens);
  }

 private:
  size_t find_tag(size_t from) const {
    size_t k = from;
    while ((k = m_src.find('{', k)) != std::string::npos) {
      if (k + 1 < m_src.size() && (m_src[k + 1] == '{' || m_src[k + 1] == '%' || m_src[k + 1] == '#'))
        return k;
      ++k;
    }
    return std::string::npos;
  }

  void count_lines(size_t from, size_t to) {
    for (size_t k = from; k < to && k < m_src.size(); ++k)
      if (m_src[k] == '\n') ++m_line;
  }

  void emit_text(std::string text, int line) {
    if (text.empty()) return;
    Token t;
    t.type = TokenType::Text;
    t.value = std::move(text);
    t.line = line;
    m_tokens.push_back(std::move(t));
  }

  void push(TokenType type, std::string value = {}) {
    Token t;
    t.type = type;
    t.value = std::move(value);
    t.line = m_line;
    m_tokens.push_back(std::move(t));
  }

  // Consumes what follows a closing delimiter at m_pos: `-` strips all whitespace, a block or comment
  // end without `+` drops one newline (trim_blocks). Returns whether a newline ended what was consumed.
  bool after_end(bool strip_all, bool trim_newline) {
    bool newline = false;
    if (strip_all) {
      size_t n;
      while (m_pos < m_src.size() && (n = space_at(m_src, m_pos)) > 0) {
        newline = m_src[m_pos] == '\n';
        if (newline) ++m_line;
        m_pos += n;
      }
    } else if (trim_newline && m_pos < m_src.size() && m_src[m_pos] == '\n') {
      ++m_line;
      ++m_pos;
      newline = true;
    }
    return newline;
  }

  bool lex_comment() {
    int line = m_line;
    size_t e = m_src.find("#}", m_pos);
    if (e == std::string::npos) throw SyntaxError("unterminated comment '{#'", line);
    char sign = e > m_pos ? m_src[e - 1] : 0;
    count_lines(m_pos, e);
    m_pos = e + 2;
    return after_end(sign == '-', sign != '+');
  }

  // `{% raw %}…{% endraw %}`: the body is text, untouched.
  bool try_raw() {
    size_t k = m_pos;
    while (k < m_src.size() && is_space(m_src[k])) ++k;
    if (m_src.compare(k, 3, "raw") != 0) return false;
    k += 3;
    while (k < m_src.size() && is_space(m_src[k])) ++k;
    bool strip_after = false;
    if (k < m_src.size() && (m_src[k] == '-' || m_src[k] == '+')) strip_after = m_src[k++] == '-';
    if (m_src.compare(k, 2, "%}") != 0) return false;
    int line = m_line;
    count_lines(m_pos, k + 2);
    m_pos = k + 2;
    if (strip_after) after_end(true, false);
    else after_end(false, true);
    // find {%[-+]? endraw [-+]?%}
    size_t search = m_pos;
    while (true) {
      size_t b = m_src.find("{%", search);
      if (b == std::string::npos) throw SyntaxError("missing '{% endraw %}' for '{% raw %}'", line);
      size_t q = b + 2;
      char sign = 0;
      if (q < m_src.size() && (m_src[q] == '-' || m_src[q] == '+')) sign = m_src[q++];
      while (q < m_src.size() && is_space(m_src[q])) ++q;
      if (m_src.compare(q, 6, "endraw") != 0) {
        search = b + 2;
        continue;
      }
      q += 6;
      while (q < m_src.size() && is_space(m_src[q])) ++q;
      char esign = 0;
      if (q < m_src.size() && (m_src[q] == '-' || m_src[q] == '+')) esign = m_src[q++];
      if (m_src.compare(q, 2, "%}") != 0) {
        search = b + 2;
        continue;
      }
      std::string body = m_src.substr(m_pos, b - m_pos);
      if (sign == '-') rstrip_py(body);
      emit_text(std::move(body), m_line);
      count_lines(m_pos, q + 2);
      m_pos = q + 2;
      m_last_end_newline = after_end(esign == '-', esign != '+');
      return true;
    }
  }

  bool lex_tag(char kind) {
    int open_line = m_line;
    push(kind == '{' ? TokenType::VarBegin : TokenType::BlockBegin);
    int balance = 0;
    const char close = kind == '{' ? '}' : '%';
    while (true) {
      while (m_pos < m_src.size() && is_space(m_src[m_pos])) {
        if (m_src[m_pos] == '\n') ++m_line;
        ++m_pos;
      }
      if (m_pos >= m_src.size())
        throw SyntaxError(std::string("unexpected end of template: '") + (kind == '{' ? "{{" : "{%") +
                              "' opened on line " + std::to_string(open_line) + " is never closed",
                          m_line);
      if (balance == 0) {
        char c = m_src[m_pos];
        if ((c == '-' || c == '+') && m_pos + 2 < m_src.size() && m_src[m_pos + 1] == close &&
            m_src[m_pos + 2] == '}') {
          m_pos += 3;
          push(kind == '{' ? TokenType::VarEnd : TokenType::BlockEnd);
          return after_end(c == '-', kind == '%' && c != '+');
        }
        if (c == close && m_pos + 1 < m_src.size() && m_src[m_pos + 1] == '}') {
          m_pos += 2;
          push(kind == '{' ? TokenType::VarEnd : TokenType::BlockEnd);
          return after_end(false, kind == '%');
        }
      }
      lex_token(balance);
    }
  }

  void lex_token(int& balance) {
    char c = m_src[m_pos];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t s = m_pos;
      while (m_pos < m_src.size() &&
             (std::isalnum(static_cast<unsigned char>(m_src[m_pos])) || m_src[m_pos] == '_'))
        ++m_pos;
      push(TokenType::Name, m_src.substr(s, m_pos - s));
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      lex_number();
      return;
    }
    if (c == '\'' || c == '"') {
      int line = m_line;
      size_t s = ++m_pos;
      while (m_pos < m_src.size() && m_src[m_pos] != c) {
        if (m_src[m_pos] == '\\') ++m_pos;
        else if (m_src[m_pos] == '\n') ++m_line;
        ++m_pos;
      }
      if (m_pos >= m_src.size()) throw SyntaxError("unterminated string literal", line);
      std::string body = m_src.substr(s, m_pos - s);
      ++m_pos;
      Token t;
      t.type = TokenType::String;
      t.value = unescape(body, line);
      t.line = line;
      m_tokens.push_back(std::move(t));
      return;
    }
    static const char* two[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : two) {
      if (m_src.compare(m_pos, 2, op) == 0) {
        m_pos += 2;
        push(TokenType::Operator, op);
        return;
      }
    }
    if (std::strchr("+-*/%~()[]{},.:|=<>;", c) && c != 0) {
      if (c == '(' || c == '[' || c == '{') ++balance;
      if (c == ')' || c == ']' || c == '}') {
        if (balance == 0) throw SyntaxError(std::string("unexpected '") + c + "'", m_line);
        --balance;
      }
      ++m_pos;
      push(TokenType::Operator, std::string(1, c));
      return;
    }
    throw SyntaxError(std::string("unexpected character '") + c + "'", m_line);
  }

  void lex_number() {
    size_t s = m_pos;
    auto digits = [&] {
      while (m_pos < m_src.size() && (std::isdigit(static_cast<unsigned char>(m_src[m_pos])) ||
                                      (m_src[m_pos] == '_' && m_pos + 1 < m_src.size() &&
                                       std::isdigit(static_cast<unsigned char>(m_src[m_pos + 1])))))
        ++m_pos;
    };
    digits();
    bool is_float = false;
    if (m_pos + 1 < m_src.size() && m_src[m_pos] == '.' &&
        std::isdigit(static_cast<unsigned char>(m_src[m_pos + 1])) &&
        !(s > 0 && m_src[s - 1] == '.')) {
      is_float = true;
      ++m_pos;
      digits();
    }
    if (m_pos < m_src.size() && (m_src[m_pos] == 'e' || m_src[m_pos] == 'E')) {
      size_t save = m_pos++;
      if (m_pos < m_src.size() && (m_src[m_pos] == '+' || m_src[m_pos] == '-')) ++m_pos;
      if (m_pos < m_src.size() && std::isdigit(static_cast<unsigned char>(m_src[m_pos]))) {
        is_float = true;
        digits();
      } else {
        m_pos = save;
      }
    }
    std::string text;
    for (size_t k = s; k < m_pos; ++k)
      if (m_src[k] != '_') text += m_src[k];
    Token t;
    t.line = m_line;
    t.value = text;
    if (is_float) {
      t.type = TokenType::Float;
      t.fvalue = std::strtod(text.c_str(), nullptr);
    } else {
      t.type = TokenType::Integer;
      errno = 0;
      t.ivalue = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) throw SyntaxError("integer literal too large: " + text, m_line);
    }
    m_tokens.push_back(std::move(t));
  }

  std::string m_src;
  size_t m_pos = 0;
  int m_line = 1;
  bool m_last_end_newline = false;
  std::vector<Token> m_tokens;
};

}  // namespace

std::vector<Token> lex(std::string_view source) { return Lexer(source).run(); }

}  // namespace hearth::jinja
