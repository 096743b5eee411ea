// Test doubles around a real vifd control plane on a vif-sim host: the
// test plays the toolstack (writes the device nodes exactly as libxl does
// for `xl network-attach`) and a minimal frontend (shares rings from its
// domain, allocates unbound ports, publishes the connect keys), while the
// daemon runs in-process on its own io_context thread.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "backend/lib/control/asio.h"
#include "backend/lib/control/vif_backend_daemon.h"
#include "common/platform/platform.h"
#include "common/xenbus/keys.h"
#include "common/xenbus/paths.h"
#include "common/xenstore/client.h"
#include "tests/support/eventually.h"
#include "tests/support/sim_host_process.h"

namespace vifd::backend::testing {

namespace key = xenbus::key;

// The directories of vif <domid>/<devid> served by dom0.
std::string backend_path(platform::DomId domid, std::uint32_t devid);
std::string frontend_path(platform::DomId domid, std::uint32_t devid);

// Keys relative to a device directory and their values; built from key::k*
// names, which std::string does not take implicitly.
using KeyValues = std::map<std::string, std::string>;
KeyValues key_values(std::initializer_list<std::pair<std::string_view, std::string_view>> entries);

struct AttachOptions {
  std::string mac = "00:16:3e:00:00:01";
  std::optional<std::string> bridge;
  std::optional<std::string> script;
  std::optional<std::string> rate;
  std::optional<std::string> mtu;
  // Extra or overriding backend keys (hostile-toolstack tests).
  std::map<std::string, std::string> backend_overrides;
};

// libxl's device add and remove, done by dom0.
class Toolstack {
 public:
  explicit Toolstack(const vifd::testing::SimHostProcess& host);
  void attach(platform::DomId domid, std::uint32_t devid, const AttachOptions& options = {});
  // libxl_device_nic_remove: online=0, state=5, wait for 6, then remove.
  void request_detach(platform::DomId domid, std::uint32_t devid);
  void remove(platform::DomId domid, std::uint32_t devid);
  xs::Client& xenstore() { return xenstore_; }

 private:
  xs::Client xenstore_;
};

struct FrontendOptions {
  unsigned queues = 1;
  bool write_num_queues = true;  // write multi-queue-num-queues even for 1
  bool split_event_channels = true;
  bool sg = true;
  bool gso = true;
  bool csum = true;
  // Keys written last (relative to the frontend directory), overriding the
  // honest values: "" as value removes the key.
  std::map<std::string, std::string> overrides;
};

// A minimal netfront: rings and ports of its own domain, published keys.
class TestFrontend {
 public:
  TestFrontend(const vifd::testing::SimHostProcess& host, platform::DomId domid,
               std::uint32_t devid);
  ~TestFrontend();
  // Shares fresh rings, binds unbound ports, writes the keys and state 4.
  void connect(const FrontendOptions& options = {});
  // Writes a state only (Closing, Closed, Initialising...).
  void set_state(int state);
  // Ends the grants and closes the ports of the last connect().
  void release();
  xs::Client& xenstore() { return xenstore_; }
  std::optional<std::string> read(std::string_view key);
  // Shared TX ring page of queue 0 (to check indices).
  std::byte* tx_ring(unsigned queue) const;

 private:
  platform::DomId domid_;
  std::uint32_t devid_;
  std::unique_ptr<platform::Platform> platform_;
  std::unique_ptr<platform::GrantShare> share_;
  std::unique_ptr<platform::EventChannels> events_;
  xs::Client xenstore_;
  std::vector<void*> pages_;  // per queue: tx, rx pages (2 contiguous)
  std::vector<platform::EvtchnPort> ports_;
};

// vifd's control plane on its own thread.
class DaemonThread {
 public:
  // `platform`: dom0's of `host` when null (a test's wrapper around it
  // otherwise).
  DaemonThread(const vifd::testing::SimHostProcess& host, DaemonOptions options,
               std::unique_ptr<platform::Platform> platform = nullptr);
  // Stops like SIGTERM does (close_vifs as --close-on-exit) and joins.
  ~DaemonThread();
  void stop(bool close_vifs = false);
  // Runs `fn` on the daemon's thread and returns its result.
  template <typename F>
  auto call(F fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return result.get();
  }
  VifBackendDaemon& daemon() { return *daemon_; }

 private:
  std::unique_ptr<platform::Platform> platform_;
  xs::Client xenstore_;
  boost::asio::io_context io_;
  std::unique_ptr<VifBackendDaemon> daemon_;
  std::thread thread_;
  bool stopped_ = false;
};

// Each test process moves into a private network namespace (TAPs need root;
// CI runs as root) and starts its own vif-sim host with domains 1..3.
class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override;
  vifd::testing::SimHostProcess& host() { return *host_; }
  // The backend `state` key as the toolstack reads it ("" when absent).
  std::string backend_key(platform::DomId domid, std::uint32_t devid, std::string_view key);
  bool backend_state_becomes(platform::DomId domid, std::uint32_t devid, const std::string& state);
  DaemonOptions options(unsigned max_queues = 4) const;

  std::unique_ptr<vifd::testing::SimHostProcess> host_;
  std::unique_ptr<Toolstack> toolstack_;
};

using vifd::testing::eventually;

// Wall time since `start`, in milliseconds (latencies the tests print).
inline double milliseconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// Sanitizer builds run several times slower and unevenly: there the
// latencies are printed and only the outcomes enforced (answered, counted,
// connected); the normal build's run enforces the bounds, as tests/hostile.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kEnforceLatencies = false;
#else
inline constexpr bool kEnforceLatencies = true;
#endif

// One request line to a control socket, one response line back, each way
// within `timeout`; null when the socket does not connect, answer or parse.
nlohmann::json ask_control_socket(const std::string& socket_path, const std::string& request,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Number of open fds of this process.
std::size_t open_fd_count();
// Resident set size of this process in KiB.
std::size_t resident_kib();

}  // namespace vifd::backend::testing
