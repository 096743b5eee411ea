// The data loops of vif-ttcp, the same as classic ttcp's: the transmitter
// writes -n buffers (or stdin, or for -T seconds), the receiver reads until
// end of stream (TCP) or the end sentinel (UDP). Connection set-up and the
// printed report live in session.h.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "frontend/lib/ttcp/options.h"
#include "frontend/lib/ttcp/report.h"
#include "frontend/lib/ttcp/socket.h"

namespace vifd::ttcp {

// The I/O buffer, placed at `offset` past an `alignment` boundary as ttcp's
// -A/-O options ask (alignment must be a power of two).
class TransferBuffer {
 public:
  TransferBuffer(std::size_t length, std::size_t alignment, std::size_t offset);
  [[nodiscard]] std::span<std::byte> bytes() { return {storage_.data() + start_, length_}; }

 private:
  std::vector<std::byte> storage_;
  std::size_t start_ = 0;
  std::size_t length_ = 0;
};

// ttcp's pattern(): the printable ASCII characters, repeated.
void fill_pattern(std::span<std::byte> buffer);

// A UDP datagram this short marks the start or the end of a run.
constexpr std::size_t kUdpSentinelLength = 4;

// Sends the run on a connected TCP socket, or to `udp_peer` on a UDP socket.
// Reads stdin (fd 0) unless options.sink_mode.
TransferResult transmit_data(const Options& options, int socket, const SocketAddress* udp_peer,
                             TransferBuffer& buffer);

// Receives one run; writes it to stdout (fd 1) unless options.sink_mode.
TransferResult receive_data(const Options& options, int socket, TransferBuffer& buffer);

}  // namespace vifd::ttcp
