/* Stand-alone mutation driver for the fuzz targets when libFuzzer is not available (gcc builds, CI).
 *
 * Non-obvious choice: mutations are aimed at the places parsers get wrong: it overwrites 8-byte windows
 * with huge or small integers (lengths and offsets), truncates at random points, and flips bits; a fixed
 * seed makes a failure reproducible (a crashing input is saved to --scratch/crash-input by a signal
 * handler, and the driver replays a file given as its only argument).
 */
#include "fuzz-driver.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>

namespace fs = std::filesystem;

// The input under test and where to save it if the target crashes. Written only from the crash handler
// (open/write/_exit are async-signal-safe), so the loop itself does no file I/O.
static const std::vector<uint8_t>* g_current = nullptr;
static char g_crash_path[4096] = {0};

extern "C" void hearth_fuzz_on_crash(int sig) {
  if (g_current && g_crash_path[0]) {
    int fd = ::open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ssize_t ignored = ::write(fd, g_current->data(), g_current->size());
      (void)ignored;
      ::close(fd);
    }
    const char msg[] = "fuzz-driver: crash; input saved as crash-input in the scratch folder\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

static std::vector<uint8_t> read_file(const fs::path& p, size_t max_bytes) {
  std::ifstream in(p, std::ios::binary);
  std::vector<uint8_t> v((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (v.size() > max_bytes) v.resize(max_bytes);  // keep iterations fast; truncation is a case too
  return v;
}

static void mutate(std::vector<uint8_t>& d, std::mt19937_64& rng) {
  if (d.empty()) {
    d.push_back(uint8_t(rng()));
    return;
  }
  int n_mut = 1 + int(rng() % 4);
  for (int m = 0; m < n_mut; ++m) {
    // Most structure sits in the first few KiB (headers, metadata, tensor infos): aim there more often.
    size_t span = (rng() % 4 == 0) ? d.size() : std::min<size_t>(d.size(), 4096);
    size_t pos = rng() % span;
    switch (rng() % 6) {
      case 0: d[pos] ^= uint8_t(1u << (rng() % 8)); break;
      case 1: d[pos] = uint8_t(rng()); break;
      case 2: {
        static const uint64_t magic[] = {0, 1, 0x7f, 0xff, 0x7fffffff, 0xffffffff, 0x7fffffffffffffffULL,
                                         0xffffffffffffffffULL, 0x8000000000000000ULL, 1ULL << 32,
                                         1ULL << 40, 31, 33, 4096};
        uint64_t v = magic[rng() % (sizeof magic / sizeof magic[0])];
        size_t w = (rng() % 2) ? 8 : 4;
        for (size_t i = 0; i < w && pos + i < d.size(); ++i) d[pos + i] = uint8_t(v >> (8 * i));
        break;
      }
      case 3: d.resize(rng() % d.size()); if (d.empty()) return; break;
      case 4: {
        size_t len = 1 + rng() % 16;
        std::vector<uint8_t> ins(len);
        for (auto& b : ins) b = uint8_t(rng());
        d.insert(d.begin() + pos, ins.begin(), ins.end());
        break;
      }
      case 5: {
        size_t len = std::min<size_t>(1 + rng() % 64, d.size() - pos);
        d.erase(d.begin() + pos, d.begin() + pos + len);
        if (d.empty()) return;
        break;
      }
    }
  }
}

int main(int argc, char** argv) {
  long iterations = 1000;
  std::string seed_dir, scratch;
  uint64_t seed = 12345;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--iterations") iterations = std::stol(next());
    else if (a == "--seed-dir") seed_dir = next();
    else if (a == "--scratch") scratch = next();
    else if (a == "--seed") seed = std::stoull(next());
    else {
      // A file argument: replay it once (reproducing a saved failure).
      auto d = read_file(a, SIZE_MAX);
      LLVMFuzzerTestOneInput(d.data(), d.size());
      std::cout << "replayed " << a << "\n";
      return 0;
    }
  }

  std::vector<std::vector<uint8_t>> seeds = hearth_fuzz_seeds();
  std::string suffix = hearth_fuzz_seed_suffix();
  if (!seed_dir.empty() && fs::exists(seed_dir) && !suffix.empty()) {
    std::vector<fs::path> files;
    for (auto& e : fs::recursive_directory_iterator(seed_dir))
      if (e.is_regular_file() && e.path().string().ends_with(suffix)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (auto& f : files) seeds.push_back(read_file(f, 256 * 1024));
  }
  if (seeds.empty()) {
    std::cerr << "fuzz-driver: no seeds\n";
    return 1;
  }
  // Unmutated seeds first: they must parse without crashing too.
  for (auto& s : seeds) LLVMFuzzerTestOneInput(s.data(), s.size());

  std::mt19937_64 rng(seed);
  if (!scratch.empty()) {
    fs::create_directories(scratch);
    std::string p = (fs::path(scratch) / "crash-input").string();
    if (p.size() < sizeof g_crash_path) std::copy(p.begin(), p.end(), g_crash_path);
    for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) std::signal(sig, hearth_fuzz_on_crash);
  }
  for (long it = 0; it < iterations; ++it) {
    std::vector<uint8_t> d = seeds[rng() % seeds.size()];
    mutate(d, rng);
    g_current = &d;
    LLVMFuzzerTestOneInput(d.data(), d.size());
    g_current = nullptr;
  }
  std::cout << "fuzz-driver: " << iterations << " mutated inputs from " << seeds.size()
            << " seeds, no crash\n";
  return 0;
}
