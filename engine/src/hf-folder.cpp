/* Reading the JSON files of a Hugging Face model folder (see hearth/hf-folder.h).
 *
 * Non-obvious choice: when a folder has both `tokenizer.model` and `tokenizer.json` (Llama 2 style
 * repositories ship both), the SentencePiece model wins: it is the original and the one the
 * SentencePiece tokenizer loads; `tokenizer.json` is then used only to look up special-token ids.
 */
#include "hearth/hf-folder.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

namespace hearth {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Fail {
  ErrorCode code;
  std::string message;
};

[[noreturn]] void fail(const std::string& where, const std::string& what, ErrorCode code = ErrorCode::format) {
  throw Fail{code, where + ": " + what};
}

json parse_json(const std::string& text, const std::string& where) {
  try {
    json j = json::parse(text);
    if (!j.is_object()) fail(where, "expected a JSON object at the top level");
    return j;
  } catch (const json::exception& e) {
    fail(where, std::string("not valid JSON: ") + e.what());
  }
}

const json* member(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<int64_t> opt_int(const json& j, const char* key, const std::string& where) {
  const json* v = member(j, key);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u > uint64_t(INT64_MAX)) fail(where, std::string("\"") + key + "\" is too large");
    return int64_t(u);
  }
  if (v->is_number_integer()) return v->get<int64_t>();
  fail(where, std::string("\"") + key + "\" should be an integer, found " + v->dump());
}

int64_t req_int(const json& j, const char* key, const std::string& where, int64_t min = 1) {
  auto v = opt_int(j, key, where);
  if (!v) fail(where, std::string("missing \"") + key + "\"");
  if (*v < min)
    fail(where, std::string("\"") + key + "\" is " + std::to_string(*v) + ", expected at least " + std::to_string(min));
  return *v;
}

std::optional<double> opt_num(const json& j, const char* key, const std::string& where) {
  const json* v = member(j, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) fail(where, std::string("\"") + key + "\" should be a number, found " + v->dump());
  return v->get<double>();
}

std::optional<bool> opt_bool(const json& j, const char* key, const std::string& where) {
  const json* v = member(j, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) fail(where, std::string("\"") + key + "\" should be true or false, found " + v->dump());
  return v->get<bool>();
}

// A number or a list of numbers (eos_token_id).
std::vector<int64_t> int_or_list(const json& j, const char* key, const std::string& where) {
  const json* v = member(j, key);
  std::vector<int64_t> out;
  if (!v) return out;
  auto one = [&](const json& x) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0)
      fail(where, std::string("\"") + key + "\" should hold token ids, found " + x.dump());
    out.push_back(x.get<int64_t>());
  };
  if (v->is_array())
    for (auto& x : *v) one(x);
  else
    one(*v);
  return out;
}

// A string or an AddedToken object {"content": ...} (bos_token, eos_token).
std::optional<std::string> token_text(const json& j, const char* key, const std::string& where) {
  const json* v = member(j, key);
  if (!v) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) {
    auto c = v->find("content");
    if (c != v->end() && c->is_string()) return c->get<std::string>();
  }
  fail(where, std::string("\"") + key + "\" should be a string or {\"content\": ...}, found " + v->dump());
}

std::string read_text_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) fail(p.string(), "cannot open", ErrorCode::io);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(p.string(), "cannot read", ErrorCode::io);
  return ss.str();
}

