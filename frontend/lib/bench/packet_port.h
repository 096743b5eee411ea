// A network interface as a vif-bench port, through AF_PACKET: vifd's TAP in
// dom0's namespace (what a frame from a domU becomes in dom0, and where dom0
// writes frames for a domU), or one end of a veth pair for the baseline.
//
// Sends go through sendmmsg() with PACKET_QDISC_BYPASS (no qdisc between the
// generator and the device) and a virtio-net header, so a 64 KiB frame
// travels as one GSO frame. Receives use recvmmsg() with MSG_TRUNC: the
// kernel reports each frame's full length but copies only its first bytes,
// so the sink costs a system call per batch and no payload copy.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "frontend/lib/bench/port.h"

namespace vifd::bench {

class PacketPort final : public Port {
 public:
  // Opens the sockets in network namespace `netns` (a name under
  // /run/netns; empty: this process's namespace) on interface `ifname`.
  // Throws std::system_error naming the namespace or interface.
  PacketPort(const std::string& netns, const std::string& ifname);
  ~PacketPort() override;

  std::string name() const override;
  protocol::MacAddress mac() const override { return mac_; }
  std::size_t send(std::span<Frame> frames, std::size_t budget) override;
  void receive() override;
  void wait_fds(std::vector<pollfd>& fds) override;

 private:
  static constexpr std::size_t kBatch = 64;
  static constexpr std::size_t kHead = 128;  // bytes copied per received frame

  std::string netns_;
  std::string ifname_;
  int tx_fd_ = -1;
  int rx_fd_ = -1;
  protocol::MacAddress mac_;
  std::size_t next_frame_ = 0;
  std::array<std::array<std::uint8_t, kHead>, kBatch> heads_{};
};

}  // namespace vifd::bench
