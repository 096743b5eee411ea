#include "common/protocol/xenbus_state.h"

#include "common/protocol/xen_abi.h"

namespace vifd::protocol {

static_assert(static_cast<int>(XenbusState::kUnknown) == XenbusStateUnknown);
static_assert(static_cast<int>(XenbusState::kInitialising) == XenbusStateInitialising);
static_assert(static_cast<int>(XenbusState::kInitWait) == XenbusStateInitWait);
static_assert(static_cast<int>(XenbusState::kInitialised) == XenbusStateInitialised);
static_assert(static_cast<int>(XenbusState::kConnected) == XenbusStateConnected);
static_assert(static_cast<int>(XenbusState::kClosing) == XenbusStateClosing);
static_assert(static_cast<int>(XenbusState::kClosed) == XenbusStateClosed);
static_assert(static_cast<int>(XenbusState::kReconfiguring) == XenbusStateReconfiguring);
static_assert(static_cast<int>(XenbusState::kReconfigured) == XenbusStateReconfigured);

std::string_view name(XenbusState state) noexcept {
  switch (state) {
    case XenbusState::kUnknown:
      return "Unknown";
    case XenbusState::kInitialising:
      return "Initialising";
    case XenbusState::kInitWait:
      return "InitWait";
    case XenbusState::kInitialised:
      return "Initialised";
    case XenbusState::kConnected:
      return "Connected";
    case XenbusState::kClosing:
      return "Closing";
    case XenbusState::kClosed:
      return "Closed";
    case XenbusState::kReconfiguring:
      return "Reconfiguring";
    case XenbusState::kReconfigured:
      return "Reconfigured";
  }
  return "Invalid";
}

std::string to_xenstore_value(XenbusState state) {
  return std::to_string(static_cast<unsigned>(state));
}

Result<XenbusState> parse_xenbus_state(std::string_view key, std::string_view text) {
  const auto parsed = parse_uint(key, text, 0, static_cast<std::uint64_t>(kLastXenbusState));
  if (!parsed) {
    return parsed.error();
  }
  return static_cast<XenbusState>(parsed.value());
}

bool is_backend_state(XenbusState state) noexcept {
  switch (state) {
    case XenbusState::kInitialising:
    case XenbusState::kInitWait:
    case XenbusState::kConnected:
    case XenbusState::kClosing:
    case XenbusState::kClosed:
      return true;
    default:
      return false;
  }
}

namespace {

// The backend's legal moves (one = one write of `state`), drawn with what
// triggers each in common/xenbus/backend_decision.h: Initialising ->
// {InitWait, Closed}; InitWait -> {Connected, Closing}; Connected -> Closing;
// Closing -> Closed; Closed -> {InitWait, Closing}.
//
// next_hop() is the first step toward `to`; where two shortest paths exist
// (Initialising -> Closing) it picks the one netback picks (via InitWait).
std::optional<XenbusState> next_hop(XenbusState from, XenbusState to) {
  using S = XenbusState;
  switch (from) {
    case S::kInitialising:
      if (to == S::kInitWait || to == S::kConnected || to == S::kClosing) {
        return S::kInitWait;
      }
      if (to == S::kClosed) {
        return S::kClosed;
      }
      break;
    case S::kInitWait:
      if (to == S::kConnected) {
        return S::kConnected;
      }
      if (to == S::kClosing || to == S::kClosed) {
        return S::kClosing;
      }
      break;
    case S::kConnected:
      if (to == S::kInitWait || to == S::kClosing || to == S::kClosed) {
        return S::kClosing;
      }
      break;
    case S::kClosing:
      if (to == S::kInitWait || to == S::kConnected || to == S::kClosed) {
        return S::kClosed;
      }
      break;
    case S::kClosed:
      if (to == S::kInitWait || to == S::kConnected) {
        return S::kInitWait;
      }
      if (to == S::kClosing) {
        return S::kClosing;
      }
      break;
    default:
      break;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::vector<XenbusState>> backend_state_path(XenbusState from, XenbusState to) {
  if (!is_backend_state(from) || !is_backend_state(to)) {
    return std::nullopt;
  }
  std::vector<XenbusState> path;
  XenbusState at = from;
  while (at != to) {
    const auto step = next_hop(at, to);
    if (!step) {
      return std::nullopt;
    }
    path.push_back(*step);
    at = *step;
  }
  return path;
}

}  // namespace vifd::protocol
