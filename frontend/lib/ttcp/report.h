// The lines vif-ttcp prints, in the exact form classic ttcp prints them, so
// results can be compared with (and parsed like) the historical ones. Every
// function here is pure: figures in, text out.
#pragma once

#include <sys/resource.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "frontend/lib/ttcp/options.h"

namespace vifd::ttcp {

// What one run measured. Times cover only the data transfer, from the first
// byte (after connect/accept, or the UDP start sentinel) to the last.
struct TransferResult {
  std::uint64_t bytes = 0;
  std::uint64_t calls = 0;  // read/write/send/recv system calls that moved data
  double real_seconds = 0;
  rusage usage_before{};
  rusage usage_after{};
  std::optional<std::uint32_t> checksum;  // CRC-32 of the bytes, with --checksum
  // UDP only: every end sentinel was lost and --timeout ended the run; the
  // times then end at the last datagram received.
  bool ended_by_timeout = false;
};

// ttcp's outfmt(): "327680.00 KB" for format 'K'; bit formats multiply by 8;
// every unit is a power of 1024, as in ttcp.
std::string format_rate(double bytes_per_second, char format);

// "ttcp-t: buflen=8192, nbuf=2048, align=16384/0, port=5001  tcp  -> host"
std::string header_line(const Options& options);

// "ttcp-t: 16777216 bytes in 0.05 real seconds = 327680.00 KB/sec +++"
std::string throughput_line(std::string_view tag, const TransferResult& result, char format);

// "ttcp-t: 2048 I/O calls, msec/call = 0.03, calls/sec = 40960.00"
std::string calls_line(std::string_view tag, const TransferResult& result);

// "ttcp-t: 0.0user 0.0sys 0:00real 100% 0i+0d 3456maxrss 0+12pf 3+1csw"
std::string usage_line(std::string_view tag, const TransferResult& result);

// -v: "ttcp-t: 16777216 bytes in 0.04 CPU seconds = 409600.00 KB/cpu sec"
std::string cpu_line(std::string_view tag, const TransferResult& result, char format);

// --checksum: "ttcp-t: crc32 1c291ca3 over 16777216 bytes"; the text after
// the tag is identical on both ends when the data arrived intact.
std::string checksum_line(std::string_view tag, const TransferResult& result);

// --json: one object, no trailing newline.
std::string json_report(const Options& options, const TransferResult& result);

}  // namespace vifd::ttcp
