// A hostile xdp-headroom, at connect or while connected: the vif closes
// with an `error` naming the key; vifd keeps serving the other vifs.
#include <gtest/gtest.h>

#include <string>

#include "tests/backend/control_harness.h"

namespace vifd::backend::testing {
namespace {

constexpr std::string_view kKey = key::kXdpHeadroom;

class XdpHeadroomHostileTest : public ControlPlaneTest,
                               public ::testing::WithParamInterface<const char*> {
 protected:
  bool closed_naming_the_key() {
    const bool closed = eventually([&] {
      const auto state = backend_key(1, 0, key::kState);
      return state == "5" || state == "6";
    });
    return closed && backend_key(1, 0, key::kError).find(kKey) != std::string::npos;
  }
  void expect_other_vif_served() {
    TestFrontend other(host(), 2, 0);
    other.connect();
    EXPECT_TRUE(backend_state_becomes(2, 0, "4")) << backend_key(2, 0, key::kError);
  }
};

TEST_P(XdpHeadroomHostileTest, AtConnectClosesTheVifNamingTheKey) {
  DaemonThread vifd(host(), options(1));
  toolstack_->attach(1, 0);
  toolstack_->attach(2, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  ASSERT_TRUE(backend_state_becomes(2, 0, "2"));
  TestFrontend frontend(host(), 1, 0);
  FrontendOptions frontend_options;
  frontend_options.overrides[std::string(kKey)] = GetParam();
  frontend.connect(frontend_options);
  EXPECT_TRUE(closed_naming_the_key())
      << "state " << backend_key(1, 0, key::kState) << ", error " << backend_key(1, 0, key::kError);
  expect_other_vif_served();
}

TEST_P(XdpHeadroomHostileTest, WhileConnectedClosesTheVifNamingTheKey) {
  DaemonThread vifd(host(), options(1));
  toolstack_->attach(1, 0);
  toolstack_->attach(2, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  ASSERT_TRUE(backend_state_becomes(2, 0, "2"));
  TestFrontend frontend(host(), 1, 0);
  frontend.connect();
  ASSERT_TRUE(backend_state_becomes(1, 0, "4")) << backend_key(1, 0, key::kError);
  frontend.xenstore().write(xenbus::join(frontend_path(1, 0), kKey), GetParam());
  EXPECT_TRUE(closed_naming_the_key())
      << "state " << backend_key(1, 0, key::kState) << ", error " << backend_key(1, 0, key::kError);
  const auto vifs = vifd.call([&] { return vifd.daemon().describe(VifId{1, 0}); });
  EXPECT_TRUE(vifs[0]["queues"].empty());
  expect_other_vif_served();
}

// Beyond a page, beyond XEN_NETIF_MAX_XDP_HEADROOM, not a number.
INSTANTIATE_TEST_SUITE_P(Values, XdpHeadroomHostileTest,
                         ::testing::Values("4096", "32768", "70000", "-1", "256 "));

}  // namespace
}  // namespace vifd::backend::testing
