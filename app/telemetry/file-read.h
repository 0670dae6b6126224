/* Small file readers for sysfs and procfs values (internal to app/telemetry).
 *
 * Non-obvious choice: reads go through POSIX open/read with errno captured, not iostreams, so an
 * unreadable file (permissions, a directory, a vanished zone) reports the operating system's reason.
 */
#pragma once

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <string>
#include <unistd.h>

namespace hearth::telemetry::detail {

// Whole small file (up to `limit` bytes); on failure returns nullopt and sets `error`.
inline std::optional<std::string> readSmallFile(const std::string& path, std::string* error,
                                                std::size_t limit = 1 << 20) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (error) *error = path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string out;
  char buf[4096];
  while (out.size() < limit) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (error) *error = path + ": " + std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

inline std::string trimmed(std::string s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// A file holding one unsigned decimal number (energy_uj, max_energy_range_uj).
inline std::optional<std::uint64_t> readU64File(const std::string& path, std::string* error) {
  auto text = readSmallFile(path, error, 256);
  if (!text) return std::nullopt;
  std::string t = trimmed(*text);
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || p != t.data() + t.size()) {
    if (error) *error = path + ": expected an unsigned integer, found '" + t.substr(0, 40) + "'";
    return std::nullopt;
  }
  return v;
}

inline std::string joinPath(const std::string& root, const std::string& rel) {
  if (root.empty() || root == "/") return rel;
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return r + rel;
}

}  // namespace hearth::telemetry::detail
