/* Export of a finished run (hearth/trainer/export.h): the LoRA factors as a PEFT folder or a GGUF
 * adapter, and the merged network as a safetensors folder or a GGUF file in F16, Q8_0 or Q4_K, each
 * carrying the base's tokenizer, chat template and special tokens.
 *
 * Non-obvious choice: the tokenizer is carried in the form the target format needs, converted when the
 * base has the other one (a GGUF base has no tokenizer file, so its vocabulary is written out with
 * Tokenizer::save_hf_folder; a Hugging Face base's tokenizer.model / tokenizer.json is turned into GGUF
 * tokenizer metadata), and every conversion is checked by tokenizing a sample text both ways: an export
 * whose tokenizer would split text differently from its base is refused rather than written.
 */
#include "hearth/trainer/export.h"

#include <sentencepiece_processor.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "hearth/gguf.h"
#include "hearth/model-writer.h"
#include "hearth/tokenizer.h"

namespace hearth::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct TargetName {
  const char* module;  // after "model.layers.N."
  std::optional<LoraMatrix> LoraLayer::*member;
};

const std::vector<TargetName>& target_names() {
  static const std::vector<TargetName> t = {
      {"self_attn.q_proj", &LoraLayer::wq}, {"self_attn.k_proj", &LoraLayer::wk}, {"self_attn.v_proj", &LoraLayer::wv},
      {"self_attn.o_proj", &LoraLayer::wo}, {"mlp.gate_proj", &LoraLayer::gate},  {"mlp.up_proj", &LoraLayer::up},
      {"mlp.down_proj", &LoraLayer::down},
  };
  return t;
}

const std::vector<std::string>& known_formats() {
  static const std::vector<std::string> f = {"peft", "gguf-lora", "safetensors", "gguf-f16", "gguf-q8_0", "gguf-q4_k"};
  return f;
}

bool is_adapter(const std::string& f) { return f == "peft" || f == "gguf-lora"; }

Expected<std::string> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error(ErrorCode::io, p.string() + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Expected<void> write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  if (!out) return make_error(ErrorCode::io, p.string() + ": cannot create");
  out << text;
  out.close();
  if (!out) return make_error(ErrorCode::io, p.string() + ": write failed (disk full?)");
  return {};
}

// Text that tells pre-tokenizers apart (digit runs, contractions, runs of spaces and newlines,
// punctuation, accents, CJK, emoji); used to check that a converted tokenizer splits text as the
// original does.
constexpr const char* PROBE =
    "Hello world! The 3 quick brown foxes, naïve café — jumped 42 times.\n  Done?\n\n\n"
    "I'm sure you'll see: DON'T stop 1234567 + 3.14159 = 12,345,678 ...   \t spaces\r\n"
    "print('x' * 10)  # code; 東京は晴れ 🦙🦙 ÅÄÖ ﬁ (x+y)^2 >>= <eos>   end  ";

Expected<void> check_same_tokens(const Tokenizer& want, const Tokenizer& got, const std::string& what) {
  HEARTH_TRY(auto a, want.encode(PROBE, true));
  HEARTH_TRY(auto b, got.encode(PROBE, true));
  if (a != b)
    return make_error(ErrorCode::unsupported, what + ": the converted tokenizer splits text differently from the base's",
                      "export the other format (safetensors or GGUF, the base's own) instead");
  return {};
}

