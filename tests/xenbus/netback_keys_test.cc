#include "common/xenbus/netback_keys.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/xenbus/keys.h"
#include "common/xenbus/state_keys.h"

namespace vifd::xenbus {
namespace {

using protocol::XenbusState;

const VifId kId{7, 2};

// The key a parser rejected, "" when it accepted the keys.
std::string rejected_key(const std::function<void()>& parse) {
  try {
    parse();
  } catch (const protocol::XenstoreValueError& e) {
    // The message written into `error` names the key too.
    EXPECT_NE(std::string(e.what()).find(e.error().key), std::string::npos) << e.what();
    return e.error().key;
  }
  return "";
}

// One hostile change to a valid set of keys, and the key it must be blamed on.
struct Mutation {
  std::string key;
  std::optional<std::string> value;  // std::nullopt removes the key
  std::string blamed;
};

KeyMap apply(KeyMap keys, const Mutation& mutation) {
  if (mutation.value) {
    keys.insert_or_assign(mutation.key, *mutation.value);
  } else {
    keys.erase(mutation.key);
  }
  return keys;
}

std::string k(std::string_view name) {
  return std::string(name);
}

// ---- backend directory (the toolstack's keys) -------------------------------

KeyMap valid_backend() {
  return {{k(key::kFrontendId), "7"},
          {k(key::kFrontend), frontend_path(kId)},
          {k(key::kHandle), "2"},
          {k(key::kMac), "00:16:3e:0a:0b:0c"},
          {k(key::kBridge), "xenbr0"},
          {k(key::kScript), "/etc/xen/scripts/vif-bridge"},
          {k(key::kRate), "125000,20000"},
          {k(key::kMtu), "9000"},
          {k(key::kIp), "10.0.0.7 192.168.7.0/24"},
          {k(key::kState), "1"}};
}

TEST(NetbackBackendConfig, ParsesEveryToolstackKey) {
  const KeyMap keys = valid_backend();
  const BackendConfig config = parse_backend_config(kId, map_reader(keys));
  EXPECT_EQ(config.frontend_path, frontend_path(kId));
  EXPECT_EQ(config.handle, 2U);
  EXPECT_EQ(config.mac.to_string(), "00:16:3e:0a:0b:0c");
  ASSERT_TRUE(config.bridge);
  EXPECT_EQ(config.bridge->value, "xenbr0");
  EXPECT_EQ(config.bridge->name, "xenbr0");
  EXPECT_FALSE(config.bridge->open_vswitch_syntax());
  EXPECT_EQ(config.script, std::optional<std::string>("/etc/xen/scripts/vif-bridge"));
  ASSERT_TRUE(config.rate);
  EXPECT_EQ(*config.rate, (protocol::RateLimit{125000, 20000}));
  EXPECT_EQ(config.mtu, 9000U);
  EXPECT_EQ(config.ip, (std::vector<protocol::Ipv4Prefix>{{0x0A000007, 32}, {0xC0A80700, 24}}));
}

TEST(NetbackBackendConfig, OptionalKeysDefault) {
  KeyMap keys = valid_backend();
  for (const auto name : {key::kBridge, key::kScript, key::kRate, key::kMtu, key::kIp}) {
    keys.erase(k(name));
  }
  const BackendConfig config = parse_backend_config(kId, map_reader(keys));
  EXPECT_FALSE(config.bridge);
  EXPECT_FALSE(config.script);
  EXPECT_FALSE(config.rate);
  EXPECT_EQ(config.mtu, 1500U);
  EXPECT_TRUE(config.ip.empty()) << "no `ip`: any address";

  // libxl writes an empty script for "no script".
  keys.insert_or_assign(k(key::kScript), "");
  EXPECT_FALSE(parse_backend_config(kId, map_reader(keys)).script);
}

TEST(NetbackBackendConfig, TakesOpenVswitchPortsAsVifOpenvswitchReadsThem) {
  for (const auto& [value, name, vlan, trunks] :
       {std::tuple<std::string, std::string, std::optional<std::uint16_t>,
                   std::vector<std::uint16_t>>{"ovsbr.10", "ovsbr", 10, {}},
        {"ovsbr:10:20", "ovsbr", std::nullopt, {10, 20}},
        {"ovsbr.5:6:7", "ovsbr", 5, {6, 7}}}) {
    KeyMap keys = valid_backend();
    keys.insert_or_assign(k(key::kBridge), value);
    const BackendConfig config = parse_backend_config(kId, map_reader(keys));
    ASSERT_TRUE(config.bridge) << value;
    EXPECT_EQ(config.bridge->value, value) << "the script gets the key unchanged";
    EXPECT_EQ(config.bridge->name, name);
    EXPECT_EQ(config.bridge->vlan, vlan) << value;
    EXPECT_EQ(config.bridge->trunks, trunks) << value;
  }
}

TEST(NetbackBackendConfig, MtuBoundsAreInclusive) {
  for (const unsigned mtu : {kMinMtu, 1500U, kMaxMtu}) {
    KeyMap keys = valid_backend();
    keys.insert_or_assign(k(key::kMtu), std::to_string(mtu));
    EXPECT_EQ(parse_backend_config(kId, map_reader(keys)).mtu, mtu);
  }
}

TEST(NetbackBackendConfig, EveryHostileValueNamesItsKey) {
  const std::vector<Mutation> mutations = {
      {k(key::kFrontendId), std::nullopt, k(key::kFrontendId)},
      {k(key::kFrontendId), "8", k(key::kFrontendId)},  // not the path's domid
      {k(key::kFrontendId), "07", k(key::kFrontendId)},
      {k(key::kFrontendId), "-7", k(key::kFrontendId)},
      {k(key::kFrontendId), "32752", k(key::kFrontendId)},  // DOMID_FIRST_RESERVED
      {k(key::kFrontendId), "", k(key::kFrontendId)},
      {k(key::kFrontend), std::nullopt, k(key::kFrontend)},
      {k(key::kFrontend), frontend_path({8, 2}), k(key::kFrontend)},
      {k(key::kFrontend), frontend_path({7, 3}), k(key::kFrontend)},
      {k(key::kFrontend), frontend_path(kId) + "/", k(key::kFrontend)},
      {k(key::kFrontend), "", k(key::kFrontend)},
      {k(key::kHandle), std::nullopt, k(key::kHandle)},
      {k(key::kHandle), "65536", k(key::kHandle)},
      {k(key::kHandle), "02", k(key::kHandle)},
      {k(key::kHandle), "0x2", k(key::kHandle)},
      {k(key::kMac), std::nullopt, k(key::kMac)},
      {k(key::kMac), "00:16:3e:0a:0b", k(key::kMac)},
      {k(key::kMac), "00:16:3e:0a:0b:zz", k(key::kMac)},
      {k(key::kMac), "00:16:3e:0a:0b:0c:0d", k(key::kMac)},
      {k(key::kBridge), "", k(key::kBridge)},
      {k(key::kBridge), "a/b", k(key::kBridge)},
      {k(key::kBridge), "br 0", k(key::kBridge)},
      {k(key::kBridge), "..", k(key::kBridge)},
      {k(key::kBridge), "sixteen-chars-xx", k(key::kBridge)},  // IFNAMSIZ
      {k(key::kBridge), "ovsbr.4095", k(key::kBridge)},        // VLAN ids 1..4094
      {k(key::kBridge), "ovsbr:10:0", k(key::kBridge)},
      {k(key::kBridge), "ovsbr:10:10", k(key::kBridge)},
      {k(key::kBridge), "ovs.br:10", k(key::kBridge)},
      {k(key::kRate), "0,20000", k(key::kRate)},
      {k(key::kRate), "125000,0", k(key::kRate)},
      {k(key::kRate), "125000", k(key::kRate)},
      {k(key::kRate), "fast", k(key::kRate)},
      {k(key::kMtu), std::to_string(kMinMtu - 1), k(key::kMtu)},
      {k(key::kMtu), std::to_string(kMaxMtu + 1), k(key::kMtu)},
      {k(key::kMtu), "1500 ", k(key::kMtu)},
      {k(key::kMtu), "", k(key::kMtu)},
      {k(key::kIp), "", k(key::kIp)},
      {k(key::kIp), "10.0.0.300", k(key::kIp)},
      {k(key::kIp), "fe80::1", k(key::kIp)},
      {k(key::kIp), "10.0.0.7/24", k(key::kIp)},
  };
  for (const auto& mutation : mutations) {
    const KeyMap keys = apply(valid_backend(), mutation);
    EXPECT_EQ(rejected_key([&] { (void)parse_backend_config(kId, map_reader(keys)); }),
              mutation.blamed)
        << mutation.key << "=" << mutation.value.value_or("<absent>");
  }
}

TEST(NetbackBackendConfig, AdvertisedFeatures) {
  const auto features = backend_advertised_features(3);
  const KeyMap keys(features.begin(), features.end());
  EXPECT_EQ(keys.size(), features.size()) << "a key advertised twice";
  for (const auto name :
       {key::kFeatureSg, key::kFeatureGsoTcpv4, key::kFeatureGsoTcpv6, key::kFeatureIpv6CsumOffload,
        key::kFeatureRxCopy, key::kFeatureSplitEventChannels, key::kFeatureMulticastControl,
        key::kFeatureDynamicMulticastControl, key::kFeatureCtrlRing, key::kFeatureXdpHeadroom}) {
    EXPECT_EQ(map_reader(keys)(name), std::optional<std::string>("1")) << name;
  }
  EXPECT_EQ(map_reader(keys)(key::kFeatureRxFlip), std::optional<std::string>("0"));
  EXPECT_EQ(map_reader(keys)(key::kMultiQueueMaxQueues), std::optional<std::string>("3"));
}

// ---- frontend directory (the guest's keys, hostile) --------------------------

// One queue, one shared event channel, nothing optional.
KeyMap minimal_frontend() {
  return {{k(key::kRequestRxCopy), "1"}, {k(key::kFeatureRxNotify), "1"}, {k(key::kTxRingRef), "8"},
          {k(key::kRxRingRef), "9"},     {k(key::kEventChannel), "5"},    {k(key::kState), "4"}};
}

// `count` queues with split channels under queue-<i>/.
KeyMap multi_queue_frontend(unsigned count) {
  KeyMap keys = {{k(key::kRequestRxCopy), "1"},
                 {k(key::kFeatureRxNotify), "1"},
                 {k(key::kMultiQueueNumQueues), std::to_string(count)}};
  for (unsigned i = 0; i < count; ++i) {
    keys.emplace(key::queue_key(i, count, key::kTxRingRef), std::to_string(100 + 2 * i));
    keys.emplace(key::queue_key(i, count, key::kRxRingRef), std::to_string(101 + 2 * i));
    keys.emplace(key::queue_key(i, count, key::kEventChannelTx), std::to_string(10 + 2 * i));
    keys.emplace(key::queue_key(i, count, key::kEventChannelRx), std::to_string(11 + 2 * i));
  }
  return keys;
}

TEST(NetbackFrontendConnection, OneQueueSharedChannel) {
  const KeyMap keys = minimal_frontend();
  const FrontendConnection connection = parse_frontend_connection(map_reader(keys), 4, 1500);
  ASSERT_EQ(connection.queues.size(), 1U);
  const QueueConnection& queue = connection.queues[0];
  EXPECT_EQ(queue.tx_ring_ref, 8U);
  EXPECT_EQ(queue.rx_ring_ref, 9U);
  EXPECT_EQ(queue.tx_port, 5U);
  EXPECT_EQ(queue.rx_port, 5U);
  EXPECT_FALSE(queue.split_event_channels);
  EXPECT_FALSE(connection.ctrl_ring);
  // Absent flags: Linux netback's defaults.
  const VifFeatures& features = connection.features;
  EXPECT_TRUE(features.rx_notify);
  EXPECT_FALSE(features.sg);
  EXPECT_FALSE(features.gso_tcpv4);
  EXPECT_FALSE(features.gso_tcpv6);
  EXPECT_TRUE(features.csum_ipv4);
  EXPECT_FALSE(features.csum_ipv6);
  EXPECT_FALSE(features.multicast_control);
  EXPECT_EQ(features.mtu, 1500U);
}

TEST(NetbackFrontendConnection, SplitChannels) {
  KeyMap keys = minimal_frontend();
  keys.erase(k(key::kEventChannel));
  keys.emplace(k(key::kEventChannelTx), "5");
  keys.emplace(k(key::kEventChannelRx), "6");
  const FrontendConnection connection = parse_frontend_connection(map_reader(keys), 1, 1500);
  ASSERT_EQ(connection.queues.size(), 1U);
  EXPECT_TRUE(connection.queues[0].split_event_channels);
  EXPECT_EQ(connection.queues[0].tx_port, 5U);
  EXPECT_EQ(connection.queues[0].rx_port, 6U);
}

TEST(NetbackFrontendConnection, SplitWinsOverShared) {
  // Linux netback looks for event-channel-tx first; a stale shared key is
  // ignored.
  KeyMap keys = minimal_frontend();
  keys.emplace(k(key::kEventChannelTx), "6");
  keys.emplace(k(key::kEventChannelRx), "7");
  const FrontendConnection connection = parse_frontend_connection(map_reader(keys), 1, 1500);
  EXPECT_TRUE(connection.queues[0].split_event_channels);
  EXPECT_EQ(connection.queues[0].tx_port, 6U);
}

TEST(NetbackFrontendConnection, MultiQueue) {
  const KeyMap keys = multi_queue_frontend(3);
  const FrontendConnection connection = parse_frontend_connection(map_reader(keys), 4, 1500);
  ASSERT_EQ(connection.queues.size(), 3U);
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_EQ(connection.queues[i].tx_ring_ref, 100 + 2 * i);
    EXPECT_EQ(connection.queues[i].rx_ring_ref, 101 + 2 * i);
    EXPECT_EQ(connection.queues[i].tx_port, 10 + 2 * i);
    EXPECT_EQ(connection.queues[i].rx_port, 11 + 2 * i);
    EXPECT_TRUE(connection.queues[i].split_event_channels);
  }
}

TEST(NetbackFrontendConnection, OneQueueRequestedUsesTheFlatKeys) {
  KeyMap keys = minimal_frontend();
  keys.emplace(k(key::kMultiQueueNumQueues), "1");
  keys.emplace(key::queue_key(0, 2, key::kTxRingRef), "77");  // ignored
  const FrontendConnection connection = parse_frontend_connection(map_reader(keys), 4, 1500);
  ASSERT_EQ(connection.queues.size(), 1U);
  EXPECT_EQ(connection.queues[0].tx_ring_ref, 8U);
}

TEST(NetbackFrontendConnection, CtrlRing) {
  KeyMap keys = minimal_frontend();
  keys.emplace(k(key::kCtrlRingRef), "12");
  keys.emplace(k(key::kEventChannelCtrl), "13");
  const FrontendConnection connection = parse_frontend_connection(map_reader(keys), 1, 1500);
  ASSERT_TRUE(connection.ctrl_ring);
  EXPECT_EQ(connection.ctrl_ring->ring_ref, 12U);
  EXPECT_EQ(connection.ctrl_ring->port, 13U);
}

TEST(NetbackFrontendConnection, Features) {
  KeyMap keys = minimal_frontend();
  keys.emplace(k(key::kFeatureSg), "1");
  keys.emplace(k(key::kFeatureGsoTcpv4), "1");
  keys.emplace(k(key::kFeatureGsoTcpv6), "1");
  keys.emplace(k(key::kFeatureNoCsumOffload), "1");
  keys.emplace(k(key::kFeatureIpv6CsumOffload), "1");
  keys.emplace(k(key::kRequestMulticastControl), "1");
  const VifFeatures features = parse_frontend_connection(map_reader(keys), 1, 9000).features;
  EXPECT_TRUE(features.sg);
  EXPECT_TRUE(features.gso_tcpv4);
  EXPECT_TRUE(features.gso_tcpv6);
  EXPECT_FALSE(features.csum_ipv4);
  EXPECT_TRUE(features.csum_ipv6);
  EXPECT_TRUE(features.multicast_control);
  EXPECT_EQ(features.mtu, 9000U);
}

TEST(NetbackFrontendConnection, MtuCappedWithoutScatterGather) {
  struct Case {
    const char* sg;  // nullptr: absent
    unsigned backend_mtu;
    unsigned expected;
  };
  for (const Case& c : {Case{nullptr, 9000, kMtuWithoutSg}, Case{"0", 9000, kMtuWithoutSg},
                        Case{"1", 9000, 9000}, Case{"0", 1000, 1000}, Case{"1", 1000, 1000},
                        Case{"0", kMaxMtu, kMtuWithoutSg}, Case{"1", kMaxMtu, kMaxMtu}}) {
    KeyMap keys = minimal_frontend();
    if (c.sg) {
      keys.emplace(k(key::kFeatureSg), c.sg);
    }
    EXPECT_EQ(parse_frontend_connection(map_reader(keys), 1, c.backend_mtu).features.mtu,
              c.expected)
        << (c.sg ? c.sg : "absent") << " " << c.backend_mtu;
  }
}

TEST(NetbackFrontendConnection, EveryHostileValueNamesItsKey) {
  std::vector<Mutation> mutations = {
      {k(key::kRequestRxCopy), std::nullopt, k(key::kRequestRxCopy)},
      {k(key::kRequestRxCopy), "0", k(key::kRequestRxCopy)},  // rx-flip
      {k(key::kRequestRxCopy), "2", k(key::kRequestRxCopy)},
      {k(key::kFeatureRxNotify), std::nullopt, k(key::kFeatureRxNotify)},
      {k(key::kFeatureRxNotify), "0", k(key::kFeatureRxNotify)},
      {k(key::kFeatureRxNotify), "yes", k(key::kFeatureRxNotify)},
      {k(key::kMultiQueueNumQueues), "0", k(key::kMultiQueueNumQueues)},
      {k(key::kMultiQueueNumQueues), "5", k(key::kMultiQueueNumQueues)},  // above max 4
      {k(key::kMultiQueueNumQueues), "-1", k(key::kMultiQueueNumQueues)},
      {k(key::kTxRingRef), std::nullopt, k(key::kTxRingRef)},
      {k(key::kTxRingRef), "7", k(key::kTxRingRef)},  // reserved for the toolstack
      {k(key::kTxRingRef), "4294967295", k(key::kTxRingRef)},
      {k(key::kTxRingRef), "8x", k(key::kTxRingRef)},
      {k(key::kRxRingRef), std::nullopt, k(key::kRxRingRef)},
      {k(key::kRxRingRef), "0", k(key::kRxRingRef)},
      {k(key::kEventChannel), std::nullopt, k(key::kEventChannel)},
      {k(key::kEventChannel), "0", k(key::kEventChannel)},
      {k(key::kEventChannel), "131072", k(key::kEventChannel)},
      {k(key::kEventChannelTx), "0", k(key::kEventChannelTx)},
      // event-channel-tx makes the channels split: -rx is then required.
      {k(key::kEventChannelTx), "6", k(key::kEventChannelRx)},
      {k(key::kCtrlRingRef), "12", k(key::kEventChannelCtrl)},
      {k(key::kEventChannelCtrl), "13", k(key::kCtrlRingRef)},
      {k(key::kXdpHeadroom), "-1", k(key::kXdpHeadroom)},
      {k(key::kXdpHeadroom), "0x100", k(key::kXdpHeadroom)},
      {k(key::kXdpHeadroom), "4096", k(key::kXdpHeadroom)},   // no room left for data
      {k(key::kXdpHeadroom), "32768", k(key::kXdpHeadroom)},  // above XEN_NETIF_MAX_XDP_HEADROOM
      {k(key::kXdpHeadroom), "", k(key::kXdpHeadroom)},
  };
  for (const auto name :
       {key::kFeatureSg, key::kFeatureGsoTcpv4, key::kFeatureGsoTcpv6, key::kFeatureNoCsumOffload,
        key::kFeatureIpv6CsumOffload, key::kRequestMulticastControl}) {
    mutations.push_back({k(name), "2", k(name)});
    mutations.push_back({k(name), "", k(name)});
  }
  for (const auto& mutation : mutations) {
    const KeyMap keys = apply(minimal_frontend(), mutation);
    EXPECT_EQ(rejected_key([&] { (void)parse_frontend_connection(map_reader(keys), 4, 1500); }),
              mutation.blamed)
        << mutation.key << "=" << mutation.value.value_or("<absent>");
  }
}

TEST(NetbackFrontendConnection, HostileSplitAndCtrlValues) {
  KeyMap split = minimal_frontend();
  split.erase(k(key::kEventChannel));
  split.emplace(k(key::kEventChannelTx), "5");
  split.emplace(k(key::kEventChannelRx), "5");
  EXPECT_EQ(rejected_key([&] { (void)parse_frontend_connection(map_reader(split), 1, 1500); }),
            k(key::kEventChannelRx));

  KeyMap ctrl = minimal_frontend();
  ctrl.emplace(k(key::kCtrlRingRef), "3");
  ctrl.emplace(k(key::kEventChannelCtrl), "13");
  EXPECT_EQ(rejected_key([&] { (void)parse_frontend_connection(map_reader(ctrl), 1, 1500); }),
            k(key::kCtrlRingRef));
  ctrl.insert_or_assign(k(key::kCtrlRingRef), "12");
  ctrl.insert_or_assign(k(key::kEventChannelCtrl), "0");
  EXPECT_EQ(rejected_key([&] { (void)parse_frontend_connection(map_reader(ctrl), 1, 1500); }),
            k(key::kEventChannelCtrl));
}

TEST(NetbackFrontendConnection, HostileQueueKeysNameTheQueue) {
  for (const auto name :
       {key::kTxRingRef, key::kRxRingRef, key::kEventChannelTx, key::kEventChannelRx}) {
    const std::string queue_key = key::queue_key(2, 3, name);
    for (const std::optional<std::string>& value :
         {std::optional<std::string>(), std::optional<std::string>("0"),
          std::optional<std::string>("nope")}) {
      KeyMap keys = apply(multi_queue_frontend(3), {queue_key, value, ""});
      // Without queue-2/event-channel-tx the queue falls back to a shared
      // channel, which it lacks.
      const std::string blamed = name == key::kEventChannelTx && !value
                                     ? key::queue_key(2, 3, key::kEventChannel)
                                     : queue_key;
      EXPECT_EQ(rejected_key([&] { (void)parse_frontend_connection(map_reader(keys), 4, 1500); }),
                blamed)
          << queue_key << "=" << value.value_or("<absent>");
    }
  }
  // The flat keys do not stand in for queue-<i>/ ones.
  KeyMap keys = multi_queue_frontend(2);
  keys.erase(key::queue_key(1, 2, key::kTxRingRef));
  keys.emplace(k(key::kTxRingRef), "8");
  EXPECT_EQ(rejected_key([&] { (void)parse_frontend_connection(map_reader(keys), 4, 1500); }),
            key::queue_key(1, 2, key::kTxRingRef));
}

TEST(NetbackFrontendConnection, RingsPublished) {
  EXPECT_TRUE(frontend_published_rings(map_reader(minimal_frontend())));
  EXPECT_TRUE(frontend_published_rings(map_reader(multi_queue_frontend(2))));
  KeyMap none = minimal_frontend();
  none.erase(k(key::kTxRingRef));
  EXPECT_FALSE(frontend_published_rings(map_reader(none)));
  EXPECT_FALSE(frontend_published_rings(map_reader(KeyMap{})));
}

TEST(NetbackFrontendConnection, MulticastRequest) {
  KeyMap keys;
  EXPECT_FALSE(frontend_requests_multicast_control(map_reader(keys)).value());
  keys.emplace(k(key::kRequestMulticastControl), "1");
  EXPECT_TRUE(frontend_requests_multicast_control(map_reader(keys)).value());
  keys.insert_or_assign(k(key::kRequestMulticastControl), "0");
  EXPECT_FALSE(frontend_requests_multicast_control(map_reader(keys)).value());
  keys.insert_or_assign(k(key::kRequestMulticastControl), "on");
  const auto bad = frontend_requests_multicast_control(map_reader(keys));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().key, k(key::kRequestMulticastControl));
}

