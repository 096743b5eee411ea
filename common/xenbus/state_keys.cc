#include "common/xenbus/state_keys.h"

#include "common/xenbus/keys.h"

namespace vifd::xenbus {

std::optional<protocol::XenbusState> read_state(const KeyReader& device) {
  const auto text = device(key::kState);
  if (!text) {
    return std::nullopt;
  }
  const auto state = protocol::parse_xenbus_state(key::kState, *text);
  if (!state) {
    return std::nullopt;
  }
  return state.value();
}

protocol::XenbusState read_peer_state(const KeyReader& device) {
  return read_state(device).value_or(protocol::XenbusState::kUnknown);
}

bool read_online(const KeyReader& backend) {
  const auto text = backend(key::kOnline);
  return !text || protocol::parse_bool(key::kOnline, *text).value_or(true);
}

bool hotplug_connected(const KeyReader& backend) {
  return backend(key::kHotplugStatus) == std::optional<std::string>("connected");
}

}  // namespace vifd::xenbus