// GGUF names a byte-level BPE pre-tokenizer (tokenizer.ggml.pre) where tokenizer.json spells out its
// regular expressions: try the families the engine knows, most likely first, and keep the first whose
// tokenizer splits the probe exactly as the base's tokenizer.json does.
Expected<void> choose_bpe_pre(TokenizerData& td, const ModelDesc& d) {
  HEARTH_TRY(Tokenizer want, load_tokenizer(d.path));
  std::vector<std::string> names = {d.params.arch == Architecture::llama ? "llama-bpe" : "qwen2",
                                    "llama-bpe", "qwen2", "gpt-2", "qwen35", "gpt-4o", "tekken", "deepseek-llm",
                                    "deepseek-coder", "deepseek-v3", "falcon", "starcoder", "seed-coder",
                                    "bailingmoe", "poro-chat", "viking", "superbpe"};
  HEARTH_TRY(auto want_ids, want.encode(PROBE, false, true));
  std::set<std::string> tried;
  for (const std::string& pre : names) {
    if (!tried.insert(pre).second) continue;
    GgufWriter g;
    g.set_string("tokenizer.ggml.model", td.model);
    g.set_string("tokenizer.ggml.pre", pre);
    g.set_string_array("tokenizer.ggml.tokens", td.tokens);
    g.set_i32_array("tokenizer.ggml.token_type", td.token_types);
    g.set_string_array("tokenizer.ggml.merges", td.merges);
    auto bytes = g.serialize();
    if (!bytes) return Unexpected{bytes.error()};
    auto f = GgufFile::parse(bytes->data(), bytes->size(), "converted vocabulary");
    if (!f) continue;
    auto t = Tokenizer::from_gguf(*f);
    if (!t) continue;
    auto ids = t->encode(PROBE, false, true);
    if (ids && *ids == want_ids) {
      td.pre = pre;
      return {};
    }
  }
  return make_error(ErrorCode::unsupported,
                    d.tokenizer.file.string() + ": no GGUF pre-tokenizer Hearth knows splits text as this tokenizer.json does",
                    "export the merged model as a safetensors folder instead");
}

// GGUF tokenizer metadata from a Hugging Face base's tokenizer file.
Expected<TokenizerData> tokenizer_data_of_hf(const ModelDesc& d) {
  const TokenizerInfo& ti = d.tokenizer;
  TokenizerData td;
  const fs::path file = ti.file;
  if (file.filename() == "tokenizer.model") {
    sentencepiece::SentencePieceProcessor sp;
    auto st = sp.Load(file.string());
    if (!st.ok()) return make_error(ErrorCode::format, file.string() + ": " + st.ToString());
    td.model = "llama";
    for (int i = 0; i < sp.GetPieceSize(); ++i) {
      td.tokens.push_back(sp.IdToPiece(i));
      td.scores.push_back(sp.GetScore(i));
      TokenType t = TokenType::normal;
      if (sp.IsUnknown(i)) t = TokenType::unknown;
      else if (sp.IsControl(i)) t = TokenType::control;
      else if (sp.IsByte(i)) t = TokenType::byte;
      else if (sp.IsUnused(i)) t = TokenType::unused;
      td.token_types.push_back(int32_t(t));
    }
  } else if (file.filename() == "tokenizer.json") {
    HEARTH_TRY(std::string text, read_file(file));
    json j;
    try {
      j = json::parse(text);
    } catch (const json::exception& e) {
      return make_error(ErrorCode::format, file.string() + ": invalid JSON: " + e.what());
    }
    if (!j.contains("model") || !j["model"].is_object() || j["model"].value("type", "") != "BPE" ||
        !j["model"]["vocab"].is_object())
      return make_error(ErrorCode::unsupported, file.string() + ": only BPE tokenizer.json files can be carried into GGUF");
    std::map<int64_t, std::pair<std::string, TokenType>> by_id;
    for (auto& [piece, id] : j["model"]["vocab"].items())
      if (id.is_number_integer()) by_id[id.get<int64_t>()] = {piece, TokenType::normal};
    if (j.contains("added_tokens") && j["added_tokens"].is_array())
      for (auto& a : j["added_tokens"])
        if (a.is_object() && a.contains("id") && a.contains("content"))
          by_id[a["id"].get<int64_t>()] = {a["content"].get<std::string>(),
                                           a.value("special", false) ? TokenType::control : TokenType::user_defined};
    if (by_id.empty() || by_id.rbegin()->first > 10'000'000)
      return make_error(ErrorCode::format, file.string() + ": implausible vocabulary ids");
    const int64_t n = by_id.rbegin()->first + 1;
    td.model = "gpt2";
    td.tokens.assign(size_t(n), "");
    td.token_types.assign(size_t(n), int32_t(TokenType::unused));
    for (auto& [id, v] : by_id) {
      if (id < 0) continue;
      td.tokens[size_t(id)] = v.first;
      td.token_types[size_t(id)] = int32_t(v.second);
    }
    for (int64_t i = 0; i < n; ++i)
      if (td.tokens[size_t(i)].empty()) td.tokens[size_t(i)] = "[PAD" + std::to_string(i) + "]";
    for (auto& m : j["model"].value("merges", json::array())) {
      if (m.is_string()) td.merges.push_back(m.get<std::string>());
      else if (m.is_array() && m.size() == 2) td.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    }
    td.bos_id = ti.bos_id;
    td.eos_id = ti.eos_id;
    td.add_bos = ti.add_bos;
    HEARTH_TRY_VOID(choose_bpe_pre(td, d));
  } else {
    return make_error(ErrorCode::unsupported, d.path.string() + ": the base has no tokenizer file to carry");
  }
  td.bos_id = ti.bos_id;
  td.eos_id = ti.eos_id;
  td.add_bos = ti.add_bos;
  td.chat_template = ti.chat_template;
  return td;
}

