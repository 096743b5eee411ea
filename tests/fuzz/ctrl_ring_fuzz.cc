// The netif control ring as a hostile frontend drives it: requests it
// publishes on the ring page (with a request producer index of its choice)
// are taken and answered as CtrlRing::serve does, by HashControl, whose
// grant copies read a page whose bytes the input also chooses (and whose
// grant references fail when the input says so). Checks that every response
// answers its own request with a status netif.h defines, that no copy
// leaves the granted page, and that every configuration HashControl
// publishes is within bounds: a mapping of at most 128 entries naming only
// existing queues, a key within Toeplitz's size, known flags. steer() on
// that configuration picks an existing queue, and only with an algorithm.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "backend/lib/control/hash_control.h"
#include "backend/lib/datapath/flow_steering.h"
#include "backend/lib/datapath/toeplitz.h"
#include "common/platform/grant_table.h"
#include "common/protocol/ring.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using vifd::backend::HashControl;
using vifd::platform::GrantCopySegment;
using vifd::platform::kPageSize;
using vifd::protocol::CtrlRequest;
using vifd::protocol::CtrlResponse;

constexpr vifd::platform::DomId kFrontend = 7;

// The frontend's granted page: reads come from `page`; refs below 8 (the
// toolstack's reserved ones) fail as a revoked grant would.
class HostileGrants : public vifd::platform::GrantTable {
 public:
  std::array<std::uint8_t, kPageSize> page{};

  void* map(std::span<const vifd::platform::DomId>, std::span<const vifd::platform::GrantRef>,
            bool) override {
    std::abort();  // HashControl only copies
  }
  void unmap(void*, std::size_t) override { std::abort(); }
  int copy(std::span<GrantCopySegment> segments) noexcept override {
    for (auto& segment : segments) {
      FUZZ_CHECK(segment.flags == vifd::platform::kCopySourceGref);
      FUZZ_CHECK(segment.source.foreign.domid == kFrontend);
      FUZZ_CHECK(std::size_t{segment.source.foreign.offset} + segment.len <= kPageSize);
      if (segment.source.foreign.ref < 8) {
        segment.status = vifd::platform::kGntstBadGntref;
        continue;
      }
      std::memcpy(segment.dest.virt, page.data() + segment.source.foreign.offset, segment.len);
      segment.status = vifd::platform::kGntstOkay;
    }
    return 0;
  }
};

void check_snapshot(const vifd::backend::HashSnapshot& hash, unsigned num_queues,
                    std::span<const std::uint8_t> frame) {
  FUZZ_CHECK(hash.mapping.size() <= HashControl::kMaxMappingSize);
  for (const std::uint32_t queue : hash.mapping) {
    FUZZ_CHECK(queue < num_queues);
  }
  FUZZ_CHECK(hash.key.size() <= vifd::backend::kToeplitzMaxKeySize);
  FUZZ_CHECK((hash.flags & ~HashControl::kSupportedFlags) == 0);
  // Flags may outlive their algorithm (set Toeplitz, set flags, set NONE:
  // netback keeps them too); without an algorithm nothing is steered.
  const auto queue = vifd::backend::steer(hash, frame, num_queues);
  if (queue) {
    FUZZ_CHECK(hash.toeplitz && *queue < num_queues);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vifd::fuzz::Bytes in(data, size);
  const unsigned num_queues = 1 + in.take<std::uint8_t>() % 16;
  const auto prod_skew = in.take<std::uint32_t>();
  HostileGrants grants;
  const auto page_bytes = in.take_bytes(in.take<std::uint16_t>() % 1024);
  std::memcpy(grants.page.data(), page_bytes.data(), page_bytes.size());
  const auto frame = in.take_bytes(in.take<std::uint8_t>());

  auto steering = std::make_shared<vifd::backend::FlowSteering>();
  HashControl control(grants, kFrontend, num_queues, steering);

  // The ring page: the frontend writes its requests into the slots and a
  // producer index that is honest when prod_skew is 0.
  std::vector<std::uint32_t> shared(kPageSize / sizeof(std::uint32_t));
  auto front = vifd::protocol::CtrlFrontRing::init(std::as_writable_bytes(std::span(shared)));
  bool skewed = false;
  while (!in.empty()) {
    std::size_t published = 0;
    const std::size_t batch = 1 + in.take<std::uint8_t>() % 16;
    while (published < batch && !in.empty() && front.push_request(in.take<CtrlRequest>())) {
      ++published;
    }
    front.publish_requests();
    // Once skewed, requests left unanswered or answered twice make the
    // counts below differ; only the ring's own checks apply from then on.
    if (prod_skew != 0 && in.take<std::uint8_t>() % 4 == 0) {
      skewed = true;
      shared[0] += prod_skew;
    }

    // What CtrlRing::serve does with one event.
    vifd::protocol::CtrlBackRing back(std::as_writable_bytes(std::span(shared)),
                                      front.response_consumer());
    std::array<CtrlRequest, vifd::protocol::kCtrlRingSizeOnePage> requests;
    const auto taken = back.take_requests(requests);
    if (taken.status == vifd::protocol::RingStatus::kProducerOverflow) {
      return 0;
    }
    if (!skewed) {
      FUZZ_CHECK(taken.count == published);
    }
    for (std::size_t i = 0; i < taken.count; ++i) {
      const CtrlResponse response = control.handle(requests[i]);
      FUZZ_CHECK(response.id == requests[i].id && response.type == requests[i].type);
      FUZZ_CHECK(response.status <= XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW);
      FUZZ_CHECK(back.push_response(response));
      check_snapshot(*control.snapshot(), num_queues, frame);
    }
    (void)back.push_responses_and_check_notify();
    std::array<CtrlResponse, vifd::protocol::kCtrlRingSizeOnePage> responses;
    const auto answered = front.take_responses(responses);
    if (answered.status != vifd::protocol::RingStatus::kOk) {
      return 0;
    }
    if (!skewed) {
      FUZZ_CHECK(answered.count == published);
    }
  }
  return 0;
}
