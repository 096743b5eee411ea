// vifd: the userspace Xen network backend daemon. Parses the command line,
// picks the platform and runs the control plane (VifBackendDaemon) on one
// io_context thread until SIGTERM/SIGINT, or until the xenstored connection
// is lost (exit status 1, for the service manager to restart it).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backend/lib/control/asio.h"
#include "backend/lib/control/instance_lock.h"
#include "backend/lib/control/log.h"
#include "backend/lib/control/metrics_server.h"
#include "backend/lib/control/switch_policy.h"
#include "backend/lib/control/vif_backend_daemon.h"
#include "backend/lib/datapath/queue.h"
#include "common/cli/command_line.h"
#include "common/log/log.h"
#include "common/net/link.h"
#include "common/platform/platform.h"
#include "common/platform/select/platform_select.h"
#include "common/service/notify.h"
#include "common/service/startup_check.h"
#include "common/xenstore/client.h"

namespace {

// The default control socket: next to the simulated host in sim mode, so
// several sim hosts (and their vifds) can run side by side.
std::string default_control_socket(const vifd::platform::Platform& platform) {
  if (platform.name() == "sim") {
    if (const char* dir = std::getenv("VIF_SIM_DIR"); dir != nullptr && *dir != '\0') {
      return std::string(dir) + "/vifd.sock";
    }
  }
  return "/run/vifd/vifd.sock";
}

// The default metrics socket: next to the control socket, `metrics.sock`
// beside the default `vifd.sock`, `NAME-metrics.sock` beside any other
// `NAME.sock` (two vifds with their own control sockets get their own).
std::string default_metrics_socket(const std::string& control_socket) {
  const std::filesystem::path control(control_socket);
  const std::string stem =
      control.extension() == ".sock" ? control.stem().string() : control.filename().string();
  return (control.parent_path() / (stem == "vifd" ? "metrics.sock" : stem + "-metrics.sock"))
      .string();
}

// WATCHDOG=1 from the control-plane thread at the interval systemd asked
// for: a control plane wedged in a handler stops the pings and systemd
// restarts vifd.
class WatchdogPings {
 public:
  WatchdogPings(boost::asio::io_context& io, std::chrono::microseconds interval)
      : timer_(io), interval_(interval) {
    ping();
  }

 private:
  void ping() {
    vifd::service::notify_watchdog();
    timer_.expires_after(interval_);
    timer_.async_wait([this](const boost::system::error_code& error) {
      if (!error) {
        ping();
      }
    });
  }

