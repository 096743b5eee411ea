// vif-ttcp's report lines must read exactly like classic ttcp's, so results
// can be compared with the published ones and parsed by the same scripts.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "frontend/lib/ttcp/checksum.h"
#include "frontend/lib/ttcp/options.h"
#include "frontend/lib/ttcp/report.h"
#include "frontend/lib/ttcp/transfer.h"

namespace vifd::ttcp {
namespace {

Options transmitter_options() {
  Options options;
  options.role = Role::kTransmit;
  options.host = "10.0.0.2";
  return options;
}

TransferResult sixteen_mebibytes_in_50_ms() {
  TransferResult result;
  result.bytes = 16777216;
  result.calls = 2048;
  result.real_seconds = 0.05;
  return result;
}

timeval at(long seconds, long microseconds) {
  timeval value{};
  value.tv_sec = seconds;
  value.tv_usec = microseconds;
  return value;
}

TEST(TtcpReport, HeaderLines) {
  Options options = transmitter_options();
  EXPECT_EQ(header_line(options),
            "ttcp-t: buflen=8192, nbuf=2048, align=16384/0, port=5001  tcp  -> 10.0.0.2");
  options.protocol = Protocol::kUdp;
  options.socket_buffer_size = 262144;
  EXPECT_EQ(header_line(options),
            "ttcp-t: buflen=8192, nbuf=2048, align=16384/0, port=5001, sockbufsize=262144  udp"
            "  -> 10.0.0.2");
  Options receiver;
  EXPECT_EQ(header_line(receiver), "ttcp-r: buflen=8192, nbuf=2048, align=16384/0, port=5001  tcp");
}

TEST(TtcpReport, ThroughputLineInKilobytesPerSecond) {
  EXPECT_EQ(throughput_line("ttcp-t", sixteen_mebibytes_in_50_ms(), 'K'),
            "ttcp-t: 16777216 bytes in 0.05 real seconds = 327680.00 KB/sec +++");
}

TEST(TtcpReport, ZeroDurationCountsAsOneMillisecond) {
  TransferResult result;
  result.bytes = 1024;
  result.calls = 1;
  EXPECT_EQ(throughput_line("ttcp-r", result, 'K'),
            "ttcp-r: 1024 bytes in 0.00 real seconds = 1000.00 KB/sec +++");
}

TEST(TtcpReport, CallsLineUsesTtcpsMillisecondFactor) {
  // 1024 * 0.05 / 2048 = 0.025: ttcp's msec/call is computed with 1024.
  EXPECT_EQ(calls_line("ttcp-t", sixteen_mebibytes_in_50_ms()),
            "ttcp-t: 2048 I/O calls, msec/call = 0.03, calls/sec = 40960.00");
}

TEST(TtcpReport, EveryRateFormat) {
  const double rate = 1024.0 * 1024.0 * 1024.0;  // one GiB per second
  EXPECT_EQ(format_rate(rate, 'K'), "1048576.00 KB");
  EXPECT_EQ(format_rate(rate, 'M'), "1024.00 MB");
  EXPECT_EQ(format_rate(rate, 'G'), "1.00 GB");
  EXPECT_EQ(format_rate(rate, 'k'), "8388608.00 Kbit");
  EXPECT_EQ(format_rate(rate, 'm'), "8192.00 Mbit");
  EXPECT_EQ(format_rate(rate, 'g'), "8.00 Gbit");
  EXPECT_EQ(throughput_line("ttcp-r", sixteen_mebibytes_in_50_ms(), 'm'),
            "ttcp-r: 16777216 bytes in 0.05 real seconds = 2560.00 Mbit/sec +++");
}

TEST(TtcpReport, UsageLineInTtcpsPrusageForm) {
  TransferResult result;
  result.real_seconds = 2.0;
  result.usage_before.ru_utime = at(1, 0);
  result.usage_after.ru_utime = at(1, 750000);  // 0.75 s user
  result.usage_before.ru_stime = at(0, 0);
  result.usage_after.ru_stime = at(0, 250000);  // 0.25 s sys
  result.usage_after.ru_maxrss = 4096;
  result.usage_before.ru_minflt = 10;
  result.usage_after.ru_minflt = 30;
  result.usage_after.ru_majflt = 1;
  result.usage_after.ru_nvcsw = 5;
  result.usage_after.ru_nivcsw = 2;
  EXPECT_EQ(usage_line("ttcp-t", result),
            "ttcp-t: 0.7user 0.2sys 0:02real 50% 0i+0d 4096maxrss 1+20pf 5+2csw");
}

TEST(TtcpReport, UsageLineElapsedPastAnHour) {
  TransferResult result;
  result.real_seconds = 3725.0;
  EXPECT_EQ(usage_line("ttcp-r", result),
            "ttcp-r: 0.0user 0.0sys 1:02:05real 0% 0i+0d 0maxrss 0+0pf 0+0csw");
}

TEST(TtcpReport, VerboseCpuLine) {
  TransferResult result = sixteen_mebibytes_in_50_ms();
  result.usage_after.ru_stime = at(0, 40000);
  EXPECT_EQ(cpu_line("ttcp-t", result, 'K'),
            "ttcp-t: 16777216 bytes in 0.04 CPU seconds = 409600.00 KB/cpu sec");
}

TEST(TtcpReport, ChecksumLineIsTheSameTextOnBothEnds) {
  TransferResult result;
  result.bytes = 9;
  result.checksum = 0xcbf43926;
  EXPECT_EQ(checksum_line("ttcp-r", result), "ttcp-r: crc32 cbf43926 over 9 bytes");
}

TEST(TtcpReport, JsonCarriesTheFigures) {
  TransferResult result = sixteen_mebibytes_in_50_ms();
  result.checksum = 0x1234abcd;
  const auto json = nlohmann::json::parse(json_report(transmitter_options(), result));
  EXPECT_EQ(json["role"], "transmit");
  EXPECT_EQ(json["protocol"], "tcp");
  EXPECT_EQ(json["bytes"], 16777216U);
  EXPECT_EQ(json["calls"], 2048U);
  EXPECT_DOUBLE_EQ(json["seconds"].get<double>(), 0.05);
  EXPECT_DOUBLE_EQ(json["kb_per_sec"].get<double>(), 327680.0);
  EXPECT_NEAR(json["gbit_per_sec"].get<double>(), 16777216.0 * 8 / 1e9 / 0.05, 1e-9);
  EXPECT_EQ(json["checksum"], "crc32:1234abcd");

  result.checksum.reset();
  EXPECT_TRUE(nlohmann::json::parse(json_report(Options{}, result))["checksum"].is_null());
}

TEST(TtcpChecksum, KnownCrc32AndStreamingEqualsOneShot) {
  const std::string text = "123456789";
  const auto bytes = std::as_bytes(std::span(text));
  StreamChecksum whole;
  whole.update(bytes);
  EXPECT_EQ(whole.value(), 0xcbf43926U);  // the standard CRC-32 check value
  StreamChecksum pieces;
  pieces.update(bytes.first(4));
  pieces.update(bytes.subspan(4));
  EXPECT_EQ(pieces.value(), whole.value());
}

TEST(TtcpTransfer, PatternIsPrintableAsciiInOrder) {
  std::vector<std::byte> buffer(200);
  fill_pattern(buffer);
  EXPECT_EQ(static_cast<char>(buffer[0]), ' ');
  EXPECT_EQ(static_cast<char>(buffer[1]), '!');
  EXPECT_EQ(static_cast<char>(buffer[94]), '~');
  // After '~' the pattern skips the control characters and restarts.
  EXPECT_EQ(static_cast<char>(buffer[95]), ' ');
}

TEST(TtcpTransfer, BufferHonoursAlignmentAndOffset) {
  TransferBuffer buffer(1000, 4096, 12);
  const auto address = reinterpret_cast<std::uintptr_t>(buffer.bytes().data());
  EXPECT_EQ(address % 4096, 12U);
  EXPECT_EQ(buffer.bytes().size(), 1000U);
}

}  // namespace
}  // namespace vifd::ttcp
