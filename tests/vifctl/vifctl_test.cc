// vifctl's commands driven in process against a vif-sim host, checked with
// the same libxenstore client a guest or vifd would use.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/xenbus/keys.h"
#include "common/xenbus/paths.h"
#include "common/xenstore/client.h"
#include "tests/support/sim_host_process.h"
#include "xenstore-tools/lib/vifctl/commands.h"
#include "xenstore-tools/lib/vifctl/control_client.h"
#include "xenstore-tools/lib/vifctl/domains.h"
#include "xenstore-tools/lib/vifctl/vif_nodes.h"
#include "xenstore-tools/lib/vifctl/vif_spec.h"

namespace vifd::vifctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;
using xs::Access;
using xs::Perm;

namespace key = xenbus::key;
using xenbus::join;

constexpr platform::DomId kGuest = 1;
// The vif most tests attach: 1/0, served by dom0.
constexpr xenbus::VifId kVif{kGuest, 0};

std::string back_dir(std::uint32_t devid = 0) {
  return xenbus::backend_path(0, {kGuest, devid});
}
std::string front_dir() {
  return xenbus::frontend_path(kVif);
}
// Where dom0 lists the guest's vifs.
std::string guest_backends() {
  return join(xenbus::backend_vif_root(0), std::to_string(kGuest));
}

using KeyValues = std::map<std::string, std::string>;
KeyValues key_values(std::initializer_list<std::pair<std::string_view, std::string>> entries) {
  KeyValues values;
  for (const auto& [name, value] : entries) values.emplace(name, value);
  return values;
}

class VifctlTest : public ::testing::Test {
 protected:
  VifctlTest() : dom0_(host_.xenstore(0)), platform_(host_.platform(0)) {
    host_.create_domain(kGuest);
  }

  Session session() {
    return Session{.xs = dom0_,
                   .self_domid = 0,
                   .control_socket = (host_.dir() / "no-vifd.sock").string(),
                   .out = out_,
                   .err = err_,
                   .platform = platform_.get()};
  }

  int attach(AttachArguments args, bool wait = false) {
    auto s = session();
    return attach_command(
        s, AttachOptions{.arguments = std::move(args), .wait = wait, .script_dir = script_dir_});
  }

  std::string attach_error(AttachArguments args) {
    try {
      attach(std::move(args));
    } catch (const std::exception& e) {
      return e.what();
    }
    return "no error";
  }

  // An executable script `name` in the fixture's script directory.
  std::filesystem::path make_script(const std::string& name, const std::string& body) {
    std::filesystem::create_directories(script_dir_);
    const auto path = script_dir_ / name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
    return path;
  }

  std::map<std::string, std::string> read_dir(const std::string& path) {
    std::map<std::string, std::string> values;
    const auto keys = dom0_.directory(path);
    if (!keys) return values;
    for (const auto& key : *keys) {
      values[key] = dom0_.read(join(path, key)).value_or("<dir>");
    }
    return values;
  }

  testing::SimHostProcess host_;
  xs::Client dom0_;
  std::unique_ptr<platform::Platform> platform_;
  std::filesystem::path script_dir_ = host_.dir() / "scripts";
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
  const std::string back = back_dir();
  const std::string front = front_dir();
  const KeyValues expected_back = key_values({{key::kFrontend, front},
                                              {key::kFrontendId, "1"},
                                              {key::kHandle, "0"},
                                              {key::kMac, "00:16:3e:0a:0b:0c"},
                                              {key::kBridge, "xenbr0"},
                                              {key::kMtu, "9000"},
                                              {key::kRate, "125000,20000"},
                                              {key::kOnline, "1"},
                                              {key::kState, "1"},
                                              {key::kType, "vif"},
                                              {key::kHotplugStatus, ""}});
  EXPECT_EQ(read_dir(back), expected_back);
  const KeyValues expected_front = key_values({{key::kBackend, back},
                                               {key::kBackendId, "0"},
                                               {key::kHandle, "0"},
                                               {key::kMac, "00:16:3e:0a:0b:0c"},
                                               {key::kMtu, "9000"},
                                               {key::kState, "1"},
                                               {key::kTrusted, "1"}});
  EXPECT_EQ(read_dir(front), expected_front);

