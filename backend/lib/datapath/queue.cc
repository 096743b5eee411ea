// Queue lifecycle and the queue thread's loop: wait on the event channel, the
// TAP, the switch eventfd and the stop eventfd; serve TX and RX in batches;
// unmask the delivered ports; notify the frontend only when the ring says so;
// re-check the rings with the final-check idiom before sleeping.
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>

#include "backend/lib/datapath/queue_engine.h"
#include "common/log/log.h"

namespace vifd::backend {

std::shared_ptr<spdlog::logger> datapath_log() {
  return log::named("datapath", spdlog::level::warn);
}

std::string queue_context(const QueueSetup& setup) {
  return "domain " + std::to_string(setup.frontend_domid) + " vif " + std::to_string(setup.devid) +
         " queue " + std::to_string(setup.queue_index);
}

namespace detail {

namespace {

const QueueSetup& validated(const QueueSetup& setup) {
  const auto fail = [&](const std::string& what) {
    throw std::invalid_argument(queue_context(setup) + ": " + what);
  };
  if (!setup.events) {
    fail("no event-channel handle");
  }
  if (!setup.grants) {
    fail("no grant-table handle");
  }
  if (setup.tx_port == 0 || setup.rx_port == 0) {
    fail("event-channel port 0");
  }
  if (setup.tx_shared_ring.size() < protocol::kPageSize ||
      setup.rx_shared_ring.size() < protocol::kPageSize) {
    fail("shared ring smaller than a page");
  }
  if (setup.rx_backlog_frames == 0 || setup.rx_backlog_frames > 4096) {
    fail("rx_backlog_frames " + std::to_string(setup.rx_backlog_frames) + " outside 1..4096");
  }
  if (setup.features.xdp_headroom >= protocol::kPageSize) {
    fail("xdp_headroom " + std::to_string(setup.features.xdp_headroom) +
         " leaves no room for data in a page");
  }
  if (setup.rx_stall_timeout.count() <= 0) {
    fail("rx_stall_timeout must be positive");
  }
  if (setup.rx_drain_timeout.count() <= 0) {
    fail("rx_drain_timeout must be positive");
  }
  if (setup.rx_backlog_bytes == 0) {
    fail("rx_backlog_bytes must be positive");
  }
  if (setup.switch_receiver_share_percent == 0 || setup.switch_receiver_share_percent > 100) {
    fail("switch_receiver_share_percent " + std::to_string(setup.switch_receiver_share_percent) +
         " outside 1..100");
  }
  if (setup.spurious_event_backoff_max.count() < 0) {
    fail("spurious_event_backoff_max must not be negative");
  }
  return setup;
}

protocol::TxBackRing attach_tx(const QueueSetup& setup) {
  return setup.resume ? protocol::TxBackRing::resume(setup.tx_shared_ring)
                      : protocol::TxBackRing(setup.tx_shared_ring);
}
protocol::RxBackRing attach_rx(const QueueSetup& setup) {
  return setup.resume ? protocol::RxBackRing::resume(setup.rx_shared_ring)
                      : protocol::RxBackRing(setup.rx_shared_ring);
}

std::shared_ptr<MulticastFilter> own_multicast_filter(const VifFeatures& features) {
  auto filter = std::make_shared<MulticastFilter>();
  filter->set_enabled(features.multicast_control);
  return filter;
}

}  // namespace

QueueEngine::QueueEngine(QueueSetup setup)
    : setup_(std::move(setup)),
      context_(queue_context(setup_)),
      log_(datapath_log()),
      tx_(attach_tx(validated(setup_))),
      rx_(attach_rx(setup_)),
      multicast_(setup_.multicast_filter ? setup_.multicast_filter
                                         : own_multicast_filter(setup_.features)),
      credit_(setup_.rate, Clock::now()) {
  const std::size_t tx_size = tx_.size();
  const std::size_t rx_size = rx_.size();
  const std::size_t backlog = setup_.rx_backlog_frames;

  stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop_fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), context_ + ": eventfd");
  }

  tx_staging_.resize(tx_size);
  tx_work_.resize(tx_size);
  tx_responses_.resize(tx_size);
  tx_answers_.resize(tx_size);
  tx_answered_.resize(tx_size);
  // A resumed ring continues from the responses a previous vifd published.
  tx_staged_base_ = tx_.request_consumer();
  tx_unpublished_from_ = tx_.request_consumer();
  tx_arena_size_ = std::min(tx_size * protocol::kPageSize, kTxArenaBytes);
  // Default-initialised: pages are only touched (made resident) when used.
  tx_arena_.reset(new std::uint8_t[tx_arena_size_]);
  tx_segments_.resize(tx_size);
  tx_segment_owner_.resize(tx_size);
  pending_forwards_.resize(tx_size);
  free_forwards_.reserve(tx_size);
  for (std::size_t i = tx_size; i > 0; --i) {
    free_forwards_.push_back(static_cast<std::uint32_t>(i - 1));
  }
  tx_woken_.reserve(64);
  // Only forwarded frames hold slots, and tags go up to kMaxPortTag.
  if (setup_.network_switch != nullptr) {
    receiver_slots_.resize(std::size_t{kMaxPortTag} + 1);
  }
  // At least one packet of the most slots a packet may have, so a share
  // never refuses every frame.
  receiver_share_slots_ = std::max<std::size_t>(
      tx_size * setup_.switch_receiver_share_percent / 100, kMaxTxDataSlots + 4);
  tx_seen_prod_ = tx_.request_consumer();
  rx_seen_prod_ = rx_.request_consumer();
  event_tx_prod_ = tx_seen_prod_;
  event_rx_prod_ = rx_seen_prod_;

  rx_staging_.resize(rx_size);
  rx_backlog_.resize(backlog);
  rx_free_slots_.reserve(backlog);
  for (std::size_t i = backlog; i > 0; --i) {
    rx_free_slots_.push_back(static_cast<std::uint32_t>(i - 1));
  }
  const auto& features = setup_.features;
  // The largest frame the TAP may hand us (tap_read wants one byte more to
  // detect truncation): 64 KiB with TSO, else the MTU plus Ethernet and VLAN.
  const std::size_t largest_frame = (features.gso_tcpv4 || features.gso_tcpv6)
                                        ? 65535 + 18
                                        : std::max<std::size_t>(features.mtu, 1500) + 18;
  rx_frame_capacity_ = largest_frame + 1;
  // The frames in the backlog take at most rx_backlog_bytes, or one frame
  // (an empty backlog admits any), plus alignment; with two frames' room
  // besides, a frame's worth of contiguous bytes is always free (a bip
  // buffer: what the end wastes at a wrap is less than a frame).
  rx_pool_size_ = std::max(setup_.rx_backlog_bytes, rx_frame_capacity_) +
                  backlog * kRxPoolAlignment + 2 * rx_frame_capacity_;
  // Default-initialised: pages are only touched (made resident) when used.
  rx_pool_.reset(new std::uint8_t[rx_pool_size_]);
  rx_descriptors_.resize(backlog);
  rx_deliveries_.resize(rx_size);
  rx_responses_.resize(rx_size);
  // A switched frame needs at most one segment per source slot plus one per
  // destination page; every frame uses at least one RX request.
  rx_segments_.resize(rx_size * (kMaxTxDataSlots + 1));
  rx_segment_response_.resize(rx_segments_.size());
  rx_completions_.reserve(backlog + setup_.switch_inbox_frames + rx_size);
  rx_completion_batch_.reserve(rx_completions_.capacity());
  copy_remote_.resize(
      std::max({tx_segments_.size(), rx_segments_.size(), capture_segments_.size()}));
  copy_remote_index_.resize(copy_remote_.size());
  frontend_offloads_ = {features.csum_ipv4, features.csum_ipv6, features.gso_tcpv4,
                        features.gso_tcpv6};
  rx_headroom_ = features.xdp_headroom;

  if (setup_.network_switch != nullptr) {
    endpoint_ = std::make_shared<SwitchEndpoint>(
        setup_.frontend_domid, setup_.devid, setup_.queue_index, features,
        setup_.switch_inbox_frames, tx_size, setup_.flow_steering);
  }
  publish_ring_indices();
}

