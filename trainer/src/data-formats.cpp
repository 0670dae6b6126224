/* Training data loading: JSONL (alpaca, ShareGPT, OpenAI messages, {"text"}; also one JSON array of such
 * records, as alpaca_data.json ships) and plain text files turned into token rows with a loss mask, a
 * validation split and statistics.
 *
 * Non-obvious choice (the loss mask): the conversation is rendered by the chat template as a whole, and
 * once more cut before each assistant message (with the generation prompt) and after it; the bytes
 * between the two cuts are the trained span (the reply and the template's end-of-turn marker). The
 * whole text is tokenized in one piece (so the tokens are exactly the ones the model sees at chat
 * time), and each token's byte span is recovered by walking the tokens' pieces along the text: a piece
 * matches the text at the cursor, or does so without the leading space SentencePiece puts in front of
 * the text and after special tokens; when a piece does not match (an <unk>, a normalizer that changed
 * the text), the cursor is resynchronised at the next piece found shortly ahead and the unmatched
 * tokens share the bytes skipped. A token is trained when its span overlaps a trained span.
 * When the template's cut renderings are not prefixes of the whole rendering (templates that rewrite
 * earlier turns, e.g. Mistral's, which moves the system message to the last user turn), the reply's
 * content is looked up in the rendered text instead, extended by as much of the end-of-turn text the
 * template wrote after it in the cut rendering as the whole rendering also has there. The overlap rule
 * means every byte of a reply is covered by a trained token, even where a token straddles the edge.
 */
#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "data-internal.h"
#include "hearth/sha256.h"
#include "hearth/trainer/data.h"

