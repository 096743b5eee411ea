// Grant map/unmap, grant sharing and batched grant copy of the simulator:
// every GNTST_* path, deferred free, destroyed domains, counters.
#include <cstring>
#include <vector>

#include "common/platform/error.h"
#include "common/platform/sim/sim_platform.h"
#include "tests/sim/sim_test_support.h"

namespace vifd::sim::testing {
namespace {

using platform::DomId;
using platform::GrantCopySegment;
using platform::GrantRef;
using platform::kPageSize;
using platform::PlatformError;

std::string map_error(platform::GrantTable& table, DomId domid, GrantRef ref, bool writable) {
  try {
    const DomId domids[] = {domid};
    const GrantRef refs[] = {ref};
    void* addr = table.map(domids, refs, writable);
    table.unmap(addr, 1);
  } catch (const PlatformError& error) {
    return error.what();
  }
  return "mapped";
}

using GrantMapTest = SimHostTest;

TEST_F(GrantMapTest, MappedPagesAreSharedBothWays) {
  auto dom1 = join(1);
  auto dom0 = join(0);
  auto share = dom1->open_grant_share();
  std::vector<GrantRef> refs(3);
  auto* shared_pages = static_cast<char*>(share->share(0, refs, true));
  for (std::size_t i = 0; i < refs.size(); ++i) {
    EXPECT_GE(refs[i], 8U) << "refs 0..7 are reserved";
    EXPECT_EQ(shared_pages[i * kPageSize], 0) << "shared pages start zeroed";
    std::snprintf(shared_pages + i * kPageSize, 32, "page %zu", i);
  }
  auto table = dom0->open_grant_table();
  const std::vector<DomId> domids(refs.size(), 1);
  auto* mapped = static_cast<char*>(table->map(domids, refs, true));
  for (std::size_t i = 0; i < refs.size(); ++i) {
    EXPECT_EQ(std::string(mapped + i * kPageSize), "page " + std::to_string(i));
  }
  std::strcpy(mapped + kPageSize + 100, "from dom0");
  EXPECT_STREQ(shared_pages + kPageSize + 100, "from dom0");
  EXPECT_EQ(active_word(1, refs[0]), 1U);
  table->unmap(mapped, refs.size());
  EXPECT_EQ(active_word(1, refs[0]), 0U);
  share->unshare(shared_pages, refs.size());

  const HypercallCounters counters = read_counters(dir_, 0);
  EXPECT_EQ(counters.grant_map_calls, 1U);
  EXPECT_EQ(counters.grant_map_pages, 3U);
  EXPECT_EQ(counters.grant_unmap_calls, 1U);
  EXPECT_EQ(counters.grant_unmap_pages, 3U);
}

TEST_F(GrantMapTest, EveryRefusalNamesDomainRefAndStatus) {
  auto dom1 = join(1);
  auto share = dom1->open_grant_share();
  GrantRef to_dom2[1];
  GrantRef readonly_to_dom0[1];
  void* a = share->share(2, to_dom2, true);
  void* b = share->share(0, readonly_to_dom0, false);
  auto table = join(0)->open_grant_table();

  EXPECT_NE(map_error(*table, 7, 8, false).find("domain 7 ref 8"), std::string::npos);
  EXPECT_NE(map_error(*table, 7, 8, false).find("GNTST_bad_domain"), std::string::npos);
  EXPECT_NE(map_error(*table, 1, 40000, false).find("GNTST_bad_gntref"), std::string::npos);
  // Xen's _set_status_v1 answers GNTST_general_error for a grant to another
  // domain, an unused entry and a write map of a read-only grant.
  EXPECT_NE(map_error(*table, 1, to_dom2[0], false).find("GNTST_general_error"), std::string::npos);
  EXPECT_NE(map_error(*table, 1, 5000, false).find("GNTST_general_error"), std::string::npos);
  EXPECT_NE(map_error(*table, 1, readonly_to_dom0[0], true).find("GNTST_general_error"),
            std::string::npos);
  EXPECT_EQ(map_error(*table, 1, readonly_to_dom0[0], false), "mapped");
  share->unshare(a, 1);
  share->unshare(b, 1);
}

TEST_F(GrantMapTest, FailedBatchLeavesNothingPinned) {
  auto share = join(1)->open_grant_share();
  GrantRef refs[2];
  void* pages = share->share(0, refs, true);
  auto table = join(0)->open_grant_table();
  const DomId domids[] = {1, 1, 1};
  const GrantRef batch[] = {refs[0], refs[1], 31000};
  EXPECT_THROW(table->map(domids, batch, true), PlatformError);
  EXPECT_EQ(active_word(1, refs[0]), 0U);
  EXPECT_EQ(active_word(1, refs[1]), 0U);
  EXPECT_EQ(read_counters(dir_, 0).grant_map_calls, 1U) << "one call for the whole batch";
  share->unshare(pages, 2);
}

TEST_F(GrantMapTest, UnshareWhileMappedFreesOnLastUnmap) {
  auto share = join(1)->open_grant_share();
  GrantRef ref[1];
  auto* page = static_cast<char*>(share->share(0, ref, true));
  std::strcpy(page, "still here");
  const std::uint32_t frame = granted_frame(1, ref[0]);
  auto table = join(0)->open_grant_table();
  const DomId domid[] = {1};
  auto* mapped = static_cast<char*>(table->map(domid, ref, false));

  share->unshare(page, 1);
  EXPECT_TRUE(page_in_use(1, frame)) << "a mapped page outlives its grant";
  EXPECT_EQ(active_word(1, ref[0]), detail::kActiveEndRequested | 1U);
  EXPECT_STREQ(mapped, "still here");
  EXPECT_NE(map_error(*table, 1, ref[0], false).find("GNTST_general_error"), std::string::npos)
      << "an ended grant takes no new maps";

  table->unmap(mapped, 1);
  EXPECT_FALSE(page_in_use(1, frame)) << "the last unmap frees the page";
  EXPECT_EQ(active_word(1, ref[0]), 0U);
}

TEST_F(GrantMapTest, UnshareUnmappedFreesAtOnce) {
  auto share = join(1)->open_grant_share();
  GrantRef ref[1];
  void* page = share->share(0, ref, true);
  const std::uint32_t frame = granted_frame(1, ref[0]);
  EXPECT_TRUE(page_in_use(1, frame));
  share->unshare(page, 1);
  EXPECT_FALSE(page_in_use(1, frame));
}

TEST_F(GrantMapTest, BadRangesAreRefused) {
  auto share = join(1)->open_grant_share();
  auto table = join(0)->open_grant_table();
  GrantRef ref[2];
  void* pages = share->share(0, ref, true);
  const DomId domids[] = {1, 1};
  void* mapped = table->map(domids, ref, true);
  EXPECT_THROW(table->unmap(mapped, 1), PlatformError) << "count must match the mapping";
  EXPECT_THROW(table->unmap(&ref, 2), PlatformError);
  EXPECT_THROW(share->unshare(pages, 3), PlatformError);
  EXPECT_THROW(table->map(std::span<const DomId>(domids, 1), ref, true), PlatformError)
      << "domids and refs must pair up";
  table->unmap(mapped, 2);
  share->unshare(pages, 2);
}

TEST_F(GrantMapTest, DestroyedDomainIsAZombie) {
  auto share = join(1)->open_grant_share();
  GrantRef ref[1];
  auto* page = static_cast<char*>(share->share(0, ref, true));
  std::strcpy(page, "last words");
  auto table = join(0)->open_grant_table();
  const DomId domid[] = {1};
  auto* mapped = static_cast<char*>(table->map(domid, ref, false));

  destroy_domain(dir_, 1);
  EXPECT_STREQ(mapped, "last words") << "pages mapped before stay readable";
  EXPECT_NE(map_error(*table, 1, ref[0], false).find("GNTST_bad_domain"), std::string::npos);
  char local[16] = {};
  GrantCopySegment segment{};
  segment.source.foreign = {ref[0], 0, 1};
  segment.dest.virt = local;
  segment.len = 4;
  segment.flags = platform::kCopySourceGref;
  EXPECT_EQ(table->copy(std::span(&segment, 1)), 0);
  EXPECT_EQ(segment.status, platform::kGntstBadDomain);
  table->unmap(mapped, 1);
  EXPECT_THROW(join(1), PlatformError);
  EXPECT_THROW(create_domain(dir_, 2), std::runtime_error) << "domain 2 exists";

  // A new incarnation of domid 1 starts empty; cached views notice.
  create_domain(dir_, 1);
  EXPECT_NE(map_error(*table, 1, ref[0], false).find("GNTST_general_error"), std::string::npos);
  auto share2 = join(1)->open_grant_share();
  GrantRef fresh[1];
  auto* fresh_page = static_cast<char*>(share2->share(0, fresh, true));
  std::strcpy(fresh_page, "reborn");
  segment.source.foreign = {fresh[0], 0, 1};
  segment.len = 7;
  EXPECT_EQ(table->copy(std::span(&segment, 1)), 0);
  EXPECT_EQ(segment.status, platform::kGntstOkay);
  EXPECT_STREQ(local, "reborn");
  share2->unshare(fresh_page, 1);
}

TEST_F(GrantMapTest, HostAndDomainLifecycle) {
  EXPECT_EQ(list_domains(dir_), (std::vector<DomId>{0, 1, 2}));
  EXPECT_THROW(create_domain(dir_, 1), std::runtime_error);
  EXPECT_THROW(create_domain(dir_, 0), std::runtime_error);
  // DOMID_FIRST_RESERVED (0x7FF0) and above are not guest domids.
  EXPECT_THROW(create_domain(dir_, 32752), std::runtime_error);
  EXPECT_THROW(destroy_domain(dir_, 0), std::runtime_error);
  EXPECT_THROW(destroy_domain(dir_, 9), std::runtime_error);
  EXPECT_THROW(create_host(dir_), PlatformError) << "a directory holds one host";
  create_domain(dir_, 32751);
  destroy_domain(dir_, 2);
  EXPECT_EQ(list_domains(dir_), (std::vector<DomId>{0, 1, 32751}));
  EXPECT_THROW(join(2), PlatformError);
  EXPECT_THROW(platform::make_sim_platform("/nonexistent/vsim", 0), PlatformError);

  const HostPaths paths{dir_};
  EXPECT_EQ(paths.domain_xenstored_socket(5), dir_ / "xs" / "5.sock");
  EXPECT_EQ(join(0)->xenstore_socket(), paths.xenstored_socket().native());
  EXPECT_EQ(join(1)->xenstore_socket(), paths.domain_xenstored_socket(1).native());
  EXPECT_EQ(join(1)->name(), "sim");
  EXPECT_EQ(join(1)->self_domid(), 1);
}

TEST(SimHostPaths, OverlongDirectoryIsRefusedNamingThePath) {
  const std::filesystem::path dir = "/tmp/" + std::string(120, 'x');
  try {
    create_host(dir);
    FAIL() << "created a host whose sockets cannot be bound";
  } catch (const PlatformError& error) {
    EXPECT_NE(std::string(error.what()).find(dir.native()), std::string::npos);
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

using GrantCopyTest = SimHostTest;

GrantCopySegment from_grant(GrantRef ref, std::uint16_t offset, DomId domid, void* dest,
                            std::uint16_t len) {
  GrantCopySegment segment{};
  segment.source.foreign = {ref, offset, domid};
  segment.dest.virt = dest;
  segment.len = len;
  segment.flags = platform::kCopySourceGref;
  return segment;
}

GrantCopySegment to_grant(const void* source, GrantRef ref, std::uint16_t offset, DomId domid,
                          std::uint16_t len) {
  GrantCopySegment segment{};
  segment.source.virt = const_cast<void*>(source);
  segment.dest.foreign = {ref, offset, domid};
  segment.len = len;
  segment.flags = platform::kCopyDestGref;
  return segment;
}

TEST_F(GrantCopyTest, EachSegmentGetsItsOwnStatus) {
  auto share = join(1)->open_grant_share();
  GrantRef rw[1];
  GrantRef ro[1];
  GrantRef other[1];
  auto* rw_page = static_cast<char*>(share->share(0, rw, true));
  auto* ro_page = static_cast<char*>(share->share(0, ro, false));
  void* other_page = share->share(2, other, true);
  std::strcpy(ro_page + 10, "read me");
  auto table = join(0)->open_grant_table();

  char out[64] = {};
  const char in[] = "written by dom0";
  std::vector<GrantCopySegment> batch = {
      from_grant(ro[0], 10, 1, out, 8),          // okay
      to_grant(in, rw[0], 4000, 1, sizeof(in)),  // okay: 4000 + 16 <= 4096
      from_grant(rw[0], 0, 9, out, 4),           // no domain 9
      from_grant(40000, 0, 1, out, 4),           // ref out of range
      from_grant(other[0], 0, 1, out, 4),        // granted to domain 2
      to_grant(in, ro[0], 0, 1, 4),              // write through a read-only grant
      from_grant(rw[0], 4090, 1, out, 7),        // crosses the page end
      to_grant(in, rw[0], 4096, 1, 1),           // starts at the page end
      from_grant(rw[0], 4096, 1, out, 0),        // empty: fine
  };
  ASSERT_EQ(table->copy(batch), 0);
  EXPECT_EQ(batch[0].status, platform::kGntstOkay);
  EXPECT_STREQ(out, "read me");
  EXPECT_EQ(batch[1].status, platform::kGntstOkay);
  EXPECT_STREQ(rw_page + 4000, "written by dom0");
  EXPECT_EQ(batch[2].status, platform::kGntstBadDomain);
  EXPECT_EQ(batch[3].status, platform::kGntstBadGntref);
  EXPECT_EQ(batch[4].status, platform::kGntstGeneralError);
  EXPECT_EQ(batch[5].status, platform::kGntstGeneralError);
  EXPECT_EQ(batch[6].status, platform::kGntstBadCopyArg);
  EXPECT_EQ(batch[7].status, platform::kGntstBadCopyArg);
  EXPECT_EQ(batch[8].status, platform::kGntstOkay);
  EXPECT_EQ(active_word(1, rw[0]), 0U) << "copies pin only while copying";

  const HypercallCounters counters = read_counters(dir_, 0);
  EXPECT_EQ(counters.grant_copy_calls, 1U);
  EXPECT_EQ(counters.grant_copy_segments, batch.size());
  EXPECT_EQ(counters.grant_copy_bytes, 8U + sizeof(in));
  EXPECT_EQ(read_counters(dir_, 1).grant_copy_calls, 0U) << "counted against the caller";
  share->unshare(rw_page, 1);
  share->unshare(ro_page, 1);
  share->unshare(other_page, 1);
}

TEST_F(GrantCopyTest, ForeignToForeignNeedsNoDom0Buffer) {
  auto sender = join(1)->open_grant_share();
  auto receiver = join(2)->open_grant_share();
  GrantRef tx[1];
  GrantRef rx[1];
  auto* tx_page = static_cast<char*>(sender->share(0, tx, false));
  auto* rx_page = static_cast<char*>(receiver->share(0, rx, true));
  std::strcpy(tx_page + 100, "frame from domU 1");
  auto table = join(0)->open_grant_table();

  GrantCopySegment segment{};
  segment.source.foreign = {tx[0], 100, 1};
  segment.dest.foreign = {rx[0], 2000, 2};
  segment.len = 18;
  segment.flags = platform::kCopySourceGref | platform::kCopyDestGref;
  ASSERT_EQ(table->copy(std::span(&segment, 1)), 0);
  EXPECT_EQ(segment.status, platform::kGntstOkay);
  EXPECT_STREQ(rx_page + 2000, "frame from domU 1");

  // The destination must be writable: swap the roles.
  std::swap(segment.source, segment.dest);
  segment.source.foreign.domid = 2;
  ASSERT_EQ(table->copy(std::span(&segment, 1)), 0);
  EXPECT_EQ(segment.status, platform::kGntstGeneralError);
  sender->unshare(tx_page, 1);
  receiver->unshare(rx_page, 1);
}

TEST_F(GrantCopyTest, TwoDomainsInOneProcessAreIndependent) {
  auto dom1 = join(1);
  auto dom2 = join(2);
  auto share1 = dom1->open_grant_share();
  GrantRef to_dom2[1];
  auto* page = static_cast<char*>(share1->share(2, to_dom2, false));
  std::strcpy(page, "hello dom2");
  // dom2 is the grantee here; dom0 is not.
  char out[16] = {};
  auto segment = from_grant(to_dom2[0], 0, 1, out, 11);
  ASSERT_EQ(dom2->open_grant_table()->copy(std::span(&segment, 1)), 0);
  EXPECT_EQ(segment.status, platform::kGntstOkay);
  EXPECT_STREQ(out, "hello dom2");
  ASSERT_EQ(join(0)->open_grant_table()->copy(std::span(&segment, 1)), 0);
  EXPECT_EQ(segment.status, platform::kGntstGeneralError);
  EXPECT_EQ(read_counters(dir_, 2).grant_copy_calls, 1U);
  EXPECT_EQ(read_counters(dir_, 0).grant_copy_calls, 1U);
  share1->unshare(page, 1);
}

}  // namespace
}  // namespace vifd::sim::testing
