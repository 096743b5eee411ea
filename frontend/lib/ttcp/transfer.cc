#include "frontend/lib/ttcp/transfer.h"

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <optional>

#include "frontend/lib/ttcp/checksum.h"

namespace vifd::ttcp {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kStdin = STDIN_FILENO;
constexpr int kStdout = STDOUT_FILENO;
// Classic ttcp sends the end sentinel once inside the timed run and four more
// times afterwards, because a single UDP datagram may be lost.
constexpr int kExtraEndSentinels = 4;

rusage current_usage() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage;
}

// ttcp's prep_timer()/read_timer(): wall clock and rusage around the run.
class Measurement {
 public:
  Measurement() { restart(); }
  void restart() {
    usage_before_ = current_usage();
    started_ = Clock::now();
  }
  [[nodiscard]] Clock::time_point started() const { return started_; }
  void finish(TransferResult& result, Clock::time_point ended = Clock::now()) const {
    result.real_seconds = std::chrono::duration<double>(ended - started_).count();
    result.usage_before = usage_before_;
    result.usage_after = current_usage();
  }

 private:
  rusage usage_before_{};
  Clock::time_point started_;
};

// Tracks bytes and, with --checksum, their CRC.
class Tally {
 public:
  explicit Tally(bool checksum) : checksum_(checksum) {}
  void add(std::span<const std::byte> data) {
    result_.bytes += data.size();
    if (checksum_) {
      crc_.update(data);
    }
  }
  void count_call() { ++result_.calls; }
  TransferResult finish(const Measurement& measurement, Clock::time_point ended = Clock::now()) {
    measurement.finish(result_, ended);
    if (checksum_) {
      result_.checksum = crc_.value();
    }
    return result_;
  }

 private:
  bool checksum_;
  StreamChecksum crc_;
  TransferResult result_;
};

// TCP may accept part of a buffer; each send() is one ttcp "I/O call".
void send_stream(int socket, std::span<const std::byte> data, const Options& options,
                 Tally& tally) {
  while (!data.empty()) {
    const std::size_t sent = send_some(socket, data, nullptr, options.timeout_seconds);
    tally.count_call();
    data = data.subspan(sent);
  }
}

void send_datagram(int socket, std::span<const std::byte> data, const SocketAddress& peer,
                   const Options& options, Tally& tally) {
  // A datagram goes out whole or not at all, so one call is enough.
  send_some(socket, data, &peer, options.timeout_seconds);
  tally.count_call();
}

// -B: fill the whole buffer unless the stream ends first (ttcp's mread()).
std::size_t receive_block(int socket, std::span<std::byte> buffer, bool full_blocks,
                          std::optional<double> timeout_seconds, Tally& tally) {
  std::size_t filled = 0;
  do {
    const std::size_t count = receive_some(socket, buffer.subspan(filled), timeout_seconds);
    tally.count_call();
    if (count == 0) {
      break;
    }
    filled += count;
  } while (full_blocks && filled < buffer.size());
  return filled;
}

// UDP: the run goes from the start sentinel (or the first datagram, should
// that sentinel be lost) to the end sentinel. When every end sentinel is lost
// too, --timeout ends the run and the times stop at the last datagram.
TransferResult receive_datagrams(const Options& options, int socket, TransferBuffer& buffer) {
  const std::span<std::byte> bytes = buffer.bytes();
  Tally tally(options.checksum);
  Measurement measurement;
  bool started = false;
  Clock::time_point last_datagram = Clock::now();
  for (;;) {
    std::optional<std::size_t> count = started
                                           ? receive_within(socket, bytes, options.timeout_seconds)
                                           : receive_some(socket, bytes, options.timeout_seconds);
    if (!count) {
      TransferResult result = tally.finish(measurement, last_datagram);
      result.ended_by_timeout = true;
      return result;
    }
    tally.count_call();
    const bool sentinel = *count <= kUdpSentinelLength;
    if (!started) {
      started = true;
      measurement.restart();
    } else if (sentinel) {
      break;
    }
    last_datagram = Clock::now();
    if (sentinel) {
      continue;
    }
    const std::span<const std::byte> chunk = bytes.first(*count);
    if (!options.sink_mode) {
      write_all(kStdout, chunk);
    }
    tally.add(chunk);
  }
  return tally.finish(measurement);
}

}  // namespace

TransferBuffer::TransferBuffer(std::size_t length, std::size_t alignment, std::size_t offset)
    : storage_(length + alignment + offset), length_(length) {
  const auto address = reinterpret_cast<std::uintptr_t>(storage_.data());
  const std::uintptr_t aligned = (address + alignment - 1) & ~(std::uintptr_t{alignment} - 1);
  start_ = static_cast<std::size_t>(aligned - address) + offset;
}

void fill_pattern(std::span<std::byte> buffer) {
  unsigned char next = 0;
  for (std::byte& slot : buffer) {
    while (std::isprint(next & 0x7F) == 0) {
      ++next;
    }
    slot = static_cast<std::byte>(next & 0x7F);
    ++next;
  }
}

TransferResult transmit_data(const Options& options, int socket, const SocketAddress* udp_peer,
                             TransferBuffer& buffer) {
  const std::span<std::byte> bytes = buffer.bytes();
  const std::span<const std::byte> sentinel = bytes.first(kUdpSentinelLength);
  if (options.sink_mode) {
    fill_pattern(bytes);
  }
  Tally tally(options.checksum);
  const Measurement measurement;
  std::optional<Clock::time_point> deadline;
  if (options.duration_seconds) {
    deadline =
        measurement.started() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(*options.duration_seconds));
  }
  auto send = [&](std::span<const std::byte> data) {
    if (udp_peer != nullptr) {
      send_datagram(socket, data, *udp_peer, options, tally);
    } else {
      send_stream(socket, data, options, tally);
    }
  };

  if (udp_peer != nullptr) {
    send(sentinel);
  }
  for (std::size_t sent_buffers = 0;; ++sent_buffers) {
    if (deadline ? Clock::now() >= *deadline
                 : options.sink_mode && sent_buffers == options.buffer_count) {
      break;
    }
    std::span<const std::byte> chunk = bytes;
    if (!options.sink_mode) {
      chunk = bytes.first(read_some(kStdin, bytes));
      if (chunk.empty()) {
        break;
      }
    }
    send(chunk);
    tally.add(chunk);
  }
  if (udp_peer != nullptr) {
    send(sentinel);
  }
  TransferResult result = tally.finish(measurement);
  if (udp_peer != nullptr) {
    for (int extra = 0; extra < kExtraEndSentinels; ++extra) {
      send_some(socket, sentinel, udp_peer, options.timeout_seconds);
      ++result.calls;
    }
  }
  return result;
}

TransferResult receive_data(const Options& options, int socket, TransferBuffer& buffer) {
  if (options.protocol == Protocol::kUdp) {
    return receive_datagrams(options, socket, buffer);
  }
  const std::span<std::byte> bytes = buffer.bytes();
  Tally tally(options.checksum);
  const Measurement measurement;
  for (;;) {
    const std::size_t count =
        receive_block(socket, bytes, options.full_blocks, options.timeout_seconds, tally);
    if (count == 0) {
      break;
    }
    const std::span<const std::byte> chunk = bytes.first(count);
    if (!options.sink_mode) {
      write_all(kStdout, chunk);
    }
    tally.add(chunk);
  }
  return tally.finish(measurement);
}

}  // namespace vifd::ttcp
