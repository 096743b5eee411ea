// A guest abusing its TX ring: producer indices, slot counts, sizes,
// offsets, grant references, extra-info chains and GSO metadata, after the
// checks of Linux netback's xenvif_tx_build_gops / xenvif_count_requests /
// xenvif_get_extras (XSA-39, XSA-90 and their like). Recoverable errors are
// dropped, counted on the attacker's queue and answered NETIF_RSP_ERROR;
// protocol violations close the attacker's vif with an `error` naming them.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tests/hostile/hostile_harness.h"

namespace vifd::backend::hostile {
namespace {

using protocol::ExtraInfo;
using protocol::TxRequest;
using Shared = protocol::SharedRing<TxRequest, protocol::TxResponse>;

constexpr auto kBound = std::chrono::milliseconds(5000);

// A frame for a MAC nobody has: it leaves through the attacker's TAP.
std::vector<std::uint8_t> to_nowhere(Guest& guest, std::size_t length) {
  return ethernet_frame(guest_mac(0x77), guest.mac(), length, 3);
}

TxRequest slot(Guest& guest, std::size_t page, std::uint16_t size, std::uint16_t flags = 0,
               std::uint16_t offset = 0) {
  TxRequest request{};
  request.gref = guest.tx_page_ref(page % Guest::kTxPages);
  request.offset = offset;
  request.size = size;
  request.flags = flags;
  request.id = static_cast<std::uint16_t>(page);
  return request;
}

TxRequest extra_slot(const ExtraInfo& extra) {
  TxRequest request{};
  std::memcpy(&request, &extra, sizeof(extra));
  return request;
}

ExtraInfo gso_extra(std::uint16_t size, std::uint8_t type) {
  ExtraInfo extra{};
  extra.type = protocol::kExtraTypeGso;
  extra.u.gso.size = size;
  extra.u.gso.type = type;
  return extra;
}

// A packet of `data_slots` slots: the first carries `first_bytes` of its own,
// each continuation `follow_bytes`; the first slot's size is the total.
std::vector<TxRequest> chain(Guest& guest, std::size_t data_slots, std::uint16_t first_bytes,
                             std::uint16_t follow_bytes) {
  std::memcpy(guest.tx_page(0), to_nowhere(guest, 4096).data(), 4096);
  std::vector<TxRequest> requests;
  const auto total = static_cast<std::uint16_t>(first_bytes + (data_slots - 1) * follow_bytes);
  for (std::size_t n = 0; n < data_slots; ++n) {
    const bool more = n + 1 < data_slots;
    requests.push_back(slot(guest, n, n == 0 ? total : follow_bytes,
                            more ? protocol::kTxfMoreData : std::uint16_t{0}));
  }
  return requests;
}

class HostileRingTest : public HostileTest {
 protected:
  // Sends `requests` again and again while the attack window lasts.
  std::function<void()> repeat(std::vector<TxRequest> requests) {
    return [this, requests = std::move(requests)] {
      attacker().reap_tx();
      if (attacker().tx().free_requests() >= requests.size()) {
        attacker().push_tx_raw(requests);
      }
    };
  }
  // Pushes the requests once and waits for every answer.
  std::vector<protocol::TxResponse> exchange(const std::vector<TxRequest>& requests) {
    attacker().push_tx_raw(requests);
    return attacker().wait_tx_responses(requests.size(), kBound);
  }
};

TEST_F(HostileRingTest, TxProducerFarBeyondTheRingClosesTheVif) {
  start();
  const auto overflow = [this] {
    const Shared ring = attacker().tx_shared();
    ring.store(Shared::kReqProd, ring.load(Shared::kRspProd) + 10000);
    attacker().notify();
  };
  overflow();
  EXPECT_TRUE(closes_naming(kAttacker, "TX request producer index overflows"));
  measure("tx req_prod beyond the ring", fatal_cycle(overflow));
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, TxProducerMovedBackwardsClosesTheVif) {
  start();
  const auto backwards = [this] {
    attacker().send(to_nowhere(attacker(), 100));
    attacker().wait_tx_responses(1, kBound);
    const Shared ring = attacker().tx_shared();
    ring.store(Shared::kReqProd, ring.load(Shared::kReqProd) - 1);
    attacker().notify();
  };
  backwards();
  EXPECT_TRUE(closes_naming(kAttacker, "TX request producer index overflows"));
  measure("tx req_prod moved backwards", fatal_cycle(backwards));
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, NineteenDataSlotsAreDroppedAndCounted) {
  start();
  const auto requests = chain(attacker(), protocol::kNrSlotsMin + 1, 100, 100);
  const auto responses = exchange(requests);
  ASSERT_EQ(responses.size(), requests.size());
  for (const auto& response : responses) {
    EXPECT_EQ(response.status, protocol::kRspError);
  }
  EXPECT_GE(counter(kAttacker, "/drops/tx_too_many_slots"), 1U);
  measure("19 data slots", repeat(requests));
  EXPECT_EQ(backend_key(kAttacker, xenbus::key::kState), "4") << "a drop, not a disconnect";
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, MaliciousSlotCountClosesTheVif) {
  start();
  const auto too_many = [this] { attacker().push_tx_raw(chain(attacker(), 22, 100, 100)); };
  too_many();
  EXPECT_TRUE(closes_naming(kAttacker, "malicious number of slots"));
  measure("22 slots in one packet", fatal_cycle(too_many));
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, ZeroLengthContinuationSlotsCountAgainstTheSlotLimit) {
  start();
  // 18 data slots, 17 of them empty: legal, the frame goes out whole.
  const auto legal = chain(attacker(), protocol::kNrSlotsMin, 200, 0);
  for (const auto& response : exchange(legal)) {
    EXPECT_EQ(response.status, protocol::kRspOkay);
  }
  EXPECT_TRUE(eventually([&] { return counter(kAttacker, "/tap/writes") == 1; }));
  // 19 data slots of which 18 are empty: dropped as too many slots.
  const auto empty = chain(attacker(), protocol::kNrSlotsMin + 1, 200, 0);
  for (const auto& response : exchange(empty)) {
    EXPECT_EQ(response.status, protocol::kRspError);
  }
  EXPECT_GE(counter(kAttacker, "/drops/tx_too_many_slots"), 1U);
  measure("zero-length continuation slots", repeat(empty));
  EXPECT_EQ(backend_key(kAttacker, xenbus::key::kState), "4");
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, ContinuationSlotCrossingItsPageClosesTheVif) {
  start();
  const auto crossing = [this] {
    auto requests = chain(attacker(), 2, 100, 200);
    requests[1].offset = 4000;
    attacker().push_tx_raw(requests);
  };
  crossing();
  EXPECT_TRUE(closes_naming(kAttacker, "crosses its page boundary"));
  measure("continuation slot crossing its page", fatal_cycle(crossing));
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, FirstSlotOffsetBeyondItsPageClosesTheVif) {
  start();
  const auto crossing = [this] {
    TxRequest first = slot(attacker(), 0, 200);
    first.offset = 4000;
    attacker().push_tx_raw(std::vector<TxRequest>{first});
  };
  crossing();
  EXPECT_TRUE(closes_naming(kAttacker, "crosses its page boundary"));
  measure("first slot offset beyond its page", fatal_cycle(crossing));
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, ContinuationLargerThanThePacketIsDroppedAndCounted) {
  start();
  auto requests = chain(attacker(), 3, 100, 100);
  requests[2].size = 2000;  // more than the first slot's total says is left
  for (const auto& response : exchange(requests)) {
    EXPECT_EQ(response.status, protocol::kRspError);
  }
  EXPECT_GE(counter(kAttacker, "/drops/tx_slot_exceeds_packet"), 1U);
  measure("continuation larger than the packet", repeat(requests));
  EXPECT_EQ(backend_key(kAttacker, xenbus::key::kState), "4");
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, FirstSlotShorterThanAnEthernetHeaderIsDroppedAndCounted) {
  start();
  const std::vector<TxRequest> requests{slot(attacker(), 0, 0), slot(attacker(), 1, 13)};
  for (const auto& response : exchange(requests)) {
    EXPECT_EQ(response.status, protocol::kRspError);
  }
  EXPECT_EQ(counter(kAttacker, "/drops/tx_bad_packet_size"), 2U);
  measure("0- and 13-byte packets", repeat(requests));
  EXPECT_EQ(backend_key(kAttacker, xenbus::key::kState), "4");
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, InvalidGrantReferenceIsDroppedAndCounted) {
  start();
  std::memcpy(attacker().tx_page(0), to_nowhere(attacker(), 200).data(), 200);
  TxRequest bad = slot(attacker(), 0, 200);
  bad.gref = 0xFFFF0;
  TxRequest invalid = slot(attacker(), 1, 200);
  invalid.gref = 0xFFFFFFFFU;
  const std::vector<TxRequest> requests{bad, invalid};
  for (const auto& response : exchange(requests)) {
    EXPECT_EQ(response.status, protocol::kRspError);
  }
  EXPECT_EQ(counter(kAttacker, "/drops/tx_grant_copy_failed"), 2U);
  measure("invalid grant references", repeat(requests));
  EXPECT_EQ(backend_key(kAttacker, xenbus::key::kState), "4");
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, GrantRevokedWhileTheSwitchHoldsTheFrameFailsOnlyThatFrame) {
  start();
  // B posts nothing yet: the forwarded frame waits in its backlog holding
  // the attacker's grant, which the attacker then ends.
  std::memcpy(attacker().tx_page(5), ethernet_frame(b().mac(), attacker().mac(), 300).data(), 300);
  attacker().push_tx_raw(std::vector<TxRequest>{slot(attacker(), 5, 300)});
  ASSERT_TRUE(eventually([&] {
    return counter(kB, "/ring/rx_req_prod") == 0 && counter(kAttacker, "/ring/tx_req_cons") == 1;
  }));
  attacker().revoke_tx_page(5);
  b().post_rx(4);
  std::vector<protocol::RxResponse> received;
  ASSERT_TRUE(eventually([&] {
    b().reap_rx(&received);
    return !received.empty();
  }));
  EXPECT_EQ(received[0].status, protocol::kRspError) << "B's buffer answered with an error";
  const auto answers = attacker().wait_tx_responses(1, kBound);
  ASSERT_EQ(answers.size(), 1U);
  EXPECT_EQ(answers[0].status, protocol::kRspError);
  EXPECT_EQ(counter(kAttacker, "/drops/tx_grant_copy_failed"), 1U);
  EXPECT_EQ(counter(kB, "/drops/rx_grant_copy_failed"), 1U);
  std::size_t page = 0;
  measure("grants revoked mid-flight", [&] {
    attacker().reap_tx();
    const std::size_t p = page++ % Guest::kTxPages;
    std::memcpy(attacker().tx_page(p), ethernet_frame(b().mac(), attacker().mac(), 300).data(),
                300);
    if (attacker().tx().free_requests() == 0) {
      return;
    }
    attacker().push_tx_raw(std::vector<TxRequest>{slot(attacker(), p, 300)});
    attacker().revoke_tx_page(p);
  });
  EXPECT_EQ(backend_key(kAttacker, xenbus::key::kState), "4");
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, UnknownExtraInfoTypeClosesTheVif) {
  start();
  const auto unknown = [this] {
    ExtraInfo extra{};
    extra.type = 200;
    auto requests = chain(attacker(), 1, 100, 0);
    requests[0].flags |= protocol::kTxfExtraInfo;
    requests.push_back(extra_slot(extra));
    attacker().push_tx_raw(requests);
  };
  unknown();
  EXPECT_TRUE(closes_naming(kAttacker, "invalid extra-info type"));
  measure("unknown extra-info type", fatal_cycle(unknown));
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, ExtraInfoMoreChainPastThePublishedSlotsClosesTheVif) {
  start();
  const auto endless = [this] {
    ExtraInfo extra{};
    extra.type = protocol::kExtraTypeHash;
    extra.flags = protocol::kExtraFlagMore;
    auto requests = chain(attacker(), 1, 100, 0);
    requests[0].flags |= protocol::kTxfExtraInfo;
    for (int i = 0; i < 40; ++i) {
      requests.push_back(extra_slot(extra));
    }
    attacker().push_tx_raw(requests);
  };
  endless();
  EXPECT_TRUE(closes_naming(kAttacker, "promises slots that were not published"));
  measure("extra-info MORE chain", fatal_cycle(endless));
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, LongExtraInfoChainIsAnsweredSlotBySlot) {
  start();
  // A chain of 200 hash extras ends before a one-slot packet: every slot is
  // consumed and answered (extras NULL), nothing read beyond the chain.
  ExtraInfo extra{};
  extra.type = protocol::kExtraTypeHash;
  extra.flags = protocol::kExtraFlagMore;
  auto requests = chain(attacker(), 1, 100, 0);
  requests[0].flags |= protocol::kTxfExtraInfo;
  for (int i = 0; i < 200; ++i) {
    requests.push_back(extra_slot(extra));
  }
  ExtraInfo last = extra;
  last.flags = 0;
  requests.push_back(extra_slot(last));
  const auto responses = exchange(requests);
  ASSERT_EQ(responses.size(), requests.size());
  std::size_t nulls = 0;
  for (const auto& response : responses) {
    nulls += response.status == protocol::kRspNull ? 1 : 0;
  }
  EXPECT_EQ(nulls, 201U);
  measure("200-extra chain", repeat(requests));
  EXPECT_EQ(backend_key(kAttacker, xenbus::key::kState), "4");
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, GsoExtraWithSizeZeroClosesTheVif) {
  start();
  const auto zero = [this] {
    const ExtraInfo extra = gso_extra(0, protocol::kGsoTypeTcpv4);
    attacker().send(to_nowhere(attacker(), 3000), 0, &extra, 1500);
  };
  zero();
  EXPECT_TRUE(closes_naming(kAttacker, "invalid GSO extra"));
  measure("GSO size 0", fatal_cycle(zero));
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, GsoExtraWithUnknownTypeClosesTheVif) {
  start();
  const auto unknown = [this] {
    const ExtraInfo extra = gso_extra(1400, 77);
    attacker().send(to_nowhere(attacker(), 3000), 0, &extra, 1500);
  };
  unknown();
  EXPECT_TRUE(closes_naming(kAttacker, "invalid GSO extra"));
  measure("GSO type 77", fatal_cycle(unknown));
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, GsoOnANonIpFrameToTheHostIsDroppedAndCounted) {
  start();
  const ExtraInfo extra = gso_extra(1400, protocol::kGsoTypeTcpv4);
  const auto frame = to_nowhere(attacker(), 3000);
  attacker().send(frame, protocol::kTxfCsumBlank, &extra, 1500);
  attacker().wait_tx_responses(3, kBound);
  EXPECT_TRUE(eventually([&] { return counter(kAttacker, "/drops/tx_bad_offload") == 1; }));
  measure("GSO metadata on a non-IP frame", [&] {
    attacker().reap_tx();
    attacker().send(frame, protocol::kTxfCsumBlank, &extra, 1500);
  });
  EXPECT_EQ(backend_key(kAttacker, xenbus::key::kState), "4");
  expect_vifd_serves_the_others();
}

TEST_F(HostileRingTest, MulticastFilterBeyondItsCapacityAnswersErrors) {
  GuestOptions options;
  options.multicast_control = true;
  start(true, options);
  // MCAST_ADD carriers: a request with an extra slot, no data.
  const auto add = [&](std::uint8_t n, std::uint8_t m) {
    ExtraInfo extra{};
    extra.type = protocol::kExtraTypeMcastAdd;
    const std::uint8_t mac[6] = {0x01, 0x00, 0x5e, 0x00, m, n};
    std::memcpy(extra.u.mcast.addr, mac, 6);
    TxRequest carrier = slot(attacker(), 0, 0, protocol::kTxfExtraInfo);
    return std::vector<TxRequest>{carrier, extra_slot(extra)};
  };
  std::size_t errors = 0;
  for (std::uint8_t n = 0; n < 80; ++n) {
    const auto responses = exchange(add(n, 0));
    ASSERT_EQ(responses.size(), 2U);
    errors += responses[0].status == protocol::kRspError ? 1 : 0;
  }
  EXPECT_EQ(errors, 80U - 64U) << "64 addresses fit, the rest are refused";
  EXPECT_EQ(counter(kAttacker, "/multicast_updates"), 80U);
  std::uint8_t round = 1;
  measure("MCAST_ADD beyond the filter's capacity", [&] {
    attacker().reap_tx();
    for (std::uint8_t n = 0; n < 8 && attacker().tx().free_requests() >= 2; ++n) {
      attacker().push_tx_raw(add(n, round));
    }
    ++round;
  });
  EXPECT_EQ(backend_key(kAttacker, xenbus::key::kState), "4");
  expect_vifd_serves_the_others();
}

}  // namespace
}  // namespace vifd::backend::hostile
