/* Pre-tokenization for byte-level BPE: each model family's split rules, the tokenizer.json pipeline
 * (Split, ByteLevel, Digits, Punctuation, Sequence), and GPT-2's byte-to-character mapping.
 *
 * Non-obvious choice: the GGUF family names (`tokenizer.ggml.pre`) are translated into the same step
 * pipeline that the family's own tokenizer.json declares, rather than into one flattened regex list.
 * Steps after the ByteLevel step then see byte-mapped text, as in Hugging Face's library; this matters
 * for Falcon, whose Digits step runs after ByteLevel and so also splits mapped characters such as '½'.
 * Regexes run on PCRE2 in UTF + UCP mode (\p{L}, \s and friends are Unicode-aware), JIT-compiled.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <functional>
#include <stdexcept>

#include "tokenizer-impl.h"
#include "unicode.h"

namespace hearth::detail {

// ---- regex ------------------------------------------------------------------------------------------

Regex::Regex(const std::string& pattern) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  m_code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err,
                         &err_off, nullptr);
  if (!m_code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    throw std::runtime_error("invalid regex '" + pattern + "' at offset " + std::to_string(err_off) + ": " +
                             reinterpret_cast<const char*>(buf));
  }
  // JIT is an optimization only: where it is unavailable the interpreter serves.
  pcre2_jit_compile(static_cast<pcre2_code*>(m_code), PCRE2_JIT_COMPLETE);
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(m_code)); }

void Regex::find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const {
  auto code = static_cast<pcre2_code*>(m_code);
  out.clear();
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  if (!md) throw std::bad_alloc();
  struct Guard {
    pcre2_match_data* md;
    ~Guard() { pcre2_match_data_free(md); }
  } guard{md};
  auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t offset = 0;
  uint32_t no_jit = 0;
  while (offset <= s.size()) {
    int rc = pcre2_match(code, subject, s.size(), offset, PCRE2_NO_UTF_CHECK | no_jit, md, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !no_jit) {
      no_jit = PCRE2_NO_JIT;  // deep backtracking: the interpreter keeps its frames on the heap
      continue;
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof buf);
      throw std::runtime_error(std::string("regex match failed: ") + reinterpret_cast<const char*>(buf));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t b = ov[0], e = ov[1];
    if (e < b) e = b;  // \K tricks; not used by any known pattern
    out.emplace_back(b, e);
    if (e == b) {
      if (b >= s.size()) break;
      size_t len = utf8_sequence_length(static_cast<uint8_t>(s[b]));
      offset = b + (len ? len : 1);
    } else {
      offset = e;
    }
  }
}

// ---- byte-level mapping -------------------------------------------------------------------------------

namespace {

struct ByteMap {
  uint32_t to_cp[256];
  int16_t from_cp[512];
  ByteMap() {
    for (auto& v : from_cp) v = -1;
    // Printable Latin-1 bytes stand for themselves; the others are moved to U+0100 and up, in order.
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = printable ? uint32_t(b) : next++;
      from_cp[to_cp[b]] = int16_t(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

uint32_t byte_to_unicode(uint8_t b) { return byte_map().to_cp[b]; }

int unicode_to_byte(uint32_t cp) { return cp < 512 ? byte_map().from_cp[cp] : -1; }

std::string bytes_to_mapped(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) utf8_append(out, byte_to_unicode(c));
  return out;
}

// ---- the known patterns ----------------------------------------------------------------------------------

namespace {

// GPT-2's split, which the ByteLevel step uses when use_regex is true.
const char* const GPT2_PATTERN =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

const char* const LLAMA3_PATTERN =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const char* const QWEN2_PATTERN =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const char* const QWEN35_PATTERN =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const char* const GPT4O_PATTERN =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const char* const TEKKEN_PATTERN =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const char* const BLOOM_PATTERN = " ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+";

// DeepSeek LLM: Latin, Greek, Cyrillic, ... letters (an explicit list in its tokenizer.json).
const char* const DEEPSEEK_LLM_LETTERS =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";
const char* const DEEPSEEK_LLM_PUNCT = R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";
const char* const DEEPSEEK_CJK = R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

PreTokenizeStep split_step(std::string pattern, SplitBehavior b = SplitBehavior::isolated) {
  PreTokenizeStep s;
  s.type = PreTokenizeStep::Type::split;
  s.pattern = std::move(pattern);
  s.behavior = b;
  return s;
}
PreTokenizeStep byte_level_step(bool use_regex, bool add_prefix_space = false) {
  PreTokenizeStep s;
  s.type = PreTokenizeStep::Type::byte_level;
  s.use_regex = use_regex;
  s.add_prefix_space = add_prefix_space;
  return s;
}
PreTokenizeStep digits_step(bool individual) {
  PreTokenizeStep s;
  s.type = PreTokenizeStep::Type::digits;
  s.individual_digits = individual;
  return s;
}
PreTokenizeStep punctuation_step(SplitBehavior b) {
  PreTokenizeStep s;
  s.type = PreTokenizeStep::Type::punctuation;
  s.behavior = b;
  return s;
}

std::string regex_quote(const std::string& literal) {
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-/").find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// Compiles the regex each step splits on.
void compile_steps(std::vector<PreTokenizeStep>& steps) {
  for (auto& s : steps) {
    std::string pat;
    switch (s.type) {
      case PreTokenizeStep::Type::split: pat = s.literal ? regex_quote(s.pattern) : s.pattern; break;
      case PreTokenizeStep::Type::byte_level:
        if (!s.use_regex) continue;
        pat = GPT2_PATTERN;
        break;
      case PreTokenizeStep::Type::digits: pat = s.individual_digits ? R"(\p{N})" : R"(\p{N}+)"; break;
      // Hugging Face's Punctuation: ASCII punctuation (which includes symbols such as $ + < = > ^ ` | ~)
      // and every Unicode P* character.
      case PreTokenizeStep::Type::punctuation: pat = R"([\p{P}!-/:-@\[-`{-~])"; break;
    }
    s.regex = std::make_shared<const Regex>(pat);
  }
}

const char* behavior_name(SplitBehavior b) {
  switch (b) {
    case SplitBehavior::isolated: return "Isolated";
    case SplitBehavior::removed: return "Removed";
    case SplitBehavior::merged_with_previous: return "MergedWithPrevious";
    case SplitBehavior::merged_with_next: return "MergedWithNext";
    case SplitBehavior::contiguous: return "Contiguous";
  }
  return "Isolated";
}

std::optional<SplitBehavior> parse_behavior(const std::string& s) {
  if (s == "Isolated") return SplitBehavior::isolated;
  if (s == "Removed") return SplitBehavior::removed;
  if (s == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (s == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (s == "Contiguous") return SplitBehavior::contiguous;
  return std::nullopt;
}

// Splits one word by a step's matches, keeping pieces as Hugging Face's SplitDelimiterBehavior says.
void split_word(const std::string& w, const PreTokenizeStep& step, std::vector<std::string>& out,
                std::vector<std::pair<size_t, size_t>>& matches) {
  step.regex->find_all(w, matches);
  // (begin, end, is_match) covering the whole word.
  struct Part {
    size_t b, e;
    bool m;
  };
  std::vector<Part> parts;
  size_t pos = 0;
  for (auto [b, e] : matches) {
    if (b > pos) parts.push_back({pos, b, false});
    if (e > b) parts.push_back({b, e, true});
    pos = e;
  }
  if (pos < w.size()) parts.push_back({pos, w.size(), false});
  if (step.invert)
    for (auto& p : parts) p.m = !p.m;

  std::vector<Part> kept;
  switch (step.behavior) {
    case SplitBehavior::isolated: kept = parts; break;
    case SplitBehavior::removed:
      for (auto& p : parts)
        if (!p.m) kept.push_back(p);
      break;
    case SplitBehavior::merged_with_previous: {
      bool prev_match = false;
      for (auto& p : parts) {
        if (p.m && !prev_match && !kept.empty()) kept.back().e = p.e;
        else kept.push_back(p);
        prev_match = p.m;
      }
      break;
    }
    case SplitBehavior::merged_with_next: {
      bool prev_match = false;
      std::vector<Part> rev;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->m && !prev_match && !rev.empty()) rev.back().b = it->b;
        else rev.push_back(*it);
        prev_match = it->m;
      }
      kept.assign(rev.rbegin(), rev.rend());
      break;
    }
    case SplitBehavior::contiguous: {
      bool prev_match = false;
      for (size_t i = 0; i < parts.size(); ++i) {
        if (i > 0 && parts[i].m && prev_match) kept.back().e = parts[i].e;
        else kept.push_back(parts[i]);
        prev_match = parts[i].m;
      }
      break;
    }
  }
  for (auto& p : kept)
    if (p.e > p.b) out.emplace_back(w.substr(p.b, p.e - p.b));
}

}  // namespace

// ---- PreTokenizer -------------------------------------------------------------------------------------

Expected<PreTokenizer> PreTokenizer::from_gguf_name(const std::string& name) {
  using B = SplitBehavior;
  std::vector<PreTokenizeStep> st;
  auto is = [&](std::initializer_list<const char*> names) {
    for (auto n : names)
      if (name == n) return true;
    return false;
  };
  if (is({"gpt-2", "phi-2", "mpt", "olmo", "jais", "jina-es", "jina-de", "jina-v1-en", "jina-v2-es",
          "jina-v2-de", "jina-v2-code", "roberta-bpe", "gigachat", "trillion", "granite-docling", "exaone4",
          "a.x-4.0", "mellum"})) {
    st = {byte_level_step(true)};
  } else if (is({"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                 "dbrx", "smaug-bpe", "chatglm-bpe", "glm4"})) {
    st = {split_step(LLAMA3_PATTERN), byte_level_step(false)};
  } else if (is({"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan", "grok-2", "kormo"})) {
    st = {split_step(QWEN2_PATTERN), byte_level_step(false)};
  } else if (is({"qwen35"})) {
    st = {split_step(QWEN35_PATTERN), byte_level_step(false)};
  } else if (is({"gpt-4o", "llama4", "minimax-m2"})) {
    st = {split_step(GPT4O_PATTERN), byte_level_step(false)};
  } else if (is({"tekken"})) {
    st = {split_step(TEKKEN_PATTERN), byte_level_step(false)};
  } else if (is({"deepseek-llm"})) {
    st = {split_step("[\r\n]"), split_step(DEEPSEEK_LLM_LETTERS), split_step(DEEPSEEK_LLM_PUNCT),
          split_step(R"(\s+$)"), split_step(DEEPSEEK_CJK), digits_step(false), byte_level_step(false)};
  } else if (is({"deepseek-coder"})) {
    st = {split_step("[\r\n]"), split_step(R"(\s?\p{L}+)"), split_step(R"(\s?\p{P}+)"),
          split_step(DEEPSEEK_CJK), digits_step(true), byte_level_step(false)};
  } else if (is({"deepseek-v3"})) {
    st = {split_step(R"(\p{N}{1,3})"), split_step(R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)"),
          split_step(R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"),
          byte_level_step(false)};
  } else if (is({"falcon", "default"})) {
    st = {punctuation_step(B::contiguous), byte_level_step(true), digits_step(false),
          split_step("[0-9][0-9][0-9]")};
  } else if (is({"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"})) {
    st = {digits_step(true), byte_level_step(true)};
  } else if (is({"poro-chat", "bloom", "gpt3-finnish"})) {
    st = {split_step(BLOOM_PATTERN), byte_level_step(false)};
  } else if (is({"viking"})) {
    st = {split_step(BLOOM_PATTERN), digits_step(true), byte_level_step(false)};
  } else if (is({"seed-coder"})) {
    st = {split_step(
              R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)"),
          byte_level_step(false)};
  } else if (is({"bailingmoe", "bailingmoe2", "llada-moe"})) {
    st = {split_step(
              R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)"),
          byte_level_step(false)};
  } else if (is({"superbpe"})) {
    st = {split_step(R"(\p{N}+)"), split_step(R"((?=(\d{3})+(?!\d)))"), byte_level_step(false)};
  } else {
    return make_error(ErrorCode::unsupported, "unknown byte-level BPE pre-tokenizer '" + name + "'",
                      "supported: gpt-2, llama-bpe/llama3, qwen2, qwen35, deepseek-llm, deepseek-coder, "
                      "deepseek-v3, falcon, mpt, starcoder, refact, command-r, smollm, tekken, gpt-4o, ...");
  }
  try {
    compile_steps(st);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("pre-tokenizer '") + name + "': " + e.what());
  }
  PreTokenizer p;
  p.m_steps = std::move(st);
  return p;
}

Expected<PreTokenizer> PreTokenizer::from_json(const nlohmann::json& j, const std::string& where) {
  std::vector<PreTokenizeStep> st;
  // Recursive reader; returns an error message or empty.
  std::function<std::string(const nlohmann::json&, const std::string&)> read =
      [&](const nlohmann::json& v, const std::string& path) -> std::string {
    if (v.is_null()) return {};
    if (!v.is_object()) return path + ": expected an object";
    auto t = v.find("type");
    if (t == v.end() || !t->is_string()) return path + ".type: expected a string";
    std::string type = *t;
    auto get_bool = [&](const char* key, bool def, bool& out) -> std::string {
      auto it = v.find(key);
      if (it == v.end() || it->is_null()) {
        out = def;
        return {};
      }
      if (!it->is_boolean()) return path + "." + key + ": expected true or false";
      out = *it;
      return {};
    };
    std::string err;
    if (type == "Sequence") {
      auto it = v.find("pretokenizers");
      if (it == v.end() || !it->is_array()) return path + ".pretokenizers: expected an array";
      for (size_t i = 0; i < it->size(); ++i) {
        err = read((*it)[i], path + ".pretokenizers[" + std::to_string(i) + "]");
        if (!err.empty()) return err;
      }
      return {};
    }
    if (type == "ByteLevel") {
      PreTokenizeStep s = byte_level_step(true);
      if (!(err = get_bool("add_prefix_space", false, s.add_prefix_space)).empty()) return err;
      if (!(err = get_bool("use_regex", true, s.use_regex)).empty()) return err;
      st.push_back(s);
      return {};
    }
    if (type == "Digits") {
      PreTokenizeStep s = digits_step(false);
      if (!(err = get_bool("individual_digits", false, s.individual_digits)).empty()) return err;
      st.push_back(s);
      return {};
    }
    if (type == "Split" || type == "Punctuation") {
      PreTokenizeStep s = type == "Split" ? split_step("") : punctuation_step(SplitBehavior::isolated);
      auto b = v.find("behavior");
      if (b != v.end()) {
        if (!b->is_string() || !parse_behavior(*b))
          return path + ".behavior: expected Isolated, Removed, MergedWithPrevious, MergedWithNext or "
                        "Contiguous";
        s.behavior = *parse_behavior(*b);
      } else if (type == "Split") {
        return path + ".behavior: missing";
      }
      if (type == "Split") {
        if (!(err = get_bool("invert", false, s.invert)).empty()) return err;
        auto p = v.find("pattern");
        if (p == v.end() || !p->is_object()) return path + ".pattern: expected {\"Regex\": ...} or {\"String\": ...}";
        if (auto r = p->find("Regex"); r != p->end() && r->is_string()) {
          s.pattern = *r;
        } else if (auto q = p->find("String"); q != p->end() && q->is_string()) {
          s.pattern = *q;
          s.literal = true;
        } else {
          return path + ".pattern: expected {\"Regex\": ...} or {\"String\": ...}";
        }
      }
      st.push_back(s);
      return {};
    }
    return "unsupported pre-tokenizer type '" + type + "' at " + path;
  };
  std::string err = read(j, "pre_tokenizer");
  if (!err.empty()) {
    bool unsupported = err.rfind("unsupported", 0) == 0;
    return make_error(unsupported ? ErrorCode::unsupported : ErrorCode::format, where + ": " + err);
  }
  bool has_byte_level = false;
  for (auto& s : st) has_byte_level |= s.type == PreTokenizeStep::Type::byte_level;
  // A byte-level vocabulary always maps bytes; without an explicit step it happens after all splits.
  if (!has_byte_level) st.push_back(byte_level_step(false));
  try {
    compile_steps(st);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::format, where + ": pre_tokenizer: " + e.what());
  }
  PreTokenizer p;
  p.m_steps = std::move(st);
  return p;
}

nlohmann::json PreTokenizer::to_json() const {
  nlohmann::json seq = nlohmann::json::array();
  for (auto& s : m_steps) {
    switch (s.type) {
      case PreTokenizeStep::Type::split:
        seq.push_back({{"type", "Split"},
                       {"pattern", {{s.literal ? "String" : "Regex", s.pattern}}},
                       {"behavior", behavior_name(s.behavior)},
                       {"invert", s.invert}});
        break;
      case PreTokenizeStep::Type::byte_level:
        seq.push_back({{"type", "ByteLevel"},
                       {"add_prefix_space", s.add_prefix_space},
                       {"trim_offsets", true},
                       {"use_regex", s.use_regex}});
        break;
      case PreTokenizeStep::Type::digits:
        seq.push_back({{"type", "Digits"}, {"individual_digits", s.individual_digits}});
        break;
      case PreTokenizeStep::Type::punctuation:
        seq.push_back({{"type", "Punctuation"}, {"behavior", behavior_name(s.behavior)}});
        break;
    }
  }
  if (seq.size() == 1) return seq[0];
  return {{"type", "Sequence"}, {"pretokenizers", seq}};
}

void PreTokenizer::split(std::string_view text, std::vector<std::string>& words) const {
  std::vector<std::string> cur{std::string(text)}, next;
  std::vector<std::pair<size_t, size_t>> matches;
  bool mapped = false;
  for (auto& s : m_steps) {
    next.clear();
    if (s.type == PreTokenizeStep::Type::byte_level) {
      for (auto& w : cur) {
        std::string word = w;
        if (s.add_prefix_space && (word.empty() || word[0] != ' ')) word.insert(word.begin(), ' ');
        if (s.use_regex) {
          std::vector<std::string> parts;
          split_word(word, s, parts, matches);
          for (auto& p : parts) next.push_back(bytes_to_mapped(p));
        } else if (!word.empty()) {
          next.push_back(bytes_to_mapped(word));
        }
      }
      mapped = true;
    } else {
      for (auto& w : cur) split_word(w, s, next, matches);
    }
    cur.swap(next);
  }
  if (!mapped)
    for (auto& w : cur) w = bytes_to_mapped(w);
  for (auto& w : cur)
    if (!w.empty()) words.push_back(std::move(w));
}

}  // namespace hearth::detail
