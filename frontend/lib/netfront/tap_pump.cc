#include "frontend/lib/netfront/tap_pump.h"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vifd::frontend {
namespace {

// The virtio header, the private copy of the headers, and one iovec per slot
// of the largest RX packet.
constexpr std::size_t kMaxIovecs = 2 + NetfrontQueue::kMaxRxSlots;

// Copies bytes [from, to) of the frame's segments into out + from.
void gather(const RxFrame& frame, std::size_t from, std::size_t to, std::uint8_t* out) noexcept {
  std::size_t offset = 0;
  for (const auto segment : frame.segments) {
    if (offset >= to) {
      break;
    }
    const std::size_t end = offset + segment.size();
    if (end > from) {
      const std::size_t begin = std::max(from, offset);
      const std::size_t stop = std::min(to, end);
      std::memcpy(out + begin, segment.data() + (begin - offset), stop - begin);
    }
    offset = end;
  }
}

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
                             std::size_t& copied) noexcept {
  copied = 0;
  const bool needs_location =
      (meta.checksum == net::ChecksumState::kPartial && !meta.csum_located) ||
      meta.gso_type != net::GsoType::kNone;
  if (!needs_location) return true;
  if (frame.length > scratch_.size()) return false;
  // The backend can rewrite its pages at any time, so the headers are parsed
  // in a private copy and that copy is what the TAP gets: what was checked
  // is what is delivered. The parse reads only header bytes; it is trusted
  // only when they all lie within the copy.
  copied = std::min(frame.length, kHeaderCopy);
  gather(frame, 0, copied, scratch_.data());
  const std::span<std::uint8_t> view(scratch_.data(), frame.length);
  net::ChecksumLocation where;
  const bool in_copy =
      net::locate_checksum(view, where) == net::PacketStatus::kOk && where.header_len <= copied;
  if (!in_copy && copied < frame.length) {
    gather(frame, copied, frame.length, scratch_.data());
    copied = frame.length;
    ++stats_.rx_linearized;
  }
  // May seed the pseudo-header sum of a GSO frame: into the copy only.
  return net::prepare_offload(view, meta) == net::PacketStatus::kOk;
}

void TapPump::ring_to_tap(int tap_fd, const RxFrame& frame) noexcept {
  net::PacketMeta meta = frame.meta;
  std::size_t copied = 0;
  net::VirtioNetHdr header{};
  if (!locate_offload(frame, meta, copied) ||
      net::meta_to_virtio(meta, header) != net::PacketStatus::kOk) {
    ++stats_.drop_rx_offload;
    return;
  }
  std::array<iovec, kMaxIovecs> parts{};
  parts[0] = {&header, sizeof(header)};
  std::size_t count = 1;
  if (copied > 0) {
    parts[count++] = {scratch_.data(), copied};
  }
  // The rest straight from the RX pages: nothing above looked at it.
  std::size_t offset = 0;
  for (const auto segment : frame.segments) {
    const std::size_t end = offset + segment.size();
    if (end > copied) {
      if (count == parts.size()) {
        ++stats_.drop_rx_offload;
        return;
      }
      const std::size_t skip = copied > offset ? copied - offset : 0;
      parts[count++] = {segment.data() + skip, segment.size() - skip};
    }
    offset = end;
  }
  for (;;) {
    if (::writev(tap_fd, parts.data(), static_cast<int>(count)) >= 0) {
      ++stats_.ring_to_tap;
      stats_.ring_to_tap_bytes += frame.length;
      return;
    }
    if (errno != EINTR) break;
  }
  // EAGAIN: the TAP's queue is full (nobody reads it); drop as a NIC would.
  ++stats_.drop_tap_write;
}

}  // namespace vifd::frontend
