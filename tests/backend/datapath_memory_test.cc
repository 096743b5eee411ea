// What one queue costs in heap memory beyond its mapped rings: the staging
// arrays, the TX arena, the RX pool, the grant-copy segments, its switch
// endpoint, its thread's start. Measured as glibc's in-use bytes (mallinfo2:
// every arena's chunks plus mmap'ed ones) around the construction and start
// of a queue with the largest frames (GSO from the TAP) on a switch, and of
// a plain one; the figures are printed for the record. Not counted: the
// platform handles the control plane opens for the queue (on vif-sim each
// grant-table handle carries a table of every domain id, 768 KiB; on Xen an
// fd). Target (issue "Performance"): at most 2 MiB per queue.
#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdio>
#include <functional>
#include <memory>

#include "backend/lib/datapath/switch.h"
#include "tests/backend/datapath_harness.h"

namespace vifd::backend::testing {
namespace {

constexpr std::size_t kBudget = std::size_t{2} << 20;

std::size_t heap_in_use() {
  const struct mallinfo2 info = ::mallinfo2();
  return info.uordblks + info.hblkhd;
}

// Heap bytes a started queue for `frontend` with `options` holds, settled:
// from the moment its setup is complete (rings mapped, event channel bound,
// grant handle open: the platform's, not the queue's) to a loop turn after
// its start. A first queue of another domain runs meanwhile, so what is
// allocated once per process is not counted.
std::size_t queue_bytes(const SimHost& host, TestFrontend& warm_up, TestFrontend& frontend,
                        QueueOptions options) {
  FakeTap warm_up_tap;
  FakeTap tap;
  QueueOptions first = options;
  first.tap_fd = warm_up_tap.queue_fd();
  first.mac = test_mac(9);
  BackendQueue running(host, warm_up, first);
  EXPECT_TRUE(running.settle());
  options.tap_fd = tap.queue_fd();
  std::size_t before = 0;
  options.before_queue = [&] { before = heap_in_use(); };
  BackendQueue backend(host, frontend, options);
  EXPECT_TRUE(backend.settle());
  return heap_in_use() - before;
}

TEST(QueueMemory, AQueueWithTsoOnASwitchFitsTheBudget) {
  SimHost host({1, 2});
  TestFrontend warm_up(host, 2);
  TestFrontend frontend(host, 1);
  Switch network_switch("xenbr0");
  QueueOptions options;
  options.features.sg = true;
  options.features.gso_tcpv4 = true;
  options.features.gso_tcpv6 = true;
  options.features.mtu = 65535 - 14;
  options.network_switch = &network_switch;
  options.mac = test_mac(1);
  const std::size_t bytes = queue_bytes(host, warm_up, frontend, options);
  std::printf("queue memory beyond the rings: %zu bytes (%.2f MiB), budget %zu\n", bytes,
              static_cast<double>(bytes) / (1 << 20), kBudget);
  RecordProperty("queue_bytes", static_cast<int>(bytes));
  EXPECT_LE(bytes, kBudget);
}

TEST(QueueMemory, APlainQueueFitsTheBudget) {
  SimHost host({1, 2});
  TestFrontend warm_up(host, 2);
  TestFrontend frontend(host, 1);
  const std::size_t bytes = queue_bytes(host, warm_up, frontend, QueueOptions{});
  std::printf("plain queue memory beyond the rings: %zu bytes (%.2f MiB)\n", bytes,
              static_cast<double>(bytes) / (1 << 20));
  EXPECT_LE(bytes, kBudget);
}

}  // namespace
}  // namespace vifd::backend::testing
