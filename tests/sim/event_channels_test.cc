// Event channels of the simulator in one process: binding rules, Linux
// evtchn masking, ports beyond the datagram queue length, revocation.
#include <poll.h>

#include <set>

#include "common/platform/error.h"
#include "tests/sim/sim_test_support.h"

namespace vifd::sim::testing {
namespace {

using platform::EventChannels;
using platform::EvtchnPort;
using platform::PlatformError;

bool readable(const EventChannels& channels) {
  pollfd fd{channels.fd(), POLLIN, 0};
  return ::poll(&fd, 1, 0) == 1;
}

// Takes every delivered event, unmasking each; returns how many.
int drain(EventChannels& channels) {
  int events = 0;
  while (const auto port = channels.pending()) {
    ++events;
    EXPECT_EQ(channels.unmask(*port), 0);
  }
  return events;
}

class EventChannelTest : public SimHostTest {
 protected:
  void SetUp() override {
    SimHostTest::SetUp();
    back_ = join(0)->open_event_channels();
    front_ = join(1)->open_event_channels();
    front_port_ = front_->bind_unbound(0);
    back_port_ = back_->bind_interdomain(1, front_port_);
    // Xen raises the binder's new port once; take that event.
    EXPECT_EQ(back_->pending(), back_port_);
    EXPECT_EQ(back_->unmask(back_port_), 0);
    EXPECT_EQ(back_->pending(), std::nullopt);
  }

  std::unique_ptr<EventChannels> back_;
  std::unique_ptr<EventChannels> front_;
  EvtchnPort front_port_ = 0;
  EvtchnPort back_port_ = 0;
};

TEST_F(EventChannelTest, NotifyReachesThePeerAndMakesItsFdReadable) {
  EXPECT_FALSE(readable(*front_));
  EXPECT_EQ(back_->notify(back_port_), 0);
  EXPECT_TRUE(readable(*front_));
  EXPECT_EQ(front_->pending(), front_port_);
  EXPECT_EQ(front_->pending(), std::nullopt);
  EXPECT_FALSE(readable(*front_)) << "nothing left after pending() ran dry";
  EXPECT_EQ(front_->unmask(front_port_), 0);

  EXPECT_EQ(front_->notify(front_port_), 0);
  EXPECT_EQ(back_->pending(), back_port_);
  EXPECT_EQ(read_counters(dir_, 0).evtchn_notify_calls, 1U);
  EXPECT_EQ(read_counters(dir_, 1).evtchn_notify_calls, 1U);
  EXPECT_EQ(read_counters(dir_, 1).evtchn_events_delivered, 1U);
}

TEST_F(EventChannelTest, NotificationsWhileMaskedArriveOnceAfterUnmask) {
  EXPECT_EQ(back_->notify(back_port_), 0);
  EXPECT_EQ(front_->pending(), front_port_);
  // Masked now: these two collapse into one pending event.
  EXPECT_EQ(back_->notify(back_port_), 0);
  EXPECT_EQ(back_->notify(back_port_), 0);
  EXPECT_EQ(front_->pending(), std::nullopt);
  EXPECT_EQ(front_->unmask(front_port_), 0);
  EXPECT_TRUE(readable(*front_));
  EXPECT_EQ(front_->pending(), front_port_);
  EXPECT_EQ(front_->pending(), std::nullopt);
  EXPECT_EQ(front_->unmask(front_port_), 0);
  EXPECT_EQ(front_->pending(), std::nullopt) << "unmask without a pending event delivers nothing";
}

TEST_F(EventChannelTest, BindingRulesFollowXen) {
  auto dom2 = join(2)->open_event_channels();
  const EvtchnPort offered_to_dom0 = front_->bind_unbound(0);
  EXPECT_THROW(dom2->bind_interdomain(1, offered_to_dom0), PlatformError) << "offered to dom0";
  EXPECT_THROW(back_->bind_interdomain(1, front_port_), PlatformError) << "already bound";
  EXPECT_THROW(back_->bind_interdomain(1, 4095), PlatformError) << "a free port";
  EXPECT_THROW(back_->bind_interdomain(1, 5000), PlatformError) << "out of range";
  EXPECT_THROW(back_->bind_interdomain(9, 1), PlatformError) << "no domain 9";
  try {
    back_->bind_interdomain(1, 4095);
  } catch (const PlatformError& error) {
    EXPECT_NE(std::string(error.what()).find("domain 1 port 4095"), std::string::npos);
    EXPECT_EQ(error.errno_value(), EINVAL);
  }
  EXPECT_EQ(back_->notify(front_port_ + 100), -EINVAL) << "not our port";
  EXPECT_EQ(dom2->notify(back_port_), -EINVAL) << "another handle's port";
  EXPECT_EQ(front_->unmask(4000), -EINVAL);
  EXPECT_EQ(front_->notify(offered_to_dom0), 0) << "unbound: dropped silently";
  EXPECT_THROW(front_->unbind(3000), PlatformError) << "never bound";
  front_->unbind(offered_to_dom0);
  EXPECT_THROW(front_->unbind(offered_to_dom0), PlatformError);
}

TEST_F(EventChannelTest, UnbindLeavesThePeerUnboundAndRebindable) {
  front_->unbind(front_port_);
  EXPECT_EQ(back_->notify(back_port_), 0) << "peer closed: the event is dropped";
  EXPECT_EQ(front_->pending(), std::nullopt);
  // The backend's port went back to unbound-for-domain-1: the frontend may
  // bind to it, as after Xen's evtchn_close.
  const EvtchnPort rebound = front_->bind_interdomain(0, back_port_);
  EXPECT_EQ(front_->pending(), rebound);
  EXPECT_EQ(front_->unmask(rebound), 0);
  EXPECT_EQ(back_->notify(back_port_), 0);
  EXPECT_EQ(front_->pending(), rebound);
}

TEST_F(EventChannelTest, MorePortsThanTheDatagramQueueHolds) {
  // net.unix.max_dgram_qlen is 10 on most systems; 40 ports fire at once.
  std::vector<EvtchnPort> back_ports;
  std::set<EvtchnPort> front_ports;
  for (int i = 0; i < 40; ++i) {
    const EvtchnPort front = front_->bind_unbound(0);
    front_ports.insert(front);
    back_ports.push_back(back_->bind_interdomain(1, front));
  }
  EXPECT_EQ(drain(*back_), 40);
  for (const EvtchnPort port : back_ports) EXPECT_EQ(back_->notify(port), 0);
  std::set<EvtchnPort> seen;
  while (const auto port = front_->pending()) EXPECT_TRUE(seen.insert(*port).second);
  EXPECT_EQ(seen, front_ports);
}

TEST_F(EventChannelTest, DestroyedPeerLeavesOurPortUnbound) {
  destroy_domain(dir_, 1);
  EXPECT_EQ(back_->notify(back_port_), 0);
  EXPECT_EQ(back_->pending(), std::nullopt);
  create_domain(dir_, 1);
  auto reborn = join(1)->open_event_channels();
  const EvtchnPort port = reborn->bind_interdomain(0, back_port_);
  EXPECT_EQ(reborn->pending(), port);
  EXPECT_EQ(reborn->unmask(port), 0);
  EXPECT_EQ(back_->notify(back_port_), 0);
  EXPECT_EQ(reborn->pending(), port);
  back_->unbind(back_port_);
}

}  // namespace
}  // namespace vifd::sim::testing
