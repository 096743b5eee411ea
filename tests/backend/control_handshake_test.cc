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
  EXPECT_EQ(backend_key(1, 0, "feature-sg"), "1");
  EXPECT_EQ(backend_key(1, 0, "feature-gso-tcpv4"), "1");
  EXPECT_EQ(backend_key(1, 0, "feature-gso-tcpv6"), "1");
  EXPECT_EQ(backend_key(1, 0, "feature-ipv6-csum-offload"), "1");
  EXPECT_EQ(backend_key(1, 0, "feature-rx-copy"), "1");
  EXPECT_EQ(backend_key(1, 0, "feature-rx-flip"), "0");
  EXPECT_EQ(backend_key(1, 0, "feature-split-event-channels"), "1");
  EXPECT_EQ(backend_key(1, 0, "multi-queue-max-queues"), "4");
  EXPECT_EQ(backend_key(1, 0, "feature-ctrl-ring"), "1");
  EXPECT_EQ(backend_key(1, 0, "feature-dynamic-multicast-control"), "1");

  TestFrontend frontend(host(), 1, 0);
  FrontendOptions frontend_options;
  frontend_options.queues = queues;
  frontend_options.split_event_channels = split;
  frontend_options.sg = sg;
  frontend_options.gso = gso;
  frontend_options.csum = csum;
  frontend.connect(frontend_options);
  ASSERT_TRUE(backend_state_becomes(1, 0, "4")) << backend_key(1, 0, "error");
  EXPECT_EQ(backend_key(1, 0, "error"), "");

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
  ASSERT_TRUE(backend_state_becomes(1, 0, "4")) << backend_key(1, 0, "error");
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
  ASSERT_TRUE(eventually([&] { return frontend.read("state") == "4"; }));
  EXPECT_EQ(backend_key(1, 0, "state"), "2");
  toolstack_->xenstore().write(backend_path(1, 0) + "/hotplug-status", "connected");
  ASSERT_TRUE(backend_state_becomes(1, 0, "4")) << backend_key(1, 0, "error");
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
  std::map<std::string, std::string> overrides;
  std::string key_named;
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
    const auto state = backend_key(1, 0, "state");
    return state == "5" || state == "6";
  })) << "state "
      << backend_key(1, 0, "state");
  EXPECT_NE(backend_key(1, 0, "error").find(hostile.key_named), std::string::npos)
      << backend_key(1, 0, "error");

  TestFrontend good(host(), 2, 0);
  good.connect();
  EXPECT_TRUE(backend_state_becomes(2, 0, "4")) << backend_key(2, 0, "error");
  // A failed vif holds nothing of the frontend's.
  const auto vifs = vifd.call([&] { return vifd.daemon().describe(VifId{1, 0}); });
  EXPECT_TRUE(vifs[0]["queues"].empty());
}

INSTANTIATE_TEST_SUITE_P(
    Keys, HostileFrontendTest,
    ::testing::Values(
        HostileFrontendCase{"RingRefNotANumber", {{"tx-ring-ref", "abc"}}, "tx-ring-ref"},
        HostileFrontendCase{"RingRefReserved", {{"rx-ring-ref", "3"}}, "rx-ring-ref"},
        HostileFrontendCase{"RingRefNotGranted", {{"tx-ring-ref", "4000"}}, "tx-ring-ref"},
        HostileFrontendCase{"PortZero", {{"event-channel-tx", "0"}}, "event-channel-tx"},
        HostileFrontendCase{"PortNotOffered", {{"event-channel-rx", "999"}}, "event-channel-rx"},
        HostileFrontendCase{
            "ZeroQueues", {{"multi-queue-num-queues", "0"}}, "multi-queue-num-queues"},
        HostileFrontendCase{
            "ThousandQueues", {{"multi-queue-num-queues", "1000"}}, "multi-queue-num-queues"},
        HostileFrontendCase{"RxFlip", {{"request-rx-copy", "0"}}, "request-rx-copy"},
        HostileFrontendCase{"NoRxNotify", {{"feature-rx-notify", ""}}, "feature-rx-notify"},
        HostileFrontendCase{"FlagNotABoolean", {{"feature-sg", "yes"}}, "feature-sg"},
        HostileFrontendCase{"MissingRingRef", {{"tx-ring-ref", ""}}, "tx-ring-ref"}),
    [](const auto& test) { return test.param.name; });

struct HostileBackendCase {
  std::string name;
  std::map<std::string, std::string> overrides;
  std::string key_named;
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
  EXPECT_NE(backend_key(1, 0, "error").find(hostile.key_named), std::string::npos)
      << backend_key(1, 0, "error");
  EXPECT_FALSE(net::link_exists("vif1.0"));
  EXPECT_TRUE(backend_state_becomes(2, 0, "2"));
}

INSTANTIATE_TEST_SUITE_P(
    Keys, HostileBackendTest,
    ::testing::Values(HostileBackendCase{"BadMac", {{"mac", "zz:16:3e:00:00:01"}}, "mac"},
                      HostileBackendCase{"MulticastMac", {{"mac", "01:16:3e:00:00:01"}}, "mac"},
                      HostileBackendCase{"OtherFrontendId", {{"frontend-id", "2"}}, "frontend-id"},
                      HostileBackendCase{"OtherFrontendPath",
                                         {{"frontend", "/local/domain/2/device/vif/0"}},
                                         "frontend"},
                      HostileBackendCase{"BadRate", {{"rate", "0,100"}}, "rate"},
                      HostileBackendCase{"BadMtu", {{"mtu", "20"}}, "mtu"},
                      HostileBackendCase{"BridgeNameInvalid", {{"bridge", "a/b"}}, "bridge"},
                      HostileBackendCase{"MissingBridge", {{"bridge", "nosuchbr"}}, "bridge"}),
    [](const auto& test) { return test.param.name; });

TEST_F(ControlPlaneTest, IgnoresMalformedDirectoryNames) {
  DaemonThread vifd(host(), options(1));
  auto& xs = toolstack_->xenstore();
  xs.write("/local/domain/0/backend/vif/abc/0/state", "1");
  xs.write("/local/domain/0/backend/vif/1/-1/state", "1");
  xs.write("/local/domain/0/backend/vif/40000/0/state", "1");
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
  EXPECT_EQ(backend_key(1, 0, "state"), "1");
  EXPECT_FALSE(net::link_exists("vif1.0"));
}

}  // namespace
}  // namespace vifd::backend::testing