QueueEngine::~QueueEngine() {
  stop();
  ::close(stop_fd_);
}

void QueueEngine::start() {
  if (thread_.joinable()) {
    return;
  }
  if (setup_.network_switch != nullptr) {
    port_tag_ = setup_.network_switch->attach(endpoint_, setup_.guest_mac);
  }
  stop_requested_.store(false, std::memory_order_relaxed);
  thread_ = std::thread([this] { run(); });
}

void QueueEngine::stop() {
  if (!thread_.joinable()) {
    return;
  }
  Switch* network_switch = setup_.network_switch;
  // Out of the topology first, so other queues stop choosing this one.
  if (network_switch != nullptr) {
    network_switch->detach(*endpoint_);
  }
  stop_requested_.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(stop_fd_, &one, sizeof(one));
  thread_.join();
  // The thread may have learned our MAC again after detach; forget it unless
  // other queues of this vif still serve the port.
  if (network_switch != nullptr && network_switch->topology()->find(port_tag_) == nullptr) {
    network_switch->forget(port_tag_);
  }
}

void QueueEngine::fatal(std::string_view reason) noexcept {
  if (fatal_.exchange(true, std::memory_order_acq_rel)) {
    return;
  }
  counters_.fatal_error.set(1);
  log_->error("{}: frontend disabled: {}", context_, reason);
  if (setup_.on_fatal_error) {
    // The callback only posts work to the control plane; a failure to do so
    // must not take the data path down with it.
    try {
      setup_.on_fatal_error(std::string(reason));
    } catch (const std::exception& error) {
      log_->error("{}: on_fatal_error failed: {}", context_, error.what());
    }
  }
}

