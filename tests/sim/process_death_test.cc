// What the simulated kernel does when a process dies holding event
// channels and grants (kill -9): as Linux's evtchn, gntdev and gntalloc
// release, its ports close (the peer's port is unbound and bindable
// again), its mapped pages are unpinned and its shared grants ended.
#include <unistd.h>

#include <vector>

#include "common/platform/error.h"
#include "tests/sim/sim_test_support.h"

namespace vifd::sim::testing {
namespace {

using platform::DomId;
using platform::EvtchnPort;
using platform::GrantRef;
using platform::kPageSize;

using ProcessDeathTest = SimHostTest;

// Blocks the child until it is killed.
int wait_to_be_killed() {
  for (;;) {
    ::pause();
  }
}

TEST_F(ProcessDeathTest, KilledBindersPortIsRebindableAtOnce) {
  auto front = join(1)->open_event_channels();
  const EvtchnPort offered = front->bind_unbound(0);
  Pipe to_parent;
  Child backend([&]() -> int {
    auto channels = join(0)->open_event_channels();
    const EvtchnPort local = channels->bind_interdomain(1, offered);
    to_parent.send(local);
    return wait_to_be_killed();
  });
  ASSERT_TRUE(backend.started());
  EvtchnPort dead_local = 0;
  ASSERT_TRUE(to_parent.receive(dead_local));
  // Bound to the backend: another binder is refused while it lives.
  auto other = join(0)->open_event_channels();
  EXPECT_THROW(other->bind_interdomain(1, offered), platform::PlatformError);
  backend.kill_now();
  // A new backend binds at once, without waiting for a sweep.
  auto restarted = join(0)->open_event_channels();
  const EvtchnPort local = restarted->bind_interdomain(1, offered);
  while (restarted->pending()) {
  }
  ASSERT_EQ(restarted->notify(local), 0);
  ASSERT_EQ(front->pending(), offered);
}

TEST_F(ProcessDeathTest, SweepClosesADeadProcesssPortsAndLeavesTheLiving) {
  auto front = join(1)->open_event_channels();
  const EvtchnPort to_dead = front->bind_unbound(0);
  const EvtchnPort to_living = front->bind_unbound(0);
  Pipe to_parent;
  Child dead([&]() -> int {
    auto channels = join(0)->open_event_channels();
    to_parent.send(channels->bind_interdomain(1, to_dead));
    return wait_to_be_killed();
  });
  Child living([&]() -> int {
    auto channels = join(0)->open_event_channels();
    to_parent.send(channels->bind_interdomain(1, to_living));
    return wait_to_be_killed();
  });
  EvtchnPort port = 0;
  ASSERT_TRUE(to_parent.receive(port));
  ASSERT_TRUE(to_parent.receive(port));
  ProcessReaper reaper(dir_);
  EXPECT_EQ(reaper.sweep(), 0U);
  dead.kill_now();
  // Its one handle; the living child's stays bound.
  EXPECT_EQ(reaper.sweep(), 1U);
  auto restarted = join(0)->open_event_channels();
  EXPECT_NO_THROW(restarted->bind_interdomain(1, to_dead));
  EXPECT_THROW(restarted->bind_interdomain(1, to_living), platform::PlatformError);
}

TEST_F(ProcessDeathTest, KilledMappersPinsAreDropped) {
  auto share = join(1)->open_grant_share();
  std::vector<GrantRef> refs(2);
  void* pages = share->share(0, refs, true);
  Pipe to_parent;
  Child mapper([&]() -> int {
    auto table = join(0)->open_grant_table();
    const std::vector<DomId> domids(refs.size(), 1);
    table->map(domids, refs, true);
    to_parent.send('m');
    return wait_to_be_killed();
  });
  char mapped = 0;
  ASSERT_TRUE(to_parent.receive(mapped));
  EXPECT_EQ(active_word(1, refs[0]), 1U);
  mapper.kill_now();
  ProcessReaper(dir_).sweep();
  EXPECT_EQ(active_word(1, refs[0]), 0U);
  EXPECT_EQ(active_word(1, refs[1]), 0U);
  // Nothing defers the free any more: ending access frees the pages now.
  const std::uint32_t frame = granted_frame(1, refs[0]);
  share->unshare(pages, refs.size());
  EXPECT_FALSE(page_in_use(1, frame));
}

TEST_F(ProcessDeathTest, KilledSharersGrantsEnd) {
  Pipe to_parent;
  Child sharer([&]() -> int {
    auto share = join(1)->open_grant_share();
    std::vector<GrantRef> refs(1);
    auto* page = static_cast<std::uint32_t*>(share->share(0, refs, true));
    page[0] = 0xFEED;
    to_parent.send(refs[0]);
    return wait_to_be_killed();
  });
  GrantRef ref = 0;
  ASSERT_TRUE(to_parent.receive(ref));
  const std::uint32_t frame = granted_frame(1, ref);
  auto table = join(0)->open_grant_table();
  const DomId one = 1;
  auto* mapped = static_cast<std::uint32_t*>(table->map({&one, 1}, {&ref, 1}, false));
  sharer.kill_now();
  ProcessReaper(dir_).sweep();
  // Ended: no new map; the page lives on while we still map it (gntalloc's
  // deferred free), then goes back to the domain.
  EXPECT_THROW(table->map({&one, 1}, {&ref, 1}, false), platform::PlatformError);
  EXPECT_EQ(mapped[0], 0xFEEDU);
  EXPECT_TRUE(page_in_use(1, frame));
  table->unmap(mapped, 1);
  EXPECT_FALSE(page_in_use(1, frame));
}

}  // namespace
}  // namespace vifd::sim::testing
