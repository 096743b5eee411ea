// The host-port worker (backend/lib/control/host_port_worker.h): the steps
// that take the kernel's rtnl lock run on it, so a host holding that lock
// for long stalls only the vifs that need it, never the control plane.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "backend/lib/control/host_port_worker.h"
#include "common/net/link.h"
#include "tests/backend/control_harness.h"

namespace vifd::backend::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Emulates the kernel's rtnl lock held by someone else: a job that blocks
// the daemon's host-port worker until the returned promise is set.
std::promise<void> hold_host_port_worker(DaemonThread& vifd) {
  std::promise<void> released;
  std::promise<void> taken;
  vifd.daemon().host_ports().submit([&taken, until = released.get_future().share()] {
    taken.set_value();
    until.wait();
  });
  taken.get_future().wait();
  return released;
}

// The kernel's rtnl lock held by someone else for a second, emulated by a
// job that blocks the worker: while it lasts, the control socket answers, a
// connected guest's disconnect completes and another guest's connect waits;
// once it ends, that connect completes.
TEST_F(ControlPlaneTest, AHostHoldingTheRtnlLockStallsOnlyTheVifsThatNeedIt) {
  DaemonOptions daemon_options = options(1);
  daemon_options.control_socket = (host().dir() / "vifd.sock").string();
  DaemonThread vifd(host(), daemon_options);
  AttachOptions second;
  second.mac = "00:16:3e:00:00:02";
  toolstack_->attach(1, 0);
  toolstack_->attach(2, 0, second);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  ASSERT_TRUE(backend_state_becomes(2, 0, "2"));
  TestFrontend churner(host(), 1, 0);
  churner.connect();
  ASSERT_TRUE(backend_state_becomes(1, 0, "4"));

  std::promise<void> rtnl_released = hold_host_port_worker(vifd);
  const auto blocked_at = Clock::now();

  // The neighbour connects: its host port needs the worker.
  TestFrontend neighbour(host(), 2, 0);
  neighbour.connect();
  // The connected guest goes away: its carrier-off is queued, its
  // disconnect does not wait for it.
  churner.set_state(5);
  const bool churner_closing = backend_state_becomes(1, 0, "5");
  const double closing_ms = milliseconds_since(blocked_at);
  churner.set_state(6);
  const bool churner_closed = backend_state_becomes(1, 0, "6");

  double worst_ms = 0;
  int answered = 0;
  while (Clock::now() - blocked_at < 1s) {
    const auto begin = Clock::now();
    const auto answer =
        ask_control_socket(daemon_options.control_socket, R"({"command":"stats"})", 5s);
    worst_ms = std::max(worst_ms, milliseconds_since(begin));
    if (answer.is_object() && answer["ok"] == true) {
      ++answered;
    }
    std::this_thread::sleep_for(20ms);
  }
  const std::string neighbour_state_while_blocked = backend_key(2, 0, key::kState);
  rtnl_released.set_value();
  const auto released_at = Clock::now();
  const bool neighbour_connected = backend_state_becomes(2, 0, "4");
  const double connect_after_release_ms = milliseconds_since(released_at);
  const auto stats = ask_control_socket(daemon_options.control_socket, R"({"command":"stats"})");

  std::printf(
      "rtnl held 1 s: control socket worst %.1f ms (%d answers); the churner's Closing after "
      "%.1f ms; the neighbour %s while held, Connected %.1f ms after the release; worker %s\n",
      worst_ms, answered, closing_ms, neighbour_state_while_blocked.c_str(),
      connect_after_release_ms, stats.value("host_port_worker", nlohmann::json()).dump().c_str());
  EXPECT_TRUE(churner_closing);
  EXPECT_TRUE(churner_closed);
  EXPECT_EQ(neighbour_state_while_blocked, "2") << "its connect waits for the host port";
  EXPECT_TRUE(neighbour_connected);
  EXPECT_GE(answered, 20);
  if (kEnforceLatencies) {
    EXPECT_LT(worst_ms, 100.0);
    EXPECT_LT(closing_ms, 500.0);
  }
  ASSERT_TRUE(stats.contains("host_port_worker")) << stats.dump();
  EXPECT_GE(stats["host_port_worker"]["longest_job_ms"].get<double>(), 1000.0);
  EXPECT_EQ(stats["host_port_worker"]["jobs_failed"], 0);
}

// A vif removed while its TAP is still being created (the worker blocked):
// the TAP is closed once created, nothing waits for it, and the same vif
// attached again gets a fresh TAP of the same name (the close runs first).
TEST_F(ControlPlaneTest, AVifRemovedWhileItsTapIsCreatedLeavesNoTapBehind) {
  DaemonThread vifd(host(), options(1));
  std::promise<void> rtnl_released = hold_host_port_worker(vifd);
  toolstack_->attach(1, 0);
  // The vif is seen (its directory is watched) but cannot reach InitWait.
  ASSERT_TRUE(eventually(
      [&] { return vifd.call([&] { return vifd.daemon().describe(std::nullopt).size() == 1; }); }));
  EXPECT_EQ(backend_key(1, 0, key::kState), "1");
  toolstack_->remove(1, 0);
  ASSERT_TRUE(eventually(
      [&] { return vifd.call([&] { return vifd.daemon().describe(std::nullopt).empty(); }); }));
  rtnl_released.set_value();
  vifd.daemon().host_ports().drain();
  // The completion (posted to the daemon's thread) hands the TAP back to
  // the worker to close.
  EXPECT_TRUE(eventually([&] {
    vifd.call([] { return 0; });
    vifd.daemon().host_ports().drain();
    return !net::link_exists("vif1.0");
  })) << "the TAP of a removed vif was left behind";

  toolstack_->attach(1, 0);
  EXPECT_TRUE(backend_state_becomes(1, 0, "2"));
  EXPECT_TRUE(net::link_exists("vif1.0"));
  TestFrontend frontend(host(), 1, 0);
  frontend.connect();
  EXPECT_TRUE(backend_state_becomes(1, 0, "4")) << backend_key(1, 0, key::kError);
}

}  // namespace
}  // namespace vifd::backend::testing
