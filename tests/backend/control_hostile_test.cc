// Hostile guests and mistakes against vifd's control plane: a guest flooding
// xenstore watch events, a second vifd started by mistake, clients holding
// the control socket. Each test checks that the neighbours and the operator
// keep being served, and prints what it measured.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backend/lib/control/control_socket.h"
#include "backend/lib/control/instance_lock.h"
#include "tests/backend/control_harness.h"

namespace vifd::backend::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// CPU time (user + system, in clock ticks) of the vif-sim server this test
// process started: its xenstored must not be what limits the test.
long long vif_sim_cpu_ticks() {
  const std::string parent = std::to_string(::getpid());
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) {
      continue;
    }
    const auto name_end = line.rfind(')');
    if (name_end == std::string::npos || line.find("(vif-sim)") == std::string::npos) {
      continue;
    }
    std::istringstream fields(line.substr(name_end + 2));
    std::string field;
    std::string ppid;
    long long utime = 0;
    long long stime = 0;
    for (int index = 3; fields >> field; ++index) {
      if (index == 4) {
        ppid = field;
      }
      if (index == 14) {
        utime = std::stoll(field);
      }
      if (index == 15) {
        stime = std::stoll(field);
        break;
      }
    }
    if (ppid == parent) {
      return utime + stime;
    }
  }
  return -1;
}