HfConfig config_from(const json& j, const std::string& where) {
  HfConfig c;
  if (const json* a = member(j, "architectures")) {
    if (!a->is_array() || (!a->empty() && !(*a)[0].is_string()))
      fail(where, "\"architectures\" should be a list of class names");
    if (!a->empty()) c.architecture = (*a)[0].get<std::string>();
  }
  if (const json* m = member(j, "model_type")) {
    if (!m->is_string()) fail(where, "\"model_type\" should be a string");
    c.model_type = m->get<std::string>();
  }
  if (c.architecture.empty() && c.model_type.empty())
    fail(where, "neither \"architectures\" nor \"model_type\" says what the model is");
  c.hidden_size = req_int(j, "hidden_size", where);
  c.num_hidden_layers = req_int(j, "num_hidden_layers", where);
  c.num_attention_heads = req_int(j, "num_attention_heads", where);
  c.num_key_value_heads = opt_int(j, "num_key_value_heads", where).value_or(c.num_attention_heads);
  c.head_dim = opt_int(j, "head_dim", where);
  c.intermediate_size = req_int(j, "intermediate_size", where);
  c.vocab_size = req_int(j, "vocab_size", where);
  c.max_position_embeddings = req_int(j, "max_position_embeddings", where);
  c.rope_theta = opt_num(j, "rope_theta", where).value_or(10000.0);
  c.rms_norm_eps = opt_num(j, "rms_norm_eps", where).value_or(1e-6);
  c.tie_word_embeddings = opt_bool(j, "tie_word_embeddings", where).value_or(false);
  c.attention_bias = opt_bool(j, "attention_bias", where).value_or(false);
  c.bos_token_id = opt_int(j, "bos_token_id", where);
  c.eos_token_ids = int_or_list(j, "eos_token_id", where);
  if (const json* rs = member(j, "rope_scaling")) {
    if (!rs->is_object()) fail(where, "\"rope_scaling\" should be an object or null");
    std::string kind;
    for (const char* k : {"rope_type", "type"})
      if (const json* t = member(*rs, k)) {
        if (!t->is_string()) fail(where, std::string("rope_scaling.") + k + " should be a string");
        kind = t->get<std::string>();
        break;
      }
    const std::string rw = where + " rope_scaling";
    if (kind == "linear") {
      c.rope_scaling.kind = RopeScalingKind::linear;
      c.rope_scaling.factor = float(opt_num(*rs, "factor", rw).value_or(1.0));
    } else if (kind == "llama3") {
      c.rope_scaling.kind = RopeScalingKind::llama3;
      c.rope_scaling.factor = float(opt_num(*rs, "factor", rw).value_or(8.0));
      c.rope_scaling.low_freq_factor = float(opt_num(*rs, "low_freq_factor", rw).value_or(1.0));
      c.rope_scaling.high_freq_factor = float(opt_num(*rs, "high_freq_factor", rw).value_or(4.0));
      c.rope_scaling.original_ctx = opt_int(*rs, "original_max_position_embeddings", rw).value_or(8192);
      if (c.rope_scaling.high_freq_factor <= c.rope_scaling.low_freq_factor || c.rope_scaling.original_ctx <= 0)
        fail(rw, "llama3 needs high_freq_factor > low_freq_factor and a positive original_max_position_embeddings");
    } else if (kind == "default" || kind.empty()) {
      c.rope_scaling.kind = RopeScalingKind::none;
    } else {
      fail(where, "rope_scaling type '" + kind + "' is not supported (linear and llama3 are)",
           ErrorCode::unsupported);
    }
    if (c.rope_scaling.factor <= 0) fail(rw, "factor must be positive");
  }
  return c;
}

HfGenerationConfig generation_from(const json& j, const std::string& where) {
  HfGenerationConfig g;
  g.bos_token_id = opt_int(j, "bos_token_id", where);
  g.eos_token_ids = int_or_list(j, "eos_token_id", where);
  if (auto v = opt_num(j, "temperature", where)) g.sampling.temperature = float(*v);
  if (auto v = opt_num(j, "top_p", where)) g.sampling.top_p = float(*v);
  g.sampling.top_k = opt_int(j, "top_k", where);
  if (auto v = opt_num(j, "repetition_penalty", where)) g.sampling.repetition_penalty = float(*v);
  g.sampling.do_sample = opt_bool(j, "do_sample", where);
  return g;
}

HfTokenizerConfig tokenizer_config_from(const json& j, const std::string& where) {
  HfTokenizerConfig t;
  if (const json* ct = member(j, "chat_template")) {
    if (ct->is_string()) {
      t.chat_template = ct->get<std::string>();
    } else if (ct->is_array()) {
      // A list of named templates: use "default" (as transformers does without a tool request).
      for (auto& e : *ct) {
        if (!e.is_object() || !e.contains("name") || !e.contains("template") || !e["name"].is_string() ||
            !e["template"].is_string())
          fail(where, "chat_template list entries should be {\"name\": ..., \"template\": ...}");
        if (e["name"] == "default") t.chat_template = e["template"].get<std::string>();
      }
    } else {
      fail(where, "\"chat_template\" should be a string or a list of {name, template}");
    }
  }
  t.bos_token = token_text(j, "bos_token", where);
  t.eos_token = token_text(j, "eos_token", where);
  t.add_bos_token = opt_bool(j, "add_bos_token", where);
  t.add_eos_token = opt_bool(j, "add_eos_token", where);
  return t;
}

