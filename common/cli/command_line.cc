#include "common/cli/command_line.h"

#include <fmt/format.h>

namespace vifd::cli {

std::string_view version() {
  return VIFD_VERSION;
}

std::string version_line(std::string_view program) {
  return fmt::format("{} {}", program, version());
}

void add_common_flags(CLI::App& app, std::string_view program) {
  app.set_version_flag("--version", version_line(program));
  app.footer(fmt::format("Exit status: {} success, {} failure, {} command-line error.", kExitOk,
                         kExitFailure, kExitUsage));
}

CLI::Option* add_log_level_option(CLI::App& app, const std::string& name, std::string& level,
                                  const std::string& description) {
  return app.add_option(name, level, description)
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
}

std::optional<int> parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError& error) {
    // Prints the help or version text to stdout, an error to stderr.
    const int code = app.exit(error);
    return code == 0 ? kExitOk : kExitUsage;
  }
}

}  // namespace vifd::cli
