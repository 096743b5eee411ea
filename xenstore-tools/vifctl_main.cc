// vifctl: attach, detach and inspect vifs served by vifd, writing the same
// xenstore nodes `xl network-attach` writes (see xenstore-tools/lib/vifctl/).

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>

#include "common/cli/command_line.h"
#include "common/platform/platform.h"
#include "common/platform/select/platform_select.h"
#include "common/xenstore/client.h"
#include "xenstore-tools/lib/vifctl/capture.h"
#include "xenstore-tools/lib/vifctl/commands.h"
#include "xenstore-tools/lib/vifctl/control_client.h"
#include "xenstore-tools/lib/vifctl/top.h"

namespace {

// Set by SIGINT/SIGTERM: a capture then finishes its file and reports.
std::atomic<bool> stop_requested{false};

void request_stop(int /*signal*/) {
  stop_requested.store(true);
}

void catch_stop_signals() {
  struct sigaction action {};
  action.sa_handler = request_stop;
  sigemptyset(&action.sa_mask);
  // No SA_RESTART: a blocked poll returns at once.
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vifctl: attach, detach and inspect vifs served by vifd"};
  std::string platform_name;
  std::optional<std::string> control_socket;
  app.add_option("--platform", platform_name,
                 "xen or sim (default: sim when VIF_SIM_DIR is set, else xen)");
  app.add_option(
      "--control-socket", control_socket,
      "vifd control socket (default /run/vifd/vifd.sock, $VIF_SIM_DIR/vifd.sock on sim)");
  app.require_subcommand(1);

  vifd::vifctl::AttachOptions attach_options;
  auto& a = attach_options.arguments;
  bool no_wait = false;
  auto* attach = app.add_subcommand("attach", "create a vif for a domain (as xl network-attach)");
  attach->add_option("DOMAIN", a.domid, "guest domain: domid or name (as xl)")->required();
  attach->add_option("--devid", a.devid, "device number (default: next free)");
  attach->add_option("--mac", a.mac, "MAC address (default: 00:16:3e:xx:xx:xx, random)");
  attach->add_option("--bridge", a.bridge,
                     "bridge (and vifd switch) to join, or an Open vSwitch port "
                     "BRIDGE[.VLAN][:TRUNK...]");
  attach->add_option("--script", a.script,
                     "hotplug script run after InitWait: a path, or a name in /etc/xen/scripts "
                     "($VIFCTL_SCRIPT_DIR overrides the directory)");
  attach->add_option("--mtu", a.mtu, "MTU (default 1500)");
  attach->add_option("--rate", a.rate, "credit limit BYTES,USEC");
  attach->add_option("--backend-domid", a.backend_domid,
                     "backend domain, domid or name (default: this one)");
  attach->add_flag("--no-wait", no_wait, "do not wait for InitWait nor run the script");

  std::string vif;
  std::optional<std::string> detach_device;
  bool detach_no_wait = false;
  auto* detach = app.add_subcommand("detach", "remove a vif (as xl network-detach)");
  detach->add_option("VIF", vif, "the vif: DOMAIN/DEVID, DOMAIN/MAC, or DOMAIN and DEVICE")
      ->required();
  detach->add_option("DEVICE", detach_device, "devid or MAC of the vif, after DOMAIN");
  detach->add_flag("--no-wait", detach_no_wait, "do not wait for the backend to close");

  bool json = false;
  std::optional<std::string> backend_domid;
  auto* list = app.add_subcommand("list", "list vifs and their states");
  list->add_flag("--json", json, "print JSON");
  list->add_option("--backend-domid", backend_domid, "backend domain (default: this one)");

  auto* show = app.add_subcommand("show", "one vif: states, features, queues, rings, counters");
  show->add_option("DOMAIN/DEVID", vif, "the vif")->required();
  show->add_flag("--json", json, "print JSON");
  show->add_option("--backend-domid", backend_domid, "backend domain (default: this one)");

  std::optional<std::string> stats_vif;
  auto* stats = app.add_subcommand("stats", "per-queue counters from vifd");
  stats->add_option("DOMAIN/DEVID", stats_vif, "only this vif");
  stats->add_flag("--json", json, "print JSON");

  double top_interval = 1.0;
  std::optional<unsigned> top_count;
  bool top_once = false;
  auto* top = app.add_subcommand(
      "top", "live per-vif packet, byte and drop rates from vifd (q or Ctrl-C quits)");
  top->add_option("--interval", top_interval, "seconds between refreshes (default 1)")
      ->check(CLI::Range(0.1, 3600.0));
  top->add_option("--count", top_count, "print COUNT refreshes, then exit")
      ->check(CLI::Range(1U, 1000000U));
  top->add_flag("--once", top_once, "print one refresh (--count 1)")->excludes("--count");

  vifd::vifctl::CaptureOptions capture_options;
  std::optional<double> capture_seconds;
  auto* capture = app.add_subcommand(
      "capture", "write the frames vifd's switch forwards from and to a vif to a pcap file");
  capture->add_option("VIF", capture_options.vif, "the vif: DOMID.DEVID, DOMID/DEVID or vifD.N")
      ->required();
  capture->add_option("-w", capture_options.output, "pcap file to write, - for stdout")->required();
  capture->add_option("-c", capture_options.count, "stop after COUNT frames");
  capture->add_option("--duration", capture_seconds, "stop after SECONDS");
  capture->add_option("--snaplen", capture_options.snaplen,
                      "bytes of each frame to keep, 14..65536 (default 65535)");

  vifd::cli::add_common_flags(app, "vifctl");
  if (const auto exit_code = vifd::cli::parse(app, argc, argv)) {
    return *exit_code;
  }

  if (top->parsed()) {
    // Like capture: needs vifd only.
    try {
      catch_stop_signals();
      vifd::vifctl::TopOptions options;
      options.interval = std::chrono::milliseconds(static_cast<long long>(top_interval * 1000.0));
      options.count = top_once ? std::optional<unsigned>(1) : top_count;
      const std::string socket = control_socket.value_or(vifd::vifctl::default_control_socket(
          platform_name.empty() && std::getenv("VIF_SIM_DIR") != nullptr ? "sim" : platform_name));
      return vifd::vifctl::top_command(socket, options, ::isatty(STDOUT_FILENO) == 1, std::cout,
                                       stop_requested);
    } catch (const std::exception& e) {
      std::cerr << "vifctl: " << e.what() << std::endl;
      return 1;
    }
  }

  if (capture->parsed()) {
    // Needs vifd only, not xenstore: it also runs where the toolstack's
    // xenstore is not reachable (e.g. a dom0 shell without xenstored access).
    try {
      if (capture_seconds) {
        capture_options.duration =
            std::chrono::milliseconds(static_cast<long long>(*capture_seconds * 1000.0));
      }
      catch_stop_signals();
      const std::string socket = control_socket.value_or(vifd::vifctl::default_control_socket(
          platform_name.empty() && std::getenv("VIF_SIM_DIR") != nullptr ? "sim" : platform_name));
      return vifd::vifctl::capture_command(socket, capture_options, std::cerr, stop_requested);
    } catch (const vifd::vifctl::ArgumentError& e) {
      std::cerr << "vifctl: " << e.what() << std::endl;
      return vifd::cli::kExitUsage;
    } catch (const std::exception& e) {
      std::cerr << "vifctl: " << e.what() << std::endl;
      return 1;
    }
  }

  try {
    const auto platform = vifd::platform::make_platform(platform_name);
    auto xs = vifd::xs::Client::open(platform->xenstore_socket());
    vifd::vifctl::Session session{.xs = xs,
                                  .self_domid = platform->self_domid(),
                                  .control_socket = control_socket.value_or(
                                      vifd::vifctl::default_control_socket(platform->name())),
                                  .out = std::cout,
                                  .err = std::cerr,
                                  .platform = platform.get(),
                                  .lock_dir = vifd::vifctl::default_lock_dir(platform->name())};
    if (attach->parsed()) {
      attach_options.wait = !no_wait;
      if (const char* dir = std::getenv(vifd::vifctl::kScriptDirEnv); dir != nullptr && *dir) {
        attach_options.script_dir = dir;
      }
      return vifd::vifctl::attach_command(session, attach_options);
    }
    if (detach->parsed()) {
      return vifd::vifctl::detach_command(session, vif, !detach_no_wait, detach_device);
    }
    if (list->parsed()) return vifd::vifctl::list_command(session, backend_domid, json);
    if (show->parsed()) return vifd::vifctl::show_command(session, vif, backend_domid, json);
    if (stats->parsed()) return vifd::vifctl::stats_command(session, stats_vif, json);
  } catch (const vifd::vifctl::ArgumentError& e) {
    // A value the command line got wrong (a bad MAC, an unknown domain
    // name): a usage error like CLI11's own.
    std::cerr << "vifctl: " << e.what() << std::endl;
    return vifd::cli::kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "vifctl: " << e.what() << std::endl;
    return 1;
  }
  return 1;
}