// Does tokenizer.json's post-processor put a special token before the sequence (i.e. add BOS)?
std::optional<bool> post_processor_adds_bos(const json& pp) {
  if (!pp.is_object()) return std::nullopt;
  auto type = pp.value("type", std::string());
  if (type == "Sequence" && pp.contains("processors") && pp["processors"].is_array()) {
    for (auto& p : pp["processors"])
      if (auto r = post_processor_adds_bos(p)) return r;
    return std::nullopt;
  }
  if (type == "TemplateProcessing" && pp.contains("single") && pp["single"].is_array()) {
    const json& s = pp["single"];
    return !s.empty() && s[0].is_object() && s[0].contains("SpecialToken");
  }
  return std::nullopt;
}

template <class T>
Expected<T> guarded(const std::function<T()>& fn) {
  try {
    return fn();
  } catch (const Fail& f) {
    return make_error(f.code, f.message);
  } catch (const json::exception& e) {
    return make_error(ErrorCode::format, e.what());
  }
}

}  // namespace

Expected<HfConfig> parse_hf_config(const std::string& text, const std::string& where) {
  return guarded<HfConfig>([&] { return config_from(parse_json(text, where), where); });
}
Expected<HfGenerationConfig> parse_hf_generation_config(const std::string& text, const std::string& where) {
  return guarded<HfGenerationConfig>([&] { return generation_from(parse_json(text, where), where); });
}
Expected<HfTokenizerConfig> parse_hf_tokenizer_config(const std::string& text, const std::string& where) {
  return guarded<HfTokenizerConfig>([&] { return tokenizer_config_from(parse_json(text, where), where); });
}