namespace hearth::train {

namespace {

constexpr size_t MAX_LINE_BYTES = size_t(16) << 20;  // a longer JSONL line is reported, not parsed
constexpr size_t MAX_ISSUES = 100;
constexpr int MAX_JSON_DEPTH = 64;
constexpr size_t MAX_RENDER_WORK = size_t(1) << 30;  // replies x rendered bytes per conversation
constexpr const char* FIXED_TEMPLATE_DATE = "2025-01-01";

// The fallback when the model has no chat template: ChatML, as the chat session's fallback renders it,
// plus EOS after each reply so a base model whose vocabulary lacks <|im_end|> learns to stop.
constexpr const char* CHATML_TEMPLATE =
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- if message['role'] == 'assistant' %}{{- eos_token }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

struct Message {
  std::string role, content;
  bool train = true;  // assistant turns: "weight": 0 leaves a reply out of the loss (OpenAI's format)
};

// One line (JSONL) or paragraph (text) to turn into examples.
struct Item {
  int64_t line = 0;
  std::string text;       // raw JSON line, or the paragraph
  bool too_long = false;  // the line was over MAX_LINE_BYTES (text not kept)
};

struct Record {
  bool is_text = false;
  std::string text;  // plain text document
  std::vector<Message> messages;
};

struct Outcome {
  std::vector<Example> examples;
  std::optional<std::string> error;  // malformed: a bad row
  std::optional<std::string> note;   // usable but dropped (e.g. nothing trained within max_length)
  bool truncated = false;
};

Expected<std::string> read_file_bytes(const std::filesystem::path& p) {
  std::error_code ec;
  if (!std::filesystem::exists(p, ec))
    return make_error(ErrorCode::not_found, "dataset file not found: " + p.string());
  if (std::filesystem::is_directory(p, ec))
    return make_error(ErrorCode::io, "dataset path is a folder, not a file: " + p.string());
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error(ErrorCode::io, "cannot open dataset file " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::io, "error reading dataset file " + p.string());
  return ss.str();
}

std::string_view strip_bom(std::string_view s) {
  if (s.size() >= 3 && uint8_t(s[0]) == 0xEF && uint8_t(s[1]) == 0xBB && uint8_t(s[2]) == 0xBF) s.remove_prefix(3);
  return s;
}

bool is_blank(std::string_view s) {
  for (char c : s)
    if (!std::isspace(uint8_t(c))) return false;
  return true;
}

// Calls fn(line_no, line) for each line, CR of CRLF removed.
template <class F>
void for_each_line(std::string_view data, F&& fn) {
  data = strip_bom(data);
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    size_t end = nl == std::string_view::npos ? data.size() : nl;
    std::string_view line = data.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(++line_no, line);
    pos = end + 1;
  }
}

std::vector<Item> jsonl_items(std::string_view data) {
  std::vector<Item> items;
  for_each_line(data, [&](int64_t n, std::string_view line) {
    if (is_blank(line)) return;
    Item it;
    it.line = n;
    if (line.size() > MAX_LINE_BYTES)
      it.too_long = true;
    else
      it.text = std::string(line);
    items.push_back(std::move(it));
  });
  return items;
}

// Whether the file is one JSON array of records (alpaca_data.json style) rather than JSON lines.
bool is_json_array(std::string_view data) {
  data = strip_bom(data);
  size_t i = 0;
  while (i < data.size() && std::isspace(uint8_t(data[i]))) ++i;
  return i < data.size() && data[i] == '[';
}

// The elements of a top-level JSON array, each with the line it starts on, found by scanning brackets
// and strings (each element is then parsed on its own, like a JSONL line, so one bad element is one
// issue). A truncated array gives its last element as far as it goes, which then fails to parse.
std::vector<Item> json_array_items(std::string_view data) {
  data = strip_bom(data);
  std::vector<Item> items;
  size_t i = data.find('[') + 1;
  int64_t line = 1;
  for (size_t k = 0; k < i; ++k) line += data[k] == '\n';
  auto skip_space = [&] {
    while (i < data.size() && std::isspace(uint8_t(data[i]))) line += data[i++] == '\n';
  };
  while (true) {
    skip_space();
    if (i >= data.size() || data[i] == ']') break;
    size_t start = i;
    int64_t start_line = line;
    int depth = 0;
    bool in_str = false;
    for (; i < data.size(); ++i) {
      char c = data[i];
      if (c == '\n') ++line;
      if (in_str) {
        if (c == '\\')
          ++i;
        else if (c == '"')
          in_str = false;
      } else if (c == '"') {
        in_str = true;
      } else if (c == '[' || c == '{') {
        ++depth;
      } else if (c == ']' || c == '}') {
        if (depth == 0) break;  // the array's own end
        --depth;
      } else if (c == ',' && depth == 0) {
        break;
      }
    }
    std::string_view elem = data.substr(start, std::min(i, data.size()) - start);
    while (!elem.empty() && std::isspace(uint8_t(elem.back()))) elem.remove_suffix(1);
    Item it;
    it.line = start_line;
    if (elem.size() > MAX_LINE_BYTES)
      it.too_long = true;
    else
      it.text = std::string(elem);
    if (!elem.empty() || i < data.size()) items.push_back(std::move(it));
    if (i >= data.size() || data[i] == ']') break;
    ++i;  // the comma
  }
  return items;
}

// Paragraphs separated by blank lines; each keeps the line number of its first line.
std::vector<Item> text_items(std::string_view data) {
  std::vector<Item> items;
  Item cur;
  bool open = false;
  for_each_line(data, [&](int64_t n, std::string_view line) {
    if (is_blank(line)) {
      if (open) items.push_back(std::move(cur));
      cur = Item{};
      open = false;
      return;
    }
    if (!open) {
      cur.line = n;
      open = true;
    } else {
      cur.text.push_back('\n');
    }
    cur.text.append(line);
  });
  if (open) items.push_back(std::move(cur));
  return items;
}

// Nesting depth of a JSON text (outside strings), to refuse pathological lines before parsing them.
int json_depth(std::string_view s) {
  int depth = 0, max_depth = 0;
  bool in_str = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_str) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

const char* json_type(const nlohmann::json& j) { return j.type_name(); }

// Parses a line as a JSON object or says why not.
std::variant<nlohmann::json, std::string> parse_object(std::string_view line) {
  if (json_depth(line) > MAX_JSON_DEPTH)
    return std::string("JSON nested deeper than ") + std::to_string(MAX_JSON_DEPTH) + " levels";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 5: ..." -> keep the useful part.
    auto p = what.find("column");
    return "invalid JSON (" + (p == std::string::npos ? what : what.substr(p)) + ")";
  }
  if (!j.is_object()) return std::string("expected a JSON object, found ") + json_type(j);
  return j;
}

std::variant<std::string, std::string> get_string(const nlohmann::json& obj, const char* key, bool required,
                                                  bool* present = nullptr) {
  // index 0: the value, index 1: an error
  auto it = obj.find(key);
  if (present) *present = it != obj.end() && !it->is_null();
  if (it == obj.end() || it->is_null()) {
    if (required) return std::variant<std::string, std::string>(std::in_place_index<1>, std::string("missing key '") + key + "'");
    return std::variant<std::string, std::string>(std::in_place_index<0>, std::string());
  }
  if (!it->is_string())
    return std::variant<std::string, std::string>(
        std::in_place_index<1>, std::string("'") + key + "' is not a string (found " + json_type(*it) + ")");
  return std::variant<std::string, std::string>(std::in_place_index<0>, it->get<std::string>());
}

