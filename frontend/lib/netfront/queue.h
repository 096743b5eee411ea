// One netif queue of the userspace netfront: a TX and an RX shared ring,
// their event channel(s), and the buffer pools behind them.
//
// Zero copy, grants reused: every page the backend ever sees is shared once
// when the queue is created and stays shared until it is destroyed.
//  * TX: a pool of ring-size pages granted read-only. TX request id N always
//    names pool page N; a frame occupies one page per slot, from offset 0.
//    reserve_tx() hands out writable spans of free pool pages so a readv()
//    from a TAP lands straight in granted memory; commit_tx() turns them into
//    requests. The page is free again when the backend answers its id.
//  * RX: ring-size pages granted writable, all posted at creation (as Linux
//    netfront posts all 256). The request at ring position P carries id
//    P mod size and page P mod size; since buffers are re-posted in the order
//    they come back, that invariant holds for the life of the ring and lets
//    every response be checked against the one request it may answer.
//    Received frames are handed out as spans INTO those pages, then the pages
//    are re-posted in one batch per poll.
//
// The backend is checked on every response, trusted or not: an id out of
// range or not outstanding, an unknown status, offset + size beyond the page,
// a packet of too many slots (error slots count), an extra-info chain longer
// than one slot per extra type, or a producer index beyond what we posted
// make the queue `failed()`; the owner (Netfront) then disconnects the
// device. Every response is copied out of the ring before it is looked at,
// and only indices checked against the ring are used. Nothing on these paths
// throws or allocates.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/net/packet_meta.h"
#include "common/platform/platform.h"
#include "common/protocol/ring.h"
#include "frontend/lib/netfront/shared_pages.h"
#include "frontend/lib/netfront/xenbus.h"

namespace vifd::frontend {

// What a queue may put on the wire, from the backend's offer.
struct TxCapabilities {
  bool sg = false;         // multi-slot TX packets
  bool gso_tcpv4 = false;  // GSO extra-info slots of these types
  bool gso_tcpv6 = false;
};

enum class TxStatus : std::uint8_t {
  kOk,
  kNoSpace,             // not enough free pool pages or ring slots right now
  kBadLength,           // empty, above 65535 bytes, or larger than the reservation
  kNeedsScatterGather,  // more than one page, but the backend has no feature-sg
  kGsoNotNegotiated,    // GSO type the backend did not offer
  kBadMeta,             // metadata that netif cannot express
  kFailed,              // the queue is failed (see failed())
};
const char* to_string(TxStatus status) noexcept;

// A received frame: spans into the queue's shared RX pages, valid only
// during the handler call (the pages are re-posted afterwards). The backend
// keeps write access to those pages: a consumer must copy whatever it
// inspects and forward that copy (TapPump copies the headers it parses), or
// the bytes it checked may not be the bytes it delivers. Length and metadata
// come from responses already copied out of the ring.
struct RxFrame {
  std::span<const std::span<std::uint8_t>> segments;
  std::size_t length = 0;
  net::PacketMeta meta;  // checksum partial frames are not located yet
};
using RxHandler = std::function<void(const RxFrame&)>;

struct QueueStats {
  std::uint64_t tx_packets = 0;
  std::uint64_t tx_bytes = 0;
  std::uint64_t tx_error_responses = 0;  // NETIF_RSP_ERROR / DROPPED from the backend
  // NETIF_RSP_NULL answering a data slot (not an extra-info slot): the page
  // is freed all the same, so the pool cannot leak.
  std::uint64_t tx_null_responses = 0;
  std::uint64_t rx_packets = 0;
  std::uint64_t rx_bytes = 0;
  // Every frame not delivered: error responses, bad metadata and the two
  // causes below.
  std::uint64_t rx_dropped = 0;
  std::uint64_t rx_too_long = 0;   // slots adding up to more than kMaxFrame bytes
  std::uint64_t rx_bad_extra = 0;  // extra-info slots of unknown or repeated type
  // Frames that came with an XDP extra naming the headroom their first slot
  // starts at (the backend honoured xdp-headroom); one naming another
  // offset is a bad extra.
  std::uint64_t rx_headroom_packets = 0;
  std::uint64_t notifications_sent = 0;
  std::uint64_t events_received = 0;
};

struct PollResult {
  bool more_work = false;  // responses arrived after the final check: poll again
  bool failed = false;
};

class NetfrontQueue {
 public:
  static constexpr std::size_t kRingSize = protocol::kTxRingSizeOnePage;
  static_assert(kRingSize == protocol::kRxRingSizeOnePage);
  // Largest netif packet: size is a 16-bit field.
  static constexpr std::size_t kMaxFrame = protocol::kMaxTxSize;
  // A 64 KiB frame in 4 KiB slots, with room for a backend that does not fill
  // every slot; more than this is a broken backend.
  // Data and error slots together: an error slot still consumes a buffer.
  static constexpr std::size_t kMaxRxSlots = 32;
  // Extra-info slots of one frame: each type at most once (a repeated type
  // drops the frame); a longer chain is a backend that never clears
  // XEN_NETIF_EXTRA_FLAG_MORE.
  static constexpr std::size_t kMaxRxExtras = protocol::kExtraTypeMax - 1;