int QueueEngine::platform_copy(std::span<platform::GrantCopySegment> segments) noexcept {
  if (segments.empty()) {
    return 0;
  }
  const int rc = setup_.grants->copy(segments);
  counters_.grant_copy_calls.add();
  counters_.grant_copy_segments.add(segments.size());
  if (rc < 0) {
    // The batch as a whole was refused: every segment failed.
    for (auto& segment : segments) {
      segment.status = platform::kGntstGeneralError;
    }
    if (log_limiter_.allow(Clock::now())) {
      log_->error("{}: grant copy of {} segments refused: {}", context_, segments.size(),
                  std::generic_category().message(-rc));
    }
    return rc;
  }
  std::uint64_t bytes = 0;
  for (const auto& segment : segments) {
    if (segment.status == platform::kGntstOkay) {
      bytes += segment.len;
    }
  }
  counters_.grant_copy_bytes.add(bytes);
  return rc;
}

bool QueueEngine::resolve_mapped(platform::GrantCopyPtr& ptr, bool write,
                                 std::uint16_t len) const noexcept {
  // The hypervisor checks the bounds of a grant copy; a memcpy must do it
  // here, on the copy of the request the segment was built from.
  if (ptr.foreign.domid != setup_.frontend_domid ||
      std::size_t{ptr.foreign.offset} + len > platform::kPageSize) {
    return false;
  }
  const GrefEntry* entry = grefs_->find(ptr.foreign.ref);
  if (entry == nullptr || (write && !entry->writable)) {
    return false;
  }
  ptr.virt = entry->page + ptr.foreign.offset;
  return true;
}

const std::uint8_t* QueueEngine::mapped_bytes(platform::GrantRef ref, std::uint16_t offset,
                                              std::uint16_t size) const noexcept {
  if (grefs_ == nullptr || std::size_t{offset} + size > platform::kPageSize) {
    return nullptr;
  }
  const GrefEntry* entry = grefs_->find(ref);
  return entry == nullptr ? nullptr : entry->page + offset;
}

