// The pure xenstore core: permissions, quotas, transactions and watches as C
// xenstored applies them, without sockets.
#include "xenstore-tools/lib/xenstored/store.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "common/xenbus/keys.h"
#include "common/xenbus/paths.h"
#include "xenstore-tools/lib/xenstored/paths.h"

namespace vifd::xenstored {
namespace {

using xs::Access;
using xs::Perm;

const Caller kDom0{1, 0, true};
const Caller kDom5{2, 5, false};
const Caller kDom7{3, 7, false};
const Caller kDom0Other{4, 0, true};

class StoreTest : public ::testing::Test {
 protected:
  // The layout vif-sim create makes: domain_path(5) readable by 5, its
  // device directory owned by 5.
  void SetUp() override {
    ASSERT_EQ(store.write(kDom0, kNoTx, xenbus::domain_path(5) + "/name", "guest"), 0);
    ASSERT_EQ(store.set_perms(kDom0, kNoTx, xenbus::domain_path(5),
                              {{0, Access::kNone}, {5, Access::kRead}}),
              0);
    ASSERT_EQ(store.set_perms(kDom0, kNoTx, xenbus::domain_path(5) + "/name",
                              {{0, Access::kNone}, {5, Access::kRead}}),
              0);
    ASSERT_EQ(store.mkdir(kDom0, kNoTx, xenbus::domain_path(5) + "/device"), 0);
    ASSERT_EQ(
        store.set_perms(kDom0, kNoTx, xenbus::domain_path(5) + "/device", {{5, Access::kNone}}), 0);
    store.take_events();
  }

  std::vector<WatchEvent> events() { return store.take_events(); }

