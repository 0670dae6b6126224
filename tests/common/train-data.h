/* Training data written on the fly for the training-loop tests (CPU, GPU, the fake device): an
 * Alpaca-style JSONL file of short instruction/answer pairs about a dozen everyday things.
 *
 * Non-obvious choice: the pairs are built from a fixed list with a fixed stride, not at random, so every
 * test (and every machine) trains on the same bytes and a comparison between two runs never depends on
 * the data.
 */
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace hearth::test {

// Writes `rows` lines to dir/data.jsonl and returns that path.
inline std::filesystem::path write_instruction_data(const std::filesystem::path& dir, int rows = 40) {
  static const char* const THINGS[] = {"apple", "river", "garden", "music", "winter", "candle",
                                       "forest", "letter", "window", "silver", "dream", "bridge"};
  constexpr int N = int(sizeof THINGS / sizeof THINGS[0]);
  std::ofstream o(dir / "data.jsonl");
  for (int i = 0; i < rows; ++i) {
    const std::string t = THINGS[i % N], u = THINGS[(i * 5 + 2) % N];
    o << nlohmann::json{{"instruction", "Tell me about the " + t + " and the " + u + "."},
                        {"input", ""},
                        {"output", "The " + t + " is good. The " + u + " is good too."}}
             .dump()
      << "\n";
  }
  return dir / "data.jsonl";
}

}  // namespace hearth::test