  // Shares the rings and pools with `backend`, initialises the rings, binds
  // one unbound event channel (two when `split`) and posts every RX buffer.
  // Throws PlatformError naming the domain on failure (nothing stays shared).
  NetfrontQueue(platform::Platform& platform, platform::GrantShare& share, platform::DomId backend,
                unsigned index, bool split, const TxCapabilities& tx);
  ~NetfrontQueue();
  NetfrontQueue(const NetfrontQueue&) = delete;
  NetfrontQueue& operator=(const NetfrontQueue&) = delete;

  unsigned index() const noexcept { return index_; }
  QueueKeys keys() const noexcept;
  // The pool pages' grants (kRingSize each), for static grant mappings.
  platform::GrantRef tx_pool_ref(std::size_t page) const noexcept { return tx_pool_->ref(page); }
  platform::GrantRef rx_pool_ref(std::size_t page) const noexcept { return rx_pool_->ref(page); }
  // Readable when an event arrived; call poll().
  int event_fd() const noexcept { return events_->fd(); }

  // ---- TX --------------------------------------------------------------
  // Reserves pool pages for a frame of up to max_bytes (at most kMaxFrame)
  // and returns them as writable spans, one per page, empty when there is not
  // enough room (pool or ring; a GSO extra slot is always kept free). Any
  // earlier reservation is released first.
  std::span<const std::span<std::uint8_t>> reserve_tx(std::size_t max_bytes) noexcept;
  // Queues the first `length` bytes of the reservation as one packet and
  // releases the unused pages. The backend sees it at the next flush_tx().
  TxStatus commit_tx(std::size_t length, const net::PacketMeta& meta) noexcept;
  void release_tx() noexcept;
  // reserve_tx + copy + commit_tx in one: for callers with a frame in hand.
  TxStatus send(std::span<const std::uint8_t> frame, const net::PacketMeta& meta) noexcept;
  // Publishes queued requests; notifies the backend when the ring asks for it.
  void flush_tx() noexcept;
  // Free pool pages: a frame of N bytes needs ceil(N / 4096).
  std::size_t tx_free_pages() const noexcept { return tx_free_.size(); }
  bool tx_can_reserve(std::size_t max_bytes) const noexcept;

  // ---- events and responses ---------------------------------------------
  // Drains event notifications (only when `events`: the caller saw
  // event_fd() readable; reading it otherwise is a system call that finds
  // nothing), reaps TX responses, hands each complete RX frame to `handler`,
  // re-posts the consumed RX pages (one notify per batch) and re-arms both
  // rings: RX for the next response, TX for when half of the requests in
  // flight are answered (see tx_event_batch()).
  PollResult poll(const RxHandler& handler, bool events = true) noexcept;
  // How many TX responses the backend is asked to produce before it
  // notifies us: half of what is in flight, at least 1. TX responses only
  // free pool pages, which every poll reaps anyway, so a stream costs one
  // notification per half ring, not one per batch, and the TAP (not read
  // while the pool is short) still gets room back before the ring drains.
  protocol::RingIndex tx_event_batch() const noexcept;

