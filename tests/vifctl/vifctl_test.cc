// vifctl's commands driven in process against a vif-sim host, checked with
// the same libxenstore client a guest or vifd would use.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/xenstore/client.h"
#include "tests/support/sim_host_process.h"
#include "xenstore-tools/lib/vifctl/commands.h"
#include "xenstore-tools/lib/vifctl/vif_nodes.h"
#include "xenstore-tools/lib/vifctl/vif_spec.h"

namespace vifd::vifctl {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;
using xs::Access;
using xs::Perm;

constexpr platform::DomId kGuest = 1;

class VifctlTest : public ::testing::Test {
 protected:
  VifctlTest() : dom0_(host_.xenstore(0)) { host_.create_domain(kGuest); }

  Session session() {
    return Session{.xs = dom0_,
                   .self_domid = 0,
                   .control_socket = (host_.dir() / "no-vifd.sock").string(),
                   .out = out_,
                   .err = err_};
  }

  int attach(AttachArguments args, bool wait = false) {
    auto s = session();
    return attach_command(s, AttachOptions{.arguments = std::move(args), .wait = wait});
  }

  std::string attach_error(AttachArguments args) {
    try {
      attach(std::move(args));
    } catch (const std::exception& e) {
      return e.what();
    }
    return "no error";
  }

  std::map<std::string, std::string> read_dir(const std::string& path) {
    std::map<std::string, std::string> values;
    const auto keys = dom0_.directory(path);
    if (!keys) return values;
    for (const auto& key : *keys) {
      values[key] = dom0_.read(path + "/" + key).value_or("<dir>");
    }
    return values;
  }

  testing::SimHostProcess host_;
  xs::Client dom0_;
  std::ostringstream out_;
  std::ostringstream err_;
};

// A stand-in backend: answers Initialising with InitWait and Closing with
// Closed, as vifd does, so the waits of attach and detach are exercised.
class FakeBackend {
 public:
  FakeBackend(const testing::SimHostProcess& host, std::string state_path)
      : xs_(host.xenstore(0)), path_(std::move(state_path)), thread_([this] { run(); }) {}
  ~FakeBackend() {
    stop_ = true;
    thread_.join();
  }

