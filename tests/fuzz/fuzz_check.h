// What every fuzz target shares. FUZZ_CHECK is the invariant check: a violated invariant is a
// finding, so it aborts like a sanitizer report does and libFuzzer saves the
// input. Works the same under corpus_replay.cc.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>

#define FUZZ_CHECK(condition)                                                                  \
  do {                                                                                         \
    if (!(condition)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (false)

namespace vifd::fuzz {

// Takes fixed-size values off the front of the input; past its end every
// read yields zeros, so a target never needs to check sizes.
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : rest_(data, size) {}

  bool empty() const noexcept { return rest_.empty(); }
  std::size_t size() const noexcept { return rest_.size(); }

  template <typename T>
  T take() noexcept {
    T value{};
    const std::size_t n = std::min(sizeof(T), rest_.size());
    std::memcpy(&value, rest_.data(), n);
    rest_ = rest_.subspan(n);
    return value;
  }

  std::span<const std::uint8_t> take_bytes(std::size_t n) noexcept {
    const auto taken = rest_.first(std::min(n, rest_.size()));
    rest_ = rest_.subspan(taken.size());
    return taken;
  }

  // Up to the next NUL (consumed, not returned) or the end.
  std::string_view take_string() noexcept {
    const auto* begin = reinterpret_cast<const char*>(rest_.data());
    const auto* nul = static_cast<const char*>(std::memchr(begin, 0, rest_.size()));
    const std::size_t n = nul == nullptr ? rest_.size() : static_cast<std::size_t>(nul - begin);
    rest_ = rest_.subspan(std::min(n + 1, rest_.size()));
    return {begin, n};
  }

  std::span<const std::uint8_t> rest() noexcept {
    const auto all = rest_;
    rest_ = {};
    return all;
  }

 private:
  std::span<const std::uint8_t> rest_;
};

}  // namespace vifd::fuzz
