// The server on its own io_context thread, driven through libxenstore via
// vifd::xs::Client (the real client library) and through raw sockets.
#include "xenstore-tools/lib/xenstored/server.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/platform/sim/sim_host.h"
#include "common/xenbus/keys.h"
#include "common/xenbus/paths.h"
#include "common/xenstore/client.h"
#include "tests/support/eventually.h"
#include "xenstore-tools/lib/xenstored/asio.h"

namespace vifd::xenstored {
namespace {

namespace asio = boost::asio;
using xs::Access;
using xs::Client;

class ServerTest : public ::testing::Test {
 protected:
  void start(Quotas quotas = {}) {
    char tmpl[] = "/tmp/vifd-xs-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    server_ = std::make_unique<Server>(io_, dir_, quotas);
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (thread_.joinable()) {
      asio::post(io_, [this] { server_->stop(); });
      io_.stop();
      thread_.join();
    }
    server_.reset();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  Client dom0() { return Client::open(sim::HostPaths{dir_}.xenstored_socket().string()); }
  Client domain(platform::DomId domid) {
    return Client::open(sim::HostPaths{dir_}.domain_xenstored_socket(domid).string());
  }

  // What vif-sim create does, in short: a home readable by the domain and a
  // device directory it owns.
  void make_domain(Client& admin, platform::DomId domid) {
    const std::string home = xenbus::domain_path(domid);
    admin.mkdir(home);
    admin.set_perms(home, {{0, Access::kNone}, {domid, Access::kRead}});
    admin.mkdir(home + "/device");
    admin.set_perms(home + "/device", {{domid, Access::kNone}});
    admin.introduce_domain(domid);
  }

  asio::io_context io_;
  std::filesystem::path dir_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(ServerTest, Dom0NodesExistAtStart) {
  start();
  auto admin = dom0();
  EXPECT_EQ(admin.read(xenbus::domain_path(0) + "/name"), "Domain-0");
  EXPECT_EQ(admin.read("/nonexistent"), std::nullopt);
}

TEST_F(ServerTest, WatchSeesInitialEventAndChanges) {
  start();
  auto watcher = dom0();
  auto writer = dom0();
  watcher.watch("/w", "tok");
  auto initial = watcher.read_watch();
  EXPECT_EQ(initial.path, "/w");
  EXPECT_EQ(initial.token, "tok");
  writer.write("/w/child", "1");
  auto changed = watcher.read_watch();
  EXPECT_EQ(changed.path, "/w/child");
  writer.rm("/w");
  auto removed = watcher.read_watch();
  EXPECT_EQ(removed.path, "/w/child");
  EXPECT_EQ(watcher.read_watch().path, "/w");
}

TEST_F(ServerTest, ConflictingTransactionsBetweenTwoClients) {
  start();
  auto a = dom0();
  auto b = dom0();
  a.write("/counter", "0");
  const auto ta = a.transaction_start();
  const auto tb = b.transaction_start();
  EXPECT_EQ(a.read("/counter", ta), "0");
  EXPECT_EQ(b.read("/counter", tb), "0");
  a.write("/counter", "1", ta);
  b.write("/counter", "2", tb);
  EXPECT_TRUE(a.transaction_end(ta, true));
  EXPECT_FALSE(b.transaction_end(tb, true));
  EXPECT_EQ(a.read("/counter"), "1");
  // transact() retries the whole body until it commits.
  b.transact([&](xs::TxId tx) {
    const int value = std::stoi(b.read("/counter", tx).value());
    b.write("/counter", std::to_string(value + 1), tx);
  });
  EXPECT_EQ(a.read("/counter"), "2");
}

TEST_F(ServerTest, DomainSocketIsThatDomain) {
  start();
  auto admin = dom0();
  admin.write("/secret", "dom0 only");
  make_domain(admin, 5);
  ASSERT_TRUE(std::filesystem::exists(sim::HostPaths{dir_}.domain_xenstored_socket(5)));
  auto guest = domain(5);
  try {
    guest.read("/secret");
    FAIL() << "domain 5 read a dom0-only node";
  } catch (const xs::XsError& e) {
    EXPECT_EQ(e.errno_value(), EACCES);
  }
  guest.write("device/vif/0/state", "1");  // relative to domain_path(5)
  EXPECT_EQ(admin.read(xenbus::join(xenbus::frontend_path({5, 0}), xenbus::key::kState)), "1");
  EXPECT_EQ(admin.get_perms(xenbus::join(xenbus::frontend_path({5, 0}), xenbus::key::kState))
                .front()
                .domid,
            5);
  EXPECT_THROW(guest.write(xenbus::domain_path(0) + "/x", "1"), xs::XsError);
  EXPECT_EQ(guest.get_domain_path(5), xenbus::domain_path(5));
}

TEST_F(ServerTest, SpecialWatchesAndReleaseClosesTheDomain) {
  start();
  auto admin = dom0();
  auto watcher = dom0();
  watcher.watch("@introduceDomain", "in");
  watcher.watch("@releaseDomain", "out");
  EXPECT_EQ(watcher.read_watch().token, "in");
  EXPECT_EQ(watcher.read_watch().token, "out");
  make_domain(admin, 6);
  EXPECT_EQ(watcher.read_watch().path, "@introduceDomain");
  EXPECT_TRUE(admin.is_domain_introduced(6));
  auto guest = domain(6);
  guest.write("device/x", "1");
  admin.release_domain(6);
  EXPECT_EQ(watcher.read_watch().path, "@releaseDomain");
  EXPECT_FALSE(admin.is_domain_introduced(6));
  EXPECT_THROW(guest.read("device/x"), xs::XsError);
  EXPECT_FALSE(std::filesystem::exists(sim::HostPaths{dir_}.domain_xenstored_socket(6)));
}

TEST_F(ServerTest, DomainQuotaExhaustion) {
  start(Quotas{.entries_per_domain = 8});
  auto admin = dom0();
  make_domain(admin, 7);
  auto guest = domain(7);
  int written = 0;
  try {
    for (; written < 100; ++written) guest.write("device/n" + std::to_string(written), "x");
    FAIL() << "quota never hit";
  } catch (const xs::XsError& e) {
    EXPECT_EQ(e.errno_value(), ENOSPC);
  }
  EXPECT_EQ(written, 7);  // the device directory itself is the eighth entry
  admin.write(xenbus::domain_path(0) + "/unlimited", "dom0 is exempt");
}

TEST_F(ServerTest, MalformedInputClosesOnlyThatConnection) {
  start();
  auto admin = dom0();
  asio::io_context io;
  asio::local::stream_protocol::socket raw(io);
  raw.connect(sim::HostPaths{dir_}.xenstored_socket().string());

  // Unknown type: an error reply, the connection stays.
  xsd_sockmsg unknown{999, 7, 0, 0};
  asio::write(raw, asio::buffer(&unknown, sizeof unknown));
  xsd_sockmsg reply{};
  asio::read(raw, asio::buffer(&reply, sizeof reply));
  EXPECT_EQ(reply.type, static_cast<std::uint32_t>(XS_ERROR));
  EXPECT_EQ(reply.req_id, 7U);
  std::string payload(reply.len, '\0');
  asio::read(raw, asio::buffer(payload));
  EXPECT_EQ(payload, std::string("ENOSYS\0", 7));

  // Oversized payload: the server drops the connection.
  xsd_sockmsg huge{XS_WRITE, 8, 0, XENSTORE_PAYLOAD_MAX + 1};
  asio::write(raw, asio::buffer(&huge, sizeof huge));
  boost::system::error_code ec;
  asio::read(raw, asio::buffer(&reply, sizeof reply), ec);
  EXPECT_TRUE(ec);
  admin.write("/still/serving", "yes");
  EXPECT_EQ(admin.read("/still/serving"), "yes");
  EXPECT_GE(server_->stats().dropped_connections, 1U);
}

TEST_F(ServerTest, FilenoSignalsEventsForAnEventLoop) {
  start();
  auto watcher = dom0();
  auto writer = dom0();
  const int fd = watcher.fileno();
  watcher.watch("/loop", "t");
  writer.write("/loop/x", "1");
  std::vector<std::string> seen;
  while (seen.size() < 2) {
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, -1), 1);
    while (auto event = watcher.check_watch()) seen.push_back(event->path);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"/loop", "/loop/x"}));
  EXPECT_EQ(watcher.check_watch(), std::nullopt);
}

