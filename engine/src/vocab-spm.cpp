/* SentencePiece vocabularies: libsentencepiece does the encoding; this file builds its ModelProto.
 *
 * Non-obvious choice: Debian ships libsentencepiece without sentencepiece_model.pb.h, so the ModelProto
 * is written and read here directly in protobuf wire format (field numbers from sentencepiece_model.proto:
 * ModelProto{pieces=1, trainer_spec=2, normalizer_spec=3}, SentencePiece{piece=1, score=2, type=3},
 * TrainerSpec{model_type=3, vocab_size=4, byte_fallback=35, unk_id..pad_id=40..43, unk..pad_piece=45..48},
 * NormalizerSpec{name=1, precompiled_charsmap=2, add_dummy_prefix=3, remove_extra_whitespaces=4,
 * escape_whitespaces=5}). The model handed to the library has add_dummy_prefix off; the space is put in
 * front here, only for text that starts the input or follows a special token, as llama.cpp does.
 */
#include <sentencepiece_processor.h>

#include <cstring>
#include <stdexcept>
#include <unordered_set>

#include "tokenizer-impl.h"

namespace hearth::detail {

// ---- protobuf wire format ------------------------------------------------------------------------

namespace {

class ProtoWriter {
 public:
  void varint(uint64_t v) {
    while (v >= 0x80) {
      m_out.push_back(char(v | 0x80));
      v >>= 7;
    }
    m_out.push_back(char(v));
  }
  void tag(int field, int wire) { varint((uint64_t(field) << 3) | uint64_t(wire)); }
  void field_varint(int field, uint64_t v) {
    tag(field, 0);
    varint(v);
  }
  void field_int32(int field, int32_t v) { field_varint(field, uint64_t(int64_t(v))); }  // negatives: 10 bytes
  void field_bool(int field, bool v) { field_varint(field, v ? 1 : 0); }
  void field_bytes(int field, std::string_view s) {
    tag(field, 2);
    varint(s.size());
    m_out.append(s);
  }
  void field_float(int field, float f) {
    tag(field, 5);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    for (int i = 0; i < 4; ++i) m_out.push_back(char((u >> (8 * i)) & 0xFF));
  }
  const std::string& str() const { return m_out; }

 private:
  std::string m_out;
};

class ProtoReader {
 public:
  ProtoReader(std::string_view data, std::string where) : m_data(data), m_where(std::move(where)) {}
  bool done() const { return m_pos >= m_data.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (m_pos >= m_data.size()) fail("truncated varint");
      uint8_t b = uint8_t(m_data[m_pos++]);
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }
  std::string_view bytes() {
    uint64_t n = varint();
    if (n > m_data.size() - m_pos) fail("length " + std::to_string(n) + " runs past the end");
    auto s = m_data.substr(m_pos, n);
    m_pos += n;
    return s;
  }
  float fixed32_float() {
    if (m_data.size() - m_pos < 4) fail("truncated fixed32");
    uint32_t u = 0;
    for (int i = 0; i < 4; ++i) u |= uint32_t(uint8_t(m_data[m_pos + i])) << (8 * i);
    m_pos += 4;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  void skip(int wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1:
        if (m_data.size() - m_pos < 8) fail("truncated fixed64");
        m_pos += 8;
        break;
      case 2: bytes(); break;
      case 5:
        if (m_data.size() - m_pos < 4) fail("truncated fixed32");
        m_pos += 4;
        break;
      default: fail("unsupported wire type " + std::to_string(wire));
    }
  }
  // Reads a key; returns false at the end.
  bool next(int& field, int& wire) {
    if (done()) return false;
    uint64_t k = varint();
    field = int(k >> 3);
    wire = int(k & 7);
    return true;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(m_where + ": byte " + std::to_string(m_pos) + ": " + what);
  }
  size_t pos() const { return m_pos; }