  const std::vector<Perm> backend_perms{{0, Access::kNone}, {kGuest, Access::kRead}};
  const std::vector<Perm> guest_perms{{kGuest, Access::kNone}, {0, Access::kRead}};
  EXPECT_EQ(dom0_.get_perms(back), backend_perms);
  for (const auto& [name, value] : expected_back) {
    EXPECT_EQ(dom0_.get_perms(join(back, name)), backend_perms) << name;
  }
  EXPECT_EQ(dom0_.get_perms(front), guest_perms);
  for (const auto& [name, value] : expected_front) {
    // mtu is in libxl's read-only frontend set: the backend owns it.
    EXPECT_EQ(dom0_.get_perms(join(front, name)), name == key::kMtu ? backend_perms : guest_perms)
        << name;
  }
  EXPECT_EQ(dom0_.read(join(xenbus::libxl_path(kVif), key::kBackend)), back);
  EXPECT_EQ(dom0_.read(join(xenbus::libxl_path(kVif), key::kFrontend)), front);
}

TEST_F(VifctlTest, OptionalBackendKeysAreAbsentByDefault) {
  ASSERT_EQ(attach({.domid = "1"}), 0);
  const auto keys = dom0_.directory(back_dir());
  ASSERT_TRUE(keys.has_value());
  EXPECT_THAT(*keys, UnorderedElementsAreArray({key::kFrontend, key::kFrontendId, key::kHandle,
                                                key::kMac, key::kOnline, key::kState, key::kType,
                                                key::kHotplugStatus}));
  EXPECT_EQ(dom0_.read(join(front_dir(), key::kMtu)), "1500");
  const auto mac = dom0_.read(join(back_dir(), key::kMac)).value();
  EXPECT_THAT(mac, ::testing::StartsWith("00:16:3e:"));
  EXPECT_TRUE(protocol::parse_mac(key::kMac, mac).ok());
}

TEST_F(VifctlTest, OpenVswitchPortsAreWrittenAsGivenForTheScript) {
  ASSERT_EQ(attach({.domid = "1", .devid = "0", .bridge = "ovsbr.10"}), 0);
  ASSERT_EQ(attach({.domid = "1", .devid = "1", .bridge = "ovsbr.10:20:30"}), 0);
  EXPECT_EQ(dom0_.read(join(back_dir(0), key::kBridge)), "ovsbr.10");
  EXPECT_EQ(dom0_.read(join(back_dir(1), key::kBridge)), "ovsbr.10:20:30");
  EXPECT_THAT(attach_error({.domid = "1", .bridge = "ovsbr.4095"}),
              HasSubstr("--bridge: invalid value \"ovsbr.4095\": VLAN \"4095\": out of range"));
  EXPECT_THAT(attach_error({.domid = "1", .bridge = "ovsbr:10:10"}),
              HasSubstr("trunk VLAN 10 listed twice"));
  EXPECT_FALSE(dom0_.directory(back_dir(2)).has_value());
}

TEST_F(VifctlTest, GuestCannotWriteBackendNodesNorItsMtu) {
  ASSERT_EQ(attach({.domid = "1", .bridge = "xenbr0"}), 0);
  auto guest = host_.xenstore(kGuest);
  const std::string back = back_dir();
  EXPECT_EQ(guest.read(join(back, key::kState)), "1");  // the guest may read its backend
  EXPECT_THROW(guest.write(join(back, key::kState), "4"), xs::XsError);
  EXPECT_THROW(guest.write(join(back, key::kBridge), "evil"), xs::XsError);
  EXPECT_THROW(guest.write(join(back, key::kFeatureSg), "1"), xs::XsError);
  EXPECT_THROW(guest.write(join(front_dir(), key::kMtu), "65000"), xs::XsError);
  // ... but owns the rest of its frontend directory, as netfront needs.
  EXPECT_NO_THROW(guest.write(join(front_dir(), key::kState), "4"));
  EXPECT_NO_THROW(guest.write(join(front_dir(), key::kTxRingRef), "8"));
  // Another guest sees nothing of it.
  host_.create_domain(2);
  auto other = host_.xenstore(2);
  EXPECT_THROW(other.read(join(back, key::kState)), xs::XsError);
  EXPECT_THROW(other.read(join(front_dir(), key::kMac)), xs::XsError);
}

