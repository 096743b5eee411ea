// A guest abusing what vifd's control plane reads from it: its RX ring
// indices and buffers, the shared indices a restarted vifd resumes from, its
// control ring (hash configuration, XSA-270's class) and its frontend
// directory in xenstore.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend/lib/control/reconnect_pacer.h"
#include "common/xenbus/keys.h"
#include "tests/hostile/hostile_harness.h"

namespace vifd::backend::hostile {
namespace {

namespace key = xenbus::key;
using protocol::CtrlRequest;
using protocol::RxRequest;
using RxShared = protocol::SharedRing<RxRequest, protocol::RxResponse>;
using TxShared = protocol::SharedRing<protocol::TxRequest, protocol::TxResponse>;
using CtrlShared = protocol::SharedRing<CtrlRequest, protocol::CtrlResponse>;

constexpr auto kBound = std::chrono::milliseconds(5000);

CtrlRequest ctrl_request(std::uint16_t id, std::uint16_t type, std::uint32_t a = 0,
                         std::uint32_t b = 0, std::uint32_t c = 0) {
  CtrlRequest request{};
  request.id = id;
  request.type = type;
  request.data[0] = a;
  request.data[1] = b;
  request.data[2] = c;
  return request;
}

class HostileControlTest : public HostileTest {
 protected:
  // The helper guest sends one small frame to the attacker's MAC through
  // the switch.
  void helper_sends_to_attacker() {
    helper().reap_tx();
    helper().send(ethernet_frame(attacker().mac(), helper().mac(), 200, 9));
  }
  // The attacker connects with these keys, again before each attack window
  // (after starting over, not measured); its vif must close naming `cause`.
  void hostile_connect(std::string_view name, const GuestOptions& options, std::string_view cause) {
    start(false);
    attacker().connect(options);
    EXPECT_TRUE(closes_naming(kAttacker, cause));
    auto armed = std::make_shared<std::atomic<bool>>(false);
    HostileTest::Attack attack;
    attack.prepare = [this, armed] { armed->store(static_cast<bool>(attacker().start_over())); };
    attack.step = [this, armed, &options] {
      if (armed->exchange(false)) {
        attacker().connect(options);
      } else {
        attacker().notify();
      }
    };
    measure(name, attack);
    EXPECT_TRUE(closes_naming(kAttacker, cause));
    expect_vifd_serves_the_others();
  }
  // Exchanges control-ring requests; returns the responses that came back.
  std::vector<protocol::CtrlResponse> ctrl_exchange(const std::vector<CtrlRequest>& requests) {
    Guest& guest = attacker();
    EXPECT_EQ(guest.ctrl().push_requests(requests), requests.size());
    guest.ctrl().publish_requests();
    guest.notify_ctrl();
    std::vector<protocol::CtrlResponse> responses;
    std::array<protocol::CtrlResponse, 64> batch{};
    eventually(
        [&] {
          const auto taken = guest.ctrl().take_responses(batch);
          responses.insert(responses.end(), batch.begin(),
                           batch.begin() + static_cast<std::ptrdiff_t>(taken.count));
          return responses.size() >= requests.size();
        },
        kBound);
    return responses;
  }
};

TEST_F(HostileControlTest, RxProducerOverflowAtTheQueueClosesTheVif) {
  start();
  const auto overflow = [this] {
    const RxShared ring = attacker().rx_shared();
    ring.store(RxShared::kReqProd, ring.load(RxShared::kRspProd) + 5000);
    attacker().notify();
    // The queue looks at the RX ring when it has something to deliver.
    helper_sends_to_attacker();
  };
  overflow();
  EXPECT_TRUE(closes_naming(kAttacker, "RX request producer index overflows"));
  measure("rx req_prod beyond the ring", fatal_cycle(overflow));
  expect_vifd_serves_the_others();
}

TEST_F(HostileControlTest, RxBuffersWithInvalidGrantsAreAnsweredWithErrorsAndCounted) {
  start();
  const auto post_bad = [this](std::size_t count) {
    std::vector<RxRequest> requests;
    for (std::size_t i = 0; i < count && requests.size() < attacker().rx().free_requests(); ++i) {
      RxRequest request{};
      request.id = static_cast<std::uint16_t>(i);
      request.gref = 0xFFFF00U + static_cast<std::uint32_t>(i);
      requests.push_back(request);
    }
    attacker().push_rx_raw(requests);
  };
  post_bad(4);
  helper_sends_to_attacker();
  // Taken without reposting honest buffers in their place.
  std::array<protocol::RxResponse, 64> responses{};
  std::size_t taken = 0;
  ASSERT_TRUE(eventually([&] {
    taken += attacker().rx().take_responses(std::span(responses).subspan(taken)).count;
    return taken != 0;
  }));
  EXPECT_EQ(responses[0].status, protocol::kRspError);
  EXPECT_GE(counter(kAttacker, "/drops/rx_grant_copy_failed"), 1U);
  measure("RX buffers with invalid grants", [&] {
    attacker().rx().take_responses(responses);
    post_bad(8);
    helper_sends_to_attacker();
  });
  EXPECT_EQ(backend_key(kAttacker, key::kState), "4");
  expect_vifd_serves_the_others();
}

TEST_F(HostileControlTest, ScribbledEventIndicesCostOnlyTheGuestItsNotifications) {
  start();
  // The attacker asks never to be woken (rsp_event far behind) and writes
  // the backend's own index fields: vifd keeps its private copies and goes
  // on answering on the right slots.
  const auto scribble = [this] {
    const TxShared tx = attacker().tx_shared();
    const RxShared rx = attacker().rx_shared();
    tx.store(TxShared::kRspEvent, tx.load(TxShared::kRspProd) - 1000);
    rx.store(RxShared::kRspEvent, rx.load(RxShared::kRspProd) - 1000);
    tx.store(TxShared::kRspProd, 0xDEAD0000U);
    tx.store(TxShared::kReqEvent, 0xBEEF0000U);
    rx.store(RxShared::kReqEvent, 0xBEEF0000U);
  };
  attacker().post_rx(8);
  scribble();
  attacker().send(ethernet_frame(guest_mac(0x77), attacker().mac(), 100));
  helper_sends_to_attacker();
  EXPECT_TRUE(eventually([&] {
    return counter(kAttacker, "/tx/packets") == 1 &&
           counter(kAttacker, "/switch/received_packets") == 1;
  })) << describe(kAttacker).dump();
  const auto ring = describe(kAttacker)["queues"][0]["ring"];
  EXPECT_EQ(ring["tx_rsp_prod"], 1) << "vifd answered on its own index, not the scribbled one";
  measure("scribbled ring event indices", [&] {
    scribble();
    attacker().notify();
    helper_sends_to_attacker();
  });
  EXPECT_EQ(backend_key(kAttacker, key::kState), "4");
  expect_vifd_serves_the_others();
}

TEST_F(HostileControlTest, HostileIndicesAtRestartCloseOnlyThatVif) {
  start();
  // vifd stops (an upgrade); meanwhile the attacker puts garbage in its
  // shared indices, which the next vifd resumes from.
  vifd_.reset();
  const TxShared tx = attacker().tx_shared();
  const RxShared rx = attacker().rx_shared();
  tx.store(TxShared::kReqProd, 0x7FFF0000U);
  tx.store(TxShared::kRspProd, 0x12345678U);
  rx.store(RxShared::kReqProd, 0xFFFFFF00U);
  rx.store(RxShared::kRspProd, 0x00000100U);
  restart_vifd();
  EXPECT_TRUE(closes_naming(kAttacker, "producer index overflows"));
  for (const platform::DomId domid : {kA, kB, kHelper}) {
    EXPECT_EQ(backend_key(domid, key::kState), "4") << "domain " << domid;
  }
  measure("hostile ring at restart", fatal_cycle([this] {
            const TxShared ring = attacker().tx_shared();
            ring.store(TxShared::kRspProd, ring.load(TxShared::kReqProd) + 3000);
            ring.store(TxShared::kReqProd, ring.load(TxShared::kReqProd) + 7000);
            attacker().notify();
          }));
  expect_vifd_serves_the_others();
}

TEST_F(HostileControlTest, ControlRingProducerOverflowClosesTheVif) {
  GuestOptions options;
  options.ctrl_ring = true;
  start(true, options);
  const auto overflow = [this] {
    const auto ring = attacker().ctrl_shared();
    ring.store(CtrlShared::kReqProd, ring.load(CtrlShared::kRspProd) + 0x40000000U);
    attacker().notify_ctrl();
  };
  overflow();
  EXPECT_TRUE(closes_naming(kAttacker, "ctrl-ring-ref"));
  measure("control ring producer overflow", fatal_cycle(overflow));
  expect_vifd_serves_the_others();
}

TEST_F(HostileControlTest, ControlRingGarbageAndOutOfBoundsHashMappingsAreRefused) {
  GuestOptions options;
  options.ctrl_ring = true;
  start(true, options);
  std::memset(attacker().data_page(), 0xFF, 4096);
  const std::vector<CtrlRequest> garbage{
      ctrl_request(1, 0xFFFF, 1, 2, 3),
      ctrl_request(2, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, 0xFFFFFFFFU),
      ctrl_request(3, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, attacker().data_page_ref(), 0xFFFFFFF0U,
                   64),
      ctrl_request(4, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 0xFFFFFFU, 0, 4),
      ctrl_request(5, XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, attacker().data_page_ref(), 100000),
      ctrl_request(6, XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 0xFFFFFFU, 40),
      ctrl_request(7, XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM, 99),
      ctrl_request(8, XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, 0xFFFFFFFFU),
  };
  const auto responses = ctrl_exchange(garbage);
  ASSERT_EQ(responses.size(), garbage.size());
  for (std::size_t i = 0; i < responses.size(); ++i) {
    EXPECT_EQ(responses[i].id, garbage[i].id);
    EXPECT_NE(responses[i].status, std::uint32_t{XEN_NETIF_CTRL_STATUS_SUCCESS})
        << "request " << garbage[i].id;
  }
  measure("control ring garbage", [&] {
    std::array<protocol::CtrlResponse, 64> drain{};
    attacker().ctrl().take_responses(drain);
    if (attacker().ctrl().free_requests() >= garbage.size()) {
      EXPECT_EQ(attacker().ctrl().push_requests(garbage), garbage.size());
      attacker().ctrl().publish_requests();
      attacker().notify_ctrl();
    }
  });
  EXPECT_EQ(backend_key(kAttacker, key::kState), "4");
  expect_vifd_serves_the_others();
}

TEST_F(HostileControlTest, ConnectedWithoutRingKeysClosesNamingTheKey) {
  GuestOptions options;
  for (const auto name : {key::kTxRingRef, key::kRxRingRef, key::kEventChannel}) {
    options.overrides[std::string(name)] = "";
  }
  hostile_connect("Connected without ring keys", options, "tx-ring-ref");
}

TEST_F(HostileControlTest, RingReferenceNotGrantedClosesNamingTheKey) {
  GuestOptions options;
  options.overrides[std::string(key::kTxRingRef)] = "3000";
  hostile_connect("ring reference never granted", options, "tx-ring-ref");
}

TEST_F(HostileControlTest, EventChannelNotBoundClosesNamingTheKey) {
  GuestOptions options;
  options.overrides[std::string(key::kEventChannel)] = "900";
  hostile_connect("event channel never bound", options, "event-channel");
}

TEST_F(HostileControlTest, MoreQueuesThanOfferedClosesNamingTheKey) {
  GuestOptions options;
  options.overrides[std::string(key::kMultiQueueNumQueues)] = "64";
  hostile_connect("64 queues asked of a 1-queue backend", options, "multi-queue-num-queues");
}

TEST_F(HostileControlTest, RingKeysRewrittenAfterConnectAreIgnored) {
  start();
  // vifd parsed the keys once, at connect; what the frontend writes later
  // changes nothing it uses.
  int n = 0;
  const auto rewrite = [&] {
    attacker().write_key(key::kTxRingRef, std::to_string(900000 + n));
    attacker().write_key(key::kRxRingRef, "x" + std::to_string(n));
    attacker().write_key(key::kEventChannel, std::to_string(4000 + n));
    ++n;
  };
  rewrite();
  attacker().send(ethernet_frame(guest_mac(0x77), attacker().mac(), 100));
  const auto answers = attacker().wait_tx_responses(1, kBound);
  ASSERT_EQ(answers.size(), 1U);
  EXPECT_EQ(answers[0].status, protocol::kRspOkay) << "the original rings are still served";
  measure("ring keys rewritten after connect", rewrite);
  EXPECT_EQ(backend_key(kAttacker, key::kState), "4");
  expect_vifd_serves_the_others();
}

TEST_F(HostileControlTest, HugeValueInAWatchedKeyClosesNamingTheKey) {
  start();
  const std::string huge(1800, '7');
  attacker().write_key(key::kRequestMulticastControl, huge);
  EXPECT_TRUE(closes_naming(kAttacker, std::string(key::kRequestMulticastControl)));
  measure("huge value in request-multicast-control",
          fatal_cycle([&] { attacker().write_key(key::kRequestMulticastControl, huge); }));
  expect_vifd_serves_the_others();
}

TEST_F(HostileControlTest, HugeValuesInUnusedKeysCostOnlyTheirReads) {
  start();
  const std::string huge(1800, 'x');
  int n = 0;
  const auto write = [&] { attacker().write_key("junk-" + std::to_string(n++ % 16), huge); };
  for (int i = 0; i < 16; ++i) {
    write();
  }
  attacker().send(ethernet_frame(guest_mac(0x77), attacker().mac(), 100));
  ASSERT_EQ(attacker().wait_tx_responses(1, kBound).size(), 1U);
  measure("huge values in unused keys", write);
  EXPECT_EQ(backend_key(kAttacker, key::kState), "4");
  expect_vifd_serves_the_others();
}

// Each connect and disconnect runs ring mappings, TAP queue ioctls and
// thread start/stop on the one control thread: a guest cycling through them
// as fast as it can (57-78 cycles/s measured) cost the neighbour 20-36% of
// its rate. Its reconnects are paced (4 at once, then 4 per second).
TEST_F(HostileControlTest, DetachAttachChurnByOneGuestLeavesTheOthersAlone) {
  start();
  std::size_t cycles = 0;
  const auto began = std::chrono::steady_clock::now();
  const Figures figures = measure("connect/disconnect churn", [&] {
    if (!attacker().reconnect()) {
      return;
    }
    if (eventually([&] { return attacker().backend_key(key::kState) == "4"; }, kBound)) {
      ++cycles;
    }
  });
  std::printf("[hostile] connect/disconnect churn: %zu cycles, %.0f per second during the attack\n",
              cycles, static_cast<double>(cycles) / figures.attack_seconds);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  const nlohmann::json attacker_vif = describe(kAttacker);
  std::printf("[hostile] connect/disconnect churn: %.1f s in all, %llu reconnects paced\n", elapsed,
              static_cast<unsigned long long>(attacker_vif.value("reconnects_paced", 0ULL)));
  EXPECT_GT(cycles, 0U);
  // The pacing's bound: its burst, then one per interval (and the one the
  // bucket may have earned by the start).
  const double allowed =
      ReconnectPacer::kDefaultBurst +
      elapsed / std::chrono::duration<double>(ReconnectPacer::kDefaultInterval).count() + 1;
  EXPECT_LE(static_cast<double>(cycles), allowed) << attacker_vif.dump();
  EXPECT_TRUE(backend_state_becomes(kAttacker, "4")) << backend_key(kAttacker, key::kError);
  EXPECT_EQ(backend_key(kAttacker, key::kError), "");
  expect_vifd_serves_the_others();
}

}  // namespace
}  // namespace vifd::backend::hostile
