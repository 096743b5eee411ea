// The queue thread's state and loop (internal to backend/lib/datapath).
//
// Everything here is owned by the queue thread between start() and stop():
// the rings, the staging copies of requests, the buffers, the grant-copy
// segment arrays. All of it is allocated in the constructor (control plane),
// sized from the ring sizes, so the loop never allocates.
//
// Files: queue.cc (lifecycle, poll loop, events), guest_tx.cc (guest TX:
// parse, grant copy to the TAP or forward through the switch),
// guest_rx.cc (guest RX: TAP and switch frames into posted buffers).
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backend/lib/datapath/credit_limiter.h"
#include "backend/lib/datapath/gref_table.h"
#include "backend/lib/datapath/multicast_filter.h"
#include "backend/lib/datapath/queue.h"
#include "backend/lib/datapath/queue_stats.h"
#include "backend/lib/datapath/switch.h"
#include "backend/lib/datapath/tx_parser.h"
#include "common/net/packet_meta.h"
#include "common/platform/types.h"
#include "common/protocol/ring.h"

namespace vifd::backend::detail {

using Clock = std::chrono::steady_clock;

// A message at most every `interval` per queue, so a hostile guest cannot
// flood the log (netback's net_ratelimit()).
class LogLimiter {
 public:
  bool allow(Clock::time_point now) noexcept {
    if (now < next_) {
      ++suppressed_;
      return false;
    }
    next_ = now + std::chrono::seconds(1);
    return true;
  }
  std::uint64_t take_suppressed() noexcept { return std::exchange(suppressed_, 0); }

 private:
  Clock::time_point next_{};
  std::uint64_t suppressed_ = 0;
};

// The TX arena: a batch's packets, up to eight of 64 KiB, or a whole ring of
// 1514-byte ones (a ring of full pages would take 1 MiB per queue).
inline constexpr std::size_t kTxArenaBytes = std::size_t{512} * 1024;

// A guest TX packet of the current batch.
struct TxWork {
  enum class Route : std::uint8_t { kTap, kForward, kDrop };
  std::size_t position = 0;  // of its first request in the staging array
  TxPacket packet;
  Route route = Route::kTap;
  std::uint32_t arena_offset = 0;
  // Bytes at the start of the frame the switch already copied into the arena
  // (the Ethernet header and what flow steering looks at).
  std::uint16_t header_copied = 0;
  bool copy_failed = false;
  SwitchEndpoint* destination = nullptr;
  // While routing: the receiving port (in topology_) and its hash snapshot.
  const Switch::Port* receiver = nullptr;
  std::shared_ptr<const HashSnapshot> hash;
  // A forwarded packet's offload metadata, validated on the header copy.
  net::PacketMeta meta{};
};

// How long answers may wait behind an earlier request still unanswered (a
// forwarded frame the receiver has not taken yet) before they are published
// out of order. A forward normally completes within microseconds.
inline constexpr std::chrono::milliseconds kTxHoldLimit{10};

// A queue busy with its rings skips poll(); it still looks at its other
// sources (TAP, event channel, switch wake-up) at least this often, with a
// poll() that does not wait.
inline constexpr std::chrono::microseconds kBusyPollInterval{200};

// The answers a forwarded packet still owes, kept until its completion.
struct PendingForward {
  std::array<std::uint16_t, kMaxTxDataSlots> ids{};
  std::uint8_t data_slots = 0;
  std::uint8_t extra_count = 0;
  std::uint32_t length = 0;
  PortTag receiver = 0;                 // whose share of our TX ring it counts against
  protocol::RingIndex first_index = 0;  // ring index of the packet's first request
  // The static-mapping table whose pages the descriptor points into, or 0.
  std::uint64_t gref_generation = 0;
  bool in_use = false;
};

// TAP frames start at multiples of this in the RX pool.
inline constexpr std::size_t kRxPoolAlignment = 64;

// A frame waiting for guest RX buffers: a TAP frame in the RX pool at
// `buffer`, or a switch descriptor in descriptor storage `slot`. Each takes
// one of the backlog's slots.
struct RxItem {
  enum class Kind : std::uint8_t { kTap, kForward };
  Kind kind = Kind::kTap;
  std::uint32_t slot = 0;
  std::uint32_t length = 0;
  net::PacketMeta meta{};
  Clock::time_point enqueued{};  // the drain deadline counts from here
  std::uint32_t buffer = 0;      // kTap: where its bytes are in the RX pool
};

// What one frame of an RX batch became: its responses and its outcome.
struct RxDelivery {
  RxItem item;
  std::uint32_t first_response = 0;
  std::uint32_t response_count = 0;
  std::uint32_t first_segment = 0;
  std::uint32_t segment_count = 0;
};

class QueueEngine {
 public:
  explicit QueueEngine(QueueSetup setup);
  ~QueueEngine();

