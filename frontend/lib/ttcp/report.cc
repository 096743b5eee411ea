#include "frontend/lib/ttcp/report.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace vifd::ttcp {
namespace {

// ttcp never divides by zero: a run too short for the clock counts as 1 ms.
constexpr double kMinimumSeconds = 0.001;

double clamped(double seconds) {
  return seconds <= 0 ? kMinimumSeconds : seconds;
}

double to_seconds(const timeval& value) {
  return static_cast<double>(value.tv_sec) + static_cast<double>(value.tv_usec) / 1e6;
}

std::int64_t to_microseconds(const timeval& value) {
  return static_cast<std::int64_t>(value.tv_sec) * 1'000'000 + value.tv_usec;
}

double cpu_seconds(const TransferResult& result) {
  return to_seconds(result.usage_after.ru_utime) - to_seconds(result.usage_before.ru_utime) +
         to_seconds(result.usage_after.ru_stime) - to_seconds(result.usage_before.ru_stime);
}

// ttcp's "%d.%01d" of a timeval difference: seconds and truncated tenths.
std::string tenths(const timeval& after, const timeval& before) {
  const std::int64_t micros = to_microseconds(after) - to_microseconds(before);
  return fmt::format("{}.{}", micros / 1'000'000, (micros % 1'000'000) / 100'000);
}

// ttcp's psecs(): m:ss below an hour, h:mm:ss above.
std::string elapsed(std::int64_t seconds) {
  const std::int64_t hours = seconds / 3600;
  if (hours != 0) {
    return fmt::format("{}:{:02}:{:02}", hours, (seconds % 3600) / 60, seconds % 60);
  }
  return fmt::format("{}:{:02}", seconds / 60, seconds % 60);
}

}  // namespace

std::string format_rate(double bytes_per_second, char format) {
  constexpr double kKilo = 1024.0;
  switch (format) {
    case 'k':
      return fmt::format("{:.2f} Kbit", bytes_per_second * 8.0 / kKilo);
    case 'm':
      return fmt::format("{:.2f} Mbit", bytes_per_second * 8.0 / kKilo / kKilo);
    case 'g':
      return fmt::format("{:.2f} Gbit", bytes_per_second * 8.0 / kKilo / kKilo / kKilo);
    case 'M':
      return fmt::format("{:.2f} MB", bytes_per_second / kKilo / kKilo);
    case 'G':
      return fmt::format("{:.2f} GB", bytes_per_second / kKilo / kKilo / kKilo);
    default:
      return fmt::format("{:.2f} KB", bytes_per_second / kKilo);
  }
}

std::string header_line(const Options& options) {
  std::string line = fmt::format("{}: buflen={}, nbuf={}, align={}/{}, port={}", options.tag(),
                                 options.buffer_length, options.buffer_count,
                                 options.buffer_alignment, options.buffer_offset, options.port);
  if (options.socket_buffer_size != 0) {
    line += fmt::format(", sockbufsize={}", options.socket_buffer_size);
  }
  line += options.protocol == Protocol::kUdp ? "  udp" : "  tcp";
  if (options.role == Role::kTransmit) {
    line += "  -> " + options.host;
  }
  return line;
}

std::string throughput_line(std::string_view tag, const TransferResult& result, char format) {
  const double seconds = clamped(result.real_seconds);
  return fmt::format("{}: {} bytes in {:.2f} real seconds = {}/sec +++", tag, result.bytes, seconds,
                     format_rate(static_cast<double>(result.bytes) / seconds, format));
}

std::string calls_line(std::string_view tag, const TransferResult& result) {
  const double seconds = clamped(result.real_seconds);
  const double calls = static_cast<double>(result.calls == 0 ? 1 : result.calls);
  // ttcp computes msec/call with 1024, not 1000; kept so figures stay
  // comparable with published ttcp results.
  return fmt::format("{}: {} I/O calls, msec/call = {:.2f}, calls/sec = {:.2f}", tag, result.calls,
                     1024.0 * seconds / calls, static_cast<double>(result.calls) / seconds);
}

std::string usage_line(std::string_view tag, const TransferResult& result) {
  const rusage& before = result.usage_before;
  const rusage& after = result.usage_after;
  // ttcp works in centiseconds: t is CPU time, ms is real time.
  const auto cpu_centis = static_cast<std::int64_t>(cpu_seconds(result) * 100.0);
  const auto real_centis = static_cast<std::int64_t>(result.real_seconds * 100.0);
  const std::int64_t percent = cpu_centis * 100 / (real_centis != 0 ? real_centis : 1);
  auto per_cpu_tick = [cpu_centis](long delta) {
    return cpu_centis == 0 ? 0 : static_cast<std::int64_t>(delta) / cpu_centis;
  };
  // Linux reports ru_maxrss in kilobytes and leaves ixrss/idrss/isrss at 0.
  return fmt::format(
      "{}: {}user {}sys {}real {}% {}i+{}d {}maxrss {}+{}pf {}+{}csw", tag,
      tenths(after.ru_utime, before.ru_utime), tenths(after.ru_stime, before.ru_stime),
      elapsed(real_centis / 100), percent, per_cpu_tick(after.ru_ixrss - before.ru_ixrss),
      per_cpu_tick(after.ru_idrss + after.ru_isrss - before.ru_idrss - before.ru_isrss),
      after.ru_maxrss, after.ru_majflt - before.ru_majflt, after.ru_minflt - before.ru_minflt,
      after.ru_nvcsw - before.ru_nvcsw, after.ru_nivcsw - before.ru_nivcsw);
}

std::string cpu_line(std::string_view tag, const TransferResult& result, char format) {
  const double seconds = clamped(cpu_seconds(result));
  return fmt::format("{}: {} bytes in {:.2f} CPU seconds = {}/cpu sec", tag, result.bytes, seconds,
                     format_rate(static_cast<double>(result.bytes) / seconds, format));
}

std::string checksum_line(std::string_view tag, const TransferResult& result) {
  return fmt::format("{}: crc32 {:08x} over {} bytes", tag, result.checksum.value_or(0),
                     result.bytes);
}

std::string json_report(const Options& options, const TransferResult& result) {
  const double seconds = clamped(result.real_seconds);
  const double bytes = static_cast<double>(result.bytes);
  nlohmann::json report = {
      {"role", options.role == Role::kTransmit ? "transmit" : "receive"},
      {"protocol", options.protocol == Protocol::kUdp ? "udp" : "tcp"},
      {"buflen", options.buffer_length},
      {"bytes", result.bytes},
      {"seconds", seconds},
      {"kb_per_sec", bytes / 1024.0 / seconds},
      {"gbit_per_sec", bytes * 8.0 / 1e9 / seconds},
      {"calls", result.calls},
      {"cpu_seconds", cpu_seconds(result)},
      {"ended_by_timeout", result.ended_by_timeout},
  };
  if (result.checksum) {
    report["checksum"] = fmt::format("crc32:{:08x}", *result.checksum);
  } else {
    report["checksum"] = nullptr;
  }
  return report.dump();
}

}  // namespace vifd::ttcp