// One JSONL line in format `f` to a record, or the reason it is malformed.
std::variant<Record, std::string> parse_record(DataFormat f, std::string_view line) {
  auto parsed = parse_object(line);
  if (parsed.index() == 1) return std::get<1>(parsed);
  const nlohmann::json& j = std::get<0>(parsed);
  Record r;
  auto take = [&](const char* key, bool required, std::string& out, bool* present = nullptr) -> std::optional<std::string> {
    auto v = get_string(j, key, required, present);
    if (v.index() == 1) return std::get<1>(v);
    out = std::move(std::get<0>(v));
    return std::nullopt;
  };
  switch (f) {
    case DataFormat::text: {
      r.is_text = true;
      if (auto e = take("text", true, r.text)) return *e;
      return r;
    }
    case DataFormat::alpaca: {
      std::string instruction, input, output, system;
      bool has_system = false;
      if (auto e = take("instruction", true, instruction)) return *e;
      if (auto e = take("input", false, input)) return *e;
      if (auto e = take("output", true, output)) return *e;
      if (auto e = take("system", false, system, &has_system)) return *e;
      if (has_system && !system.empty()) r.messages.push_back({"system", system});
      r.messages.push_back({"user", input.empty() ? instruction : instruction + "\n\n" + input});
      r.messages.push_back({"assistant", output});
      return r;
    }
    case DataFormat::sharegpt:
    case DataFormat::messages: {
      bool sg = f == DataFormat::sharegpt;
      const char* list_key = sg ? "conversations" : "messages";
      const char* role_key = sg ? "from" : "role";
      const char* text_key = sg ? "value" : "content";
      auto it = j.find(list_key);
      if (it == j.end()) return std::string("missing key '") + list_key + "'";
      if (!it->is_array())
        return std::string("'") + list_key + "' is not an array (found " + json_type(*it) + ")";
      if (it->empty()) return std::string("'") + list_key + "' is empty";
      size_t k = 0;
      for (const auto& m : *it) {
        std::string where = std::string(list_key) + "[" + std::to_string(k++) + "]";
        if (!m.is_object()) return where + " is not an object (found " + json_type(m) + ")";
        std::string role, content;
        auto rv = get_string(m, role_key, true);
        if (rv.index() == 1) return where + ": " + std::get<1>(rv);
        role = std::get<0>(rv);
        auto cv = get_string(m, text_key, true);
        if (cv.index() == 1) return where + ": " + std::get<1>(cv);
        content = std::get<0>(cv);
        std::string mapped;
        if (role == "system") mapped = "system";
        else if (role == "user" || (sg && role == "human")) mapped = "user";
        else if (role == "assistant" || (sg && role == "gpt")) mapped = "assistant";
        else
          return where + ": unknown " + role_key + " '" + role.substr(0, 40) + "' (expected " +
                 (sg ? "system, human, user, gpt or assistant" : "system, user or assistant") + ")";
        bool train = true;
        if (auto w = m.find("weight"); w != m.end() && !w->is_null()) {
          if (w->is_boolean())
            train = w->get<bool>();
          else if (w->is_number() && (w->get<double>() == 0.0 || w->get<double>() == 1.0))
            train = w->get<double>() != 0.0;
          else
            return where + ": 'weight' must be 0 or 1";
        }
        r.messages.push_back({mapped, std::move(content), train});
      }
      bool any_assistant = false;
      for (const auto& m : r.messages) any_assistant |= m.role == "assistant";
      if (!any_assistant) return std::string("the conversation has no assistant turn");
      return r;
    }
    case DataFormat::auto_detect: break;
  }
  return std::string("internal: no format");
}

std::optional<DataFormat> format_of_object(const nlohmann::json& j) {
  if (j.contains("conversations")) return DataFormat::sharegpt;
  if (j.contains("messages")) return DataFormat::messages;
  if (j.contains("instruction")) return DataFormat::alpaca;
  if (j.contains("text")) return DataFormat::text;
  return std::nullopt;
}

bool has_ext(const std::filesystem::path& p, std::initializer_list<const char*> exts) {
  std::string e = p.extension().string();
  for (char& c : e) c = char(std::tolower(uint8_t(c)));
  for (const char* x : exts)
    if (e == x) return true;
  return false;
}

