// vifd-launcher: starts one vifd per guest with the guest and stops it when
// the guest goes (backend/lib/launcher). Runs as vifd-launcher.service, which
// starts vifd@<domid>.service instances through systemctl.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "backend/lib/control/instance_lock.h"
#include "backend/lib/launcher/launcher.h"
#include "common/cli/command_line.h"
#include "common/log/log.h"
#include "common/platform/platform.h"
#include "common/platform/select/platform_select.h"
#include "common/xenstore/client.h"

namespace {

int run(int argc, char** argv) {
  CLI::App app{"vifd-launcher: one vifd per guest, started and stopped with the guest"};
  std::string platform_name;
  std::string start_command = "systemctl --no-block start vifd@{domid}.service";
  std::string stop_command = "systemctl --no-block stop vifd@{domid}.service";
  std::string lock_dir;
  unsigned command_timeout_s = 30;
  std::string log_level = "info";
  app.add_option("--platform", platform_name, "xen or sim (default: sim if VIF_SIM_DIR is set)")
      ->check(CLI::IsMember({"xen", "sim"}));
  app.add_option("--start-command", start_command,
                 "command starting the vifd of domain {domid}, split on spaces, run without a "
                 "shell (default: systemctl --no-block start vifd@{domid}.service)");
  app.add_option("--stop-command", stop_command,
                 "command stopping the vifd of domain {domid} (default: systemctl --no-block stop "
                 "vifd@{domid}.service)");
  app.add_option("--lock-dir", lock_dir,
                 "vifd's instance lock directory, where running per-guest vifds are found "
                 "(default /run/vifd; $VIF_SIM_DIR in sim mode)");
  app.add_option("--command-timeout", command_timeout_s,
                 "seconds a start or stop command may run before it is killed (default 30)")
      ->check(CLI::Range(1U, 3600U));
  vifd::cli::add_log_level_option(app, "--log-level", log_level, "log level");
  vifd::cli::add_common_flags(app, "vifd-launcher");
  if (const auto exit_code = vifd::cli::parse(app, argc, argv)) {
    return *exit_code;
  }

  auto log = vifd::log::named("vifd-launcher", spdlog::level::info);
  log->set_level(spdlog::level::from_str(log_level));
  try {
    vifd::launcher::LauncherOptions options;
    options.start_command = vifd::launcher::CommandTemplate(start_command);
    options.stop_command = vifd::launcher::CommandTemplate(stop_command);
    options.command_timeout = std::chrono::seconds(command_timeout_s);
    const auto platform = vifd::platform::make_platform(platform_name);
    options.backend = platform->self_domid();
    options.lock_dir = lock_dir.empty()
                           ? vifd::backend::InstanceLock::default_dir(platform->name()).string()
                           : lock_dir;
    auto xenstore = vifd::xs::Client::open(platform->xenstore_socket());

    boost::asio::io_context io;
    vifd::launcher::Launcher launcher(io, xenstore, *log, std::move(options));
    boost::asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code& error, int signal) {
      if (error) {
        return;
      }
      log->info("signal {}: exiting, the guests' vifds keep running", signal);
      io.stop();
    });
    launcher.start();
    io.run();
    return launcher.failed() ? vifd::cli::kExitFailure : vifd::cli::kExitOk;
  } catch (const std::exception& e) {
    log->critical("{}", e.what());
    return vifd::cli::kExitFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  // What run() throws outside its own handler (the command line's setup, the
  // logger) is a failure like any other.
  try {
    return run(argc, argv);
  } catch (...) {
    return vifd::cli::kExitFailure;
  }
}
