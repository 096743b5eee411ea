// Views of a Xen shared ring (xen/io/ring.h) for the back and the front end.
//
// The shared memory is laid out exactly as ring.h's `struct xxx_sring`:
//
//   offset 0   req_prod   (written by the front)
//          4   req_event  (written by the back: "wake me at this req_prod")
//          8   rsp_prod   (written by the back)
//         12   rsp_event  (written by the front: "wake me at this rsp_prod")
//         16   pvt[4], __pad[44]
//         64   ring[nr_ents], each slot a union of request and response
//
// nr_ents is the largest power of two that fits (__RING_SIZE), so a ring of
// one or more pages works the same way.
//
// Rules every method follows, because the peer is not trusted:
//  * a shared index is read once into a local and only the local is used;
//  * a request or response is copied out of its slot exactly once, word by
//    word through std::atomic_ref, so the compiler cannot re-read the slot
//    later (the double-fetch bug class of XSA-155); no pointer into the ring
//    is ever handed out;
//  * a producer index that claims more entries than can exist is reported
//    (RingStatus::kProducerOverflow) and nothing is consumed;
//  * the values we publish are remembered privately, so a peer scribbling on
//    our own index fields can only confuse its own notifications.
// Each barrier is the one ring.h's macro uses at the same point; see
// common/protocol/xen_abi.h for how xen_mb/xen_rmb/xen_wmb map to C++ fences.
// Indices are unsigned 32-bit and only ever compared by difference, so every
// method is correct when an index wraps at 2^32.
//
// Data-path methods are noexcept and allocate nothing. Constructors validate
// the geometry and throw std::invalid_argument (control plane).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "common/protocol/xen_abi.h"

namespace vifd::protocol {

using RingIndex = std::uint32_t;  // RING_IDX
static_assert(std::is_same_v<RingIndex, RING_IDX>);

enum class RingStatus : std::uint8_t {
  kOk,
  // The peer's producer index claims more entries than the ring can hold, or
  // moved backwards past what we already consumed (ring.h's
  // RING_REQUEST_PROD_OVERFLOW / RING_RESPONSE_PROD_OVERFLOW). The peer is
  // broken or hostile; nothing was consumed and the caller should disconnect
  // it.
  kProducerOverflow,
};

// Outcome of a take or a pending count: `count` entries (taken or waiting)
// when status is kOk, zero otherwise.
struct TakeResult {
  std::size_t count = 0;
  RingStatus status = RingStatus::kOk;
  friend bool operator==(const TakeResult&, const TakeResult&) = default;
};

// The geometry of one shared ring plus the word-wise accessors every access
// to the shared memory goes through. A non-owning view; copyable.
template <typename Req, typename Rsp>
class SharedRing {
 public:
  static_assert(std::is_trivially_copyable_v<Req> && std::is_trivially_copyable_v<Rsp>);
  // Slots are copied as 32-bit words; every netif/ctrl message qualifies.
  static_assert(sizeof(Req) % sizeof(std::uint32_t) == 0);
  static_assert(sizeof(Rsp) % sizeof(std::uint32_t) == 0);
  static_assert(alignof(Req) <= alignof(std::uint32_t) && alignof(Rsp) <= alignof(std::uint32_t));
  static_assert(std::atomic_ref<std::uint32_t>::required_alignment == alignof(std::uint32_t));

  // sizeof(union { Req req; Rsp rsp; }) as in DEFINE_RING_TYPES.
  static constexpr std::size_t kEntrySize = std::max(sizeof(Req), sizeof(Rsp));

  // __RING_SIZE: the largest power of two number of slots that fits in
  // `bytes` after the 64-byte header; 0 if not even one fits.
  static constexpr RingIndex entries_for_bytes(std::size_t bytes) noexcept {
    if (bytes < kSharedRingHeaderSize + kEntrySize) {
      return 0;
    }
    const std::size_t slots = (bytes - kSharedRingHeaderSize) / kEntrySize;
    return static_cast<RingIndex>(std::bit_floor(std::min<std::size_t>(slots, 0x80000000U)));
  }

  explicit SharedRing(std::span<std::byte> shared)
      : words_(reinterpret_cast<std::uint32_t*>(shared.data())),
        size_(entries_for_bytes(shared.size())) {
    if (reinterpret_cast<std::uintptr_t>(shared.data()) % alignof(std::uint32_t) != 0) {
      throw std::invalid_argument("shared ring memory is not 4-byte aligned");
    }
    if (size_ == 0) {
      throw std::invalid_argument("shared ring of " + std::to_string(shared.size()) +
                                  " bytes holds no slot");
    }
  }