Expected<DataFormat> detect_from_bytes(const std::filesystem::path& file, std::string_view data) {
  if (has_ext(file, {".txt", ".text", ".md"})) return DataFormat::text;
  data = strip_bom(data);
  if (is_blank(data)) return make_error(ErrorCode::format, file.string() + ": the dataset file is empty");
  int checked = 0;
  bool any_json = false;
  std::optional<DataFormat> found;
  auto look = [&](std::string_view record) {
    if (found || checked >= 1000 || is_blank(record) || record.size() > MAX_LINE_BYTES) return;
    ++checked;
    auto parsed = parse_object(record);
    if (parsed.index() != 0) return;
    any_json = true;
    found = format_of_object(std::get<0>(parsed));
  };
  if (is_json_array(data)) {
    for (const Item& it : json_array_items(data)) look(it.text);
    any_json = true;
  } else {
    for_each_line(data, [&](int64_t, std::string_view line) { look(line); });
  }
  if (found) return *found;
  if (!any_json && !has_ext(file, {".jsonl", ".json", ".ndjson"})) return DataFormat::text;
  return make_error(ErrorCode::format,
                    file.string() + ": cannot tell the dataset format: no line is a JSON object with "
                                    "'instruction', 'conversations', 'messages' or 'text'",
                    "use JSONL in the alpaca, ShareGPT or OpenAI-messages shape, or a .txt file");
}

// ---- tokenization and the loss mask ---------------------------------------------------------------

struct Span {
  size_t begin = 0, end = 0;
};

// Byte span of each token of `ids` within `text` (see the file comment).
// `unmatched` counts the tokens placed only by resynchronisation.
std::vector<Span> token_spans(const Tokenizer& tok, std::string_view text, const std::vector<TokenId>& ids,
                              size_t& unmatched) {
  std::vector<Span> spans(ids.size());
  size_t cur = 0;
  std::vector<size_t> pending;
  unmatched = 0;
  auto settle = [&](size_t upto) {
    for (size_t k : pending) spans[k] = {cur, upto};
    unmatched += pending.size();
    pending.clear();
  };
  for (size_t k = 0; k < ids.size(); ++k) {
    std::string piece;
    if (auto p = tok.token_to_piece(ids[k])) piece = std::move(*p);
    if (piece.empty()) {
      pending.push_back(k);
      continue;
    }
    std::string_view pv = piece;
    std::string_view rest = text.substr(std::min(cur, text.size()));
    size_t start = std::string_view::npos, len = 0;
    if (rest.starts_with(pv)) {
      start = cur;
      len = pv.size();
    } else if (pv[0] == ' ' && rest.starts_with(pv.substr(1))) {
      // The space SentencePiece puts before the text and after special tokens; alone (a bare "▁"
      // token after a special token) it covers no byte of the text.
      start = cur;
      len = pv.size() - 1;
    } else {
      // Resynchronise a little further on.
      constexpr size_t WINDOW = 256;
      std::string_view window = rest.substr(0, WINDOW + pv.size());
      size_t a = window.find(pv);
      size_t b = pv[0] == ' ' && pv.size() > 1 ? window.find(pv.substr(1)) : std::string_view::npos;
      if (a != std::string_view::npos && (b == std::string_view::npos || a <= b)) {
        start = cur + a;
        len = pv.size();
      } else if (b != std::string_view::npos) {
        start = cur + b;
        len = pv.size() - 1;
      }
    }
    if (start == std::string_view::npos) {
      pending.push_back(k);
      continue;
    }
    settle(start);
    spans[k] = {start, start + len};
    cur = start + len;
  }
  settle(text.size());
  return spans;
}

struct ChatContext {
  const Tokenizer* tokenizer = nullptr;
  const ChatTemplate* tmpl = nullptr;
  ChatTemplateOptions options;
  std::string bos_text;
  bool train_on_all = false;
  int64_t max_length = 0;
};

nlohmann::ordered_json to_json(const std::vector<Message>& msgs, size_t n) {
  auto arr = nlohmann::ordered_json::array();
  for (size_t i = 0; i < n && i < msgs.size(); ++i) arr.push_back({{"role", msgs[i].role}, {"content", msgs[i].content}});
  return arr;
}

void finish_example(const ChatContext& c, Example& ex, Outcome& out) {
  if (ex.tokens.size() > size_t(c.max_length)) {
    ex.tokens.resize(size_t(c.max_length));
    ex.train.resize(size_t(c.max_length));
    out.truncated = true;
  }
  if (!ex.train.empty()) ex.train[0] = 0;
  bool any = std::any_of(ex.train.begin(), ex.train.end(), [](uint8_t t) { return t != 0; });
  if (!any) {
    out.note = out.truncated ? "no trained token within max_length (" + std::to_string(c.max_length) +
                                   " tokens); the example is left out"
                             : "the example has no trained token; it is left out";
    return;
  }
  out.examples.push_back(std::move(ex));
}