// XSA-349 class: domain 1 rewrites its frontend `state` in a tight loop.
// Its events are coalesced, so a neighbour attaching meanwhile reaches
// InitWait and Connected promptly, the control socket keeps answering
// within 100 ms and memory stays bounded.
TEST_F(ControlPlaneTest, FrontendStateFloodCostsOnlyTheFlooder) {
  DaemonOptions flood_options = options(1);
  flood_options.control_socket = (host().dir() / "vifd.sock").string();
  DaemonThread vifd(host(), flood_options);
  toolstack_->attach(1, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  TestFrontend flooder(host(), 1, 0);
  flooder.connect();
  ASSERT_TRUE(backend_state_becomes(1, 0, "4"));
  ASSERT_EQ(ask_control_socket(flood_options.control_socket, R"({"command":"stats"})")["ok"], true);

  const std::size_t rss_before = resident_kib();
  constexpr std::uint64_t kMinWrites = 40000;
  std::atomic<std::uint64_t> writes{0};
  std::atomic<bool> neighbour_done{false};
  std::atomic<bool> stop_probing{false};
  const auto flood_start = Clock::now();
  const long long sim_ticks_before = vif_sim_cpu_ticks();
  std::thread flood([&] {
    xs::Client guest = host().xenstore(1);
    const std::string state = xenbus::join(frontend_path(1, 0), key::kState);
    // Bounded in time too, so that a broken daemon fails the test instead
    // of hanging it.
    while ((writes < kMinWrites || !neighbour_done) && milliseconds_since(flood_start) < 60000) {
      guest.write(state, "4");
      ++writes;
    }
  });
  double worst_latency_ms = 0;
  std::size_t probes = 0;
  std::size_t unanswered = 0;
  std::size_t rss_peak = rss_before;
  std::thread prober([&] {
    while (!stop_probing) {
      const auto start = Clock::now();
      const auto answer =
          ask_control_socket(flood_options.control_socket, R"({"command":"stats"})", 5s);
      worst_latency_ms = std::max(worst_latency_ms, milliseconds_since(start));
      ++probes;
      if (!answer.is_object() || answer["ok"] != true) {
        ++unanswered;
      }
      rss_peak = std::max(rss_peak, resident_kib());
      std::this_thread::sleep_for(5ms);
    }
  });

  ASSERT_TRUE(eventually([&] { return writes >= 2000; }));
  const auto attach_start = Clock::now();
  AttachOptions second;
  second.mac = "00:16:3e:00:00:02";
  toolstack_->attach(2, 0, second);
  const bool init_wait = backend_state_becomes(2, 0, "2");
  const double init_wait_ms = milliseconds_since(attach_start);
  TestFrontend neighbour(host(), 2, 0);
  const auto connect_start = Clock::now();
  neighbour.connect();
  const bool connected = backend_state_becomes(2, 0, "4");
  const double connected_ms = milliseconds_since(connect_start);
  const std::uint64_t writes_at_neighbour = writes;
  neighbour_done = true;
  flood.join();
  const double flood_ms = milliseconds_since(flood_start);
  const long long sim_ticks = vif_sim_cpu_ticks() - sim_ticks_before;
  stop_probing = true;
  prober.join();

  const auto stats = ask_control_socket(flood_options.control_socket, R"({"command":"stats"})");
  const bool have_stats = stats.is_object() && stats.contains("vifs") && stats["vifs"].size() == 2;
  const auto counter = [&](const char* name) {
    return have_stats ? stats["vifs"][0].value(name, std::uint64_t{0}) : 0;
  };
  const auto coalesced = counter("watch_events_coalesced");
  const auto handled = counter("watch_events_handled");
  const double sim_cpu_share = sim_ticks < 0 ? -1.0
                                             : 100.0 * static_cast<double>(sim_ticks) /
                                                   static_cast<double>(::sysconf(_SC_CLK_TCK)) /
                                                   (flood_ms / 1000.0);
  std::printf(
      "watch flood: %llu writes in %.0f ms (%llu before the neighbour was Connected); "
      "neighbour InitWait after %.1f ms, Connected %.1f ms after its frontend; control socket "
      "worst %.1f ms over %zu requests (%zu unanswered); RSS %zu -> peak %zu KiB; flooder's "
      "events handled %llu, coalesced %llu; vif-sim CPU %.0f%% of one core\n",
      static_cast<unsigned long long>(writes.load()), flood_ms,
      static_cast<unsigned long long>(writes_at_neighbour), init_wait_ms, connected_ms,
      worst_latency_ms, probes, unanswered, rss_before, rss_peak,
      static_cast<unsigned long long>(handled), static_cast<unsigned long long>(coalesced),
      sim_cpu_share);
  // Both vifs are still served: the flooder's state (Connected, written
  // over and over) is what it asked for.
  ASSERT_TRUE(have_stats) << stats.dump();
  EXPECT_EQ(stats["vifs"][0]["state"], "Connected");
  EXPECT_EQ(stats["vifs"][1]["state"], "Connected");
  EXPECT_TRUE(init_wait);
  EXPECT_TRUE(connected);
  if (kEnforceLatencies) {
    EXPECT_LT(init_wait_ms, 1000.0);
    EXPECT_LT(connected_ms, 1000.0);
    EXPECT_LT(worst_latency_ms, 100.0);
  }
  EXPECT_EQ(unanswered, 0U);
  EXPECT_GE(writes.load(), kMinWrites);
  EXPECT_GT(coalesced, 0U);
  // Paced: the flooded `state` watch ran a callback at most every 2 ms;
  // the backend watch adds a few for the neighbour's and our own writes.
  const double paced_bound =
      flood_ms / static_cast<double>(xenbus::XenbusDevice::kWatchMinInterval.count()) + 50;
  EXPECT_LE(static_cast<double>(handled), paced_bound) << "callbacks run for the flooder's vif";
  // The daemon keeps no per-event state: tens of thousands of events cost
  // no more memory than a handful.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  constexpr std::size_t kRssSlackKib = std::size_t{256} * 1024;
#else
  constexpr std::size_t kRssSlackKib = std::size_t{16} * 1024;
#endif
  EXPECT_LT(rss_peak, rss_before + kRssSlackKib);
}

// A unix socket bound at `path`; listening when `listen` is set. The fd, to
// close when done (a bound socket closed without listening leaves a stale
// file, as a crashed vifd does).
int bind_unix_socket(const std::string& path, bool listen) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  path.copy(address.sun_path, sizeof address.sun_path - 1);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0) << path;
  if (listen) {
    EXPECT_EQ(::listen(fd, 4), 0);
  }
  return fd;
}

DaemonOptions single_instance_options(const std::string& dir) {
  DaemonOptions options;
  options.max_queues = 1;
  options.control_socket = dir + "/vifd.sock";
  options.lock_dir = dir;
  return options;
}

