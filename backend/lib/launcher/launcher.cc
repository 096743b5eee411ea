#include "backend/lib/launcher/launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "backend/lib/control/instance_lock.h"
#include "common/xenbus/domain_watches.h"
#include "common/xenbus/paths.h"

extern char** environ;

namespace vifd::launcher {

CommandTemplate::CommandTemplate(std::string_view text) : text_(text) {
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t end = std::min(text.find(' ', begin), text.size());
    if (end > begin) {
      words_.emplace_back(text.substr(begin, end - begin));
    }
    begin = end + 1;
  }
  if (words_.empty()) {
    throw std::invalid_argument("empty command");
  }
}

std::vector<std::string> CommandTemplate::expand(platform::DomId domid) const {
  static constexpr std::string_view kPlaceholder = "{domid}";
  const std::string value = std::to_string(domid);
  std::vector<std::string> argv;
  argv.reserve(words_.size());
  for (std::string word : words_) {
    for (std::size_t at = word.find(kPlaceholder); at != std::string::npos;
         at = word.find(kPlaceholder, at + value.size())) {
      word.replace(at, kPlaceholder.size(), value);
    }
    argv.push_back(std::move(word));
  }
  return argv;
}

std::set<platform::DomId> guests_needing_vifd(xs::Client& xs, platform::DomId backend) {
  const std::string root = xenbus::backend_vif_root(backend);
  std::set<platform::DomId> needed;
  const auto guests = xs.directory(root);
  if (!guests) {
    return needed;
  }
  for (const std::string& guest : *guests) {
    // Removed meanwhile: nothing to serve.
    const auto devices = xs.directory(xenbus::join(root, guest));
    if (!devices) {
      continue;
    }
    for (const std::string& device : *devices) {
      const auto id =
          xenbus::parse_backend_path(backend, xenbus::join(xenbus::join(root, guest), device));
      if (!id) {
        continue;
      }
      bool introduced = true;
      try {
        introduced = xs.is_domain_introduced(id->domid);
      } catch (const xs::XsError& e) {
        // A driver domain may not be allowed to ask; the toolstack removing
        // the backend directories then says when the guest is gone.
        if (e.errno_value() != EACCES && e.errno_value() != EPERM) {
          throw;
        }
      }
      if (introduced) {
        needed.insert(id->domid);
      }
      break;
    }
  }
  return needed;
}

Action decide(bool needed, const InstanceState& state) {
  if (state.in_flight || state.retry_wait) {
    return Action::kNone;
  }
  if (needed) {
    return state.running ? Action::kNone : Action::kStart;
  }
  return state.running ? Action::kStop : Action::kForget;
}

Launcher::Launcher(boost::asio::io_context& io, xs::Client& xs, spdlog::logger& log,
                   LauncherOptions options)
    : io_(io),
      xs_(xs),
      log_(log),
      options_(std::move(options)),
      watcher_(io, xs, log),
      child_signals_(io, SIGCHLD),
      retry_timer_(io) {}

void Launcher::start() {
  for (const platform::DomId domid :
       backend::InstanceLock::served_domains(options_.lock_dir, options_.backend)) {
    instances_[domid].state.running = true;
    log_.info("vifd for domain {} is running (lock in {})", domid, options_.lock_dir.string());
  }
  wait_for_children();
  const auto on_change = [this](const std::string& /*path*/) { reconcile_or_fail(); };
  // Coalesced: vifd's own writes under the backend directory fire this watch
  // too; one pass over the directory answers any number of them.
  watcher_.watch(xenbus::backend_vif_root(options_.backend), on_change,
                 xenbus::XenstoreWatcher::Delivery::kCoalesced);
  watcher_.watch(std::string(xenbus::kIntroduceDomainWatch), on_change,
                 xenbus::XenstoreWatcher::Delivery::kCoalesced);
  watcher_.watch(std::string(xenbus::kReleaseDomainWatch), on_change,
                 xenbus::XenstoreWatcher::Delivery::kCoalesced);
  log_.info("vifd-launcher for backend domain {}: start `{}`, stop `{}`", options_.backend,
            options_.start_command.text(), options_.stop_command.text());
}

void Launcher::reconcile_or_fail() {
  if (failed_) {
    return;
  }
  try {
    reconcile();
  } catch (const std::exception& e) {
    log_.error("xenstore: {}; exiting (the guests' vifds keep running)", e.what());
    failed_ = true;
    io_.stop();
  }
}

