// Moves frames between one TAP queue (IFF_VNET_HDR) and one netfront queue,
// without a bounce buffer in either direction where the frame allows it:
//  * TAP -> TX: readv() of the virtio header into a local struct and of the
//    frame straight into the granted TX pool pages (reserve_tx), then the
//    header becomes PacketMeta and netif flags / GSO extra (commit_tx);
//  * RX -> TAP: writev() of a virtio header and the RX frame's spans, which
//    point into the granted RX pages. netif's csum_blank carries no offsets,
//    so a partial checksum or GSO frame is located first (common/net
//    prepare_offload). The backend can still write those pages, so that
//    parse runs on a private copy of the first kHeaderCopy bytes (the whole
//    frame when its headers reach further), and the copy, not the page, is
//    what the TAP receives for those bytes: the headers the virtio header
//    was derived from are the headers delivered. Bytes nobody inspected go
//    straight from the pages.
// Data path: no exceptions, no allocation after construction; drops are
// counted by reason.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/net/packet_meta.h"
#include "frontend/lib/netfront/queue.h"

namespace vifd::frontend {

struct TapPumpStats {
  std::uint64_t tap_to_ring = 0;
  std::uint64_t ring_to_tap = 0;
  std::uint64_t ring_to_tap_bytes = 0;  // frame bytes of ring_to_tap, headers excluded
  std::uint64_t rx_linearized = 0;      // RX frames copied whole: headers not within kHeaderCopy
  std::uint64_t drop_oversize = 0;
  std::uint64_t drop_bad_vnet_header = 0;
  std::uint64_t drop_tx_refused = 0;  // commit_tx refused (see TxStatus)
  std::uint64_t drop_rx_offload = 0;  // checksum/GSO of an RX frame not locatable
  std::uint64_t drop_tap_write = 0;
};

class TapPump {
 public:
  // Ethernet, a VLAN tag, IPv6 with extension headers and TCP with options
  // fit; a frame whose headers reach further is copied whole.
  static constexpr std::size_t kHeaderCopy = 256;

  // max_frame: the largest frame the TAP may hand us (MTU + 18, or 65535
  // with TSO enabled on the TAP).
  explicit TapPump(std::size_t max_frame);

  void set_max_frame(std::size_t max_frame) noexcept { max_frame_ = max_frame; }

  // Reads up to `budget` frames from `tap_fd` into `queue`, then flushes.
  // Returns the number of frames read (0 when the TAP had none or the ring
  // has no room); `would_block` tells whether the TAP was drained.
  std::size_t tap_to_ring(int tap_fd, NetfrontQueue& queue, std::size_t budget,
                          bool& would_block) noexcept;

  // Writes one received frame to the TAP.
  void ring_to_tap(int tap_fd, const RxFrame& frame) noexcept;

  const TapPumpStats& stats() const noexcept { return stats_; }

 private:
  // Locates the offload of a frame that needs it on a private copy of its
  // headers; `copied` is how many leading bytes of the frame are in scratch_
  // and must be sent from there.
  bool locate_offload(const RxFrame& frame, net::PacketMeta& meta, std::size_t& copied) noexcept;

  std::size_t max_frame_;
  std::vector<std::uint8_t> scratch_;  // kMaxFrame + 1 bytes: header copy or whole frame
  TapPumpStats stats_;
};

}  // namespace vifd::frontend
