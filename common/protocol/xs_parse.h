// Strict parsers for values read from xenstore.
//
// Everything under a frontend's directory is written by the guest and is
// hostile until proven otherwise; even backend keys written by a toolstack
// deserve a clear error instead of a silent misreading. Each parser accepts
// exactly the form Xen's writers emit (libxl, Linux netfront, xenbus_printf
// "%u") and rejects everything else with a ParseError naming the key, the
// offending value (escaped and truncated) and the reason.
//
// The parsers never throw and never abort; Result::value() throws
// XenstoreValueError for callers on the control plane that prefer exceptions.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/protocol/ids.h"
#include "common/protocol/mac_address.h"

namespace vifd::protocol {

struct ParseError {
  std::string key;
  std::string value;  // the raw value, unescaped
  std::string reason;

  // "xenstore key 'K': invalid value \"V\": REASON", with V escaped
  // (printable ASCII kept, everything else \xNN) and cut after 64 bytes.
  std::string message() const;
};

// `value` made safe for a terminal or a log line: printable ASCII kept,
// backslash and the characters in `also_escaped` backslash-escaped, every
// other byte (escape sequences, control characters, non-ASCII) written as
// \xNN; cut after `max_bytes` input bytes, marked by "...". Every string a
// guest wrote goes through it before a human reads it.
std::string escape_for_display(std::string_view value, std::size_t max_bytes = 64,
                               std::string_view also_escaped = {});

class XenstoreValueError : public std::runtime_error {
 public:
  explicit XenstoreValueError(ParseError error)
      : std::runtime_error(error.message()), error_(std::move(error)) {}
  const ParseError& error() const noexcept { return error_; }

 private:
  ParseError error_;
};

// Either a parsed value or the reason it was rejected (C++20 has no
// std::expected; this is the subset we need).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}           // NOLINT(google-explicit-constructor)
  Result(ParseError error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const noexcept { return std::holds_alternative<T>(state_); }
  // Whether parsing succeeded; for Result<bool> this is NOT the parsed flag.
  explicit operator bool() const noexcept { return ok(); }

  // The value; throws XenstoreValueError carrying the ParseError otherwise.
  const T& value() const& {
    if (!ok()) {
      throw XenstoreValueError(std::get<ParseError>(state_));
    }
    return std::get<T>(state_);
  }
  // By value on a temporary, so `auto& v = parse_...().value()` cannot dangle.
  T value() && {
    if (!ok()) {
      throw XenstoreValueError(std::get<ParseError>(state_));
    }
    return std::get<T>(std::move(state_));
  }
  T value_or(T fallback) const { return ok() ? std::get<T>(state_) : std::move(fallback); }
  // Precondition: !ok().
  const ParseError& error() const& { return std::get<ParseError>(state_); }

 private:
  std::variant<T, ParseError> state_;
};

// A decimal unsigned integer in [min, max]. Accepts only the "%u" form: one
// or more ASCII digits, no sign, no whitespace, no "0x", nothing after, and
// no leading zeros ("0" itself is fine) — no Xen writer emits them, and a
// value like "010" is more likely meant as octal or padded than as ten.
Result<std::uint64_t> parse_uint(std::string_view key, std::string_view text, std::uint64_t min,
                                 std::uint64_t max);

// A feature flag: exactly "0" or "1" (what libxl and netfront write).
Result<bool> parse_bool(std::string_view key, std::string_view text);

// "xx:xx:xx:xx:xx:xx": six octets of exactly two hex digits each (either
// case), separated by ':'. A vif's MAC is a station address, so multicast
// (I/G bit set, including broadcast) and all-zero addresses are rejected: the
// switch learns and forwards by source address, and IEEE 802.3 forbids a
// group address as a source.
Result<MacAddress> parse_mac(std::string_view key, std::string_view text);

// The libxl `rate` backend key, "BYTES,USEC": a credit of BYTES bytes every
// USEC microseconds. Both parts decimal as in parse_uint; BYTES in
// [1, 2^64-1] (libxl's uint64 bytes_per_interval), USEC in [1, 2^32-1]
// (libxl's uint32 interval_usecs). A zero in either part would mean "never
// send" or a division by zero, so it is rejected rather than read as
// "unlimited" (an absent key is how libxl says unlimited).
struct RateLimit {
  std::uint64_t bytes = 0;
  std::uint32_t usec = 0;
  friend bool operator==(const RateLimit&, const RateLimit&) = default;
};
Result<RateLimit> parse_rate(std::string_view key, std::string_view text);

// One entry of the libxl `ip` backend key: an IPv4 address or network.
struct Ipv4Prefix {
  std::uint32_t address = 0;  // host byte order, host bits zero
  std::uint8_t length = 32;   // prefix length, 0..32

