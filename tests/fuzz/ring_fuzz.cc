// The ring views against a hostile peer: the input is a script of steps in
// which the peer rewrites its indices, event fields and slots at will
// (between our reads, as a guest on another CPU can) and we take, answer and
// publish. The back end serves a TX ring (a hostile frontend), the front end
// an RX ring (a hostile backend), each of a geometry the input picks.
// Invariants after every step: we never owe more responses than the ring
// holds, never take more than the peer may have produced, a refused producer
// index consumes nothing, every slot taken is the bytes the peer left there,
// and the indices we publish are the ones we keep privately.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <stdexcept>
#include <vector>

#include "common/protocol/ring.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using vifd::protocol::RingIndex;
using vifd::protocol::RingStatus;
using vifd::protocol::RxFrontRing;
using vifd::protocol::RxRequest;
using vifd::protocol::RxResponse;
using vifd::protocol::TxBackRing;
using vifd::protocol::TxRequest;
using vifd::protocol::TxResponse;

constexpr std::size_t kHeaderWords = 16;  // the 64-byte sring header

// Shared memory as the peer sees it: plain words it may write at any time.
struct Page {
  // Never smaller than the header, so the peer's index words always exist.
  explicit Page(std::size_t bytes) : words(std::max<std::size_t>((bytes + 3) / 4, kHeaderWords)) {}
  std::span<std::byte> span(std::size_t bytes) {
    return std::as_writable_bytes(std::span(words)).first(bytes);
  }
  std::uint32_t& index(std::size_t field) { return words[field]; }
  std::vector<std::uint32_t> words;
};

template <typename T>
T slot_bytes(Page& page, RingIndex size, RingIndex index, std::size_t entry_size) {
  T value;
  std::memcpy(&value,
              reinterpret_cast<const std::byte*>(page.words.data()) + kHeaderWords * 4 +
                  (index & (size - 1)) * entry_size,
              sizeof(T));
  return value;
}

constexpr std::size_t kTxEntry = std::max(sizeof(TxRequest), sizeof(TxResponse));
constexpr std::size_t kRxEntry = std::max(sizeof(RxRequest), sizeof(RxResponse));

void back_step(vifd::fuzz::Bytes& in, Page& page, TxBackRing& back) {
  const RingIndex size = back.size();
  switch (in.take<std::uint8_t>() % 8) {
    case 0:  // the frontend moves req_prod anywhere
      page.index(0) = in.take<std::uint32_t>();
      break;
    case 1:  // ... or a little, as an honest one would
      page.index(0) += in.take<std::uint8_t>();
      break;
    case 2: {  // it scribbles on any word (indices, events, slots)
      const std::size_t word = in.take<std::uint16_t>() % page.words.size();
      page.words[word] = in.take<std::uint32_t>();
      break;
    }
    case 3: {
      std::vector<TxRequest> out(in.take<std::uint16_t>() % (size + 8));
      const RingIndex cons = back.request_consumer();
      const RingIndex prod = page.index(0);
      std::vector<TxRequest> expected(std::min<std::size_t>(out.size(), size));
      for (std::size_t i = 0; i < expected.size(); ++i) {
        expected[i] = slot_bytes<TxRequest>(page, size, cons + static_cast<RingIndex>(i), kTxEntry);
      }
      const auto taken = back.take_requests(out);
      if (taken.status == RingStatus::kProducerOverflow) {
        FUZZ_CHECK(taken.count == 0 && back.request_consumer() == cons);
        break;
      }
      FUZZ_CHECK(taken.count <= out.size() && taken.count <= size);
      FUZZ_CHECK(taken.count == std::min<std::size_t>(out.size(), prod - cons));
      FUZZ_CHECK(back.request_consumer() == static_cast<RingIndex>(cons + taken.count));
      for (std::size_t i = 0; i < taken.count; ++i) {
        FUZZ_CHECK(std::memcmp(&out[i], &expected[i], sizeof(TxRequest)) == 0);
      }
      break;
    }
    case 4: {
      const RingIndex owed = back.responses_owed();
      const RingIndex prod = back.response_producer();
      std::vector<TxResponse> responses(in.take<std::uint16_t>() % (size + 8));
      for (auto& response : responses) {
        response.id = in.take<std::uint16_t>();
      }
      const std::size_t written = back.push_responses(responses);
      FUZZ_CHECK(written == std::min<std::size_t>(responses.size(), owed));
      FUZZ_CHECK(back.response_producer() == static_cast<RingIndex>(prod + written));
      break;
    }
    case 5: {
      const RingIndex owed = back.responses_owed();
      const bool pushed = back.push_response(TxResponse{});
      FUZZ_CHECK(pushed == (owed != 0));
      break;
    }
    case 6:
      if (in.take<std::uint8_t>() % 2 == 0) {
        back.publish_responses();
      } else {
        (void)back.push_responses_and_check_notify();
      }
      FUZZ_CHECK(page.index(2) == back.response_producer());
      break;
    case 7:
      if (!back.final_check_for_requests()) {
        FUZZ_CHECK(page.index(0) == back.request_consumer());
      }
      break;
  }
  FUZZ_CHECK(back.responses_owed() <= size);
  const auto pending = back.pending_requests();
  if (pending.status == RingStatus::kOk) {
    FUZZ_CHECK(pending.count + back.responses_owed() <= size);
  }
}

