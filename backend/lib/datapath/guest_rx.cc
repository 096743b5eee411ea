// Guest RX (backend -> frontend), after Linux netback's rx.c: frames from the
// TAP (read into preallocated buffers) and from the switch (descriptors of
// another guest's grants) wait in a bounded backlog until the frontend posts
// RX requests; a batch of frames becomes one grant-copy call into the posted
// pages (up to a page per slot, the first slot's data after the frontend's
// xdp-headroom, the GSO and XDP extras in the slots after the first), then
// the responses are pushed and the frontend notified if it asked. A
// frontend that posts nothing stalls only itself: the backlog is bounded and
// flushed by the stall timer.
#include <time.h>

#include <algorithm>
#include <cstring>
#include <system_error>

#include "backend/lib/datapath/queue_engine.h"
#include "common/net/tap_device.h"

namespace vifd::backend::detail {

namespace {

std::uint32_t data_slots_for(std::uint32_t length) noexcept {
  const auto page = static_cast<std::uint32_t>(protocol::kPageSize);
  return std::max<std::uint32_t>(1, (length + page - 1) / page);
}

}  // namespace

std::uint8_t* QueueEngine::rx_buffer(std::uint32_t offset) noexcept {
  return rx_pool_.get() + offset;
}

namespace {

std::uint32_t pool_aligned(std::uint32_t length) noexcept {
  constexpr auto kMask = static_cast<std::uint32_t>(kRxPoolAlignment - 1);
  return (length + kMask) & ~kMask;
}

}  // namespace

std::uint32_t QueueEngine::rx_pool_reserve() const noexcept {
  // The pool's size guarantees the room (see the constructor); the
  // alternative would be reading past it.
  if (rx_pool_wrapped_) {
    return rx_pool_tail_;  // free: [tail, head)
  }
  if (rx_pool_tail_ + rx_frame_capacity_ <= rx_pool_size_) {
    return rx_pool_tail_;  // free: [tail, end)
  }
  return 0;  // free: [0, head)
}

void QueueEngine::rx_pool_commit(std::uint32_t offset, std::uint32_t length) noexcept {
  if (rx_pool_frames_ == 0) {
    rx_pool_head_ = offset;
  } else if (offset == 0 && !rx_pool_wrapped_) {
    rx_pool_wrapped_ = true;
    rx_pool_wrap_end_ = rx_pool_tail_;
  }
  rx_pool_tail_ = offset + pool_aligned(length);
  ++rx_pool_frames_;
}

void QueueEngine::rx_pool_release(const RxItem& item) noexcept {
  // Frames leave in the order they came (the backlog is a queue).
  if (--rx_pool_frames_ == 0) {
    rx_pool_head_ = rx_pool_tail_ = rx_pool_wrap_end_ = 0;
    rx_pool_wrapped_ = false;
    return;
  }
  rx_pool_head_ = item.buffer + pool_aligned(item.length);
  if (rx_pool_wrapped_ && rx_pool_head_ == rx_pool_wrap_end_) {
    rx_pool_head_ = 0;
    rx_pool_wrapped_ = false;
  }
}

std::uint32_t QueueEngine::rx_data_slots(std::uint32_t length) const noexcept {
  return data_slots_for(rx_headroom_ + length);
}

std::uint32_t QueueEngine::rx_slots_needed(const RxItem& item) const noexcept {
  return rx_data_slots(item.length) + (item.meta.gso_type != net::GsoType::kNone ? 1 : 0) +
         (rx_headroom_ != 0 ? 1 : 0);
}

bool QueueEngine::rx_accepts(const RxItem& item, DropReason& reason) const noexcept {
  const std::uint32_t data_slots = rx_data_slots(item.length);
  // Without feature-sg a frame must fit one page; with it, netfront takes at
  // most XEN_NETIF_NR_SLOTS_MIN slots.
  if ((data_slots > 1 && !setup_.features.sg) || data_slots > kMaxTxDataSlots ||
      rx_slots_needed(item) > rx_.size()) {
    reason = DropReason::kRxFrameTooLarge;
    return false;
  }
  if ((item.meta.gso_type == net::GsoType::kTcpv4 && !setup_.features.gso_tcpv4) ||
      (item.meta.gso_type == net::GsoType::kTcpv6 && !setup_.features.gso_tcpv6)) {
    reason = DropReason::kRxGsoNotNegotiated;
    return false;
  }
  return true;
}

void QueueEngine::rx_release(const RxItem& item, ForwardResult result) noexcept {
  if (item.kind == RxItem::Kind::kForward) {
    const ForwardDescriptor& frame = rx_descriptors_[item.slot];
    if (rx_completions_.size() == rx_completions_.capacity()) {
      rx_post_completions();
    }
    rx_completions_.push_back({frame.sender, {frame.handle, result}});
  } else {
    rx_pool_release(item);
  }
  rx_free_slots_.push_back(item.slot);
}

bool QueueEngine::rx_backlog_room(std::uint32_t length) const noexcept {
  if (rx_stalled_ || rx_backlog_count_ == rx_backlog_.size()) {
    return false;
  }
  return rx_backlog_count_ == 0 || rx_backlog_bytes_ + length <= setup_.rx_backlog_bytes;
}

void QueueEngine::rx_backlog_push(const RxItem& item) noexcept {
  rx_backlog_[(rx_backlog_head_ + rx_backlog_count_) % rx_backlog_.size()] = item;
  ++rx_backlog_count_;
  rx_backlog_bytes_ += item.length;
  counters_.rx_backlog_bytes.set(rx_backlog_bytes_);
  if (rx_backlog_bytes_ > rx_backlog_peak_bytes_) {
    rx_backlog_peak_bytes_ = rx_backlog_bytes_;
    counters_.rx_backlog_peak_bytes.set(rx_backlog_peak_bytes_);
  }
}

RxItem QueueEngine::rx_backlog_pop() noexcept {
  const RxItem item = rx_backlog_[rx_backlog_head_];
  rx_backlog_head_ = (rx_backlog_head_ + 1) % rx_backlog_.size();
  --rx_backlog_count_;
  rx_backlog_bytes_ -= item.length;
  counters_.rx_backlog_bytes.set(rx_backlog_bytes_);
  return item;
}

void QueueEngine::rx_drop_expired(Clock::time_point now) noexcept {
  // The backlog is in arrival order, so the expired frames are at its head
  // (netback's xenvif_rx_queue_drop_expired). A forwarded frame's slots go
  // back to its sender, which answers them OKAY.
  while (rx_backlog_count_ != 0 &&
         now - rx_backlog_[rx_backlog_head_].enqueued >= setup_.rx_drain_timeout) {
    const RxItem item = rx_backlog_pop();
    counters_.drop(DropReason::kRxDrainTimeout);
    rx_release(item, ForwardResult::kDropped);
  }
}

void QueueEngine::rx_post_completions() noexcept {
  // One wake-up per sender and batch: group the completions by sender.
  for (std::size_t i = 0; i < rx_completions_.size(); ++i) {
    SwitchEndpoint* sender = rx_completions_[i].first;
    if (sender == nullptr) {
      continue;
    }
    rx_completion_batch_.clear();
    for (std::size_t j = i; j < rx_completions_.size(); ++j) {
      if (rx_completions_[j].first != sender) {
        continue;
      }
      rx_completion_batch_.push_back(rx_completions_[j].second);
      rx_completions_[j].first = nullptr;
    }
    // The sender may be gone once this returns (see switch.h).
    sender->post_completions(rx_completion_batch_);
  }
  rx_completions_.clear();
}

void QueueEngine::rx_flush_backlog(DropReason reason) noexcept {
  while (rx_backlog_count_ != 0) {
    const RxItem item = rx_backlog_pop();
    counters_.drop(reason);
    rx_release(item, ForwardResult::kDropped);
  }
}

void QueueEngine::rx_drop_stopped_senders() noexcept {
  std::size_t kept = 0;
  const std::size_t size = rx_backlog_.size();
  for (std::size_t i = 0; i < rx_backlog_count_; ++i) {
    const RxItem item = rx_backlog_[(rx_backlog_head_ + i) % size];
    if (item.kind == RxItem::Kind::kForward && rx_descriptors_[item.slot].sender->stopping()) {
      counters_.drop(DropReason::kRxPortStopped);
      rx_backlog_bytes_ -= item.length;
      rx_release(item, ForwardResult::kDropped);
      continue;
    }
    rx_backlog_[(rx_backlog_head_ + kept) % size] = item;
    ++kept;
  }
  rx_backlog_count_ = kept;
  counters_.rx_backlog_bytes.set(rx_backlog_bytes_);
}

void QueueEngine::rx_ingest() noexcept {
  // The frames of this turn, ingested and delivered, see one headroom.
  // The control plane validated it; the page bound keeps the slot
  // arithmetic sound whatever it stored.
  if (setup_.xdp_headroom) {
    rx_headroom_ = std::min<std::uint16_t>(setup_.xdp_headroom->load(std::memory_order_relaxed),
                                           protocol::kPageSize - 1);
  }
  // A stalled queue drops frames on arrival until the guest posts buffers
  // again (netback turns the carrier back on then).
  if (rx_stalled_ && (rx_tail_ != rx_head_ || rx_.pending_requests().count != 0)) {
    rx_stalled_ = false;
  }
  rx_ingest_switch();
  if (tap_ready_) {
    tap_ready_ = rx_ingest_tap();
  }
}

void QueueEngine::rx_ingest_switch() noexcept {
  if (!endpoint_) {
    return;
  }
  ForwardDescriptor discard;
  // Bounded by what the inbox can hold, so a flood of senders cannot keep
  // this thread from its own rings.
  for (std::size_t n = 0; n < setup_.switch_inbox_frames; ++n) {
    // A free descriptor exists whenever the backlog has a free place.
    const bool room = !failed() && !rx_stalled_ && rx_backlog_count_ < rx_backlog_.size();
    if (!room) {
      if (!endpoint_->pop_frame(discard)) {
        break;
      }
      counters_.drop(failed() ? DropReason::kRxPortStopped : DropReason::kRxNoBuffers);
      if (rx_completions_.size() == rx_completions_.capacity()) {
        rx_post_completions();
      }
      rx_completions_.push_back({discard.sender, {discard.handle, ForwardResult::kDropped}});
      continue;
    }
    const std::uint32_t slot = rx_free_slots_.back();
    ForwardDescriptor& frame = rx_descriptors_[slot];
    if (!endpoint_->pop_frame(frame)) {
      break;
    }
    rx_free_slots_.pop_back();
    RxItem item{RxItem::Kind::kForward, slot, frame.length, frame.meta, frame.sent};
    DropReason reason{};
    if (!rx_accepts(item, reason)) {
      counters_.drop(reason);
      rx_release(item, ForwardResult::kDropped);
      continue;
    }
    if (!rx_backlog_room(item.length)) {
      counters_.drop(DropReason::kRxNoBuffers);
      rx_release(item, ForwardResult::kDropped);
      continue;
    }
    rx_backlog_push(item);
  }
}

bool QueueEngine::rx_ingest_tap() noexcept {
  if (setup_.tap_fd < 0 || failed()) {
    return false;
  }
  const Clock::time_point now = Clock::now();
  for (std::size_t n = 0; n <= rx_backlog_.size(); ++n) {
    // With no room the frame is still read (into the pool's free bytes,
    // not kept) and dropped: a guest that posts no buffers must not back up
    // the host.
    const bool room = !rx_stalled_ && rx_backlog_count_ < rx_backlog_.size();
    const std::uint32_t offset = rx_pool_reserve();
    net::VirtioNetHdr header{};
    const std::span<std::uint8_t> buffer(rx_buffer(offset), rx_frame_capacity_);
    const net::TapIoResult read = net::tap_read(setup_.tap_fd, header, buffer);
    if (read.status == net::TapIoStatus::kWouldBlock) {
      return false;
    }
    if (read.status == net::TapIoStatus::kError) {
      counters_.drop(DropReason::kRxTapError);
      if (log_limiter_.allow(now)) {
        log_->error("{}: TAP read: {}", context_, std::generic_category().message(read.error));
      }
      return false;
    }
    counters_.tap_reads.add();
    if (read.status == net::TapIoStatus::kOversize) {
      counters_.drop(DropReason::kRxTapOversize);
      continue;
    }
    if (!room) {
      counters_.drop(DropReason::kRxNoBuffers);
      continue;
    }
    if (!rx_backlog_room(static_cast<std::uint32_t>(read.bytes))) {
      counters_.drop(DropReason::kRxNoBuffers);
      continue;
    }
    const std::span<std::uint8_t> frame = buffer.first(read.bytes);
    RxItem item{RxItem::Kind::kTap,
                rx_free_slots_.back(),
                static_cast<std::uint32_t>(read.bytes),
                {},
                now,
                offset};
    net::PacketStatus status = net::meta_from_virtio(header, item.meta);
    if (status == net::PacketStatus::kOk && frame.size() < kEthernetHeaderSize) {
      status = net::PacketStatus::kTruncated;
    }
    if (status != net::PacketStatus::kOk) {
      counters_.drop(DropReason::kRxBadOffload);
      continue;
    }
    // netback drops multicast the frontend did not subscribe to
    // (xenvif_mcast_match); broadcast always passes.
    const bool group = (frame[0] & 0x01U) != 0;
    const bool broadcast =
        std::all_of(frame.begin(), frame.begin() + 6, [](std::uint8_t b) { return b == 0xFF; });
    if (group && !broadcast && multicast_->enabled() &&
        !multicast_->contains(std::span<const std::uint8_t, 6>(frame.data(), 6))) {
      counters_.drop(DropReason::kRxMulticastFiltered);
      continue;
    }
    // A partial checksum the frontend cannot take is finished here; GSO it
    // did not negotiate is refused (the TAP's offloads should prevent it).
    status = net::adapt_to_peer(frame, item.meta, frontend_offloads_);
    if (status != net::PacketStatus::kOk) {
      counters_.drop(status == net::PacketStatus::kGsoNotSupportedByPeer
                         ? DropReason::kRxGsoNotNegotiated
                         : DropReason::kRxBadOffload);
      continue;
    }
    DropReason reason{};
    if (!rx_accepts(item, reason)) {
      counters_.drop(reason);
      continue;
    }
    rx_free_slots_.pop_back();
    rx_pool_commit(offset, item.length);
    rx_backlog_push(item);
  }
  // The budget is spent: the TAP may hold more, read on in the next turn.
  return true;
}

bool QueueEngine::rx_take_requests(std::size_t needed) noexcept {
  if (rx_tail_ - rx_head_ >= needed) {
    return true;
  }
  if (rx_head_ != 0) {
    std::copy(rx_staging_.begin() + static_cast<std::ptrdiff_t>(rx_head_),
              rx_staging_.begin() + static_cast<std::ptrdiff_t>(rx_tail_), rx_staging_.begin());
    rx_tail_ -= rx_head_;
    rx_head_ = 0;
  }
  const auto taken = rx_.take_requests(std::span(rx_staging_).subspan(rx_tail_));
  if (taken.status == protocol::RingStatus::kProducerOverflow) {
    fatal("RX request producer index overflows the ring");
    return false;
  }
  if (taken.count != 0) {
    // The guest posted buffers: it is alive, whatever the backlog looks like.
    rx_tail_ += taken.count;
    rx_blocked_since_.reset();
    rx_stalled_ = false;
  }
  return rx_tail_ - rx_head_ >= needed;
}

void QueueEngine::rx_build(RxDelivery& delivery) noexcept {
  const RxItem& item = delivery.item;
  const std::uint32_t data_slots = rx_data_slots(item.length);
  const bool gso = item.meta.gso_type != net::GsoType::kNone;
  const std::uint16_t headroom = rx_headroom_;
  const std::uint16_t first_flags = static_cast<std::uint16_t>(
      net::netif_rx_flags(item.meta) | (headroom != 0 ? protocol::kRxfExtraInfo : 0));
  const platform::DomId frontend = setup_.frontend_domid;
  const ForwardDescriptor* frame =
      item.kind == RxItem::Kind::kForward ? &rx_descriptors_[item.slot] : nullptr;
  std::size_t source_slot = 0;  // switch: position in the sender's slots
  // The sender's queue checked the frame's first bytes and sent them along:
  // they come from the descriptor, only the rest from the sender's grants.
  const std::uint16_t header_length = frame != nullptr ? frame->header_length : 0;
  std::uint16_t header_copied = 0;
  std::uint32_t source_offset = header_length;
  std::uint32_t position = 0;
  std::uint32_t remaining = item.length;

  const auto push_response = [&](const protocol::RxResponse& response) {
    rx_responses_[delivery.first_response + delivery.response_count] = response;
    return delivery.first_response + delivery.response_count++;
  };
  const auto add_segment = [&](const platform::GrantCopySegment& segment, std::uint32_t response) {
    const std::uint32_t index = delivery.first_segment + delivery.segment_count++;
    rx_segments_[index] = segment;
    rx_segment_response_[index] = response;
  };

  for (std::uint32_t s = 0; s < data_slots; ++s) {
    const protocol::RxRequest request = rx_staging_[rx_head_++];
    // The first slot's data starts after the headroom; the response says
    // where (netfront also takes it from the XDP extra), `status` is the
    // data's length.
    const std::uint16_t start = s == 0 ? headroom : 0;
    const auto chunk =
        static_cast<std::uint16_t>(std::min<std::uint32_t>(remaining, protocol::kPageSize - start));
    remaining -= chunk;
    protocol::RxResponse response{};
    response.id = request.id;
    response.offset = start;
    response.flags = static_cast<std::uint16_t>((s == 0 ? first_flags : 0) |
                                                (remaining != 0 ? protocol::kRxfMoreData : 0));
    response.status = static_cast<std::int16_t>(chunk);
    const std::uint32_t response_index = push_response(response);

    if (frame == nullptr) {
      platform::GrantCopySegment segment{};
      segment.source.virt = rx_buffer(item.buffer) + position;
      segment.dest.foreign = {request.gref, start, frontend};
      segment.len = chunk;
      segment.flags = platform::kCopyDestGref;
      add_segment(segment, response_index);
    } else {
      // Both sides foreign: the hypervisor copies from the sender's granted
      // page straight into this guest's posted page.
      std::uint16_t filled = 0;
      // A large headroom leaves less than the header in the first slot.
      if (header_copied < header_length) {
        const auto len = static_cast<std::uint16_t>(
            std::min<std::uint32_t>(header_length - header_copied, chunk));
        platform::GrantCopySegment segment{};
        segment.source.virt =
            rx_descriptors_[item.slot].header.data() + header_copied;  // only read
        segment.dest.foreign = {request.gref, start, frontend};
        segment.len = len;
        segment.flags = platform::kCopyDestGref;
        add_segment(segment, response_index);
        filled = len;
        header_copied = static_cast<std::uint16_t>(header_copied + len);
      }
      while (filled < chunk && source_slot < frame->slot_count) {
        const ForwardSlot& source = frame->slots[source_slot];
        const std::uint32_t available = source.size - source_offset;
        if (available == 0) {
          ++source_slot;
          source_offset = 0;
          continue;
        }
        const auto len =
            static_cast<std::uint16_t>(std::min<std::uint32_t>(available, chunk - filled));
        platform::GrantCopySegment segment{};
        if (source.mapped != nullptr) {
          // The sender's mapping of its page: grant_copy() turns this into
          // one memcpy when our buffer is mapped too.
          segment.source.virt = const_cast<std::uint8_t*>(source.mapped + source_offset);
          segment.flags = platform::kCopyDestGref;
        } else {
          segment.source.foreign = {source.gref,
                                    static_cast<std::uint16_t>(source.offset + source_offset),
                                    frame->sender_domid};
          segment.flags = platform::kCopySourceGref | platform::kCopyDestGref;
        }
        segment.dest.foreign = {request.gref, static_cast<std::uint16_t>(start + filled), frontend};
        segment.len = len;
        add_segment(segment, response_index);
        filled = static_cast<std::uint16_t>(filled + len);
        source_offset += len;
      }
    }
    position += chunk;

    // The extras go in the slots after the first data slot (rx.c: "extras
    // must go after the first data slot"), in type order as netback sends
    // them; each uses up a request whose buffer is not written (netfront
    // recycles it).
    const auto push_extra = [&](protocol::ExtraInfo extra) {
      ++rx_head_;
      protocol::RxResponse as_response{};
      static_assert(sizeof(extra) == sizeof(as_response));
      std::memcpy(&as_response, &extra, sizeof(extra));
      push_response(as_response);
    };
    if (s == 0 && gso) {
      protocol::ExtraInfo extra{};
      net::fill_gso_extra(item.meta, extra);
      if (headroom != 0) {
        extra.flags |= protocol::kExtraFlagMore;
      }
      push_extra(extra);
    }
    if (s == 0 && headroom != 0) {
      // Linux netfront reads the first slot's offset from here.
      protocol::ExtraInfo extra{};
      extra.type = protocol::kExtraTypeXdp;
      extra.u.pad[0] = headroom;  // u.xdp.headroom in Linux's netif.h
      push_extra(extra);
    }
  }
}

void QueueEngine::rx_capture(const RxItem& item) noexcept {
  const ForwardDescriptor& frame = rx_descriptors_[item.slot];
  struct Held {
    CaptureRing* ring = nullptr;
    CaptureRing::Reservation reservation;
    CaptureDirection direction = CaptureDirection::kFromVif;
  };
  std::array<Held, 2 * CaptureTaps::kMaxPerPort> held{};
  std::size_t held_count = 0;
  // The sender's port sees the frame leave, ours sees it arrive. The
  // sender's endpoint is valid until this frame's completion is posted.
  const std::array<std::pair<CaptureTaps*, CaptureDirection>, 2> ports{{
      {frame.sender->taps(), CaptureDirection::kFromVif},
      {endpoint_->taps(), CaptureDirection::kToVif},
  }};
  for (const auto& [taps, direction] : ports) {
    if (taps == nullptr) {
      continue;
    }
    // Announced before the ring pointers are read (see CaptureTaps).
    taps->users.fetch_add(1, std::memory_order_seq_cst);
    for (auto& slot : taps->rings) {
      CaptureRing* ring = slot.load(std::memory_order_seq_cst);
      if (ring == nullptr) {
        continue;
      }
      const CaptureRing::Reservation reservation = ring->reserve();
      if (reservation) {
        held[held_count++] = Held{ring, reservation, direction};
      }
    }
  }

  if (held_count != 0) {
    // One copy into the reservation that keeps the most bytes; the others
    // take theirs from it.
    std::size_t widest = 0;
    for (std::size_t i = 1; i < held_count; ++i) {
      if (held[i].ring->snaplen() > held[widest].ring->snaplen()) {
        widest = i;
      }
    }
    std::uint8_t* const target = held[widest].reservation.data;
    const std::size_t wanted = std::min<std::size_t>(item.length, held[widest].ring->snaplen());
    // What the receiver got: the checked header from dom0's copy, the rest
    // from the sender's grants (as rx_build delivered it).
    std::size_t filled = std::min<std::size_t>(frame.header_length, wanted);
    std::memcpy(target, frame.header.data(), filled);
    std::size_t segment_count = 0;
    std::size_t source_slot = 0;
    std::uint32_t source_offset = frame.header_length;
    while (filled < wanted && source_slot < frame.slot_count &&
           segment_count < capture_segments_.size()) {
      const ForwardSlot& source = frame.slots[source_slot];
      if (source_offset >= source.size) {
        ++source_slot;
        source_offset = 0;
        continue;
      }
      const auto len = static_cast<std::uint16_t>(
          std::min<std::size_t>(source.size - source_offset, wanted - filled));
      if (source.mapped != nullptr) {
        // The sender's static mapping: no grant operation at all.
        std::memcpy(target + filled, source.mapped + source_offset, len);
      } else {
        platform::GrantCopySegment& segment = capture_segments_[segment_count++];
        segment = platform::GrantCopySegment{};
        segment.source.foreign = {source.gref,
                                  static_cast<std::uint16_t>(source.offset + source_offset),
                                  frame.sender_domid};
        segment.dest.virt = target + filled;
        segment.len = len;
        segment.flags = platform::kCopySourceGref;
      }
      filled += len;
      source_offset += len;
    }
    bool ok = filled == wanted;
    if (segment_count != 0) {
      grant_copy(std::span(capture_segments_.data(), segment_count));
      for (std::size_t s = 0; s < segment_count; ++s) {
        if (capture_segments_[s].status != platform::kGntstOkay) {
          ok = false;
        }
      }
    }
    timespec realtime{};
    ::clock_gettime(CLOCK_REALTIME, &realtime);
    const std::int64_t realtime_ns =
        static_cast<std::int64_t>(realtime.tv_sec) * 1'000'000'000 + realtime.tv_nsec;
    for (std::size_t i = 0; i < held_count; ++i) {
      const Held& h = held[i];
      if (!ok) {
        h.ring->abandon(h.reservation);
        continue;
      }
      const std::size_t captured = std::min(filled, h.ring->snaplen());
      if (i != widest) {
        std::memcpy(h.reservation.data, target, captured);
      }
      h.ring->commit(h.reservation, realtime_ns, item.length, static_cast<std::uint32_t>(captured),
                     h.direction);
    }
  }

  for (const auto& [taps, direction] : ports) {
    if (taps != nullptr) {
      taps->users.fetch_sub(1, std::memory_order_release);
    }
  }
}

void QueueEngine::rx_deliver(Clock::time_point now) noexcept {
  if (failed()) {
    rx_flush_backlog(DropReason::kRxPortStopped);
    return;
  }
  std::size_t deliveries = 0;
  std::uint32_t responses = 0;
  std::uint32_t segments = 0;
  while (rx_backlog_count_ != 0 && deliveries < rx_deliveries_.size()) {
    const RxItem& item = rx_backlog_[rx_backlog_head_];
    // The frontend may have asked for more headroom since the frame came.
    DropReason reason{};
    if (!rx_accepts(item, reason)) {
      // After the frames ahead of it: the pool gives bytes back in order.
      if (deliveries != 0) {
        break;
      }
      const RxItem dropped = rx_backlog_pop();
      counters_.drop(reason);
      rx_release(dropped, ForwardResult::kDropped);
      continue;
    }
    const std::uint32_t needed = rx_slots_needed(item);
    const std::uint32_t data_slots = rx_data_slots(item.length);
    // A forwarded frame: per slot, its share of the header copy and of the
    // sender's slots; each header byte and source slot boundary splits once.
    const std::uint32_t max_segments =
        item.kind == RxItem::Kind::kForward
            ? 2 * data_slots + rx_descriptors_[item.slot].slot_count + 1
            : data_slots;
    if (segments + max_segments > rx_segments_.size() ||
        responses + needed > rx_responses_.size()) {
      break;
    }
    if (!rx_take_requests(needed)) {
      break;
    }
    RxDelivery& delivery = rx_deliveries_[deliveries++];
    delivery = RxDelivery{item, responses, 0, segments, 0};
    rx_build(delivery);
    responses += delivery.response_count;
    segments += delivery.segment_count;
    rx_backlog_pop();
  }

  if (deliveries != 0) {
    grant_copy(std::span(rx_segments_.data(), segments));
    for (std::uint32_t s = 0; s < segments; ++s) {
      if (rx_segments_[s].status != platform::kGntstOkay) {
        rx_responses_[rx_segment_response_[s]].status = protocol::kRspError;
      }
    }
    for (std::size_t d = 0; d < deliveries; ++d) {
      const RxDelivery& delivery = rx_deliveries_[d];
      bool ok = true;
      for (std::uint32_t s = 0; s < delivery.segment_count; ++s) {
        if (rx_segments_[delivery.first_segment + s].status != platform::kGntstOkay) {
          ok = false;
        }
      }
      if (ok) {
        counters_.rx_packets.add();
        counters_.rx_bytes.add(delivery.item.length);
        if (delivery.item.kind == RxItem::Kind::kForward) {
          // The header segment came from dom0's copy, not grant to grant.
          const bool header = rx_descriptors_[delivery.item.slot].header_length != 0;
          counters_.switch_received_packets.add();
          counters_.switch_received_segments.add(delivery.segment_count - (header ? 1 : 0));
          // The one load a switched frame costs while nobody captures.
          if (setup_.network_switch->capturing()) {
            rx_capture(delivery.item);
          }
        }
      } else {
        counters_.drop(DropReason::kRxGrantCopyFailed);
        if (log_limiter_.allow(now)) {
          log_->warn("{}: RX grant copy failed", context_);
        }
      }
      rx_release(delivery.item, ok ? ForwardResult::kDelivered : ForwardResult::kCopyFailed);
    }
    // Senders learn of the delivery before the guest can see it, so a
    // sender pacing itself on what arrived never finds the slots still held.
    rx_post_completions();
    const std::size_t pushed =
        rx_.push_responses(std::span<const protocol::RxResponse>(rx_responses_.data(), responses));
    if (pushed != responses && log_limiter_.allow(now)) {
      log_->critical("{}: {} RX responses but {} owed", context_, responses, pushed);
    }
    if (rx_.push_responses_and_check_notify()) {
      notify_rx_ = true;
    }
    counters_.batch(deliveries);
    rx_blocked_since_.reset();
  }

  rx_drop_expired(now);

  // Stall detection (netback's rx_stall_timeout): frames waiting while the
  // guest posts nothing for too long are dropped, and new frames are
  // dropped on arrival until it posts again.
  if (rx_backlog_count_ == 0) {
    rx_blocked_since_.reset();
  } else if (!rx_blocked_since_) {
    rx_blocked_since_ = now;
  } else if (now - *rx_blocked_since_ >= setup_.rx_stall_timeout) {
    counters_.rx_stalls.add();
    if (log_limiter_.allow(now)) {
      log_->warn(
          "{}: guest posted no RX buffers for {} ms; dropping {} "
          "frames",
          context_, setup_.rx_stall_timeout.count(), rx_backlog_count_);
    }
    rx_flush_backlog(DropReason::kRxStallFlush);
    rx_stalled_ = true;
    rx_blocked_since_.reset();
  }
}

}  // namespace vifd::backend::detail