  Store store;
};

TEST(PathsTest, ValidatesLikeXenstored) {
  EXPECT_TRUE(canonicalize(0, "/a/b-c_d@e", false));
  EXPECT_FALSE(canonicalize(0, "", false));
  EXPECT_FALSE(canonicalize(0, "/a//b", false));
  EXPECT_FALSE(canonicalize(0, "/a/", false));
  EXPECT_FALSE(canonicalize(0, "/a b", false));
  EXPECT_FALSE(canonicalize(0, "/a.b", false));
  EXPECT_FALSE(canonicalize(0, "@introduceDomain", false));
  EXPECT_TRUE(canonicalize(0, "@introduceDomain", true));
  EXPECT_FALSE(canonicalize(0, "@other", true));
  EXPECT_FALSE(canonicalize(0, "/" + std::string(3072, 'a'), false));
  EXPECT_FALSE(canonicalize(0, std::string(2049, 'a'), false));
  auto relative = canonicalize(5, "device/vif", false);
  ASSERT_TRUE(relative);
  EXPECT_EQ(relative->absolute, xenbus::frontend_vif_root(5));
  EXPECT_TRUE(relative->relative);
  EXPECT_TRUE(is_under("/a/b", "/a"));
  EXPECT_FALSE(is_under("/ab", "/a"));
  EXPECT_TRUE(is_under("/x", "/"));
}

TEST(PermsTest, ParsesTheTextForm) {
  EXPECT_EQ(xs::parse_perm("r5"), (Perm{5, Access::kRead}));
  EXPECT_EQ(xs::parse_perm("b0"), (Perm{0, Access::kBoth}));
  EXPECT_FALSE(xs::parse_perm("x5"));
  EXPECT_FALSE(xs::parse_perm("r"));
  EXPECT_FALSE(xs::parse_perm("r5x"));
  EXPECT_FALSE(xs::parse_perm("r65536"));
  EXPECT_EQ(xs::format_perms({{0, Access::kNone}, {5, Access::kWrite}}), "n0 w5");
}

TEST_F(StoreTest, Dom0ReadsAndWritesEverything) {
  ASSERT_EQ(store.write(kDom0, kNoTx, "/tool/x", "1"), 0);
  auto value = store.read(kDom0, kNoTx, "/tool/x");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(value.value(), "1");
  EXPECT_EQ(store.read(kDom0, kNoTx, "/tool/missing").error(), ENOENT);
}

TEST_F(StoreTest, OtherPermissionAppliesToUnlistedDomains) {
  ASSERT_EQ(store.write(kDom0, kNoTx, "/public", "v"), 0);
  // Root is "n0": a new dom0 node inherits it, so domains cannot read it.
  EXPECT_EQ(store.read(kDom5, kNoTx, "/public").error(), EACCES);
  ASSERT_EQ(store.set_perms(kDom0, kNoTx, "/public", {{0, Access::kRead}}), 0);
  EXPECT_TRUE(store.read(kDom5, kNoTx, "/public").ok());
  EXPECT_EQ(store.write(kDom5, kNoTx, "/public", "x"), EACCES);
}

TEST_F(StoreTest, ExplicitEntryOverridesOther) {
  ASSERT_EQ(store.write(kDom0, kNoTx, "/shared", "v"), 0);
  ASSERT_EQ(store.set_perms(kDom0, kNoTx, "/shared", {{0, Access::kRead}, {7, Access::kNone}}), 0);
  EXPECT_TRUE(store.read(kDom5, kNoTx, "/shared").ok());
  EXPECT_EQ(store.read(kDom7, kNoTx, "/shared").error(), EACCES);
  ASSERT_EQ(store.set_perms(kDom0, kNoTx, "/shared", {{0, Access::kNone}, {7, Access::kWrite}}), 0);
  EXPECT_EQ(store.write(kDom7, kNoTx, "/shared", "w"), 0);
  EXPECT_EQ(store.read(kDom7, kNoTx, "/shared").error(), EACCES);
}

TEST_F(StoreTest, OwnerHasFullAccessWhateverTheEntries) {
  ASSERT_EQ(store.write(kDom5, kNoTx, "device/vif/0/state", "1"), 0);
  auto perms = store.get_perms(kDom0, kNoTx,
                               xenbus::join(xenbus::frontend_path({5, 0}), xenbus::key::kState));
  ASSERT_TRUE(perms.ok());
  // New node: parent's perms with the creating domain as owner.
  EXPECT_EQ(perms.value(), (std::vector<Perm>{{5, Access::kNone}}));
  EXPECT_EQ(store.read(kDom5, kNoTx, "device/vif/0/state").value(), "1");
  EXPECT_EQ(
      store.read(kDom7, kNoTx, xenbus::join(xenbus::frontend_path({5, 0}), xenbus::key::kState))
          .error(),
      EACCES);
}

TEST_F(StoreTest, Dom0CreatedNodesInheritTheOwner) {
  ASSERT_EQ(store.write(kDom0, kNoTx, xenbus::frontend_path({5, 0}) + "/x", "1"), 0);
  auto perms = store.get_perms(kDom0, kNoTx, xenbus::frontend_path({5, 0}) + "/x");
  ASSERT_TRUE(perms.ok());
  EXPECT_EQ(perms.value().front().domid, 5);
}

TEST_F(StoreTest, MissingNodeBelowUnreadableParentIsEacces) {
  EXPECT_EQ(store.read(kDom7, kNoTx, xenbus::domain_path(5) + "/nothing").error(), EACCES);
  EXPECT_EQ(store.read(kDom5, kNoTx, "nothing").error(), ENOENT);
  EXPECT_EQ(store.write(kDom5, kNoTx, "newdir/x", "1"), EACCES);  // home is read-only for 5
}

TEST_F(StoreTest, SetPermsOnlyByOwnerOrDom0) {
  ASSERT_EQ(store.write(kDom5, kNoTx, "device/mine", "1"), 0);
  EXPECT_EQ(store.set_perms(kDom5, kNoTx, "device/mine", {{5, Access::kRead}}), 0);
  EXPECT_EQ(store.set_perms(kDom5, kNoTx, "device/mine", {{7, Access::kRead}}), EPERM);
  EXPECT_EQ(store.set_perms(kDom5, kNoTx, "name", {{5, Access::kRead}}), EACCES);
  EXPECT_EQ(
      store.set_perms(kDom7, kNoTx, xenbus::domain_path(5) + "/device/mine", {{7, Access::kRead}}),
      EACCES);
  EXPECT_EQ(
      store.set_perms(kDom0, kNoTx, xenbus::domain_path(5) + "/device/mine", {{7, Access::kRead}}),
      0);
}

TEST_F(StoreTest, MkdirRmDirectory) {
  ASSERT_EQ(store.mkdir(kDom5, kNoTx, "device/a/b"), 0);
  EXPECT_EQ(store.mkdir(kDom5, kNoTx, "device/a/b"), 0);  // exists: fine
  ASSERT_EQ(store.write(kDom5, kNoTx, "device/a/c", "v"), 0);
  auto listing = store.directory(kDom5, kNoTx, "device/a");
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing.value().children, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(store.rm(kDom5, kNoTx, "device/a"), 0);
  EXPECT_EQ(store.read(kDom5, kNoTx, "device/a/c").error(), ENOENT);
  EXPECT_EQ(store.rm(kDom5, kNoTx, "device/a"), 0);         // gone, parent exists
  EXPECT_EQ(store.rm(kDom5, kNoTx, "device/x/y"), ENOENT);  // parent missing too
  EXPECT_EQ(store.rm(kDom0, kNoTx, "/"), EINVAL);
  EXPECT_EQ(store.rm(kDom5, kNoTx, "name"), EACCES);
}

TEST_F(StoreTest, EntryQuotaIsEnospcForDomainsOnly) {
  Store small(Quotas{.entries_per_domain = 3});
  ASSERT_EQ(small.mkdir(kDom0, kNoTx, xenbus::domain_path(5)), 0);
  ASSERT_EQ(small.set_perms(kDom0, kNoTx, xenbus::domain_path(5), {{5, Access::kNone}}), 0);
  // The home itself counts: it is owned by 5.
  EXPECT_EQ(small.write(kDom5, kNoTx, "a", "1"), 0);
  EXPECT_EQ(small.write(kDom5, kNoTx, "b", "1"), 0);
  EXPECT_EQ(small.write(kDom5, kNoTx, "c", "1"), ENOSPC);
  EXPECT_EQ(small.entries_owned_by(5), 3U);
  EXPECT_EQ(small.rm(kDom5, kNoTx, "b"), 0);
  EXPECT_EQ(small.write(kDom5, kNoTx, "c", "1"), 0);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(small.write(kDom0, kNoTx, "/d0/" + std::to_string(i), ""), 0);
}

TEST_F(StoreTest, NodeSizeQuotaCountsTheWholeRecord) {
  // 24-byte header + one 8-byte permission + the value must stay below 2048.
  EXPECT_EQ(store.write(kDom5, kNoTx, "device/big", std::string(2015, 'x')), 0);
  EXPECT_EQ(store.write(kDom5, kNoTx, "device/big", std::string(2016, 'x')), ENOSPC);
  EXPECT_EQ(store.read(kDom5, kNoTx, "device/big").value().size(), 2015U);
  EXPECT_EQ(store.write(kDom0, kNoTx, "/big", std::string(4000, 'x')), 0);
  // A refused create leaves no half-made parents behind.
  EXPECT_EQ(store.write(kDom5, kNoTx, "device/p/q", std::string(3000, 'x')), ENOSPC);
  EXPECT_EQ(store.read(kDom5, kNoTx, "device/p").error(), ENOENT);
  // Child names count towards the parent's record.
  const std::string long_name(200, 'n');
  int created = 0;
  while (store.mkdir(kDom5, kNoTx, "device/many/" + long_name + std::to_string(created)) == 0) {
    ++created;
  }
  EXPECT_GT(created, 5);
  EXPECT_LT(created, 12);
}

TEST_F(StoreTest, WatchAndTransactionQuotas) {
  Store small(Quotas{.watches_per_domain = 2, .transactions_per_connection = 1});
  EXPECT_EQ(small.watch(kDom5, "a", "t1"), 0);
  EXPECT_EQ(small.watch(kDom5, "a", "t1"), EEXIST);
  EXPECT_EQ(small.watch(kDom5, "b", "t2"), 0);
  EXPECT_EQ(small.watch(kDom5, "c", "t3"), E2BIG);
  EXPECT_EQ(small.watch(kDom0, "/c", "t3"), 0);
  ASSERT_TRUE(small.transaction_start(kDom5).ok());
  EXPECT_EQ(small.transaction_start(kDom5).error(), ENOSPC);
  EXPECT_TRUE(small.transaction_start(kDom0).ok());
  EXPECT_TRUE(small.transaction_start(kDom0).ok());
}

TEST_F(StoreTest, TransactionSeesItsOwnWritesAndCommits) {
  auto tx = store.transaction_start(kDom0);
  ASSERT_TRUE(tx.ok());
  ASSERT_EQ(store.write(kDom0, tx.value(), "/t/a", "1"), 0);
  EXPECT_EQ(store.read(kDom0, tx.value(), "/t/a").value(), "1");
  EXPECT_EQ(store.read(kDom0, kNoTx, "/t/a").error(), ENOENT);
  EXPECT_EQ(store.transaction_end(kDom0, tx.value(), true), 0);
  EXPECT_EQ(store.read(kDom0, kNoTx, "/t/a").value(), "1");
}

TEST_F(StoreTest, AbortDiscards) {
  auto tx = store.transaction_start(kDom0);
  ASSERT_EQ(store.write(kDom0, tx.value(), "/t/a", "1"), 0);
  EXPECT_EQ(store.transaction_end(kDom0, tx.value(), false), 0);
  EXPECT_EQ(store.read(kDom0, kNoTx, "/t/a").error(), ENOENT);
  EXPECT_EQ(store.transaction_end(kDom0, tx.value(), true), ENOENT);
}

TEST_F(StoreTest, ConflictingTransactionsGetEagain) {
  ASSERT_EQ(store.write(kDom0, kNoTx, "/c/counter", "0"), 0);
  auto first = store.transaction_start(kDom0);
  auto second = store.transaction_start(kDom0Other);
  ASSERT_TRUE(store.read(kDom0, first.value(), "/c/counter").ok());
  ASSERT_TRUE(store.read(kDom0Other, second.value(), "/c/counter").ok());
  ASSERT_EQ(store.write(kDom0, first.value(), "/c/counter", "1"), 0);
  ASSERT_EQ(store.write(kDom0Other, second.value(), "/c/counter", "2"), 0);
  EXPECT_EQ(store.transaction_end(kDom0, first.value(), true), 0);
  EXPECT_EQ(store.transaction_end(kDom0Other, second.value(), true), EAGAIN);
  EXPECT_EQ(store.read(kDom0, kNoTx, "/c/counter").value(), "1");
}

TEST_F(StoreTest, ReadOnlyConflictAndDirectoryConflict) {
  ASSERT_EQ(store.mkdir(kDom0, kNoTx, "/d"), 0);
  auto tx = store.transaction_start(kDom0);
  ASSERT_TRUE(store.directory(kDom0, tx.value(), "/d").ok());
  ASSERT_EQ(store.write(kDom0, tx.value(), "/elsewhere", "1"), 0);
  ASSERT_EQ(store.write(kDom0Other, kNoTx, "/d/new", "1"), 0);  // changes /d's child list
  EXPECT_EQ(store.transaction_end(kDom0, tx.value(), true), EAGAIN);
  EXPECT_EQ(store.read(kDom0, kNoTx, "/elsewhere").error(), ENOENT);
}

TEST_F(StoreTest, TransactionIsPrivateToItsConnection) {
  auto tx = store.transaction_start(kDom0);
  EXPECT_EQ(store.read(kDom0Other, tx.value(), "/").error(), ENOENT);
  EXPECT_EQ(store.transaction_end(kDom0Other, tx.value(), true), ENOENT);
}

TEST_F(StoreTest, WatchFiresInitiallyAndForChildren) {
  ASSERT_EQ(store.watch(kDom0, "/w", "tok"), 0);
  auto initial = events();
  ASSERT_EQ(initial.size(), 1U);
  EXPECT_EQ(initial[0].path, "/w");
  EXPECT_EQ(initial[0].token, "tok");
  EXPECT_EQ(initial[0].conn, kDom0.conn);
  ASSERT_EQ(store.write(kDom0, kNoTx, "/w/a/b", "1"), 0);
  ASSERT_EQ(store.write(kDom0, kNoTx, "/wx", "1"), 0);  // a sibling prefix, not a child
  auto changed = events();
  ASSERT_EQ(changed.size(), 1U);
  EXPECT_EQ(changed[0].path, "/w/a/b");
  ASSERT_EQ(store.set_perms(kDom0, kNoTx, "/w/a", {{0, Access::kRead}}), 0);
  EXPECT_EQ(events().size(), 1U);
  ASSERT_EQ(store.unwatch(kDom0, "/w", "tok"), 0);
  ASSERT_EQ(store.write(kDom0, kNoTx, "/w/a/c", "1"), 0);
  EXPECT_TRUE(events().empty());
  EXPECT_EQ(store.unwatch(kDom0, "/w", "tok"), ENOENT);
}

TEST_F(StoreTest, RemovalOfAParentFiresWatchesBelow) {
  ASSERT_EQ(store.write(kDom0, kNoTx, "/p/q/r", "1"), 0);
  ASSERT_EQ(store.watch(kDom0, "/p/q/r", "below"), 0);
  ASSERT_EQ(store.watch(kDom0, "/p/q/nonexistent", "ghost"), 0);
  events();
  ASSERT_EQ(store.rm(kDom0, kNoTx, "/p"), 0);
  auto fired = events();
  bool saw_below = false;
  bool saw_ghost = false;
  for (const auto& e : fired) {
    if (e.token == "below" && e.path == "/p/q/r") saw_below = true;
    if (e.token == "ghost" && e.path == "/p/q/nonexistent") saw_ghost = true;
  }
  EXPECT_TRUE(saw_below);
  EXPECT_TRUE(saw_ghost);
}

TEST_F(StoreTest, EventsAreFilteredByReadPermission) {
  const std::string all_domains = parent_of(domain_path(0));
  ASSERT_EQ(store.watch(kDom5, all_domains, "w5"), 0);
  ASSERT_EQ(store.watch(kDom7, all_domains, "w7"), 0);
  events();
  ASSERT_EQ(store.write(kDom0, kNoTx, xenbus::domain_path(5) + "/name", "renamed"), 0);
  auto fired = events();
  ASSERT_EQ(fired.size(), 1U);  // only 5 may read its name
  EXPECT_EQ(fired[0].token, "w5");
}

TEST_F(StoreTest, RelativeWatchesGetRelativePaths) {
  ASSERT_EQ(store.watch(kDom5, "device", "rel"), 0);
  auto initial = events();
  ASSERT_EQ(initial.size(), 1U);
  EXPECT_EQ(initial[0].path, "device");
  ASSERT_EQ(store.write(kDom5, kNoTx, "device/vif/0/state", "1"), 0);
  auto fired = events();
  ASSERT_EQ(fired.size(), 1U);
  EXPECT_EQ(fired[0].path, "device/vif/0/state");
}

TEST_F(StoreTest, TransactionEventsFireAtCommitOnly) {
  ASSERT_EQ(store.watch(kDom0, "/tx", "t"), 0);
  events();
  auto tx = store.transaction_start(kDom0);
  ASSERT_EQ(store.write(kDom0, tx.value(), "/tx/a", "1"), 0);
  EXPECT_TRUE(events().empty());
  ASSERT_EQ(store.transaction_end(kDom0, tx.value(), true), 0);
  auto fired = events();
  ASSERT_EQ(fired.size(), 1U);
  EXPECT_EQ(fired[0].path, "/tx/a");
}

TEST_F(StoreTest, SpecialWatchesFireOnIntroduceAndRelease) {
  ASSERT_EQ(store.watch(kDom0, "@introduceDomain", "in"), 0);
  ASSERT_EQ(store.watch(kDom0, "@releaseDomain", "out"), 0);
  ASSERT_EQ(store.watch(kDom7, "@releaseDomain", "not-for-7"), 0);
  events();
  EXPECT_EQ(store.introduce(kDom5, 9), EACCES);
  ASSERT_EQ(store.introduce(kDom0, 9), 0);
  EXPECT_TRUE(store.is_introduced(9));
  auto in = events();
  ASSERT_EQ(in.size(), 1U);
  EXPECT_EQ(in[0].path, "@introduceDomain");
  ASSERT_EQ(store.introduce(kDom0, 9), 0);  // again: no new event
  EXPECT_TRUE(events().empty());
  ASSERT_EQ(store.release(kDom0, 9), 0);
  auto out = events();
  ASSERT_EQ(out.size(), 1U);  // dom7 may not read @releaseDomain ("n0")
  EXPECT_EQ(out[0].token, "out");
  EXPECT_EQ(store.release(kDom0, 9), ENOENT);
  EXPECT_EQ(store.introduce(kDom0, 0), EINVAL);
}

TEST_F(StoreTest, DisconnectDropsWatchesAndTransactions) {
  ASSERT_EQ(store.watch(kDom5, "device", "t"), 0);
  auto tx = store.transaction_start(kDom5);
  store.disconnect(kDom5.conn);
  events();
  ASSERT_EQ(store.write(kDom0, kNoTx, xenbus::domain_path(5) + "/device/x", "1"), 0);
  EXPECT_TRUE(events().empty());
  EXPECT_EQ(store.transaction_end(kDom5, tx.value(), true), ENOENT);
}

// ---- hostile guests (ctest label `hostile`) ---------------------------------

class StoreHostileTest : public ::testing::Test {
 protected:
  static constexpr std::size_t kQuota = 10;
  StoreHostileTest() : quota_store_(Quotas{.entries_per_domain = kQuota}) {}