// A second vifd started by mistake (same host, same backend domain) refuses
// to start, names the running one, and writes nothing: the first one's vif
// stays Connected and its control socket keeps answering.
TEST_F(ControlPlaneTest, SecondDaemonRefusesAndTheFirstKeepsServing) {
  const std::string dir = host().dir().string();
  const DaemonOptions first_options = single_instance_options(dir);
  DaemonThread first(host(), first_options);
  toolstack_->attach(1, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  TestFrontend frontend(host(), 1, 0);
  frontend.connect();
  ASSERT_TRUE(backend_state_becomes(1, 0, "4"));

  {
    boost::asio::io_context io;
    const auto platform = host().platform(0);
    xs::Client xenstore = host().xenstore(0);
    VifBackendDaemon second(io, *platform, xenstore, first_options);
    try {
      second.start();
      ADD_FAILURE() << "the second daemon started";
    } catch (const InstanceLockError& e) {
      const std::string message = e.what();
      std::printf("second vifd: %s\n", message.c_str());
      EXPECT_NE(message.find(fmt::format("pid {}", ::getpid())), std::string::npos) << message;
      EXPECT_NE(message.find("backend domain 0"), std::string::npos) << message;
    }
    io.poll();
    EXPECT_TRUE(second.describe(std::nullopt).empty());
  }
  // Nothing changed for the first daemon's vif, and its socket still answers.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(backend_key(1, 0, key::kState), "4");
  EXPECT_EQ(backend_key(1, 0, key::kError), "");
  const auto stats = ask_control_socket(first_options.control_socket, R"({"command":"stats"})");
  ASSERT_TRUE(stats.is_object());
  ASSERT_EQ(stats["vifs"].size(), 1U);
  EXPECT_EQ(stats["vifs"][0]["state"], "Connected");
}

// The same with the vifd binary, as an operator would start it: it exits
// non-zero with an error naming the running instance.
TEST_F(ControlPlaneTest, SecondVifdProcessExitsNamingTheRunningOne) {
  const std::string dir = host().dir().string();
  DaemonThread first(host(), single_instance_options(dir));
  toolstack_->attach(1, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  TestFrontend frontend(host(), 1, 0);
  frontend.connect();
  ASSERT_TRUE(backend_state_becomes(1, 0, "4"));

  int output[2];
  ASSERT_EQ(::pipe2(output, O_CLOEXEC), 0);
  const auto env = host().environment(0);
  std::string binary = vifd::testing::SimHostProcess::binary("vifd").string();
  std::string platform_flag = "--platform=sim";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(output[1], STDOUT_FILENO);
    ::dup2(output[1], STDERR_FILENO);
    for (const auto& entry : env) {
      ::putenv(const_cast<char*>(entry.c_str()));
    }
    char* argv[] = {binary.data(), platform_flag.data(), nullptr};
    ::execv(argv[0], argv);
    ::_exit(127);
  }
  ::close(output[1]);
  int status = 0;
  const bool exited = eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, 10s);
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  std::string text;
  char chunk[512];
  for (ssize_t n; (n = ::read(output[0], chunk, sizeof chunk)) > 0;) {
    text.append(chunk, n);
  }
  ::close(output[0]);
  std::printf("second vifd process: %s", text.c_str());
  ASSERT_TRUE(exited) << "the second vifd kept running";
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_NE(text.find(fmt::format("another vifd (pid {})", ::getpid())), std::string::npos) << text;
  EXPECT_EQ(backend_key(1, 0, key::kState), "4");
  const auto stats = ask_control_socket(dir + "/vifd.sock", R"({"command":"stats"})");
  ASSERT_TRUE(stats.is_object());
  EXPECT_EQ(stats["vifs"][0]["state"], "Connected");
}

// Per-domain vifds coexist; none coexists with a vifd serving every domain,
// and a released lock is free again.
// vifd and vifd-launcher both take this default, so that the launcher
// finds the per-guest vifds it started.
TEST(InstanceLockTest, DefaultDirIsRunVifdOrTheSimulatorsDirectory) {
  const char* saved = std::getenv("VIF_SIM_DIR");
  const std::string saved_value = saved != nullptr ? saved : "";
  ::setenv("VIF_SIM_DIR", "/tmp/some-sim", 1);
  EXPECT_EQ(InstanceLock::default_dir("sim"), "/tmp/some-sim");
  EXPECT_EQ(InstanceLock::default_dir("xen"), "/run/vifd");
  ::unsetenv("VIF_SIM_DIR");
  EXPECT_EQ(InstanceLock::default_dir("sim"), "/run/vifd");
  if (saved != nullptr) {
    ::setenv("VIF_SIM_DIR", saved_value.c_str(), 1);
  }
}

