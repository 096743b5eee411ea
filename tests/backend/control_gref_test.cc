// The static grant mapping messages (GET_GREF_MAPPING_SIZE, ADD, DEL) as
// GrefControl answers them: pages mapped once and published to the queue,
// DEL statuses written back, pages unmapped only after the queue let go, and
// everything unmapped when the ring goes.
#include <gtest/gtest.h>

#include <cstring>

#include "tests/backend/gref_fixture.h"

namespace vifd::backend::testing {
namespace {

TEST_F(GrefControlTest, AddMapsEachPageOnceAndPublishesItToTheQueue) {
  start(2);
  const auto size = send(XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE, 1);
  EXPECT_EQ(size.status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(size.data, GrefControl::kMaxMappingsPerQueue);

  const auto before = dom0();
  const auto refs = data_refs(0, 8);
  EXPECT_EQ(add(1, refs).status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(add(0, data_refs(8, 2), XEN_NETIF_CTRLF_GREF_readonly).status,
            XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(control_->mapped(), 10U);
  EXPECT_EQ(dom0().grant_map_pages - before.grant_map_pages, 10U);

  const GrefTable* table = handoffs_[1]->latest();
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->size(), 8U);
  std::memcpy(data_page(3), "static", 6);
  const GrefEntry* entry = table->find(refs[3]);
  ASSERT_NE(entry, nullptr);
  EXPECT_TRUE(entry->writable);
  EXPECT_EQ(std::memcmp(entry->page, "static", 6), 0) << "vifd sees the frontend's page";
  EXPECT_EQ(table->find(data_refs_[8]), nullptr) << "queue 0's pages are not queue 1's";
  const GrefEntry* readonly = handoffs_[0]->latest()->find(data_refs_[8]);
  ASSERT_NE(readonly, nullptr);
  EXPECT_FALSE(readonly->writable);
}

TEST_F(GrefControlTest, DelAnswersPerEntryAndUnmapsOnceTheQueueLetGo) {
  start(1);
  ASSERT_EQ(add(0, data_refs(0, 4)).status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  queue_acknowledges(0);
  const auto before = dom0();
  // Two mapped, one never added, one mapped.
  const auto response = del(0, {data_refs_[0], data_refs_[1], data_refs_[9], data_refs_[3]});
  EXPECT_EQ(response.status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(response.data, 3U);
  EXPECT_EQ(list()[0].status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(list()[1].status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(list()[2].status, XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(list()[3].status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(control_->mapped(), 1U);
  EXPECT_EQ(handoffs_[0]->latest()->size(), 1U);

  // The list was mapped as one range: its deleted pages stay mapped (and
  // held) while one of them is still in use, acknowledged or not.
  EXPECT_TRUE(control_->reclaim()) << "the old table waits for the queue";
  queue_acknowledges(0);
  EXPECT_FALSE(control_->reclaim());
  EXPECT_EQ(control_->retiring(), 3U);
  EXPECT_EQ(dom0().grant_unmap_pages, before.grant_unmap_pages);

  // The last one goes: the range is unmapped whole once the queue took the
  // table without it.
  ASSERT_EQ(del(0, {data_refs_[2]}).data, 1U);
  EXPECT_TRUE(control_->reclaim());
  EXPECT_EQ(dom0().grant_unmap_pages, before.grant_unmap_pages);
  queue_acknowledges(0);
  EXPECT_FALSE(control_->reclaim());
  EXPECT_EQ(control_->retiring(), 0U);
  EXPECT_EQ(control_->ranges(), 0U);
  EXPECT_EQ(dom0().grant_unmap_pages - before.grant_unmap_pages, 4U);
}

TEST_F(GrefControlTest, EachListIsOneMappingPerAccessMode) {
  start(1);
  const auto before = dom0();
  // Eight writable pages: one grant-device mapping, one VMA.
  ASSERT_EQ(add(0, data_refs(0, 8)).status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(dom0().grant_map_calls - before.grant_map_calls, 1U);
  EXPECT_EQ(control_->ranges(), 1U);
  // A list mixing writable and read-only entries: one mapping for each.
  for (std::size_t i = 0; i < 4; ++i) {
    list()[i] = {data_refs_[8 + i],
                 static_cast<std::uint16_t>(i % 2 == 0 ? 0 : XEN_NETIF_CTRLF_GREF_readonly),
                 0xFFFF};
  }
  ASSERT_EQ(send(XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING, 0, list_ref_, 4).status,
            XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(dom0().grant_map_calls - before.grant_map_calls, 3U);
  EXPECT_EQ(control_->ranges(), 3U);
  EXPECT_EQ(control_->mapped(), 12U);
  // Every page is where the table says, with its own access.
  const GrefTable* table = handoffs_[0]->latest();
  for (std::size_t i = 0; i < 12; ++i) {
    const GrefEntry* entry = table->find(data_refs_[i]);
    ASSERT_NE(entry, nullptr) << i;
    std::memcpy(data_page(i), &i, sizeof(i));
    EXPECT_EQ(std::memcmp(entry->page, &i, sizeof(i)), 0) << "page " << i;
    EXPECT_EQ(entry->writable, i < 8 || i % 2 == 0) << "page " << i;
  }
}

TEST_F(GrefControlTest, EveryPageIsUnmappedWhenTheRingGoes) {
  const auto before = dom0();
  start(2);
  ASSERT_EQ(add(0, data_refs(0, 5)).status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  ASSERT_EQ(add(1, data_refs(5, 5)).status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  ASSERT_EQ(del(1, data_refs(5, 2)).status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  control_.reset();
  const auto after = dom0();
  EXPECT_EQ(after.grant_map_pages - before.grant_map_pages, 10U);
  EXPECT_EQ(after.grant_unmap_pages - before.grant_unmap_pages, 10U);
  EXPECT_EQ(handoffs_[0]->latest(), nullptr);
}

}  // namespace
}  // namespace vifd::backend::testing