void Launcher::reconcile() {
  const auto needed = guests_needing_vifd(xs_, options_.backend);
  for (const platform::DomId domid : needed) {
    instances_.try_emplace(domid);
  }
  for (auto it = instances_.begin(); it != instances_.end();) {
    const platform::DomId domid = it->first;
    Instance& instance = it->second;
    switch (decide(needed.contains(domid), instance.state)) {
      case Action::kNone:
        break;
      case Action::kStart:
      case Action::kStop:
        if (commands_in_flight_ < options_.max_commands) {
          spawn(domid, instance, !instance.state.running);
        }
        break;
      case Action::kForget:
        it = instances_.erase(it);
        continue;
    }
    ++it;
  }
}

void Launcher::spawn(platform::DomId domid, Instance& instance, bool start) {
  const auto words = (start ? options_.start_command : options_.stop_command).expand(domid);
  std::vector<char*> argv;
  argv.reserve(words.size() + 1);
  for (const std::string& word : words) {
    argv.push_back(
        const_cast<char*>(word.c_str()));  // NOLINT(cppcoreguidelines-pro-type-const-cast)
  }
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // Nothing of the launcher's beyond stdout and stderr: a guest's vifd must
  // not hold the launcher's xenstore connection or its event loop's files.
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  const int error = posix_spawnp(&pid, argv[0], &actions, &attributes, argv.data(), environ);
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);

  const char* what = start ? "start" : "stop";
  if (error != 0) {
    log_.error("domain {}: cannot run the {} command `{}`: {}", domid, what, words[0],
               std::strerror(error));
    instance.state.retry_wait = true;
    arm_retry();
    return;
  }
  log_.info("domain {}: {} vifd (pid {})", domid, start ? "starting" : "stopping", pid);
  instance.pid = pid;
  instance.starting = start;
  instance.state.in_flight = true;
  ++commands_in_flight_;
  instance.deadline = std::make_unique<boost::asio::steady_timer>(io_, options_.command_timeout);
  instance.deadline->async_wait([this, pid, domid](const boost::system::error_code& ec) {
    if (ec) {
      return;
    }
    log_.error("domain {}: command (pid {}) still running after {} ms, killing it", domid, pid,
               options_.command_timeout.count());
    ::kill(pid, SIGKILL);
  });
}

void Launcher::wait_for_children() {
  child_signals_.async_wait([this](const boost::system::error_code& ec, int /*signal*/) {
    if (ec) {
      return;
    }
    reap();
    wait_for_children();
  });
}

void Launcher::reap() {
  // SIGCHLD coalesces: collect every child that has exited.
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      break;
    }
    for (auto& [domid, instance] : instances_) {
      if (instance.state.in_flight && instance.pid == pid) {
        finished(domid, instance, status);
        break;
      }
    }
  }
  reconcile_or_fail();
}

void Launcher::finished(platform::DomId domid, Instance& instance, int status) {
  instance.state.in_flight = false;
  instance.pid = -1;
  instance.deadline.reset();
  --commands_in_flight_;
  const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  const char* what = instance.starting ? "start" : "stop";
  if (ok) {
    instance.state.running = instance.starting;
    log_.info("domain {}: vifd {}", domid, instance.starting ? "started" : "stopped");
    return;
  }
  if (WIFEXITED(status)) {
    log_.error("domain {}: the {} command exited with status {}; retrying in {} ms", domid, what,
               WEXITSTATUS(status), options_.retry_after.count());
  } else {
    log_.error("domain {}: the {} command was killed by signal {}; retrying in {} ms", domid, what,
               WTERMSIG(status), options_.retry_after.count());
  }
  instance.state.retry_wait = true;
  arm_retry();
}

void Launcher::arm_retry() {
  if (retry_armed_) {
    return;
  }
  retry_armed_ = true;
  retry_timer_.expires_after(options_.retry_after);
  retry_timer_.async_wait([this](const boost::system::error_code& ec) {
    retry_armed_ = false;
    if (ec) {
      return;
    }
    for (auto& [domid, instance] : instances_) {
      instance.state.retry_wait = false;
    }
    reconcile_or_fail();
  });
}

}  // namespace vifd::launcher
