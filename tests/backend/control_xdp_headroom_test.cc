// feature-xdp-headroom: vifd advertises it, reads the frontend's
// xdp-headroom at connect and follows it while connected, and answers a
// frontend's Reconfiguring (Linux netfront attaching or removing an XDP
// program) with Reconfigured, then Connected again, without reconnecting.
#include <gtest/gtest.h>

#include <string>

#include "tests/backend/control_harness.h"

namespace vifd::backend::testing {
namespace {

constexpr std::string_view kKey = key::kXdpHeadroom;

int served_headroom(DaemonThread& vifd) {
  const auto vifs = vifd.call([&] { return vifd.daemon().describe(VifId{1, 0}); });
  return vifs.at(0).at("features").value("xdp_headroom", -1);
}

TEST_F(ControlPlaneTest, AdvertisesXdpHeadroomInInitWait) {
  DaemonThread vifd(host(), options(1));
  toolstack_->attach(1, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  EXPECT_EQ(backend_key(1, 0, key::kFeatureXdpHeadroom), "1");
}

TEST_F(ControlPlaneTest, ReadsXdpHeadroomAtConnectAndFollowsItWhileConnected) {
  DaemonThread vifd(host(), options(1));
  toolstack_->attach(1, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  TestFrontend frontend(host(), 1, 0);
  FrontendOptions frontend_options;
  frontend_options.overrides[std::string(kKey)] = "256";
  frontend.connect(frontend_options);
  ASSERT_TRUE(backend_state_becomes(1, 0, "4")) << backend_key(1, 0, key::kError);
  EXPECT_EQ(served_headroom(vifd), 256);

  const std::string key_path = xenbus::join(frontend_path(1, 0), kKey);
  frontend.xenstore().write(key_path, "1024");
  EXPECT_TRUE(eventually([&] { return served_headroom(vifd) == 1024; }));
  // Removing the key reads as none, as in netback.
  frontend.xenstore().rm(key_path);
  EXPECT_TRUE(eventually([&] { return served_headroom(vifd) == 0; }));
  EXPECT_EQ(backend_key(1, 0, key::kState), "4");
  EXPECT_EQ(backend_key(1, 0, key::kError), "");
}

TEST_F(ControlPlaneTest, AnswersReconfiguringWithReconfiguredThenConnected) {
  DaemonThread vifd(host(), options(1));
  toolstack_->attach(1, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  TestFrontend frontend(host(), 1, 0);
  frontend.connect();
  ASSERT_TRUE(backend_state_becomes(1, 0, "4")) << backend_key(1, 0, key::kError);
  EXPECT_EQ(served_headroom(vifd), 0);
  const auto rings_before = frontend.read(key::kTxRingRef);

  // What xennet_xdp_set() does: Reconfiguring, the key, wait for
  // Reconfigured, Connected.
  frontend.set_state(7);
  frontend.xenstore().write(xenbus::join(frontend_path(1, 0), kKey), "256");
  ASSERT_TRUE(backend_state_becomes(1, 0, "8"));
  EXPECT_TRUE(eventually([&] { return served_headroom(vifd) == 256; }));
  frontend.set_state(4);
  ASSERT_TRUE(backend_state_becomes(1, 0, "4"));
  EXPECT_EQ(served_headroom(vifd), 256);

  // Detaching the program: the same dance back to none.
  frontend.set_state(7);
  frontend.xenstore().write(xenbus::join(frontend_path(1, 0), kKey), "0");
  ASSERT_TRUE(backend_state_becomes(1, 0, "8"));
  EXPECT_TRUE(eventually([&] { return served_headroom(vifd) == 0; }));
  frontend.set_state(4);
  ASSERT_TRUE(backend_state_becomes(1, 0, "4"));

  // Still the same connection: the queues kept running.
  const auto vifs = vifd.call([&] { return vifd.daemon().describe(VifId{1, 0}); });
  EXPECT_EQ(vifs.at(0).at("queues").size(), 1U);
  EXPECT_EQ(frontend.read(key::kTxRingRef), rings_before);
  EXPECT_EQ(backend_key(1, 0, key::kError), "");
}

}  // namespace
}  // namespace vifd::backend::testing
