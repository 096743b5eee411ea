#include "frontend/lib/netfront/tap_pump.h"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vifd::frontend {
namespace {

// A virtio header plus one iovec per slot of the largest RX packet.
constexpr std::size_t kMaxIovecs = 1 + NetfrontQueue::kMaxRxSlots;

}  // namespace

TapPump::TapPump(std::size_t max_frame)
    : max_frame_(max_frame), scratch_(NetfrontQueue::kMaxFrame + 1) {}

std::size_t TapPump::tap_to_ring(int tap_fd, NetfrontQueue& queue, std::size_t budget,
                                 bool& would_block) noexcept {
  would_block = false;
  std::size_t frames = 0;
  // One byte more than the largest frame: a read that fills the whole
  // reservation was truncated by the kernel.
  const std::size_t reservation = std::min(max_frame_ + 1, NetfrontQueue::kMaxFrame + 1);
  while (frames < budget) {
    const auto pages = queue.reserve_tx(reservation);
    if (pages.empty()) break;
    net::VirtioNetHdr header{};
    std::array<iovec, 1 + 16> parts{};
    parts[0] = {&header, sizeof(header)};
    std::size_t count = 1;
    std::size_t room = reservation;
    for (const auto page : pages) {
      const std::size_t bytes = std::min(room, page.size());
      parts[count++] = {page.data(), bytes};
      room -= bytes;
    }
    const ssize_t n = ::readv(tap_fd, parts.data(), static_cast<int>(count));
    if (n < 0) {
      queue.release_tx();
      if (errno == EINTR) continue;
      would_block = true;  // EAGAIN, or an error poll() will report again
      break;
    }
    ++frames;
    const auto bytes = static_cast<std::size_t>(n);
    if (bytes <= sizeof(header)) {
      queue.release_tx();
      ++stats_.drop_bad_vnet_header;
      continue;
    }
    const std::size_t length = bytes - sizeof(header);
    if (length >= reservation) {
      queue.release_tx();
      ++stats_.drop_oversize;
      continue;
    }
    net::PacketMeta meta;
    if (net::meta_from_virtio(header, meta) != net::PacketStatus::kOk) {
      queue.release_tx();
      ++stats_.drop_bad_vnet_header;
      continue;
    }
    // netif's csum_blank needs no offsets: the backend finds the L4 header.
    if (queue.commit_tx(length, meta) == TxStatus::kOk) {
      ++stats_.tap_to_ring;
    } else {
      ++stats_.drop_tx_refused;
    }
  }
  queue.flush_tx();
  return frames;
}

bool TapPump::locate_offload(const RxFrame& frame, net::PacketMeta& meta,
                             bool& linearized) noexcept {
  linearized = false;
  const bool needs_location =
      (meta.checksum == net::ChecksumState::kPartial && !meta.csum_located) ||
      meta.gso_type != net::GsoType::kNone;
  if (!needs_location) return true;
  if (frame.segments.size() == 1) {
    // The page is ours until the next re-post; prepare_offload may seed the
    // pseudo-header sum of a GSO frame into it, as netback would.
    return net::prepare_offload(frame.segments[0], meta) == net::PacketStatus::kOk;
  }
  if (frame.length > scratch_.size()) return false;
  if (meta.checksum == net::ChecksumState::kPartial) {
    // Only the headers are read; the length checks need the frame's size.
    const auto first = frame.segments[0];
    std::memcpy(scratch_.data(), first.data(), first.size());
    net::ChecksumLocation where;
    const std::span<const std::uint8_t> view(scratch_.data(), frame.length);
    if (net::locate_checksum(view, where) == net::PacketStatus::kOk &&
        where.header_len <= first.size()) {
      if (meta.gso_type != net::GsoType::kNone) {
        const std::uint8_t version = meta.gso_type == net::GsoType::kTcpv4 ? 4 : 6;
        if (where.l4_protocol != 6 || where.ip_version != version) return false;
        meta.hdr_len = where.header_len;
      }
      meta.csum_located = true;
      meta.csum_start = where.csum_start;
      meta.csum_offset = where.csum_offset;
      return true;
    }
  }
  std::size_t done = 0;
  for (const auto segment : frame.segments) {
    std::memcpy(scratch_.data() + done, segment.data(), segment.size());
    done += segment.size();
  }
  linearized = true;
  return net::prepare_offload(std::span(scratch_.data(), frame.length), meta) ==
         net::PacketStatus::kOk;
}

void TapPump::ring_to_tap(int tap_fd, const RxFrame& frame) noexcept {
  net::PacketMeta meta = frame.meta;
  bool linearized = false;
  net::VirtioNetHdr header{};
  if (!locate_offload(frame, meta, linearized) ||
      net::meta_to_virtio(meta, header) != net::PacketStatus::kOk) {
    ++stats_.drop_rx_offload;
    return;
  }
  std::array<iovec, kMaxIovecs> parts{};
  parts[0] = {&header, sizeof(header)};
  std::size_t count = 1;
  if (linearized) {
    parts[count++] = {scratch_.data(), frame.length};
    ++stats_.rx_linearized;
  } else {
    for (const auto segment : frame.segments) {
      if (count == parts.size()) {
        ++stats_.drop_rx_offload;
        return;
      }
      parts[count++] = {segment.data(), segment.size()};
    }
  }
  for (;;) {
    if (::writev(tap_fd, parts.data(), static_cast<int>(count)) >= 0) {
      ++stats_.ring_to_tap;
      return;
    }
    if (errno != EINTR) break;
  }
  // EAGAIN: the TAP's queue is full (nobody reads it); drop as a NIC would.
  ++stats_.drop_tap_write;
}

}  // namespace vifd::frontend