  boost::asio::steady_timer timer_;
  std::chrono::microseconds interval_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vifd: userspace Xen network backend (netback)"};
  std::string platform_name;
  std::vector<unsigned> domains;
  unsigned max_queues = vifd::backend::default_max_queues();
  std::string control_socket;
  std::string lock_dir;
  std::string metrics_socket;
  bool no_metrics_socket = false;
  std::vector<std::string> metrics_listen;
  bool no_fast_path = false;
  std::vector<std::string> tap_only_bridges;
  std::vector<std::string> tap_only_vifs;
  std::vector<std::string> learning_vifs;
  bool close_on_exit = false;
  std::size_t rx_backlog_kib = 512;
  unsigned rx_drain_timeout_ms = 250;
  std::string log_level = "info";
  std::string datapath_log_level = "warn";
  std::string log_format = "auto";
  app.add_option("--platform", platform_name, "xen or sim (default: sim if VIF_SIM_DIR is set)")
      ->check(CLI::IsMember({"xen", "sim"}));
  app.add_option("--domain", domains, "serve only this frontend domain (repeatable; default: all)")
      ->check(CLI::Range(0U, 0x7FEFU));
  app.add_option("--max-queues", max_queues, "multi-queue-max-queues to advertise")
      ->check(CLI::Range(1U, 64U));
  app.add_option("--control-socket", control_socket,
                 "unix socket for stats/show (default /run/vifd/vifd.sock; "
                 "$VIF_SIM_DIR/vifd.sock in sim mode)");
  app.add_option("--lock-dir", lock_dir,
                 "directory of the instance lock, one vifd per backend domain (or per --domain) "
                 "(default /run/vifd; $VIF_SIM_DIR in sim mode)");
  app.add_option("--metrics-socket", metrics_socket,
                 "unix socket serving HTTP GET /metrics (Prometheus/OpenMetrics text) "
                 "(default: metrics.sock next to the control socket)");
  app.add_flag("--no-metrics-socket", no_metrics_socket, "no metrics unix socket")
      ->excludes("--metrics-socket");
  app.add_option("--metrics-listen", metrics_listen,
                 "also serve /metrics over TCP on ADDR:PORT or [ADDR6]:PORT (repeatable; "
                 "numeric addresses)")
      ->check(CLI::Validator(
          [](std::string& text) {
            try {
              vifd::backend::parse_listen_address(text);
              return std::string();
            } catch (const std::invalid_argument& e) {
              return std::string(e.what());
            }
          },
          "ADDR:PORT"));
  app.add_flag("--no-fast-path", no_fast_path,
               "no in-process switch: every frame goes through the vif's TAP");
  app.add_option("--rx-backlog-kib", rx_backlog_kib,
                 "per queue: KiB of frames that may wait for a guest's RX buffers, a GSO frame "
                 "counting its whole length (default 512, netback's XENVIF_RX_QUEUE_BYTES)")
      ->check(CLI::Range(std::size_t{64}, std::size_t{65536}));
  app.add_option("--rx-drain-timeout-ms", rx_drain_timeout_ms,
                 "per frame: how long it may wait for a guest's RX buffers before it is dropped "
                 "(rx_drain_timeout) and a sending guest's slots are answered (default 250)")
      ->check(CLI::Range(1U, 60000U));
  const CLI::Validator vif_name(
      [](std::string& text) {
        return vifd::backend::parse_vif_selector(text) ? std::string()
                                                       : "expected DOMID.DEVID (e.g. 3.0): " + text;
      },
      "DOMID.DEVID");
  const CLI::Validator bridge_name(
      [](std::string& text) {
        try {
          vifd::net::check_interface_name(text);
          return std::string();
        } catch (const std::invalid_argument& e) {
          return std::string(e.what());
        }
      },
      "BRIDGE");
  app.add_option("--no-fast-path-bridge", tap_only_bridges,
                 "keep the vifs on this bridge off the in-process switch: their frames go through "
                 "their TAPs and the bridge's filtering (repeatable)")
      ->check(bridge_name);
  app.add_option("--no-fast-path-vif", tap_only_vifs,
                 "keep vif DOMID.DEVID off the in-process switch (repeatable)")
      ->check(vif_name);
  app.add_option("--mac-learning", learning_vifs,
                 "let vif DOMID.DEVID (or `all`) send from MACs other than its configured `mac`, "
                 "for guests that bridge; others' frames from another source MAC are dropped "
                 "(repeatable)")
      ->check(CLI::Validator(
          [](std::string& text) {
            return text == "all" || vifd::backend::parse_vif_selector(text)
                       ? std::string()
                       : "expected DOMID.DEVID or all: " + text;
          },
          "DOMID.DEVID|all"));
  app.add_flag("--close-on-exit", close_on_exit,
               "on SIGTERM close every vif (frontends see Closing/Closed) instead of leaving "
               "them for the next vifd to re-attach");
  vifd::cli::add_log_level_option(app, "--log-level", log_level, "control-plane log level");
  vifd::cli::add_log_level_option(app, "--datapath-log-level", datapath_log_level,
                                  "data-path log level");
  app.add_option("--log-format", log_format,
                 "auto, plain or journal: journal prefixes each line with its syslog priority "
                 "(<3> error ... <7> debug) for journald and leaves the timestamp to it; auto "
                 "picks journal when stderr is the journal (JOURNAL_STREAM)")
      ->check(CLI::IsMember({"auto", "plain", "journal"}));
  vifd::cli::add_common_flags(app, "vifd");
  if (const auto exit_code = vifd::cli::parse(app, argc, argv)) {
    return *exit_code;
  }

  vifd::log::set_format(vifd::log::parse_format(log_format).value_or(vifd::log::Format::kAuto));
  auto& log = vifd::backend::control_log();
  log.set_level(spdlog::level::from_str(log_level));
  vifd::backend::datapath_log()->set_level(spdlog::level::from_str(datapath_log_level));