// Hugging Face write options (special tokens, template, sampling) from a base model's description.
HfWriteOptions hf_options_of(const ModelDesc& d) {
  HfWriteOptions o;
  const TokenizerInfo& ti = d.tokenizer;
  o.chat_template = ti.chat_template;
  o.bos_id = ti.bos_id;
  o.eos_ids = ti.eos_ids;
  if (o.eos_ids.empty() && ti.eos_id) o.eos_ids.push_back(*ti.eos_id);
  if (!ti.bos_token.empty()) o.bos_token = ti.bos_token;
  if (!ti.eos_token.empty()) o.eos_token = ti.eos_token;
  o.add_bos = ti.add_bos;
  o.sampling = d.sampling;
  return o;
}

// The merged weights as a safetensors folder with the tokenizer of `base` or of a pretraining run.
Expected<void> write_merged_folder(const ModelWeights& w, const Model* base, const TokenizerData* tok,
                                   const fs::path& spm_model, const fs::path& folder) {
  if (base && base->desc().format == ModelFormat::hf_folder) {
    HfWriteOptions o = hf_options_of(base->desc());
    o.tokenizer_file = base->desc().tokenizer.file;
    HEARTH_TRY_VOID(write_hf_folder(w, folder, o));
    // Extra special-token and added-token facts live in the base's tokenizer_config.json: carry it,
    // with the template and special tokens the writer put in.
    const fs::path src_cfg = base->desc().path / "tokenizer_config.json";
    std::error_code ec;
    if (fs::exists(src_cfg, ec)) {
      HEARTH_TRY(std::string a, read_file(src_cfg));
      HEARTH_TRY(std::string b, read_file(folder / "tokenizer_config.json"));
      try {
        json merged = json::parse(a), ours = json::parse(b);
        for (auto& [k, v] : ours.items()) merged[k] = v;
        HEARTH_TRY_VOID(write_file(folder / "tokenizer_config.json", merged.dump(2) + "\n"));
      } catch (const json::exception& e) {
        return make_error(ErrorCode::format, src_cfg.string() + ": invalid JSON: " + e.what());
      }
    }
    return {};
  }
  if (base) {  // GGUF base: no tokenizer file; write the vocabulary out.
    const ModelDesc& d = base->desc();
    if (!base->gguf()) return make_error(ErrorCode::internal, "GGUF base without its file");
    HEARTH_TRY(Tokenizer t, Tokenizer::from_gguf(*base->gguf()));
    HfWriteOptions o = hf_options_of(d);
    HEARTH_TRY_VOID(write_hf_folder(w, folder, o));
    HEARTH_TRY(std::string ours_text, read_file(folder / "tokenizer_config.json"));
    HEARTH_TRY_VOID(t.save_hf_folder(folder));
    HEARTH_TRY(std::string tok_text, read_file(folder / "tokenizer_config.json"));
    try {
      json cfg = json::parse(tok_text), ours = json::parse(ours_text);
      for (auto& [k, v] : ours.items()) cfg[k] = v;
      HEARTH_TRY_VOID(write_file(folder / "tokenizer_config.json", cfg.dump(2) + "\n"));
    } catch (const json::exception& e) {
      return make_error(ErrorCode::internal, std::string("tokenizer_config.json: ") + e.what());
    }
    HEARTH_TRY(Tokenizer back, Tokenizer::from_hf_folder(folder));
    return check_same_tokens(t, back, folder.string());
  }
  // Pretraining: the trained SentencePiece model and its metadata.
  if (!tok) return make_error(ErrorCode::invalid_argument, "export without a base needs the trained tokenizer");
  HfWriteOptions o;
  o.tokenizer_file = spm_model;
  o.chat_template = tok->chat_template;
  o.bos_id = tok->bos_id;
  if (tok->eos_id) o.eos_ids.push_back(*tok->eos_id);
  auto text_of = [&](std::optional<int64_t> id) -> std::optional<std::string> {
    if (!id || *id < 0 || size_t(*id) >= tok->tokens.size()) return std::nullopt;
    return tok->tokens[size_t(*id)];
  };
  o.bos_token = text_of(tok->bos_id);
  o.eos_token = text_of(tok->eos_id);
  o.add_bos = tok->add_bos;
  return write_hf_folder(w, folder, o);
}

