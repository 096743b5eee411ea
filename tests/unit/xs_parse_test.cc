#include "common/protocol/xs_parse.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace vifd::protocol {
namespace {

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();

// Every rejection must name the key and quote the value.
template <typename T>
void expect_rejected(const Result<T>& result, std::string_view key, std::string_view reason_part) {
  ASSERT_FALSE(result.ok());
  const ParseError& error = result.error();
  EXPECT_EQ(error.key, key);
  EXPECT_NE(error.reason.find(reason_part), std::string::npos)
      << "reason '" << error.reason << "' lacks '" << reason_part << "'";
  const std::string message = error.message();
  EXPECT_NE(message.find("'" + std::string(key) + "'"), std::string::npos) << message;
  EXPECT_THROW((void)result.value(), XenstoreValueError);
}

// ---- parse_uint ------------------------------------------------------------

TEST(ParseUintTest, AcceptsPlainDecimal) {
  EXPECT_EQ(parse_uint("k", "0", 0, 10).value(), 0U);
  EXPECT_EQ(parse_uint("k", "7", 0, 10).value(), 7U);
  EXPECT_EQ(parse_uint("k", "10", 0, 10).value(), 10U);
  EXPECT_EQ(parse_uint("k", "18446744073709551615", 0, kU64Max).value(), kU64Max);
  EXPECT_EQ(parse_uint("k", "4294967296", 0, kU64Max).value(), 4294967296U);
}

TEST(ParseUintTest, RejectsEmpty) {
  expect_rejected(parse_uint("k", "", 0, 9), "k", "empty");
}
TEST(ParseUintTest, RejectsMinus) {
  expect_rejected(parse_uint("k", "-1", 0, 9), "k", "sign");
}
TEST(ParseUintTest, RejectsPlus) {
  expect_rejected(parse_uint("k", "+1", 0, 9), "k", "sign");
}
TEST(ParseUintTest, RejectsLeadingSpace) {
  expect_rejected(parse_uint("k", " 1", 0, 9), "k", "expected a decimal");
}
TEST(ParseUintTest, RejectsTrailingSpace) {
  expect_rejected(parse_uint("k", "1 ", 0, 9), "k", "trailing");
}
TEST(ParseUintTest, RejectsTrailingNewline) {
  expect_rejected(parse_uint("k", "1\n", 0, 9), "k", "trailing");
}
TEST(ParseUintTest, RejectsTrailingJunk) {
  expect_rejected(parse_uint("k", "1x", 0, 9), "k", "trailing");
}
TEST(ParseUintTest, RejectsEmbeddedNul) {
  expect_rejected(parse_uint("k",
                             std::string_view("1\0"
                                              "2",
                                              3),
                             0, 99),
                  "k", "trailing");
}
TEST(ParseUintTest, RejectsHex) {
  expect_rejected(parse_uint("k", "0x10", 0, 99), "k", "trailing");
}
TEST(ParseUintTest, RejectsLeadingZeros) {
  expect_rejected(parse_uint("k", "010", 0, 99), "k", "leading zeros");
  expect_rejected(parse_uint("k", "00", 0, 99), "k", "leading zeros");
}
TEST(ParseUintTest, RejectsLetters) {
  expect_rejected(parse_uint("k", "abc", 0, 9), "k", "decimal");
}
TEST(ParseUintTest, RejectsOverflow) {
  expect_rejected(parse_uint("k", "18446744073709551616", 0, kU64Max), "k", "64 bits");
  expect_rejected(parse_uint("k", "99999999999999999999999", 0, kU64Max), "k", "64 bits");
}
TEST(ParseUintTest, RejectsAboveMax) {
  expect_rejected(parse_uint("k", "11", 0, 10), "k", "out of range [0, 10]");
}
TEST(ParseUintTest, RejectsBelowMin) {
  expect_rejected(parse_uint("k", "4", 5, 10), "k", "out of range [5, 10]");
}

// ---- messages --------------------------------------------------------------

TEST(ParseErrorTest, MessageNamesKeyAndValue) {
  const auto result = parse_uint("some/dir/3/ref-key", "12ab", 0, 99);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message(),
            "xenstore key 'some/dir/3/ref-key': invalid value \"12ab\": "
            "trailing characters after the number");
}

