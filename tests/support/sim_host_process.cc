#include "tests/support/sim_host_process.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/platform/sim/sim_platform.h"

namespace vifd::testing {
namespace {

// Binaries are found through the build tree; the paths are baked in by CMake.
std::filesystem::path vif_sim_binary() {
  return VIFD_TEST_VIF_SIM_BINARY;
}

int wait_for(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      throw std::runtime_error("waitpid failed");
    }
  }
  return status;
}

pid_t spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& arg : args) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    // A test killed by ctest's timeout must not leave its simulated host
    // running (holding the fds it inherited). The signal follows the forking
    // thread: hosts are made by the test's own thread, which lives as long
    // as the test.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) {
      _exit(127);  // the test died before the prctl
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

}  // namespace

SimHostProcess::SimHostProcess() {
  char templ[] = "/tmp/vifsim-test-XXXXXX";
  if (mkdtemp(templ) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  // vif-sim creates the host directory itself and refuses an existing one
  // that holds a host; an empty directory is accepted.
  dir_ = templ;
  server_pid_ = spawn({vif_sim_binary().string(), "--dir", dir_.string()});
  const auto socket = dir_ / "xenstored.sock";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!std::filesystem::exists(socket)) {
    int status = 0;
    if (waitpid(server_pid_, &status, WNOHANG) == server_pid_) {
      server_pid_ = -1;
      throw std::runtime_error(fmt::format("vif-sim --dir {} exited at start", dir_.string()));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(fmt::format("vif-sim --dir {} never became ready", dir_.string()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

SimHostProcess::~SimHostProcess() {
  if (server_pid_ > 0) {
    kill(server_pid_, SIGTERM);
    wait_for(server_pid_);
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void SimHostProcess::run_vif_sim(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{vif_sim_binary().string(), "--dir", dir_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  const int status = wait_for(spawn(argv));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error(
        fmt::format("vif-sim {} failed (status {})", fmt::join(args, " "), status));
  }
}

void SimHostProcess::create_domain(platform::DomId domid, const std::string& name) {
  std::vector<std::string> args{"create", std::to_string(domid)};
  if (!name.empty()) {
    args.emplace_back("--name");
    args.push_back(name);
  }
  run_vif_sim(args);
}

void SimHostProcess::destroy_domain(platform::DomId domid) {
  run_vif_sim({"destroy", std::to_string(domid)});
}

std::unique_ptr<platform::Platform> SimHostProcess::platform(platform::DomId domid) const {
  return platform::make_sim_platform(dir_.string(), domid);
}

xs::Client SimHostProcess::xenstore(platform::DomId domid) const {
  return xs::Client::open(platform(domid)->xenstore_socket());
}

std::vector<std::string> SimHostProcess::environment(platform::DomId domid) const {
  return {"VIF_SIM_DIR=" + dir_.string(), "VIF_SIM_DOMID=" + std::to_string(domid),
          "XENSTORED_PATH=" + platform(domid)->xenstore_socket().value_or("")};
}

std::filesystem::path SimHostProcess::binary(const std::string& name) {
  const std::filesystem::path root(VIFD_TEST_BUILD_ROOT);
  for (const char* folder : {"backend", "frontend", "xenstore-tools"}) {
    auto candidate = root / folder / name;
    if (std::filesystem::exists(candidate)) {
      return candidate;
    }
  }
  throw std::runtime_error(
      fmt::format("no executable '{}' in the build tree {}", name, root.string()));
}

}  // namespace vifd::testing
