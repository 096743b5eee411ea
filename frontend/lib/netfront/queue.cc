#include "frontend/lib/netfront/queue.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <exception>

#include "common/platform/error.h"

namespace vifd::frontend {
namespace {

constexpr std::size_t kPage = platform::kPageSize;
constexpr protocol::RingIndex kRingMask = NetfrontQueue::kRingSize - 1;
// reserve_tx() accepts one byte beyond the largest frame, so a TAP read that
// fills the whole reservation can be recognised as truncated.
constexpr std::size_t kMaxReservation = 16 * kPage;
static_assert(kMaxReservation > NetfrontQueue::kMaxFrame);

std::size_t pages_for(std::size_t bytes) {
  return std::max<std::size_t>(1, (bytes + kPage - 1) / kPage);
}

// An extra-info slot travels in a request slot; the rest of the slot is zero.
protocol::TxRequest extra_as_request(const protocol::ExtraInfo& extra) {
  std::array<std::byte, sizeof(protocol::TxRequest)> bytes{};
  std::memcpy(bytes.data(), &extra, sizeof(extra));
  return std::bit_cast<protocol::TxRequest>(bytes);
}

protocol::TxRequest tx_request(platform::GrantRef gref, std::uint16_t flags, std::uint16_t id,
                               std::uint16_t size) {
  protocol::TxRequest request{};
  request.gref = gref;
  request.offset = 0;
  request.flags = flags;
  request.id = id;
  request.size = size;
  return request;
}

protocol::RxRequest rx_request(std::uint16_t id, platform::GrantRef gref) {
  protocol::RxRequest request{};
  request.id = id;
  request.gref = gref;
  return request;
}

const char* tx_status_name(std::int16_t status) {
  switch (status) {
    case protocol::kRspOkay:
      return "OKAY";
    case protocol::kRspError:
      return "ERROR";
    case protocol::kRspDropped:
      return "DROPPED";
    case protocol::kRspNull:
      return "NULL";
    default:
      return "unknown";
  }
}

protocol::ExtraInfo response_as_extra(const protocol::RxResponse& response) {
  static_assert(sizeof(protocol::ExtraInfo) == sizeof(protocol::RxResponse));
  return std::bit_cast<protocol::ExtraInfo>(response);
}

}  // namespace

const char* to_string(TxStatus status) noexcept {
  switch (status) {
    case TxStatus::kOk:
      return "ok";
    case TxStatus::kNoSpace:
      return "no_space";
    case TxStatus::kBadLength:
      return "bad_length";
    case TxStatus::kNeedsScatterGather:
      return "needs_scatter_gather";
    case TxStatus::kGsoNotNegotiated:
      return "gso_not_negotiated";
    case TxStatus::kBadMeta:
      return "bad_meta";
    case TxStatus::kFailed:
      return "failed";
  }
  return "unknown";
}

NetfrontQueue::NetfrontQueue(platform::Platform& platform, platform::GrantShare& share,
                             platform::DomId backend, unsigned index, bool split,
                             const TxCapabilities& tx)
    : index_(index),
      backend_(backend),
      tx_caps_(tx),
      events_(platform.open_event_channels()),
      split_(split),
      exact_readiness_(events_->readable_exactly_while_pending()),
      // The backend writes responses into both rings, so both are writable.
      rings_(std::make_unique<SharedPages>(share, backend, 2, true)),
      tx_pool_(std::make_unique<SharedPages>(share, backend, kRingSize, false)),
      rx_pool_(std::make_unique<SharedPages>(share, backend, kRingSize, true)),
      tx_ring_(protocol::TxFrontRing::init(rings_->page(0))),
      rx_ring_(protocol::RxFrontRing::init(rings_->page(1))) {
  tx_free_.reserve(kRingSize);
  // Popped from the back: low ids go out first, which keeps traces readable.
  for (std::size_t id = kRingSize; id-- > 0;) tx_free_.push_back(static_cast<std::uint16_t>(id));
  tx_reserved_.reserve(kRingSize);
  tx_reserved_spans_.reserve(kRingSize);
  rx_segments_.reserve(kMaxRxSlots + 1);

  tx_port_ = events_->bind_unbound(backend);
  if (split_) {
    try {
      rx_port_ = events_->bind_unbound(backend);
    } catch (...) {
      events_->unbind(tx_port_);
      throw;
    }
  } else {
    rx_port_ = tx_port_;
  }

  // Post every RX buffer now: position P gets id and page P mod size.
  for (protocol::RingIndex position = 0; position < kRingSize; ++position) {
    if (!rx_ring_.push_request(
            rx_request(static_cast<std::uint16_t>(position), rx_pool_->ref(position)))) {
      break;
    }
  }
  // No notification: the backend reads the ring when it connects.
  rx_ring_.publish_requests();
  rx_reposted_ = 0;
}

NetfrontQueue::~NetfrontQueue() {
  try {
    events_->unbind(tx_port_);
    if (split_) events_->unbind(rx_port_);
  } catch (const std::exception& error) {
    spdlog::error("vif-front: queue {}: cannot unbind event channel: {}", index_, error.what());
  }
}

QueueKeys NetfrontQueue::keys() const noexcept {
  return {rings_->ref(0), rings_->ref(1), tx_port_, rx_port_, split_};
}

void NetfrontQueue::fail(std::string reason) noexcept {
  if (failure_.empty()) {
    failure_ = std::move(reason);
    spdlog::error("vif-front: queue {}: backend dom{} broke the protocol: {}", index_, backend_,
                  failure_);
  }
}

void NetfrontQueue::notify(platform::EvtchnPort port) noexcept {
  if (events_->notify(port) == 0) ++stats_.notifications_sent;
}

// ---- TX ----------------------------------------------------------------------

bool NetfrontQueue::tx_can_reserve(std::size_t max_bytes) const noexcept {
  const std::size_t pages = pages_for(max_bytes);
  // One slot more than pages: a GSO extra-info slot.
  return !failed() && max_bytes <= kMaxReservation && tx_free_.size() >= pages &&
         tx_ring_.free_requests() >= pages + 1;
}

std::span<const std::span<std::uint8_t>> NetfrontQueue::reserve_tx(std::size_t max_bytes) noexcept {
  release_tx();
  if (!tx_can_reserve(max_bytes)) return {};
  const std::size_t pages = pages_for(max_bytes);
  for (std::size_t i = 0; i < pages; ++i) {
    const std::uint16_t id = tx_free_.back();
    tx_free_.pop_back();
    tx_reserved_.push_back(id);
    const std::span<std::byte> page = tx_pool_->page(id);
    tx_reserved_spans_.emplace_back(reinterpret_cast<std::uint8_t*>(page.data()), page.size());
  }
  return tx_reserved_spans_;
}

void NetfrontQueue::release_tx() noexcept {
  // Back in reverse order so the next reservation gets the same pages.
  for (auto it = tx_reserved_.rbegin(); it != tx_reserved_.rend(); ++it) tx_free_.push_back(*it);
  tx_reserved_.clear();
  tx_reserved_spans_.clear();
}

TxStatus NetfrontQueue::commit_tx(std::size_t length, const net::PacketMeta& meta) noexcept {
  auto refuse = [this](TxStatus status) {
    release_tx();
    return status;
  };
  if (failed()) return refuse(TxStatus::kFailed);
  if (length == 0 || length > kMaxFrame || length > tx_reserved_.size() * kPage) {
    return refuse(TxStatus::kBadLength);
  }
  const std::size_t slots = pages_for(length);
  if (slots > 1 && !tx_caps_.sg) return refuse(TxStatus::kNeedsScatterGather);
  if ((meta.gso_type == net::GsoType::kTcpv4 && !tx_caps_.gso_tcpv4) ||
      (meta.gso_type == net::GsoType::kTcpv6 && !tx_caps_.gso_tcpv6)) {
    return refuse(TxStatus::kGsoNotNegotiated);
  }
  if (meta.gso_type != net::GsoType::kNone && meta.gso_size == 0) return refuse(TxStatus::kBadMeta);

  std::uint16_t flags = net::netif_tx_flags(meta);
  if (slots > 1) flags |= protocol::kTxfMoreData;
  // The first slot carries the size of the whole packet; its own share is
  // what the continuation slots leave (netif.h, "size" of the first request).
  std::array<protocol::TxRequest, 18> requests{};
  std::size_t count = 0;
  requests[count++] = tx_request(tx_pool_->ref(tx_reserved_[0]), flags, tx_reserved_[0],
                                 static_cast<std::uint16_t>(length));
  if (meta.gso_type != net::GsoType::kNone) {
    protocol::ExtraInfo extra{};
    net::fill_gso_extra(meta, extra);
    requests[count++] = extra_as_request(extra);
  }
  std::size_t remaining = length - std::min(length, kPage);
  for (std::size_t slot = 1; slot < slots; ++slot) {
    const std::size_t bytes = std::min(remaining, kPage);
    remaining -= bytes;
    const std::uint16_t id = tx_reserved_[slot];
    const std::uint16_t more = slot + 1 < slots ? protocol::kTxfMoreData : 0;
    requests[count++] = tx_request(tx_pool_->ref(id), more, id, static_cast<std::uint16_t>(bytes));
  }
  // reserve_tx() checked that pages + 1 slots are free, and nothing else
  // fills the ring in between: this always fits.
  if (tx_ring_.push_requests(std::span(requests.data(), count)) != count) {
    return refuse(TxStatus::kNoSpace);
  }
  for (std::size_t slot = 0; slot < slots; ++slot) tx_in_flight_[tx_reserved_[slot]] = true;
  if (meta.gso_type != net::GsoType::kNone) ++tx_extras_in_flight_;
  tx_reserved_.erase(tx_reserved_.begin(),
                     tx_reserved_.begin() + static_cast<std::ptrdiff_t>(slots));
  release_tx();
  ++stats_.tx_packets;
  stats_.tx_bytes += length;
  return TxStatus::kOk;
}

TxStatus NetfrontQueue::send(std::span<const std::uint8_t> frame,
                             const net::PacketMeta& meta) noexcept {
  if (failed()) return TxStatus::kFailed;
  if (frame.empty() || frame.size() > kMaxFrame) return TxStatus::kBadLength;
  const auto pages = reserve_tx(frame.size());
  if (pages.empty()) return TxStatus::kNoSpace;
  std::size_t done = 0;
  for (const auto page : pages) {
    const std::size_t bytes = std::min(page.size(), frame.size() - done);
    std::memcpy(page.data(), frame.data() + done, bytes);
    done += bytes;
  }
  return commit_tx(frame.size(), meta);
}

void NetfrontQueue::flush_tx() noexcept {
  if (failed()) return;
  if (tx_ring_.push_requests_and_check_notify()) notify(tx_port_);
}

void NetfrontQueue::reap_tx() noexcept {
  for (;;) {
    const protocol::TakeResult taken = tx_ring_.take_responses(tx_responses_);
    if (taken.status != protocol::RingStatus::kOk) {
      fail(
          fmt::format("TX response producer overflow: rsp_prod beyond the requests we "
                      "published (ring of {}); nothing consumed",
                      kRingSize));
      return;
    }
    if (taken.count == 0) return;
    for (std::size_t i = 0; i < taken.count; ++i) {
      const protocol::TxResponse& response = tx_responses_[i];
      // The answer to an extra-info slot: its id is whatever the slot held
      // (Linux netback leaves it), nothing to free. Only as many as we sent
      // extras are taken as such; any other NULL must name a page.
      if (response.status == protocol::kRspNull && tx_extras_in_flight_ > 0) {
        --tx_extras_in_flight_;
        continue;
      }
      if (response.id >= kRingSize) {
        fail(fmt::format("TX response id {} out of range (ring of {})", response.id, kRingSize));
        return;
      }
      if (!tx_in_flight_[response.id]) {
        fail(fmt::format("TX response (status {} {}) for id {} which is not outstanding",
                         response.status, tx_status_name(response.status), response.id));
        return;
      }
      if (response.status != protocol::kRspOkay && response.status != protocol::kRspError &&
          response.status != protocol::kRspDropped && response.status != protocol::kRspNull) {
        fail(fmt::format("TX response id {} has unknown status {}", response.id, response.status));
        return;
      }
      // Whatever the status, the backend is done with the page: free it, so
      // a backend answering with odd statuses cannot drain the pool.
      if (response.status == protocol::kRspNull) {
        ++stats_.tx_null_responses;
      } else if (response.status != protocol::kRspOkay) {
        ++stats_.tx_error_responses;
      }
      tx_in_flight_[response.id] = false;
      tx_free_.push_back(response.id);
    }
  }
}

// ---- RX ----------------------------------------------------------------------

void NetfrontQueue::finish_rx_frame(const RxHandler& handler) noexcept {
  net::PacketMeta meta;
  bool deliver = !rx_frame_bad_;
  if (deliver) {
    deliver = net::meta_from_netif_rx(rx_frame_flags_, rx_have_gso_ ? &rx_gso_extra_ : nullptr,
                                      meta) == net::PacketStatus::kOk;
  }
  if (deliver && rx_frame_length_ > kMaxFrame) {
    ++stats_.rx_too_long;
    deliver = false;
  }
  if (deliver && rx_frame_length_ > 0) {
    ++stats_.rx_packets;
    if ((rx_extra_types_ & (1U << protocol::kExtraTypeXdp)) != 0) {
      ++stats_.rx_headroom_packets;
    }
    stats_.rx_bytes += rx_frame_length_;
    if (handler) handler(RxFrame{rx_segments_, rx_frame_length_, meta});
  } else {
    ++stats_.rx_dropped;
  }
  rx_segments_.clear();
  rx_frame_length_ = 0;
  rx_frame_flags_ = 0;
  rx_frame_open_ = false;
  rx_frame_bad_ = false;
  rx_expect_extra_ = false;
  rx_have_gso_ = false;
  rx_frame_slots_ = 0;
  rx_frame_extras_ = 0;
  rx_extra_types_ = 0;
  rx_frame_start_ = rx_consumed_;
}

void NetfrontQueue::receive(const RxHandler& handler) noexcept {
  for (;;) {
    const protocol::TakeResult taken = rx_ring_.take_responses(rx_responses_);
    if (taken.status != protocol::RingStatus::kOk) {
      fail(
          fmt::format("RX response producer overflow: rsp_prod beyond the buffers we posted "
                      "(consumed up to {}, ring of {}); nothing consumed",
                      rx_consumed_, kRingSize));
      return;
    }
    if (taken.count == 0) return;
    for (std::size_t i = 0; i < taken.count; ++i) {
      const protocol::RxResponse& response = rx_responses_[i];
      const protocol::RingIndex position = rx_consumed_++;
      if (!rx_frame_open_) {
        rx_frame_open_ = true;
        rx_frame_start_ = position;
      }
      if (rx_expect_extra_) {
        // An extra-info slot uses up the buffer posted at its position
        // (netback consumes a request for it); that page is re-posted.
        // The chain is bounded here, not by the ring: an open frame keeps
        // its pages, so an endless chain would otherwise stall RX silently
        // once every posted buffer is used up.
        if (++rx_frame_extras_ > kMaxRxExtras) {
          fail(fmt::format(
              "RX extra-info chain at position {} longer than {} slots (flag MORE never cleared)",
              position, kMaxRxExtras));
          return;
        }
        const protocol::ExtraInfo extra = response_as_extra(response);
        // XDP (headroom) is one past kExtraTypeMax of the Xen header.
        const bool known =
            extra.type != protocol::kExtraTypeNone &&
            (extra.type < protocol::kExtraTypeMax || extra.type == protocol::kExtraTypeXdp);
        // The headroom it names must be where the first slot's data starts.
        const bool consistent =
            extra.type != protocol::kExtraTypeXdp || extra.u.pad[0] == rx_first_offset_;
        if (!known || !consistent || (rx_extra_types_ & (1U << extra.type)) != 0) {
          ++stats_.rx_bad_extra;
          rx_frame_bad_ = true;
        } else {
          rx_extra_types_ |= 1U << extra.type;
          if (extra.type == protocol::kExtraTypeGso) {
            rx_gso_extra_ = extra;
            rx_have_gso_ = true;
          }
        }
        rx_expect_extra_ = (extra.flags & protocol::kExtraFlagMore) != 0;
      } else {
        const std::uint16_t expected_id = static_cast<std::uint16_t>(position & kRingMask);
        if (response.id != expected_id) {
          fail(fmt::format("RX response at position {} carries id {}, expected {}", position,
                           response.id, expected_id));
          return;
        }
        const bool first = position == rx_frame_start_;
        // Error slots count too: each one holds a buffer until the frame ends.
        if (++rx_frame_slots_ > kMaxRxSlots) {
          fail(fmt::format("RX packet of more than {} slots (at position {})", kMaxRxSlots,
                           position));
          return;
        }
        if (response.status < 0) {
          // NETIF_RSP_ERROR / DROPPED: the packet is lost, the slot is not.
          rx_frame_bad_ = true;
        } else {
          const std::size_t size = static_cast<std::uint16_t>(response.status);
          if (response.offset + size > kPage) {
            fail(fmt::format("RX response id {}: offset {} + size {} exceeds the page", response.id,
                             response.offset, size));
            return;
          }
          const std::span<std::byte> page = rx_pool_->page(expected_id);
          rx_segments_.emplace_back(reinterpret_cast<std::uint8_t*>(page.data()) + response.offset,
                                    size);
          rx_frame_length_ += size;
        }
        if (first) {
          rx_first_offset_ = response.offset;
          rx_frame_flags_ = response.flags;
          rx_expect_extra_ = (response.flags & protocol::kRxfExtraInfo) != 0;
        }
        if ((response.flags & protocol::kRxfMoreData) != 0) {
          rx_frame_flags_ |= protocol::kRxfMoreData;
        } else {
          rx_frame_flags_ &= static_cast<std::uint16_t>(~protocol::kRxfMoreData);
        }
      }
      if (!rx_expect_extra_ && (rx_frame_flags_ & protocol::kRxfMoreData) == 0) {
        finish_rx_frame(handler);
      }
    }
  }
}

void NetfrontQueue::repost_rx() noexcept {
  // Positions of a frame still being assembled keep their pages.
  const protocol::RingIndex limit = rx_frame_open_ ? rx_frame_start_ : rx_consumed_;
  if (limit == rx_reposted_) return;
  while (rx_reposted_ != limit) {
    const auto id = static_cast<std::uint16_t>(rx_reposted_ & kRingMask);
    // In-order re-posting puts this buffer at position rx_reposted_ + size,
    // which has the same id: the invariant the response check relies on.
    if (!rx_ring_.push_request(rx_request(id, rx_pool_->ref(id)))) break;
    ++rx_reposted_;
  }
  if (rx_ring_.push_requests_and_check_notify()) notify(rx_port_);
}

void NetfrontQueue::drain_events() noexcept {
  while (const auto port = events_->pending()) {
    ++stats_.events_received;
    // Unmask before looking at the rings: an event raised while we process
    // is then delivered again instead of being lost.
    events_->unmask(*port);
    if (exact_readiness_) break;
  }
}

protocol::RingIndex NetfrontQueue::tx_event_batch() const noexcept {
  return std::max<protocol::RingIndex>(1, (tx_ring_.outstanding_requests() + 1) / 2);
}

PollResult NetfrontQueue::poll(const RxHandler& handler, bool events) noexcept {
  if (failed()) return {false, true};
  if (events) drain_events();
  reap_tx();
  if (!failed()) receive(handler);
  if (failed()) return {false, true};
  repost_rx();
  const bool tx_more = tx_ring_.final_check_for_responses(tx_event_batch());
  const bool rx_more = rx_ring_.final_check_for_responses();
  return {tx_more || rx_more, false};
}

}  // namespace vifd::frontend