TEST(ParseErrorTest, MessageEscapesNonPrintable) {
  const auto result = parse_bool("flag-key", std::string_view("\x01\"\\\xff\0", 5));
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message().find(R"("\x01\"\\\xff\x00")"), std::string::npos)
      << result.error().message();
}

TEST(ParseErrorTest, MessageTruncatesLongValues) {
  const std::string huge(4096, '7');
  const auto result = parse_uint("mtu", huge, 0, 65535);
  ASSERT_FALSE(result.ok());
  const std::string message = result.error().message();
  EXPECT_LT(message.size(), 200U);
  EXPECT_NE(message.find(std::string(64, '7') + "...\" (4096 bytes)"), std::string::npos)
      << message;
  EXPECT_EQ(result.error().value, huge);  // the raw value stays available
}

TEST(ParseErrorTest, ValueOrFallsBack) {
  EXPECT_EQ(parse_uint("k", "x", 0, 9).value_or(5), 5U);
  EXPECT_EQ(parse_uint("k", "3", 0, 9).value_or(5), 3U);
}

// ---- parse_bool ------------------------------------------------------------

TEST(ParseBoolTest, AcceptsZeroAndOne) {
  EXPECT_FALSE(parse_bool("flag-key", "0").value());
  EXPECT_TRUE(parse_bool("flag-key", "1").value());
}

TEST(ParseBoolTest, RejectsEverythingElse) {
  for (const char* bad : {"", "2", "01", "00", "true", "yes", " 1", "1 ", "-0", "+1", "1\n"}) {
    SCOPED_TRACE(bad);
    expect_rejected(parse_bool("flag-key", bad), "flag-key", "\"0\" or \"1\"");
  }
}

// ---- parse_mac -------------------------------------------------------------

TEST(ParseMacTest, AcceptsEitherCase) {
  const auto mac = parse_mac("mac", "00:16:3E:0a:Bb:fF");
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(mac.value().octets, (std::array<std::uint8_t, 6>{0x00, 0x16, 0x3e, 0x0a, 0xbb, 0xff}));
  EXPECT_EQ(mac.value().to_string(), "00:16:3e:0a:bb:ff");
  EXPECT_TRUE(parse_mac("mac", "02:00:00:00:00:01").ok());  // locally administered
}

TEST(ParseMacTest, RejectsWrongShape) {
  for (const char* bad :
       {"", "00:16:3e:0a:0b", "00:16:3e:0a:0b:0c:0d", "00:16:3e:0a:0b:0c ", " 00:16:3e:0a:0b:0c",
        "0:16:3e:0a:0b:0c:", "00-16-3e-0a-0b-0c", "00163e0a0b0c"}) {
    SCOPED_TRACE(bad);
    expect_rejected(parse_mac("mac", bad), "mac", "");
  }
}

TEST(ParseMacTest, RejectsNonHexOctet) {
  expect_rejected(parse_mac("mac", "00:16:3g:0a:0b:0c"), "mac", "octet 3");
  expect_rejected(parse_mac("mac", "00:16:3e:0a:0b:+c"), "mac", "octet 6");
  expect_rejected(parse_mac("mac", "0x:16:3e:0a:0b:0c"), "mac", "octet 1");
}

TEST(ParseMacTest, RejectsSingleDigitOctets) {
  // Same length as a valid address, but one octet has one digit.
  expect_rejected(parse_mac("mac", "0:116:3e:0a:0b:0c"), "mac", "");
}

TEST(ParseMacTest, RejectsWrongSeparator) {
  expect_rejected(parse_mac("mac", "00:16:3e-0a:0b:0c"), "mac", "':' after octet 3");
}