  void start();
  void stop();
  bool running() const noexcept { return thread_.joinable(); }
  bool failed() const noexcept { return fatal_.load(std::memory_order_acquire); }
  QueueStats stats() const noexcept { return counters_.snapshot(setup_.queue_index); }

 private:
  // ---- loop (queue.cc) ----
  void run() noexcept;
  // Takes the delivered ports; returns how many were delivered.
  std::size_t drain_events() noexcept;
  void unmask_handled() noexcept;
  // After a turn: unmask the delivered ports now, or later when the events
  // brought no work (spurious-event backoff).
  void settle_events(bool fresh_events, Clock::time_point now) noexcept;
  // Whether the frontend produced requests on either ring since `tx_seen` /
  // `rx_seen` (updated); a producer beyond the ring is fatal.
  bool guest_posted(protocol::RingIndex& tx_seen, protocol::RingIndex& rx_seen) noexcept;
  void send_notifications() noexcept;
  int poll_timeout(Clock::time_point now) const noexcept;
  void refresh_topology() noexcept;
  void shutdown_switch() noexcept;
  void fatal(std::string_view reason) noexcept;
  void publish_ring_indices() noexcept;
  // The batch's one grant-copy call; segments whose foreign sides are all
  // statically mapped pages of our frontend are served by memcpy instead.
  int grant_copy(std::span<platform::GrantCopySegment> segments) noexcept;
  int platform_copy(std::span<platform::GrantCopySegment> segments) noexcept;
  // Turns a foreign side naming a mapped page of our frontend into its
  // address in vifd; false (ptr untouched) when it is not one.
  bool resolve_mapped(platform::GrantCopyPtr& ptr, bool write, std::uint16_t len) const noexcept;
  // The address of `size` bytes at `offset` of our frontend's grant `ref`
  // when it is mapped statically, else nullptr.
  const std::uint8_t* mapped_bytes(platform::GrantRef ref, std::uint16_t offset,
                                   std::uint16_t size) const noexcept;
  // Top of a loop turn: takes the newest static-mapping table and
  // acknowledges it once nothing of older tables is in flight.
  void adopt_static_grants() noexcept;
  // Tells the control plane the adopted table is the only one in use, once
  // no forwarded frame points into an older one.
  void acknowledge_static_grants() noexcept;

  // ---- guest TX (guest_tx.cc) ----
  // One batch; returns true when more requests are ready to be processed now.
  bool tx_round(Clock::time_point now) noexcept;
  bool tx_stage_requests() noexcept;
  void tx_respond(std::size_t position, const TxPacket& packet, std::int16_t status) noexcept;
  // Records the answer to the request at ring index `index`; published by
  // tx_flush_responses() once every earlier request is answered too (or
  // kTxHoldLimit after it was held back).
  void tx_answer(protocol::RingIndex index, std::uint16_t id, std::int16_t status) noexcept;
  // Answers the `slots` requests of one packet from ring index `first`:
  // position 0 and the data slots after the `extra_count` extra-info slots
  // with `status` and the id id_at(position) gives, the extra-info slots
  // with NETIF_RSP_NULL (netback's make_tx_response for extra_count), which
  // frontends skip.
  template <typename IdAt>
  void tx_answer_slots(protocol::RingIndex first, std::size_t slots, std::size_t extra_count,
                       std::int16_t status, IdAt id_at) noexcept {
    for (std::size_t k = 0; k < slots; ++k) {
      const auto index = first + static_cast<protocol::RingIndex>(k);
      if (k != 0 && k <= extra_count) {
        tx_answer(index, 0, protocol::kRspNull);
      } else {
        tx_answer(index, id_at(k), status);
      }
    }
  }
  void tx_handle_multicast(std::size_t position, const TxPacket& packet) noexcept;
  void tx_choose_receive_queues(std::size_t work_count) noexcept;
  void tx_route(std::size_t work_count) noexcept;
  // Copies the start of packets into the arena, up to `bytes` each: every
  // packet still headed for the TAP, or (forward_only) each forwarded one
  // whose checks or steering need more than it has.
  void tx_peek(std::size_t work_count, std::size_t bytes, bool forward_only) noexcept;
  // The switch's admission of a peeked packet (source MAC, `ip`); false
  // when it was dropped, counted and answered.
  bool tx_admit(TxWork& work) noexcept;
  // The checks a TAP-bound frame gets, plus the receiver's MTU and
  // features, on the header copy; may send the packet to the TAP instead or
  // drop it.
  void tx_check_forward(TxWork& work) noexcept;
  void tx_drop(TxWork& work, DropReason reason, std::int16_t status) noexcept;
  bool tx_forward(TxWork& work) noexcept;
  void tx_to_tap(std::size_t work_count) noexcept;
  void tx_process_completions() noexcept;
  // Records the answers of the forwarded frames completed so far and gives
  // their slots back to the receivers' shares; publishes nothing.
  void tx_take_completions() noexcept;
  // Publishes the answers due; `force` (stopping) publishes every answer.
  void tx_flush_responses(bool force = false) noexcept;

