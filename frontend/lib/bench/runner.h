// Runs one measurement between two ports: a saturating stream of frames
// (throughput) or one frame at a time back and forth (latency).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "frontend/lib/bench/frame.h"
#include "frontend/lib/bench/port.h"
#include "frontend/lib/bench/report.h"

namespace vifd::bench {

using SampleBackend = std::function<std::optional<BackendSample>()>;

struct ThroughputOptions {
  std::chrono::duration<double> warmup{0.2};
  std::chrono::duration<double> measure{2.0};
  // Frames sent and not yet received that the generator may have: the sink
  // side (a TAP, a socket buffer) drops what overflows instead of pushing
  // back, so the generator paces itself on the sink. Frames still missing
  // `lost_after` after they were sent are written off and their credit
  // returned (delivery is in order within a flow, and a queue's frames
  // arrive long before that).
  std::size_t window = 256;
  std::chrono::milliseconds lost_after{20};
  // How long the sink keeps reading after the generator stopped.
  std::chrono::milliseconds drain{100};
};

struct ThroughputResult {
  double seconds = 0;
  std::uint64_t sent_packets = 0;
  std::uint64_t received_total = 0;
  std::uint64_t received_packets = 0;  // inside the measured window
  std::uint64_t received_bytes = 0;
  std::uint64_t stale_packets = 0;    // the sink's frames of an earlier measurement
  std::uint64_t foreign_packets = 0;  // the sink's frames not from vif-bench
  std::optional<BackendDelta> backend;
};

// Sends `frames` (round robin, one per flow) from `generator` to `sink`;
// the backend is sampled at both ends of the measured window. The frames
// carry `epoch` as their sequence number and the sink counts only those, so
// stragglers of an earlier measurement are not counted in this one.
ThroughputResult run_throughput(Port& generator, Port& sink, std::span<Frame> frames,
                                std::uint32_t epoch, const ThroughputOptions& options,
                                const SampleBackend& sample);

// `count` round trips: `forward` from a to b, then `back` from b to a, each
// frame carrying `epoch` and the round's number as its sequence number. A round trip not completed
// within `timeout` is counted as lost.
Latency run_pingpong(Port& a, Port& b, Frame forward, Frame back, std::uint32_t epoch,
                     std::size_t count, std::chrono::milliseconds timeout);

}  // namespace vifd::bench