Expected<void> write_merged_gguf(const ModelWeights& w, const Model* base, const TokenizerData* tok, GgmlType type,
                                 const std::string& name, const fs::path& path) {
  GgufWriteOptions o;
  o.type = type;
  o.name = name;
  if (base && base->gguf()) {
    o.tokenizer_source = base->gguf();
    return write_gguf_model(w, path, o);
  }
  if (base) {
    HEARTH_TRY(o.tokenizer, tokenizer_data_of_hf(base->desc()));
    HEARTH_TRY_VOID(write_gguf_model(w, path, o));
    HEARTH_TRY(Tokenizer want, load_tokenizer(base->desc().path));
    HEARTH_TRY(Tokenizer got, load_tokenizer(path));
    return check_same_tokens(want, got, path.string());
  }
  if (!tok) return make_error(ErrorCode::invalid_argument, "export without a base needs the trained tokenizer");
  o.tokenizer = *tok;
  return write_gguf_model(w, path, o);
}

void remove_partial(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
}

}  // namespace

Expected<LoraAdapter> lora_adapter_of(const TrainModel& model, const std::string& base_name) {
  const ModelOptions& mo = model.options();
  if (mo.method != Method::lora)
    return make_error(ErrorCode::invalid_argument,
                      std::string("a ") + method_name(mo.method) + " run has no LoRA adapter to export");
  const ModelParams& p = model.params();
  LoraAdapter ad;
  ad.alpha = mo.lora.alpha;
  ad.rank = mo.lora.rank;
  ad.base_model = base_name;
  ad.layers.resize(size_t(p.n_layer));
  struct Pair {
    const Param *a = nullptr, *b = nullptr;
  };
  std::map<std::pair<int64_t, size_t>, Pair> found;
  for (const Param* prm : model.trainable()) {
    std::string_view n = prm->name;
    const std::string_view pre = "model.layers.";
    if (n.substr(0, pre.size()) != pre) continue;
    n.remove_prefix(pre.size());
    size_t dot = n.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot > 6) continue;
    int64_t layer = 0;
    bool digits = true;
    for (char c : n.substr(0, dot)) digits = digits && c >= '0' && c <= '9', layer = layer * 10 + (c - '0');
    if (!digits) continue;
    n.remove_prefix(dot + 1);
    for (size_t t = 0; t < target_names().size(); ++t) {
      const std::string mod = target_names()[t].module;
      if (n == mod + ".lora_A.weight") found[{layer, t}].a = prm;
      if (n == mod + ".lora_B.weight") found[{layer, t}].b = prm;
    }
  }
  if (found.empty()) return make_error(ErrorCode::invalid_argument, "the model has no LoRA factors");
  for (auto& [key, f] : found) {
    const std::string what = "model.layers." + std::to_string(key.first) + "." + target_names()[key.second].module;
    if (key.first < 0 || key.first >= p.n_layer)
      return make_error(ErrorCode::internal, what + ": layer outside the model");
    if (!f.a || !f.b) return make_error(ErrorCode::internal, what + ": lora_A without lora_B or the reverse");
    if (f.a->shape.size() != 2 || f.b->shape.size() != 2 || f.a->shape[0] != mo.lora.rank ||
        f.b->shape[1] != mo.lora.rank)
      return make_error(ErrorCode::internal, what + ": factor shapes do not match the rank " + std::to_string(mo.lora.rank));
    LoraMatrix m;
    m.rank = mo.lora.rank;
    m.n_in = f.a->shape[1];
    m.n_out = f.b->shape[0];
    m.a = f.a->value;
    m.b = f.b->value;
    ad.layers[size_t(key.first)].*(target_names()[key.second].member) = std::move(m);
  }
  return ad;
}

