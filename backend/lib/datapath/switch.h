// The in-process L2 switch between vifs whose backend `bridge` key names the
// same bridge (ISSUE3 decision 3): the fast path that moves a domU->domU
// frame as grant-copy segments from the sender's granted page straight into
// the receiver's granted page. Only the header bytes the sender's queue
// inspected travel through dom0, in the descriptor (see
// ForwardDescriptor::header).
//
// Roles:
//  * a SwitchEndpoint is one queue's attachment: an inbox of frames other
//    vifs send it, an inbox of completions for frames it sent, and one
//    eventfd that wakes its thread for both;
//  * a port is one vif (domid, devid): the endpoints of its queues;
//  * the MAC table maps a source MAC to a port. A port's configured MAC
//    (the backend `mac` key) is pinned there at attach: learning never
//    overwrites or evicts it. Ports the operator lets learn (guests that
//    bridge) add learned entries, at most kMaxLearnedPerPort each, so one
//    port cannot flush the table.
//
// Threads: attach()/detach() are control-plane calls and serialise on a
// mutex the data path never takes. The data path reads an immutable
// Topology snapshot that attach/detach replace as a whole; a queue thread
// re-reads it only when generation() changed, so the per-packet path costs
// one relaxed load. The MAC table is an array of atomic words (MAC + port
// tag); queue threads learn and look up without locks.
//
// Lifetime rules that keep a stopped sender's grants from being copied:
//  * a sender counts every descriptor it hands out (outstanding) and its
//    stop waits until each was completed (delivered or dropped);
//  * a receiver's last access to a sender endpoint is the release decrement
//    of that count, so the sender may be destroyed as soon as it reads zero;
//  * an inbox, once closed, accepts nothing (pushes racing with the close are
//    waited for), and the closing queue completes what is left in it.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <boost/lockfree/policies.hpp>
#include <boost/lockfree/queue.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "backend/lib/datapath/capture_ring.h"
#include "backend/lib/datapath/flow_steering.h"
#include "backend/lib/datapath/queue.h"
#include "backend/lib/datapath/tx_parser.h"
#include "common/net/packet_meta.h"
#include "common/platform/types.h"
#include "common/protocol/mac_address.h"

namespace vifd::backend {

class SwitchEndpoint;

// Bytes of a frame's start the sender's queue may copy to inspect (MACs,
// the IP header `ip` filtering reads, the headers offload validation and
// flow steering parse).
inline constexpr std::size_t kForwardHeaderBytes = 128;

struct ForwardSlot {
  platform::GrantRef gref = 0;
  std::uint16_t offset = 0;
  std::uint16_t size = 0;
  // The slot's bytes (offset applied) when the sender keeps its page mapped
  // statically: the receiver copies from here instead of the grant. The
  // sender keeps the mapping until this frame's completion (gref_table.h).
  const std::uint8_t* mapped = nullptr;
};

// A guest TX packet on its way to another vif: the sender's grants, not its
// bytes. Fixed size so the inboxes never allocate.
struct ForwardDescriptor {
  SwitchEndpoint* sender = nullptr;  // where the completion goes
  std::uint32_t handle = 0;          // the sender's pending-forward slot
  platform::DomId sender_domid = 0;
  std::uint16_t slot_count = 0;
  std::uint32_t length = 0;
  // When the sender handed it over: the receiver's drain deadline counts
  // from here, so the time in the inbox is part of the wait.
  std::chrono::steady_clock::time_point sent{};
  net::PacketMeta meta{};
  std::array<ForwardSlot, kMaxTxDataSlots> slots{};
  // The first header_length bytes of the frame as the sender's queue copied
  // and checked them (at most what slots[0] holds). The receiver delivers
  // them from here and only the rest from the sender's grants, so a sender
  // rewriting its page after the check cannot change what was checked.
  std::uint16_t header_length = 0;
  std::array<std::uint8_t, kForwardHeaderBytes> header{};
};

enum class ForwardResult : std::uint8_t {
  kDelivered,
  kDropped,     // no buffers, receiver stopped: the sender answers OKAY (netback's drop)
  kCopyFailed,  // a grant copy segment failed: the sender answers ERROR
};

struct ForwardCompletion {
  std::uint32_t handle = 0;
  ForwardResult result = ForwardResult::kDelivered;
};

// The captures of one port (vifctl capture): the rings the data path records
// the port's forwarded frames into. A producer announces itself in `users`
// before it loads a ring pointer and leaves after its last use of the ring;
// the control plane clears a pointer and then waits for `users` to drain
// (seq_cst on both sides, as SwitchEndpoint::push_frame and close_inbox), so
// a ring it withdrew is never touched again.
struct CaptureTaps {
  static constexpr std::size_t kMaxPerPort = 2;
  std::array<std::atomic<CaptureRing*>, kMaxPerPort> rings{};
  std::atomic<std::uint32_t> users{0};
};

class SwitchEndpoint {
 public:
  // inbox_capacity: frames other vifs may queue here; completion_capacity:
  // at least the sender's TX ring size, so a completion push never fails.
  SwitchEndpoint(platform::DomId domid, std::uint32_t devid, std::uint32_t queue_index,
                 const VifFeatures& features, std::size_t inbox_capacity,
                 std::size_t completion_capacity,
                 std::shared_ptr<const FlowSteering> steering = nullptr);
  ~SwitchEndpoint();
  SwitchEndpoint(const SwitchEndpoint&) = delete;
  SwitchEndpoint& operator=(const SwitchEndpoint&) = delete;