TEST(ParseMacTest, RejectsMulticastBroadcastAndZero) {
  expect_rejected(parse_mac("mac", "01:00:5e:00:00:01"), "mac", "multicast");
  expect_rejected(parse_mac("mac", "ff:ff:ff:ff:ff:ff"), "mac", "multicast");
  expect_rejected(parse_mac("mac", "33:33:00:00:00:01"), "mac", "multicast");
  expect_rejected(parse_mac("mac", "00:00:00:00:00:00"), "mac", "all-zero");
}

// ---- parse_ipv4_list ---------------------------------------------------------

TEST(ParseIpv4ListTest, AcceptsWhatVifBridgeHandsToIptables) {
  EXPECT_EQ(parse_ipv4_list("ip", "10.0.0.1").value(), (std::vector<Ipv4Prefix>{{0x0A000001, 32}}));
  EXPECT_EQ(parse_ipv4_list("ip", "10.0.0.1 192.168.7.0/24  0.0.0.0/0").value(),
            (std::vector<Ipv4Prefix>{{0x0A000001, 32}, {0xC0A80700, 24}, {0, 0}}));
  const auto prefix = parse_ipv4_list("ip", "192.168.7.0/24").value().at(0);
  EXPECT_TRUE(prefix.contains(0xC0A807FF));
  EXPECT_FALSE(prefix.contains(0xC0A80800));
  EXPECT_TRUE((Ipv4Prefix{0, 0}).contains(0xFFFFFFFF));
}

TEST(ParseIpv4ListTest, RejectsAnythingElseNamingTheKey) {
  expect_rejected(parse_ipv4_list("ip", ""), "ip", "no address");
  expect_rejected(parse_ipv4_list("ip", "   "), "ip", "no address");
  expect_rejected(parse_ipv4_list("ip", "10.0.0"), "ip", "entry 1");
  expect_rejected(parse_ipv4_list("ip", "10.0.0.1.2"), "ip", "entry 1 octet 4");
  expect_rejected(parse_ipv4_list("ip", "10.0.0.256"), "ip", "out of range");
  expect_rejected(parse_ipv4_list("ip", "10.0.0.01"), "ip", "leading zeros");
  expect_rejected(parse_ipv4_list("ip", "10.0.0.1 fe80::1"), "ip", "entry 2");
  expect_rejected(parse_ipv4_list("ip", "10.0.0.1/33"), "ip", "prefix length");
  expect_rejected(parse_ipv4_list("ip", "10.0.0.1/"), "ip", "prefix length");
  expect_rejected(parse_ipv4_list("ip", "10.0.0.1/24"), "ip", "host bits");
  expect_rejected(parse_ipv4_list("ip", "10.0.0.1\t10.0.0.2"), "ip", "entry 1");
  std::string many;
  for (std::size_t i = 0; i <= kMaxIpv4Prefixes; ++i) {
    many += "10.0.0." + std::to_string(i) + " ";
  }
  expect_rejected(parse_ipv4_list("ip", many), "ip", "more than 64 entries");
}

// ---- parse_bridge ------------------------------------------------------------

BridgeSpec bridge(std::string name, std::optional<std::uint16_t> vlan = std::nullopt,
                  std::vector<std::uint16_t> trunks = {}, const std::string& value = "") {
  BridgeSpec spec;
  spec.value = value.empty() ? name : value;
  spec.name = std::move(name);
  spec.vlan = vlan;
  spec.trunks = std::move(trunks);
  return spec;
}

TEST(ParseBridgeTest, AcceptsLinuxBridgeNamesAsBefore) {
  for (const char* name :
       {"xenbr0", "br", "br.lan", "br0.", "a.b.10", "br-0_1@x", "fifteen-chars-x"}) {
    const BridgeSpec spec = parse_bridge("bridge", name).value();
    EXPECT_EQ(spec, bridge(name)) << name;
    EXPECT_FALSE(spec.open_vswitch_syntax()) << name;
  }
}