void encode_text(const ChatContext& c, const std::string& text, int64_t line, Outcome& out) {
  const Tokenizer& tok = *c.tokenizer;
  auto ids = tok.encode(text, false, false);
  if (!ids) {
    out.error = "cannot tokenize: " + ids.error().message;
    return;
  }
  std::vector<TokenId> all;
  all.reserve(ids->size() + 2);
  if (tok.add_bos() && tok.bos_id()) all.push_back(*tok.bos_id());
  all.insert(all.end(), ids->begin(), ids->end());
  if (tok.eos_id()) all.push_back(*tok.eos_id());
  if (all.size() < 2) {
    out.note = "the document is empty after tokenization; left out";
    return;
  }
  // Long documents are cut into consecutive rows of max_length tokens: nothing of a corpus is lost.
  for (size_t s = 0; s < all.size(); s += size_t(c.max_length)) {
    size_t e = std::min(all.size(), s + size_t(c.max_length));
    if (e - s < 2) break;
    Example ex;
    ex.source_line = line;
    ex.tokens.assign(all.begin() + ptrdiff_t(s), all.begin() + ptrdiff_t(e));
    ex.train.assign(ex.tokens.size(), 1);
    ex.train[0] = 0;
    out.examples.push_back(std::move(ex));
  }
}

void encode_chat(const ChatContext& c, const std::vector<Message>& msgs, int64_t line, Outcome& out) {
  const Tokenizer& tok = *c.tokenizer;
  ChatTemplateOptions opt = c.options;
  opt.add_generation_prompt = false;
  auto full_r = c.tmpl->render(to_json(msgs, msgs.size()), opt);
  if (!full_r) {
    out.error = "chat template: " + full_r.error().message;
    return;
  }
  std::string full = std::move(*full_r);
  // Each reply costs two renderings of the conversation so far: refuse quadratic blow-ups.
  size_t n_replies = size_t(std::count_if(msgs.begin(), msgs.end(), [](const Message& m) { return m.role == "assistant"; }));
  if (double(n_replies) * double(full.size()) > double(MAX_RENDER_WORK)) {
    out.error = "the conversation is too long to place the loss mask (" + std::to_string(n_replies) + " replies, " +
                std::to_string(full.size()) + " bytes rendered)";
    return;
  }
  std::vector<Span> trained;
  size_t search_from = 0;
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].role != "assistant") continue;
    ChatTemplateOptions before_opt = c.options;
    before_opt.add_generation_prompt = true;
    auto before = c.tmpl->render(to_json(msgs, i), before_opt);
    auto after = c.tmpl->render(to_json(msgs, i + 1), opt);
    if (before && after && full.starts_with(*before) && full.starts_with(*after) && after->size() >= before->size() &&
        before->size() >= search_from) {
      if (msgs[i].train) trained.push_back({before->size(), after->size()});
      search_from = after->size();
      continue;
    }
    // The template rewrites earlier turns: find the reply's text itself, after the texts of the
    // messages since the previous reply (so a user turn repeating the reply's words is not taken).
    size_t from = search_from;
    {
      size_t j = i;
      while (j > 0 && msgs[j - 1].role != "assistant") --j;
      for (; j < i; ++j) {
        if (msgs[j].content.empty()) continue;
        size_t p = full.find(msgs[j].content, from);
        if (p != std::string::npos) from = p + msgs[j].content.size();
      }
    }
    const std::string& content = msgs[i].content;
    size_t pos = content.empty() ? std::string::npos : full.find(content, from);
    std::string_view trimmed = content;
    while (!trimmed.empty() && std::isspace(uint8_t(trimmed.front()))) trimmed.remove_prefix(1);
    while (!trimmed.empty() && std::isspace(uint8_t(trimmed.back()))) trimmed.remove_suffix(1);
    size_t len = content.size();
    if (pos == std::string::npos && !trimmed.empty()) {
      pos = full.find(trimmed, from);
      len = trimmed.size();
    }
    if (pos == std::string::npos) {
      out.error = "the chat template does not render assistant message " + std::to_string(i + 1) +
                  " as its own prefix, and its text was not found in the rendering";
      return;
    }
    // Train the end-of-turn too: what the template writes after the reply in the cut rendering.
    size_t end = pos + len;
    if (after) {
      size_t at = after->rfind(len == content.size() ? std::string_view(content) : trimmed);
      if (at != std::string::npos) {
        // As much of it as the whole rendering has there (a final turn may end differently, e.g.
        // Phi-3's "<|end|>\n" + EOS after the last reply only).
        std::string_view suffix = std::string_view(*after).substr(at + len);
        std::string_view next = std::string_view(full).substr(end);
        size_t k = 0;
        while (k < suffix.size() && k < next.size() && suffix[k] == next[k]) ++k;
        // A partial match stops after a marker's end ('>', ']' or a newline), not inside the next
        // turn's header ("<|end|>\n<" of "<|end|>\n</s>" against "<|end|>\n<|user|>").
        if (k < suffix.size())
          while (k > 0 && suffix[k - 1] != '>' && suffix[k - 1] != ']' && suffix[k - 1] != '\n') --k;
        end += k;
      }
    }
    if (msgs[i].train) trained.push_back({pos, end});
    search_from = end;
  }

  // BOS: as the tokenizer says; a BOS the template wrote as text is dropped then, to avoid two.
  std::string_view text = full;
  size_t shift = 0;
  bool add_bos = tok.add_bos() && tok.bos_id();
  if (add_bos && !c.bos_text.empty() && text.starts_with(c.bos_text)) {
    shift = c.bos_text.size();
    text.remove_prefix(shift);
  }
  auto ids = tok.encode(text, false, true);
  if (!ids) {
    out.error = "cannot tokenize: " + ids.error().message;
    return;
  }
  Example ex;
  ex.source_line = line;
  if (add_bos) ex.tokens.push_back(*tok.bos_id());
  size_t offset = ex.tokens.size();
  ex.tokens.insert(ex.tokens.end(), ids->begin(), ids->end());
  ex.train.assign(ex.tokens.size(), 0);
  if (c.train_on_all) {
    std::fill(ex.train.begin() + 1, ex.train.end(), uint8_t(1));
  } else {
    for (auto& r : trained) {
      r.begin = r.begin >= shift ? r.begin - shift : 0;
      r.end = r.end >= shift ? r.end - shift : 0;
    }
    size_t unmatched = 0;
    std::vector<Span> spans = token_spans(tok, text, *ids, unmatched);
    // A few unmatched tokens (an <unk>) are fine; many mean the tokenizer rewrites the text (an NFKC
    // normalizer), and a mask placed by guesswork would train the wrong tokens.
    if (unmatched > std::max<size_t>(4, spans.size() / 20)) {
      out.error = "cannot place the loss mask: " + std::to_string(unmatched) + " of " + std::to_string(spans.size()) +
                  " tokens do not match the rendered text (does the tokenizer normalize text?)";
      return;
    }
    for (size_t k = 0; k < spans.size(); ++k) {
      const Span& s = spans[k];
      for (const Span& r : trained) {
        bool hit = s.end > s.begin ? (s.begin < r.end && s.end > r.begin) : (s.begin >= r.begin && s.begin < r.end);
        if (hit && r.end > r.begin) {
          ex.train[offset + k] = 1;
          break;
        }
      }
    }
  }
  finish_example(c, ex, out);
}

