#include "common/protocol/base64.h"

#include <array>

namespace vifd::protocol {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> make_reverse() {
  std::array<std::int8_t, 256> reverse{};
  reverse.fill(-1);
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
    reverse[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  }
  return reverse;
}

constexpr std::array<std::int8_t, 256> kReverse = make_reverse();

}  // namespace

void base64_append(std::string& out, std::span<const std::uint8_t> bytes) {
  out.reserve(out.size() + (bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group = static_cast<std::uint32_t>(bytes[i]) << 16 |
                                static_cast<std::uint32_t>(bytes[i + 1]) << 8 | bytes[i + 2];
    out.push_back(kAlphabet[group >> 18 & 0x3FU]);
    out.push_back(kAlphabet[group >> 12 & 0x3FU]);
    out.push_back(kAlphabet[group >> 6 & 0x3FU]);
    out.push_back(kAlphabet[group & 0x3FU]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 0) {
    return;
  }
  std::uint32_t group = static_cast<std::uint32_t>(bytes[i]) << 16;
  if (rest == 2) {
    group |= static_cast<std::uint32_t>(bytes[i + 1]) << 8;
  }
  out.push_back(kAlphabet[group >> 18 & 0x3FU]);
  out.push_back(kAlphabet[group >> 12 & 0x3FU]);
  out.push_back(rest == 2 ? kAlphabet[group >> 6 & 0x3FU] : '=');
  out.push_back('=');
}

std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::vector<std::uint8_t> bytes;
  bytes.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const std::size_t padding = last ? (text[i + 3] == '=' ? (text[i + 2] == '=' ? 2 : 1) : 0) : 0;
    std::uint32_t group = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      if (j >= 4 - padding) {
        group <<= 6;
        continue;
      }
      const std::int8_t value = kReverse[static_cast<unsigned char>(text[i + j])];
      if (value < 0) {
        return std::nullopt;
      }
      group = group << 6 | static_cast<std::uint32_t>(value);
    }
    bytes.push_back(static_cast<std::uint8_t>(group >> 16));
    if (padding < 2) {
      bytes.push_back(static_cast<std::uint8_t>(group >> 8));
    }
    if (padding < 1) {
      bytes.push_back(static_cast<std::uint8_t>(group));
    }
  }
  return bytes;
}

}  // namespace vifd::protocol