TEST(InstanceLockTest, PerDomainLocksCoexistButNotWithServeAll) {
  const auto dir =
      std::filesystem::temp_directory_path() / fmt::format("vifd-lock-test-{}", ::getpid());
  std::filesystem::remove_all(dir);
  {
    auto domain_one = std::make_unique<InstanceLock>(dir, 0, std::set<platform::DomId>{1});
    InstanceLock domain_two(dir, 0, {2});
    EXPECT_THROW(InstanceLock(dir, 0, {1}), InstanceLockError);
    try {
      InstanceLock all(dir, 0, {});
      ADD_FAILURE() << "serve-all lock taken beside per-domain ones";
    } catch (const InstanceLockError& e) {
      EXPECT_NE(std::string(e.what()).find("for domain 1"), std::string::npos) << e.what();
    }
    domain_one.reset();
    InstanceLock again(dir, 0, {1});
    // Another backend domain (a driver domain) is independent.
    InstanceLock other_backend(dir, 5, {});
  }
  {
    InstanceLock all(dir, 0, {});
    EXPECT_THROW(InstanceLock(dir, 0, {3}), InstanceLockError);
    EXPECT_THROW(InstanceLock(dir, 0, {}), InstanceLockError);
  }
  std::filesystem::remove_all(dir);
}

// A socket file nobody listens on (a vifd that crashed) is replaced; one that
// answers is left to its owner and the new daemon refuses to start.
TEST_F(ControlPlaneTest, StaleControlSocketIsReplacedALiveOneIsNot) {
  const std::string stale_path = (host().dir() / "stale.sock").string();
  ::close(bind_unix_socket(stale_path, false));
  ASSERT_TRUE(std::filesystem::is_socket(stale_path));
  {
    DaemonOptions stale = options(1);
    stale.control_socket = stale_path;
    DaemonThread vifd(host(), stale);
    EXPECT_TRUE(eventually([&] {
      return ask_control_socket(stale_path, R"({"command":"stats"})", 1s)["ok"] == true;
    }));
  }

  const std::string live_path = (host().dir() / "live.sock").string();
  const int listener = bind_unix_socket(live_path, true);
  boost::asio::io_context io;
  EXPECT_THROW(ControlSocket(io, live_path, [](const std::string&) { return nlohmann::json{}; }),
               std::system_error);
  EXPECT_TRUE(std::filesystem::is_socket(live_path));
  // Still the listener's: a client reaches it.
  const int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  live_path.copy(address.sun_path, sizeof address.sun_path - 1);
  EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ::close(client);
  ::close(listener);
}

// Clients that connect and say nothing, send half a line, or never read
// their reply do not lock the operator out: a new client is answered within
// 100 ms, and the daemon's fds stay bounded.
TEST_F(ControlPlaneTest, ControlSocketIsNotHeldByIdleOrSlowClients) {
  DaemonOptions with_socket = options(1);
  with_socket.control_socket = (host().dir() / "vifd.sock").string();
  DaemonThread vifd(host(), with_socket);
  ASSERT_TRUE(eventually([&] {
    return ask_control_socket(with_socket.control_socket, R"({"command":"stats"})", 1s)["ok"] ==
           true;
  }));
  const std::size_t fds_before = open_fd_count();
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  with_socket.control_socket.copy(address.sun_path, sizeof address.sun_path - 1);
  std::vector<int> hostile;
  constexpr int kHostileClients = 200;
  for (int i = 0; i < kHostileClients; ++i) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd);
      continue;  // backlog full: the daemon is still accepting the others
    }
    if (i % 3 == 1) {
      const std::string half = R"({"command":"sta)";
      EXPECT_GT(::send(fd, half.data(), half.size(), MSG_NOSIGNAL), 0);
    } else if (i % 3 == 2) {
      // Many requests, replies never read.
      std::string requests;
      for (int r = 0; r < 200; ++r) {
        requests += R"({"command":"stats"})"
                    "\n";
      }
      EXPECT_GT(::send(fd, requests.data(), requests.size(), MSG_NOSIGNAL), 0);
    }
    hostile.push_back(fd);
  }
  double worst_ms = 0;
  for (int probe = 0; probe < 20; ++probe) {
    const auto start = Clock::now();
    const auto answer =
        ask_control_socket(with_socket.control_socket, R"({"command":"stats"})", 2s);
    worst_ms = std::max(worst_ms, milliseconds_since(start));
    EXPECT_EQ(answer["ok"], true) << "probe " << probe;
  }
  const std::size_t daemon_fds = open_fd_count() - hostile.size();
  std::printf("control socket with %zu hostile clients: worst answer %.1f ms, fds %zu -> %zu\n",
              hostile.size(), worst_ms, fds_before, daemon_fds);
  if (kEnforceLatencies) {
    EXPECT_LT(worst_ms, 100.0);
  }
  EXPECT_LE(daemon_fds, fds_before + ControlSocket::kMaxConnections + 2);
  for (const int fd : hostile) {
    ::close(fd);
  }
}

}  // namespace
}  // namespace vifd::backend::testing
