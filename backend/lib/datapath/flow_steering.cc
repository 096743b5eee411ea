#include "backend/lib/datapath/flow_steering.h"

#include <array>
#include <cstring>

#include "backend/lib/datapath/toeplitz.h"
#include "common/protocol/sizes.h"
#include "common/protocol/xen_abi.h"

namespace vifd::backend {

namespace {

using protocol::kEthHeaderLen;
constexpr std::uint16_t kEthertypeIpv4 = 0x0800;
constexpr std::uint16_t kEthertypeIpv6 = 0x86DD;
constexpr std::uint8_t kProtocolTcp = 6;
constexpr std::uint16_t kIpv4FragmentMask = 0x3FFF;  // MF flag and offset

// The hash input as netif.h (and RSS) define it: source address,
// destination address, then for the TCP types source and destination port.
// At most 2 * 16 + 4 bytes.
struct HashInput {
  std::array<std::uint8_t, 36> bytes{};
  std::size_t length = 0;
  void append(const std::uint8_t* data, std::size_t count) noexcept {
    std::memcpy(bytes.data() + length, data, count);
    length += count;
  }
};

}  // namespace

std::optional<std::uint32_t> steer(const HashSnapshot& hash, std::span<const std::uint8_t> head,
                                   std::size_t queue_count) noexcept {
  if (!hash.toeplitz || hash.flags == 0 || queue_count == 0 || head.size() < kEthHeaderLen) {
    return std::nullopt;
  }
  const std::uint16_t ethertype = static_cast<std::uint16_t>(head[12] << 8 | head[13]);
  const std::span<const std::uint8_t> ip = head.subspan(kEthHeaderLen);
  HashInput input;
  const std::uint8_t* ports = nullptr;
  bool hash_ports = false;
  if (ethertype == kEthertypeIpv4) {
    if (ip.size() < 20 || (ip[0] >> 4) != 4) return std::nullopt;
    const std::size_t header_length = std::size_t{ip[0] & 0x0FU} * 4;
    if (header_length < 20) return std::nullopt;
    const bool fragment = (static_cast<std::uint16_t>(ip[6] << 8 | ip[7]) & kIpv4FragmentMask) != 0;
    if (ip[9] == kProtocolTcp && !fragment && (hash.flags & XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP) &&
        ip.size() >= header_length + 4) {
      hash_ports = true;
      ports = ip.data() + header_length;
    } else if ((hash.flags & XEN_NETIF_CTRL_HASH_TYPE_IPV4) == 0) {
      return std::nullopt;
    }
    input.append(ip.data() + 12, 8);  // source, destination
  } else if (ethertype == kEthertypeIpv6) {
    if (ip.size() < 40 || (ip[0] >> 4) != 6) return std::nullopt;
    // Only a TCP header right after the fixed header is recognised; with
    // extension headers the flow hashes by addresses (or not at all).
    if (ip[6] == kProtocolTcp && (hash.flags & XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP) &&
        ip.size() >= 40 + 4) {
      hash_ports = true;
      ports = ip.data() + 40;
    } else if ((hash.flags & XEN_NETIF_CTRL_HASH_TYPE_IPV6) == 0) {
      return std::nullopt;
    }
    input.append(ip.data() + 8, 32);  // source, destination
  } else {
    return std::nullopt;
  }
  if (hash_ports) input.append(ports, 4);
  const std::uint32_t value = toeplitz_hash(hash.key, std::span(input.bytes.data(), input.length));
  if (hash.mapping.empty()) return static_cast<std::uint32_t>(value % queue_count);
  const std::uint32_t queue = hash.mapping[value % hash.mapping.size()];
  // The table was validated against the vif's queue count; a port seen
  // mid-attach may have fewer queues yet.
  if (queue >= queue_count) return std::nullopt;
  return queue;
}

}  // namespace vifd::backend