int QueueEngine::grant_copy(std::span<platform::GrantCopySegment> segments) noexcept {
  if (segments.empty()) {
    return 0;
  }
  if (grefs_ == nullptr || grefs_->size() == 0) {
    return platform_copy(segments);
  }
  std::size_t remote = 0;
  std::uint64_t local_segments = 0;
  std::uint64_t local_bytes = 0;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    platform::GrantCopySegment& segment = segments[i];
    if ((segment.flags & platform::kCopySourceGref) != 0 &&
        resolve_mapped(segment.source, false, segment.len)) {
      segment.flags &= static_cast<std::uint16_t>(~platform::kCopySourceGref);
    }
    if ((segment.flags & platform::kCopyDestGref) != 0 &&
        resolve_mapped(segment.dest, true, segment.len)) {
      segment.flags &= static_cast<std::uint16_t>(~platform::kCopyDestGref);
    }
    if ((segment.flags & (platform::kCopySourceGref | platform::kCopyDestGref)) == 0) {
      // Both sides in our address space; the page stays mapped for this
      // whole turn (adopt_static_grants).
      std::memcpy(segment.dest.virt, segment.source.virt, segment.len);
      segment.status = platform::kGntstOkay;
      ++local_segments;
      local_bytes += segment.len;
    } else {
      copy_remote_[remote] = segment;
      copy_remote_index_[remote] = static_cast<std::uint32_t>(i);
      ++remote;
    }
  }
  counters_.mapped_copy_segments.add(local_segments);
  counters_.mapped_copy_bytes.add(local_bytes);
  if (remote == 0) {
    return 0;
  }
  const int rc = platform_copy(std::span(copy_remote_.data(), remote));
  for (std::size_t k = 0; k < remote; ++k) {
    segments[copy_remote_index_[k]].status = copy_remote_[k].status;
  }
  return rc;
}

void QueueEngine::adopt_static_grants() noexcept {
  GrefHandoff* handoff = setup_.static_grants.get();
  if (handoff == nullptr) {
    return;
  }
  // One atomic load: the wake-up itself is consumed only when poll()
  // reported it, so a busy queue makes no system call for it.
  const GrefTable* latest = handoff->latest();
  if (latest != grefs_) {
    grefs_ = latest;
    // Frames forwarded so far keep pointing into the pages of the tables
    // they were built from.
    gref_forwards_older_ += gref_forwards_current_;
    gref_forwards_current_ = 0;
    counters_.gref_mappings.set(grefs_ == nullptr ? 0 : grefs_->size());
  }
  acknowledge_static_grants();
}

void QueueEngine::acknowledge_static_grants() noexcept {
  GrefHandoff* handoff = setup_.static_grants.get();
  if (handoff == nullptr || grefs_ == nullptr || gref_forwards_older_ != 0) {
    return;
  }
  if (handoff->acknowledged() != grefs_->generation()) {
    handoff->acknowledge(grefs_->generation());
  }
}

std::size_t QueueEngine::drain_events() noexcept {
  std::size_t delivered = 0;
  while (const auto port = setup_.events->pending()) {
    ++delivered;
    const bool known = std::find(handled_ports_.begin(), handled_ports_.begin() + handled_count_,
                                 *port) != handled_ports_.begin() + handled_count_;
    if (known) {
      continue;
    }
    if (handled_count_ < handled_ports_.size()) {
      handled_ports_[handled_count_++] = *port;
    } else {
      // Not one of ours (a handle serves one queue): unmask so it cannot
      // stay stuck.
      setup_.events->unmask(*port);
    }
  }
  if (delivered != 0) {
    // Read after the events: whatever they announce is visible now. Work
    // produced since the previous events counts even if a busy turn already
    // consumed it.
    events_brought_work_ = guest_posted(event_tx_prod_, event_rx_prod_);
    // Counted once judged: whoever sees the count sees the judgement made.
    counters_.notifications_received.add(delivered);
  }
  return delivered;
}

bool QueueEngine::guest_posted(protocol::RingIndex& tx_seen,
                               protocol::RingIndex& rx_seen) noexcept {
  // Only a producer moving past what we saw counts: a guest rewinding and
  // re-advancing its index within the window would otherwise pass for busy.
  const auto advanced = [](protocol::RingIndex& seen, protocol::RingIndex prod) {
    if (static_cast<std::int32_t>(prod - seen) <= 0) {
      return false;
    }
    seen = prod;
    return true;
  };
  const auto tx = tx_.pending_requests();
  const auto rx = rx_.pending_requests();
  if (tx.status == protocol::RingStatus::kProducerOverflow) {
    fatal("TX request producer index overflows the ring");
    return false;
  }
  if (rx.status == protocol::RingStatus::kProducerOverflow) {
    fatal("RX request producer index overflows the ring");
    return false;
  }
  const bool tx_posted = advanced(tx_seen, tx_.request_consumer() + tx.count);
  const bool rx_posted = advanced(rx_seen, rx_.request_consumer() + rx.count);
  return tx_posted || rx_posted;
}

