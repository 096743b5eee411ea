// An Ethernet station address, as found in a vif's `mac` xenstore key.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace vifd::protocol {

struct MacAddress {
  std::array<std::uint8_t, 6> octets{};

  // The I/G bit: set for multicast and broadcast addresses.
  bool is_multicast() const noexcept { return (octets[0] & 0x01U) != 0; }
  bool is_zero() const noexcept { return octets == std::array<std::uint8_t, 6>{}; }
  // "00:16:3e:0a:0b:0c": the form libxl writes ("%02x:...").
  std::string to_string() const;

  friend bool operator==(const MacAddress&, const MacAddress&) = default;
};

}  // namespace vifd::protocol
