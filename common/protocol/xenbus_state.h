// Xenbus device states (xen/io/xenbus.h) and the backend's legal moves.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/protocol/xs_parse.h"

namespace vifd::protocol {

// Values as written to a device's `state` key; identical to enum
// xenbus_state (checked in xenbus_state.cc).
enum class XenbusState : std::uint8_t {
  kUnknown = 0,
  kInitialising = 1,
  kInitWait = 2,     // waiting for the peer or for hotplug scripts
  kInitialised = 3,  // frontend: rings published, waiting for the backend
  kConnected = 4,
  kClosing = 5,  // closing after an error or an unplug request
  kClosed = 6,
  kReconfiguring = 7,
  kReconfigured = 8,
};

inline constexpr XenbusState kLastXenbusState = XenbusState::kReconfigured;

// "Initialising", "InitWait", ...: the names Linux's xenbus_strstate() uses.
std::string_view name(XenbusState state) noexcept;

// The decimal form written to xenstore ("4" for Connected).
std::string to_xenstore_value(XenbusState state);

// Strict parse of a `state` key (see parse_uint): "0".."8" only.
Result<XenbusState> parse_xenbus_state(std::string_view key, std::string_view text);

// The states a backend ever writes: Initialising, InitWait, Connected,
// Closing, Closed.
bool is_backend_state(XenbusState state) noexcept;

// The sequence of states a backend must write, in order, to go from `from`
// to `to` through legal transitions only: empty if from == to, std::nullopt
// if either is not a backend state (or `to` is Initialising, which is never
// re-entered). Same moves as Linux netback's set_backend_state().
std::optional<std::vector<XenbusState>> backend_state_path(XenbusState from, XenbusState to);

}  // namespace vifd::protocol
