// The frontend's side of the xenbus handshake for one vif, over xenstore:
// the pure parsers and key lists of common/xenbus/netfront_keys.h, fed from
// an xs::Client.
//
// Everything here is control plane: a bad value is an exception naming the
// key (see netfront_keys.h).
#pragma once

#include <optional>
#include <string>

#include "common/protocol/xenbus_state.h"
#include "common/xenbus/netfront_keys.h"
#include "common/xenstore/client.h"

namespace vifd::frontend {

using DeviceConfig = xenbus::FrontendDeviceConfig;
using BackendFeatures = xenbus::BackendOffer;
using QueueKeys = xenbus::FrontendQueueKeys;
using FrontendFeatures = xenbus::FrontendFeatures;

// Reads and validates `backend`, `backend-id`, `mac`, `mtu`, `trusted`.
// Throws XenstoreValueError (bad value) or std::runtime_error (missing key),
// naming the key.
DeviceConfig read_device_config(xs::Client& xenstore, const std::string& frontend_dir);

// Absent keys read as "not offered" (0), as Linux's xenbus_read_unsigned
// default; present keys must be well formed.
BackendFeatures read_backend_features(xs::Client& xenstore, const std::string& backend_dir);

// The backend's state; std::nullopt when the node is gone (device removed,
// including when its parent is no longer readable by us).
std::optional<protocol::XenbusState> read_backend_state(xs::Client& xenstore,
                                                        const std::string& backend_dir);

}  // namespace vifd::frontend
