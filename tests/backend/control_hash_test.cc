// The hash messages of the netif control ring, answered by HashControl with
// real grant copies between two domains of a vif-sim host: the frontend
// (domain 1) grants the key and mapping pages, the backend (dom0) copies.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>

#include "backend/lib/control/hash_control.h"
#include "tests/backend/control_harness.h"

namespace vifd::backend::testing {
namespace {

class HashControlTest : public ControlPlaneTest {
 protected:
  void SetUp() override {
    ControlPlaneTest::SetUp();
    backend_platform_ = host().platform(0);
    frontend_platform_ = host().platform(1);
    grants_ = backend_platform_->open_grant_table();
    share_ = frontend_platform_->open_grant_share();
    page_ = share_->share(0, std::span(&ref_, 1), false);
  }
  void TearDown() override {
    if (page_ != nullptr) share_->unshare(page_, 1);
  }

  protocol::CtrlResponse send(std::uint16_t type, std::uint32_t a = 0, std::uint32_t b = 0,
                              std::uint32_t c = 0) {
    protocol::CtrlRequest request{};
    request.id = ++id_;
    request.type = type;
    request.data[0] = a;
    request.data[1] = b;
    request.data[2] = c;
    const auto response = control_->handle(request);
    EXPECT_EQ(response.id, request.id);
    EXPECT_EQ(response.type, type);
    return response;
  }
  std::uint8_t* page() { return static_cast<std::uint8_t*>(page_); }

  std::unique_ptr<platform::Platform> backend_platform_;
  std::unique_ptr<platform::Platform> frontend_platform_;
  std::unique_ptr<platform::GrantTable> grants_;
  std::unique_ptr<platform::GrantShare> share_;
  platform::GrantRef ref_ = 0;
  void* page_ = nullptr;
  std::uint16_t id_ = 0;
  std::unique_ptr<HashControl> control_;
};

TEST_F(HashControlTest, AnswersEveryMessageType) {
  control_ = std::make_unique<HashControl>(*grants_, 1, 4, std::make_shared<FlowSteering>());

  auto r = send(XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS);
  EXPECT_EQ(r.status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(r.data, HashControl::kSupportedFlags);

  // Flags need an algorithm first (as netback).
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, XEN_NETIF_CTRL_HASH_TYPE_IPV4).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM, 7).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(
      send(XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM, XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ).status,
      XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, HashControl::kSupportedFlags).status,
            XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, 1U << 4).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);

  // Key through the granted page.
  for (std::uint8_t i = 0; i < 40; ++i) page()[i] = static_cast<std::uint8_t>(i + 1);
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, ref_, 40).status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, ref_, 41).status,
            XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW);
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 4000, 16).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER)
      << "a grant that does not exist";

  r = send(XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE);
  EXPECT_EQ(r.status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(r.data, HashControl::kMaxMappingSize);
  EXPECT_EQ(
      send(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, HashControl::kMaxMappingSize + 1).status,
      XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, 8).status,
            XEN_NETIF_CTRL_STATUS_SUCCESS);

  const std::array<std::uint32_t, 4> queues = {3, 2, 1, 0};
  std::memcpy(page(), queues.data(), sizeof queues);
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, ref_, 4, 2).status,
            XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, ref_, 4, 5).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER)
      << "past the end of the table";
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, ref_, 4, 0xFFFFFFFEU).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER)
      << "offset + size wraps";
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 4000, 4, 0).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER)
      << "a grant that does not exist";
  const std::array<std::uint32_t, 2> out_of_range = {1, 4};
  std::memcpy(page(), out_of_range.data(), sizeof out_of_range);
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, ref_, 2, 0).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER)
      << "queue 4 of 4";

  for (const std::uint16_t type :
       {std::uint16_t{XEN_NETIF_CTRL_TYPE_INVALID},
        std::uint16_t{XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE},
        std::uint16_t{XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING},
        std::uint16_t{XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING}, std::uint16_t{999}}) {
    EXPECT_EQ(send(type).status, XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED) << "type " << type;
  }

  // The data path sees exactly the accepted configuration; rejected
  // requests changed nothing.
  const auto snapshot = control_->snapshot();
  EXPECT_TRUE(snapshot->toeplitz);
  EXPECT_EQ(snapshot->flags, HashControl::kSupportedFlags);
  ASSERT_EQ(snapshot->key.size(), 40U);
  EXPECT_EQ(snapshot->key.front(), 1);
  EXPECT_EQ(snapshot->key.back(), 40);
  const std::vector<std::uint32_t> expected_mapping = {0, 0, 3, 2, 1, 0, 0, 0};
  EXPECT_EQ(snapshot->mapping, expected_mapping);
}

TEST_F(HashControlTest, SnapshotsAreImmutableAndSwappedWhole) {
  control_ = std::make_unique<HashControl>(*grants_, 1, 2, std::make_shared<FlowSteering>());
  const auto before = control_->snapshot();
  EXPECT_FALSE(before->toeplitz);
  EXPECT_EQ(
      send(XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM, XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ).status,
      XEN_NETIF_CTRL_STATUS_SUCCESS);
  // A reader holding the old snapshot keeps a consistent view.
  EXPECT_FALSE(before->toeplitz);
  EXPECT_TRUE(control_->snapshot()->toeplitz);
  // A zero-size key clears the key (netif.h).
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 0, 0).status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_TRUE(control_->snapshot()->key.empty());
}

}  // namespace
}  // namespace vifd::backend::testing