  // ---- guest RX (guest_rx.cc) ----
  void rx_ingest() noexcept;
  void rx_ingest_switch() noexcept;
  // Reads the TAP until it is empty or the budget is spent; true when
  // frames may be left in it.
  bool rx_ingest_tap() noexcept;
  bool rx_accepts(const RxItem& item, DropReason& reason) const noexcept;
  // Data slots of a frame of `length` bytes after rx_headroom_.
  std::uint32_t rx_data_slots(std::uint32_t length) const noexcept;
  std::uint32_t rx_slots_needed(const RxItem& item) const noexcept;
  bool rx_take_requests(std::size_t needed) noexcept;
  // RX requests the backlog's head still needs beyond those taken (at
  // least 1); the backlog must not be empty.
  protocol::RingIndex rx_requests_wanted() const noexcept;
  void rx_deliver(Clock::time_point now) noexcept;
  void rx_build(RxDelivery& delivery) noexcept;
  // Records a delivered forwarded frame in the captures of its sender's and
  // this vif's ports (Switch::capturing() said there are some).
  void rx_capture(const RxItem& item) noexcept;
  void rx_release(const RxItem& item, ForwardResult result) noexcept;
  bool rx_backlog_room(std::uint32_t length) const noexcept;
  void rx_backlog_push(const RxItem& item) noexcept;
  RxItem rx_backlog_pop() noexcept;
  void rx_drop_expired(Clock::time_point now) noexcept;
  void rx_flush_backlog(DropReason reason) noexcept;
  void rx_drop_stopped_senders() noexcept;
  void rx_post_completions() noexcept;
  // The RX pool: TAP frames back to back in arrival order, as the backlog
  // holds them (a ring of bytes that wraps to 0 when a whole frame no longer
  // fits at the end). Sized so that a frame's room is always there.
  std::uint8_t* rx_buffer(std::uint32_t offset) noexcept;
  // Where the next TAP frame can be read: rx_frame_capacity_ free bytes.
  std::uint32_t rx_pool_reserve() const noexcept;
  // The frame read at `offset` (from rx_pool_reserve()) joins the backlog.
  void rx_pool_commit(std::uint32_t offset, std::uint32_t length) noexcept;
  // The oldest TAP frame leaves the backlog.
  void rx_pool_release(const RxItem& item) noexcept;

  QueueSetup setup_;
  const std::string context_;  // queue_context(setup_), the prefix of every message
  std::shared_ptr<spdlog::logger> log_;
  LogLimiter log_limiter_;
  QueueCounters counters_;
  std::atomic<bool> fatal_{false};
  std::atomic<bool> stop_requested_{false};
  int stop_fd_ = -1;
  std::thread thread_;

  protocol::TxBackRing tx_;
  protocol::RxBackRing rx_;
  std::shared_ptr<MulticastFilter> multicast_;
  CreditLimiter credit_;
  bool credit_blocked_ = false;

  // Event-channel ports delivered and not yet unmasked; notifications owed.
  std::array<platform::EvtchnPort, 2> handled_ports_{};
  std::size_t handled_count_ = 0;
  bool notify_tx_ = false;
  bool notify_rx_ = false;
  // Spurious-event backoff: consecutive turns whose events brought no work,
  // and when the ports kept masked for it open again.
  unsigned spurious_streak_ = 0;
  std::optional<Clock::time_point> unmask_at_;
  protocol::RingIndex tx_seen_prod_ = 0;
  protocol::RingIndex rx_seen_prod_ = 0;
  // The producers when events were last taken: an event is judged against
  // them, not against the last look, because a busy turn may consume the
  // requests it announces before it is read.
  protocol::RingIndex event_tx_prod_ = 0;
  protocol::RingIndex event_rx_prod_ = 0;
  bool events_brought_work_ = false;
  // What the last poll() reported, or a read its budget left unfinished:
  // the turn reads the event channel, the TAP and the switch's eventfd only
  // then (the first poll() reports what came before the thread started).
  bool events_ready_ = false;
  bool tap_ready_ = false;
  bool switch_ready_ = false;

