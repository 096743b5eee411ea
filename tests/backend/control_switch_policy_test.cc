// The operator's switch options: which vifs stay off the in-process switch
// (their frames take the TAP and the bridge's filtering) and which may learn
// MACs.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "backend/lib/control/switch_policy.h"
#include "common/net/link.h"
#include "common/protocol/xs_parse.h"
#include "tests/backend/control_harness.h"

namespace vifd::backend::testing {
namespace {

using xenbus::VifId;

TEST(SwitchPolicy, ParsesVifNamesAsTheTapNamesThem) {
  EXPECT_EQ(parse_vif_selector("3.0"), (VifId{3, 0}));
  EXPECT_EQ(parse_vif_selector("vif12.65535"), (VifId{12, 65535}));
  for (const char* bad :
       {"", "3", "3.", ".0", "3.0.1", "x3.0", "03.0", "3.-1", "32752.0", "3.65536", "vif", "all"}) {
    EXPECT_FALSE(parse_vif_selector(bad)) << bad;
  }
}

TEST(SwitchPolicy, KeepsBridgesAndVifsOffTheSwitchAndLetsChosenVifsLearn) {
  constexpr BridgeRole kLinux = BridgeRole::kLinuxBridge;
  SwitchPolicy policy;
  EXPECT_TRUE(policy.uses_switch({1, 0}, "xenbr0", kLinux));
  EXPECT_FALSE(policy.learns({1, 0})) << "pinned unless the operator says otherwise";
  policy.tap_only_bridges = {"xenbr1"};
  policy.tap_only_vifs = {{2, 0}};
  policy.learning_vifs = {{3, 1}};
  EXPECT_TRUE(policy.uses_switch({1, 0}, "xenbr0", kLinux));
  EXPECT_FALSE(policy.uses_switch({1, 0}, "xenbr1", kLinux));
  EXPECT_FALSE(policy.uses_switch({2, 0}, "xenbr0", kLinux));
  EXPECT_TRUE(policy.uses_switch({2, 1}, "xenbr0", kLinux));
  EXPECT_TRUE(policy.learns({3, 1}));
  EXPECT_FALSE(policy.learns({3, 0}));
  policy.learning_everywhere = true;
  EXPECT_TRUE(policy.learns({3, 0}));
}

protocol::BridgeSpec bridge(std::string_view value) {
  return protocol::parse_bridge("bridge", value).value();
}

TEST(SwitchPolicy, OnlyLinuxBridgesAreSwitchedNeverOpenVswitchPorts) {
  using net::LinkKind;
  // The syntax alone says Open vSwitch, unless a Linux bridge of the whole
  // name exists (as vif-bridge would find it).
  EXPECT_EQ(classify_bridge(bridge("ovsbr.10"), LinkKind::kAbsent), BridgeRole::kOpenVswitch);
  EXPECT_EQ(classify_bridge(bridge("ovsbr:10:20"), LinkKind::kAbsent), BridgeRole::kOpenVswitch);
  EXPECT_EQ(classify_bridge(bridge("ovsbr.10"), LinkKind::kOther), BridgeRole::kOpenVswitch);
  EXPECT_EQ(classify_bridge(bridge("ovsbr.10"), LinkKind::kOpenVswitch), BridgeRole::kOpenVswitch);
  EXPECT_EQ(classify_bridge(bridge("xenbr0.10"), LinkKind::kLinuxBridge), BridgeRole::kLinuxBridge);
  // A plain name: the kernel says what it is.
  EXPECT_EQ(classify_bridge(bridge("xenbr0"), LinkKind::kLinuxBridge), BridgeRole::kLinuxBridge);
  EXPECT_EQ(classify_bridge(bridge("ovsbr"), LinkKind::kOpenVswitch), BridgeRole::kOpenVswitch);
  EXPECT_EQ(classify_bridge(bridge("ovsbr"), LinkKind::kOther), BridgeRole::kOther);
  EXPECT_EQ(classify_bridge(bridge("xenbr0"), LinkKind::kAbsent), BridgeRole::kAbsent);

  const SwitchPolicy policy;
  EXPECT_TRUE(policy.uses_switch({1, 0}, "xenbr0", BridgeRole::kLinuxBridge));
  EXPECT_TRUE(policy.uses_switch({1, 0}, "xenbr0", BridgeRole::kAbsent)) << "as before";
  EXPECT_FALSE(policy.uses_switch({1, 0}, "ovsbr.10", BridgeRole::kOpenVswitch));
  EXPECT_FALSE(policy.uses_switch({1, 0}, "ovsbr", BridgeRole::kOpenVswitch));
  EXPECT_FALSE(policy.uses_switch({1, 0}, "tap0", BridgeRole::kOther));
}

TEST(SwitchPolicy, VifdJoinsLinuxBridgesAndLeavesOpenVswitchToTheScript) {
  for (const BridgeRole role :
       {BridgeRole::kLinuxBridge, BridgeRole::kAbsent, BridgeRole::kOther}) {
    EXPECT_EQ(bridge_join(role, false, false), BridgeJoin::kJoin) << "vifd does vif-bridge's part";
    EXPECT_EQ(bridge_join(role, false, true), BridgeJoin::kJoin);
    EXPECT_EQ(bridge_join(role, true, false), BridgeJoin::kNone) << "the script joins";
    EXPECT_EQ(bridge_join(role, true, true), BridgeJoin::kJoin) << "a new TAP after a restart";
  }
  EXPECT_EQ(bridge_join(BridgeRole::kOpenVswitch, false, false), BridgeJoin::kRefuse);
  EXPECT_EQ(bridge_join(BridgeRole::kOpenVswitch, false, true), BridgeJoin::kRefuse);
  EXPECT_EQ(bridge_join(BridgeRole::kOpenVswitch, true, false), BridgeJoin::kNone);
  EXPECT_EQ(bridge_join(BridgeRole::kOpenVswitch, true, true), BridgeJoin::kNone)
      << "Open vSwitch's database keeps the port by name";
}

TEST_F(ControlPlaneTest, OpenVswitchPortsAreServedAsPlainTaps) {
  // A Linux bridge whose name reads like an Open vSwitch access port.
  net::create_bridge("lnbr.10");
  DaemonThread vifd(host(), options(1));
  AttachOptions access;
  access.bridge = "ovsvt.10";
  access.script = "/etc/xen/scripts/vif-openvswitch";
  AttachOptions trunk = access;
  trunk.bridge = "ovsvt.10:20:30";
  AttachOptions no_script;
  no_script.bridge = "ovsvt.20";
  AttachOptions linux_bridge;
  linux_bridge.bridge = "lnbr.10";
  toolstack_->attach(1, 0, access);
  toolstack_->attach(2, 0, access);
  toolstack_->attach(3, 0, trunk);
  toolstack_->attach(3, 1, no_script);
  toolstack_->attach(2, 1, linux_bridge);
  const auto switch_of = [&](platform::DomId domid, std::uint32_t devid) {
    const auto vifs = vifd.call([&] { return vifd.daemon().describe(VifId{domid, devid}); });
    return vifs.at(0)["switch"];
  };
  for (const platform::DomId domid : {1, 2, 3}) {
    ASSERT_TRUE(backend_state_becomes(domid, 0, "2")) << backend_key(domid, 0, key::kError);
    EXPECT_TRUE(switch_of(domid, 0).is_null()) << "vif " << domid << ".0 is Open vSwitch's port";
  }
  // vifd joined the Linux bridge of that very name itself, and switches it.
  ASSERT_TRUE(backend_state_becomes(2, 1, "2")) << backend_key(2, 1, key::kError);
  EXPECT_EQ(switch_of(2, 1), "lnbr.10");
  // vifd cannot add a port to Open vSwitch itself, and says so.
  ASSERT_TRUE(backend_state_becomes(3, 1, "6"));
  EXPECT_EQ(backend_key(3, 1, key::kError),
            "bridge: 'ovsvt.20' is an Open vSwitch port, which vifd does not join itself: the vif "
            "needs a hotplug script (vif-openvswitch)");
}

TEST_F(ControlPlaneTest, VifsTheOperatorKeepsOffTheSwitchHaveNone) {
  DaemonOptions daemon_options = options(1);
  daemon_options.switch_policy.tap_only_vifs = {{1, 0}};
  daemon_options.switch_policy.tap_only_bridges = {"xenbr1"};
  DaemonThread vifd(host(), daemon_options);
  // With a script the toolstack enslaves the TAPs: no Linux bridge needed.
  AttachOptions on_xenbr0;
  on_xenbr0.bridge = "xenbr0";
  on_xenbr0.script = "/etc/xen/scripts/vif-bridge";
  AttachOptions on_xenbr1 = on_xenbr0;
  on_xenbr1.bridge = "xenbr1";
  toolstack_->attach(1, 0, on_xenbr0);
  toolstack_->attach(2, 0, on_xenbr0);
  toolstack_->attach(3, 0, on_xenbr1);
  for (const platform::DomId domid : {1, 2, 3}) {
    ASSERT_TRUE(backend_state_becomes(domid, 0, "2")) << backend_key(domid, 0, key::kError);
  }
  const auto switch_of = [&](platform::DomId domid) {
    const auto vifs = vifd.call([&] { return vifd.daemon().describe(VifId{domid, 0}); });
    return vifs.at(0)["switch"];
  };
  EXPECT_TRUE(switch_of(1).is_null()) << "vif 1.0 is kept off";
  EXPECT_EQ(switch_of(2), "xenbr0");
  EXPECT_TRUE(switch_of(3).is_null()) << "xenbr1 is kept off";

  // Nothing of theirs is switched: vifctl capture says so and points at the TAP.
  const auto capture = [&](platform::DomId domid) {
    return vifd.call([&] {
      return vifd.daemon()
          .handle_control(fmt::format(R"({{"command":"capture","domid":{},"devid":0}})", domid))
          .response;
    });
  };
  for (const platform::DomId domid : {1, 3}) {
    const auto answer = capture(domid);
    EXPECT_FALSE(answer.value("ok", true)) << answer;
    const std::string tap = fmt::format("vif{}.0", domid);
    EXPECT_EQ(answer.value("error", std::string()),
              fmt::format("{} is not a port of vifd's switch (fast path off for it, or no "
                          "bridge): all its frames pass its TAP, so tcpdump -i {} sees them",
                          tap, tap));
  }
  // vif 2.0 is a port but has no connected frontend: not on the switch yet.
  const auto answer = capture(2);
  EXPECT_FALSE(answer.value("ok", true)) << answer;
  EXPECT_EQ(answer.value("error", std::string()), "vif2.0 is not connected to switch xenbr0");
}

}  // namespace
}  // namespace vifd::backend::testing
