#include "frontend/lib/bench/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "frontend/lib/bench/frame.h"

namespace vifd::bench {
namespace {

std::optional<double> ratio(std::uint64_t numerator, std::uint64_t denominator) {
  if (denominator == 0) {
    return std::nullopt;
  }
  return static_cast<double>(numerator) / static_cast<double>(denominator);
}

std::string fixed(const std::optional<double>& value, int digits) {
  if (!value) {
    return "-";
  }
  return fmt::format("{:.{}f}", *value, digits);
}

nlohmann::json optional_json(const std::optional<double>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

const BaselineResult* find_baseline(const Report& report, std::string_view name,
                                    std::size_t frame) {
  for (const auto& baseline : report.baselines) {
    if (baseline.name == name && baseline.frame == frame) {
      return &baseline;
    }
  }
  return nullptr;
}

const CellResult* find_cell(const Report& report, Path path, unsigned queues, std::size_t frame) {
  for (const auto& cell : report.cells) {
    if (cell.cell.path == path && cell.cell.queues == queues && cell.cell.frame == frame &&
        cell.cell.grants == Grants::kCopy && cell.error.empty()) {
      return &cell;
    }
  }
  return nullptr;
}

std::uint64_t grown(std::uint64_t before, std::uint64_t after) {
  return after >= before ? after - before : 0;
}

}  // namespace

BackendDelta delta(const BackendSample& before, const BackendSample& after) {
  BackendDelta d;
  d.grant_copy_calls = grown(before.grant_copy_calls, after.grant_copy_calls);
  d.grant_copy_segments = grown(before.grant_copy_segments, after.grant_copy_segments);
  d.notifications = grown(before.notifications, after.notifications);
  d.hypervisor_copy_calls = grown(before.hypervisor_copy_calls, after.hypervisor_copy_calls);
  d.hypervisor_notify_calls = grown(before.hypervisor_notify_calls, after.hypervisor_notify_calls);
  if (before.cpu_seconds && after.cpu_seconds) {
    d.cpu_seconds = std::max(0.0, *after.cpu_seconds - *before.cpu_seconds);
  }
  for (const auto& [reason, count] : after.drops) {
    const auto old = before.drops.find(reason);
    const std::uint64_t more = grown(old == before.drops.end() ? 0 : old->second, count);
    if (more > 0) {
      d.drops[reason] = more;
    }
  }
  return d;
}

Derived derive(const CellResult& result) {
  Derived derived;
  if (result.seconds > 0) {
    derived.mpps = static_cast<double>(result.received_packets) / result.seconds / 1e6;
    derived.gbit_per_sec = static_cast<double>(result.received_bytes) * 8 / result.seconds / 1e9;
  }
  if (result.backend) {
    const BackendDelta& b = *result.backend;
    derived.copy_calls_per_packet = ratio(b.grant_copy_calls, result.received_packets);
    derived.segments_per_call = ratio(b.grant_copy_segments, b.grant_copy_calls);
    derived.notifications_per_packet = ratio(b.notifications, result.received_packets);
    if (b.cpu_seconds && result.received_packets > 0) {
      derived.cpu_seconds_per_gb =
          *b.cpu_seconds / (static_cast<double>(result.received_bytes) / 1e9);
      derived.cpu_seconds_per_mpacket =
          *b.cpu_seconds / (static_cast<double>(result.received_packets) / 1e6);
    }
  }
  return derived;
}

double percentile(std::vector<double>& values, double p) {
  if (values.empty()) {
    return 0;
  }
  std::sort(values.begin(), values.end());
  const auto rank =
      static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

Latency summarize_latency(std::vector<double> round_trips_us, std::size_t lost) {
  Latency latency;
  latency.samples = round_trips_us.size();
  latency.lost = lost;
  latency.p50_us = percentile(round_trips_us, 50);
  latency.p99_us = percentile(round_trips_us, 99);
  return latency;
}

std::vector<TargetCheck> check_targets(const Report& report) {
  std::vector<TargetCheck> checks;
  {
    TargetCheck check{"64B domU->domU packet rate", ">= 10 Mpps per vifd core", {}, false, {}};
    if (const CellResult* cell = find_cell(report, Path::kDomuToDomu, 1, 64)) {
      const Derived d = derive(*cell);
      check.value = d.mpps;
      check.met = d.mpps >= 10;
      check.detail = check.met ? "met"
                               : fmt::format("{:.3f} Mpps: {:.1f}x short", d.mpps,
                                             d.mpps > 0 ? 10 / d.mpps : 0.0);
    } else {
      check.detail = "not measured (no 64-byte domu-domu cell with 1 queue)";
    }
    checks.push_back(check);
  }
  for (const bool notifications : {false, true}) {
    TargetCheck check{notifications ? "64B domU->domU notifications per packet"
                                    : "64B domU->domU copy calls per packet",
                      "<= 1/32 (0.031)",
                      {},
                      false,
                      {}};
    const CellResult* cell = find_cell(report, Path::kDomuToDomu, 1, 64);
    const auto value = cell ? (notifications ? derive(*cell).notifications_per_packet
                                             : derive(*cell).copy_calls_per_packet)
                            : std::nullopt;
    if (value) {
      check.value = *value;
      check.met = *value <= 1.0 / 32;
      check.detail =
          check.met ? "met" : fmt::format("{:.3f}: {:.1f}x too many", *value, *value * 32);
    } else {
      check.detail = "not measured (no vifd counters for a 64-byte domu-domu cell)";
    }
    checks.push_back(check);
  }
  {
    TargetCheck check{"64KiB domU->domU bandwidth", ">= 0.8 x out-of-cache memcpy", {}, false, {}};
    const CellResult* cell = find_cell(report, Path::kDomuToDomu, 1, kMaxFrame);
    const BaselineResult* memcpy_result = find_baseline(report, "memcpy", kMaxFrame);
    if (cell != nullptr && memcpy_result != nullptr && memcpy_result->gbit_per_sec > 0) {
      const double value = derive(*cell).gbit_per_sec / memcpy_result->gbit_per_sec;
      check.value = value;
      check.met = value >= 0.8;
      check.detail = check.met ? "met"
                               : fmt::format("{:.3f}x memcpy: {:.1f}x short", value,
                                             value > 0 ? 0.8 / value : 0.0);
    } else {
      check.detail = "not measured (needs a 64k domu-domu cell and the memcpy baseline)";
    }
    checks.push_back(check);
  }
  return checks;
}

std::string format_table(const Report& report) {
  std::string out = fmt::format("vif-bench, {}, {} CPUs, {:.1f} s per cell\n", report.date,
                                report.cpus, report.cell_seconds);
  if (!report.command.empty()) {
    out += fmt::format("command: {}\n", report.command);
  }
  out += '\n';
  out += fmt::format(
      "{:<10} {:>2} {:>5} {:>5} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>8} {:>8}\n", "path",
      "q", "size", "grant", "Mpps", "Gbit/s", "gcopy/pk", "seg/call", "notif/pk", "cpu-s/GB",
      "cpu-s/Mp", "p50 us", "p99 us");
  for (const CellResult& cell : report.cells) {
    const std::string head =
        fmt::format("{:<10} {:>2} {:>5} {:>5}", to_string(cell.cell.path), cell.cell.queues,
                    size_label(cell.cell.frame), to_string(cell.cell.grants));
    if (!cell.error.empty()) {
      out += fmt::format("{} failed: {}\n", head, cell.error);
      continue;
    }
    const Derived d = derive(cell);
    out += fmt::format("{} {:>9.3f} {:>9.3f} {:>9} {:>8} {:>9} {:>9} {:>9} {:>8} {:>8}\n", head,
                       d.mpps, d.gbit_per_sec, fixed(d.copy_calls_per_packet, 3),
                       fixed(d.segments_per_call, 1), fixed(d.notifications_per_packet, 3),
                       fixed(d.cpu_seconds_per_gb, 3), fixed(d.cpu_seconds_per_mpacket, 3),
                       cell.latency ? fmt::format("{:.1f}", cell.latency->p50_us) : "-",
                       cell.latency ? fmt::format("{:.1f}", cell.latency->p99_us) : "-");
  }
  if (!report.baselines.empty()) {
    out += "\nbaselines (same run):\n";
    out += fmt::format("{:<8} {:>5} {:>9} {:>9}\n", "name", "size", "Mpps", "Gbit/s");
    for (const BaselineResult& baseline : report.baselines) {
      out += fmt::format("{:<8} {:>5} {:>9.3f} {:>9.3f}\n", baseline.name,
                         size_label(baseline.frame), baseline.mpps, baseline.gbit_per_sec);
    }
  }
  if (!report.veth_method.empty()) {
    out += fmt::format("veth: {}\n", report.veth_method);
  }
  // vifd against each baseline at the same size, for the 1-queue cells.
  bool header = false;
  for (const CellResult& cell : report.cells) {
    if (!cell.error.empty() || cell.cell.queues != 1) {
      continue;
    }
    const Derived d = derive(cell);
    std::string line;
    for (const char* name : {"memcpy", "spsc", "veth"}) {
      const BaselineResult* baseline = find_baseline(report, name, cell.cell.frame);
      if (baseline == nullptr || baseline->mpps <= 0) {
        continue;
      }
      line += fmt::format("  {:.3f}x {}", d.mpps / baseline->mpps, name);
    }
    if (line.empty()) {
      continue;
    }
    if (!header) {
      out +=
          "\nvifd / baseline (packet rate; equal to the byte-rate ratio at one size), 1 queue:\n";
      header = true;
    }
    out += fmt::format("{:<10} {:>5}{}\n", to_string(cell.cell.path), size_label(cell.cell.frame),
                       line);
  }
  out += "\ntargets:\n";
  for (const TargetCheck& check : check_targets(report)) {
    out += fmt::format("  {} {}: {}\n", check.name, check.goal, check.detail);
  }
  return out;
}

nlohmann::json to_json(const Report& report) {
  nlohmann::json cells = nlohmann::json::array();
  for (const CellResult& cell : report.cells) {
    nlohmann::json entry = {
        {"path", to_string(cell.cell.path)},
        {"queues", cell.cell.queues},
        {"frame", cell.cell.frame},
        {"gso", cell.cell.gso()},
        {"grants", to_string(cell.cell.grants)},
    };
    if (!cell.error.empty()) {
      entry["error"] = cell.error;
      cells.push_back(entry);
      continue;
    }
    const Derived d = derive(cell);
    entry["seconds"] = cell.seconds;
    entry["sent_packets"] = cell.sent_packets;
    entry["received_total"] = cell.received_total;
    entry["received_packets"] = cell.received_packets;
    entry["received_bytes"] = cell.received_bytes;
    entry["stale_packets"] = cell.stale_packets;
    entry["foreign_packets"] = cell.foreign_packets;
    entry["mpps"] = d.mpps;
    entry["gbit_per_sec"] = d.gbit_per_sec;
    entry["copy_calls_per_packet"] = optional_json(d.copy_calls_per_packet);
    entry["segments_per_call"] = optional_json(d.segments_per_call);
    entry["notifications_per_packet"] = optional_json(d.notifications_per_packet);
    entry["cpu_seconds_per_gb"] = optional_json(d.cpu_seconds_per_gb);
    entry["cpu_seconds_per_mpacket"] = optional_json(d.cpu_seconds_per_mpacket);
    if (cell.backend) {
      const BackendDelta& b = *cell.backend;
      entry["vifd"] = {{"grant_copy_calls", b.grant_copy_calls},
                       {"grant_copy_segments", b.grant_copy_segments},
                       {"notifications", b.notifications},
                       {"hypervisor_copy_calls", b.hypervisor_copy_calls},
                       {"hypervisor_notify_calls", b.hypervisor_notify_calls},
                       {"cpu_seconds", optional_json(b.cpu_seconds)},
                       {"drops", b.drops}};
    } else {
      entry["vifd"] = nullptr;
    }
    if (cell.latency) {
      entry["latency"] = {{"samples", cell.latency->samples},
                          {"lost", cell.latency->lost},
                          {"p50_us", cell.latency->p50_us},
                          {"p99_us", cell.latency->p99_us}};
    } else {
      entry["latency"] = nullptr;
    }
    cells.push_back(entry);
  }
  nlohmann::json baselines = nlohmann::json::array();
  for (const BaselineResult& baseline : report.baselines) {
    baselines.push_back({{"name", baseline.name},
                         {"frame", baseline.frame},
                         {"mpps", baseline.mpps},
                         {"gbit_per_sec", baseline.gbit_per_sec}});
  }
  nlohmann::json targets = nlohmann::json::array();
  for (const TargetCheck& check : check_targets(report)) {
    targets.push_back({{"name", check.name},
                       {"goal", check.goal},
                       {"value", optional_json(check.value)},
                       {"met", check.met},
                       {"detail", check.detail}});
  }
  return {{"tool", "vif-bench"},       {"date", report.date},
          {"cpus", report.cpus},       {"cell_seconds", report.cell_seconds},
          {"command", report.command}, {"cells", cells},
          {"baselines", baselines},    {"veth_method", report.veth_method},
          {"targets", targets}};
}

}  // namespace vifd::bench
