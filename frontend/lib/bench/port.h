// One end of a vif-bench measurement: something frames are sent into and
// received from. A netfront (a simulated domU's vif, through the frontend
// library) or a packet socket (vifd's TAP in dom0, or a veth).
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/protocol/mac_address.h"
#include "frontend/lib/bench/frame.h"

namespace vifd::bench {

struct PortCounts {
  std::uint64_t sent_packets = 0;
  std::uint64_t sent_bytes = 0;
  std::uint64_t received_packets = 0;  // vif-bench frames of the current epoch only
  std::uint64_t received_bytes = 0;
  std::uint64_t stale_packets = 0;    // vif-bench frames of an earlier epoch
  std::uint64_t foreign_packets = 0;  // anything else that arrived
  std::optional<std::uint64_t> last_sequence;
};

// A sequence number's epoch: its upper 32 bits.
constexpr std::uint32_t epoch_of(std::uint64_t sequence) noexcept {
  return static_cast<std::uint32_t>(sequence >> 32);
}

class Port {
 public:
  virtual ~Port() = default;
  Port() = default;
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;

  virtual std::string name() const = 0;
  virtual protocol::MacAddress mac() const = 0;
  // Sends up to `budget` frames, taking them round robin from `frames` (one
  // per flow); returns how many went out (0: no room right now).
  virtual std::size_t send(std::span<Frame> frames, std::size_t budget) = 0;
  // Takes whatever arrived and reaps completed sends. Throws
  // std::runtime_error when the port broke (a failed netfront).
  virtual void receive() = 0;
  // What to poll() for when neither end can make progress.
  virtual void wait_fds(std::vector<pollfd>& fds) = 0;

  const PortCounts& counts() const noexcept { return counts_; }
  // Frames of other epochs count as stale from now on.
  void set_epoch(std::uint32_t epoch) noexcept { epoch_ = epoch; }

 protected:
  // Counts a received frame whose first bytes are `head`.
  void count_received(std::span<const std::uint8_t> head, std::size_t length) noexcept {
    const auto sequence = frame_sequence(head);
    if (!sequence) {
      ++counts_.foreign_packets;
    } else if (epoch_of(*sequence) != epoch_) {
      ++counts_.stale_packets;
    } else {
      ++counts_.received_packets;
      counts_.received_bytes += length;
      counts_.last_sequence = sequence;
    }
  }

  PortCounts counts_;
  std::uint32_t epoch_ = 0;
};

}  // namespace vifd::bench
