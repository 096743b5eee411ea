#include "common/xenbus/netfront_keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "common/protocol/xs_parse.h"

namespace vifd::xenbus {
namespace {

using Keys = std::map<std::string, std::string, std::less<>>;
using protocol::XenbusState;

constexpr std::string_view kFront = "/local/domain/7/device/vif/0";
constexpr std::string_view kBack = "/local/domain/0/backend/vif/7/0";

Keys good_frontend_keys() {
  return {{"backend", std::string(kBack)},
          {"backend-id", "0"},
          {"mac", "00:16:3e:01:02:03"},
          {"mtu", "1500"},
          {"trusted", "1"}};
}

// The message of what `parse` throws as E; fails the test if it throws
// nothing or something else.
template <typename E, typename F>
std::string thrown_message(F&& parse) {
  try {
    parse();
  } catch (const E& error) {
    return error.what();
  } catch (const std::exception& other) {
    ADD_FAILURE() << "unexpected exception type: " << other.what();
    return {};
  }
  ADD_FAILURE() << "nothing thrown";
  return {};
}

bool names(const std::string& message, std::string_view key) {
  return message.find(key) != std::string::npos;
}

TEST(NetfrontDeviceConfig, ParsesWhatTheToolstackWrites) {
  Keys keys = good_frontend_keys();
  keys["backend-id"] = "3";
  keys["backend"] = "/local/domain/3/backend/vif/7/0";
  keys["mtu"] = "9000";
  keys["trusted"] = "0";
  const auto config = parse_frontend_device_config(map_reader(keys), kFront);
  EXPECT_EQ(config.backend_path, "/local/domain/3/backend/vif/7/0");
  EXPECT_EQ(config.backend_domid, 3);
  EXPECT_EQ(config.mac.to_string(), "00:16:3e:01:02:03");
  EXPECT_EQ(config.mtu, 9000U);
  EXPECT_FALSE(config.trusted);
}

TEST(NetfrontDeviceConfig, AbsentMtuAndTrustedTakeLinuxDefaults) {
  Keys keys = good_frontend_keys();
  keys.erase("mtu");
  keys.erase("trusted");
  const auto config = parse_frontend_device_config(map_reader(keys), kFront);
  EXPECT_EQ(config.mtu, 1500U);
  EXPECT_TRUE(config.trusted);
}

TEST(NetfrontDeviceConfig, MissingRequiredKeyIsNamed) {
  for (const char* key : {"backend", "backend-id", "mac"}) {
    Keys keys = good_frontend_keys();
    keys.erase(key);
    const std::string message = thrown_message<std::runtime_error>(
        [&] { (void)parse_frontend_device_config(map_reader(keys), kFront); });
    EXPECT_TRUE(names(message, std::string(kFront) + "/" + key)) << message;
    EXPECT_TRUE(names(message, "missing")) << message;
  }
}

TEST(NetfrontDeviceConfig, MalformedValueIsRejectedNamingTheKey) {
  const std::map<std::string, std::vector<std::string>> bad = {
      {"backend-id", {"", "x", "-1", "07", "32752", "0x1"}},
      {"mac",
       {"", "00:16:3e:01:02", "01:16:3e:01:02:03", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00",
        "00-16-3e-01-02-03"}},
      {"mtu", {"", "67", "65522", "1500 ", "+1500", "01500"}},
      {"trusted", {"", "2", "yes", "01"}},
  };
  for (const auto& [key, values] : bad) {
    for (const std::string& value : values) {
      Keys keys = good_frontend_keys();
      keys[key] = value;
      const std::string message = thrown_message<protocol::XenstoreValueError>(
          [&] { (void)parse_frontend_device_config(map_reader(keys), kFront); });
      EXPECT_TRUE(names(message, std::string(kFront) + "/" + key)) << key << "=" << value;
    }
  }
}

TEST(NetfrontDeviceConfig, MtuBoundsAreInclusive) {
  for (const char* mtu : {"68", "65521"}) {
    Keys keys = good_frontend_keys();
    keys["mtu"] = mtu;
    EXPECT_EQ(parse_frontend_device_config(map_reader(keys), kFront).mtu,
              static_cast<unsigned>(std::stoul(mtu)));
  }
}

TEST(NetfrontDeviceConfig, HostileBackendPathIsRejected) {
  for (const std::string& path : {
           std::string(),                                            // empty
           std::string("/etc/passwd"),                               // outside /local/domain
           std::string("local/domain/0/backend"),                    // relative
           std::string("/local/domainx/0/backend"),                  // look-alike
           std::string("/local/domain/"),                            // no domain
           std::string("/local/domain/x/backend"),                   // no domain id
           std::string("/local/domain/0/backend/vif/"),              // trailing slash
           std::string("/local/domain/0//backend"),                  // empty part
           std::string("/local/domain/0/../1/backend"),              // dot-dot
           std::string("/local/domain/0/back end"),                  // space
           std::string("/local/domain/0/back\nend"),                 // control character
           std::string("/local/domain/0/") + std::string(600, 'a'),  // too long
       }) {
    Keys keys = good_frontend_keys();
    keys["backend"] = path;
    const std::string message = thrown_message<std::runtime_error>(
        [&] { (void)parse_frontend_device_config(map_reader(keys), kFront); });
    EXPECT_TRUE(names(message, std::string(kFront) + "/backend")) << path << ": " << message;
  }
}

TEST(NetfrontDeviceConfig, PlainBackendPathsAreAccepted) {
  for (const char* path : {"/local/domain/0/backend/vif/7/0", "/local/domain/12/backend/vif/7/3",
                           "/local/domain/0/backend/vif_x-1/@7/0"}) {
    EXPECT_NO_THROW(check_backend_path("backend", path)) << path;
  }
}

TEST(BackendOffer, AbsentKeysAreNotOffered) {
  const Keys keys;
  const auto offer = parse_backend_offer(map_reader(keys), kBack);
  EXPECT_FALSE(offer.rx_copy);
  EXPECT_FALSE(offer.sg);
  EXPECT_FALSE(offer.gso_tcpv4);
  EXPECT_FALSE(offer.gso_tcpv6);
  EXPECT_FALSE(offer.ipv6_csum_offload);
  EXPECT_FALSE(offer.split_event_channels);
  EXPECT_FALSE(offer.rx_notify);
  EXPECT_FALSE(offer.has_max_queues);
  EXPECT_EQ(offer.max_queues, 1U);
}

TEST(BackendOffer, EveryFlagIsReadFromItsOwnKey) {
  const std::map<std::string, bool BackendOffer::*> flags = {
      {"feature-rx-copy", &BackendOffer::rx_copy},
      {"feature-sg", &BackendOffer::sg},
      {"feature-gso-tcpv4", &BackendOffer::gso_tcpv4},
      {"feature-gso-tcpv6", &BackendOffer::gso_tcpv6},
      {"feature-ipv6-csum-offload", &BackendOffer::ipv6_csum_offload},
      {"feature-split-event-channels", &BackendOffer::split_event_channels},
      {"feature-rx-notify", &BackendOffer::rx_notify},
      {"feature-xdp-headroom", &BackendOffer::xdp_headroom},
      {"feature-ctrl-ring", &BackendOffer::ctrl_ring},
  };
  for (const auto& [key, member] : flags) {
    const Keys on = {{key, "1"}};
    const Keys off = {{key, "0"}};
    const auto offered = parse_backend_offer(map_reader(on), kBack);
    EXPECT_TRUE(offered.*member) << key;
    for (const auto& [other, other_member] : flags) {
      if (other != key) {
        EXPECT_FALSE(offered.*other_member) << key << " set " << other;
      }
    }
    EXPECT_FALSE(parse_backend_offer(map_reader(off), kBack).*member) << key;
  }
}

TEST(BackendOffer, MalformedFlagIsRejectedNamingTheKey) {
  for (const char* key : {"feature-rx-copy", "feature-sg", "feature-gso-tcpv4", "feature-gso-tcpv6",
                          "feature-ipv6-csum-offload", "feature-split-event-channels",
                          "feature-rx-notify", "feature-xdp-headroom"}) {
    for (const char* value : {"", "2", "true", " 1", "1\n"}) {
      const Keys keys = {{key, value}};
      const std::string message = thrown_message<protocol::XenstoreValueError>(
          [&] { (void)parse_backend_offer(map_reader(keys), kBack); });
      EXPECT_TRUE(names(message, std::string(kBack) + "/" + key)) << key << "=" << value;
    }
  }
}

TEST(BackendOffer, MaxQueuesIsBounded) {
  for (const auto& [value, expected] :
       std::map<std::string, unsigned>{{"1", 1}, {"4", 4}, {"64", 64}}) {
    const Keys keys = {{"multi-queue-max-queues", value}};
    const auto offer = parse_backend_offer(map_reader(keys), kBack);
    EXPECT_TRUE(offer.has_max_queues);
    EXPECT_EQ(offer.max_queues, expected);
  }
  for (const char* value : {"0", "65", "4294967297", "", "-1", "04"}) {
    const Keys keys = {{"multi-queue-max-queues", value}};
    const std::string message = thrown_message<protocol::XenstoreValueError>(
        [&] { (void)parse_backend_offer(map_reader(keys), kBack); });
    EXPECT_TRUE(names(message, std::string(kBack) + "/multi-queue-max-queues")) << value;
  }
}

TEST(DeviceState, AbsentIsGoneAndEveryStateParses) {
  EXPECT_EQ(parse_device_state(map_reader({}), kBack), std::nullopt);
  const Keys init_wait = {{"state", "2"}};
  EXPECT_EQ(parse_device_state(map_reader(init_wait), kBack), XenbusState::kInitWait);
  const Keys connected = {{"state", "4"}};
  EXPECT_EQ(parse_device_state(map_reader(connected), kBack), XenbusState::kConnected);
  for (const char* value : {"9", "", "04", "closed"}) {
    const Keys keys = {{"state", value}};
    const std::string message = thrown_message<protocol::XenstoreValueError>(
        [&] { (void)parse_device_state(map_reader(keys), kBack); });
    EXPECT_TRUE(names(message, std::string(kBack) + "/state")) << value;
  }
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(ConnectKeys, OneSharedQueueIsFlatWithoutNumQueues) {
  const std::vector<FrontendQueueKeys> queues = {{8, 9, 12, 12, false}};
  const Pairs expected = {
      {"tx-ring-ref", "8"},       {"rx-ring-ref", "9"},       {"event-channel", "12"},
      {"request-rx-copy", "1"},   {"feature-rx-notify", "1"}, {"feature-sg", "1"},
      {"feature-gso-tcpv4", "1"}, {"feature-gso-tcpv6", "1"}, {"feature-ipv6-csum-offload", "1"},
  };
  EXPECT_EQ(connect_keys(queues, false, FrontendFeatures{}), expected);
}

TEST(ConnectKeys, XdpHeadroomIsWrittenOnlyWhenAsked) {
  const std::vector<FrontendQueueKeys> queues = {{8, 9, 12, 12, false}};
  FrontendFeatures features;
  features.xdp_headroom = 256;
  const Pairs keys = connect_keys(queues, false, features);
  ASSERT_FALSE(keys.empty());
  EXPECT_EQ(keys.back(), (std::pair<std::string, std::string>("xdp-headroom", "256")));
  const auto roots = all_connect_key_roots();
  EXPECT_NE(std::find(roots.begin(), roots.end(), "xdp-headroom"), roots.end())
      << "removed on disconnect like the other connect keys";
}

TEST(ConnectKeys, OneSplitQueueWithMultiQueueBackend) {
  const std::vector<FrontendQueueKeys> queues = {{8, 9, 12, 13, true}};
  const FrontendFeatures features{
      .sg = false, .gso_tcpv4 = false, .gso_tcpv6 = true, .ipv6_csum_offload = false};
  const Pairs expected = {
      {"multi-queue-num-queues", "1"},
      {"tx-ring-ref", "8"},
      {"rx-ring-ref", "9"},
      {"event-channel-tx", "12"},
      {"event-channel-rx", "13"},
      {"request-rx-copy", "1"},
      {"feature-rx-notify", "1"},
      {"feature-sg", "0"},
      {"feature-gso-tcpv4", "0"},
      {"feature-gso-tcpv6", "1"},
      {"feature-ipv6-csum-offload", "0"},
  };
  EXPECT_EQ(connect_keys(queues, true, features), expected);
}

TEST(ConnectKeys, FourQueuesGoUnderQueueDirectories) {
  std::vector<FrontendQueueKeys> split;
  std::vector<FrontendQueueKeys> shared;
  for (unsigned i = 0; i < 4; ++i) {
    split.push_back({10 + 2 * i, 11 + 2 * i, 20 + 2 * i, 21 + 2 * i, true});
    shared.push_back({10 + 2 * i, 11 + 2 * i, 20 + i, 20 + i, false});
  }
  const auto split_keys = connect_keys(split, true, FrontendFeatures{});
  ASSERT_EQ(split_keys.size(), 1 + 4 * 4 + 6U);
  EXPECT_EQ(split_keys.front(),
            (std::pair<std::string, std::string>{"multi-queue-num-queues", "4"}));
  EXPECT_EQ(split_keys[1], (std::pair<std::string, std::string>{"queue-0/tx-ring-ref", "10"}));
  EXPECT_EQ(split_keys[4], (std::pair<std::string, std::string>{"queue-0/event-channel-rx", "21"}));
  EXPECT_EQ(split_keys[13], (std::pair<std::string, std::string>{"queue-3/tx-ring-ref", "16"}));
  EXPECT_EQ(split_keys[16],
            (std::pair<std::string, std::string>{"queue-3/event-channel-rx", "27"}));
  EXPECT_EQ(split_keys[17], (std::pair<std::string, std::string>{"request-rx-copy", "1"}));

  const auto shared_keys = connect_keys(shared, true, FrontendFeatures{});
  ASSERT_EQ(shared_keys.size(), 1 + 4 * 3 + 6U);
  EXPECT_EQ(shared_keys[3], (std::pair<std::string, std::string>{"queue-0/event-channel", "20"}));
  EXPECT_EQ(shared_keys[12], (std::pair<std::string, std::string>{"queue-3/event-channel", "23"}));
  for (const auto& [key, value] : shared_keys) {
    EXPECT_EQ(key.find("event-channel-"), std::string::npos) << key;
  }
}

TEST(ConnectKeys, TheCtrlRingKeysFollowTheQueues) {
  const std::vector<FrontendQueueKeys> queues{{10, 11, 20, 20, false}};
  const auto keys = connect_keys(queues, false, FrontendFeatures{}, FrontendCtrlRingKeys{30, 31});
  ASSERT_EQ(keys.size(), 3 + 2 + 6U);
  EXPECT_EQ(keys[3], (std::pair<std::string, std::string>{"ctrl-ring-ref", "30"}));
  EXPECT_EQ(keys[4], (std::pair<std::string, std::string>{"event-channel-ctrl", "31"}));
  for (const auto& [key, value] : connect_keys(queues, false, FrontendFeatures{})) {
    EXPECT_EQ(key.find("ctrl"), std::string::npos) << key;
  }
}

TEST(ConnectKeys, CleanUpCoversEverythingAConnectWrites) {
  const auto roots = all_connect_key_roots();
  const std::set<std::string> root_set(roots.begin(), roots.end());
  for (const bool split : {false, true}) {
    for (const unsigned count : {1U, 3U}) {
      std::vector<FrontendQueueKeys> queues(count, FrontendQueueKeys{8, 9, 12, 13, split});
      for (const auto& [key, value] :
           connect_keys(queues, true, FrontendFeatures{}, FrontendCtrlRingKeys{30, 31})) {
        const auto slash = key.find('/');
        if (slash == std::string::npos) {
          EXPECT_TRUE(root_set.contains(key)) << key;
        } else {
          EXPECT_TRUE(is_queue_directory(key.substr(0, slash))) << key;
        }
      }
    }
  }
  EXPECT_TRUE(is_queue_directory("queue-0"));
  EXPECT_FALSE(is_queue_directory("state"));
  EXPECT_FALSE(is_queue_directory("tx-ring-ref"));
}

}  // namespace
}  // namespace vifd::xenbus