void front_step(vifd::fuzz::Bytes& in, Page& page, RxFrontRing& front) {
  const RingIndex size = front.size();
  switch (in.take<std::uint8_t>() % 6) {
    case 0:  // the backend moves rsp_prod anywhere
      page.index(2) = in.take<std::uint32_t>();
      break;
    case 1:
      page.index(2) += in.take<std::uint8_t>();
      break;
    case 2: {
      const std::size_t word = in.take<std::uint16_t>() % page.words.size();
      page.words[word] = in.take<std::uint32_t>();
      break;
    }
    case 3: {
      const RingIndex free = front.free_requests();
      std::vector<RxRequest> requests(in.take<std::uint16_t>() % (size + 8));
      const std::size_t pushed = front.push_requests(requests);
      FUZZ_CHECK(pushed == std::min<std::size_t>(requests.size(), free));
      if (in.take<std::uint8_t>() % 2 == 0) {
        front.publish_requests();
      } else {
        (void)front.push_requests_and_check_notify();
      }
      FUZZ_CHECK(page.index(0) == front.request_producer());
      break;
    }
    case 4: {
      std::vector<RxResponse> out(in.take<std::uint16_t>() % (size + 8));
      const RingIndex cons = front.response_consumer();
      const RingIndex prod = page.index(2);
      std::vector<RxResponse> expected(std::min<std::size_t>(out.size(), size));
      for (std::size_t i = 0; i < expected.size(); ++i) {
        expected[i] =
            slot_bytes<RxResponse>(page, size, cons + static_cast<RingIndex>(i), kRxEntry);
      }
      const auto taken = front.take_responses(out);
      if (taken.status == RingStatus::kProducerOverflow) {
        FUZZ_CHECK(taken.count == 0 && front.response_consumer() == cons);
        break;
      }
      // Responses never outnumber the requests we published.
      FUZZ_CHECK(static_cast<RingIndex>(prod - cons) <=
                 static_cast<RingIndex>(front.request_producer() - cons));
      FUZZ_CHECK(taken.count == std::min<std::size_t>(out.size(), prod - cons));
      for (std::size_t i = 0; i < taken.count; ++i) {
        FUZZ_CHECK(std::memcmp(&out[i], &expected[i], sizeof(RxResponse)) == 0);
      }
      break;
    }
    case 5:
      (void)front.final_check_for_responses();
      break;
  }
  FUZZ_CHECK(front.free_requests() <= size);
  FUZZ_CHECK(static_cast<RingIndex>(front.request_producer() - front.response_consumer()) <= size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vifd::fuzz::Bytes in(data, size);
  // Geometry: any byte count up to four pages (too small ones are refused).
  const std::size_t back_bytes = in.take<std::uint16_t>() % (4 * 4096 + 1);
  const std::size_t front_bytes = in.take<std::uint16_t>() % (4 * 4096 + 1);
  const RingIndex start = in.take<std::uint32_t>();
  Page back_page(back_bytes);
  Page front_page(front_bytes);
  std::optional<TxBackRing> back;
  std::optional<RxFrontRing> front;
  try {
    // The back either attaches fresh or resumes from whatever rsp_prod the
    // page holds (a restart against a hostile frontend).
    back_page.index(2) = start;
    if (in.take<std::uint8_t>() % 2 == 0) {
      back.emplace(back_page.span(back_bytes), start);
    } else {
      back.emplace(TxBackRing::resume(back_page.span(back_bytes)));
    }
    front.emplace(RxFrontRing::init(front_page.span(front_bytes), start));
  } catch (const std::invalid_argument&) {
    FUZZ_CHECK(back_bytes < 64 + kTxEntry || front_bytes < 64 + kRxEntry);
    return 0;
  }
  while (!in.empty()) {
    if (in.take<std::uint8_t>() % 2 == 0) {
      back_step(in, back_page, *back);
    } else {
      front_step(in, front_page, *front);
    }
  }
  return 0;
}
