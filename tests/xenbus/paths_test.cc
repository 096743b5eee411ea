#include "common/xenbus/paths.h"

#include <gtest/gtest.h>

#include "common/xenbus/keys.h"

namespace vifd::xenbus {
namespace {

TEST(XenbusPaths, BuildLibxlLayout) {
  const VifId id{7, 2};
  EXPECT_EQ(domain_path(7), "/local/domain/7");
  EXPECT_EQ(backend_vif_root(0), "/local/domain/0/backend/vif");
  EXPECT_EQ(backend_path(3, id), "/local/domain/3/backend/vif/7/2");
  EXPECT_EQ(frontend_vif_root(7), "/local/domain/7/device/vif");
  EXPECT_EQ(frontend_path(id), "/local/domain/7/device/vif/2");
  EXPECT_EQ(frontend_error_path(id), "/local/domain/7/error/device/vif/2/error");
  EXPECT_EQ(libxl_path(id), "/libxl/7/device/vif/2");
  EXPECT_EQ(join("/a/b", "c"), "/a/b/c");
  EXPECT_EQ(tap_name(id), "vif7.2");
}

TEST(XenbusPaths, ParseBackendPathAcceptsTheDeviceAndBelow) {
  EXPECT_EQ(parse_backend_path(0, "/local/domain/0/backend/vif/7/2"), (VifId{7, 2}));
  EXPECT_EQ(parse_backend_path(0, "/local/domain/0/backend/vif/7/2/state"), (VifId{7, 2}));
  EXPECT_EQ(parse_backend_path(4, "/local/domain/4/backend/vif/0/65535"), (VifId{0, 65535}));
}

TEST(XenbusPaths, ParseBackendPathRejectsEverythingElse) {
  for (const char* path : {
           "/local/domain/0/backend/vif",          // the root itself
           "/local/domain/0/backend/vif/7",        // no devid
           "/local/domain/0/backend/vif/7/",       // empty devid
           "/local/domain/0/backend/vif/07/2",     // not canonical
           "/local/domain/0/backend/vif/7/+2",     // sign
           "/local/domain/0/backend/vif/7/65536",  // devid out of range
           "/local/domain/0/backend/vif/32752/0",  // DOMID_SELF and above
           "/local/domain/0/backend/vif/x/0",      // not a number
           "/local/domain/1/backend/vif/7/2",      // another backend
           "/local/domain/0/backend/vbd/7/2",      // another device class
       }) {
    EXPECT_EQ(parse_backend_path(0, path), std::nullopt) << path;
  }
}

TEST(XenbusPaths, DomainOf) {
  EXPECT_EQ(domain_of("/local/domain/12/backend/vif/1/0"), platform::DomId{12});
  EXPECT_EQ(domain_of("/local/domain/0"), platform::DomId{0});
  EXPECT_EQ(domain_of("/local/domain/012"), std::nullopt);
  EXPECT_EQ(domain_of("/local/domainx/1"), std::nullopt);
  EXPECT_EQ(domain_of("/libxl/1/device/vif/0"), std::nullopt);
}

TEST(XenbusKeys, QueueKeysAreFlatForOneQueue) {
  EXPECT_EQ(key::queue_key(0, 1, key::kTxRingRef), "tx-ring-ref");
  EXPECT_EQ(key::queue_key(0, 4, key::kTxRingRef), "queue-0/tx-ring-ref");
  EXPECT_EQ(key::queue_key(3, 4, key::kEventChannelRx), "queue-3/event-channel-rx");
  EXPECT_EQ(key::queue_prefix(1, 2), "queue-1/");
  EXPECT_EQ(key::queue_prefix(0, 1), "");
}

}  // namespace
}  // namespace vifd::xenbus
