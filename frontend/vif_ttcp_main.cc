// vif-ttcp: a ttcp-compatible throughput tool, run inside domains and dom0 to
// measure the vif data path the way the historical Xen results were measured.
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <string_view>
#include <vector>

#include "common/cli/command_line.h"
#include "frontend/lib/ttcp/options.h"
#include "frontend/lib/ttcp/report.h"
#include "frontend/lib/ttcp/session.h"
#include "frontend/lib/ttcp/socket.h"

namespace {

using vifd::cli::kExitFailure;
using vifd::cli::kExitOk;
using vifd::cli::kExitUsage;

int run(const vifd::ttcp::Options& options) {
  using vifd::ttcp::Role;
  try {
    vifd::ttcp::TransferResult result;
    if (options.role == Role::kTransmit) {
      result = vifd::ttcp::Transmitter(options, stderr).run();
    } else {
      vifd::ttcp::Receiver receiver(options, stderr);
      result = receiver.run();
    }
    if (options.json) {
      fmt::print(stdout, "{}\n", vifd::ttcp::json_report(options, result));
      std::fflush(stdout);
    }
    return kExitOk;
  } catch (const vifd::ttcp::SystemError& error) {
    // ttcp's err(): perror() then the raw errno.
    fmt::print(stderr, "{}: {}\nerrno={}\n", options.tag(), error.what(), error.error_number());
  } catch (const std::exception& error) {
    fmt::print(stderr, "{}: {}\n", options.tag(), error.what());
  }
  return kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> arguments(argv + 1, argv + argc);
  vifd::ttcp::Options options;
  try {
    options = vifd::ttcp::parse_options(arguments);
  } catch (const vifd::ttcp::UsageError& error) {
    fmt::print(stderr, "vif-ttcp: {}\n{}", error.what(), vifd::ttcp::usage_text());
    return kExitUsage;
  }
  if (options.help) {
    fmt::print(stdout, "{}", vifd::ttcp::usage_text());
    return kExitOk;
  }
  if (options.version) {
    fmt::print(stdout, "{}\n", vifd::cli::version_line("vif-ttcp"));
    return kExitOk;
  }
  return run(options);
}
