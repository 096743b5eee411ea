// vif-ttcp end to end on the loopback interface: a Receiver and a
// Transmitter in two threads of this process, sink mode, checksums compared.
// Every receiver carries --timeout so a lost connection fails the test
// instead of hanging it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <future>
#include <memory>
#include <string>

#include "frontend/lib/ttcp/options.h"
#include "frontend/lib/ttcp/session.h"
#include "frontend/lib/ttcp/socket.h"

namespace vifd::ttcp {
namespace {

using ::testing::HasSubstr;

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using MessageLog = std::unique_ptr<std::FILE, FileCloser>;

MessageLog open_log() {
  MessageLog log(std::tmpfile());
  if (!log) {
    throw std::runtime_error("tmpfile failed");
  }
  return log;
}

std::string contents(std::FILE* log) {
  std::rewind(log);
  std::string text;
  char chunk[512];
  while (const std::size_t count = std::fread(chunk, 1, sizeof(chunk), log)) {
    text.append(chunk, count);
  }
  return text;
}

Options receiver_options(const std::string& bind_address) {
  Options options;
  options.role = Role::kReceive;
  options.sink_mode = true;
  options.port = 0;
  options.checksum = true;
  options.bind_address = bind_address;
  options.timeout_seconds = 30;
  return options;
}

Options transmitter_options(const std::string& host, int port) {
  Options options;
  options.role = Role::kTransmit;
  options.sink_mode = true;
  options.host = host;
  options.port = port;
  options.checksum = true;
  options.timeout_seconds = 30;
  return options;
}

bool ipv6_loopback_available() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_loopback;
  const bool bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return bound;
}

struct RunPair {
  TransferResult sent;
  TransferResult received;
  std::string transmitter_log;
  std::string receiver_log;
};

RunPair run_pair(Options receive, Options transmit) {
  MessageLog receiver_log = open_log();
  MessageLog transmitter_log = open_log();
  Receiver receiver(receive, receiver_log.get());
  transmit.port = receiver.port();
  auto received = std::async(std::launch::async, [&receiver] { return receiver.run(); });
  RunPair pair;
  pair.sent = Transmitter(transmit, transmitter_log.get()).run();
  pair.received = received.get();
  pair.transmitter_log = contents(transmitter_log.get());
  pair.receiver_log = contents(receiver_log.get());
  return pair;
}

TEST(TtcpLoopback, Tcp64MebibytesArriveWithTheSameChecksum) {
  Options transmit = transmitter_options("127.0.0.1", 0);
  transmit.buffer_count = 8192;  // 8192 x 8 KiB = 64 MiB
  const RunPair pair = run_pair(receiver_options("127.0.0.1"), transmit);
  EXPECT_EQ(pair.sent.bytes, std::uint64_t{64} << 20);
  EXPECT_EQ(pair.received.bytes, pair.sent.bytes);
  ASSERT_TRUE(pair.sent.checksum.has_value());
  ASSERT_TRUE(pair.received.checksum.has_value());
  EXPECT_EQ(*pair.received.checksum, *pair.sent.checksum);
  EXPECT_GE(pair.sent.calls, 8192U);
  EXPECT_GT(pair.received.calls, 0U);
  EXPECT_THAT(pair.transmitter_log, HasSubstr("ttcp-t: socket\nttcp-t: connect\n"));
  EXPECT_THAT(pair.transmitter_log, HasSubstr("ttcp-t: 67108864 bytes in "));
  EXPECT_THAT(pair.receiver_log, HasSubstr("ttcp-r: accept from 127.0.0.1\n"));
  EXPECT_THAT(pair.receiver_log, HasSubstr("ttcp-r: 67108864 bytes in "));
  EXPECT_THAT(pair.receiver_log, HasSubstr(" KB/sec +++\n"));
}

TEST(TtcpLoopback, TcpOverIpv6WithNoDelayAndFullBlocks) {
  if (!ipv6_loopback_available()) {
    GTEST_SKIP() << "no IPv6 loopback on this host";
  }
  Options receive = receiver_options("::1");
  receive.full_blocks = true;
  receive.buffer_length = 1000;
  Options transmit = transmitter_options("::1", 0);
  transmit.no_delay = true;
  transmit.buffer_length = 1000;
  transmit.buffer_count = 500;
  const RunPair pair = run_pair(receive, transmit);
  EXPECT_EQ(pair.received.bytes, 500000U);
  EXPECT_EQ(pair.received.checksum, pair.sent.checksum);
  EXPECT_THAT(pair.transmitter_log, HasSubstr("ttcp-t: nodelay\n"));
  EXPECT_THAT(pair.receiver_log, HasSubstr("ttcp-r: accept from ::1\n"));
}

TEST(TtcpLoopback, UdpRunEndsAtTheEndSentinel) {
  // 64 datagrams of 1 KiB fit the enlarged receive buffer even before the
  // receiving thread runs, so loopback loses none of them.
  Options receive = receiver_options("127.0.0.1");
  receive.protocol = Protocol::kUdp;
  receive.buffer_length = 1024;
  receive.socket_buffer_size = 1 << 20;
  Options transmit = transmitter_options("127.0.0.1", 0);
  transmit.protocol = Protocol::kUdp;
  transmit.buffer_length = 1024;
  transmit.buffer_count = 64;
  const RunPair pair = run_pair(receive, transmit);
  EXPECT_EQ(pair.sent.bytes, 65536U);
  // Start sentinel, 64 data datagrams, end sentinel, then 4 spare sentinels.
  EXPECT_EQ(pair.sent.calls, 70U);
  EXPECT_EQ(pair.received.bytes, pair.sent.bytes);
  EXPECT_EQ(pair.received.checksum, pair.sent.checksum);
  EXPECT_THAT(pair.receiver_log, HasSubstr("ttcp-r: rcvbuf\n"));
  EXPECT_THAT(pair.receiver_log, HasSubstr("  udp\n"));
}

TEST(TtcpLoopback, UdpRunWithLostEndSentinelsEndsAtTheTimeout) {
  MessageLog log = open_log();
  Options options = receiver_options("127.0.0.1");
  options.protocol = Protocol::kUdp;
  options.timeout_seconds = 0.2;
  Receiver receiver(options, log.get());

  // A transmitter whose end sentinels never arrive: start sentinel, 3 data
  // datagrams, nothing more.
  const FileDescriptor sender(::socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_TRUE(sender.valid());
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(receiver.port()));
  const std::string sentinel(4, 's');
  const std::string data(100, 'd');
  for (const std::string* datagram : {&sentinel, &data, &data, &data}) {
    ASSERT_EQ(::sendto(sender.get(), datagram->data(), datagram->size(), 0,
                       reinterpret_cast<const sockaddr*>(&address), sizeof(address)),
              static_cast<ssize_t>(datagram->size()));
  }

  const TransferResult result = receiver.run();
  EXPECT_TRUE(result.ended_by_timeout);
  EXPECT_EQ(result.bytes, 300U);
  EXPECT_EQ(result.calls, 4U);
  EXPECT_THAT(
      contents(log.get()),
      HasSubstr("ttcp-r: end sentinel lost; run ended by --timeout\nttcp-r: 300 bytes in "));
}

TEST(TtcpLoopback, TransmitForADuration) {
  Options transmit = transmitter_options("127.0.0.1", 0);
  transmit.duration_seconds = 0.2;
  const RunPair pair = run_pair(receiver_options("127.0.0.1"), transmit);
  EXPECT_GT(pair.sent.bytes, 0U);
  EXPECT_EQ(pair.sent.bytes % transmit.buffer_length, 0U);
  EXPECT_EQ(pair.received.bytes, pair.sent.bytes);
  EXPECT_EQ(pair.received.checksum, pair.sent.checksum);
}

TEST(TtcpLoopback, ConnectionRefusedIsReportedLikeTtcp) {
  // A bound TCP socket that never listens holds a port nobody accepts on.
  const FileDescriptor closed(::socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_TRUE(closed.valid());
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(closed.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::getsockname(closed.get(), reinterpret_cast<sockaddr*>(&address), &length), 0);

  MessageLog log = open_log();
  Transmitter transmitter(transmitter_options("127.0.0.1", ntohs(address.sin_port)), log.get());
  try {
    transmitter.run();
    FAIL() << "connect to a closed port succeeded";
  } catch (const SystemError& error) {
    EXPECT_EQ(error.error_number(), ECONNREFUSED);
    EXPECT_STREQ(error.what(), "connect: Connection refused");
  }
  EXPECT_THAT(contents(log.get()), HasSubstr("ttcp-t: socket\n"));
}

TEST(TtcpLoopback, ReceiverTimesOutWithoutATransmitter) {
  MessageLog log = open_log();
  Options options = receiver_options("127.0.0.1");
  options.timeout_seconds = 0.1;
  Receiver receiver(options, log.get());
  try {
    receiver.run();
    FAIL() << "receiver returned without a transmitter";
  } catch (const SystemError& error) {
    EXPECT_EQ(error.error_number(), ETIMEDOUT);
    EXPECT_EQ(error.operation(), "accept");
  }
}

TEST(TtcpLoopback, UnresolvableHostIsReported) {
  MessageLog log = open_log();
  Transmitter transmitter(transmitter_options("no-such-host.invalid", 5001), log.get());
  EXPECT_THROW(transmitter.run(), ResolveError);
}

}  // namespace
}  // namespace vifd::ttcp