 private:
  std::string_view m_data;
  std::string m_where;
  size_t m_pos = 0;
};

bool is_byte_piece(const std::string& s) {
  if (s.size() != 6 || s.compare(0, 3, "<0x") != 0 || s[5] != '>') return false;
  return std::isxdigit(uint8_t(s[3])) && std::isxdigit(uint8_t(s[4]));
}

// The pieces as libsentencepiece will accept them: non-empty, unique, exactly one UNKNOWN, byte pieces
// in <0xXX> form. Returns the piece texts and types to write (the tokenizer keeps the originals).
struct ProtoPieces {
  std::vector<std::string> text;
  std::vector<int> type;
  int unk = -1;
  bool byte_fallback = false;
};
ProtoPieces proto_pieces(const VocabSpec& spec) {
  ProtoPieces p;
  size_t n = spec.tokens.size();
  p.text.resize(n);
  p.type.resize(n);
  std::unordered_set<std::string_view> seen;
  seen.reserve(n * 2);
  int first_unknown = -1;
  for (size_t i = 0; i < n; ++i) {
    p.text[i] = spec.tokens[i];
    p.type[i] = int(spec.types[i]);
    if (p.type[i] == int(TokenType::unknown) && first_unknown < 0) first_unknown = int(i);
  }
  p.unk = spec.unk ? int(*spec.unk) : first_unknown;
  for (size_t i = 0; i < n; ++i) {
    if (int(i) == p.unk) p.type[i] = int(TokenType::unknown);
    else if (p.type[i] == int(TokenType::unknown)) p.type[i] = int(TokenType::control);
    if (p.type[i] == int(TokenType::byte) && !is_byte_piece(p.text[i])) p.type[i] = int(TokenType::normal);
    if (p.type[i] == int(TokenType::byte)) p.byte_fallback = true;
    if (p.type[i] < 1 || p.type[i] > 6) p.type[i] = int(TokenType::normal);
  }
  for (size_t i = 0; i < n; ++i) {
    if (p.text[i].empty() || !seen.insert(spec.tokens[i]).second) {
      p.text[i] = "[HEARTH_PLACEHOLDER_" + std::to_string(i) + "]";
      if (int(i) != p.unk) p.type[i] = int(TokenType::unused);
    }
  }
  return p;
}

}  // namespace

std::string serialize_spm_proto(const VocabSpec& spec, bool add_dummy_prefix) {
  ProtoPieces pp = proto_pieces(spec);
  ProtoWriter model;
  size_t n = pp.text.size();
  for (size_t i = 0; i < n; ++i) {
    ProtoWriter piece;
    piece.field_bytes(1, pp.text[i]);
    piece.field_float(2, spec.scores.empty() ? 0.0f : spec.scores[i]);
    piece.field_varint(3, uint64_t(pp.type[i]));
    model.field_bytes(1, piece.str());
  }
  // libsentencepiece refuses a model without an UNKNOWN piece; one past the vocabulary is never used
  // by these vocabularies (their byte pieces cover every byte), and ids past it are dropped on encode.
  if (pp.unk < 0) {
    ProtoWriter piece;
    piece.field_bytes(1, "[HEARTH_UNK]");
    piece.field_float(2, 0.0f);
    piece.field_varint(3, uint64_t(TokenType::unknown));
    model.field_bytes(1, piece.str());
    pp.unk = int(n);
  }
  ProtoWriter trainer;
  trainer.field_varint(3, uint64_t(spec.spm_model_type));
  trainer.field_int32(4, int32_t(n));
  trainer.field_bool(35, pp.byte_fallback);
  trainer.field_int32(40, pp.unk);
  auto special = [&](int field_id, int field_piece, const std::optional<TokenId>& id) {
    trainer.field_int32(field_id, id ? *id : -1);
    if (id && size_t(*id) < n) trainer.field_bytes(field_piece, spec.tokens[*id]);
  };
  special(41, 46, spec.bos);
  special(42, 47, spec.eos);
  special(43, 48, spec.pad);
  if (size_t(pp.unk) < n) trainer.field_bytes(45, pp.text[pp.unk]);
  model.field_bytes(2, trainer.str());
  ProtoWriter norm;
  norm.field_bytes(1, spec.spm_normalizer_name);
  if (!spec.spm_precompiled_charsmap.empty()) norm.field_bytes(2, spec.spm_precompiled_charsmap);
  norm.field_bool(3, add_dummy_prefix);
  norm.field_bool(4, spec.remove_extra_whitespaces);
  norm.field_bool(5, true);
  model.field_bytes(3, norm.str());
  return model.str();
}

Expected<VocabSpec> parse_spm_proto(std::string_view bytes, const std::string& where) {
  VocabSpec spec;
  spec.kind = Tokenizer::Kind::sentencepiece;
  spec.source = where;
  // proto2 defaults of the fields read below
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  bool add_dummy_prefix = true;
  spec.remove_extra_whitespaces = true;
  spec.spm_model_type = 1;
  spec.spm_normalizer_name.clear();
  try {
    ProtoReader r(bytes, where);
    int field, wire;
    while (r.next(field, wire)) {
      if (field == 1 && wire == 2) {
        ProtoReader pr(r.bytes(), where + " (piece " + std::to_string(spec.tokens.size()) + ")");
        std::string text;
        float score = 0;
        int type = 1;
        int f, w;
        while (pr.next(f, w)) {
          if (f == 1 && w == 2) text = std::string(pr.bytes());
          else if (f == 2 && w == 5) score = pr.fixed32_float();
          else if (f == 3 && w == 0) type = int(pr.varint());
          else pr.skip(w);
        }
        if (type < 1 || type > 6) type = 1;
        spec.tokens.push_back(std::move(text));
        spec.scores.push_back(score);
        spec.types.push_back(TokenType(type));
      } else if (field == 2 && wire == 2) {
        ProtoReader tr(r.bytes(), where + " (trainer_spec)");
        int f, w;
        while (tr.next(f, w)) {
          if (w != 0) {
            tr.skip(w);
            continue;
          }
          int64_t v = int64_t(tr.varint());
          switch (f) {
            case 3: spec.spm_model_type = int(v); break;
            case 40: unk_id = int32_t(v); break;
            case 41: bos_id = int32_t(v); break;
            case 42: eos_id = int32_t(v); break;
            case 43: pad_id = int32_t(v); break;
            default: break;
          }
        }
      } else if (field == 3 && wire == 2) {
        ProtoReader nr(r.bytes(), where + " (normalizer_spec)");
        int f, w;
        while (nr.next(f, w)) {
          if (f == 1 && w == 2) spec.spm_normalizer_name = std::string(nr.bytes());
          else if (f == 2 && w == 2) spec.spm_precompiled_charsmap = std::string(nr.bytes());
          else if (f == 3 && w == 0) add_dummy_prefix = nr.varint() != 0;
          else if (f == 4 && w == 0) spec.remove_extra_whitespaces = nr.varint() != 0;
          else nr.skip(w);
        }
      } else {
        r.skip(wire);
      }
    }
  } catch (const std::exception& e) {
    return make_error(ErrorCode::format, std::string(e.what()), "is this a SentencePiece tokenizer.model?");
  }
  if (spec.tokens.empty())
    return make_error(ErrorCode::format, where + ": no pieces (not a SentencePiece model?)");
  if (spec.spm_model_type != 1 && spec.spm_model_type != 2)
    return make_error(ErrorCode::unsupported, where + ": SentencePiece model type " +
                                                  std::to_string(spec.spm_model_type) +
                                                  " (only unigram and BPE are supported)");
  auto id = [&](int32_t v) -> std::optional<TokenId> {
    if (v < 0 || size_t(v) >= spec.tokens.size()) return std::nullopt;
    return v;
  };
  spec.unk = id(unk_id);
  spec.bos = id(bos_id);
  spec.eos = id(eos_id);
  spec.pad = id(pad_id);
  spec.add_space_prefix = add_dummy_prefix;
  spec.add_bos = true;  // LlamaTokenizer's default; tokenizer_config.json may say otherwise
  spec.add_eos = false;
  return spec;
}

// ---- SpmModel --------------------------------------------------------------------------------------

struct SpmModel::Impl {
  sentencepiece::SentencePieceProcessor sp;
};

SpmModel::SpmModel(const VocabSpec& spec) : m_impl(std::make_unique<Impl>()) {
  m_n_vocab = int32_t(spec.tokens.size());
  m_add_space_prefix = spec.add_space_prefix;
  // With remove_extra_whitespaces the library would strip a space put in front by hand, so then it adds
  // the prefix itself (to every fragment; the only case where this differs from llama.cpp).
  m_prefix_by_hand = !spec.remove_extra_whitespaces;
  std::string proto = serialize_spm_proto(spec, m_prefix_by_hand ? false : spec.add_space_prefix);
  m_file_proto = serialize_spm_proto(spec, spec.add_space_prefix);
  auto st = m_impl->sp.LoadFromSerializedProto(proto);
  if (!st.ok()) throw std::runtime_error("libsentencepiece rejected the vocabulary: " + st.ToString());
}

SpmModel::~SpmModel() = default;

void SpmModel::encode(std::string_view text, bool prefix_space, std::vector<TokenId>& out) const {
  if (text.empty()) return;
  std::vector<int> ids;
  sentencepiece::util::Status st;
  if (m_prefix_by_hand && m_add_space_prefix && prefix_space) {
    std::string s;
    s.reserve(text.size() + 1);
    s.push_back(' ');
    s.append(text);
    st = m_impl->sp.Encode(s, &ids);
  } else {
    st = m_impl->sp.Encode(text, &ids);
  }
  if (!st.ok()) throw std::runtime_error("sentencepiece: " + st.ToString());
  for (int id : ids)
    if (id >= 0 && id < m_n_vocab) out.push_back(id);
}

}  // namespace hearth::detail
