// The operator's choices about the in-process switch, per vif and per bridge
// (vifd --mac-learning, --no-fast-path-bridge, --no-fast-path-vif). Plain
// data with pure queries: the daemon fills it from the command line, each
// Vif asks it when it starts and connects.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/net/link.h"
#include "common/protocol/xs_parse.h"
#include "common/xenbus/paths.h"

namespace vifd::backend {

// What a vif's `bridge` is, as far as vifd's own switching goes. The switch
// shortcuts what a Linux bridge would do between its ports; anything that
// forwards by other rules (Open vSwitch's VLANs and flows) must see every
// frame, so its ports stay plain TAPs.
enum class BridgeRole {
  kLinuxBridge,  // a Linux bridge
  kAbsent,       // no link of that name (yet): taken as a Linux bridge, as always
  kOpenVswitch,  // Open vSwitch switches the port: its syntax, or its kernel device
  kOther,        // a link that is no bridge vifd knows (a TAP, a NIC, ...)
};

// Pure: the role of `bridge` given the kind of the link named like the whole
// value (net::link_kind(bridge.value); net::LinkKind::kAbsent when the value
// is no interface name). A Linux bridge of the very name wins over the
// Open vSwitch reading of "br0.10", as vif-bridge would find it.
BridgeRole classify_bridge(const protocol::BridgeSpec& bridge, net::LinkKind kind);

// What vifd does with the bridge when it creates a vif's TAP.
enum class BridgeJoin {
  kNone,    // the hotplug script does the joining (or already did)
  kJoin,    // vifd adds the TAP to the Linux bridge, as vif-bridge would
  kRefuse,  // no script for an Open vSwitch port: vifd cannot add it (no ovs-vsctl)
};
// Pure. vifd joins itself without a script, and on `reattach` (the TAP of a
// vif left Connected by a previous vifd is new, the script ran for the old
// one) -- except for Open vSwitch, whose database keeps the port by name and
// takes the new TAP back by itself.
BridgeJoin bridge_join(BridgeRole role, bool has_script, bool reattach);

struct SwitchPolicy {
  // Bridges and vifs kept off the switch: their frames all go through the
  // vif's TAP, so every bridge/netfilter rule and tcpdump applies.
  std::set<std::string> tap_only_bridges;
  std::set<xenbus::VifId> tap_only_vifs;
  // Vifs that may send with source MACs other than their configured one
  // (guests that bridge); `learning_everywhere` for all.
  std::set<xenbus::VifId> learning_vifs;
  bool learning_everywhere = false;

  // Whether vif `id` on `bridge` (the key's whole value, of role `role`) is a
  // port of that bridge's switch: only on a Linux bridge (or one not there
  // yet), never on Open vSwitch or another kind of link (the daemon's
  // --no-fast-path turns off the switch as a whole).
  bool uses_switch(const xenbus::VifId& id, const std::string& bridge, BridgeRole role) const;
  bool learns(const xenbus::VifId& id) const;
};

// "DOMID.DEVID", or the TAP name "vifDOMID.DEVID": decimal, domid below
// DOMID_FIRST_RESERVED, devid up to xenbus::kMaxDevid. nullopt otherwise.
std::optional<xenbus::VifId> parse_vif_selector(std::string_view text);

}  // namespace vifd::backend