Outcome process_item(const ChatContext& c, DataFormat f, const Item& item) {
  Outcome out;
  try {
    if (item.too_long) {
      out.error = "the line is longer than " + std::to_string(MAX_LINE_BYTES >> 20) + " MiB";
      return out;
    }
    auto rec = parse_record(f, item.text);
    if (rec.index() == 1) {
      out.error = std::get<1>(rec);
      return out;
    }
    Record& r = std::get<0>(rec);
    if (r.is_text)
      encode_text(c, r.text, item.line, out);
    else
      encode_chat(c, r.messages, item.line, out);
  } catch (const std::exception& e) {
    out.error = std::string("internal error: ") + e.what();
  } catch (...) {
    out.error = "internal error";
  }
  return out;
}

Outcome process_plain(const ChatContext& c, const Item& item) {
  Outcome out;
  try {
    encode_text(c, item.text, item.line, out);
  } catch (const std::exception& e) {
    out.error = std::string("internal error: ") + e.what();
  }
  return out;
}

struct FileResult {
  DataFormat format = DataFormat::auto_detect;
  std::vector<std::vector<Example>> records;  // examples of each usable record, in file order
  int64_t rows = 0, bad_rows = 0, truncated = 0;
};

void add_issue(std::vector<DataIssue>& issues, DataIssue issue) {
  if (issues.size() < MAX_ISSUES) issues.push_back(std::move(issue));
}