TEST(NetbackFrontendConnection, XdpHeadroom) {
  KeyMap keys = minimal_frontend();
  EXPECT_EQ(parse_frontend_connection(map_reader(keys), 4, 1500).features.xdp_headroom, 0);
  EXPECT_EQ(frontend_xdp_headroom(map_reader(keys)).value(), 0);
  keys.emplace(k(key::kXdpHeadroom), "256");  // what Linux netfront writes with XDP on
  EXPECT_EQ(parse_frontend_connection(map_reader(keys), 4, 1500).features.xdp_headroom, 256);
  keys.insert_or_assign(k(key::kXdpHeadroom), std::to_string(kMaxServedXdpHeadroom));
  EXPECT_EQ(frontend_xdp_headroom(map_reader(keys)).value(), kMaxServedXdpHeadroom);
  keys.insert_or_assign(k(key::kXdpHeadroom), "32767");
  const auto bad = frontend_xdp_headroom(map_reader(keys));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().key, k(key::kXdpHeadroom));
  EXPECT_NE(bad.error().message().find("no room for data"), std::string::npos)
      << bad.error().message();
}

// ---- state, online, hotplug-status -------------------------------------------

TEST(XenbusStateKeys, State) {
  KeyMap keys;
  EXPECT_EQ(read_state(map_reader(keys)), std::nullopt);
  EXPECT_EQ(read_peer_state(map_reader(keys)), XenbusState::kUnknown);
  keys.emplace(k(key::kState), "4");
  EXPECT_EQ(read_state(map_reader(keys)), XenbusState::kConnected);
  EXPECT_EQ(read_peer_state(map_reader(keys)), XenbusState::kConnected);
  for (const char* bad : {"9", "04", "", "Connected", "-1"}) {
    keys.insert_or_assign(k(key::kState), bad);
    EXPECT_EQ(read_state(map_reader(keys)), std::nullopt) << bad;
    EXPECT_EQ(read_peer_state(map_reader(keys)), XenbusState::kUnknown) << bad;
  }
}