  RingIndex size() const noexcept { return size_; }

  // Relaxed, ordered by the barriers at each use (acquire/release under
  // ThreadSanitizer, which does not see fences: kRingLoadOrder in xen_abi.h).
  RingIndex load(std::size_t field) const noexcept { return word(field).load(kRingLoadOrder); }
  void store(std::size_t field, RingIndex value) const noexcept {
    word(field).store(value, kRingStoreOrder);
  }

  // SHARED_RING_INIT, generalised to start at any index (0 in ring.h).
  void init(RingIndex start) const noexcept {
    store(kReqProd, start);
    store(kRspProd, start);
    store(kReqEvent, start + 1);
    store(kRspEvent, start + 1);
    for (std::size_t i = kRspEvent + 1; i < kSharedRingHeaderSize / sizeof(std::uint32_t); ++i) {
      store(i, 0);
    }
  }

  // Copies the slot for `index` out of shared memory: each word read once.
  template <typename T>
  T copy_out(RingIndex index) const noexcept {
    std::array<std::uint32_t, sizeof(T) / sizeof(std::uint32_t)> words{};
    const std::size_t first = slot_word(index);
    for (std::size_t i = 0; i < words.size(); ++i) {
      words[i] = load(first + i);
    }
    return std::bit_cast<T>(words);
  }

  template <typename T>
  void copy_in(RingIndex index, const T& value) const noexcept {
    const auto words =
        std::bit_cast<std::array<std::uint32_t, sizeof(T) / sizeof(std::uint32_t)>>(value);
    const std::size_t first = slot_word(index);
    for (std::size_t i = 0; i < words.size(); ++i) {
      store(first + i, words[i]);
    }
  }

  // Word positions of the four shared indices (offsets checked against
  // ring.h below).
  static constexpr std::size_t kReqProd = 0;
  static constexpr std::size_t kReqEvent = 1;
  static constexpr std::size_t kRspProd = 2;
  static constexpr std::size_t kRspEvent = 3;

 private:
  std::atomic_ref<std::uint32_t> word(std::size_t n) const noexcept {
    return std::atomic_ref<std::uint32_t>(words_[n]);
  }
  std::size_t slot_word(RingIndex index) const noexcept {
    return (kSharedRingHeaderSize + (index & (size_ - 1)) * kEntrySize) / sizeof(std::uint32_t);
  }

  std::uint32_t* words_;
  RingIndex size_;
};

static_assert(offsetof(netif_tx_sring, req_prod) ==
              4 * SharedRing<TxRequest, TxResponse>::kReqProd);
static_assert(offsetof(netif_tx_sring, req_event) ==
              4 * SharedRing<TxRequest, TxResponse>::kReqEvent);
static_assert(offsetof(netif_tx_sring, rsp_prod) ==
              4 * SharedRing<TxRequest, TxResponse>::kRspProd);
static_assert(offsetof(netif_tx_sring, rsp_event) ==
              4 * SharedRing<TxRequest, TxResponse>::kRspEvent);
static_assert(SharedRing<TxRequest, TxResponse>::kEntrySize == sizeof(netif_tx_sring_entry));
static_assert(SharedRing<RxRequest, RxResponse>::kEntrySize == sizeof(netif_rx_sring_entry));
static_assert(SharedRing<CtrlRequest, CtrlResponse>::kEntrySize ==
              sizeof(xen_netif_ctrl_sring_entry));
static_assert(SharedRing<TxRequest, TxResponse>::entries_for_bytes(kPageSize) ==
              kTxRingSizeOnePage);
static_assert(SharedRing<RxRequest, RxResponse>::entries_for_bytes(kPageSize) ==
              kRxRingSizeOnePage);
static_assert(SharedRing<CtrlRequest, CtrlResponse>::entries_for_bytes(kPageSize) ==
              kCtrlRingSizeOnePage);
static_assert(SharedRing<TxRequest, TxResponse>::entries_for_bytes(2 * kPageSize) ==
              __CONST_RING_SIZE(netif_tx, 2 * kPageSize));
static_assert(SharedRing<RxRequest, RxResponse>::entries_for_bytes(16 * kPageSize) ==
              __CONST_RING_SIZE(netif_rx, 16 * kPageSize));

// The back end: takes requests, puts responses (BACK_RING_* in ring.h).
template <typename Req, typename Rsp>
class BackRing {
 public:
  // BACK_RING_ATTACH: private indices start at `start` (0 = BACK_RING_INIT).
  // The front end initialises the shared ring; the back never does.
  explicit BackRing(std::span<std::byte> shared, RingIndex start = 0)
      : ring_(shared), req_cons_(start), rsp_prod_pvt_(start), rsp_prod_published_(start) {}

