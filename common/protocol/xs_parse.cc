#include "common/protocol/xs_parse.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "common/protocol/xen_abi.h"

namespace vifd::protocol {

namespace {

// Enough to recognise a value in a log line without letting a guest flood it.
constexpr std::size_t kMaxQuotedValue = 64;

// `value` in double quotes, escaped, cut after kMaxQuotedValue bytes.
std::string quote_for_message(std::string_view value) {
  return "\"" + escape_for_display(value, kMaxQuotedValue, "\"") + "\"" +
         (value.size() > kMaxQuotedValue ? fmt::format(" ({} bytes)", value.size()) : "");
}

ParseError reject(std::string_view key, std::string_view text, std::string reason) {
  return ParseError{std::string(key), std::string(text), std::move(reason)};
}

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

std::optional<std::uint8_t> hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') {
    return static_cast<std::uint8_t>(c - '0');
  }
  if (c >= 'a' && c <= 'f') {
    return static_cast<std::uint8_t>(c - 'a' + 10);
  }
  if (c >= 'A' && c <= 'F') {
    return static_cast<std::uint8_t>(c - 'A' + 10);
  }
  return std::nullopt;
}

// The reason `text` is not a plain decimal in [min, max], or the value.
std::variant<std::uint64_t, std::string> decimal(std::string_view text, std::uint64_t min,
                                                 std::uint64_t max) {
  if (text.empty()) {
    return std::string("empty value, expected a decimal number");
  }
  if (text.front() == '-' || text.front() == '+') {
    return std::string("sign not allowed, expected an unsigned decimal number");
  }
  if (!is_digit(text.front())) {
    return std::string("expected a decimal number");
  }
  if (text.size() > 1 && text.front() == '0') {
    return std::string(is_digit(text[1]) ? "leading zeros not allowed"
                                         : "trailing characters after the number");
  }
  std::uint64_t value = 0;
  for (const char c : text) {
    if (!is_digit(c)) {
      return std::string("trailing characters after the number");
    }
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
      return std::string("number does not fit in 64 bits");
    }
    value = value * 10 + digit;
  }
  if (value < min || value > max) {
    return fmt::format("out of range [{}, {}]", min, max);
  }
  return value;
}

Result<std::uint64_t> to_result(std::string_view key, std::string_view text,
                                std::variant<std::uint64_t, std::string> parsed) {
  if (auto* reason = std::get_if<std::string>(&parsed)) {
    return reject(key, text, std::move(*reason));
  }
  return std::get<std::uint64_t>(parsed);
}

}  // namespace

std::string escape_for_display(std::string_view value, std::size_t max_bytes,
                               std::string_view also_escaped) {
  std::string out;
  const std::string_view shown = value.substr(0, max_bytes);
  for (const char c : shown) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\\' || also_escaped.find(c) != std::string_view::npos) {
      out += '\\';
      out += c;
    } else if (byte >= 0x20 && byte < 0x7F) {
      out += c;
    } else {
      out += fmt::format("\\x{:02x}", byte);
    }
  }
  if (value.size() > shown.size()) {
    out += "...";
  }
  return out;
}

std::string ParseError::message() const {
  return fmt::format("xenstore key '{}': invalid value {}: {}", key, quote_for_message(value),
                     reason);
}

std::string MacAddress::to_string() const {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", octets[0], octets[1], octets[2],
                     octets[3], octets[4], octets[5]);
}

Result<std::uint64_t> parse_uint(std::string_view key, std::string_view text, std::uint64_t min,
                                 std::uint64_t max) {
  return to_result(key, text, decimal(text, min, max));
}

Result<bool> parse_bool(std::string_view key, std::string_view text) {
  if (text == "0") {
    return false;
  }
  if (text == "1") {
    return true;
  }
  return reject(key, text, "expected \"0\" or \"1\"");
}