  // Domain 5's device directory (one entry it owns) with subdirectories a
  // and b: three entries.
  void SetUp() override {
    const std::string home = xenbus::domain_path(5);
    ASSERT_EQ(quota_store_.write(kDom0, kNoTx, home + "/name", "guest"), 0);
    ASSERT_EQ(quota_store_.mkdir(kDom0, kNoTx, home + "/device"), 0);
    ASSERT_EQ(quota_store_.set_perms(kDom0, kNoTx, home + "/device", {{5, Access::kNone}}), 0);
    ASSERT_EQ(quota_store_.mkdir(kDom5, kNoTx, "device/a"), 0);
    ASSERT_EQ(quota_store_.mkdir(kDom5, kNoTx, "device/b"), 0);
    ASSERT_EQ(quota_store_.entries_owned_by(5), 3U);
  }

  Store quota_store_;
};

// Two transactions of one domain each stay within the quota on their own;
// together they would not. The second commit is refused and changes nothing.
TEST_F(StoreHostileTest, ConcurrentTransactionsCannotJointlyExceedTheEntryQuota) {
  const Caller second{9, 5, false};
  auto first_tx = quota_store_.transaction_start(kDom5);
  auto second_tx = quota_store_.transaction_start(second);
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(quota_store_.write(kDom5, first_tx.value(), "device/a/n" + std::to_string(i), "x"),
              0);
    ASSERT_EQ(quota_store_.write(second, second_tx.value(), "device/b/n" + std::to_string(i), "x"),
              0);
  }
  ASSERT_EQ(quota_store_.transaction_end(kDom5, first_tx.value(), true), 0);
  EXPECT_EQ(quota_store_.entries_owned_by(5), 7U);
  EXPECT_EQ(quota_store_.transaction_end(second, second_tx.value(), true), ENOSPC);
  EXPECT_EQ(quota_store_.entries_owned_by(5), 7U);
  EXPECT_EQ(quota_store_.read(kDom5, kNoTx, "device/b/n0").error(), ENOENT);
  EXPECT_EQ(quota_store_.transaction_end(second, second_tx.value(), true), ENOENT)
      << "a refused commit ends the transaction";
}

TEST_F(StoreHostileTest, WritesOutsideTheTransactionCountAtCommit) {
  auto tx = quota_store_.transaction_start(kDom5);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(quota_store_.write(kDom5, tx.value(), "device/a/n" + std::to_string(i), "x"), 0);
  }
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(quota_store_.write(kDom5, kNoTx, "device/b/n" + std::to_string(i), "x"), 0);
  }
  EXPECT_EQ(quota_store_.transaction_end(kDom5, tx.value(), true), ENOSPC);
  EXPECT_EQ(quota_store_.entries_owned_by(5), 8U);
  // Within the quota, a commit still goes through; dom0 is never limited.
  auto small = quota_store_.transaction_start(kDom5);
  ASSERT_EQ(quota_store_.write(kDom5, small.value(), "device/a/last", "x"), 0);
  EXPECT_EQ(quota_store_.transaction_end(kDom5, small.value(), true), 0);
  auto privileged = quota_store_.transaction_start(kDom0);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(quota_store_.write(kDom0, privileged.value(), "/dom0/n" + std::to_string(i), "x"), 0);
  }
  EXPECT_EQ(quota_store_.transaction_end(kDom0, privileged.value(), true), 0);
}

// Rewriting one node in a loop inside a transaction keeps one pending event:
// the transaction does not grow with the number of writes.
TEST_F(StoreHostileTest, RewritingOneNodeInATransactionFiresOnce) {
  ASSERT_EQ(quota_store_.watch(kDom0, xenbus::domain_path(5) + "/device", "w"), 0);
  quota_store_.take_events();
  auto tx = quota_store_.transaction_start(kDom5);
  for (int i = 0; i < 10000; ++i) {
    ASSERT_EQ(quota_store_.write(kDom5, tx.value(), "device/a/state", std::to_string(i)), 0);
  }
  ASSERT_EQ(quota_store_.transaction_end(kDom5, tx.value(), true), 0);
  const auto fired = quota_store_.take_events();
  ASSERT_EQ(fired.size(), 1U);
  EXPECT_EQ(fired[0].path, xenbus::domain_path(5) + "/device/a/state");
  EXPECT_EQ(quota_store_.read(kDom5, kNoTx, "device/a/state").value(), "9999");
}

}  // namespace
}  // namespace vifd::xenstored
