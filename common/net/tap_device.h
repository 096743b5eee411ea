// A TAP interface as vifd and vif-front use it: the host end of a vif.
//
// Every queue is one file descriptor on /dev/net/tun, opened O_NONBLOCK |
// O_CLOEXEC. Each read() returns, and each write() must supply, one frame
// prefixed by a VirtioNetHdr (common/net/packet_meta.h):
//   - header size: the 10-byte legacy virtio_net_hdr (TUNSETVNETHDRSZ). vifd
//     never merges RX buffers, so the 12-byte v1 header's num_buffers would
//     only be a field to zero;
//   - byte order: little-endian, set explicitly with TUNSETVNETLE, so the
//     wire format is virtio 1.0's on every host and meta_{from,to}_virtio
//     can always use le16 conversions.
// Offloads (TUNSETOFFLOAD) say which metadata the kernel may hand us: with
// csum the kernel sends CHECKSUM_PARTIAL frames instead of checksumming them,
// with tso4/tso6 it sends up to 64 KiB TCP frames instead of segmenting them.
// Enable them only when every consumer of this TAP's frames can take them
// (for vifd: when the frontend negotiated the matching netif features).
//
// Lifetime: unless `persistent` is set, the kernel device exists exactly as
// long as at least one queue fd is open; the destructor (or destroy()) closes
// them all and the interface disappears, taking its bridge membership and
// addresses with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/net/link.h"
#include "common/net/packet_meta.h"

namespace vifd::net {

struct TapOffloads {
  bool csum = false;  // TUN_F_CSUM: partial checksums (both IP versions)
  bool tso4 = false;  // TUN_F_TSO4; requires csum
  bool tso6 = false;  // TUN_F_TSO6; requires csum

  friend bool operator==(const TapOffloads&, const TapOffloads&) = default;
};

struct TapOptions {
  std::string name{};        // e.g. "vif5.0"; at most 15 bytes
  unsigned queues = 1;       // one fd per queue; more than one needs multi_queue
  bool multi_queue = false;  // IFF_MULTI_QUEUE
  TapOffloads offloads{};
  // Survives closing its fds; remove with destroy() or delete_link(). Always
  // applied, so attaching with false to a persistent TAP makes it transient.
  bool persistent = false;
};

class TapDevice {
 public:
  // Creates the TAP, or attaches to an existing one with the same name and
  // flags (a persistent TAP, or more queues of a multi-queue TAP). Throws
  // std::invalid_argument (bad name, queue count, offload set) or
  // std::system_error, with the interface name in the message.
  explicit TapDevice(const TapOptions& options);
  ~TapDevice();
  TapDevice(TapDevice&& other) noexcept;
  TapDevice& operator=(TapDevice&& other) noexcept;
  TapDevice(const TapDevice&) = delete;
  TapDevice& operator=(const TapDevice&) = delete;

  const std::string& name() const noexcept { return name_; }
  int ifindex() const noexcept { return ifindex_; }
  std::size_t queue_count() const noexcept { return fds_.size(); }
  // The fd of one queue, for poll/epoll and the data path's read()/write().
  int queue_fd(std::size_t queue) const { return fds_.at(queue); }
  const TapOffloads& offloads() const noexcept { return offloads_; }
  bool is_open() const noexcept { return !fds_.empty(); }

  void set_offloads(const TapOffloads& offloads);
  void set_mtu(unsigned mtu) { net::set_mtu(name_, mtu); }
  void set_mac(const protocol::MacAddress& mac) { net::set_mac(name_, mac); }
  void set_link_up(bool up) { net::set_link_up(name_, up); }
  // TUNSETCARRIER (Linux >= 5.0): operstate follows the vif, not the fds.
  void set_carrier(bool on);
  void set_persistent(bool persistent);
  void add_to_bridge(std::string_view bridge) { net::add_to_bridge(bridge, name_); }
  void remove_from_bridge(std::string_view bridge) { net::remove_from_bridge(bridge, name_); }

  // Clears persistence and closes every queue: the interface is gone when
  // this returns. Idempotent; the destructor calls it.
  void destroy() noexcept;

 private:
  void close_queues() noexcept;

  std::string name_;
  int ifindex_ = 0;
  std::vector<int> fds_;
  TapOffloads offloads_;
  bool persistent_ = false;
};

// One frame of a TAP queue: VirtioNetHdr followed by the Ethernet frame.
// Status codes, not exceptions: these run on the data path.
enum class TapIoStatus { kOk, kWouldBlock, kOversize, kError };

struct TapIoResult {
  TapIoStatus status = TapIoStatus::kOk;
  std::size_t bytes = 0;  // frame bytes, header excluded
  int error = 0;          // errno when status == error
};

// Reads one frame into `frame`; `header` gets the virtio header. The kernel
// truncates a frame that does not fit without saying so, so size `frame` one
// byte beyond the largest frame accepted (MTU + 18, or 65535 + 18 with TSO):
// a read that fills it is reported as `oversize` (the frame is consumed).
TapIoResult tap_read(int fd, VirtioNetHdr& header, std::span<std::uint8_t> frame) noexcept;
// Writes one frame with its virtio header (one writev, never partial).
TapIoResult tap_write(int fd, const VirtioNetHdr& header,
                      std::span<const std::uint8_t> frame) noexcept;

}  // namespace vifd::net
