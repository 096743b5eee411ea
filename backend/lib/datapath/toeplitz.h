// The Toeplitz hash of the netif control ring (netif.h, "Toeplitz hash"),
// the same function as Microsoft RSS: the frontend picks the key with
// XEN_NETIF_CTRL_TYPE_SET_HASH_KEY and the backend hashes each flow with it
// to choose a queue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace vifd::backend {

// Linux netback's XEN_NETBK_MAX_HASH_KEY_SIZE: the 40-octet RSS key. A
// frontend asking for more gets BUFFER_OVERFLOW.
inline constexpr std::size_t kToeplitzMaxKeySize = 40;

// Key and input are shift registers whose left-most bit is the MSB of byte 0.
// Key octets beyond key.size() count as zero, as netif.h specifies ("any key
// octets not specified are assumed to be zero"), so an empty key hashes
// everything to 0.
std::uint32_t toeplitz_hash(std::span<const std::uint8_t> key,
                            std::span<const std::uint8_t> input) noexcept;

}  // namespace vifd::backend