TEST(XenbusStateKeys, OnlineAndHotplugStatus) {
  const std::vector<std::pair<std::optional<std::string>, bool>> online = {
      {std::nullopt, true}, {"1", true}, {"0", false}, {"", true}, {"00", true}};
  for (const auto& [value, expected] : online) {
    KeyMap keys;
    if (value) {
      keys.emplace(k(key::kOnline), *value);
    }
    EXPECT_EQ(read_online(map_reader(keys)), expected) << value.value_or("<absent>");
  }
  const std::vector<std::pair<std::optional<std::string>, bool>> hotplug = {
      {std::nullopt, false}, {"connected", true}, {"error", false}, {"Connected", false}};
  for (const auto& [value, expected] : hotplug) {
    KeyMap keys;
    if (value) {
      keys.emplace(k(key::kHotplugStatus), *value);
    }
    EXPECT_EQ(hotplug_connected(map_reader(keys)), expected) << value.value_or("<absent>");
  }
}

TEST(IgnoredBackendKeys, NamesWhatXlWroteThatVifdDoesNotDo) {
  KeyMap keys;
  // What libxl writes for a plain vif, and what vifd and the scripts add.
  for (const auto name :
       {key::kFrontend, key::kFrontendId, key::kHandle, key::kMac, key::kBridge, key::kScript,
        key::kRate, key::kMtu, key::kIp, key::kState, key::kOnline, key::kError,
        key::kHotplugStatus, key::kHotplugError, key::kFeatureSg, key::kMultiQueueMaxQueues}) {
    keys.emplace(std::string(name), "x");
  }
  keys.emplace(std::string(key::kType), "vif");
  EXPECT_TRUE(ignored_backend_keys(keys).keys.empty());

  keys.insert_or_assign(std::string(key::kType), "vif_ioemu");
  keys.emplace(std::string(key::kVifname), "web0");
  keys.emplace(std::string(key::kModel), "e1000");
  keys.emplace(std::string(key::kGatewaydev), "eth0");
  keys.emplace("colo_compare_pri_in", "x");
  const auto ignored = ignored_backend_keys(keys);
  ASSERT_EQ(ignored.keys.size(), 5U);
  EXPECT_EQ(ignored.more, 0U);
  // In key order.
  EXPECT_EQ(ignored.keys[0].key, "colo_compare_pri_in");
  EXPECT_EQ(ignored.keys[1].key, "gatewaydev");
  EXPECT_EQ(ignored.keys[2].key, "model");
  EXPECT_EQ(ignored.keys[3].key, "type");
  EXPECT_EQ(ignored.keys[3].value, "vif_ioemu");
  EXPECT_EQ(ignored.keys[4].key, "vifname");
  for (const auto& entry : ignored.keys) {
    EXPECT_FALSE(entry.why.empty()) << entry.key;
  }
}

TEST(IgnoredBackendKeys, HostileNamesAndValuesAreEscapedAndBounded) {
  KeyMap keys;
  keys.emplace("evil\x1b[2J", std::string(1000, 'v') + "\x07");
  for (int i = 0; i < 40; ++i) {
    keys.emplace("unknown-" + std::to_string(100 + i), "1");
  }
  const auto ignored = ignored_backend_keys(keys);
  ASSERT_EQ(ignored.keys.size(), kMaxIgnoredKeys);
  EXPECT_EQ(ignored.more, 41U - kMaxIgnoredKeys);
  // In key order: "evil..." first.
  const auto& entry = ignored.keys.front();
  EXPECT_EQ(entry.key, "evil\\x1b[2J");
  EXPECT_LE(entry.value.size(), 80U);
  for (const std::string& text : {entry.key, entry.value}) {
    for (const char c : text) {
      EXPECT_TRUE(static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F);
    }
  }
}

}  // namespace
}  // namespace vifd::xenbus
