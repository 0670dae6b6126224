/* hearth-cli: the headless front end (no Qt). Subcommands live in cmd-*.cpp and register themselves.
 * Non-obvious choice: every failure, including CLI11's own parse errors, becomes exactly one line on
 * stderr and a non-zero exit, so scripts can rely on stdout holding only results. */
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "command.h"
#include "hearth/app/version.h"

namespace hearth::cli {

std::vector<Registrar>& registrars() {
  static std::vector<Registrar> list;
  return list;
}

CommandRegistration::CommandRegistration(Registrar fn) { registrars().push_back(fn); }

std::string read_file_or_throw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CliError("cannot open '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw CliError("cannot read '" + path + "'");
  return ss.str();
}

}  // namespace hearth::cli

int main(int argc, char** argv) {
  using namespace hearth::cli;
  CLI::App app{"hearth-cli: local language models, headless"};
  app.set_version_flag("--version", std::string("hearth-cli ") + hearth::app::version());
  app.require_subcommand(1);
  for (Registrar r : registrars()) r(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fflush(stdout);
    std::cerr << "hearth-cli: " << e.what() << "\n";
    return e.get_exit_code() ? e.get_exit_code() : 2;
  } catch (const CliError& e) {
    std::fflush(stdout);
    std::cerr << "hearth-cli: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::cerr << "hearth-cli: internal error: " << e.what() << "\n";
    return 70;
  }
  return 0;
}
