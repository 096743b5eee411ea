// Sizes every layer agrees on: the granted page and the Ethernet frame.
// Defined once so a ring, a grant copy and a frame parser can never disagree.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vifd::protocol {

// A grant covers one 4 KiB page on every architecture Xen supports, whatever
// the guest kernel's own page size (checked against XEN_PAGE_SHIFT in xen_abi.h).
inline constexpr std::size_t kPageSize = 4096;

inline constexpr std::size_t kEthAddrLen = 6;
// Destination MAC, source MAC, EtherType.
inline constexpr std::size_t kEthHeaderLen = 14;
inline constexpr std::size_t kVlanTagLen = 4;
inline constexpr std::uint16_t kEthTypeVlan = 0x8100;
inline constexpr std::uint16_t kEthTypeQinQ = 0x88a8;

// IPv4's minimum MTU (RFC 791), the smallest either end may advertise.
inline constexpr std::uint32_t kMinMtu = 68;
// A TX request chain describes at most 65535 bytes (its size field is a u16,
// XEN_NETIF_MAX_TX_SIZE) including the Ethernet header, so that is the
// largest MTU either end may advertise.
inline constexpr std::uint32_t kMaxMtu = 65535 - kEthHeaderLen;

// The largest `xdp-headroom` a frontend may ask for (netif.h's
// XEN_NETIF_MAX_XDP_HEADROOM, Linux 5.9).
inline constexpr std::uint16_t kMaxXdpHeadroom = 0x7FFF;

}  // namespace vifd::protocol