TEST(ParseBridgeTest, AcceptsWhatVifOpenvswitchReads) {
  // Access port, trunk, trunk with a native VLAN: the value is kept whole
  // for the script, the parts say what vifd's switch must keep out of.
  EXPECT_EQ(parse_bridge("bridge", "ovsbr.10").value(), bridge("ovsbr", 10, {}, "ovsbr.10"));
  EXPECT_EQ(parse_bridge("bridge", "ovsbr:10:20").value(),
            bridge("ovsbr", std::nullopt, {10, 20}, "ovsbr:10:20"));
  EXPECT_EQ(parse_bridge("bridge", "ovsbr.1:4094").value(),
            bridge("ovsbr", 1, {4094}, "ovsbr.1:4094"));
  EXPECT_TRUE(parse_bridge("bridge", "ovsbr.10").value().open_vswitch_syntax());
  EXPECT_TRUE(parse_bridge("bridge", "ovsbr:7").value().open_vswitch_syntax());
  // The bridge part may use the whole of IFNAMSIZ; the value may be longer.
  EXPECT_EQ(parse_bridge("bridge", "fifteen-chars-x.4094").value().name, "fifteen-chars-x");
  std::string widest = "br";
  for (std::uint16_t vlan = 1; vlan <= kMaxTrunkVlans; ++vlan) {
    widest += ":" + std::to_string(vlan);
  }
  EXPECT_EQ(parse_bridge("bridge", widest).value().trunks.size(), kMaxTrunkVlans);
}

TEST(ParseBridgeTest, RejectsWhatNeitherScriptCouldUseNamingTheKey) {
  expect_rejected(parse_bridge("bridge", ""), "bridge", "not a Linux interface name");
  expect_rejected(parse_bridge("bridge", "a/b"), "bridge", "not a Linux interface name");
  expect_rejected(parse_bridge("bridge", "br 0"), "bridge", "not a Linux interface name");
  expect_rejected(parse_bridge("bridge", ".."), "bridge", "not a Linux interface name");
  expect_rejected(parse_bridge("bridge", "sixteen-chars-xx"), "bridge", "interface name");
  expect_rejected(parse_bridge("bridge", "br\xc3\xa9"), "bridge", "interface name");
  expect_rejected(parse_bridge("bridge", std::string("br\0x", 4)), "bridge", "interface name");
  // VLAN ids: 1..4094, plain decimal.
  expect_rejected(parse_bridge("bridge", "ovsbr.0"), "bridge",
                  "VLAN \"0\": out of range [1, 4094]");
  expect_rejected(parse_bridge("bridge", "ovsbr.4095"), "bridge", "out of range [1, 4094]");
  expect_rejected(parse_bridge("bridge", "ovsbr.010"), "bridge", "leading zeros");
  expect_rejected(parse_bridge("bridge", "ovsbr.99999999999999999999"), "bridge", "64 bits");
  expect_rejected(parse_bridge("bridge", "ovsbr:0"), "bridge", "trunk VLAN");
  expect_rejected(parse_bridge("bridge", "ovsbr:10:4095"), "bridge", "trunk VLAN \"4095\"");
  expect_rejected(parse_bridge("bridge", "ovsbr:"), "bridge", "trunk VLAN \"\": empty");
  expect_rejected(parse_bridge("bridge", "ovsbr:10:"), "bridge", "trunk VLAN");
  expect_rejected(parse_bridge("bridge", "ovsbr::10"), "bridge", "trunk VLAN");
  expect_rejected(parse_bridge("bridge", "ovsbr:+10"), "bridge", "sign");
  expect_rejected(parse_bridge("bridge", "ovsbr:10,20"), "bridge", "trailing characters");
  expect_rejected(parse_bridge("bridge", "ovsbr:10:20:10"), "bridge", "VLAN 10 listed twice");
  expect_rejected(parse_bridge("bridge", "ovsbr.x:10"), "bridge", "without '.'");
  expect_rejected(parse_bridge("bridge", "a.b.10:20"), "bridge", "without '.'");
  expect_rejected(parse_bridge("bridge", ":10"), "bridge", "without '.'");
  expect_rejected(parse_bridge("bridge", ".10"), "bridge", "without '.'");
  expect_rejected(parse_bridge("bridge", "sixteen-chars-xx.10"), "bridge", "without '.'");
  expect_rejected(parse_bridge("bridge", "br/0.10"), "bridge", "without '.'");
  std::string too_wide = "br";
  for (std::size_t vlan = 1; vlan <= kMaxTrunkVlans + 1; ++vlan) {
    too_wide += ":" + std::to_string(vlan);
  }
  expect_rejected(parse_bridge("bridge", too_wide), "bridge", "more than 64 trunk VLANs");
  // A hostile-length value is cut short, not walked to its end.
  expect_rejected(parse_bridge("bridge", "br" + std::string(100000, ':')), "bridge", "trunk VLAN");
}