  bool failed() const noexcept { return !failure_.empty(); }
  const std::string& failure() const noexcept { return failure_; }
  const QueueStats& stats() const noexcept { return stats_; }
  // Ring indices, for diagnostics and tests.
  protocol::RingIndex tx_request_producer() const noexcept { return tx_ring_.request_producer(); }
  protocol::RingIndex rx_request_producer() const noexcept { return rx_ring_.request_producer(); }

 private:
  void fail(std::string reason) noexcept;
  void drain_events() noexcept;
  void reap_tx() noexcept;
  void receive(const RxHandler& handler) noexcept;
  void finish_rx_frame(const RxHandler& handler) noexcept;
  void repost_rx() noexcept;
  void notify(platform::EvtchnPort port) noexcept;

  unsigned index_;
  platform::DomId backend_;
  TxCapabilities tx_caps_;
  std::unique_ptr<platform::EventChannels> events_;
  platform::EvtchnPort tx_port_ = 0;
  platform::EvtchnPort rx_port_ = 0;
  bool split_ = false;
  // EventChannels::readable_exactly_while_pending(): then one port per
  // wake-up is enough and the read that would find nothing is saved;
  // poll() reports the fd again for a second port. Otherwise (the
  // simulator's fd stays readable after the last port was taken) events
  // are drained until none is left.
  bool exact_readiness_ = false;
  std::unique_ptr<SharedPages> rings_;    // page 0: TX ring, page 1: RX ring
  std::unique_ptr<SharedPages> tx_pool_;  // read-only for the backend
  std::unique_ptr<SharedPages> rx_pool_;  // writable for the backend
  protocol::TxFrontRing tx_ring_;
  protocol::RxFrontRing rx_ring_;

  // TX: ids of free pool pages (a stack), which ids are in flight, and the
  // current reservation.
  std::vector<std::uint16_t> tx_free_;
  std::array<bool, kRingSize> tx_in_flight_{};
  std::vector<std::uint16_t> tx_reserved_;
  std::vector<std::span<std::uint8_t>> tx_reserved_spans_;
  std::array<protocol::TxResponse, kRingSize> tx_responses_{};
  // Extra-info slots published and not yet answered: their NETIF_RSP_NULL
  // answers carry no id, every other response names a pool page.
  std::size_t tx_extras_in_flight_ = 0;

  // RX: the frame being assembled (possibly across polls), positions
  // consumed but not yet re-posted, and the response batch.
  std::array<protocol::RxResponse, kRingSize> rx_responses_{};
  std::vector<std::span<std::uint8_t>> rx_segments_;
  std::size_t rx_frame_length_ = 0;
  std::uint16_t rx_frame_flags_ = 0;
  bool rx_frame_open_ = false;
  bool rx_frame_bad_ = false;
  bool rx_expect_extra_ = false;
  bool rx_have_gso_ = false;
  std::size_t rx_frame_slots_ = 0;     // data and error slots of the open frame
  std::size_t rx_frame_extras_ = 0;    // extra-info slots of the open frame
  std::uint32_t rx_extra_types_ = 0;   // bit per extra type seen in the open frame
  std::uint16_t rx_first_offset_ = 0;  // the open frame's first slot's offset
  protocol::ExtraInfo rx_gso_extra_{};
  protocol::RingIndex rx_consumed_ = 0;     // responses taken
  protocol::RingIndex rx_frame_start_ = 0;  // first position of the open frame
  protocol::RingIndex rx_reposted_ = 0;     // positions re-posted so far

  QueueStats stats_;
  std::string failure_;
};

}  // namespace vifd::frontend
