// vif-bench's results and what is derived from them: rates, per-packet
// counter ratios, latency percentiles, the text table, the JSON document and
// the targets. Pure: results in, numbers and text out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "frontend/lib/bench/matrix.h"

namespace vifd::bench {

// What vifd and the simulated hypervisor counted during a measurement,
// summed over every vif and queue (deltas of `vifctl stats --json` and of
// the sim host's counters for dom0, which are also `vif-sim stats 0`).
struct BackendDelta {
  std::uint64_t grant_copy_calls = 0;
  std::uint64_t grant_copy_segments = 0;
  std::uint64_t notifications = 0;  // event-channel notifications sent + received by vifd
  std::uint64_t hypervisor_copy_calls = 0;
  std::uint64_t hypervisor_notify_calls = 0;
  std::optional<double> cpu_seconds;           // vifd's utime + stime; unknown without its pid
  std::map<std::string, std::uint64_t> drops;  // vifd's drops by reason, nonzero only
};

// One reading of those counters (cumulative since vifd and the host started).
struct BackendSample {
  std::uint64_t grant_copy_calls = 0;
  std::uint64_t grant_copy_segments = 0;
  std::uint64_t notifications = 0;
  std::uint64_t hypervisor_copy_calls = 0;
  std::uint64_t hypervisor_notify_calls = 0;
  std::optional<double> cpu_seconds;
  std::map<std::string, std::uint64_t> drops;
};
// after - before; a counter that went backwards (vifd restarted, a vif
// re-created with fresh counters) counts as 0.
BackendDelta delta(const BackendSample& before, const BackendSample& after);

struct Latency {
  std::size_t samples = 0;
  std::size_t lost = 0;  // round trips that timed out
  double p50_us = 0;
  double p99_us = 0;
};

struct CellResult {
  Cell cell;
  double seconds = 0;                  // the measured window
  std::uint64_t sent_packets = 0;      // by the generator, the whole run
  std::uint64_t received_total = 0;    // by the sink, the whole run (drain included)
  std::uint64_t received_packets = 0;  // by the sink inside the window
  std::uint64_t received_bytes = 0;
  std::uint64_t stale_packets = 0;      // frames of an earlier cell the sink saw
  std::uint64_t foreign_packets = 0;    // frames not from vif-bench the sink saw
  std::optional<BackendDelta> backend;  // over the window
  std::optional<Latency> latency;       // ping-pong, smallest frame of the path and queue count
  std::string error;                    // the cell could not run
};

struct Derived {
  double mpps = 0;
  double gbit_per_sec = 0;
  std::optional<double> copy_calls_per_packet;
  std::optional<double> segments_per_call;
  std::optional<double> notifications_per_packet;
  std::optional<double> cpu_seconds_per_gb;
  std::optional<double> cpu_seconds_per_mpacket;
};
Derived derive(const CellResult& result);

// One baseline measurement: name ("memcpy", "spsc", "veth"), frame size, rates.
struct BaselineResult {
  std::string name;
  std::size_t frame = 0;
  double mpps = 0;
  double gbit_per_sec = 0;
};

struct Report {
  std::string date;  // UTC, ISO 8601
  unsigned cpus = 0;
  double cell_seconds = 0;
  std::string command;
  std::vector<CellResult> cells;
  std::vector<BaselineResult> baselines;
  std::string veth_method;  // what the veth baseline measured, or why it was skipped
};

// Nearest-rank percentile (0 < p <= 100) of `values`, which it sorts;
// 0 for no values.
double percentile(std::vector<double>& values, double p);
// p50 and p99 of the round trips (microseconds) plus the lost count.
Latency summarize_latency(std::vector<double> round_trips_us, std::size_t lost);

// Where the targets stand: one line each, "met" or by how much they
// are missed, computed from domu-domu cells with 1 queue.
struct TargetCheck {
  std::string name;
  std::string goal;
  std::optional<double> value;  // absent: not measured in this run
  bool met = false;
  std::string detail;
};
std::vector<TargetCheck> check_targets(const Report& report);

std::string format_table(const Report& report);
nlohmann::json to_json(const Report& report);

}  // namespace vifd::bench
