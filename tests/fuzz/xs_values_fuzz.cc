// The strict parsers of xenstore values (common/protocol/xs_parse.h) on any
// bytes a guest can write into a node, and escape_for_display on any string
// it can make us print. An accepted value must be in its documented range
// and print back to exactly the text that was parsed (the parsers accept one
// spelling per value); a rejection must name the key and carry a message
// that is safe for a terminal; an escaped string must be printable ASCII and
// unescape to the bytes it shows.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/protocol/xs_parse.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace vifd::protocol;  // NOLINT(google-build-using-namespace)

bool printable(std::string_view text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7F) {
      return false;
    }
  }
  return true;
}

template <typename T>
void check_rejection(const Result<T>& result, std::string_view key) {
  if (result.ok()) {
    return;
  }
  FUZZ_CHECK(result.error().key == key);
  FUZZ_CHECK(!result.error().reason.empty());
  const std::string message = result.error().message();
  FUZZ_CHECK(printable(message));
  // The value is cut, so a huge value cannot flood a log line.
  FUZZ_CHECK(message.size() < 512 + key.size() + result.error().reason.size());
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// Inverse of escape_for_display for its output (without the "..." mark).
std::string unescape(std::string_view shown) {
  std::string out;
  for (std::size_t i = 0; i < shown.size(); ++i) {
    if (shown[i] != '\\') {
      out += shown[i];
      continue;
    }
    FUZZ_CHECK(i + 1 < shown.size());
    if (shown[i + 1] == 'x' && i + 3 < shown.size() && std::isxdigit(shown[i + 2]) &&
        std::isxdigit(shown[i + 3])) {
      out += static_cast<char>(std::stoi(std::string(shown.substr(i + 2, 2)), nullptr, 16));
      i += 3;
    } else {
      out += shown[i + 1];
      i += 1;
    }
  }
  return out;
}

void check_escape(std::string_view value, std::size_t max_bytes, std::string_view also) {
  const std::string shown = escape_for_display(value, max_bytes, also);
  FUZZ_CHECK(printable(shown));
  std::string_view body = shown;
  if (value.size() > max_bytes) {
    FUZZ_CHECK(body.ends_with("..."));
    body.remove_suffix(3);
  }
  // A shown "\x41" could be an escaped 'A' or the text "\x41" with its
  // backslash escaped; unescaping must give back exactly the shown prefix.
  FUZZ_CHECK(unescape(body) == value.substr(0, max_bytes));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vifd::fuzz::Bytes in(data, size);
  const auto min = in.take<std::uint64_t>();
  const auto max = in.take<std::uint64_t>();
  const auto max_bytes = std::size_t{in.take<std::uint8_t>()};
  // Callers escape quote characters as well; letters and digits there would
  // make "\\x41" ambiguous, so only punctuation is drawn.
  std::string also;
  for (const char c : in.take_string()) {
    if (std::ispunct(static_cast<unsigned char>(c))) {
      also += c;
    }
  }
  const auto rest = in.rest();
  const std::string_view text(reinterpret_cast<const char*>(rest.data()), rest.size());
  const std::string_view key = "queue-0/tx-ring-ref";

  const auto number = parse_uint(key, text, min, max);
  check_rejection(number, key);
  if (number) {
    FUZZ_CHECK(number.value() >= min && number.value() <= max);
    FUZZ_CHECK(std::to_string(number.value()) == text);
  }
  const auto flag = parse_bool(key, text);
  check_rejection(flag, key);
  if (flag) {
    FUZZ_CHECK(text == (flag.value() ? "1" : "0"));
  }

  const auto mac = parse_mac(key, text);
  check_rejection(mac, key);
  if (mac) {
    FUZZ_CHECK(!mac.value().is_multicast() && !mac.value().is_zero());
    FUZZ_CHECK(mac.value().to_string() == lower(text));
  }
  const auto rate = parse_rate(key, text);
  check_rejection(rate, key);
  if (rate) {
    FUZZ_CHECK(rate.value().bytes >= 1 && rate.value().usec >= 1);
    FUZZ_CHECK(std::to_string(rate.value().bytes) + "," + std::to_string(rate.value().usec) ==
               text);
  }
  const auto ref = parse_grant_ref(key, text);
  check_rejection(ref, key);
  if (ref) {
    FUZZ_CHECK(ref.value() >= 8 && ref.value() != 0xFFFFFFFFU);
  }
  const auto port = parse_evtchn_port(key, text);
  check_rejection(port, key);
  if (port) {
    FUZZ_CHECK(port.value() > 0 && port.value() < (1U << 17));
  }
  const auto domid = parse_domid(key, text);
  check_rejection(domid, key);
  if (domid) {
    FUZZ_CHECK(domid.value() <= 0x7FEF);
  }

  check_escape(text, max_bytes, also);
  return 0;
}