  bool contains(std::uint32_t candidate) const noexcept {
    const std::uint32_t mask = length == 0 ? 0 : ~std::uint32_t{0} << (32 - length);
    return (candidate & mask) == address;
  }
  friend bool operator==(const Ipv4Prefix&, const Ipv4Prefix&) = default;
};
// At most this many entries; a longer list is more likely a mistake than a
// guest's address plan, and the data path scans it per frame.
inline constexpr std::size_t kMaxIpv4Prefixes = 64;
// The `ip` key as vif-bridge reads it (iptables -s per entry): entries
// separated by one or more spaces, each dotted-quad "A.B.C.D" or
// "A.B.C.D/N" (N 0..32, host bits must be zero), each octet decimal without
// leading zeros. An empty or all-space value is rejected (an absent key is
// how the toolstack says "any address"); so is IPv6, which vif-bridge's
// iptables rules cannot express either.
Result<std::vector<Ipv4Prefix>> parse_ipv4_list(std::string_view key, std::string_view text);

// The `bridge` backend key, as the toolstack hands it to the hotplug script:
// either a Linux interface name (vif-bridge's bridge) or Open vSwitch's port
// syntax as Xen's vif-openvswitch reads it, BRIDGE[.VLAN][:TRUNK[:TRUNK...]]:
// BRIDGE.VLAN an access port in VLAN, BRIDGE:T1:T2 a trunk carrying T1 and T2,
// both at once a trunk with native VLAN. The value itself is what the script
// reads; the parts say what vifd must not do (switch between ports that Open
// vSwitch separates).
inline constexpr std::uint16_t kMinVlanId = 1;
inline constexpr std::uint16_t kMaxVlanId = 4094;  // 0 and 4095 are reserved (802.1Q)
// More trunk VLANs than this in one key is more likely a mistake than a plan;
// a wider trunk belongs in ovs-vsctl's own configuration.
inline constexpr std::size_t kMaxTrunkVlans = 64;
// Linux's IFNAMSIZ less the terminating NUL.
inline constexpr std::size_t kMaxInterfaceNameBytes = 15;

struct BridgeSpec {
  std::string value;                  // the key as written, handed unchanged to the hotplug script
  std::string name;                   // the bridge: `value` itself unless in Open vSwitch syntax
  std::optional<std::uint16_t> vlan;  // BRIDGE.VLAN
  std::vector<std::uint16_t> trunks;  // BRIDGE:T1:T2, in the order written

  // Whether `value` carries a VLAN tag or trunk list: only Open vSwitch reads
  // it that way. ("br0.10" may also be a Linux bridge of that very name; the
  // kernel tells, see backend/lib/control/switch_policy.h.)
  bool open_vswitch_syntax() const noexcept { return vlan.has_value() || !trunks.empty(); }
  friend bool operator==(const BridgeSpec&, const BridgeSpec&) = default;
};
// A Linux interface name as the kernel's dev_valid_name() takes it (1..15
// bytes, not "." or "..", no '/', ':' or whitespace), further limited to
// printable ASCII: names end up in logs and on hotplug-script command lines.
bool is_interface_name(std::string_view name) noexcept;
// Either form above. A value with ':' or of the form NAME.DIGITS (NAME without
// '.') is Open vSwitch syntax: NAME must be an interface name without '.',
// VLAN ids decimal in [kMinVlanId, kMaxVlanId] without leading zeros, at most
// kMaxTrunkVlans trunks, none twice. Anything else must be an interface name
// ("br.lan", "xenbr0" as before).
Result<BridgeSpec> parse_bridge(std::string_view key, std::string_view text);

// A grant reference published by a frontend (tx-ring-ref, rx-ring-ref, ...).
// Refs 0..7 (GNTTAB_NR_RESERVED_ENTRIES) are reserved for the toolstack's
// console and xenstore pages, which are granted to the backend domain:
// Linux, FreeBSD and mini-os never allocate them, so a frontend naming one
// is broken or is trying to make us use one of those pages as a ring.
// 0xFFFFFFFF is Linux's INVALID_GRANT_REF and never a real entry.
Result<GrantRef> parse_grant_ref(std::string_view key, std::string_view text);

// An event-channel port. Port 0 is never allocated (Xen reserves it as
// "invalid"); ports at or above EVTCHN_FIFO_NR_CHANNELS (2^17) exist in no
// event-channel ABI.
Result<EvtchnPort> parse_evtchn_port(std::string_view key, std::string_view text);

// A domain id of an ordinary domain: 0..0x7FEF (below DOMID_FIRST_RESERVED).
Result<DomId> parse_domid(std::string_view key, std::string_view text);

}  // namespace vifd::protocol