 private:
  void run() {
    while (!stop_) {
      const auto state = xs_.read(path_);
      if (state == "1") xs_.write(path_, "2");
      if (state == "5") xs_.write(path_, "6");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  xs::Client xs_;
  std::string path_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(VifctlTest, AttachWritesLibxlKeysWithLibxlPermissions) {
  ASSERT_EQ(attach({.domid = "1",
                    .devid = "0",
                    .mac = "00:16:3E:0A:0B:0C",
                    .bridge = "xenbr0",
                    .mtu = "9000",
                    .rate = "125000,20000"}),
            0);
  const std::string back = "/local/domain/0/backend/vif/1/0";
  const std::string front = "/local/domain/1/device/vif/0";
  const std::map<std::string, std::string> expected_back{
      {"frontend", front},      {"frontend-id", "1"},
      {"handle", "0"},          {"mac", "00:16:3e:0a:0b:0c"},
      {"bridge", "xenbr0"},     {"mtu", "9000"},
      {"rate", "125000,20000"}, {"online", "1"},
      {"state", "1"},           {"type", "vif"},
      {"hotplug-status", ""}};
  EXPECT_EQ(read_dir(back), expected_back);
  const std::map<std::string, std::string> expected_front{
      {"backend", back}, {"backend-id", "0"}, {"handle", "0"}, {"mac", "00:16:3e:0a:0b:0c"},
      {"mtu", "9000"},   {"state", "1"},      {"trusted", "1"}};
  EXPECT_EQ(read_dir(front), expected_front);

  const std::vector<Perm> backend_perms{{0, Access::kNone}, {kGuest, Access::kRead}};
  const std::vector<Perm> guest_perms{{kGuest, Access::kNone}, {0, Access::kRead}};
  EXPECT_EQ(dom0_.get_perms(back), backend_perms);
  for (const auto& [key, value] : expected_back) {
    EXPECT_EQ(dom0_.get_perms(back + "/" + key), backend_perms) << key;
  }
  EXPECT_EQ(dom0_.get_perms(front), guest_perms);
  for (const auto& [key, value] : expected_front) {
    // mtu is in libxl's read-only frontend set: the backend owns it.
    EXPECT_EQ(dom0_.get_perms(front + "/" + key), key == "mtu" ? backend_perms : guest_perms)
        << key;
  }
  EXPECT_EQ(dom0_.read("/libxl/1/device/vif/0/backend"), back);
  EXPECT_EQ(dom0_.read("/libxl/1/device/vif/0/frontend"), front);
}

TEST_F(VifctlTest, OptionalBackendKeysAreAbsentByDefault) {
  ASSERT_EQ(attach({.domid = "1"}), 0);
  const auto keys = dom0_.directory("/local/domain/0/backend/vif/1/0");
  ASSERT_TRUE(keys.has_value());
  EXPECT_THAT(*keys, UnorderedElementsAreArray({"frontend", "frontend-id", "handle", "mac",
                                                "online", "state", "type", "hotplug-status"}));
  EXPECT_EQ(dom0_.read("/local/domain/1/device/vif/0/mtu"), "1500");
  const auto mac = dom0_.read("/local/domain/0/backend/vif/1/0/mac").value();
  EXPECT_THAT(mac, ::testing::StartsWith("00:16:3e:"));
  EXPECT_TRUE(protocol::parse_mac("mac", mac).ok());
}

TEST_F(VifctlTest, GuestCannotWriteBackendNodesNorItsMtu) {
  ASSERT_EQ(attach({.domid = "1", .bridge = "xenbr0"}), 0);
  auto guest = host_.xenstore(kGuest);
  const std::string back = "/local/domain/0/backend/vif/1/0";
  EXPECT_EQ(guest.read(back + "/state"), "1");  // the guest may read its backend
  EXPECT_THROW(guest.write(back + "/state", "4"), xs::XsError);
  EXPECT_THROW(guest.write(back + "/bridge", "evil"), xs::XsError);
  EXPECT_THROW(guest.write(back + "/feature-sg", "1"), xs::XsError);
  EXPECT_THROW(guest.write("/local/domain/1/device/vif/0/mtu", "65000"), xs::XsError);
  // ... but owns the rest of its frontend directory, as netfront needs.
  EXPECT_NO_THROW(guest.write("/local/domain/1/device/vif/0/state", "4"));
  EXPECT_NO_THROW(guest.write("/local/domain/1/device/vif/0/tx-ring-ref", "8"));
  // Another guest sees nothing of it.
  host_.create_domain(2);
  auto other = host_.xenstore(2);
  EXPECT_THROW(other.read(back + "/state"), xs::XsError);
  EXPECT_THROW(other.read("/local/domain/1/device/vif/0/mac"), xs::XsError);
}

TEST_F(VifctlTest, DefaultDevidIsNextFree) {
  ASSERT_EQ(attach({.domid = "1"}), 0);
  ASSERT_EQ(attach({.domid = "1"}), 0);
  ASSERT_EQ(attach({.domid = "1", .devid = "5"}), 0);
  ASSERT_EQ(attach({.domid = "1"}), 0);
  EXPECT_THAT(numeric_children(dom0_, "/local/domain/0/backend/vif/1"),
              ::testing::ElementsAre(0, 1, 5, 6));
  EXPECT_THAT(attach_error({.domid = "1", .devid = "5"}), HasSubstr("vif 1/5 already exists"));
}

TEST_F(VifctlTest, GuestLeftoverFrontendDirectoryIsReplaced) {
  ASSERT_EQ(attach({.domid = "1"}), 0);
  auto s = session();
  ASSERT_EQ(detach_command(s, "1/0", /*wait=*/false), 0);
  // A frontend that writes its state after the detach recreates its node.
  auto guest = host_.xenstore(kGuest);
  guest.write("/local/domain/1/device/vif/0/state", "6");
  guest.write("/local/domain/1/device/vif/0/tx-ring-ref", "9");
  ASSERT_EQ(attach({.domid = "1", .devid = "0"}), 0);
  EXPECT_EQ(dom0_.read("/local/domain/1/device/vif/0/state"), "1");
  EXPECT_FALSE(dom0_.read("/local/domain/1/device/vif/0/tx-ring-ref").has_value());
}

TEST_F(VifctlTest, BadArgumentsAreRejectedNamingTheArgument) {
  EXPECT_THAT(attach_error({.domid = "1", .mac = "01:16:3e:00:00:01"}), HasSubstr("--mac"));
  EXPECT_THAT(attach_error({.domid = "1", .mac = "00:16:3e:00:00"}), HasSubstr("--mac"));
  EXPECT_THAT(attach_error({.domid = "1", .mac = "00:00:00:00:00:00"}), HasSubstr("--mac"));
  EXPECT_THAT(attach_error({.domid = "1", .rate = "1000"}), HasSubstr("--rate"));
  EXPECT_THAT(attach_error({.domid = "1", .rate = "0,100"}), HasSubstr("--rate"));
  EXPECT_THAT(attach_error({.domid = "1", .rate = "100,0"}), HasSubstr("--rate"));
  EXPECT_THAT(attach_error({.domid = "1", .mtu = "67"}), HasSubstr("--mtu"));
  EXPECT_THAT(attach_error({.domid = "1", .mtu = "65522"}), HasSubstr("--mtu"));
  EXPECT_THAT(attach_error({.domid = "1", .mtu = "1500x"}), HasSubstr("--mtu"));
  EXPECT_THAT(attach_error({.domid = "x1"}), HasSubstr("DOMID"));
  EXPECT_THAT(attach_error({.domid = "32752"}), HasSubstr("DOMID"));
  EXPECT_THAT(attach_error({.domid = "0"}), HasSubstr("its own backend"));
  EXPECT_THAT(attach_error({.domid = "7"}), HasSubstr("domain 7 does not exist"));
  EXPECT_THAT(attach_error({.domid = "1", .devid = "-1"}), HasSubstr("--devid"));
  EXPECT_THAT(attach_error({.domid = "1", .bridge = "a/b"}), HasSubstr("--bridge"));
  EXPECT_THAT(attach_error({.domid = "1", .bridge = "sixteen-chars-xx"}), HasSubstr("--bridge"));
  EXPECT_THAT(attach_error({.domid = "1", .script = "/nonexistent/vif-bridge"}),
              HasSubstr("--script"));
  EXPECT_THAT(attach_error({.domid = "1", .backend_domid = "65535"}), HasSubstr("--backend-domid"));
  // Nothing was written by any of them.
  EXPECT_FALSE(dom0_.directory("/local/domain/0/backend/vif/1").has_value());
  EXPECT_FALSE(dom0_.directory("/local/domain/1/device/vif/0").has_value());
}

TEST_F(VifctlTest, AttachWaitsForInitWaitThenRunsTheScriptAsLibxl) {
  const auto dir = host_.dir() / "hotplug";
  std::filesystem::create_directories(dir);
  const auto record = dir / "calls";
  const auto script = dir / "vif-test";
  {
    std::ofstream s(script);
    s << "#!/bin/sh\necho \"$1 $2 $XENBUS_PATH $XENBUS_TYPE $vif\" >> " << record << "\n";
  }
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  const std::string back = "/local/domain/0/backend/vif/1/0";
  {
    FakeBackend backend(host_, back + "/state");
    ASSERT_EQ(attach({.domid = "1", .script = script.string()}, /*wait=*/true), 0) << err_.str();
    EXPECT_EQ(dom0_.read(back + "/script"), script.string());
    auto s = session();
    ASSERT_EQ(detach_command(s, "1/0", /*wait=*/true), 0) << err_.str();
    EXPECT_EQ(err_.str(), "");  // Closed arrived in time
  }
  std::ifstream calls(record);
  std::stringstream text;
  text << calls.rdbuf();
  EXPECT_EQ(text.str(),
            "online type_if=vif backend/vif/1/0 vif vif1.0\n"
            "offline type_if=vif backend/vif/1/0 vif vif1.0\n");
  EXPECT_FALSE(dom0_.directory(back).has_value());
}

TEST_F(VifctlTest, FailingScriptFailsAttach) {
  const auto script = host_.dir() / "vif-fail";
  {
    std::ofstream s(script);
    s << "#!/bin/sh\nexit 3\n";
  }
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  FakeBackend backend(host_, "/local/domain/0/backend/vif/1/0/state");
  EXPECT_EQ(attach({.domid = "1", .script = script.string()}, /*wait=*/true), 1);
  EXPECT_THAT(err_.str(), HasSubstr("exited with status 3"));
}

TEST_F(VifctlTest, DetachRemovesEveryNode) {
  ASSERT_EQ(attach({.domid = "1", .bridge = "xenbr0"}), 0);
  ASSERT_EQ(attach({.domid = "1", .bridge = "xenbr0"}), 0);
  auto s = session();
  ASSERT_EQ(detach_command(s, "1/0", /*wait=*/false), 0);
  EXPECT_FALSE(dom0_.directory("/local/domain/0/backend/vif/1/0").has_value());
  EXPECT_FALSE(dom0_.directory("/local/domain/1/device/vif/0").has_value());
  EXPECT_FALSE(dom0_.directory("/libxl/1/device/vif/0").has_value());
  EXPECT_TRUE(dom0_.directory("/local/domain/0/backend/vif/1/1").has_value());
  ASSERT_EQ(detach_command(s, "1/1", /*wait=*/false), 0);
  // The emptied per-guest backend directory goes too.
  EXPECT_FALSE(dom0_.directory("/local/domain/0/backend/vif/1").has_value());
  EXPECT_THROW(detach_command(s, "1/1", false), std::runtime_error);
  EXPECT_THROW(detach_command(s, "1", false), ArgumentError);
}

TEST_F(VifctlTest, DetachWithoutBackendAnswerStillRemovesAndSaysSo) {
  ASSERT_EQ(attach({.domid = "1"}), 0);
  auto s = session();
  ASSERT_EQ(detach_command(s, "1/0", /*wait=*/true), 0);
  EXPECT_THAT(err_.str(), HasSubstr("did not reach Closed"));
  EXPECT_FALSE(dom0_.directory("/local/domain/0/backend/vif/1/0").has_value());
}

TEST_F(VifctlTest, ListAndShowJson) {
  ASSERT_EQ(attach({.domid = "1", .mac = "00:16:3e:00:00:01", .bridge = "xenbr0"}), 0);
  // What a netfront with two queues publishes.
  auto guest = host_.xenstore(kGuest);
  const std::string front = "/local/domain/1/device/vif/0";
  guest.write(front + "/multi-queue-num-queues", "2");
  guest.write(front + "/request-rx-copy", "1");
  guest.write(front + "/feature-sg", "1");
  for (int q = 0; q < 2; ++q) {
    guest.write(front + "/queue-" + std::to_string(q) + "/tx-ring-ref", std::to_string(8 + q));
    guest.write(front + "/queue-" + std::to_string(q) + "/rx-ring-ref", std::to_string(10 + q));
    guest.write(front + "/queue-" + std::to_string(q) + "/event-channel-tx", "3");
    guest.write(front + "/queue-" + std::to_string(q) + "/event-channel-rx", "4");
  }
  guest.write(front + "/state", "4");
  dom0_.write("/local/domain/0/backend/vif/1/0/feature-sg", "1");
  dom0_.write("/local/domain/0/backend/vif/1/0/multi-queue-max-queues", "4");

  auto s = session();
  out_.str("");
  ASSERT_EQ(list_command(s, std::nullopt, /*json=*/true), 0);
  const auto list = nlohmann::json::parse(out_.str());
  ASSERT_EQ(list.size(), 1U);
  EXPECT_EQ(list[0]["domid"], 1);
  EXPECT_EQ(list[0]["devid"], 0);
  EXPECT_EQ(list[0]["backend_state"]["name"], "Initialising");
  EXPECT_EQ(list[0]["frontend_state"]["name"], "Connected");
  EXPECT_EQ(list[0]["mac"], "00:16:3e:00:00:01");
  EXPECT_EQ(list[0]["bridge"], "xenbr0");

  out_.str("");
  ASSERT_EQ(show_command(s, "1/0", std::nullopt, /*json=*/true), 0);
  const auto show = nlohmann::json::parse(out_.str());
  EXPECT_EQ(show["backend"]["features"]["feature-sg"], 1);
  EXPECT_EQ(show["backend"]["features"]["multi-queue-max-queues"], 4);
  EXPECT_EQ(show["frontend"]["features"]["request-rx-copy"], 1);
  EXPECT_EQ(show["frontend"]["features"]["multi-queue-num-queues"], 2);
  ASSERT_EQ(show["frontend"]["queues"].size(), 2U);
  EXPECT_EQ(show["frontend"]["queues"][1]["tx-ring-ref"], 9);
  EXPECT_EQ(show["frontend"]["queues"][1]["event-channel-rx"], 4);
  EXPECT_TRUE(show["vifd"].is_null());
  EXPECT_THAT(show["vifd_error"].get<std::string>(), HasSubstr("no-vifd.sock"));
  EXPECT_THROW(show_command(s, "1/3", std::nullopt, true), std::runtime_error);
}

TEST_F(VifctlTest, ShowSurvivesHostileFrontendValues) {
  ASSERT_EQ(attach({.domid = "1"}), 0);
  auto guest = host_.xenstore(kGuest);
  const std::string front = "/local/domain/1/device/vif/0";
  guest.write(front + "/state", "\xff\xfe");
  guest.write(front + "/feature-sg", std::string("\xc3\x28\x00zz", 5));
  guest.write(front + "/multi-queue-num-queues", "99999999999999999999");
  auto s = session();
  out_.str("");
  ASSERT_EQ(show_command(s, "1/0", std::nullopt, /*json=*/true), 0);
  const auto show = nlohmann::json::parse(out_.str());
  EXPECT_EQ(show["frontend"]["state"]["name"], "invalid");
  EXPECT_TRUE(show["frontend"]["features"]["feature-sg"].is_string());
  out_.str("");
  ASSERT_EQ(show_command(s, "1/0", std::nullopt, /*json=*/false), 0);
  EXPECT_THAT(out_.str(), HasSubstr("invalid"));
}

TEST_F(VifctlTest, StatsWithoutVifdNamesTheSocket) {
  auto s = session();
  try {
    stats_command(s, std::nullopt, true);
    FAIL() << "stats without vifd succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("no-vifd.sock"));
  }
}

}  // namespace
}  // namespace vifd::vifctl