// ---- parse_rate ------------------------------------------------------------

TEST(ParseRateTest, AcceptsLibxlForm) {
  EXPECT_EQ(parse_rate("rate", "1250000,50000").value(), (RateLimit{1250000, 50000}));
  EXPECT_EQ(parse_rate("rate", "1,1").value(), (RateLimit{1, 1}));
  EXPECT_EQ(parse_rate("rate", "18446744073709551615,4294967295").value(),
            (RateLimit{kU64Max, 4294967295U}));
}

TEST(ParseRateTest, RejectsMissingOrExtraParts) {
  expect_rejected(parse_rate("rate", ""), "rate", "BYTES,USEC");
  expect_rejected(parse_rate("rate", "1000"), "rate", "BYTES,USEC");
  expect_rejected(parse_rate("rate", "1000,"), "rate", "usec part: empty");
  expect_rejected(parse_rate("rate", ",1000"), "rate", "bytes part: empty");
  expect_rejected(parse_rate("rate", "1000,50,7"), "rate", "usec part: trailing");
  expect_rejected(parse_rate("rate", "1000,,50"), "rate", "usec part");
}

TEST(ParseRateTest, RejectsZeroes) {
  expect_rejected(parse_rate("rate", "0,50000"), "rate", "bytes part: out of range");
  expect_rejected(parse_rate("rate", "1000,0"), "rate", "usec part: out of range");
}

TEST(ParseRateTest, RejectsOverflow) {
  expect_rejected(parse_rate("rate", "18446744073709551616,1"), "rate", "bytes part: number does");
  expect_rejected(parse_rate("rate", "1,4294967296"), "rate", "usec part: out of range");
}

TEST(ParseRateTest, RejectsSignsSpacesAndUnits) {
  expect_rejected(parse_rate("rate", "-1,50000"), "rate", "bytes part: sign");
  expect_rejected(parse_rate("rate", "1000,+5"), "rate", "usec part: sign");
  expect_rejected(parse_rate("rate", "1000, 50"), "rate", "usec part");
  expect_rejected(parse_rate("rate", "1000 ,50"), "rate", "bytes part: trailing");
  expect_rejected(parse_rate("rate", "10Mb/s,50"), "rate", "bytes part: trailing");
  expect_rejected(parse_rate("rate", "010,50"), "rate", "bytes part: leading zeros");
}

// ---- parse_grant_ref -------------------------------------------------------

TEST(ParseGrantRefTest, AcceptsOrdinaryRefs) {
  EXPECT_EQ(parse_grant_ref("ref-key", "8").value(), 8U);
  EXPECT_EQ(parse_grant_ref("ref-key", "2047").value(), 2047U);
  EXPECT_EQ(parse_grant_ref("ref-key", "4294967294").value(), 4294967294U);
}