  platform::DomId domid() const noexcept { return domid_; }
  std::uint32_t devid() const noexcept { return devid_; }
  std::uint32_t queue_index() const noexcept { return queue_index_; }
  const VifFeatures& features() const noexcept { return features_; }
  const std::shared_ptr<const FlowSteering>& steering() const noexcept { return steering_; }
  int wake_fd() const noexcept { return wake_fd_; }

  // Makes wake_fd readable.
  void wake() noexcept;
  // Data path, after a push: wake() only when the owner said it is about to
  // sleep (arm_wake), so a busy owner costs its senders no system call.
  void wake_if_sleeping() noexcept;
  // Empties the eventfd after a wake-up.
  void consume_wake() noexcept;
  // Owner, before a poll() that may block: asks for wake-ups again; false
  // when a frame or completion already waits (then it must not block).
  bool arm_wake() noexcept;
  // Owner, once awake: its own turn will look at the inboxes.
  void disarm_wake() noexcept { sleeping_.store(false, std::memory_order_relaxed); }

  // ---- receiver side ----
  // Queues a frame; false when the inbox is full or closed.
  bool push_frame(const ForwardDescriptor& frame) noexcept;
  bool pop_frame(ForwardDescriptor& frame) noexcept;
  // After this returns no push_frame succeeds; pushes that raced with it
  // have finished, so what is in the inbox is all there will ever be.
  void close_inbox() noexcept;

  // ---- sender side ----
  // Called before a descriptor is handed to another endpoint (and undone
  // with cancel_forward when the push fails).
  void begin_forward() noexcept { outstanding_.fetch_add(1, std::memory_order_relaxed); }
  void cancel_forward() noexcept { outstanding_.fetch_sub(1, std::memory_order_relaxed); }
  std::uint32_t outstanding() const noexcept {
    return outstanding_.load(std::memory_order_acquire);
  }
  // Receiver: hands back the completions of frames this endpoint sent, wakes
  // it, and drops its claim. Must be the receiver's last use of `this`.
  void post_completions(std::span<const ForwardCompletion> completions) noexcept;
  bool pop_completion(ForwardCompletion& completion) noexcept;
  // A stopping sender asks receivers to drop its frames instead of waiting
  // for guest buffers.
  void mark_stopping() noexcept { stopping_.store(true, std::memory_order_release); }
  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }

  // The captures of this endpoint's port; set by Switch::attach before the
  // endpoint is published, constant afterwards. Null before attach.
  CaptureTaps* taps() const noexcept { return taps_.get(); }

 private:
  friend class Switch;

  using FrameQueue = boost::lockfree::queue<ForwardDescriptor, boost::lockfree::fixed_sized<true>>;
  using CompletionQueue =
      boost::lockfree::queue<ForwardCompletion, boost::lockfree::fixed_sized<true>>;

  platform::DomId domid_;
  std::uint32_t devid_;
  std::uint32_t queue_index_;
  VifFeatures features_;
  std::shared_ptr<const FlowSteering> steering_;
  int wake_fd_ = -1;
  FrameQueue frames_;
  CompletionQueue completions_;
  std::atomic<std::uint32_t> outstanding_{0};
  std::atomic<std::uint32_t> pushers_{0};
  std::atomic<bool> closed_{false};
  std::atomic<bool> stopping_{false};
  // The owner may be asleep in poll(): pushes must write the eventfd. Set
  // until the owner's loop says otherwise.
  std::atomic<bool> sleeping_{true};
  std::shared_ptr<CaptureTaps> taps_;
};

// Port tags name a port in the MAC table; 0 means "no port".
using PortTag = std::uint16_t;
inline constexpr PortTag kMaxPortTag = 0x7FFF;  // the table keeps a flag in bit 15

// What Switch::learn made of a source MAC.
enum class LearnResult : std::uint8_t {
  kLearned,     // known on this port, or recorded now
  kNotLearned,  // group address, the port's bound reached or no room: frames to it take the TAP
  kPinnedElsewhere,  // another port's configured MAC: the frame is spoofed
};

