#include "backend/lib/datapath/toeplitz.h"

namespace vifd::backend {

std::uint32_t toeplitz_hash(std::span<const std::uint8_t> key,
                            std::span<const std::uint8_t> input) noexcept {
  // netif.h's reference algorithm: a 64-bit window over the key whose top 32
  // bits are the key bits aligned with the current input bit; it is refilled
  // a byte at a time, 8 shifts after the byte it makes room for.
  const auto key_byte = [&key](std::size_t i) -> std::uint64_t {
    return i < key.size() ? key[i] : 0U;
  };
  std::uint64_t window = 0;
  std::size_t next_key_byte = 0;
  for (; next_key_byte < 8; ++next_key_byte) {
    window = (window << 8) | key_byte(next_key_byte);
  }
  std::uint64_t hash = 0;
  for (const std::uint8_t input_byte : input) {
    for (unsigned bit = 0; bit < 8; ++bit) {
      if ((input_byte & (0x80U >> bit)) != 0) {
        hash ^= window;
      }
      window <<= 1;
    }
    window |= key_byte(next_key_byte++);
  }
  return static_cast<std::uint32_t>(hash >> 32);
}

}  // namespace vifd::backend