TEST(ParseGrantRefTest, RejectsReservedRefs) {
  for (const char* reserved : {"0", "1", "7"}) {
    SCOPED_TRACE(reserved);
    expect_rejected(parse_grant_ref("ref-key", reserved), "ref-key", "reserved");
  }
}

TEST(ParseGrantRefTest, RejectsInvalidRefAndOverflow) {
  expect_rejected(parse_grant_ref("ref-key", "4294967295"), "ref-key", "invalid grant ref");
  expect_rejected(parse_grant_ref("ref-key", "4294967296"), "ref-key", "out of range");
  expect_rejected(parse_grant_ref("ref-key", "18446744073709551616"), "ref-key", "64 bits");
}

TEST(ParseGrantRefTest, RejectsGarbage) {
  for (const char* bad : {"", "-8", "+8", " 8", "8 ", "8x", "0x10", "08"}) {
    SCOPED_TRACE(bad);
    expect_rejected(parse_grant_ref("ref-key", bad), "ref-key", "");
  }
}

// ---- parse_evtchn_port -----------------------------------------------------

TEST(ParseEvtchnPortTest, AcceptsValidPorts) {
  EXPECT_EQ(parse_evtchn_port("port-key", "1").value(), 1U);
  EXPECT_EQ(parse_evtchn_port("port-key", "131071").value(), 131071U);
}

TEST(ParseEvtchnPortTest, RejectsPortZeroAndBeyondFifoLimit) {
  expect_rejected(parse_evtchn_port("port-key", "0"), "port-key", "out of range");
  expect_rejected(parse_evtchn_port("port-key", "131072"), "port-key", "out of range");
  expect_rejected(parse_evtchn_port("port-key", "4294967296"), "port-key", "out of range");
}

TEST(ParseEvtchnPortTest, RejectsGarbage) {
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1x", "0x10", "01", "18446744073709551616"}) {
    SCOPED_TRACE(bad);
    expect_rejected(parse_evtchn_port("port-key", bad), "port-key", "");
  }
}

// ---- parse_domid -----------------------------------------------------------

TEST(ParseDomidTest, AcceptsOrdinaryDomains) {
  EXPECT_EQ(parse_domid("domid-key", "0").value(), 0U);
  EXPECT_EQ(parse_domid("domid-key", "1").value(), 1U);
  EXPECT_EQ(parse_domid("domid-key", "32751").value(), 0x7FEFU);
}

TEST(ParseDomidTest, RejectsReservedAndOutOfRange) {
  expect_rejected(parse_domid("domid-key", "32752"), "domid-key", "out of range");  // DOMID_SELF
  expect_rejected(parse_domid("domid-key", "65535"), "domid-key", "out of range");
  expect_rejected(parse_domid("domid-key", "65536"), "domid-key", "out of range");
}

TEST(ParseDomidTest, RejectsGarbage) {
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1x", "0x10", "00", "18446744073709551616"}) {
    SCOPED_TRACE(bad);
    expect_rejected(parse_domid("domid-key", bad), "domid-key", "");
  }
}

TEST(EscapeForDisplay, KeepsPrintableAsciiAndEscapesEverythingElse) {
  EXPECT_EQ(escape_for_display("fe:ff:ff:ff:ff:ff"), "fe:ff:ff:ff:ff:ff");
  EXPECT_EQ(escape_for_display("\x1b[31mred\x07"), "\\x1b[31mred\\x07");
  EXPECT_EQ(escape_for_display(std::string_view("a\0b\r\n\x7f\xc3\xa9", 8)),
            "a\\x00b\\x0d\\x0a\\x7f\\xc3\\xa9");
  EXPECT_EQ(escape_for_display("back\\slash"), "back\\\\slash");
  EXPECT_EQ(escape_for_display("say \"hi\"", 64, "\""), "say \\\"hi\\\"");
  EXPECT_EQ(escape_for_display("abcdef", 3), "abc...");
  EXPECT_EQ(escape_for_display(""), "");
}

}  // namespace
}  // namespace vifd::protocol
