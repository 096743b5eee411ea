// The operator's choices about the in-process switch, per vif and per bridge
// (vifd --mac-learning, --no-fast-path-bridge, --no-fast-path-vif). Plain
// data with pure queries: the daemon fills it from the command line, each
// Vif asks it when it starts and connects.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/xenbus/paths.h"

namespace vifd::backend {

struct SwitchPolicy {
  // Bridges and vifs kept off the switch: their frames all go through the
  // vif's TAP, so every bridge/netfilter rule and tcpdump applies.
  std::set<std::string> tap_only_bridges;
  std::set<xenbus::VifId> tap_only_vifs;
  // Vifs that may send with source MACs other than their configured one
  // (guests that bridge); `learning_everywhere` for all.
  std::set<xenbus::VifId> learning_vifs;
  bool learning_everywhere = false;

  // Whether vif `id` on `bridge` is a port of that bridge's switch (the
  // daemon's --no-fast-path turns off the switch as a whole).
  bool uses_switch(const xenbus::VifId& id, const std::string& bridge) const;
  bool learns(const xenbus::VifId& id) const;
};

// "DOMID.DEVID", or the TAP name "vifDOMID.DEVID": decimal, domid below
// DOMID_FIRST_RESERVED, devid up to xenbus::kMaxDevid. nullopt otherwise.
std::optional<xenbus::VifId> parse_vif_selector(std::string_view text);

}  // namespace vifd::backend
