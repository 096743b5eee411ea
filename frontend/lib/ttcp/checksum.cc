#include "frontend/lib/ttcp/checksum.h"

#include <zlib.h>

namespace vifd::ttcp {

void StreamChecksum::update(std::span<const std::byte> data) {
  // crc32_z takes a size_t length, so buffers above 4 GiB need no splitting.
  value_ = static_cast<std::uint32_t>(
      ::crc32_z(value_, reinterpret_cast<const Bytef*>(data.data()), data.size()));
}

}  // namespace vifd::ttcp