Result<MacAddress> parse_mac(std::string_view key, std::string_view text) {
  // Six pairs of hex digits and five colons.
  constexpr std::size_t kTextLength = 6 * 2 + 5;
  if (text.size() != kTextLength) {
    return reject(key, text, "expected a MAC address of the form xx:xx:xx:xx:xx:xx");
  }
  MacAddress mac;
  for (std::size_t i = 0; i < mac.octets.size(); ++i) {
    const std::size_t at = i * 3;
    const auto high = hex_value(text[at]);
    const auto low = hex_value(text[at + 1]);
    if (!high || !low) {
      return reject(key, text, fmt::format("octet {} is not two hex digits", i + 1));
    }
    if (i + 1 < mac.octets.size() && text[at + 2] != ':') {
      return reject(key, text, fmt::format("expected ':' after octet {}", i + 1));
    }
    mac.octets[i] = static_cast<std::uint8_t>((*high << 4) | *low);
  }
  if (mac.is_multicast()) {
    return reject(key, text, "multicast address cannot be a vif MAC");
  }
  if (mac.is_zero()) {
    return reject(key, text, "all-zero address cannot be a vif MAC");
  }
  return mac;
}

Result<std::vector<Ipv4Prefix>> parse_ipv4_list(std::string_view key, std::string_view text) {
  std::vector<Ipv4Prefix> prefixes;
  std::size_t at = 0;
  while (at < text.size()) {
    if (text[at] == ' ') {
      ++at;
      continue;
    }
    const std::size_t end = std::min(text.find(' ', at), text.size());
    const std::string_view entry = text.substr(at, end - at);
    at = end;
    if (prefixes.size() == kMaxIpv4Prefixes) {
      return reject(key, text, fmt::format("more than {} entries", kMaxIpv4Prefixes));
    }
    const std::size_t slash = entry.find('/');
    const std::string_view dotted = entry.substr(0, slash);
    Ipv4Prefix prefix;
    std::size_t octet_start = 0;
    for (int octet = 0; octet < 4; ++octet) {
      const std::size_t dot = octet < 3 ? dotted.find('.', octet_start) : dotted.size();
      if (dot == std::string_view::npos) {
        return reject(
            key, text,
            fmt::format("entry {}: expected an IPv4 address A.B.C.D[/N]", prefixes.size() + 1));
      }
      auto value = decimal(dotted.substr(octet_start, dot - octet_start), 0, 255);
      if (auto* reason = std::get_if<std::string>(&value)) {
        return reject(
            key, text,
            fmt::format("entry {} octet {}: {}", prefixes.size() + 1, octet + 1, *reason));
      }
      prefix.address =
          prefix.address << 8 | static_cast<std::uint32_t>(std::get<std::uint64_t>(value));
      octet_start = dot + 1;
    }
    if (slash != std::string_view::npos) {
      auto length = decimal(entry.substr(slash + 1), 0, 32);
      if (auto* reason = std::get_if<std::string>(&length)) {
        return reject(key, text,
                      fmt::format("entry {} prefix length: {}", prefixes.size() + 1, *reason));
      }
      prefix.length = static_cast<std::uint8_t>(std::get<std::uint64_t>(length));
      if (!prefix.contains(prefix.address)) {
        return reject(
            key, text,
            fmt::format("entry {}: host bits set below /{}", prefixes.size() + 1, prefix.length));
      }
    }
    prefixes.push_back(prefix);
  }
  if (prefixes.empty()) {
    return reject(key, text, "no address");
  }
  return prefixes;
}

Result<RateLimit> parse_rate(std::string_view key, std::string_view text) {
  const std::size_t comma = text.find(',');
  if (comma == std::string_view::npos) {
    return reject(key, text, "expected BYTES,USEC");
  }
  auto bytes = decimal(text.substr(0, comma), 1, std::numeric_limits<std::uint64_t>::max());
  if (auto* reason = std::get_if<std::string>(&bytes)) {
    return reject(key, text, "bytes part: " + *reason);
  }
  auto usec = decimal(text.substr(comma + 1), 1, std::numeric_limits<std::uint32_t>::max());
  if (auto* reason = std::get_if<std::string>(&usec)) {
    return reject(key, text, "usec part: " + *reason);
  }
  return RateLimit{std::get<std::uint64_t>(bytes),
                   static_cast<std::uint32_t>(std::get<std::uint64_t>(usec))};
}

bool is_interface_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxInterfaceNameBytes || name == "." || name == "..") {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    // Printable ASCII less space; '/' and ':' are what Linux refuses besides
    // whitespace and NUL.
    return c > ' ' && c < 0x7F && c != '/' && c != ':';
  });
}