void QueueEngine::settle_events(bool fresh_events, Clock::time_point now) noexcept {
  // Spurious: events after which the guest produced nothing since the
  // previous ones (a guest notifying in a loop), not events for requests
  // this thread happened to take before it read them.
  const bool work =
      guest_posted(tx_seen_prod_, rx_seen_prod_) || (fresh_events && events_brought_work_);
  if (work) {
    spurious_streak_ = 0;
  } else if (fresh_events) {
    counters_.spurious_events.add();
    if (spurious_streak_ < 32) {
      ++spurious_streak_;
    }
  }
  if (handled_count_ == 0) {
    return;
  }
  if (!work && spurious_streak_ >= 2 && !failed()) {
    // Late EOI with backoff: the port stays masked, so a guest notifying
    // in a loop sets its pending bit and wakes nobody until then.
    if (!unmask_at_) {
      const auto backoff = std::min<std::chrono::milliseconds>(
          std::chrono::milliseconds(std::int64_t{1} << std::min(spurious_streak_ - 2, 16U)),
          setup_.spurious_event_backoff_max);
      unmask_at_ = now + backoff;
    }
    if (now < *unmask_at_) {
      return;
    }
  }
  unmask_at_.reset();
  unmask_handled();
}

void QueueEngine::unmask_handled() noexcept {
  if (failed()) {
    // A disabled frontend keeps its ports masked, as netback disables the
    // interrupt: its notifications can no longer wake this thread.
    handled_count_ = 0;
    return;
  }
  for (std::size_t i = 0; i < handled_count_; ++i) {
    if (const int rc = setup_.events->unmask(handled_ports_[i]); rc < 0) {
      if (log_limiter_.allow(Clock::now())) {
        log_->error("{}: unmask port {}: {}", context_, handled_ports_[i],
                    std::generic_category().message(-rc));
      }
    }
  }
  handled_count_ = 0;
}

void QueueEngine::send_notifications() noexcept {
  const auto notify = [this](platform::EvtchnPort port) {
    counters_.notifications_sent.add();
    if (const int rc = setup_.events->notify(port); rc < 0 && log_limiter_.allow(Clock::now())) {
      log_->error("{}: notify port {}: {}", context_, port, std::generic_category().message(-rc));
    }
  };
  if (setup_.tx_port == setup_.rx_port) {
    if (notify_tx_ || notify_rx_) {
      notify(setup_.tx_port);
    }
  } else {
    if (notify_tx_) {
      notify(setup_.tx_port);
    }
    if (notify_rx_) {
      notify(setup_.rx_port);
    }
  }
  notify_tx_ = false;
  notify_rx_ = false;
}

void QueueEngine::publish_ring_indices() noexcept {
  const auto tx_pending = tx_.pending_requests();
  const auto rx_pending = rx_.pending_requests();
  counters_.tx_req_cons.set(tx_.request_consumer());
  counters_.tx_req_prod.set(tx_.request_consumer() + tx_pending.count);
  counters_.tx_rsp_prod.set(tx_.response_producer());
  counters_.rx_req_cons.set(rx_.request_consumer());
  counters_.rx_req_prod.set(rx_.request_consumer() + rx_pending.count);
  counters_.rx_rsp_prod.set(rx_.response_producer());
}

protocol::RingIndex QueueEngine::rx_requests_wanted() const noexcept {
  // What the oldest frame still lacks: a notification per posted buffer
  // would wake us for a frame that cannot go yet.
  const std::size_t needed = rx_slots_needed(rx_backlog_[rx_backlog_head_]);
  const std::size_t staged = rx_tail_ - rx_head_;
  return static_cast<protocol::RingIndex>(needed > staged ? needed - staged : 1);
}

