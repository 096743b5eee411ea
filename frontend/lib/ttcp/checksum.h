// Running CRC-32 (zlib) of a byte stream, so --checksum can show that the
// receiver got exactly the bytes the transmitter sent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace vifd::ttcp {

class StreamChecksum {
 public:
  void update(std::span<const std::byte> data);
  [[nodiscard]] std::uint32_t value() const { return value_; }

 private:
  std::uint32_t value_ = 0;  // crc32() of no bytes
};

}  // namespace vifd::ttcp
