#include "frontend/lib/bench/runner.h"

#include <poll.h>

#include <algorithm>

namespace vifd::bench {
namespace {

using Clock = std::chrono::steady_clock;

void wait(Port& a, Port& b, std::chrono::milliseconds timeout) {
  std::vector<pollfd> fds;
  a.wait_fds(fds);
  if (&a != &b) {
    b.wait_fds(fds);
  }
  ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
}

}  // namespace

ThroughputResult run_throughput(Port& generator, Port& sink, std::span<Frame> frames,
                                std::uint32_t epoch, const ThroughputOptions& options,
                                const SampleBackend& sample) {
  enum class Phase { kWarmup, kMeasure, kDrain };
  Phase phase = Phase::kWarmup;
  ThroughputResult result;
  for (Frame& frame : frames) {
    set_sequence(frame.bytes, frame.meta.gso_type != net::GsoType::kNone,
                 static_cast<std::uint64_t>(epoch) << 32);
  }
  sink.set_epoch(epoch);
  generator.set_epoch(epoch);
  const std::uint64_t sent_at_start = generator.counts().sent_packets;
  const std::uint64_t received_at_start = sink.counts().received_packets;
  const std::uint64_t stale_at_start = sink.counts().stale_packets;
  const std::uint64_t foreign_at_start = sink.counts().foreign_packets;
  std::uint64_t written_off = 0;
  std::optional<BackendSample> before;
  std::uint64_t window_packets = 0;
  std::uint64_t window_bytes = 0;
  auto phase_start = Clock::now();
  auto last_receive = phase_start;
  // Every lost_after: frames sent before the previous checkpoint and still
  // not received are lost.
  auto checkpoint = phase_start;
  std::uint64_t sent_at_checkpoint = 0;
  const auto sent = [&] { return generator.counts().sent_packets - sent_at_start; };
  const auto received = [&] { return sink.counts().received_packets - received_at_start; };
  for (;;) {
    const std::uint64_t received_before = sink.counts().received_packets;
    sink.receive();
    if (&generator != &sink) {
      generator.receive();
    }
    auto now = Clock::now();
    bool progress = sink.counts().received_packets != received_before;
    if (progress) {
      last_receive = now;
    }
    if (now - checkpoint >= options.lost_after) {
      if (sent_at_checkpoint > received() + written_off) {
        written_off = sent_at_checkpoint - received();
      }
      sent_at_checkpoint = sent();
      checkpoint = now;
    }
    if (phase != Phase::kDrain) {
      const std::uint64_t in_flight = sent() - received() - written_off;
      if (in_flight < options.window && generator.send(frames, options.window - in_flight) > 0) {
        progress = true;
      }
    }
    if (phase == Phase::kWarmup && now - phase_start >= options.warmup) {
      before = sample();
      now = Clock::now();
      phase = Phase::kMeasure;
      phase_start = now;
      window_packets = sink.counts().received_packets;
      window_bytes = sink.counts().received_bytes;
    } else if (phase == Phase::kMeasure && now - phase_start >= options.measure) {
      result.seconds = std::chrono::duration<double>(now - phase_start).count();
      result.received_packets = sink.counts().received_packets - window_packets;
      result.received_bytes = sink.counts().received_bytes - window_bytes;
      const auto after = sample();
      if (before && after) {
        result.backend = delta(*before, *after);
      }
      phase = Phase::kDrain;
      last_receive = Clock::now();
    } else if (phase == Phase::kDrain && now - last_receive >= options.drain) {
      break;
    }
    if (!progress) {
      wait(generator, sink, std::chrono::milliseconds(1));
    }
  }
  result.sent_packets = generator.counts().sent_packets - sent_at_start;
  result.received_total = sink.counts().received_packets - received_at_start;
  result.stale_packets = sink.counts().stale_packets - stale_at_start;
  result.foreign_packets = sink.counts().foreign_packets - foreign_at_start;
  return result;
}

Latency run_pingpong(Port& a, Port& b, Frame forward, Frame back, std::uint32_t epoch,
                     std::size_t count, std::chrono::milliseconds timeout) {
  std::vector<double> round_trips;
  round_trips.reserve(count);
  std::size_t lost = 0;
  const bool forward_gso = forward.meta.gso_type != net::GsoType::kNone;
  const bool back_gso = back.meta.gso_type != net::GsoType::kNone;
  a.set_epoch(epoch);
  b.set_epoch(epoch);
  std::uint64_t sequence = static_cast<std::uint64_t>(epoch) << 32;
  // Sends `frame` from `from` and waits until `to` reports it.
  const auto hop = [&](Port& from, Port& to, Frame& frame, bool gso, Clock::time_point deadline) {
    set_sequence(frame.bytes, gso, sequence);
    bool sent = false;
    while (Clock::now() < deadline) {
      if (!sent) {
        sent = from.send(std::span(&frame, 1), 1) == 1;
      }
      to.receive();
      if (&from != &to) {
        from.receive();
      }
      if (to.counts().last_sequence == sequence) {
        return true;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (sent) {
        wait(from, to,
             std::clamp(left, std::chrono::milliseconds(0), std::chrono::milliseconds(10)));
      }
    }
    return false;
  };
  for (std::size_t round = 0; round < count; ++round) {
    ++sequence;
    const auto start = Clock::now();
    const auto deadline = start + timeout;
    if (hop(a, b, forward, forward_gso, deadline) && hop(b, a, back, back_gso, deadline)) {
      round_trips.push_back(
          std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    } else {
      ++lost;
    }
  }
  return summarize_latency(std::move(round_trips), lost);
}

}  // namespace vifd::bench