void QueueEngine::refresh_topology() noexcept {
  if (setup_.network_switch == nullptr) {
    return;
  }
  const std::uint64_t generation = setup_.network_switch->generation();
  if (generation == topology_generation_) {
    return;
  }
  topology_ = setup_.network_switch->topology();
  topology_generation_ = generation;
}

int QueueEngine::poll_timeout(Clock::time_point now) const noexcept {
  std::optional<Clock::time_point> deadline;
  const auto earliest = [&](Clock::time_point t) {
    if (!deadline || t < *deadline) {
      deadline = t;
    }
  };
  if (credit_blocked_) {
    earliest(credit_.refill_time());
  }
  if (unmask_at_) {
    earliest(*unmask_at_);
  }
  if (tx_held_since_) {
    earliest(*tx_held_since_ + kTxHoldLimit);
  }
  if (rx_backlog_count_ != 0) {
    earliest(rx_backlog_[rx_backlog_head_].enqueued + setup_.rx_drain_timeout);
  }
  if (rx_backlog_count_ != 0 && rx_blocked_since_) {
    earliest(*rx_blocked_since_ + setup_.rx_stall_timeout);
    // Without feature-rx-notify the frontend never says it posted buffers.
    if (!setup_.features.rx_notify) {
      earliest(now + std::chrono::milliseconds(10));
    }
  }
  if (!deadline) {
    return -1;
  }
  if (*deadline <= now) {
    return 0;
  }
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*deadline - now);
  return static_cast<int>(std::min<std::chrono::milliseconds::rep>(wait.count(), 60000));
}

void QueueEngine::run() noexcept {
  // "vif<domid>.<devid>-q<queue>", so top -H and perf name the guest.
  std::array<char, 16> name{};  // the kernel's limit, with the NUL
  std::snprintf(name.data(), name.size(), "vif%u.%u-q%u", unsigned{setup_.frontend_domid},
                setup_.devid, setup_.queue_index);
  ::pthread_setname_np(::pthread_self(), name.data());
  // Requests may already be waiting (a resumed ring, or a frontend faster
  // than start()): serve before the first sleep.
  bool busy = true;
  Clock::time_point last_poll = Clock::now();
  while (!stop_requested_.load(std::memory_order_acquire)) {
    // About to block: senders must wake us from now on, and what they
    // pushed before they saw that is served without sleeping.
    if (!busy && endpoint_ && !endpoint_->arm_wake()) {
      endpoint_->disarm_wake();
      busy = true;
    }
    // A busy turn goes on without poll(), but not for longer than
    // kBusyPollInterval: a TAP frame or an event arriving meanwhile is taken
    // within that bound.
    if (!busy || Clock::now() - last_poll >= kBusyPollInterval) {
      std::array<pollfd, 5> fds{};
      fds[0] = {setup_.events->fd(), POLLIN, 0};
      fds[1] = {stop_fd_, POLLIN, 0};
      fds[2] = {endpoint_ ? endpoint_->wake_fd() : -1, POLLIN, 0};
      fds[3] = {failed() ? -1 : setup_.tap_fd, POLLIN, 0};
      fds[4] = {setup_.static_grants ? setup_.static_grants->wake_fd() : -1, POLLIN, 0};
      const int ready = ::poll(fds.data(), fds.size(), busy ? 0 : poll_timeout(Clock::now()));
      const int poll_error = ready < 0 ? errno : 0;
      last_poll = Clock::now();
      if (endpoint_) {
        endpoint_->disarm_wake();
      }
      if (ready > 0) {
        // POLLERR/POLLHUP too: the read reports what went wrong.
        events_ready_ = events_ready_ || fds[0].revents != 0;
        switch_ready_ = switch_ready_ || fds[2].revents != 0;
        tap_ready_ = tap_ready_ || fds[3].revents != 0;
        if ((fds[4].revents & POLLIN) != 0) {
          setup_.static_grants->consume_wake();
        }
      }
      if (poll_error != 0 && poll_error != EINTR && log_limiter_.allow(Clock::now())) {
        log_->error("{}: poll: {}", context_, std::generic_category().message(poll_error));
      }
    }
    const Clock::time_point now = Clock::now();
    // Ports kept masked by the spurious-event backoff open first, so an
    // event that waited for them is taken in this same turn.
    if (unmask_at_ && now >= *unmask_at_) {
      unmask_at_.reset();
      unmask_handled();
    }
    const bool fresh_events = events_ready_ && drain_events() != 0;
    events_ready_ = false;
    refresh_topology();
    adopt_static_grants();
    if (endpoint_) {
      // Consume the wake-up before looking at the inboxes, so a push that
      // lands after our look wakes us again. Unconsumed (a busy turn), it
      // keeps the eventfd readable for the next poll(): nothing is lost,
      // the inboxes are looked at every turn anyway.
      if (switch_ready_) {
        endpoint_->consume_wake();
        switch_ready_ = false;
      }
      tx_process_completions();
      rx_drop_stopped_senders();
    }
    // The turn's budget: about one TX ring of requests, then RX, the switch
    // inbox (at most its capacity) and the TAP (at most the backlog) each get
    // their turn before TX goes on, so no source starves the others.
    const protocol::RingIndex tx_start = tx_.request_consumer();
    bool tx_more = false;
    do {
      tx_more = tx_round(now);
    } while (tx_more && tx_.request_consumer() - tx_start < tx_.size());
    rx_ingest();
    rx_deliver(now);
    rx_post_completions();
    // Answers held behind an unanswered request go out once they waited
    // kTxHoldLimit, whether or not anything else happened this turn.
    if (tx_held_since_) {
      tx_flush_responses();
    }
    publish_ring_indices();
    acknowledge_static_grants();
    settle_events(fresh_events, now);
    send_notifications();
    counters_.loop_iterations.add();

    busy = tx_more || tap_ready_;
    if (!busy && !failed()) {
      // RING_FINAL_CHECK_FOR_REQUESTS: ask for a notification on the next
      // request and look once more, closing the race with a request pushed
      // after our last take.
      if (!credit_blocked_ && tx_.final_check_for_requests()) {
        busy = true;
      }
      if (rx_backlog_count_ != 0 && rx_.final_check_for_requests(rx_requests_wanted())) {
        busy = true;
      }
    }
  }
  shutdown_switch();
  tx_flush_responses(true);
  publish_ring_indices();
  send_notifications();
}