class Switch {
 public:
  struct Port {
    PortTag tag = 0;
    platform::DomId domid = 0;
    std::uint32_t devid = 0;
    VifFeatures features;
    // The receiving vif's hash configuration, or nullptr (spread by MACs).
    std::shared_ptr<const FlowSteering> steering;
    std::vector<std::shared_ptr<SwitchEndpoint>> queues;  // attached queues, by index
    std::shared_ptr<CaptureTaps> taps;                    // shared with its endpoints
  };
  struct Topology {
    std::vector<Port> ports;
    const Port* find(PortTag tag) const noexcept;
  };

  explicit Switch(std::string name);
  ~Switch();
  Switch(const Switch&) = delete;
  Switch& operator=(const Switch&) = delete;

  const std::string& name() const noexcept { return name_; }

  // ---- control plane (Queue::start/stop call these) ----
  // Adds a queue's endpoint to its vif's port (creating the port with the
  // vif's MAC pinned) and returns the port's tag. Throws
  // std::invalid_argument when that queue is already attached or the switch
  // has kMaxPortTag ports.
  PortTag attach(std::shared_ptr<SwitchEndpoint> endpoint, const protocol::MacAddress& guest_mac);
  // Removes a queue's endpoint; the last one removes the port and forgets
  // every MAC learned on it.
  void detach(const SwitchEndpoint& endpoint);
  // Forgets the MACs of a port (after its queues stopped learning).
  void forget(PortTag tag) noexcept;
  std::size_t port_count() const;
  // Wakes every attached queue (a stopping sender asks them to drop its frames).
  void wake_all() const;

  // Starts recording the frames forwarded from and to vif (domid, devid)
  // into `ring`, which must outlive the capture (until stop_capture returns
  // or the ring is closed). Throws std::invalid_argument naming the vif
  // when it is not a port of this switch (not connected) or already has
  // CaptureTaps::kMaxPerPort captures.
  void start_capture(platform::DomId domid, std::uint32_t devid, CaptureRing& ring);
  // Stops recording into `ring`; when this returns no queue thread uses it.
  // A ring whose port went away (closed) is already withdrawn. noexcept: the
  // ring is freed next, so failing here must not be survivable.
  void stop_capture(const CaptureRing& ring) noexcept;
  // Captures running on vif (domid, devid); 0 when it is not a port.
  std::size_t capture_count(platform::DomId domid, std::uint32_t devid) const;

  // ---- data path ----
  // How many captures run on this switch: the one load a delivered frame
  // costs while nobody captures.
  bool capturing() const noexcept { return captures_.load(std::memory_order_relaxed) != 0; }
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }
  std::shared_ptr<const Topology> topology() const noexcept { return topology_.load(); }
  // Records that `mac` was seen as a source on `tag` (a port the operator
  // lets learn). Group addresses are never learned; a pinned entry never
  // changes; a learned one moves to the newest port, as on a bridge.
  LearnResult learn(std::span<const std::uint8_t, 6> mac, PortTag tag) noexcept;
  // The port `mac` is pinned or learned on, or 0.
  PortTag lookup(std::span<const std::uint8_t, 6> mac) const noexcept;
  // Entries `tag` learned (pinned ones not counted).
  std::size_t learned_count(PortTag tag) const noexcept;

  // Learned entries one port may hold: enough for a guest bridging a few
  // dozen others; the rest of their frames go through the TAP.
  static constexpr std::size_t kMaxLearnedPerPort = 64;
  static constexpr std::size_t kMacBuckets = 4096;  // power of two
  static constexpr std::size_t kMacProbe = 8;

 private:
  static std::size_t bucket_of(std::uint64_t mac48) noexcept;
  void publish(std::shared_ptr<const Topology> next);
  // Control plane: makes `mac` point at `tag` for good.
  void pin(const protocol::MacAddress& mac, PortTag tag) noexcept;
  // Accounts for an entry that was just replaced or removed.
  void release_entry(std::uint64_t old) noexcept;
  // Whether the neighbourhood of `key` holds a pinned entry for it.
  bool pinned_anywhere(std::uint64_t key) const noexcept;

  std::string name_;
  mutable std::mutex control_mutex_;  // attach/detach only; never on the data path
  std::atomic<std::shared_ptr<const Topology>> topology_;
  // Control plane, under control_mutex_: clears taps' ring slots (all, or
  // only `ring`) and waits until no producer holds them.
  void withdraw(CaptureTaps& taps, const CaptureRing* only) noexcept;

  std::atomic<std::uint64_t> generation_{1};
  std::atomic<std::uint32_t> captures_{0};
  PortTag next_tag_ = 1;
  // Each bucket: MAC << 16 | pinned flag << 15 | tag, or 0.
  std::array<std::atomic<std::uint64_t>, kMacBuckets> mac_table_{};
  std::array<std::atomic<std::uint16_t>, kMaxPortTag + 1> learned_{};
};

}  // namespace vifd::backend