Result<BridgeSpec> parse_bridge(std::string_view key, std::string_view text) {
  BridgeSpec spec;
  spec.value = std::string(text);
  const std::size_t colon = text.find(':');
  const std::string_view head = text.substr(0, colon);
  const std::size_t dot = head.find('.');
  // NAME.DIGITS: the one dotted form Open vSwitch's syntax claims.
  const bool tagged =
      dot != std::string_view::npos && dot + 1 < head.size() &&
      head.find('.', dot + 1) == std::string_view::npos &&
      std::all_of(head.begin() + static_cast<std::ptrdiff_t>(dot) + 1, head.end(), is_digit);
  if (colon == std::string_view::npos && !tagged) {
    if (!is_interface_name(text)) {
      return reject(key, text,
                    fmt::format("not a Linux interface name (1-{} printable bytes, no '/', ':' or "
                                "whitespace) nor Open vSwitch's BRIDGE[.VLAN][:TRUNK...]",
                                kMaxInterfaceNameBytes));
    }
    spec.name = spec.value;
    return spec;
  }
  const auto vlan_id = [&](std::string_view part) -> std::variant<std::uint64_t, std::string> {
    auto parsed = decimal(part, kMinVlanId, kMaxVlanId);
    if (auto* reason = std::get_if<std::string>(&parsed)) {
      return fmt::format("VLAN {}: {}", quote_for_message(part), *reason);
    }
    return parsed;
  };
  spec.name = std::string(tagged ? head.substr(0, dot) : head);
  if (spec.name.find('.') != std::string::npos || !is_interface_name(spec.name)) {
    return reject(key, text,
                  fmt::format("Open vSwitch syntax BRIDGE[.VLAN][:TRUNK...] needs BRIDGE to be a "
                              "Linux interface name without '.' (1-{} printable bytes, no '/' or "
                              "whitespace)",
                              kMaxInterfaceNameBytes));
  }
  if (tagged) {
    auto parsed = vlan_id(head.substr(dot + 1));
    if (auto* reason = std::get_if<std::string>(&parsed)) {
      return reject(key, text, std::move(*reason));
    }
    spec.vlan = static_cast<std::uint16_t>(std::get<std::uint64_t>(parsed));
  }
  if (colon != std::string_view::npos) {
    std::string_view rest = text.substr(colon + 1);
    for (;;) {
      const std::size_t next = rest.find(':');
      auto parsed = vlan_id(rest.substr(0, next));
      if (auto* reason = std::get_if<std::string>(&parsed)) {
        return reject(key, text, "trunk " + std::move(*reason));
      }
      const auto trunk = static_cast<std::uint16_t>(std::get<std::uint64_t>(parsed));
      if (std::find(spec.trunks.begin(), spec.trunks.end(), trunk) != spec.trunks.end()) {
        return reject(key, text, fmt::format("trunk VLAN {} listed twice", trunk));
      }
      if (spec.trunks.size() == kMaxTrunkVlans) {
        return reject(key, text, fmt::format("more than {} trunk VLANs", kMaxTrunkVlans));
      }
      spec.trunks.push_back(trunk);
      if (next == std::string_view::npos) {
        break;
      }
      rest.remove_prefix(next + 1);
    }
  }
  return spec;
}

Result<GrantRef> parse_grant_ref(std::string_view key, std::string_view text) {
  auto parsed = decimal(text, 0, std::numeric_limits<std::uint32_t>::max());
  if (auto* reason = std::get_if<std::string>(&parsed)) {
    return reject(key, text, std::move(*reason));
  }
  const auto ref = static_cast<GrantRef>(std::get<std::uint64_t>(parsed));
  if (ref < kGrantNrReservedEntries) {
    return reject(
        key, text,
        fmt::format("grant refs below {} are reserved for the toolstack", kGrantNrReservedEntries));
  }
  if (ref == kGrantInvalidRef) {
    return reject(key, text, "0xffffffff is the invalid grant ref");
  }
  return ref;
}

Result<EvtchnPort> parse_evtchn_port(std::string_view key, std::string_view text) {
  auto parsed = decimal(text, 1, kEvtchnMaxPorts - 1);
  if (auto* reason = std::get_if<std::string>(&parsed)) {
    return reject(key, text, std::move(*reason));
  }
  return static_cast<EvtchnPort>(std::get<std::uint64_t>(parsed));
}

Result<DomId> parse_domid(std::string_view key, std::string_view text) {
  auto parsed = decimal(text, 0, kDomidFirstReserved - 1U);
  if (auto* reason = std::get_if<std::string>(&parsed)) {
    return reject(key, text, std::move(*reason));
  }
  return static_cast<DomId>(std::get<std::uint64_t>(parsed));
}

}  // namespace vifd::protocol