  // Re-attaches after a backend restart, continuing from the responses
  // already published (what Linux netback does on connect). Requests a
  // previous instance consumed but never answered are taken again.
  static BackRing resume(std::span<std::byte> shared) {
    const SharedRing<Req, Rsp> ring(shared);
    return BackRing(shared, ring.load(SharedRing<Req, Rsp>::kRspProd));
  }

  RingIndex size() const noexcept { return ring_.size(); }
  RingIndex request_consumer() const noexcept { return req_cons_; }
  RingIndex response_producer() const noexcept { return rsp_prod_pvt_; }
  // Requests consumed but not yet answered: the number of responses that
  // push_response() will still accept.
  RingIndex responses_owed() const noexcept { return req_cons_ - rsp_prod_pvt_; }

  // Requests waiting on the ring, without consuming them.
  TakeResult pending_requests() const noexcept {
    const RingIndex prod = ring_.load(Shared::kReqProd);
    if (producer_overflows(prod)) {
      return {0, RingStatus::kProducerOverflow};
    }
    return {prod - req_cons_, RingStatus::kOk};
  }

  // Copies up to out.size() pending requests into `out` and consumes them.
  TakeResult take_requests(std::span<Req> out) noexcept {
    const RingIndex prod = ring_.load(Shared::kReqProd);
    read_barrier(); /* Ensure we see queued requests up to 'prod'. */
    if (producer_overflows(prod)) {
      return {0, RingStatus::kProducerOverflow};
    }
    const std::size_t count = std::min<std::size_t>(prod - req_cons_, out.size());
    for (std::size_t i = 0; i < count; ++i) {
      out[i] = ring_.template copy_out<Req>(req_cons_ + static_cast<RingIndex>(i));
    }
    req_cons_ += static_cast<RingIndex>(count);
    return {count, RingStatus::kOk};
  }

  // Writes a response into the next slot; the front sees it only after
  // publish_responses() or push_responses_and_check_notify(). Returns false
  // (and writes nothing) when no consumed request is waiting for an answer:
  // a response slot is always the slot of a consumed request, so writing
  // past req_cons would overwrite requests not yet read.
  [[nodiscard]] bool push_response(const Rsp& response) noexcept {
    if (responses_owed() == 0) {
      return false;
    }
    ring_.copy_in(rsp_prod_pvt_, response);
    ++rsp_prod_pvt_;
    return true;
  }

  // push_response() for each element; returns how many were written.
  [[nodiscard]] std::size_t push_responses(std::span<const Rsp> responses) noexcept {
    const std::size_t count = std::min<std::size_t>(responses.size(), responses_owed());
    for (std::size_t i = 0; i < count; ++i) {
      ring_.copy_in(rsp_prod_pvt_ + static_cast<RingIndex>(i), responses[i]);
    }
    rsp_prod_pvt_ += static_cast<RingIndex>(count);
    return count;
  }

  // RING_PUSH_RESPONSES: publish without deciding about a notification.
  void publish_responses() noexcept {
    write_barrier(); /* Front sees responses before the updated producer index. */
    ring_.store(Shared::kRspProd, rsp_prod_pvt_);
    rsp_prod_published_ = rsp_prod_pvt_;
  }

  // RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: publishes the written responses
  // and returns true when the front asked to be woken for one of them
  // (rsp_event lies in (old rsp_prod, new rsp_prod]).
  [[nodiscard]] bool push_responses_and_check_notify() noexcept {
    const RingIndex old_prod = rsp_prod_published_;
    const RingIndex new_prod = rsp_prod_pvt_;
    write_barrier(); /* Front sees responses before the updated producer index. */
    ring_.store(Shared::kRspProd, new_prod);
    rsp_prod_published_ = new_prod;
    full_barrier(); /* Front sees the new rsp_prod before we read rsp_event. */
    const RingIndex event = ring_.load(Shared::kRspEvent);
    return static_cast<RingIndex>(new_prod - event) < static_cast<RingIndex>(new_prod - old_prod);
  }

