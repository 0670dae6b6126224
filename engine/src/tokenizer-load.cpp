/* Reading tokenizers from GGUF metadata and Hugging Face folders, and writing Hugging Face folders.
 *
 * Non-obvious choice: in a Hugging Face folder, tokenizer.json wins only when it describes a byte-level
 * BPE; otherwise tokenizer.model (SentencePiece) is used, with the added tokens that tokenizer.json or
 * tokenizer_config.json list past its pieces (Phi-3's <|user|>, <|end|>, ...). A SentencePiece-style
 * tokenizer.json (Metaspace, byte fallback) without tokenizer.model is reported as unsupported rather
 * than approximated.
 */
#include <fstream>
#include <functional>
#include <sstream>

#include "hearth/gguf.h"
#include "hearth/tokenizer.h"
#include "tokenizer-impl.h"

namespace hearth {

using detail::VocabSpec;
using json = nlohmann::json;

namespace {

bool is_llama3_family(const std::string& pre) {
  for (const char* n : {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"})
    if (pre == n) return true;
  return false;
}

// "'path'" built by appending: gcc 12 warns falsely (-Wrestrict) about "'" + std::string.
std::string quoted(const std::filesystem::path& p) {
  std::string s(1, '\'');
  s.append(p.string());
  s.push_back('\'');
  return s;
}

std::optional<TokenId> find_text(const std::vector<std::string>& tokens, const std::string& text) {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] == text) return TokenId(i);
  return std::nullopt;
}

}  // namespace

// ---- GGUF -------------------------------------------------------------------------------------------

namespace {
Expected<Tokenizer> tokenizer_from_gguf(const GgufFile& f);
Expected<Tokenizer> tokenizer_from_hf_folder(const std::filesystem::path& dir);
}  // namespace

// Nothing may throw across the public API: JSON type errors and allocation failures become Errors.
Expected<Tokenizer> Tokenizer::from_gguf(const GgufFile& f) {
  try {
    return tokenizer_from_gguf(f);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::format, f.path().string() + ": " + e.what());
  }
}

Expected<Tokenizer> Tokenizer::from_hf_folder(const std::filesystem::path& dir) {
  try {
    return tokenizer_from_hf_folder(dir);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::format, quoted(dir) + ": " + e.what());
  }
}

namespace {

using Kind = Tokenizer::Kind;

Expected<Tokenizer> tokenizer_from_gguf(const GgufFile& f) {
  VocabSpec spec;
  spec.source = f.path().string();
  const std::string& where = spec.source;
  auto model = f.get_string("tokenizer.ggml.model");
  if (!model) {
    if (f.find("tokenizer.ggml.model"))
      return make_error(ErrorCode::format, where + ": tokenizer.ggml.model: expected a string");
    return make_error(ErrorCode::not_found, where + ": no tokenizer (tokenizer.ggml.model is missing)");
  }
  if (*model == "llama") {
    spec.kind = Kind::sentencepiece;
  } else if (*model == "gpt2") {
    spec.kind = Kind::byte_level_bpe;
  } else if (*model == "bert") {
    spec.kind = Kind::wordpiece;
  } else {
    return make_error(ErrorCode::unsupported, where + ": tokenizer model '" + *model + "' is not supported",
                      "supported: llama (SentencePiece), gpt2 (byte-level BPE) and bert (WordPiece)");
  }

  auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) {
    if (f.find("tokenizer.ggml.tokens"))
      return make_error(ErrorCode::format, where + ": tokenizer.ggml.tokens: expected an array of strings");
    return make_error(ErrorCode::not_found, where + ": tokenizer.ggml.tokens is missing");
  }
  spec.tokens = std::move(*tokens);
  size_t n = spec.tokens.size();
  auto count_error = [&](const char* key, size_t got) {
    return make_error(ErrorCode::format, where + ": " + key + " has " + std::to_string(got) +
                                             " entries but tokenizer.ggml.tokens has " + std::to_string(n));
  };

