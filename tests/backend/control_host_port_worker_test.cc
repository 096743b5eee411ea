// HostPortWorker (backend/lib/control/host_port_worker.h) on its own: order,
// failures reported on the io_context, nothing queued dropped at the end.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/lib/control/asio.h"
#include "backend/lib/control/host_port_worker.h"

namespace vifd::backend {
namespace {

TEST(HostPortWorker, RunsJobsInOrderAndReportsFailuresOnTheIoContext) {
  boost::asio::io_context io;
  HostPortWorker worker(io);
  std::vector<int> order;  // written by the worker only
  std::vector<std::string> outcomes;
  const auto record = [&outcomes](const std::optional<std::string>& error) {
    outcomes.push_back(error.value_or("ok"));
  };
  for (int i = 0; i < 5; ++i) {
    worker.submit([&order, i] { order.push_back(i); }, record);
  }
  worker.submit([] { throw std::runtime_error("TUNSETCARRIER 1 on TAP vif9.0: No such device"); },
                record);
  worker.submit([&order] { order.push_back(5); });  // no completion wanted
  worker.drain();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_TRUE(outcomes.empty()) << "completions run on the io_context, not the worker";
  io.run();
  EXPECT_EQ(outcomes, (std::vector<std::string>{"ok", "ok", "ok", "ok", "ok",
                                                "TUNSETCARRIER 1 on TAP vif9.0: No such device"}));
  const HostPortWorker::Counters counters = worker.counters();
  EXPECT_EQ(counters.jobs_run, 7U);
  EXPECT_EQ(counters.jobs_failed, 1U);
  EXPECT_EQ(counters.pending, 0U);
}

TEST(HostPortWorker, RunsWhatIsQueuedBeforeItGoes) {
  boost::asio::io_context io;
  std::atomic<int> ran{0};
  {
    HostPortWorker worker(io);
    std::promise<void> release;
    worker.submit([gate = release.get_future().share()] { gate.wait(); });
    for (int i = 0; i < 3; ++i) {
      worker.submit([&ran] { ++ran; });
    }
    release.set_value();
  }
  // A TAP released last must still be closed: nothing queued is dropped.
  EXPECT_EQ(ran, 3);
}

}  // namespace
}  // namespace vifd::backend
