// vifd-launcher: one vifd per guest, as a deployment. It watches this
// (backend) domain's vif backend directories and the domains' arrival and
// release, and runs a start command when a guest needs a vifd (by default
// `systemctl --no-block start vifd@<domid>.service`) and a stop command when
// it no longer does.
//
// xl gives a backend no hook before it writes the vif backend directory, and
// waits for InitWait before it runs the hotplug script, so the hotplug script
// cannot start the backend; watching xenstore can. A guest needs a vifd while
// this domain holds at least one vif device directory for it and the guest is
// introduced: the toolstack removes the directories when the guest goes, and
// a released guest whose directories were left behind needs no vifd either.
//
// Domain ids come from xenstore path components and are accepted only in
// canonical decimal form; commands run without a shell, each domain's
// commands one at a time, at most a few at once, each with a time limit, so
// a stuck or failing command affects its own guest only. Guests' vifds are
// processes of their own: the launcher stopping or failing leaves them
// running, and a new launcher finds them again through their instance locks.
#pragma once

#include <spdlog/logger.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

// clang-format off
// GCC 12 at -O2 reports -Wnull-dereference inside Asio's scheduler after
// inlining (see backend/lib/control/asio.h); disabled for Asio's headers only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#pragma GCC diagnostic pop
// clang-format on

#include "common/platform/types.h"
#include "common/xenbus/xenstore_watcher.h"
#include "common/xenstore/client.h"

namespace vifd::launcher {

// A command line with "{domid}" placeholders, split on spaces; run without a
// shell, so nothing in it is interpreted.
class CommandTemplate {
 public:
  // Throws std::invalid_argument for an empty command.
  explicit CommandTemplate(std::string_view text);
  std::vector<std::string> expand(platform::DomId domid) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::vector<std::string> words_;
};

// The guests that need a vifd of `backend`: those with at least one vif
// device directory below /local/domain/<backend>/backend/vif that parses
// (canonical decimal domid and devid) and that are introduced. Directory
// names that do not parse are skipped.
std::set<platform::DomId> guests_needing_vifd(xs::Client& xs, platform::DomId backend);

// What to do for one guest, from what it needs and what the launcher knows
// of its vifd. Pure, so every combination is tested.
enum class Action { kNone, kStart, kStop, kForget };
struct InstanceState {
  bool running = false;     // the last start succeeded and no stop did since
  bool in_flight = false;   // a command for the guest has not finished
  bool retry_wait = false;  // its last command failed; retried by the timer
};
Action decide(bool needed, const InstanceState& state);

struct LauncherOptions {
  platform::DomId backend = 0;
  CommandTemplate start_command{"systemctl --no-block start vifd@{domid}.service"};
  CommandTemplate stop_command{"systemctl --no-block stop vifd@{domid}.service"};
  // vifd's instance locks: guests whose vifd runs when the launcher starts.
  std::filesystem::path lock_dir;
  std::size_t max_commands = 8;
  std::chrono::milliseconds command_timeout{30000};
  std::chrono::milliseconds retry_after{5000};
};

class Launcher {
 public:
  Launcher(boost::asio::io_context& io, xs::Client& xs, spdlog::logger& log,
           LauncherOptions options);
  // Commands still running finish on their own: they are not the launcher's
  // to kill (a systemctl call cut short is worse than one completed).
  ~Launcher() = default;
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;

  // Picks up running vifds from their locks, watches xenstore, and starts
  // and stops vifds from then on.
  void start();
  // True once xenstore failed: the io_context was stopped and the launcher
  // should exit with a failure (its supervisor restarts it).
  bool failed() const { return failed_; }

 private:
  struct Instance {
    InstanceState state;
    pid_t pid = -1;
    bool starting = false;
    std::unique_ptr<boost::asio::steady_timer> deadline;
  };

  void reconcile();
  void reconcile_or_fail();
  void spawn(platform::DomId domid, Instance& instance, bool start);
  void wait_for_children();
  void reap();
  void finished(platform::DomId domid, Instance& instance, int status);
  void arm_retry();

  boost::asio::io_context& io_;
  xs::Client& xs_;
  spdlog::logger& log_;
  LauncherOptions options_;
  xenbus::XenstoreWatcher watcher_;
  boost::asio::signal_set child_signals_;
  boost::asio::steady_timer retry_timer_;
  bool retry_armed_ = false;
  std::map<platform::DomId, Instance> instances_;
  std::size_t commands_in_flight_ = 0;
  bool failed_ = false;
};

}  // namespace vifd::launcher