  spec.types.assign(n, TokenType::normal);
  if (f.find("tokenizer.ggml.token_type")) {
    auto types = f.get_int_array("tokenizer.ggml.token_type");
    if (!types) return make_error(ErrorCode::format, where + ": tokenizer.ggml.token_type: expected an array of integers");
    if (types->size() != n) return count_error("tokenizer.ggml.token_type", types->size());
    for (size_t i = 0; i < n; ++i) {
      int64_t t = (*types)[i];
      // 0 is "undefined" in llama.cpp's numbering: treat as normal text.
      spec.types[i] = (t >= 1 && t <= 6) ? TokenType(t) : TokenType::normal;
    }
  }
  if (f.find("tokenizer.ggml.scores")) {
    auto scores = f.get_float_array("tokenizer.ggml.scores");
    if (!scores) return make_error(ErrorCode::format, where + ": tokenizer.ggml.scores: expected an array of numbers");
    if (scores->size() != n) return count_error("tokenizer.ggml.scores", scores->size());
    spec.scores = std::move(*scores);
  }

  if (spec.kind == Kind::byte_level_bpe) {
    auto merges = f.get_string_array("tokenizer.ggml.merges");
    if (!merges) {
      if (f.find("tokenizer.ggml.merges"))
        return make_error(ErrorCode::format, where + ": tokenizer.ggml.merges: expected an array of strings");
      return make_error(ErrorCode::not_found, where + ": tokenizer.ggml.merges is missing (needed by a gpt2 vocabulary)");
    }
    spec.merges.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
      const std::string& m = (*merges)[i];
      size_t sp = m.find(' ', 1);
      if (sp == std::string::npos || sp + 1 >= m.size())
        return make_error(ErrorCode::format, where + ": tokenizer.ggml.merges[" + std::to_string(i) + "] = '" + m +
                                                 "': expected two tokens separated by a space");
      spec.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
    }
    if (f.find("tokenizer.ggml.pre")) {
      auto pre = f.get_string("tokenizer.ggml.pre");
      if (!pre) return make_error(ErrorCode::format, where + ": tokenizer.ggml.pre: expected a string");
      spec.pre = *pre;
    }
    spec.ignore_merges = is_llama3_family(spec.pre) || spec.pre == "tekken";
    spec.add_bos = is_llama3_family(spec.pre) || spec.pre == "tekken";
  } else if (spec.kind == Kind::wordpiece) {
    // [CLS] text [SEP], as BERT's post-processor puts them.
    spec.add_bos = spec.add_eos = spec.add_space_prefix = true;
    for (auto [key, dst] : {std::pair{"tokenizer.ggml.cls_token_id", &spec.bos},
                            std::pair{"tokenizer.ggml.seperator_token_id", &spec.eos}}) {
      const GgufValue* v = f.find(key);
      if (!v) continue;
      auto id = v->as_int();
      if (!id || *id < 0 || uint64_t(*id) >= n)
        return make_error(ErrorCode::format, where + ": " + key + ": expected a token id below " + std::to_string(n));
      *dst = TokenId(*id);
    }
  } else {
    spec.add_bos = true;
    spec.add_space_prefix = true;
  }

  struct Key {
    const char* key;
    std::optional<TokenId>* dst;
  };
  for (Key k : {Key{"tokenizer.ggml.bos_token_id", &spec.bos}, Key{"tokenizer.ggml.eos_token_id", &spec.eos},
                Key{"tokenizer.ggml.eot_token_id", &spec.eot}, Key{"tokenizer.ggml.padding_token_id", &spec.pad},
                Key{"tokenizer.ggml.unknown_token_id", &spec.unk}}) {
    const GgufValue* v = f.find(k.key);
    if (!v) continue;
    auto id = v->as_int();
    if (!id) return make_error(ErrorCode::format, where + ": " + k.key + ": expected an integer");
    if (*id < 0 || uint64_t(*id) >= n) {
      // Converters often write a padding id one past the vocabulary; padding is never encoded, so ignore it.
      if (k.dst == &spec.pad) continue;
      return make_error(ErrorCode::format, where + ": " + k.key + " = " + std::to_string(*id) +
                                               " is outside the vocabulary (" + std::to_string(n) + " tokens)");
    }
    *k.dst = TokenId(*id);
  }
  if (spec.kind == Kind::sentencepiece) {
    if (!spec.unk) {
      for (size_t i = 0; i < n && !spec.unk; ++i)
        if (spec.types[i] == TokenType::unknown) spec.unk = TokenId(i);
      if (!spec.unk) spec.unk = find_text(spec.tokens, "<unk>");
    }
    if (!spec.bos) spec.bos = find_text(spec.tokens, "<s>");
    if (!spec.eos) spec.eos = find_text(spec.tokens, "</s>");
  }

  struct Flag {
    const char* key;
    bool* dst;
  };
  for (Flag fl : {Flag{"tokenizer.ggml.add_bos_token", &spec.add_bos}, Flag{"tokenizer.ggml.add_eos_token", &spec.add_eos},
                  Flag{"tokenizer.ggml.add_space_prefix", &spec.add_space_prefix},
                  Flag{"tokenizer.ggml.remove_extra_whitespaces", &spec.remove_extra_whitespaces}}) {
    const GgufValue* v = f.find(fl.key);
    if (!v) continue;
    auto b = v->as_bool();
    if (!b) return make_error(ErrorCode::format, where + ": " + fl.key + ": expected a boolean");
    *fl.dst = *b;
  }
  if (spec.kind == Kind::byte_level_bpe) spec.add_space_prefix = false;
  if (spec.kind == Kind::wordpiece) spec.add_space_prefix = true;
  return detail::build_tokenizer(std::move(spec));
}

