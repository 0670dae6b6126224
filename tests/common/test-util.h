/* Small helpers shared by the GoogleTest suites: paths to test data and a scratch folder, running
 * hearth-cli and capturing its output. */
#pragma once

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace hearth::test {

inline std::filesystem::path testdata(const std::string& rel = "") {
  return std::filesystem::path(HEARTH_TESTDATA) / rel;
}
inline std::filesystem::path source_dir(const std::string& rel = "") {
  return std::filesystem::path(HEARTH_SOURCE_DIR) / rel;
}
// A fresh scratch folder for one test (removed and recreated). It lies under a folder of this process:
// ctest runs each discovered test case as its own process, two at a time, so a folder shared by name
// would be emptied under a test of the same executable that is still using it.
inline std::filesystem::path scratch(const std::string& name) {
  auto p = std::filesystem::path(HEARTH_TEST_TMP) / ("pid-" + std::to_string(::getpid())) / name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}
inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
inline void write_text(const std::filesystem::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout (stderr goes to `err`)
  std::string err;
};

// Runs a shell command line, capturing stdout and stderr separately.
inline RunResult run(const std::string& cmdline) {
  static int counter = 0;
  auto dir = std::filesystem::path(HEARTH_TEST_TMP);
  std::filesystem::create_directories(dir);
  auto errf = dir / ("stderr-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  RunResult r;
  std::string full = cmdline + " 2>'" + errf.string() + "'";
  FILE* f = ::popen(full.c_str(), "r");
  if (!f) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) r.out.append(buf.data(), n);
  int st = ::pclose(f);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.err = read_text(errf);
  std::filesystem::remove(errf);
  return r;
}

inline std::string cli() { return std::string("'") + HEARTH_CLI + "'"; }

}  // namespace hearth::test