Expected<HfFolder> read_hf_folder(const fs::path& folder) {
  return guarded<HfFolder>([&] {
    HfFolder f;
    f.path = folder;
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) fail(folder.string(), "not a folder", ErrorCode::not_found);
    const fs::path cfg = folder / "config.json";
    if (!fs::exists(cfg, ec))
      fail(folder.string(), "no config.json: not a Hugging Face model folder", ErrorCode::not_found);
    f.config = config_from(parse_json(read_text_file(cfg), cfg.string()), cfg.string());
    const fs::path gen = folder / "generation_config.json";
    if (fs::exists(gen, ec)) f.generation = generation_from(parse_json(read_text_file(gen), gen.string()), gen.string());
    const fs::path tc = folder / "tokenizer_config.json";
    if (fs::exists(tc, ec))
      f.tokenizer_config = tokenizer_config_from(parse_json(read_text_file(tc), tc.string()), tc.string());

    TokenizerInfo& t = f.tokenizer;
    const fs::path spm = folder / "tokenizer.model";
    const fs::path tj = folder / "tokenizer.json";
    // Special-token text -> id, from whichever tokenizer file is present.
    std::function<std::optional<int64_t>(const std::string&)> lookup = [](const std::string&) {
      return std::optional<int64_t>();
    };
    json tok_json;
    std::optional<bool> pp_bos;
    if (fs::exists(tj, ec)) {
      const std::string where = tj.string();
      tok_json = parse_json(read_text_file(tj), where);
      const json* model = member(tok_json, "model");
      if (!model || !model->is_object()) fail(where, "missing \"model\" object");
      std::string type = model->value("type", std::string());
      if (type.empty()) {
        // Older files omit model.type: BPE files have merges, WordPiece ones a continuing prefix.
        if (model->contains("merges")) type = "BPE";
        else if (model->contains("continuing_subword_prefix")) type = "WordPiece";
        else if (model->contains("vocab") && (*model)["vocab"].is_array()) type = "Unigram";
      }
      t.model = type;
      t.kind = type == "BPE" ? TokenizerKind::bpe
               : type == "WordPiece" ? TokenizerKind::wordpiece
               : type == "Unigram" ? TokenizerKind::unigram
                                    : TokenizerKind::other;
      int64_t n = 0;
      if (const json* v = member(*model, "vocab")) {
        if (v->is_object()) {
          for (auto it = v->begin(); it != v->end(); ++it)
            if (it.value().is_number_integer()) n = std::max<int64_t>(n, it.value().get<int64_t>() + 1);
        } else if (v->is_array()) {
          n = int64_t(v->size());
        }
      }
      if (const json* added = member(tok_json, "added_tokens"); added && added->is_array())
        for (auto& a : *added)
          if (a.is_object() && a.contains("id") && a["id"].is_number_integer())
            n = std::max<int64_t>(n, a["id"].get<int64_t>() + 1);
      t.n_tokens = n;
      t.file = tj;
      if (const json* pp = member(tok_json, "post_processor")) pp_bos = post_processor_adds_bos(*pp);
      lookup = [&tok_json](const std::string& text) -> std::optional<int64_t> {
        if (const json* added = member(tok_json, "added_tokens"); added && added->is_array())
          for (auto& a : *added)
            if (a.is_object() && a.contains("id") && a["id"].is_number_integer() && a.contains("content") &&
                a["content"].is_string() && a["content"].get<std::string>() == text)
              return a["id"].get<int64_t>();
        const json& v = tok_json["model"]["vocab"];
        if (v.is_object()) {
          auto it = v.find(text);
          if (it != v.end() && it->is_number_integer()) return it->get<int64_t>();
        }
        return std::nullopt;
      };
    }
    sentencepiece::SentencePieceProcessor sp;
    if (fs::exists(spm, ec)) {
      auto st = sp.Load(spm.string());
      if (!st.ok()) fail(spm.string(), "not a SentencePiece model: " + st.ToString());
      t.kind = TokenizerKind::sentencepiece;
      t.model = "llama";
      t.file = spm;
      t.n_tokens = sp.GetPieceSize();
      lookup = [&sp](const std::string& text) -> std::optional<int64_t> {
        int id = sp.PieceToId(text);
        if (id == sp.unk_id() && sp.IdToPiece(id) != text) return std::nullopt;
        return int64_t(id);
      };
    }

    const HfTokenizerConfig& tcfg = f.tokenizer_config;
    t.bos_token = tcfg.bos_token.value_or("");
    t.eos_token = tcfg.eos_token.value_or("");
    t.bos_id = f.generation.bos_token_id ? f.generation.bos_token_id : f.config.bos_token_id;
    if (!t.bos_id && tcfg.bos_token) t.bos_id = lookup(*tcfg.bos_token);
    t.eos_ids = !f.generation.eos_token_ids.empty() ? f.generation.eos_token_ids : f.config.eos_token_ids;
    if (t.eos_ids.empty() && tcfg.eos_token)
      if (auto id = lookup(*tcfg.eos_token)) t.eos_ids.push_back(*id);
    // A SentencePiece model knows its own BOS/EOS when no JSON file says.
    if (t.kind == TokenizerKind::sentencepiece) {
      if (!t.bos_id && sp.bos_id() >= 0) t.bos_id = sp.bos_id();
      if (t.eos_ids.empty() && sp.eos_id() >= 0) t.eos_ids.push_back(sp.eos_id());
      if (t.bos_id && t.bos_token.empty() && *t.bos_id < sp.GetPieceSize()) t.bos_token = sp.IdToPiece(int(*t.bos_id));
      if (!t.eos_ids.empty() && t.eos_token.empty() && t.eos_ids[0] < sp.GetPieceSize())
        t.eos_token = sp.IdToPiece(int(t.eos_ids[0]));
    }
    if (!t.eos_ids.empty()) t.eos_id = t.eos_ids.front();
    if (tcfg.add_bos_token) t.add_bos = *tcfg.add_bos_token;
    else if (t.kind == TokenizerKind::sentencepiece) t.add_bos = true;
    else if (pp_bos) t.add_bos = *pp_bos;
    // Newer repositories keep the template in its own file, and transformers (4.47 on) lets that file
    // win over tokenizer_config.json's "chat_template"; hearth-cli template does the same.
    const fs::path jinja = folder / "chat_template.jinja";
    if (fs::exists(jinja, ec)) t.chat_template = read_text_file(jinja);
    else t.chat_template = tcfg.chat_template;
    return f;
  });
}

}  // namespace hearth