// ---- Hugging Face folder ------------------------------------------------------------------------------

Expected<std::string> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error(ErrorCode::io, "cannot open " + quoted(p));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::io, "cannot read " + quoted(p));
  return ss.str();
}

Expected<json> read_json(const std::filesystem::path& p) {
  HEARTH_TRY(std::string text, read_file(p));
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    return make_error(ErrorCode::format, p.string() + ": invalid JSON at byte " + std::to_string(e.byte) + ": " + e.what());
  }
}

// A special token in tokenizer_config.json: a string, {"content": "..."} or null.
std::optional<std::string> token_content(const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return std::nullopt;
}

bool pre_tokenizer_has_byte_level(const json& j) {
  if (!j.is_object()) return false;
  auto t = j.find("type");
  if (t != j.end() && t->is_string() && *t == "ByteLevel") return true;
  auto seq = j.find("pretokenizers");
  if (seq != j.end() && seq->is_array())
    for (auto& s : *seq)
      if (pre_tokenizer_has_byte_level(s)) return true;
  return false;
}

bool is_byte_level_bpe(const json& tj) {
  if (!tj.is_object()) return false;
  auto m = tj.find("model");
  if (m == tj.end() || !m->is_object()) return false;
  auto type = m->find("type");
  if (type == m->end() || !type->is_string() || *type != "BPE") return false;
  auto pre = tj.find("pre_tokenizer");
  auto dec = tj.find("decoder");
  bool dec_bl = dec != tj.end() && dec->is_object() && dec->value("type", json()) == "ByteLevel";
  return (pre != tj.end() && pre_tokenizer_has_byte_level(*pre)) || dec_bl;
}

// Puts an added token at its id, growing the vocabulary with unused slots as needed.
Expected<void> apply_added_token(VocabSpec& spec, const json& t, int64_t id, const std::string& where,
                                 const std::string& path) {
  if (!t.is_object()) return make_error(ErrorCode::format, where + ": " + path + ": expected an object");
  auto c = t.find("content");
  if (c == t.end() || !c->is_string())
    return make_error(ErrorCode::format, where + ": " + path + ".content: expected a string");
  if (id < 0 || id > 50'000'000)
    return make_error(ErrorCode::format, where + ": " + path + ".id: " + std::to_string(id) + " is not a plausible token id");
  size_t i = size_t(id);
  if (i >= spec.tokens.size()) {
    for (size_t k = spec.tokens.size(); k <= i; ++k) {
      spec.tokens.push_back("[UNUSED_TOKEN_" + std::to_string(k) + "]");
      spec.types.push_back(TokenType::unused);
      if (!spec.scores.empty()) spec.scores.push_back(0.0f);
    }
  }
  spec.tokens[i] = c->get<std::string>();
  bool special = t.value("special", false);
  // A tokenizer.model piece keeps its own type (byte, unknown); others become control or user-defined.
  if (spec.types[i] != TokenType::unknown && spec.types[i] != TokenType::byte)
    spec.types[i] = special ? TokenType::control : TokenType::user_defined;
  detail::AddedTokenFlags fl;
  fl.lstrip = t.value("lstrip", false);
  fl.rstrip = t.value("rstrip", false);
  if (fl.lstrip || fl.rstrip) spec.added_flags[TokenId(id)] = fl;
  return {};
}

