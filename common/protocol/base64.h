// Base64 (RFC 4648, with padding): how a capture stream on vifd's control
// socket carries frame bytes inside its JSON lines (docs/operator-guide.md).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vifd::protocol {

// Appends the encoding of `bytes` to `out`.
void base64_append(std::string& out, std::span<const std::uint8_t> bytes);
// The bytes `text` encodes, or nullopt when it is not padded base64.
std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text);

}  // namespace vifd::protocol
