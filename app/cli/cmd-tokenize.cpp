/* `hearth-cli tokenize` and `hearth-cli detokenize`: a model's tokenizer from the command line.
 *
 *   hearth-cli tokenize -m MODEL (-f TEXTFILE | -p TEXT) [--ids] [--no-special]
 *   hearth-cli detokenize -m MODEL --ids "1 2 3" [--skip-special]
 *
 * Non-obvious choice: the text file is tokenized byte for byte, a final newline included, and
 * detokenize prints exactly the decoded text with no newline added, so both commands compose with
 * files and pipes without changing the text.
 */
#include <cstdint>
#include <iostream>
#include <sstream>

#include "command.h"
#include "hearth/tokenizer.h"

namespace hearth::cli {
namespace {

// A piece as a double-quoted string: printable text as is, escapes for control characters and for
// bytes that are not (or not yet) whole UTF-8 characters.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  size_t i = 0;
  auto hex = [&](unsigned char c) {
    const char* d = "0123456789abcdef";
    out += "\\x";
    out += d[c >> 4];
    out += d[c & 15];
  };
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
      ++i;
    } else if (c == '\n') {
      out += "\\n";
      ++i;
    } else if (c == '\t') {
      out += "\\t";
      ++i;
    } else if (c == '\r') {
      out += "\\r";
      ++i;
    } else if (c < 0x20 || c == 0x7F) {
      hex(c);
      ++i;
    } else if (c < 0x80) {
      out += char(c);
      ++i;
    } else {
      size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
      bool ok = len > 0 && i + len <= s.size();
      for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
      if (ok) {
        out.append(s, i, len);
        i += len;
      } else {
        hex(c);
        ++i;
      }
    }
  }
  return out + "\"";
}

void register_tokenize(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "tokenize",
      "Print the token ids of a text.\n"
      "Without --ids: one token per line, as  ID<TAB>\"PIECE\"<TAB>TYPE  where PIECE is the text the token\n"
      "stands for (escapes: \\n \\t \\r \\\" \\\\, and \\xNN for bytes that are not whole UTF-8 characters).\n"
      "With --ids: the ids on one line, separated by spaces.");
  struct Opts {
    std::string model, file, prompt;
    bool ids = false, no_special = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("-m,--model", o->model, "Model: a .gguf file (a vocabulary-only one is enough) or a Hugging Face folder")
      ->required();
  auto* f = sub->add_option("-f,--file", o->file, "Text file to tokenize (every byte, a final newline included)");
  auto* p = sub->add_option("-p,--prompt", o->prompt, "Text to tokenize");
  f->excludes(p);
  sub->add_flag("--ids", o->ids, "Print only the ids, on one line");
  sub->add_flag("--no-special", o->no_special,
                "Add no BOS/EOS and treat special-token text as plain text (default: add BOS/EOS as the model's "
                "metadata says and recognise special tokens such as <|im_start|>)");
  sub->callback([o, f, p] {
    if (!*f && !*p) throw CliError("tokenize: give the text with -f FILE or -p TEXT");
    std::string text = *f ? read_file_or_throw(o->file) : o->prompt;
    Tokenizer tok = unwrap(load_tokenizer(o->model));
    bool special = !o->no_special;
    auto ids = unwrap(tok.encode(text, special, special));
    std::ostringstream out;
    if (o->ids) {
      for (size_t i = 0; i < ids.size(); ++i) out << (i ? " " : "") << ids[i];
      out << "\n";
    } else {
      for (TokenId id : ids)
        out << id << "\t" << quoted(unwrap(tok.token_to_piece(id))) << "\t" << token_type_name(tok.token_type(id))
            << "\n";
    }
    std::cout << out.str() << std::flush;
  });
}

void register_detokenize(CLI::App& app) {
  auto* sub = app.add_subcommand("detokenize",
                                 "Print the text of token ids, exactly (no newline is added)");
  struct Opts {
    std::string model, ids;
    bool skip_special = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("-m,--model", o->model, "Model: a .gguf file or a Hugging Face folder")->required();
  sub->add_option("--ids", o->ids, "Token ids separated by spaces or commas, e.g. \"1 15043 3186\"")->required();
  sub->add_flag("--skip-special", o->skip_special, "Leave out control tokens (BOS, EOS, chat markers)");
  sub->callback([o] {
    std::vector<TokenId> ids;
    std::string s = o->ids;
    for (char& c : s)
      if (c == ',') c = ' ';
    std::istringstream in(s);
    std::string word;
    while (in >> word) {
      size_t used = 0;
      long long v = 0;
      try {
        v = std::stoll(word, &used);
      } catch (...) {
        used = 0;
      }
      if (used != word.size() || v < INT32_MIN || v > INT32_MAX)
        throw CliError("detokenize: '" + word + "' is not a token id");
      ids.push_back(TokenId(v));
    }
    Tokenizer tok = unwrap(load_tokenizer(o->model));
    std::string text = unwrap(tok.decode(ids, o->skip_special));
    std::cout << text << std::flush;
  });
}

CommandRegistration reg_tokenize(register_tokenize);
CommandRegistration reg_detokenize(register_detokenize);

}  // namespace
}  // namespace hearth::cli