Expected<FileResult> load_file(const std::filesystem::path& file, const std::string& bytes, DataFormat format,
                               const DataConfig& config, const ChatContext& c, std::vector<DataIssue>& issues) {
  FileResult res;
  res.format = format;
  bool plain = format == DataFormat::text && has_ext(file, {".txt", ".text", ".md"});
  if (format == DataFormat::text && !plain) {
    // A text dataset without a .txt name: JSONL {"text"} when its first line is JSON, else plain text.
    std::string_view d = strip_bom(bytes);
    while (!d.empty() && std::isspace(uint8_t(d.front()))) d.remove_prefix(1);
    plain = d.empty() || (d.front() != '{' && d.front() != '[');
  }
  std::vector<Item> items = plain ? text_items(bytes) : is_json_array(bytes) ? json_array_items(bytes) : jsonl_items(bytes);
  std::vector<Outcome> outcomes(items.size());
  const int64_t n = int64_t(items.size());
#pragma omp parallel for schedule(dynamic, 16) if (n >= 64)  // threads only pay off on real files
  for (int64_t i = 0; i < n; ++i)
    outcomes[size_t(i)] = plain ? process_plain(c, items[size_t(i)]) : process_item(c, format, items[size_t(i)]);

  res.rows = n;
  for (size_t i = 0; i < items.size(); ++i) {
    Outcome& o = outcomes[i];
    if (o.error) {
      ++res.bad_rows;
      if (!config.skip_bad_lines)
        return make_error(ErrorCode::format, file.string() + ":" + std::to_string(items[i].line) + ": " + *o.error,
                          "fix the line, or let the run skip malformed lines (data.skip_bad_lines: true)");
      add_issue(issues, {file, items[i].line, *o.error});
      continue;
    }
    if (o.note) add_issue(issues, {file, items[i].line, *o.note});
    if (o.truncated) ++res.truncated;
    if (!o.examples.empty()) res.records.push_back(std::move(o.examples));
  }
  return res;
}

int64_t percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  auto rank = int64_t(std::ceil(q * double(sorted.size())));
  rank = std::clamp<int64_t>(rank, 1, int64_t(sorted.size()));
  return sorted[size_t(rank - 1)];
}

}  // namespace

int32_t default_pad_id(const Tokenizer& tokenizer) {
  if (auto p = tokenizer.pad_id()) return *p;
  if (auto e = tokenizer.eos_id()) return *e;
  return 0;
}

const char* fallback_chat_template() { return CHATML_TEMPLATE; }

Expected<DataFormat> detect_format(const std::filesystem::path& file) {
  if (has_ext(file, {".txt", ".text", ".md"})) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec))
      return make_error(ErrorCode::not_found, "dataset file not found: " + file.string());
    return DataFormat::text;
  }
  HEARTH_TRY(std::string bytes, read_file_bytes(file));
  return detect_from_bytes(file, bytes);
}

