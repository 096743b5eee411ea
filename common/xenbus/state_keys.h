// The keys every xenbus device has, as one side reads them from a snapshot
// of a directory (KeyReader): `state`, and the toolstack's `online` and
// `hotplug-status` in the backend directory.
#pragma once

#include <optional>

#include "common/protocol/xenbus_state.h"
#include "common/xenbus/key_reader.h"

namespace vifd::xenbus {

// The `state` key; std::nullopt when absent or malformed.
std::optional<protocol::XenbusState> read_state(const KeyReader& device);

// The peer's `state` key; a missing or malformed key reads as Unknown (0),
// as Linux's xenbus_read_driver_state() does.
protocol::XenbusState read_peer_state(const KeyReader& device);

// The backend's `online`: false only when the toolstack wrote "0" (libxl
// writes it to detach); absent or malformed reads as online.
bool read_online(const KeyReader& backend);

// Whether the hotplug script reported success: `hotplug-status` is
// "connected" (libxl's hotplug scripts write "connected" or "error").
bool hotplug_connected(const KeyReader& backend);

}  // namespace vifd::xenbus
