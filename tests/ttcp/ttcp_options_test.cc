// vif-ttcp's command line: classic ttcp getopt behaviour and the extensions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "frontend/lib/ttcp/options.h"

namespace vifd::ttcp {
namespace {

using ::testing::HasSubstr;

Options parse(std::vector<std::string_view> arguments) {
  return parse_options(arguments);
}

// The UsageError message of a command line that must be rejected.
std::string rejection(std::vector<std::string_view> arguments) {
  try {
    parse_options(arguments);
  } catch (const UsageError& error) {
    return error.what();
  }
  return "accepted";
}

TEST(TtcpOptions, DefaultsMatchClassicTtcp) {
  const Options options = parse({"-t", "host"});
  EXPECT_EQ(options.role, Role::kTransmit);
  EXPECT_EQ(options.protocol, Protocol::kTcp);
  EXPECT_EQ(options.buffer_length, 8192U);
  EXPECT_EQ(options.buffer_count, 2048U);
  EXPECT_EQ(options.buffer_alignment, 16384U);
  EXPECT_EQ(options.buffer_offset, 0U);
  EXPECT_EQ(options.port, 5001);
  EXPECT_EQ(options.format, 'K');
  EXPECT_FALSE(options.sink_mode);
  EXPECT_FALSE(options.checksum);
  EXPECT_FALSE(options.timeout_seconds.has_value());
  EXPECT_EQ(options.host, "host");
  EXPECT_EQ(options.tag(), "ttcp-t");
}

TEST(TtcpOptions, ReceiverTakesNoHost) {
  const Options options = parse({"-r", "-s"});
  EXPECT_EQ(options.role, Role::kReceive);
  EXPECT_TRUE(options.sink_mode);
  EXPECT_EQ(options.tag(), "ttcp-r");
  EXPECT_THAT(rejection({"-r", "somehost"}), HasSubstr("-r takes no host"));
}

TEST(TtcpOptions, EveryFlag) {
  const Options options = parse(
      {"-t", "-s",   "-D",         "-v",     "-d",     "-B",   "-l",        "1000", "-n",      "7",
       "-p", "6000", "-b",         "65536",  "-A",     "4096", "-O",        "12",   "-f",      "m",
       "-T", "2.5",  "--checksum", "--json", "--bind", "::1",  "--timeout", "3",    "10.0.0.2"});
  EXPECT_TRUE(options.sink_mode);
  EXPECT_TRUE(options.no_delay);
  EXPECT_TRUE(options.verbose);
  EXPECT_TRUE(options.socket_debug);
  EXPECT_TRUE(options.full_blocks);
  EXPECT_EQ(options.buffer_length, 1000U);
  EXPECT_EQ(options.buffer_count, 7U);
  EXPECT_EQ(options.port, 6000);
  EXPECT_EQ(options.socket_buffer_size, 65536U);
  EXPECT_EQ(options.buffer_alignment, 4096U);
  EXPECT_EQ(options.buffer_offset, 12U);
  EXPECT_EQ(options.format, 'm');
  EXPECT_EQ(options.duration_seconds, 2.5);
  EXPECT_TRUE(options.checksum);
  EXPECT_TRUE(options.json);
  EXPECT_EQ(options.bind_address, "::1");
  EXPECT_EQ(options.timeout_seconds, 3.0);
  EXPECT_EQ(options.host, "10.0.0.2");
}

TEST(TtcpOptions, UdpFlag) {
  const Options options = parse({"-r", "-u"});
  EXPECT_EQ(options.protocol, Protocol::kUdp);
}

TEST(TtcpOptions, GetoptStyleGroupingAndAttachedValues) {
  const Options options = parse({"-tsl4096", "-n16", "-fG", "host"});
  EXPECT_EQ(options.role, Role::kTransmit);
  EXPECT_TRUE(options.sink_mode);
  EXPECT_EQ(options.buffer_length, 4096U);
  EXPECT_EQ(options.buffer_count, 16U);
  EXPECT_EQ(options.format, 'G');
}

TEST(TtcpOptions, LongOptionsAcceptEqualsForm) {
  const Options options = parse({"-r", "-s", "--bind=127.0.0.1", "--timeout=0.5"});
  EXPECT_EQ(options.bind_address, "127.0.0.1");
  EXPECT_EQ(options.timeout_seconds, 0.5);
}

TEST(TtcpOptions, DoubleDashEndsOptions) {
  const Options options = parse({"-t", "--", "-weird-host"});
  EXPECT_EQ(options.host, "-weird-host");
}

TEST(TtcpOptions, EveryFormatLetter) {
  for (const char* letter : {"k", "K", "m", "M", "g", "G"}) {
    EXPECT_EQ(parse({"-r", "-f", letter}).format, letter[0]);
  }
  EXPECT_THAT(rejection({"-r", "-f", "x"}), HasSubstr("-f expects one of k, K, m, M, g, G"));
  EXPECT_THAT(rejection({"-r", "-f", "kk"}), HasSubstr("-f expects"));
}

TEST(TtcpOptions, VersionNeedsNoRole) {
  const auto options = parse({"--version"});
  EXPECT_TRUE(options.version);
  EXPECT_FALSE(options.help);
}

TEST(TtcpOptions, HelpNeedsNoRole) {
  EXPECT_TRUE(parse({"--help"}).help);
  EXPECT_TRUE(parse({"-h"}).help);
  EXPECT_THAT(usage_text(), HasSubstr("vif-ttcp extensions (not in classic ttcp)"));
}

TEST(TtcpOptions, RoleIsRequiredAndExclusive) {
  EXPECT_THAT(rejection({"-s"}), HasSubstr("one of -t (transmit) or -r (receive) is required"));
  EXPECT_THAT(rejection({"-t", "-r", "host"}), HasSubstr("mutually exclusive"));
  EXPECT_THAT(rejection({"-t"}), HasSubstr("-t needs the receiver's host"));
  EXPECT_THAT(rejection({"-t", "a", "b"}), HasSubstr("exactly one host"));
}

TEST(TtcpOptions, BadNumbersNameTheOption) {
  EXPECT_THAT(rejection({"-r", "-l", "abc"}), HasSubstr("-l expects a whole number, got 'abc'"));
  EXPECT_THAT(rejection({"-r", "-l", "0"}), HasSubstr("-l must be between 1 and"));
  EXPECT_THAT(rejection({"-r", "-l", "12x"}), HasSubstr("-l expects a whole number"));
  EXPECT_THAT(rejection({"-r", "-l", "-5"}), HasSubstr("-l expects a whole number"));
  EXPECT_THAT(rejection({"-t", "-n", "0", "h"}), HasSubstr("-n must be between 1"));
  EXPECT_THAT(rejection({"-r", "-p", "65536"}), HasSubstr("-p must be between 0 and 65535"));
  EXPECT_THAT(rejection({"-r", "-b", "0"}), HasSubstr("-b must be between 1"));
  EXPECT_THAT(rejection({"-r", "-A", "3000"}), HasSubstr("-A must be a power of two"));
  EXPECT_THAT(rejection({"-r", "-O", "999999"}), HasSubstr("-O must be between 0 and"));
  EXPECT_THAT(rejection({"-t", "-T", "0", "h"}), HasSubstr("-T must be a positive number"));
  EXPECT_THAT(rejection({"-t", "-T", "nan", "h"}), HasSubstr("-T must be a positive number"));
  EXPECT_THAT(rejection({"-r", "--timeout", "soon"}),
              HasSubstr("--timeout expects a number of seconds, got 'soon'"));
  EXPECT_THAT(rejection({"-r", "--timeout=-1"}), HasSubstr("--timeout must be a positive"));
}

TEST(TtcpOptions, MissingValuesAndUnknownOptions) {
  EXPECT_THAT(rejection({"-r", "-l"}), HasSubstr("-l needs a value"));
  EXPECT_THAT(rejection({"-r", "--bind"}), HasSubstr("--bind needs a value"));
  EXPECT_THAT(rejection({"-r", "--bind="}), HasSubstr("--bind needs an address"));
  EXPECT_THAT(rejection({"-r", "-x"}), HasSubstr("unknown option '-x'"));
  EXPECT_THAT(rejection({"-r", "--frobnicate"}), HasSubstr("unknown option '--frobnicate'"));
  EXPECT_THAT(rejection({"-r", "--json=yes"}), HasSubstr("--json takes no value"));
}

TEST(TtcpOptions, RoleSpecificOptionsAreChecked) {
  EXPECT_THAT(rejection({"-r", "-T", "5"}), HasSubstr("-T applies to the transmitter"));
  EXPECT_THAT(rejection({"-r", "--json"}), HasSubstr("--json on the receiver needs -s"));
  EXPECT_THAT(rejection({"-t", "-p", "0", "h"}), HasSubstr("-p 0 is only meaningful"));
  EXPECT_EQ(parse({"-r", "-p", "0"}).port, 0);
  EXPECT_TRUE(parse({"-t", "--json", "h"}).json);
}

TEST(TtcpOptions, UdpBufferLimits) {
  // Classic ttcp raises a UDP buffer to 5 bytes so data outgrows the sentinels.
  EXPECT_EQ(parse({"-r", "-u", "-l", "1"}).buffer_length, 5U);
  EXPECT_EQ(parse({"-r", "-u", "-l", "65507"}).buffer_length, 65507U);
  EXPECT_THAT(rejection({"-r", "-u", "-l", "65508"}), HasSubstr("-l must be at most 65507"));
  EXPECT_THAT(rejection({"-t", "-u", "-D", "h"}), HasSubstr("-D (TCP_NODELAY) does not apply"));
}

}  // namespace
}  // namespace vifd::ttcp