Expected<Dataset> load_dataset(const DataConfig& config, const Tokenizer& tokenizer, const ChatTemplate* tmpl,
                               uint64_t seed) {
  if (config.train.empty())
    return make_error(ErrorCode::invalid_argument, "no training data file given", "set data.train");
  if (config.max_length < 2)
    return make_error(ErrorCode::invalid_argument,
                      "data.max_length must be at least 2 (got " + std::to_string(config.max_length) + ")");
  if (!(config.validation_split >= 0.0 && config.validation_split < 1.0))
    return make_error(ErrorCode::invalid_argument, "data.validation_split must be in [0, 1)");

  Dataset d;
  HEARTH_TRY(std::string train_bytes, read_file_bytes(config.train));
  DataFormat format = config.format;
  if (format == DataFormat::auto_detect) {
    HEARTH_TRY(format, detect_from_bytes(config.train, train_bytes));
  }
  d.format = format;

  std::string val_bytes;
  DataFormat val_format = format;
  bool has_val_file = !config.validation.empty();
  if (has_val_file) {
    HEARTH_TRY(val_bytes, read_file_bytes(config.validation));
    if (config.format == DataFormat::auto_detect) {
      HEARTH_TRY(val_format, detect_from_bytes(config.validation, val_bytes));
    }
  }

  ChatContext c;
  c.tokenizer = &tokenizer;
  c.train_on_all = config.train_on_all;
  c.max_length = config.max_length;
  if (auto b = tokenizer.bos_id()) c.bos_text = tokenizer.token_text(*b);
  c.options.bos_token = c.bos_text;
  // Templates that print today's date (strftime_now) must render the same text on every day, or a run
  // resumed tomorrow would see other tokens.
  if (auto day = parse_template_date(FIXED_TEMPLATE_DATE)) c.options.now = *day;
  if (auto e = tokenizer.eos_id()) c.options.eos_token = tokenizer.token_text(*e);
  std::optional<ChatTemplate> fallback;
  bool chat = format != DataFormat::text || (has_val_file && val_format != DataFormat::text);
  if (chat && tmpl == nullptr) {
    auto t = ChatTemplate::parse(CHATML_TEMPLATE);
    if (!t) return Unexpected{t.error()};
    fallback = std::move(*t);
    d.issues.push_back({config.train, 0,
                        "the model has no chat template; conversations are rendered with the ChatML fallback "
                        "(<|im_start|>role\\n...<|im_end|>, EOS after each reply)"});
  }
  c.tmpl = tmpl ? tmpl : (fallback ? &*fallback : nullptr);

  HEARTH_TRY(FileResult tr, load_file(config.train, train_bytes, format, config, c, d.issues));
  std::optional<FileResult> vr;
  if (has_val_file) {
    HEARTH_TRY(FileResult v, load_file(config.validation, val_bytes, val_format, config, c, d.issues));
    vr = std::move(v);
  }

  if (tr.records.empty()) {
    std::string hint = d.issues.empty() ? std::string("the file holds no example")
                                        : "first problem: " + d.issues.back().file.string() + ":" +
                                              std::to_string(d.issues.back().line) + ": " + d.issues.back().message;
    for (const auto& is : d.issues)
      if (is.line > 0) {
        hint = "first problem: " + is.file.string() + ":" + std::to_string(is.line) + ": " + is.message;
        break;
      }
    return make_error(ErrorCode::format, config.train.string() + ": no usable training example", hint);
  }

  // Split: whole records (all chunks of one document go to the same side), chosen by the seed.
  std::vector<uint8_t> to_val(tr.records.size(), 0);
  if (!has_val_file && config.validation_split > 0.0 && tr.records.size() >= 2) {
    auto n = int64_t(tr.records.size());
    int64_t n_val = std::max<int64_t>(1, std::llround(config.validation_split * double(n)));
    n_val = std::min(n_val, n - 1);
    auto perm = detail::seeded_permutation(n, seed, 0x76616c6964ull /* "valid" */);
    for (int64_t i = 0; i < n_val; ++i) to_val[size_t(perm[size_t(i)])] = 1;
  }
  for (size_t r = 0; r < tr.records.size(); ++r)
    for (auto& ex : tr.records[r]) (to_val[r] ? d.validation : d.train).push_back(std::move(ex));
  if (vr)
    for (auto& rec : vr->records)
      for (auto& ex : rec) d.validation.push_back(std::move(ex));

  Sha256 h;
  h.update(train_bytes);
  if (has_val_file) h.update(val_bytes);
  d.sha256 = h.finish_hex();

  DatasetStats& s = d.stats;
  s.rows = tr.rows + (vr ? vr->rows : 0);
  s.bad_rows = tr.bad_rows + (vr ? vr->bad_rows : 0);
  s.truncated = tr.truncated + (vr ? vr->truncated : 0);
  s.train_examples = int64_t(d.train.size());
  s.validation_examples = int64_t(d.validation.size());
  s.examples = s.train_examples + s.validation_examples;
  std::vector<int64_t> lens;
  lens.reserve(size_t(s.examples));
  s.histogram.assign(16, 0);
  for (const auto* set : {&d.train, &d.validation})
    for (const Example& ex : *set) {
      auto len = int64_t(ex.tokens.size());
      lens.push_back(len);
      s.tokens += len;
      for (uint8_t t : ex.train) s.trained_tokens += t;
      int64_t bin = std::min<int64_t>(15, len * 16 / config.max_length);
      ++s.histogram[size_t(std::max<int64_t>(bin, 0))];
    }
  std::sort(lens.begin(), lens.end());
  if (!lens.empty()) {
    s.min_len = lens.front();
    s.max_len = lens.back();
    s.mean_len = double(s.tokens) / double(lens.size());
    s.p50_len = percentile(lens, 0.5);
    s.p90_len = percentile(lens, 0.9);
    s.p99_len = percentile(lens, 0.99);
  }
  return d;
}

std::vector<std::vector<PreviewToken>> preview_examples(const Dataset& d, const Tokenizer& tokenizer, size_t n) {
  std::vector<std::vector<PreviewToken>> out;
  for (size_t i = 0; i < n && i < d.train.size(); ++i) {
    const Example& ex = d.train[i];
    std::vector<PreviewToken> row;
    row.reserve(ex.tokens.size());
    for (size_t k = 0; k < ex.tokens.size(); ++k) {
      PreviewToken p;
      auto piece = tokenizer.token_to_piece(ex.tokens[k]);
      p.text = piece ? *piece : "<?>";
      p.trained = k < ex.train.size() && ex.train[k] != 0;
      row.push_back(std::move(p));
    }
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace hearth::train
