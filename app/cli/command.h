/* Subcommand registration for hearth-cli.
 *
 * Each cmd-*.cpp defines `static CommandRegistration reg(fn)`; main() calls every registered fn to add
 * its subcommand. A command reports failure by throwing CliError: main prints its message as one line on
 * stderr and exits non-zero. Nothing else may write errors to stderr.
 */
#pragma once

#include <CLI/CLI.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "hearth/error.h"

namespace hearth::cli {

using Registrar = void (*)(CLI::App& app);

struct CommandRegistration {
  explicit CommandRegistration(Registrar fn);
};

std::vector<Registrar>& registrars();

class CliError : public std::runtime_error {
 public:
  explicit CliError(const std::string& message, int exit_code = 1)
      : std::runtime_error(message), m_exit_code(exit_code) {}
  explicit CliError(const Error& e, int exit_code = 1)
      : std::runtime_error(e.to_string()), m_exit_code(exit_code) {}
  int exit_code() const { return m_exit_code; }

 private:
  int m_exit_code;
};

// Unwraps an Expected or throws its error as a CliError.
template <class T>
T unwrap(Expected<T>&& r) {
  if (!r) throw CliError(r.error());
  return std::move(*r);
}
inline void unwrap(Expected<void>&& r) {
  if (!r) throw CliError(r.error());
}

// Reads a whole file as bytes, or throws CliError naming it.
std::string read_file_or_throw(const std::string& path);

}  // namespace hearth::cli
