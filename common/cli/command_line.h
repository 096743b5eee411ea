// What every vifd program does with its command line: the same exit codes,
// `--version`, and CLI11's errors turned into a usage error.
#pragma once

// clang-format off
// GCC 12 at -O2 reports -Wnull-dereference inside CLI11's string helpers
// after inlining; disabled for the CLI11 header only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <CLI/CLI.hpp>
#pragma GCC diagnostic pop
// clang-format on

#include <optional>
#include <string>
#include <string_view>

namespace vifd::cli {

// The exit codes of every program (vifd, vif-front, vifctl, vif-sim,
// vif-ttcp), as documented in their --help and the operator guide.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // it ran and failed
inline constexpr int kExitUsage = 2;    // the command line was wrong

// The release (CMake's project version).
std::string_view version();
// "<program> <version>", what --version prints.
std::string version_line(std::string_view program);

// Adds --version (prints version_line and exits 0) and a footer naming the
// exit codes to `app`.
void add_common_flags(CLI::App& app, std::string_view program);

// Adds `name` (e.g. "--log-level") taking one of spdlog's level names
// (trace, debug, info, warn, error, critical, off) into `level`.
CLI::Option* add_log_level_option(CLI::App& app, const std::string& name, std::string& level,
                                  const std::string& description);

// Parses argv. std::nullopt: run. Otherwise the program exits with the
// value: kExitOk after --help or --version (printed to stdout), kExitUsage
// after a command-line error (CLI11's message, naming the option, to
// stderr).
std::optional<int> parse(CLI::App& app, int argc, char** argv);

}  // namespace vifd::cli