// A client that watches but never reads: its queue fills, the server drops
// it and keeps serving everyone else.
TEST_F(ServerTest, AConnectionThatNeverReadsIsDropped) {
  start();
  auto admin = dom0();
  asio::io_context io;
  asio::local::stream_protocol::socket raw(io);
  raw.connect(sim::HostPaths{dir_}.xenstored_socket().string());
  const std::string payload = std::string("/flood\0tok\0", 11);
  xsd_sockmsg watch{XS_WATCH, 1, 0, static_cast<std::uint32_t>(payload.size())};
  asio::write(raw, asio::buffer(&watch, sizeof watch));
  asio::write(raw, asio::buffer(payload));
  const std::string big(3000, 'x');
  // dom0's bound is the larger, privileged one; a guest's is tested below.
  const int enough = static_cast<int>(Server::kMaxQueuedMessagesPrivileged) + 1000;
  for (int i = 0; i < enough && server_->stats().dropped_connections == 0; ++i) {
    admin.write("/flood/n", big);
  }
  EXPECT_EQ(server_->stats().dropped_connections, 1U);
  EXPECT_EQ(admin.read("/flood/n"), big);
}

TEST_F(ServerTest, LargeDirectoryFallsBackToDirectoryPart) {
  start();
  auto admin = dom0();
  // 300 names of 24 bytes: more than one 4096-byte reply holds, so
  // libxenstore gets E2BIG for XS_DIRECTORY and pages with XS_DIRECTORY_PART.
  admin.transact([&](xs::TxId tx) {
    for (int i = 0; i < 300; ++i) admin.write(fmt::format("/big/child-{:018}", i), "", tx);
  });
  auto children = admin.directory("/big");
  ASSERT_TRUE(children);
  ASSERT_EQ(children->size(), 300U);
  EXPECT_EQ(children->front(), fmt::format("child-{:018}", 0));
  EXPECT_EQ(children->back(), fmt::format("child-{:018}", 299));
}