Expected<std::vector<ExportedFile>> export_model(const TrainModel& model, const Model* base,
                                                 const TokenizerData* tokenizer, const fs::path& spm_model,
                                                 const std::vector<std::string>& formats, const fs::path& dir,
                                                 const std::string& name) {
  // Check every request before writing anything.
  if (name.empty() || name.find('/') != std::string::npos)
    return make_error(ErrorCode::invalid_argument, "export name '" + name + "' must be non-empty and without '/'");
  std::vector<std::string> todo;
  for (const std::string& f : formats) {
    if (std::find(known_formats().begin(), known_formats().end(), f) == known_formats().end())
      return make_error(ErrorCode::invalid_argument, "unknown export format '" + f + "'",
                        "use peft, gguf-lora, safetensors, gguf-f16, gguf-q8_0 or gguf-q4_k");
    if (is_adapter(f) && model.options().method != Method::lora)
      return make_error(ErrorCode::invalid_argument, "export format '" + f + "' needs a LoRA run; this is a " +
                                                         method_name(model.options().method) + " run");
    if (is_adapter(f) && !base) return make_error(ErrorCode::invalid_argument, "an adapter export needs the base model");
    if (std::find(todo.begin(), todo.end(), f) == todo.end()) todo.push_back(f);
  }
  if (!base && !tokenizer)
    return make_error(ErrorCode::invalid_argument, "export without a base model needs the trained tokenizer");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::io, dir.string() + ": cannot create folder: " + ec.message());

  std::optional<LoraAdapter> adapter;
  std::optional<ModelWeights> merged;
  std::vector<ExportedFile> out;
  for (const std::string& f : todo) {
    fs::path path;
    Expected<void> r;
    try {
      if (is_adapter(f)) {
        if (!adapter) {
          HEARTH_TRY(LoraAdapter a, lora_adapter_of(model, base->desc().name));
          adapter = std::move(a);
        }
        if (f == "peft") {
          path = dir / (name + "-adapter");
          remove_partial(path);
          r = save_peft_adapter(*adapter, base->desc(), path);
        } else {
          path = dir / (name + "-lora.gguf");
          r = save_gguf_lora(*adapter, base->desc(), path);
        }
      } else {
        if (!merged) {
          HEARTH_TRY(ModelWeights w, model.merged_weights());
          merged = std::move(w);
        }
        if (f == "safetensors") {
          path = dir / (name + "-merged");
          remove_partial(path);
          r = write_merged_folder(*merged, base, tokenizer, spm_model, path);
        } else {
          const GgmlType type = f == "gguf-f16" ? GgmlType::F16 : f == "gguf-q8_0" ? GgmlType::Q8_0 : GgmlType::Q4_K;
          path = dir / (name + f.substr(4) + ".gguf");  // "-f16", "-q8_0", "-q4_k"
          r = write_merged_gguf(*merged, base, tokenizer, type, name, path);
        }
      }
    } catch (const std::exception& e) {
      r = make_error(ErrorCode::internal, "exporting " + f + ": " + e.what());
    }
    if (!r) {
      if (!path.empty()) remove_partial(path);
      Error e = r.error();
      e.message = "export " + f + (path.empty() ? "" : " to " + path.string()) + ": " + e.message;
      return Unexpected{e};
    }
    out.push_back({f, path});
  }
  return out;
}

}  // namespace hearth::train