void QueueEngine::shutdown_switch() noexcept {
  if (!endpoint_) {
    return;
  }
  endpoint_->mark_stopping();
  endpoint_->close_inbox();
  // Frames other vifs sent us will never be delivered: complete them now.
  rx_flush_backlog(DropReason::kRxPortStopped);
  ForwardDescriptor frame;
  while (endpoint_->pop_frame(frame)) {
    counters_.drop(DropReason::kRxPortStopped);
    rx_completions_.push_back({frame.sender, {frame.handle, ForwardResult::kDropped}});
    if (rx_completions_.size() == rx_completions_.capacity()) {
      rx_post_completions();
    }
  }
  rx_post_completions();
  // Frames we sent may wait in other queues' backlogs for guest buffers: ask
  // those queues to drop them, and wait until every one is completed, so no
  // grant of our frontend is copied after stop() returns.
  if (topology_) {
    for (const auto& port : topology_->ports) {
      for (const auto& queue : port.queues) {
        queue->wake();
      }
    }
  }
  setup_.network_switch->wake_all();
  while (endpoint_->outstanding() != 0) {
    tx_process_completions();
    if (endpoint_->arm_wake()) {
      pollfd fd{endpoint_->wake_fd(), POLLIN, 0};
      ::poll(&fd, 1, 10);
    }
    endpoint_->consume_wake();
  }
  tx_process_completions();
}

}  // namespace detail

Queue::Queue(QueueSetup setup) : engine_(std::make_unique<detail::QueueEngine>(std::move(setup))) {}
Queue::~Queue() = default;
void Queue::start() {
  engine_->start();
}
void Queue::stop() {
  engine_->stop();
}
bool Queue::running() const noexcept {
  return engine_->running();
}
bool Queue::failed() const noexcept {
  return engine_->failed();
}
QueueStats Queue::stats() const noexcept {
  return engine_->stats();
}
nlohmann::json Queue::stats_json() const {
  return to_json(stats());
}

}  // namespace vifd::backend