TEST_F(ServerTest, PermsRoundTripThroughLibxenstore) {
  start();
  auto admin = dom0();
  admin.write("/perm", "v");
  const std::vector<xs::Perm> perms{
      {3, Access::kNone}, {4, Access::kRead}, {5, Access::kWrite}, {6, Access::kBoth}};
  admin.set_perms("/perm", perms);
  EXPECT_EQ(admin.get_perms("/perm"), perms);
  EXPECT_THROW(admin.set_perms("/missing/node", perms), xs::XsError);
  try {
    admin.set_perms("/missing/node", perms);
  } catch (const xs::XsError& e) {
    EXPECT_NE(std::string(e.what()).find("/missing/node"), std::string::npos) << e.what();
    EXPECT_EQ(e.errno_value(), ENOENT);
  }
  EXPECT_THROW(Client::open((dir_ / "no-such.sock").string()), xs::XsError);
}

// ---- hostile guests (ctest label `hostile`) ---------------------------------

class ServerHostileTest : public ServerTest {
 protected:
  // True when the server closed `raw` (EOF or reset on a read).
  static bool closed_by_server(asio::local::stream_protocol::socket& raw) {
    xsd_sockmsg header{};
    boost::system::error_code ec;
    asio::read(raw, asio::buffer(&header, sizeof header), ec);
    return static_cast<bool>(ec);
  }
};

