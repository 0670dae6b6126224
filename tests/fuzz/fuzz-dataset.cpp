/* Fuzz target for training data: the input is a dataset file (JSONL or text) run through format
 * detection, load_dataset (skipping and strict) with a real chat template and the Llama 2 tokenizer,
 * and a few batches of the result.
 *
 * Non-obvious choice: load_dataset reads files, so each input is written to one per-process temporary
 * file; the target links hearth_trainer, which tests/trainer/data.cmake adds (this folder links the
 * engine only). Checked invariants abort: an error without a message, rows/bad-row counts that do not
 * add up, an example longer than max_length, a mask of the wrong size or training the first token.
 */
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "fuzz-driver.h"
#include "hearth/trainer/data.h"

using namespace hearth;
using namespace hearth::train;

namespace {

const Tokenizer& tokenizer() {
  static Tokenizer t = [] {
    auto r = load_tokenizer(std::filesystem::path(HEARTH_TESTDATA) / "models/llama-2-tiny-random.gguf");
    if (!r) std::abort();
    return *r;
  }();
  return t;
}

const ChatTemplate& chatml() {
  static ChatTemplate t = *ChatTemplate::parse(fallback_chat_template());
  return t;
}

void check(const Expected<Dataset>& d, int64_t max_length) {
  if (!d) {
    if (d.error().message.empty()) std::abort();
    return;
  }
  const DatasetStats& s = d->stats;
  if (s.bad_rows > s.rows || s.examples != int64_t(d->train.size() + d->validation.size())) std::abort();
  if (d->train.empty() || d->sha256.size() != 64) std::abort();
  for (const auto* set : {&d->train, &d->validation})
    for (const Example& ex : *set) {
      if (ex.tokens.size() != ex.train.size() || ex.tokens.empty() || int64_t(ex.tokens.size()) > max_length) std::abort();
      if (ex.train[0] != 0) std::abort();
      for (TokenId id : ex.tokens)
        if (id < 0 || id >= tokenizer().vocab_size()) std::abort();
    }
  BatchIterator it(d->train, 2, max_length, s.rows % 2 == 0, default_pad_id(tokenizer()), 1);
  for (int i = 0; i < 3; ++i) {
    Batch b = it.next();
    if (b.tokens.size() != size_t(b.B * b.T) || b.targets.size() != b.tokens.size()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("hearth-fuzz-dataset-" + std::to_string(::getpid()) + ".jsonl");
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  auto f = detect_format(file);
  if (!f && f.error().message.empty()) std::abort();
  DataConfig c;
  c.train = file;
  c.max_length = 48;
  c.validation_split = 0.2;
  check(load_dataset(c, tokenizer(), &chatml(), 3), c.max_length);
  c.skip_bad_lines = false;
  c.train_on_all = true;
  check(load_dataset(c, tokenizer(), nullptr, 3), c.max_length);
  return 0;
}

std::vector<std::vector<uint8_t>> hearth_fuzz_seeds() {
  const char* seeds[] = {
      "{\"instruction\": \"Add.\", \"input\": \"2 and 3\", \"output\": \"5\"}\n"
      "{\"instruction\": \"Hi\", \"output\": \"Hello\", \"system\": \"Be brief.\"}\n",
      "\xEF\xBB\xBF{\"conversations\": [{\"from\": \"human\", \"value\": \"Hi\"}, {\"from\": \"gpt\", \"value\": "
      "\"Hey\"}]}\r\n\r\n{\"conversations\": [{\"from\": \"system\", \"value\": \"s\"}, {\"from\": \"human\", "
      "\"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\r\n",
      "{\"messages\": [{\"role\": \"user\", \"content\": \"Gr\xC3\xBC\xC3\x9F dich\"}, {\"role\": \"assistant\", "
      "\"content\": \"Hallo \xE2\x98\x83\"}]}\n{\"messages\": []}\n{\"messages\": [{\"role\": \"x\"}]}\n",
      "{\"text\": \"A document of plain text.\"}\n{\"text\": \"Another one\\nwith two lines.\"}\n",
      "[\n  {\"instruction\": \"Say [hi]\", \"input\": \"\", \"output\": \"hi, {you}\"},\n"
      "  {\"instruction\": \"b\", \"output\": \"c\"}\n]\n",
  };
  std::vector<std::vector<uint8_t>> out;
  for (const char* s : seeds) out.emplace_back(s, s + std::char_traits<char>::length(s));
  return out;
}

std::string hearth_fuzz_seed_suffix() { return ".jsonl"; }