Expected<void> read_tokenizer_json_added(VocabSpec& spec, const json& tj, const std::string& where) {
  auto at = tj.find("added_tokens");
  if (at == tj.end() || at->is_null()) return {};
  if (!at->is_array()) return make_error(ErrorCode::format, where + ": added_tokens: expected an array");
  for (size_t k = 0; k < at->size(); ++k) {
    const json& t = (*at)[k];
    std::string path = "added_tokens[" + std::to_string(k) + "]";
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer())
      return make_error(ErrorCode::format, where + ": " + path + ".id: expected an integer");
    HEARTH_TRY_VOID(apply_added_token(spec, t, t["id"].get<int64_t>(), where, path));
  }
  return {};
}

Expected<VocabSpec> read_bpe_tokenizer_json(const json& tj, const std::string& where) {
  VocabSpec spec;
  spec.kind = Tokenizer::Kind::byte_level_bpe;
  spec.source = where;
  const json& m = tj.at("model");
  auto vocab = m.find("vocab");
  if (vocab == m.end() || !vocab->is_object())
    return make_error(ErrorCode::format, where + ": model.vocab: expected an object of token -> id");
  int64_t max_id = -1;
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    if (!it.value().is_number_integer())
      return make_error(ErrorCode::format, where + ": model.vocab[\"" + it.key() + "\"]: expected an integer id");
    int64_t id = it.value().get<int64_t>();
    if (id < 0 || id > 50'000'000)
      return make_error(ErrorCode::format, where + ": model.vocab[\"" + it.key() + "\"] = " + std::to_string(id) +
                                               " is not a plausible token id");
    max_id = std::max(max_id, id);
  }
  spec.tokens.assign(size_t(max_id + 1), std::string());
  spec.types.assign(size_t(max_id + 1), TokenType::unused);
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    size_t id = size_t(it.value().get<int64_t>());
    spec.tokens[id] = it.key();
    spec.types[id] = TokenType::normal;
  }
  for (size_t i = 0; i < spec.tokens.size(); ++i)
    if (spec.types[i] == TokenType::unused) spec.tokens[i] = "[UNUSED_TOKEN_" + std::to_string(i) + "]";

  auto merges = m.find("merges");
  if (merges == m.end() || !merges->is_array())
    return make_error(ErrorCode::format, where + ": model.merges: expected an array");
  spec.merges.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const json& e = (*merges)[i];
    if (e.is_string()) {
      const std::string& s = e.get_ref<const std::string&>();
      size_t sp = s.find(' ', 1);
      if (sp == std::string::npos || sp + 1 >= s.size())
        return make_error(ErrorCode::format, where + ": model.merges[" + std::to_string(i) + "] = '" + s +
                                                 "': expected two tokens separated by a space");
      spec.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      spec.merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      return make_error(ErrorCode::format, where + ": model.merges[" + std::to_string(i) +
                                               "]: expected \"a b\" or [\"a\", \"b\"]");
    }
  }
  if (auto im = m.find("ignore_merges"); im != m.end() && im->is_boolean()) spec.ignore_merges = *im;
  auto pre = tj.find("pre_tokenizer");
  spec.hf_pre_tokenizer = pre == tj.end() ? json() : *pre;
  auto norm = tj.find("normalizer");
  if (norm != tj.end() && !norm->is_null()) {
    // NFC only changes text that is not already composed; Hearth passes text through unchanged.
    std::function<bool(const json&)> ok = [&](const json& n) {
      if (!n.is_object()) return false;
      std::string type = n.value("type", "");
      if (type == "NFC") return true;
      if (type == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array()) {
        for (auto& s : n["normalizers"])
          if (!ok(s)) return false;
        return true;
      }
      return false;
    };
    if (!ok(*norm))
      return make_error(ErrorCode::unsupported, where + ": normalizer '" + norm->value("type", std::string("?")) +
                                                    "' is not supported for byte-level BPE");
  }
  HEARTH_TRY_VOID(read_tokenizer_json_added(spec, tj, where));
  // BOS/EOS from a TemplateProcessing post-processor (possibly inside a Sequence, as Llama 3 has it):
  // special tokens before the sequence are BOS, after it EOS.
  std::function<void(const json&)> post = [&](const json& pp) {
    if (!pp.is_object()) return;
    std::string type = pp.value("type", "");
    if (type == "Sequence") {
      auto procs = pp.find("processors");
      if (procs != pp.end() && procs->is_array())
        for (auto& p : *procs) post(p);
      return;
    }
    auto single = pp.find("single");
    if (type != "TemplateProcessing" || single == pp.end() || !single->is_array()) return;
    bool seen_seq = false;
    for (auto& item : *single) {
      if (!item.is_object()) continue;
      if (item.contains("Sequence")) {
        seen_seq = true;
        continue;
      }
      auto st = item.find("SpecialToken");
      if (st == item.end() || !st->is_object()) continue;
      auto tid = find_text(spec.tokens, st->value("id", ""));
      if (!tid) continue;
      if (!seen_seq) {
        spec.add_bos = true;
        spec.bos = tid;
      } else {
        spec.add_eos = true;
        spec.eos = tid;
      }
    }
  };
  if (auto pp = tj.find("post_processor"); pp != tj.end()) post(*pp);
  return spec;
}