TEST_F(ServerHostileTest, ConnectionsPerDomainAreBounded) {
  start(Quotas{.connections_per_domain = 3});
  auto admin = dom0();
  make_domain(admin, 7);
  std::vector<Client> guests;
  guests.reserve(3);
  for (int i = 0; i < 3; ++i) {
    guests.push_back(domain(7));
    guests.back().write("device/c" + std::to_string(i), "1");
  }
  asio::io_context io;
  asio::local::stream_protocol::socket extra(io);
  extra.connect(sim::HostPaths{dir_}.domain_xenstored_socket(7).string());
  EXPECT_TRUE(closed_by_server(extra)) << "a fourth connection of domain 7 was kept";
  EXPECT_EQ(server_->stats().refused_connections, 1U);
  // The domain's own connections, dom0 and other domains are not affected.
  for (auto& guest : guests) {
    EXPECT_EQ(guest.read("device/c0"), "1");
  }
  make_domain(admin, 8);
  auto other = domain(8);
  other.write("device/x", "1");
  std::vector<Client> admins;
  admins.reserve(5);
  for (int i = 0; i < 5; ++i) {
    admins.push_back(dom0());
  }
  for (auto& client : admins) {
    EXPECT_EQ(client.read(xenbus::domain_path(0) + "/name"), "Domain-0");
  }
  // A closed connection frees its place.
  guests.pop_back();
  EXPECT_TRUE(vifd::testing::eventually([&] {
    try {
      auto again = domain(7);
      return again.read("device/c0") == "1";
    } catch (const std::exception&) {
      return false;
    }
  }));
}

// A guest watching its own directory with a long token, never reading: its
// queue is bounded in bytes, so it is dropped long before 1024 events, and
// everyone else keeps being served.
TEST_F(ServerHostileTest, AGuestThatNeverReadsItsWatchEventsIsDropped) {
  start();
  auto admin = dom0();
  make_domain(admin, 7);
  asio::io_context io;
  asio::local::stream_protocol::socket raw(io);
  raw.connect(sim::HostPaths{dir_}.domain_xenstored_socket(7).string());
  const std::string payload =
      "device" + std::string(1, '\0') + std::string(3000, 't') + std::string(1, '\0');
  xsd_sockmsg watch{XS_WATCH, 1, 0, static_cast<std::uint32_t>(payload.size())};
  asio::write(raw, asio::buffer(&watch, sizeof watch));
  asio::write(raw, asio::buffer(payload));
  const std::string node = xenbus::domain_path(7) + "/device/x";
  int writes = 0;
  for (; writes < 4000 && server_->stats().dropped_connections == 0; ++writes) {
    admin.write(node, std::to_string(writes));
  }
  EXPECT_EQ(server_->stats().dropped_connections, 1U);
  EXPECT_LT(writes, static_cast<int>(Server::kMaxQueuedMessages));
  EXPECT_EQ(admin.read(node), std::to_string(writes - 1));
  auto guest = domain(7);
  EXPECT_EQ(guest.read("device/x"), std::to_string(writes - 1));
}

// Over the wire: a guest transaction whose nodes no longer fit when it
// commits gets ENOSPC, as from cxenstored.
TEST_F(ServerHostileTest, TransactionCommitOverTheQuotaIsEnospc) {
  start(Quotas{.entries_per_domain = 8});
  auto admin = dom0();
  make_domain(admin, 7);
  auto guest = domain(7);
  auto racer = domain(7);
  try {
    guest.transact([&](xs::TxId tx) {
      for (int i = 0; i < 4; ++i) {
        guest.write("device/t" + std::to_string(i), "x", tx);
      }
      for (int i = 0; i < 4; ++i) {
        racer.write("device/r" + std::to_string(i), "x");
      }
    });
    FAIL() << "the commit went through";
  } catch (const xs::XsError& e) {
    EXPECT_EQ(e.errno_value(), ENOSPC) << e.what();
  }
  EXPECT_EQ(guest.read("device/t0"), std::nullopt);
  EXPECT_EQ(guest.read("device/r3"), "x");
}

}  // namespace
}  // namespace vifd::xenstored
