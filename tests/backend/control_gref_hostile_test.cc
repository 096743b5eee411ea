// Hostile use of the static grant mapping messages: more pages than the
// bound, duplicates, refs that cannot be mapped, malformed requests, a list
// rewritten while vifd reads it, a mapped grant revoked, DEL of a page the
// queue still uses. Each is refused with INVALID_PARAMETER (or an entry
// status) and counted; nothing stays half mapped.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <set>
#include <thread>

#include "tests/backend/gref_fixture.h"

namespace vifd::backend::testing {
namespace {

TEST_F(GrefControlTest, MoreThanTheBoundIsRefusedEvenInAddDeleteLoops) {
  start(1);
  std::uint64_t refused = 0;
  // Add and delete one page in a loop while the queue never lets go: each
  // ADD is a mapping of its own (a VMA of vifd's), so after
  // kMaxRangesPerQueue of them ADD is refused, pages or not.
  for (std::uint32_t i = 0; i < GrefControl::kMaxRangesPerQueue + 8; ++i) {
    if (add(0, data_refs(0, 1)).status != XEN_NETIF_CTRL_STATUS_SUCCESS) {
      ++refused;
      continue;
    }
    ASSERT_EQ(del(0, data_refs(0, 1)).data, 1U);
  }
  EXPECT_EQ(refused, 8U);
  EXPECT_EQ(control_->refused(GrefRefusal::kRangeLimit), 8U);
  EXPECT_EQ(control_->ranges(), GrefControl::kMaxRangesPerQueue);
  EXPECT_EQ(control_->retiring(), GrefControl::kMaxRangesPerQueue);
  // Once the queue takes the newest table, everything is unmapped.
  queue_acknowledges(0);
  EXPECT_FALSE(control_->reclaim());
  EXPECT_EQ(control_->retiring(), 0U);
  EXPECT_EQ(control_->ranges(), 0U);
  EXPECT_EQ(add(0, data_refs(0, 4)).status, XEN_NETIF_CTRL_STATUS_SUCCESS);
}

TEST_F(GrefControlTest, PagesDeletedFromALiveRangeStayHeld) {
  start(1);
  // A frontend cannot free mapping budget page by page: deleting all but
  // one page of a list leaves its whole range mapped and counted.
  ASSERT_EQ(add(0, data_refs(0, 12)).status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  ASSERT_EQ(del(0, data_refs(0, 11)).data, 11U);
  queue_acknowledges(0);
  control_->reclaim();
  EXPECT_EQ(control_->mapped(), 1U);
  EXPECT_EQ(control_->retiring(), 11U);
  EXPECT_EQ(control_->ranges(), 1U);
}

TEST_F(GrefControlTest, DuplicatesAreRefusedAndNothingOfTheRequestIsMapped) {
  start(1);
  ASSERT_EQ(add(0, data_refs(0, 2)).status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  const auto before = dom0();
  EXPECT_EQ(add(0, {data_refs_[4], data_refs_[5], data_refs_[4]}).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER)
      << "a ref twice in one list";
  EXPECT_EQ(add(0, {data_refs_[6], data_refs_[1]}).status, XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER)
      << "a ref already mapped";
  EXPECT_EQ(control_->refused(GrefRefusal::kDuplicate), 2U);
  EXPECT_EQ(control_->mapped(), 2U);
  EXPECT_EQ(dom0().grant_map_pages, before.grant_map_pages) << "refused before mapping anything";
}

TEST_F(GrefControlTest, ABadRefInTheListUnmapsWhatTheRequestMapped) {
  start(1);
  const auto before = dom0();
  // The fourth ref was never granted to dom0.
  EXPECT_EQ(add(0, {data_refs_[0], data_refs_[1], data_refs_[2], 7777, data_refs_[3]}).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(control_->refused(GrefRefusal::kMapFailed), 1U);
  EXPECT_EQ(control_->mapped(), 0U);
  const auto after = dom0();
  EXPECT_EQ(after.grant_map_calls - before.grant_map_calls, 1U) << "one mapping for the list";
  EXPECT_EQ(control_->ranges(), 0U) << "which failed whole";
  EXPECT_EQ(handoffs_[0]->latest()->size(), 0U) << "no table published";
  // The frontend's next, valid request works.
  EXPECT_EQ(add(0, data_refs(0, 4)).status, XEN_NETIF_CTRL_STATUS_SUCCESS);
}

TEST_F(GrefControlTest, MalformedRequestsAreRefusedAndCounted) {
  start(2);
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE, 2).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
  write_list(data_refs(0, 1));
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING, 7, list_ref_, 1).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING, 0, list_ref_, 0).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING, 0, list_ref_, 513).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(send(XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING, 0, 9999, 1).status,
            XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER)
      << "a list page that is not granted";
  EXPECT_EQ(add(0, data_refs(0, 1), 0x8).status, XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER)
      << "unknown flags";
  EXPECT_EQ(control_->refused(GrefRefusal::kBadQueue), 2U);
  EXPECT_EQ(control_->refused(GrefRefusal::kBadList), 3U);
  EXPECT_EQ(control_->refused(GrefRefusal::kBadFlags), 1U);
  EXPECT_EQ(control_->mapped(), 0U);
}

TEST_F(GrefControlTest, AListRewrittenWhileReadIsTakenAsOneCopy) {
  start(1);
  // The frontend flips each entry of its list between two disjoint sets of
  // pages while vifd serves ADD and DEL of it. A copy may catch the page
  // half rewritten; what matters is that vifd maps exactly what its one
  // copy says (one of the two refs of each entry, or a torn value it then
  // fails to map and refuses whole), and that it deletes what it mapped.
  const auto first = data_refs(0, 8);
  const auto second = data_refs(8, 8);
  std::atomic<bool> stop{false};
  std::thread flipper;
  const auto start_flipping = [&] {
    write_list(first);
    stop = false;
    flipper = std::thread([&] {
      std::uint32_t turn = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const auto& refs = (++turn & 1) != 0 ? first : second;
        for (std::size_t i = 0; i < refs.size(); ++i) {
          // Volatile stores: a racing writer, as a guest would be.
          auto* entry = reinterpret_cast<volatile std::uint32_t*>(&list()[i]);
          *entry = refs[i];
        }
      }
    });
  };
  const auto stop_flipping = [&] {
    stop = true;
    flipper.join();
  };
  int added = 0;
  start_flipping();
  for (int round = 0; round < 200; ++round) {
    const auto response = send(XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING, 0, list_ref_, 8);
    if (response.status != XEN_NETIF_CTRL_STATUS_SUCCESS) {
      // A copy that caught a ref half written names a page that is not
      // granted to us: refused whole, nothing mapped.
      EXPECT_EQ(control_->mapped(), 0U);
      continue;
    }
    ++added;
    const GrefTable* table = handoffs_[0]->latest();
    EXPECT_EQ(table->size(), 8U);
    std::vector<platform::GrantRef> held;
    for (std::size_t i = 0; i < 8; ++i) {
      const bool a = table->find(first[i]) != nullptr;
      const bool b = table->find(second[i]) != nullptr;
      EXPECT_NE(a, b) << "entry " << i << " maps exactly one of its two refs";
      held.push_back(a ? first[i] : second[i]);
    }
    stop_flipping();
    EXPECT_EQ(del(0, held).data, 8U);
    queue_acknowledges(0);
    control_->reclaim();
    start_flipping();
  }
  stop_flipping();
  EXPECT_GT(added, 0) << "refused: map " << control_->refused(GrefRefusal::kMapFailed) << " dup "
                      << control_->refused(GrefRefusal::kDuplicate) << " list "
                      << control_->refused(GrefRefusal::kBadList);
  EXPECT_EQ(control_->refused_total() - control_->refused(GrefRefusal::kMapFailed) -
                control_->refused(GrefRefusal::kDuplicate),
            0U);
  EXPECT_EQ(control_->mapped(), 0U);
  EXPECT_EQ(control_->retiring(), 0U);
}

TEST_F(GrefControlTest, AMappedGrantRevokedByItsFrontendStaysValidUntilDel) {
  start(1);
  // A page of its own the frontend will revoke.
  platform::GrantRef ref = 0;
  void* page = share_->share(0, std::span(&ref, 1), true);
  ASSERT_EQ(add(0, {ref}).status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  const GrefEntry* entry = handoffs_[0]->latest()->find(ref);
  ASSERT_NE(entry, nullptr);
  // Revoked while mapped: as on Xen (and with gntalloc), the page is only
  // released once vifd unmaps it, so vifd's mapping keeps pointing at
  // memory nobody else was given.
  share_->unshare(page, 1);
  std::memset(entry->page, 0x5A, platform::kPageSize);
  EXPECT_EQ(entry->page[100], 0x5A);
  // The revoked ref can no longer be mapped anew...
  EXPECT_EQ(add(0, {ref, data_refs_[0]}).status, XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
  // ...and DEL releases it.
  EXPECT_EQ(del(0, {ref}).data, 1U);
  queue_acknowledges(0);
  EXPECT_FALSE(control_->reclaim());
  EXPECT_EQ(control_->mapped(), 0U);
}

}  // namespace
}  // namespace vifd::backend::testing