  // ---- guest TX state ----
  std::vector<protocol::TxRequest> tx_staging_;  // copies of consumed, unparsed requests
  std::size_t tx_head_ = 0;                      // first unparsed
  std::size_t tx_tail_ = 0;                      // one past the last staged
  std::vector<TxWork> tx_work_;
  protocol::RingIndex tx_staged_base_ = 0;        // ring index of tx_staging_[0]
  std::vector<protocol::TxResponse> tx_answers_;  // by ring index, until published in order
  std::vector<std::uint8_t> tx_answered_;         // by ring index: 1 = tx_answers_ holds its answer
  // Answers published in request order (tx_flush_responses()); false while
  // answers go out as they come, after one was held back too long.
  bool tx_in_order_ = true;
  protocol::RingIndex tx_unpublished_from_ = 0;  // in order: every request before it is published
  std::size_t tx_unpublished_answers_ = 0;       // entries of tx_answered_ set
  std::optional<Clock::time_point> tx_held_since_;  // answers wait behind an unanswered one
  std::vector<protocol::TxResponse> tx_responses_;  // answers to publish
  std::size_t tx_response_count_ = 0;
  std::unique_ptr<std::uint8_t[]> tx_arena_;  // a batch's packets, back to back
  std::size_t tx_arena_size_ = 0;
  std::vector<platform::GrantCopySegment> tx_segments_;
  std::vector<std::uint32_t> tx_segment_owner_;
  std::vector<PendingForward> pending_forwards_;
  std::vector<std::uint32_t> free_forwards_;
  std::vector<SwitchEndpoint*> tx_woken_;  // destinations to wake after the batch
  // TX slots held by frames waiting in each receiving port, by port tag.
  std::vector<std::uint16_t> receiver_slots_;
  std::size_t receiver_share_slots_ = 0;
  Clock::time_point tx_batch_time_{};  // when the current TX batch began

  // ---- guest RX state ----
  std::vector<protocol::RxRequest> rx_staging_;  // copies of consumed, unused RX requests
  std::size_t rx_head_ = 0;
  std::size_t rx_tail_ = 0;
  std::vector<RxItem> rx_backlog_;  // circular, capacity rx_backlog_frames
  std::size_t rx_backlog_head_ = 0;
  std::size_t rx_backlog_count_ = 0;
  std::size_t rx_backlog_bytes_ = 0;
  std::size_t rx_backlog_peak_bytes_ = 0;
  std::vector<std::uint32_t> rx_free_slots_;
  std::size_t rx_frame_capacity_ = 0;  // bytes a TAP read may fill
  std::unique_ptr<std::uint8_t[]> rx_pool_;
  std::size_t rx_pool_size_ = 0;
  std::uint32_t rx_pool_head_ = 0;      // the oldest frame's offset
  std::uint32_t rx_pool_tail_ = 0;      // one past the newest frame
  std::uint32_t rx_pool_wrap_end_ = 0;  // wrapped: one past the last frame before 0
  bool rx_pool_wrapped_ = false;        // the newest frames start again at 0
  std::size_t rx_pool_frames_ = 0;
  std::vector<ForwardDescriptor> rx_descriptors_;
  std::vector<RxDelivery> rx_deliveries_;
  std::vector<protocol::RxResponse> rx_responses_;
  std::vector<platform::GrantCopySegment> rx_segments_;
  std::vector<std::uint32_t> rx_segment_response_;
  std::vector<std::pair<SwitchEndpoint*, ForwardCompletion>> rx_completions_;
  std::vector<ForwardCompletion> rx_completion_batch_;
  std::optional<Clock::time_point> rx_blocked_since_;
  bool rx_stalled_ = false;
  net::PeerOffloads frontend_offloads_{};
  // Bytes left free in front of each frame's data in its first RX slot
  // (xdp-headroom), taken from the setup at the start of each turn.
  std::uint16_t rx_headroom_ = 0;
  // One captured frame's copy from the sender's grants into a capture slot.
  std::array<platform::GrantCopySegment, kMaxTxDataSlots> capture_segments_{};

  // ---- static grant mappings ----
  const GrefTable* grefs_ = nullptr;  // adopted at the top of a turn
  // Forwarded frames still in flight that point into mapped pages: of the
  // adopted table, and of older ones (which keep the acknowledgement back).
  std::uint64_t gref_forwards_current_ = 0;
  std::uint64_t gref_forwards_older_ = 0;
  // The segments grant_copy() leaves to the platform, and where each came from.
  std::vector<platform::GrantCopySegment> copy_remote_;
  std::vector<std::uint32_t> copy_remote_index_;

  // ---- switch ----
  std::shared_ptr<SwitchEndpoint> endpoint_;
  PortTag port_tag_ = 0;
  std::uint64_t topology_generation_ = 0;
  std::shared_ptr<const Switch::Topology> topology_;
};

}  // namespace vifd::backend::detail
