// The xenbus handshake of vifd's control plane through the real xenstore
// server of a vif-sim host: every feature combination, and hostile values
// from the frontend and the toolstack.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <ostream>
#include <string>
#include <tuple>

#include "common/net/link.h"
#include "tests/backend/control_harness.h"

namespace vifd::backend::testing {
namespace {

std::string command_output(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  ::pclose(pipe);
  return output;
}

// queues, split event channels, sg, gso, csum
using Combination = std::tuple<unsigned, bool, bool, bool, bool>;

class HandshakeTest : public ControlPlaneTest, public ::testing::WithParamInterface<Combination> {};

TEST_P(HandshakeTest, ReachesConnectedWithTheNegotiatedFeatures) {
  const auto [queues, split, sg, gso, csum] = GetParam();
  DaemonThread vifd(host(), options(4));
  toolstack_->attach(1, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  // The TAP exists before InitWait (vif-bridge runs right after it).
  EXPECT_TRUE(net::link_exists("vif1.0"));
  EXPECT_EQ(backend_key(1, 0, key::kFeatureSg), "1");
  EXPECT_EQ(backend_key(1, 0, key::kFeatureGsoTcpv4), "1");
  EXPECT_EQ(backend_key(1, 0, key::kFeatureGsoTcpv6), "1");
  EXPECT_EQ(backend_key(1, 0, key::kFeatureIpv6CsumOffload), "1");
  EXPECT_EQ(backend_key(1, 0, key::kFeatureRxCopy), "1");
  EXPECT_EQ(backend_key(1, 0, key::kFeatureRxFlip), "0");
  EXPECT_EQ(backend_key(1, 0, key::kFeatureSplitEventChannels), "1");
  EXPECT_EQ(backend_key(1, 0, key::kMultiQueueMaxQueues), "4");
  EXPECT_EQ(backend_key(1, 0, key::kFeatureCtrlRing), "1");
  EXPECT_EQ(backend_key(1, 0, key::kFeatureDynamicMulticastControl), "1");

  TestFrontend frontend(host(), 1, 0);
  FrontendOptions frontend_options;
  frontend_options.queues = queues;
  frontend_options.split_event_channels = split;
  frontend_options.sg = sg;
  frontend_options.gso = gso;
  frontend_options.csum = csum;
  frontend.connect(frontend_options);
  ASSERT_TRUE(backend_state_becomes(1, 0, "4")) << backend_key(1, 0, key::kError);
  EXPECT_EQ(backend_key(1, 0, key::kError), "");

  const auto vifs = vifd.call([&] { return vifd.daemon().describe(std::nullopt); });
  ASSERT_EQ(vifs.size(), 1U);
  const auto& vif = vifs[0];
  EXPECT_EQ(vif["state"], "Connected");
  EXPECT_EQ(vif["tap"], "vif1.0");
  EXPECT_EQ(vif["queues"].size(), queues);
  const auto& features = vif["features"];
  EXPECT_EQ(features["num_queues"], queues);
  EXPECT_EQ(features["split_event_channels"], split);
  EXPECT_EQ(features["sg"], sg);
  EXPECT_EQ(features["gso_tcpv4"], gso);
  EXPECT_EQ(features["gso_tcpv6"], gso);
  EXPECT_EQ(features["csum_ipv4"], csum);
  EXPECT_EQ(features["csum_ipv6"], csum);
  EXPECT_TRUE(net::link_is_up("vif1.0"));
  for (unsigned q = 0; q < queues; ++q) {
    EXPECT_EQ(vif["queues"][q]["index"], q);
  }
}

INSTANTIATE_TEST_SUITE_P(FeatureMatrix, HandshakeTest,
                         ::testing::Combine(::testing::Values(1U, 4U), ::testing::Bool(),
                                            ::testing::Bool(), ::testing::Bool(),
                                            ::testing::Bool()));

TEST_F(ControlPlaneTest, OneQueueWithoutNumQueuesKeyUsesTopLevelKeys) {
  DaemonThread vifd(host(), options(4));
  toolstack_->attach(1, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  TestFrontend frontend(host(), 1, 0);
  FrontendOptions frontend_options;
  frontend_options.write_num_queues = false;
  frontend.connect(frontend_options);
  ASSERT_TRUE(backend_state_becomes(1, 0, "4")) << backend_key(1, 0, key::kError);
}

TEST_F(ControlPlaneTest, WaitsForHotplugStatusWhenAScriptIsConfigured) {
  DaemonThread vifd(host(), options(1));
  AttachOptions attach;
  attach.script = "/etc/xen/scripts/vif-bridge";
  attach.bridge = "xenbr0";
  toolstack_->attach(1, 0, attach);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  TestFrontend frontend(host(), 1, 0);
  frontend.connect();
  // Not Connected while the script has not reported: the frontend's Connected
  // is seen (state stays 2) until hotplug-status says so.
  ASSERT_TRUE(eventually([&] { return frontend.read(key::kState) == "4"; }));
  EXPECT_EQ(backend_key(1, 0, key::kState), "2");
  toolstack_->xenstore().write(xenbus::join(backend_path(1, 0), key::kHotplugStatus), "connected");
  ASSERT_TRUE(backend_state_becomes(1, 0, "4")) << backend_key(1, 0, key::kError);
}

TEST_F(ControlPlaneTest, AddsTheTapToTheBridgeWithoutAScript) {
  net::create_bridge("xenbr0");
  DaemonThread vifd(host(), options(1));
  AttachOptions attach;
  attach.bridge = "xenbr0";
  toolstack_->attach(1, 0, attach);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  // sysfs shows the host's namespace, so ask iproute2 for the master.
  EXPECT_NE(command_output("ip -o link show vif1.0").find("master xenbr0"), std::string::npos);
  const auto vifs = vifd.call([&] { return vifd.daemon().describe(std::nullopt); });
  EXPECT_EQ(vifs[0]["switch"], "xenbr0");
}

// A frontend key that is hostile or missing: the vif writes `error` naming
// the key and closes; the daemon keeps serving other vifs.
struct HostileFrontendCase {
  std::string name;
  KeyValues overrides;
  std::string_view key_named;
};

void PrintTo(const HostileFrontendCase& test, std::ostream* out) {
  *out << test.name;
}

class HostileFrontendTest : public ControlPlaneTest,
                            public ::testing::WithParamInterface<HostileFrontendCase> {};

TEST_P(HostileFrontendTest, ErrorNamesTheKeyAndOtherVifsStillConnect) {
  const HostileFrontendCase& hostile = GetParam();
  DaemonThread vifd(host(), options(4));
  toolstack_->attach(1, 0);
  toolstack_->attach(2, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  ASSERT_TRUE(backend_state_becomes(2, 0, "2"));

  TestFrontend bad(host(), 1, 0);
  FrontendOptions bad_options;
  bad_options.overrides = hostile.overrides;
  bad.connect(bad_options);
  ASSERT_TRUE(eventually([&] {
    const auto state = backend_key(1, 0, key::kState);
    return state == "5" || state == "6";
  })) << "state "
      << backend_key(1, 0, key::kState);
  EXPECT_NE(backend_key(1, 0, key::kError).find(hostile.key_named), std::string::npos)
      << backend_key(1, 0, key::kError);

  TestFrontend good(host(), 2, 0);
  good.connect();
  EXPECT_TRUE(backend_state_becomes(2, 0, "4")) << backend_key(2, 0, key::kError);
  // A failed vif holds nothing of the frontend's.
  const auto vifs = vifd.call([&] { return vifd.daemon().describe(VifId{1, 0}); });
  EXPECT_TRUE(vifs[0]["queues"].empty());
}

INSTANTIATE_TEST_SUITE_P(
    Keys, HostileFrontendTest,
    ::testing::Values(
        HostileFrontendCase{"RingRefNotANumber", key_values({{key::kTxRingRef, "abc"}}),
                            key::kTxRingRef},
        HostileFrontendCase{"RingRefReserved", key_values({{key::kRxRingRef, "3"}}),
                            key::kRxRingRef},
        HostileFrontendCase{"RingRefNotGranted", key_values({{key::kTxRingRef, "4000"}}),
                            key::kTxRingRef},
        HostileFrontendCase{"PortZero", key_values({{key::kEventChannelTx, "0"}}),
                            key::kEventChannelTx},
        HostileFrontendCase{"PortNotOffered", key_values({{key::kEventChannelRx, "999"}}),
                            key::kEventChannelRx},
        HostileFrontendCase{"ZeroQueues", key_values({{key::kMultiQueueNumQueues, "0"}}),
                            key::kMultiQueueNumQueues},
        HostileFrontendCase{"ThousandQueues", key_values({{key::kMultiQueueNumQueues, "1000"}}),
                            key::kMultiQueueNumQueues},
        HostileFrontendCase{"RxFlip", key_values({{key::kRequestRxCopy, "0"}}),
                            key::kRequestRxCopy},
        HostileFrontendCase{"NoRxNotify", key_values({{key::kFeatureRxNotify, ""}}),
                            key::kFeatureRxNotify},
        HostileFrontendCase{"FlagNotABoolean", key_values({{key::kFeatureSg, "yes"}}),
                            key::kFeatureSg},
        HostileFrontendCase{"MissingRingRef", key_values({{key::kTxRingRef, ""}}),
                            key::kTxRingRef}),
    [](const auto& test) { return test.param.name; });

struct HostileBackendCase {
  std::string name;
  KeyValues overrides;
  std::string_view key_named;
};

void PrintTo(const HostileBackendCase& test, std::ostream* out) {
  *out << test.name;
}

class HostileBackendTest : public ControlPlaneTest,
                           public ::testing::WithParamInterface<HostileBackendCase> {};

TEST_P(HostileBackendTest, ErrorNamesTheKeyAndTheVifCloses) {
  const HostileBackendCase& hostile = GetParam();
  DaemonThread vifd(host(), options(1));
  AttachOptions attach;
  attach.backend_overrides = hostile.overrides;
  toolstack_->attach(1, 0, attach);
  toolstack_->attach(2, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "6"));
  EXPECT_NE(backend_key(1, 0, key::kError).find(hostile.key_named), std::string::npos)
      << backend_key(1, 0, key::kError);
  EXPECT_FALSE(net::link_exists("vif1.0"));
  EXPECT_TRUE(backend_state_becomes(2, 0, "2"));
}

INSTANTIATE_TEST_SUITE_P(
    Keys, HostileBackendTest,
    ::testing::Values(
        HostileBackendCase{"BadMac", key_values({{key::kMac, "zz:16:3e:00:00:01"}}), key::kMac},
        HostileBackendCase{"MulticastMac", key_values({{key::kMac, "01:16:3e:00:00:01"}}),
                           key::kMac},
        HostileBackendCase{"OtherFrontendId", key_values({{key::kFrontendId, "2"}}),
                           key::kFrontendId},
        HostileBackendCase{"OtherFrontendPath", key_values({{key::kFrontend, frontend_path(2, 0)}}),
                           key::kFrontend},
        HostileBackendCase{"BadRate", key_values({{key::kRate, "0,100"}}), key::kRate},
        HostileBackendCase{"BadMtu", key_values({{key::kMtu, "20"}}), key::kMtu},
        HostileBackendCase{"BadIp", key_values({{key::kIp, "10.0.0.1/33"}}), "'ip'"},
        HostileBackendCase{"BridgeNameInvalid", key_values({{key::kBridge, "a/b"}}), key::kBridge},
        HostileBackendCase{"MissingBridge", key_values({{key::kBridge, "nosuchbr"}}),
                           key::kBridge}),
    [](const auto& test) { return test.param.name; });

TEST_F(ControlPlaneTest, IgnoresMalformedDirectoryNames) {
  DaemonThread vifd(host(), options(1));
  auto& xs = toolstack_->xenstore();
  for (const char* bad_ids : {"abc/0", "1/-1", "40000/0"}) {
    xs.write(xenbus::join(xenbus::join(xenbus::backend_vif_root(0), bad_ids), key::kState), "1");
  }
  toolstack_->attach(1, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  const auto vifs = vifd.call([&] { return vifd.daemon().describe(std::nullopt); });
  EXPECT_EQ(vifs.size(), 1U);
}

TEST_F(ControlPlaneTest, ServesOnlyTheDomainsItWasGiven) {
  DaemonOptions only_two = options(1);
  only_two.domains = {2};
  DaemonThread vifd(host(), only_two);
  toolstack_->attach(1, 0);
  toolstack_->attach(2, 0);
  ASSERT_TRUE(backend_state_becomes(2, 0, "2"));
  EXPECT_EQ(backend_key(1, 0, key::kState), "1");
  EXPECT_FALSE(net::link_exists("vif1.0"));
}

}  // namespace
}  // namespace vifd::backend::testing