  int exit_status = EXIT_SUCCESS;
  try {
    // Everything a vif will need, checked before anything is opened: one
    // line names all that is missing instead of each vif failing later.
    vifd::service::Prerequisites prerequisites;
    prerequisites.net_admin = true;
    prerequisites.needs =
        vifd::platform::platform_needs(platform_name, vifd::platform::Role::kBackend);
    prerequisites.needs.push_back(
        {vifd::service::Need::Kind::kDevice, {"/dev/net/tun"}, "/dev/net/tun (for the TAPs)"});
    if (const auto missing = vifd::service::missing(prerequisites); !missing.empty()) {
      log.error("{}", vifd::service::missing_line("vifd", missing));
      return EXIT_FAILURE;
    }
    const auto platform = vifd::platform::make_platform(platform_name);
    auto xenstore = vifd::xs::Client::open(platform->xenstore_socket());

    vifd::backend::DaemonOptions options;
    options.domains = std::set<vifd::platform::DomId>(domains.begin(), domains.end());
    options.max_queues = max_queues;
    options.fast_path = !no_fast_path;
    options.rx_backlog_bytes = rx_backlog_kib * 1024;
    options.rx_drain_timeout = std::chrono::milliseconds(rx_drain_timeout_ms);
    auto& policy = options.switch_policy;
    policy.tap_only_bridges.insert(tap_only_bridges.begin(), tap_only_bridges.end());
    for (const std::string& vif : tap_only_vifs) {
      policy.tap_only_vifs.insert(*vifd::backend::parse_vif_selector(vif));
    }
    for (const std::string& vif : learning_vifs) {
      if (vif == "all") {
        policy.learning_everywhere = true;
      } else {
        policy.learning_vifs.insert(*vifd::backend::parse_vif_selector(vif));
      }
    }
    options.control_socket =
        control_socket.empty() ? default_control_socket(*platform) : control_socket;
    options.lock_dir = lock_dir.empty()
                           ? vifd::backend::InstanceLock::default_dir(platform->name()).string()
                           : lock_dir;
    if (!no_metrics_socket) {
      options.metrics_socket =
          metrics_socket.empty() ? default_metrics_socket(options.control_socket) : metrics_socket;
    }
    for (const std::string& address : metrics_listen) {
      options.metrics_listen.push_back(vifd::backend::parse_listen_address(address));
    }

    options.on_ready = [&log](const std::string& status) {
      log.info("ready: {}", status);
      vifd::service::notify_ready(status);
    };
    options.on_status = [](const std::string& status) { vifd::service::notify_status(status); };

    boost::asio::io_context io;
    // Set by the handlers that end the loop; they run on the io thread.
    std::function<void()> stop;
    options.on_xenstore_lost = [&](const std::string& error) {
      log.error("xenstored connection lost ({}): exiting for the service manager to restart vifd",
                error);
      vifd::service::notify_stopping("xenstored connection lost");
      exit_status = EXIT_FAILURE;
      stop();
    };
    vifd::backend::VifBackendDaemon daemon(io, *platform, xenstore, options);
    boost::asio::signal_set signals(io, SIGTERM, SIGINT);
    // Vifs are left as they are (the next vifd re-attaches them): with
    // xenstored gone they could not be closed anyway.
    stop = [&] {
      signals.cancel();
      daemon.shutdown(false);
      io.stop();
    };
    signals.async_wait([&](const boost::system::error_code& error, int signal) {
      if (error) {
        return;
      }
      log.info("signal {}: {}", signal,
               close_on_exit ? "closing every vif" : "leaving vifs for the next vifd");
      vifd::service::notify_stopping(fmt::format("signal {}", signal));
      daemon.shutdown(close_on_exit);
      io.stop();
    });
    std::optional<WatchdogPings> watchdog;
    if (const auto interval = vifd::service::watchdog_interval()) {
      watchdog.emplace(io, *interval);
    }
    daemon.start();
    log.info("vifd on platform {} as domain {}", platform->name(), platform->self_domid());
    io.run();
  } catch (const std::exception& e) {
    log.critical("{}", e.what());
    return EXIT_FAILURE;
  }
  return exit_status;
}