Expected<Tokenizer> tokenizer_from_hf_folder(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return make_error(ErrorCode::not_found, quoted(dir) + " is not a folder");
  auto tj_path = dir / "tokenizer.json";
  auto tm_path = dir / "tokenizer.model";
  auto cfg_path = dir / "tokenizer_config.json";
  bool has_tj = std::filesystem::exists(tj_path, ec);
  bool has_tm = std::filesystem::exists(tm_path, ec);
  json tj;
  if (has_tj) {
    HEARTH_TRY(tj, read_json(tj_path));
    if (!tj.is_object()) return make_error(ErrorCode::format, tj_path.string() + ": expected a JSON object");
  }
  VocabSpec spec;
  if (has_tj && is_byte_level_bpe(tj)) {
    HEARTH_TRY(spec, read_bpe_tokenizer_json(tj, tj_path.string()));
  } else if (has_tm) {
    HEARTH_TRY(std::string bytes, read_file(tm_path));
    HEARTH_TRY(spec, detail::parse_spm_proto(bytes, tm_path.string()));
    if (has_tj) HEARTH_TRY_VOID(read_tokenizer_json_added(spec, tj, tj_path.string()));
  } else if (has_tj) {
    auto m = tj.find("model");
    if (m == tj.end() || !m->is_object() || !m->contains("type"))
      return make_error(ErrorCode::format, tj_path.string() + ": model.type: missing");
    std::string type = (*m)["type"].is_string() ? (*m)["type"].get<std::string>() : "?";
    if (type == "BPE" && !m->contains("vocab"))
      return make_error(ErrorCode::format, tj_path.string() + ": model.vocab: missing");
    return make_error(ErrorCode::unsupported,
                      tj_path.string() + ": a " + type + " tokenizer without a ByteLevel pre-tokenizer is not supported",
                      type == "BPE" ? "for a SentencePiece-style model, add its tokenizer.model" : "");
  } else {
    return make_error(ErrorCode::not_found, quoted(dir) + " has neither tokenizer.json nor tokenizer.model");
  }

  if (std::filesystem::exists(cfg_path, ec)) {
    HEARTH_TRY(json cfg, read_json(cfg_path));
    if (!cfg.is_object()) return make_error(ErrorCode::format, cfg_path.string() + ": expected a JSON object");
    const std::string where = cfg_path.string();
    if (auto atd = cfg.find("added_tokens_decoder"); atd != cfg.end() && atd->is_object()) {
      for (auto it = atd->begin(); it != atd->end(); ++it) {
        int64_t id = -1;
        try {
          size_t used = 0;
          id = std::stoll(it.key(), &used);
          if (used != it.key().size()) id = -1;
        } catch (...) {
          id = -1;
        }
        if (id < 0)
          return make_error(ErrorCode::format, where + ": added_tokens_decoder: key '" + it.key() + "' is not a token id");
        HEARTH_TRY_VOID(apply_added_token(spec, it.value(), id, where, "added_tokens_decoder[\"" + it.key() + "\"]"));
      }
    }
    for (auto [key, dst] : {std::pair{"add_bos_token", &spec.add_bos}, std::pair{"add_eos_token", &spec.add_eos}}) {
      auto it = cfg.find(key);
      if (it == cfg.end() || it->is_null()) continue;
      if (!it->is_boolean()) return make_error(ErrorCode::format, where + ": " + key + ": expected true or false");
      *dst = *it;
    }
    for (auto [key, dst] : {std::pair{"bos_token", &spec.bos}, std::pair{"eos_token", &spec.eos},
                            std::pair{"unk_token", &spec.unk}, std::pair{"pad_token", &spec.pad}}) {
      auto text = token_content(cfg, key);
      if (!text) continue;
      auto id = find_text(spec.tokens, *text);
      if (id) *dst = id;
    }
  }
  if (spec.add_bos && !spec.bos) spec.add_bos = false;
  if (spec.add_eos && !spec.eos) spec.add_eos = false;
  return detail::build_tokenizer(std::move(spec));
}

}  // namespace

