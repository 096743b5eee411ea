// What `vifctl list` and `vifctl show` report, read from xenstore. Frontend
// keys are written by the guest: they are shown as found (numbers when they
// parse as such), never trusted, and never allowed to break the output.
#pragma once

#include <nlohmann/json.hpp>

#include "common/platform/types.h"
#include "common/xenstore/client.h"
#include "xenstore-tools/lib/vifctl/vif_spec.h"

namespace vifd::vifctl {

// Every vif under xenbus::backend_vif_root(backend_domid), ordered by domid and
// devid: [{"domid","devid","backend_state","frontend_state","mac","bridge",
// "script","online","hotplug_status","error"}]; states are {"value","name"} or
// null; `error` is the backend's error node (null when none).
nlohmann::json list_vifs(xs::Client& xs, platform::DomId backend_domid);

// One vif: {"domid","devid","backend":{"path","state","online","hotplug_status",
// "mac","bridge","script","mtu","rate","error","features":{...}},"frontend":{"path",
// "state","mac","mtu","features":{...},"queues":[{"index", and each of the
// queue's ring-ref and event-channel keys found, under its xenstore name}]}}.
// Throws std::runtime_error when the backend directory does not exist.
nlohmann::json show_vif(xs::Client& xs, platform::DomId backend_domid, VifId id);

// JSON text that survives any bytes a guest wrote (invalid UTF-8 is replaced).
std::string dump_json(const nlohmann::json& value, int indent = 2);

}  // namespace vifd::vifctl
