#include "backend/lib/control/switch_policy.h"

#include "common/protocol/xs_parse.h"

namespace vifd::backend {

BridgeRole classify_bridge(const protocol::BridgeSpec& bridge, net::LinkKind kind) {
  switch (kind) {
    case net::LinkKind::kLinuxBridge:
      return BridgeRole::kLinuxBridge;
    case net::LinkKind::kOpenVswitch:
      return BridgeRole::kOpenVswitch;
    case net::LinkKind::kOther:
      return bridge.open_vswitch_syntax() ? BridgeRole::kOpenVswitch : BridgeRole::kOther;
    case net::LinkKind::kAbsent:
      break;
  }
  return bridge.open_vswitch_syntax() ? BridgeRole::kOpenVswitch : BridgeRole::kAbsent;
}

BridgeJoin bridge_join(BridgeRole role, bool has_script, bool reattach) {
  if (role == BridgeRole::kOpenVswitch) {
    return has_script ? BridgeJoin::kNone : BridgeJoin::kRefuse;
  }
  return !has_script || reattach ? BridgeJoin::kJoin : BridgeJoin::kNone;
}

bool SwitchPolicy::uses_switch(const xenbus::VifId& id, const std::string& bridge,
                               BridgeRole role) const {
  const bool switchable = role == BridgeRole::kLinuxBridge || role == BridgeRole::kAbsent;
  return switchable && !tap_only_bridges.contains(bridge) && !tap_only_vifs.contains(id);
}

bool SwitchPolicy::learns(const xenbus::VifId& id) const {
  return learning_everywhere || learning_vifs.contains(id);
}

std::optional<xenbus::VifId> parse_vif_selector(std::string_view text) {
  if (text.starts_with("vif")) {
    text.remove_prefix(3);
  }
  const std::size_t dot = text.find('.');
  if (dot == std::string_view::npos) {
    return std::nullopt;
  }
  const auto domid = protocol::parse_domid("vif", text.substr(0, dot));
  const auto devid = protocol::parse_uint("vif", text.substr(dot + 1), 0, xenbus::kMaxDevid);
  if (!domid || !devid) {
    return std::nullopt;
  }
  return xenbus::VifId{domid.value(), static_cast<std::uint32_t>(devid.value())};
}

}  // namespace vifd::backend