Expected<void> Tokenizer::save_hf_folder(const std::filesystem::path& dir) const {
  const Impl& im = *m_impl;
  if (im.kind == Kind::wordpiece)
    return make_error(ErrorCode::unsupported, "writing a WordPiece tokenizer as a Hugging Face folder is not supported");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::io, "cannot create " + quoted(dir) + ": " + ec.message());
  auto write = [&](const std::string& name, const std::string& data) -> Expected<void> {
    auto p = dir / name;
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    if (!out) return make_error(ErrorCode::io, "cannot write " + quoted(p));
    out.write(data.data(), std::streamsize(data.size()));
    out.close();
    if (!out) return make_error(ErrorCode::io, "cannot write " + quoted(p));
    return {};
  };
  auto text_or_null = [&](const std::optional<TokenId>& id) -> json {
    return id ? json(im.texts[*id]) : json(nullptr);
  };
  json cfg = {{"add_bos_token", im.add_bos},         {"add_eos_token", im.add_eos},
              {"bos_token", text_or_null(im.bos)},   {"eos_token", text_or_null(im.eos)},
              {"unk_token", text_or_null(im.unk)},   {"pad_token", text_or_null(im.pad)},
              {"clean_up_tokenization_spaces", false}};
  if (im.kind == Kind::sentencepiece) {
    cfg["tokenizer_class"] = "LlamaTokenizer";
    HEARTH_TRY_VOID(write("tokenizer.model", im.spm->serialized_for_file()));
  } else {
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast";
    // A std::map-backed object: ordered_json looks keys up linearly, far too slow for 100k tokens.
    json vocab = json::object();
    json added = json::array();
    for (size_t i = 0; i < im.texts.size(); ++i) {
      TokenType t = im.types[i];
      if (t == TokenType::unused) continue;
      vocab.emplace(im.texts[i], i);  // the first id of a repeated text wins
      if (t == TokenType::control || t == TokenType::user_defined || t == TokenType::unknown) {
        bool special = t != TokenType::user_defined;
        added.push_back({{"id", i},           {"content", im.texts[i]}, {"single_word", false},
                         {"lstrip", false},   {"rstrip", false},       {"normalized", !special},
                         {"special", special}});
      }
    }
    json merges = json::array();
    for (auto [a, b] : im.bpe->merges()) merges.push_back(im.texts[a] + " " + im.texts[b]);
    json tj;
    tj["version"] = "1.0";
    tj["truncation"] = nullptr;
    tj["padding"] = nullptr;
    tj["added_tokens"] = added;
    tj["normalizer"] = nullptr;
    tj["pre_tokenizer"] = im.bpe->pre_tokenizer().to_json();
    tj["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
    tj["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    tj["model"] = {{"type", "BPE"},
                   {"dropout", nullptr},
                   {"unk_token", nullptr},
                   {"continuing_subword_prefix", nullptr},
                   {"end_of_word_suffix", nullptr},
                   {"fuse_unk", false},
                   {"byte_fallback", false},
                   {"ignore_merges", im.bpe->ignore_merges()},
                   {"vocab", vocab},
                   {"merges", merges}};
    HEARTH_TRY_VOID(write("tokenizer.json", tj.dump(1)));
  }
  return write("tokenizer_config.json", cfg.dump(2));
}

Expected<Tokenizer> load_tokenizer(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Tokenizer::from_hf_folder(path);
  if (!std::filesystem::exists(path, ec))
    return make_error(ErrorCode::not_found, quoted(path) + " does not exist");
  HEARTH_TRY(GgufFile f, GgufFile::open(path));
  return Tokenizer::from_gguf(f);
}

}  // namespace hearth
