// The operator's switch options: which vifs stay off the in-process switch
// (their frames take the TAP and the bridge's filtering) and which may learn
// MACs.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "backend/lib/control/switch_policy.h"
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
  SwitchPolicy policy;
  EXPECT_TRUE(policy.uses_switch({1, 0}, "xenbr0"));
  EXPECT_FALSE(policy.learns({1, 0})) << "pinned unless the operator says otherwise";
  policy.tap_only_bridges = {"xenbr1"};
  policy.tap_only_vifs = {{2, 0}};
  policy.learning_vifs = {{3, 1}};
  EXPECT_TRUE(policy.uses_switch({1, 0}, "xenbr0"));
  EXPECT_FALSE(policy.uses_switch({1, 0}, "xenbr1"));
  EXPECT_FALSE(policy.uses_switch({2, 0}, "xenbr0"));
  EXPECT_TRUE(policy.uses_switch({2, 1}, "xenbr0"));
  EXPECT_TRUE(policy.learns({3, 1}));
  EXPECT_FALSE(policy.learns({3, 0}));
  policy.learning_everywhere = true;
  EXPECT_TRUE(policy.learns({3, 0}));
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
