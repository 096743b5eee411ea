// feature-dynamic-multicast-control: the frontend turns multicast filtering on
// and off by rewriting request-multicast-control while connected, and vifd
// follows without reconnecting; a hostile value closes the vif.
#include <gtest/gtest.h>

#include <string>

#include "tests/backend/control_harness.h"

namespace vifd::backend::testing {
namespace {

constexpr std::string_view kKey = key::kRequestMulticastControl;

bool negotiated_multicast_control(DaemonThread& vifd) {
  const auto vifs = vifd.call([&] { return vifd.daemon().describe(VifId{1, 0}); });
  return vifs.at(0).at("features").value("multicast_control", false);
}

TEST_F(ControlPlaneTest, AdvertisesDynamicMulticastControlInInitWait) {
  DaemonThread vifd(host(), options(1));
  toolstack_->attach(1, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  EXPECT_EQ(backend_key(1, 0, key::kFeatureMulticastControl), "1");
  EXPECT_EQ(backend_key(1, 0, key::kFeatureDynamicMulticastControl), "1");
}

TEST_F(ControlPlaneTest, FollowsRequestMulticastControlWhileConnected) {
  DaemonThread vifd(host(), options(1));
  toolstack_->attach(1, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  TestFrontend frontend(host(), 1, 0);
  FrontendOptions frontend_options;
  frontend_options.overrides[std::string(kKey)] = "0";
  frontend.connect(frontend_options);
  ASSERT_TRUE(backend_state_becomes(1, 0, "4")) << backend_key(1, 0, key::kError);
  EXPECT_FALSE(negotiated_multicast_control(vifd));

  const std::string key_path = xenbus::join(frontend_path(1, 0), kKey);
  frontend.xenstore().write(key_path, "1");
  EXPECT_TRUE(eventually([&] { return negotiated_multicast_control(vifd); }));
  frontend.xenstore().write(key_path, "0");
  EXPECT_TRUE(eventually([&] { return !negotiated_multicast_control(vifd); }));
  frontend.xenstore().write(key_path, "1");
  EXPECT_TRUE(eventually([&] { return negotiated_multicast_control(vifd); }));
  // Removing the key reads as off, as in netback.
  frontend.xenstore().rm(key_path);
  EXPECT_TRUE(eventually([&] { return !negotiated_multicast_control(vifd); }));

  // None of it was a reconnection.
  EXPECT_EQ(backend_key(1, 0, key::kState), "4");
  EXPECT_EQ(backend_key(1, 0, key::kError), "");
}

TEST_F(ControlPlaneTest, HostileRequestMulticastControlClosesTheVifNamingTheKey) {
  DaemonThread vifd(host(), options(1));
  toolstack_->attach(1, 0);
  toolstack_->attach(2, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  ASSERT_TRUE(backend_state_becomes(2, 0, "2"));
  TestFrontend frontend(host(), 1, 0);
  frontend.connect();
  ASSERT_TRUE(backend_state_becomes(1, 0, "4")) << backend_key(1, 0, key::kError);

  frontend.xenstore().write(xenbus::join(frontend_path(1, 0), kKey), "yes please");
  ASSERT_TRUE(eventually([&] {
    const auto state = backend_key(1, 0, key::kState);
    return state == "5" || state == "6";
  })) << "state "
      << backend_key(1, 0, key::kState);
  EXPECT_NE(backend_key(1, 0, key::kError).find(kKey), std::string::npos)
      << backend_key(1, 0, key::kError);
  const auto vifs = vifd.call([&] { return vifd.daemon().describe(VifId{1, 0}); });
  EXPECT_TRUE(vifs[0]["queues"].empty());

  // The daemon keeps serving the other vif.
  TestFrontend other(host(), 2, 0);
  other.connect();
  EXPECT_TRUE(backend_state_becomes(2, 0, "4")) << backend_key(2, 0, key::kError);
}

}  // namespace
}  // namespace vifd::backend::testing