  // RING_FINAL_CHECK_FOR_REQUESTS: returns true if requests are waiting;
  // otherwise asks the front to notify on the next request and checks again,
  // closing the race with a request pushed in between. Call before sleeping.
  [[nodiscard]] bool final_check_for_requests() noexcept {
    if (ring_.load(Shared::kReqProd) != req_cons_) {
      return true;
    }
    ring_.store(Shared::kReqEvent, req_cons_ + 1);
    full_barrier(); /* Front sees the new req_event before we re-read req_prod. */
    return ring_.load(Shared::kReqProd) != req_cons_;
  }

  // The same for `wanted` requests (netback's xenvif_rx_ring_slots_available):
  // true if that many wait; otherwise asks the front to notify once they are
  // there, not on each one, and checks again.
  [[nodiscard]] bool final_check_for_requests(RingIndex wanted) noexcept {
    if (wanted <= 1) {
      return final_check_for_requests();
    }
    if (static_cast<RingIndex>(ring_.load(Shared::kReqProd) - req_cons_) >= wanted) {
      return true;
    }
    ring_.store(Shared::kReqEvent, req_cons_ + wanted);
    full_barrier(); /* Front sees the new req_event before we re-read req_prod. */
    return static_cast<RingIndex>(ring_.load(Shared::kReqProd) - req_cons_) >= wanted;
  }

 private:
  using Shared = SharedRing<Req, Rsp>;

  // An honest front never has more than size() requests between our
  // response producer and its request producer, and never moves req_prod
  // back past requests we already took.
  bool producer_overflows(RingIndex prod) const noexcept {
    const RingIndex in_flight = prod - rsp_prod_pvt_;
    const RingIndex unconsumed = prod - req_cons_;
    return in_flight > ring_.size() || unconsumed > in_flight;
  }

  Shared ring_;
  RingIndex req_cons_;
  RingIndex rsp_prod_pvt_;
  RingIndex rsp_prod_published_;
};

// The front end: puts requests, takes responses (FRONT_RING_* in ring.h).
template <typename Req, typename Rsp>
class FrontRing {
 public:
  // FRONT_RING_ATTACH to an already initialised shared ring.
  explicit FrontRing(std::span<std::byte> shared, RingIndex start = 0)
      : ring_(shared), req_prod_pvt_(start), req_prod_published_(start), rsp_cons_(start) {}

  // SHARED_RING_INIT + FRONT_RING_INIT (XEN_FRONT_RING_INIT) on fresh memory.
  // `start` is 0 in ring.h; any value works since indices wrap.
  static FrontRing init(std::span<std::byte> shared, RingIndex start = 0) {
    const SharedRing<Req, Rsp> ring(shared);
    ring.init(start);
    return FrontRing(shared, start);
  }

  RingIndex size() const noexcept { return ring_.size(); }
  RingIndex request_producer() const noexcept { return req_prod_pvt_; }
  RingIndex response_consumer() const noexcept { return rsp_cons_; }
  // RING_FREE_REQUESTS: slots neither holding a request nor an unread response.
  RingIndex free_requests() const noexcept { return ring_.size() - (req_prod_pvt_ - rsp_cons_); }
  bool full() const noexcept { return free_requests() == 0; }

  // Writes a request into the next free slot; the back sees it only after
  // publish_requests() or push_requests_and_check_notify(). Returns false
  // when the ring is full.
  [[nodiscard]] bool push_request(const Req& request) noexcept {
    if (full()) {
      return false;
    }
    ring_.copy_in(req_prod_pvt_, request);
    ++req_prod_pvt_;
    return true;
  }

  // push_request() for each element; returns how many fitted.
  [[nodiscard]] std::size_t push_requests(std::span<const Req> requests) noexcept {
    const std::size_t count = std::min<std::size_t>(requests.size(), free_requests());
    for (std::size_t i = 0; i < count; ++i) {
      ring_.copy_in(req_prod_pvt_ + static_cast<RingIndex>(i), requests[i]);
    }
    req_prod_pvt_ += static_cast<RingIndex>(count);
    return count;
  }

  // RING_PUSH_REQUESTS.
  void publish_requests() noexcept {
    write_barrier(); /* Back sees requests before the updated producer index. */
    ring_.store(Shared::kReqProd, req_prod_pvt_);
    req_prod_published_ = req_prod_pvt_;
  }

  // RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publishes the written requests and
  // returns true when the back asked to be woken for one of them.
  [[nodiscard]] bool push_requests_and_check_notify() noexcept {
    const RingIndex old_prod = req_prod_published_;
    const RingIndex new_prod = req_prod_pvt_;
    write_barrier(); /* Back sees requests before the updated producer index. */
    ring_.store(Shared::kReqProd, new_prod);
    req_prod_published_ = new_prod;
    full_barrier(); /* Back sees the new req_prod before we read req_event. */
    const RingIndex event = ring_.load(Shared::kReqEvent);
    return static_cast<RingIndex>(new_prod - event) < static_cast<RingIndex>(new_prod - old_prod);
  }

  // Responses waiting on the ring, without consuming them.
  TakeResult pending_responses() const noexcept {
    const RingIndex prod = ring_.load(Shared::kRspProd);
    if (producer_overflows(prod)) {
      return {0, RingStatus::kProducerOverflow};
    }
    return {prod - rsp_cons_, RingStatus::kOk};
  }

  // Copies up to out.size() pending responses into `out` and consumes them,
  // freeing their slots for new requests.
  TakeResult take_responses(std::span<Rsp> out) noexcept {
    const RingIndex prod = ring_.load(Shared::kRspProd);
    read_barrier(); /* Ensure we see queued responses up to 'prod'. */
    if (producer_overflows(prod)) {
      return {0, RingStatus::kProducerOverflow};
    }
    const std::size_t count = std::min<std::size_t>(prod - rsp_cons_, out.size());
    for (std::size_t i = 0; i < count; ++i) {
      out[i] = ring_.template copy_out<Rsp>(rsp_cons_ + static_cast<RingIndex>(i));
    }
    rsp_cons_ += static_cast<RingIndex>(count);
    return {count, RingStatus::kOk};
  }

  // RING_FINAL_CHECK_FOR_RESPONSES: returns true if responses are waiting;
  // otherwise asks the back to notify on the next response and checks again.
  [[nodiscard]] bool final_check_for_responses() noexcept {
    if (ring_.load(Shared::kRspProd) != rsp_cons_) {
      return true;
    }
    ring_.store(Shared::kRspEvent, rsp_cons_ + 1);
    full_barrier(); /* Back sees the new rsp_event before we re-read rsp_prod. */
    return ring_.load(Shared::kRspProd) != rsp_cons_;
  }

  // RING_FINAL_CHECK_FOR_RESPONSES for a batch (the event index old Linux
  // netfront set for TX completions): asks the back to notify once `count`
  // (at least 1) more responses have arrived, and returns true when that many
  // are already waiting, since no notification will come for those. With
  // `count` at most the requests outstanding, a producer beyond what we
  // published also reads as true: take_responses() then reports it.
  [[nodiscard]] bool final_check_for_responses(RingIndex count) noexcept {
    count = std::max<RingIndex>(count, 1);
    if (static_cast<RingIndex>(ring_.load(Shared::kRspProd) - rsp_cons_) >= count) {
      return true;
    }
    ring_.store(Shared::kRspEvent, rsp_cons_ + count);
    full_barrier(); /* Back sees the new rsp_event before we re-read rsp_prod. */
    return static_cast<RingIndex>(ring_.load(Shared::kRspProd) - rsp_cons_) >= count;
  }
  // Requests published and not yet answered.
  RingIndex outstanding_requests() const noexcept { return req_prod_published_ - rsp_cons_; }

 private:
  using Shared = SharedRing<Req, Rsp>;

  // Stricter than RING_RESPONSE_PROD_OVERFLOW (prod - rsp_cons > size): an
  // honest back answers only requests we published, so responses can never
  // outnumber our published requests not yet answered.
  bool producer_overflows(RingIndex prod) const noexcept {
    return static_cast<RingIndex>(prod - rsp_cons_) >
           static_cast<RingIndex>(req_prod_published_ - rsp_cons_);
  }

  Shared ring_;
  RingIndex req_prod_pvt_;
  RingIndex req_prod_published_;
  RingIndex rsp_cons_;
};

using TxBackRing = BackRing<TxRequest, TxResponse>;
using TxFrontRing = FrontRing<TxRequest, TxResponse>;
using RxBackRing = BackRing<RxRequest, RxResponse>;
using RxFrontRing = FrontRing<RxRequest, RxResponse>;
using CtrlBackRing = BackRing<CtrlRequest, CtrlResponse>;
using CtrlFrontRing = FrontRing<CtrlRequest, CtrlResponse>;

}  // namespace vifd::protocol
