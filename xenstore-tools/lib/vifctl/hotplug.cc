#include "xenstore-tools/lib/vifctl/hotplug.h"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/xenbus/keys.h"
#include "common/xenbus/paths.h"

extern char** environ;

namespace vifd::vifctl {
namespace {

using Clock = std::chrono::steady_clock;

std::optional<protocol::XenbusState> read_state(xs::Client& xs, const std::string& path) {
  const auto text = xs.read(path);
  if (!text) return std::nullopt;
  const auto state = protocol::parse_xenbus_state(path, *text);
  if (!state) return std::nullopt;
  return state.value();
}

// Unregisters the watch on every exit path, so a long-lived client (tests)
// does not accumulate watches.
class ScopedWatch {
 public:
  ScopedWatch(xs::Client& xs, std::string path, std::string token)
      : xs_(xs), path_(std::move(path)), token_(std::move(token)) {
    xs_.watch(path_, token_);
  }
  ~ScopedWatch() {
    try {
      xs_.unwatch(path_, token_);
      while (xs_.check_watch()) {
      }
    } catch (const xs::XsError&) {
      // The connection is going away with the client; nothing to undo.
    }
  }
  ScopedWatch(const ScopedWatch&) = delete;
  ScopedWatch& operator=(const ScopedWatch&) = delete;

 private:
  xs::Client& xs_;
  std::string path_;
  std::string token_;
};

}  // namespace

std::optional<protocol::XenbusState> wait_for_state(xs::Client& xs, const std::string& state_path,
                                                    protocol::XenbusState wanted,
                                                    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  ScopedWatch watch(xs, state_path, "vifctl-wait");
  auto state = read_state(xs, state_path);
  while (state != wanted) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd pfd{.fd = xs.fileno(), .events = POLLIN, .revents = 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(left));
    if (ready < 0 && errno != EINTR) {
      throw std::runtime_error(fmt::format("poll on the xenstore watch of {} failed: {}",
                                           state_path, std::strerror(errno)));
    }
    while (xs.check_watch()) {
    }
    state = read_state(xs, state_path);
  }
  return state;
}

bool BackendAnswer::ready() const {
  return !refused() &&
         (state == protocol::XenbusState::kInitWait || state == protocol::XenbusState::kConnected);
}

bool BackendAnswer::refused() const {
  return directory_gone || error.has_value() || state == protocol::XenbusState::kClosing ||
         state == protocol::XenbusState::kClosed;
}

BackendAnswer wait_for_backend_ready(xs::Client& xs, const std::string& backend_path,
                                     std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  ScopedWatch watch(xs, backend_path, "vifctl-attach");
  const auto read_answer = [&] {
    BackendAnswer answer;
    xs.transact([&](xs::TxId tx) {
      answer = BackendAnswer{};
      const auto state = xs.read(xenbus::join(backend_path, xenbus::key::kState), tx);
      answer.error = xs.read(xenbus::join(backend_path, xenbus::key::kError), tx);
      answer.directory_gone = !state && !xs.directory(backend_path, tx);
      if (state) {
        const auto parsed = protocol::parse_xenbus_state(xenbus::key::kState, *state);
        if (parsed) {
          answer.state = parsed.value();
        }
      }
    });
    return answer;
  };
  // A backend writes `error` first and then closes (xenbus_dev_fatal): the
  // state that follows the error is worth its few milliseconds.
  constexpr auto kStateAfterError = std::chrono::milliseconds(500);
  std::optional<Clock::time_point> error_deadline;
  const auto settled = [](const BackendAnswer& a) {
    return a.directory_gone || a.state == protocol::XenbusState::kClosing ||
           a.state == protocol::XenbusState::kClosed;
  };
  auto answer = read_answer();
  while (!answer.ready() && !(answer.refused() && settled(answer))) {
    if (answer.refused() && !error_deadline) {
      error_deadline = Clock::now() + kStateAfterError;
    }
    const auto until = error_deadline ? std::min(deadline, *error_deadline) : deadline;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) {
      break;
    }
    pollfd pfd{.fd = xs.fileno(), .events = POLLIN, .revents = 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(left));
    if (ready < 0 && errno != EINTR) {
      throw std::runtime_error(fmt::format("poll on the xenstore watch of {} failed: {}",
                                           backend_path, std::strerror(errno)));
    }
    while (xs.check_watch()) {
    }
    answer = read_answer();
  }
  return answer;
}

std::string ScriptResult::describe() const {
  if (timed_out) return fmt::format("timed out after {} s and was killed", kHotplugTimeout.count());
  if (signal != 0) return fmt::format("was killed by signal {} ({})", signal, ::strsignal(signal));
  return fmt::format("exited with status {}", exit_status);
}

ScriptResult run_hotplug_script(const std::string& script, const std::string& action, VifId id) {
  std::vector<std::string> env_strings{
      "script=" + script,
      "XENBUS_TYPE=vif",
      fmt::format("XENBUS_PATH=backend/vif/{}/{}", id.domid, id.devid),
      "XENBUS_BASE_PATH=backend",
      "vif=" + xenbus::tap_name(id),
  };
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const auto name = entry.substr(0, entry.find('=') + 1);
    bool overridden = false;
    for (const auto& s : env_strings) overridden = overridden || s.starts_with(name);
    if (!overridden) envp.push_back(*e);
  }
  envp.push_back(nullptr);

  std::string arg0 = script;
  std::string arg1 = action;
  std::string arg2 = "type_if=vif";
  char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, script.c_str(), nullptr, nullptr, argv, envp.data());
  if (rc != 0) {
    throw std::runtime_error(
        fmt::format("cannot run hotplug script {}: {}", script, std::strerror(rc)));
  }

  ScriptResult result;
  const auto deadline = Clock::now() + kHotplugTimeout;
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) {
      throw std::runtime_error(fmt::format("waitpid for hotplug script {} (pid {}) failed: {}",
                                           script, pid, std::strerror(errno)));
    }
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      result.timed_out = true;
      return result;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (WIFEXITED(status)) result.exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

}  // namespace vifd::vifctl