TEST_F(VifctlTest, DefaultDevidIsNextFree) {
  ASSERT_EQ(attach({.domid = "1"}), 0);
  ASSERT_EQ(attach({.domid = "1"}), 0);
  ASSERT_EQ(attach({.domid = "1", .devid = "5"}), 0);
  ASSERT_EQ(attach({.domid = "1"}), 0);
  EXPECT_THAT(numeric_children(dom0_, guest_backends()), ::testing::ElementsAre(0, 1, 5, 6));
  EXPECT_THAT(attach_error({.domid = "1", .devid = "5"}), HasSubstr("vif 1/5 already exists"));
}

TEST_F(VifctlTest, GuestLeftoverFrontendDirectoryIsReplaced) {
  ASSERT_EQ(attach({.domid = "1"}), 0);
  auto s = session();
  ASSERT_EQ(detach_command(s, "1/0", /*wait=*/false), 0);
  // A frontend that writes its state after the detach recreates its node.
  auto guest = host_.xenstore(kGuest);
  guest.write(join(front_dir(), key::kState), "6");
  guest.write(join(front_dir(), key::kTxRingRef), "9");
  ASSERT_EQ(attach({.domid = "1", .devid = "0"}), 0);
  EXPECT_EQ(dom0_.read(join(front_dir(), key::kState)), "1");
  EXPECT_FALSE(dom0_.read(join(front_dir(), key::kTxRingRef)).has_value());
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
  EXPECT_THAT(attach_error({.domid = "x1"}), HasSubstr("DOMAIN: no domain is named \"x1\""));
  EXPECT_THAT(attach_error({.domid = "32752"}), HasSubstr("DOMAIN"));
  EXPECT_THAT(attach_error({.domid = "0"}), HasSubstr("its own backend"));
  EXPECT_THAT(attach_error({.domid = "7"}), HasSubstr("domain 7 does not exist"));
  EXPECT_THAT(attach_error({.domid = "1", .devid = "-1"}), HasSubstr("--devid"));
  EXPECT_THAT(attach_error({.domid = "1", .bridge = "a/b"}), HasSubstr("--bridge"));
  EXPECT_THAT(attach_error({.domid = "1", .bridge = "sixteen-chars-xx"}), HasSubstr("--bridge"));
  EXPECT_THAT(attach_error({.domid = "1", .script = "/nonexistent/vif-bridge"}),
              HasSubstr("--script"));
  EXPECT_THAT(attach_error({.domid = "1", .backend_domid = "65535"}), HasSubstr("--backend-domid"));
  // Nothing was written by any of them.
  EXPECT_FALSE(dom0_.directory(guest_backends()).has_value());
  EXPECT_FALSE(dom0_.directory(front_dir()).has_value());
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
  const std::string back = back_dir();
  {
    FakeBackend backend(host_, join(back, key::kState));
    ASSERT_EQ(attach({.domid = "1", .script = script.string()}, /*wait=*/true), 0) << err_.str();
    EXPECT_EQ(dom0_.read(join(back, key::kScript)), script.string());
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
  FakeBackend backend(host_, join(back_dir(), key::kState));
  EXPECT_EQ(attach({.domid = "1", .script = script.string()}, /*wait=*/true), 1);
  EXPECT_THAT(err_.str(), HasSubstr("exited with status 3"));
}

TEST_F(VifctlTest, DetachRemovesEveryNode) {
  ASSERT_EQ(attach({.domid = "1", .bridge = "xenbr0"}), 0);
  ASSERT_EQ(attach({.domid = "1", .bridge = "xenbr0"}), 0);
  auto s = session();
  ASSERT_EQ(detach_command(s, "1/0", /*wait=*/false), 0);
  EXPECT_FALSE(dom0_.directory(back_dir()).has_value());
  EXPECT_FALSE(dom0_.directory(front_dir()).has_value());
  EXPECT_FALSE(dom0_.directory(xenbus::libxl_path(kVif)).has_value());
  EXPECT_TRUE(dom0_.directory(back_dir(1)).has_value());
  ASSERT_EQ(detach_command(s, "1/1", /*wait=*/false), 0);
  // The emptied per-guest backend directory goes too.
  EXPECT_FALSE(dom0_.directory(guest_backends()).has_value());
  EXPECT_THROW(detach_command(s, "1/1", false), std::runtime_error);
  EXPECT_THROW(detach_command(s, "1", false), ArgumentError);
}

TEST_F(VifctlTest, DetachWithoutBackendAnswerStillRemovesAndSaysSo) {
  ASSERT_EQ(attach({.domid = "1"}), 0);
  auto s = session();
  ASSERT_EQ(detach_command(s, "1/0", /*wait=*/true), 0);
  EXPECT_THAT(err_.str(), HasSubstr("did not reach Closed"));
  EXPECT_FALSE(dom0_.directory(back_dir()).has_value());
}

TEST_F(VifctlTest, ListAndShowJson) {
  ASSERT_EQ(attach({.domid = "1", .mac = "00:16:3e:00:00:01", .bridge = "xenbr0"}), 0);
  // What a netfront with two queues publishes.
  auto guest = host_.xenstore(kGuest);
  const std::string front = front_dir();
  guest.write(join(front, key::kMultiQueueNumQueues), "2");
  guest.write(join(front, key::kRequestRxCopy), "1");
  guest.write(join(front, key::kFeatureSg), "1");
  for (unsigned q = 0; q < 2; ++q) {
    guest.write(join(front, key::queue_key(q, 2, key::kTxRingRef)), std::to_string(8 + q));
    guest.write(join(front, key::queue_key(q, 2, key::kRxRingRef)), std::to_string(10 + q));
    guest.write(join(front, key::queue_key(q, 2, key::kEventChannelTx)), "3");
    guest.write(join(front, key::queue_key(q, 2, key::kEventChannelRx)), "4");
  }
  guest.write(join(front, key::kState), "4");
  dom0_.write(join(back_dir(), key::kFeatureSg), "1");
  dom0_.write(join(back_dir(), key::kMultiQueueMaxQueues), "4");

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
  EXPECT_EQ(show["backend"]["features"][key::kFeatureSg], 1);
  EXPECT_EQ(show["backend"]["features"][key::kMultiQueueMaxQueues], 4);
  EXPECT_EQ(show["frontend"]["features"][key::kRequestRxCopy], 1);
  EXPECT_EQ(show["frontend"]["features"][key::kMultiQueueNumQueues], 2);
  ASSERT_EQ(show["frontend"]["queues"].size(), 2U);
  EXPECT_EQ(show["frontend"]["queues"][1][key::kTxRingRef], 9);
  EXPECT_EQ(show["frontend"]["queues"][1][key::kEventChannelRx], 4);
  EXPECT_TRUE(show["vifd"].is_null());
  EXPECT_THAT(show["vifd_error"].get<std::string>(), HasSubstr("no-vifd.sock"));
  EXPECT_THROW(show_command(s, "1/3", std::nullopt, true), std::runtime_error);
}

TEST_F(VifctlTest, ShowSurvivesHostileFrontendValues) {
  ASSERT_EQ(attach({.domid = "1"}), 0);
  auto guest = host_.xenstore(kGuest);
  const std::string front = front_dir();
  guest.write(join(front, key::kState), "\xff\xfe");
  guest.write(join(front, key::kFeatureSg), std::string("\xc3\x28\x00zz", 5));
  guest.write(join(front, key::kMultiQueueNumQueues), "99999999999999999999");
  auto s = session();
  out_.str("");
  ASSERT_EQ(show_command(s, "1/0", std::nullopt, /*json=*/true), 0);
  const auto show = nlohmann::json::parse(out_.str());
  EXPECT_EQ(show["frontend"]["state"]["name"], "invalid");
  EXPECT_TRUE(show["frontend"]["features"][key::kFeatureSg].is_string());
  out_.str("");
  ASSERT_EQ(show_command(s, "1/0", std::nullopt, /*json=*/false), 0);
  EXPECT_THAT(out_.str(), HasSubstr("invalid"));
}

TEST_F(VifctlTest, GuestWrittenStringsReachTheTerminalEscaped) {
  ASSERT_EQ(attach({.domid = "1"}), 0);
  auto guest = host_.xenstore(kGuest);
  // Clear the screen, ring the bell, retitle the window, then a line break.
  const std::string hostile = "\x1b[2J\x07\x1b]0;pwned\x07\r\nfake";
  guest.write(join(front_dir(), key::kMac), hostile);
  auto s = session();
  out_.str("");
  ASSERT_EQ(show_command(s, "1/0", std::nullopt, /*json=*/false), 0);
  const std::string text = out_.str();
  EXPECT_THAT(text, HasSubstr("\\x1b[2J\\x07\\x1b]0;pwned\\x07\\x0d\\x0afake"));
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    EXPECT_TRUE(c == '\n' || (byte >= 0x20 && byte < 0x7F)) << "raw byte " << int{byte};
  }
  // JSON output keeps the value as written (JSON escapes it itself).
  out_.str("");
  ASSERT_EQ(show_command(s, "1/0", std::nullopt, /*json=*/true), 0);
  EXPECT_EQ(nlohmann::json::parse(out_.str())["frontend"]["mac"], hostile);
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

TEST(VifctlDomains, DomainArgumentsAsXlTakesThem) {
  const std::vector<NamedDomain> domains{
      {0, "Domain-0"}, {3, "web1"}, {4, "db"}, {5, "db"}, {6, "7"}};
  EXPECT_EQ(resolve_domain("DOMAIN", "web1", domains), 3);
  EXPECT_EQ(resolve_domain("DOMAIN", "Domain-0", domains), 0);
  // Digits are a domid, as in xl, even where a domain is named so.
  EXPECT_EQ(resolve_domain("DOMAIN", "7", domains), 7);
  EXPECT_EQ(resolve_domain("DOMAIN", "4", domains), 4);
  const auto error = [&](std::string_view text) {
    try {
      resolve_domain("DOMAIN", text, domains);
    } catch (const ArgumentError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error("db"), "DOMAIN: \"db\" names 2 domains (4, 5); give the domid");
  EXPECT_EQ(error("web2"), "DOMAIN: no domain is named \"web2\"");
  EXPECT_THAT(error(""), HasSubstr("DOMAIN"));
  EXPECT_THAT(error("32752"), HasSubstr("DOMAIN"));  // a reserved domid
  // The operator's text is echoed escaped.
  EXPECT_EQ(error("w\x1b[2J"), "DOMAIN: no domain is named \"w\\x1b[2J\"");
}

TEST(VifctlDomains, VifSelectorsAsXlNetworkDetachTakesThem) {
  const auto devid = [](const VifSelector& s) { return std::get<std::uint32_t>(s.device); };
  const auto mac = [](const VifSelector& s) {
    return std::get<protocol::MacAddress>(s.device).to_string();
  };
  EXPECT_EQ(devid(parse_vif_selector("VIF", "web1/3")), 3U);
  EXPECT_EQ(parse_vif_selector("VIF", "web1/3").domain, "web1");
  EXPECT_EQ(mac(parse_vif_selector("VIF", "web1/00:16:3E:0A:0B:0C")), "00:16:3e:0a:0b:0c");
  EXPECT_EQ(devid(parse_vif_selector("VIF", "5", std::string("2"))), 2U);
  EXPECT_EQ(parse_vif_selector("VIF", "5", std::string("2")).domain, "5");
  EXPECT_EQ(mac(parse_vif_selector("VIF", "web1", std::string("00:16:3e:00:00:01"))),
            "00:16:3e:00:00:01");
  EXPECT_THROW(parse_vif_selector("VIF", "web1"), ArgumentError);
  EXPECT_THROW(parse_vif_selector("VIF", "web1/x"), ArgumentError);
  EXPECT_THROW(parse_vif_selector("VIF", "web1/00:16:3e:00:00"), ArgumentError);
  EXPECT_THROW(parse_vif_selector("VIF", "web1", std::string("-1")), ArgumentError);
}

TEST(VifctlScripts, ANameIsLookedUpInTheScriptDirectoryAsLibxlDoes) {
  const auto dir = std::filesystem::temp_directory_path() / "vifctl-script-test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "sub");
  const auto write = [](const std::filesystem::path& path, std::filesystem::perms perms) {
    std::ofstream(path) << "#!/bin/sh\n";
    std::filesystem::permissions(path, perms);
  };
  write(dir / "vif-bridge", std::filesystem::perms::owner_all);
  write(dir / "not-exec", std::filesystem::perms::owner_read);
  AttachArguments args{.domid = "1"};
  const auto script = [&](std::string text) {
    args.script = std::move(text);
    return make_vif_spec(args, 0, dir).script.value_or("");
  };
  EXPECT_EQ(script("vif-bridge"), (dir / "vif-bridge").string());
  EXPECT_EQ(script((dir / "vif-bridge").string()), (dir / "vif-bridge").string());
  const auto error = [&](std::string text) {
    try {
      script(std::move(text));
    } catch (const ArgumentError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // The message names the path that was looked at.
  EXPECT_THAT(error("vif-nosuch"), HasSubstr((dir / "vif-nosuch").string()));
  EXPECT_THAT(error("vif-nosuch"), HasSubstr("is not a regular file"));
  EXPECT_THAT(error("not-exec"), HasSubstr("is not executable"));
  EXPECT_THAT(error("sub"), HasSubstr("is not a regular file"));
  EXPECT_THAT(error(""), HasSubstr("--script"));
  std::filesystem::remove_all(dir);
}

TEST_F(VifctlTest, DomainsByName) {
  host_.create_domain(2, "web1");
  host_.create_domain(3, "twin");
  host_.create_domain(4, "twin");
  ASSERT_EQ(attach({.domid = "web1", .mac = "00:16:3e:00:00:02"}), 0);
  EXPECT_EQ(dom0_.read(join(xenbus::backend_path(0, {2, 0}), key::kMac)), "00:16:3e:00:00:02");
  EXPECT_THAT(attach_error({.domid = "twin"}), HasSubstr("\"twin\" names 2 domains (3, 4)"));
  EXPECT_THAT(attach_error({.domid = "nosuch"}), HasSubstr("no domain is named \"nosuch\""));
  EXPECT_THAT(attach_error({.domid = "1", .backend_domid = "nosuch"}),
              HasSubstr("--backend-domid: no domain is named"));
  auto s = session();
  out_.str("");
  ASSERT_EQ(show_command(s, "web1/0", std::nullopt, /*json=*/true), 0);
  EXPECT_EQ(nlohmann::json::parse(out_.str())["domid"], 2);
  EXPECT_THROW(show_command(s, "twin/0", std::nullopt, true), ArgumentError);
  ASSERT_EQ(detach_command(s, "web1/0", /*wait=*/false), 0);
  EXPECT_FALSE(dom0_.directory(xenbus::backend_path(0, {2, 0})).has_value());
}

TEST_F(VifctlTest, DetachByMac) {
  ASSERT_EQ(attach({.domid = "1", .mac = "00:16:3e:00:00:0a"}), 0);
  ASSERT_EQ(attach({.domid = "1", .mac = "00:16:3e:00:00:0b"}), 0);
  ASSERT_EQ(attach({.domid = "1", .mac = "00:16:3e:00:00:0c"}), 0);
  auto s = session();
  // DOMAIN/MAC, in any case, as xl network-detach takes it.
  ASSERT_EQ(detach_command(s, "1/00:16:3E:00:00:0B", /*wait=*/false), 0);
  EXPECT_TRUE(dom0_.directory(back_dir(0)).has_value());
  EXPECT_FALSE(dom0_.directory(back_dir(1)).has_value());
  // DOMAIN and MAC as two arguments; DOMAIN and DEVID too.
  ASSERT_EQ(detach_command(s, "1", false, std::string("00:16:3e:00:00:0c")), 0);
  EXPECT_FALSE(dom0_.directory(back_dir(2)).has_value());
  try {
    detach_command(s, "1/00:16:3e:00:00:0c", false);
    FAIL() << "detached a MAC that is gone";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("domain 1 has no vif with MAC 00:16:3e:00:00:0c"));
  }
  ASSERT_EQ(detach_command(s, "1", false, std::string("0")), 0);
  EXPECT_FALSE(dom0_.directory(guest_backends()).has_value());
}

TEST_F(VifctlTest, DetachByMacRefusesAnAmbiguousMac) {
  ASSERT_EQ(attach({.domid = "1", .mac = "00:16:3e:00:00:0a"}), 0);
  ASSERT_EQ(attach({.domid = "1", .mac = "00:16:3e:00:00:0a"}), 0);
  auto s = session();
  try {
    detach_command(s, "1/00:16:3e:00:00:0a", false);
    FAIL() << "detached one of two vifs with one MAC";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("2 vifs with MAC 00:16:3e:00:00:0a (devids 0, 1)"));
  }
  EXPECT_TRUE(dom0_.directory(back_dir(0)).has_value());
  EXPECT_TRUE(dom0_.directory(back_dir(1)).has_value());
}

TEST_F(VifctlTest, ScriptByNameIsRecordedWithItsPath) {
  const auto script = make_script("vif-test", "exit 0");
  ASSERT_EQ(attach({.domid = "1", .script = "vif-test"}), 0);
  EXPECT_EQ(dom0_.read(join(back_dir(), key::kScript)), script.string());
  EXPECT_EQ(dom0_.read(join(xenbus::libxl_path(kVif), key::kScript)), script.string());
  EXPECT_THAT(attach_error({.domid = "1", .script = "vif-missing"}),
              HasSubstr((script_dir_ / "vif-missing").string()));
}

TEST_F(VifctlTest, DomainsTheHypervisorLacksAreRefusedBeforeAnyWrite) {
  // A backend domain that does not exist.
  EXPECT_THAT(attach_error({.domid = "1", .backend_domid = "7"}),
              HasSubstr("backend domain 7 does not exist (the hypervisor has no domain 7)"));
  // A guest whose xenstore directory outlived it (or was made by hand).
  dom0_.write(join(xenbus::domain_path(5), "domid"), "5");
  EXPECT_THAT(attach_error({.domid = "5"}),
              HasSubstr("domain 5 does not exist (the hypervisor has no domain 5)"));
  // Nothing was written for either.
  EXPECT_FALSE(dom0_.directory(xenbus::domain_path(7)).has_value());
  EXPECT_FALSE(dom0_.directory(guest_backends()).has_value());
  EXPECT_FALSE(dom0_.directory(join(xenbus::backend_vif_root(0), "5")).has_value());
  EXPECT_FALSE(dom0_.directory(xenbus::frontend_vif_root(5)).has_value());
  EXPECT_FALSE(dom0_.directory(xenbus::libxl_path({5, 0})).has_value());
  // Without the hypervisor's answer only xenstore decides: the backend
  // still has to have a directory, the skeleton passes.
  auto s = session();
  s.platform = nullptr;
  EXPECT_THROW(attach_command(s, AttachOptions{.arguments = {.domid = "1", .backend_domid = "7"},
                                               .wait = false}),
               std::runtime_error);
  EXPECT_FALSE(dom0_.directory(xenbus::domain_path(7)).has_value());
  EXPECT_EQ(attach_command(s, AttachOptions{.arguments = {.domid = "5"}, .wait = false}), 0);
}

// A backend that refuses every vif at once, as vifd does when the bridge is
// missing: `error`, then Closed.
class RefusingBackend {
 public:
  RefusingBackend(const testing::SimHostProcess& host, std::string backend, std::string error)
      : xs_(host.xenstore(0)),
        backend_(std::move(backend)),
        error_(std::move(error)),
        thread_([this] { run(); }) {}
  ~RefusingBackend() {
    stop_ = true;
    thread_.join();
  }

 private:
  void run() {
    while (!stop_) {
      if (xs_.read(join(backend_, key::kState)) == "1") {
        xs_.write(join(backend_, key::kError), error_);
        xs_.write(join(backend_, key::kState), "6");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  xs::Client xs_;
  std::string backend_;
  std::string error_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(VifctlTest, AttachReturnsAsSoonAsTheBackendRefuses) {
  RefusingBackend backend(host_, back_dir(), "bridge: bridge 'nosuchbr' does not exist\x1b[2J");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(attach({.domid = "1", .bridge = "nosuchbr"}, /*wait=*/true), 1);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(3)) << "waited for the 10 s timeout";
  EXPECT_THAT(err_.str(), HasSubstr("the backend refused it: bridge: bridge 'nosuchbr' does not "
                                    "exist\\x1b[2J (state 6 (Closed))"));
  EXPECT_THAT(err_.str(), Not(HasSubstr("did not reach InitWait")));
  EXPECT_EQ(err_.str().find('\x1b'), std::string::npos);
}

TEST_F(VifctlTest, ListAndShowTheErrorAndAVifdThatIsNotRunning) {
  ASSERT_EQ(attach({.domid = "1", .mac = "00:16:3e:00:00:01"}), 0);
  dom0_.write(join(back_dir(), key::kError), "bridge: bridge 'x' does not exist");
  dom0_.write(join(back_dir(), key::kState), "4");  // what a stopped vifd left behind
  auto s = session();
  out_.str("");
  ASSERT_EQ(list_command(s, std::nullopt, /*json=*/true), 0);
  const auto list = nlohmann::json::parse(out_.str());
  EXPECT_EQ(list[0]["error"], "bridge: bridge 'x' does not exist");
  EXPECT_EQ(list[0]["vifd"], "not running");
  EXPECT_THAT(err_.str(), HasSubstr("vifd is not running"));
  EXPECT_THAT(err_.str(), HasSubstr("no-vifd.sock"));
  out_.str("");
  ASSERT_EQ(list_command(s, std::nullopt, /*json=*/false), 0);
  EXPECT_THAT(out_.str(), HasSubstr("error"));
  EXPECT_THAT(out_.str(), ::testing::ContainsRegex(
                              "1/0 +Connected .* not running +bridge: bridge 'x' does not exist"));
  // Another backend domain's vifd is not asked through our socket.
  out_.str("");
  ASSERT_EQ(list_command(s, std::string("1"), /*json=*/true), 0);

  out_.str("");
  ASSERT_EQ(show_command(s, "1/0", std::nullopt, /*json=*/true), 0);
  const auto show = nlohmann::json::parse(out_.str());
  EXPECT_EQ(show["backend"]["error"], "bridge: bridge 'x' does not exist");
  EXPECT_EQ(show["vifd_running"], false);
  out_.str("");
  ASSERT_EQ(show_command(s, "1/0", std::nullopt, /*json=*/false), 0);
  EXPECT_THAT(out_.str(), HasSubstr("  error    bridge: bridge 'x' does not exist\n"));
  EXPECT_THAT(out_.str(), HasSubstr("vifd     NOT RUNNING"));
}

TEST(VifctlInstanceLock, SeenHeldWithoutTakingIt) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("vifctl-lock-test-" + std::to_string(::getpid()) + ".lock");
  std::filesystem::remove(path);
  EXPECT_EQ(lock_held(path), false);  // no file: no vifd ever ran
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(lock_held(path), false);
  ASSERT_EQ(::flock(fd, LOCK_SH), 0);  // as a per-domain vifd holds the backend lock
  EXPECT_EQ(lock_held(path), true);
  // Looking did not take it: an exclusive lock is still to be had by others
  // only once ours goes, and nothing else holds it.
  ASSERT_EQ(::flock(fd, LOCK_UN), 0);
  EXPECT_EQ(lock_held(path), false);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  EXPECT_EQ(lock_held(path), true);
  ::close(fd);
  EXPECT_EQ(lock_held(path), false);
  std::filesystem::remove(path);
}

TEST_F(VifctlTest, AVifdHoldingItsLockButSilentIsNotCalledStopped) {
  ASSERT_EQ(attach({.domid = "1"}), 0);
  const auto lock_dir = host_.dir() / "locks";
  std::filesystem::create_directories(lock_dir);
  const auto lock = lock_dir / "vifd-backend-0-domain-1.lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  auto s = session();
  s.lock_dir = lock_dir.string();
  out_.str("");
  ASSERT_EQ(list_command(s, std::nullopt, /*json=*/true), 0);
  EXPECT_EQ(nlohmann::json::parse(out_.str())[0]["vifd"], "no answer");
  EXPECT_THAT(err_.str(), HasSubstr("holds its instance lock but does not answer"));
  out_.str("");
  ASSERT_EQ(show_command(s, "1/0", std::nullopt, /*json=*/true), 0);
  EXPECT_TRUE(nlohmann::json::parse(out_.str())["vifd_running"].is_null());
  ::close(fd);
  out_.str("");
  ASSERT_EQ(list_command(s, std::nullopt, /*json=*/true), 0);
  EXPECT_EQ(nlohmann::json::parse(out_.str())[0]["vifd"], "not running");
}

}  // namespace
}  // namespace vifd::vifctl
