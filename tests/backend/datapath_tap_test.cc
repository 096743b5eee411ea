// A Queue with a real TAP (IFF_VNET_HDR) in a private network namespace:
// vif1.0 (the queue's) and peer0 (the test's) on bridge br0, so frames the
// guest sends come out of peer0 with their virtio header, and frames written
// to peer0 reach the guest's posted RX buffers. Needs root (CI runs as
// root); each test runs in its own process (gtest_discover_tests), so the
// namespace and every link in it vanish with the process.
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "common/net/link.h"
#include "common/net/packet_meta.h"
#include "common/net/tap_device.h"
#include "tests/backend/datapath_harness.h"
#include "tests/net/frame_builder.h"

namespace vifd::backend::testing {
namespace {

using net::testing::build_frame;

struct Received {
  net::VirtioNetHdr header{};
  std::vector<std::uint8_t> frame;
};

// The next frame on `fd` from `source` (the bridge also floods whatever the
// namespace's own stack sends).
std::optional<Received> receive_from(int fd, const protocol::MacAddress& source) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    Received received;
    received.frame.resize(70000);
    const auto result = net::tap_read(fd, received.header, received.frame);
    if (result.status != net::TapIoStatus::kOk) continue;
    received.frame.resize(result.bytes);
    if (std::equal(source.octets.begin(), source.octets.end(), received.frame.begin() + 6)) {
      return received;
    }
  }
  return std::nullopt;
}

// Turns off br0's multicast snooping over rtnetlink (sysfs still shows the
// parent namespace's links). A snooping bridge joins the IPv4 all-snoopers
// group 224.0.0.106 when it comes up (RFC 4286, br_multicast_join_snoopers)
// and sends an unsolicited IGMPv3 report for it, repeated up to a second
// later; the bridge floods those to vif1.0, so they would land in the
// guest's RX buffers next to the test's own frames, at a time that varies
// from run to run. With IPv6 disabled and no IPv4 address, nothing else in
// the namespace's own stack sends on the bridge.
void disable_multicast_snooping(const char* bridge) {
  std::vector<std::uint8_t> message(NLMSG_LENGTH(sizeof(ifinfomsg)));
  ifinfomsg info{};
  info.ifi_family = AF_UNSPEC;
  info.ifi_index = net::link_index(bridge);
  std::memcpy(message.data() + NLMSG_LENGTH(0), &info, sizeof(info));
  // Appends an attribute and returns its offset, so a nest's length can be
  // patched once its contents are in.
  const auto append = [&](unsigned short type, const void* data, std::size_t length) {
    const std::size_t at = message.size();
    rtattr attribute{};
    attribute.rta_type = type;
    attribute.rta_len = static_cast<unsigned short>(RTA_LENGTH(length));
    message.resize(at + RTA_ALIGN(RTA_LENGTH(length)));
    std::memcpy(message.data() + at, &attribute, sizeof(attribute));
    if (length != 0) std::memcpy(message.data() + at + RTA_LENGTH(0), data, length);
    return at;
  };
  const auto close_nest = [&](std::size_t at) {
    const auto length = static_cast<unsigned short>(message.size() - at);
    std::memcpy(message.data() + at + offsetof(rtattr, rta_len), &length, sizeof(length));
  };
  const std::size_t link_info = append(IFLA_LINKINFO, nullptr, 0);
  append(IFLA_INFO_KIND, "bridge", sizeof("bridge"));
  const std::size_t info_data = append(IFLA_INFO_DATA, nullptr, 0);
  const std::uint8_t off = 0;
  append(IFLA_BR_MCAST_SNOOPING, &off, sizeof(off));
  close_nest(info_data);
  close_nest(link_info);
  nlmsghdr header{};
  header.nlmsg_len = static_cast<std::uint32_t>(message.size());
  header.nlmsg_type = RTM_NEWLINK;
  header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  header.nlmsg_seq = 1;
  std::memcpy(message.data(), &header, sizeof(header));

  const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "netlink socket");
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  const ssize_t sent = ::sendto(fd, message.data(), message.size(), 0,
                                reinterpret_cast<const sockaddr*>(&kernel), sizeof(kernel));
  std::vector<std::uint8_t> reply(4096);
  const ssize_t received = sent < 0 ? -1 : ::recv(fd, reply.data(), reply.size(), 0);
  const int error = errno;
  ::close(fd);
  const std::string what = std::string("turning off multicast snooping on ") + bridge;
  if (received < 0) throw std::system_error(error, std::generic_category(), what);
  // With NLM_F_ACK the only answer is NLMSG_ERROR, error 0 on success.
  nlmsghdr answer{};
  nlmsgerr ack{};
  if (static_cast<std::size_t>(received) < NLMSG_LENGTH(sizeof(ack))) {
    throw std::runtime_error(what + ": short netlink reply");
  }
  std::memcpy(&answer, reply.data(), sizeof(answer));
  std::memcpy(&ack, reply.data() + NLMSG_LENGTH(0), sizeof(ack));
  if (answer.nlmsg_type != NLMSG_ERROR) throw std::runtime_error(what + ": no netlink ack");
  if (ack.error != 0) throw std::system_error(-ack.error, std::generic_category(), what);
}

class TapQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::getuid(), 0U) << "TAP tests need root (CI runs as root)";
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << std::strerror(errno);
    // No IPv6 in this namespace: no router solicitations or MLD on the bridge.
    std::ofstream("/proc/sys/net/ipv6/conf/all/disable_ipv6") << "1";
    std::ofstream("/proc/sys/net/ipv6/conf/default/disable_ipv6") << "1";
    host_.emplace(std::initializer_list<platform::DomId>{1});
    frontend_.emplace(*host_, 1);
  }

  void start(const VifFeatures& features, unsigned mtu = 1500) {
    net::create_bridge("br0");
    disable_multicast_snooping("br0");
    const net::TapOffloads offloads{
        .csum = true, .tso4 = features.gso_tcpv4, .tso6 = features.gso_tcpv6};
    vif_.emplace(net::TapOptions{.name = "vif1.0", .offloads = offloads});
    peer_.emplace(net::TapOptions{.name = "peer0", .offloads = {true, true, true}});
    for (const char* link : {"br0", "vif1.0", "peer0"}) net::set_mtu(link, mtu);
    vif_->add_to_bridge("br0");
    peer_->add_to_bridge("br0");
    for (const char* link : {"br0", "vif1.0", "peer0"}) net::set_link_up(link, true);
    QueueOptions options;
    options.features = features;
    options.features.mtu = mtu;
    options.tap_fd = vif_->queue_fd(0);
    backend_.emplace(*host_, *frontend_, options);
  }
  QueueStats stats() { return backend_->stats(); }

  void TearDown() override {
    backend_.reset();
    frontend_.reset();
    host_.reset();
  }

  std::optional<SimHost> host_;
  std::optional<TestFrontend> frontend_;
  std::optional<net::TapDevice> vif_;
  std::optional<net::TapDevice> peer_;
  std::optional<BackendQueue> backend_;
};

void set_macs(std::vector<std::uint8_t>& frame, const protocol::MacAddress& destination,
              const protocol::MacAddress& source) {
  std::copy(destination.octets.begin(), destination.octets.end(), frame.begin());
  std::copy(source.octets.begin(), source.octets.end(), frame.begin() + 6);
}

TEST_F(TapQueueTest, GuestTxFramesComeOutOfTheTapWithTheirVirtioHeader) {
  start({.sg = true, .gso_tcpv4 = true, .gso_tcpv6 = true, .csum_ipv6 = true});
  const protocol::MacAddress guest = test_mac(1);
  // Single slot, no offload.
  auto plain = build_frame({.l4_protocol = 17, .payload = 100}).bytes;
  set_macs(plain, test_mac(9), guest);
  frontend_->send_frame(plain);
  auto got = receive_from(peer_->queue_fd(0), guest);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->frame, plain);

  // Multi-slot GSO with a partial checksum, as Linux netfront sends TSO.
  auto tso = build_frame({.ip_version = 6, .payload = 6000}).bytes;
  set_macs(tso, test_mac(9), guest);
  net::ChecksumLocation where;
  ASSERT_EQ(net::locate_checksum(tso, where), net::PacketStatus::kOk);
  ASSERT_EQ(net::seed_pseudo_header_checksum(tso, where), net::PacketStatus::kOk);
  protocol::ExtraInfo gso{};
  gso.type = protocol::kExtraTypeGso;
  gso.u.gso.size = 1400;
  gso.u.gso.type = protocol::kGsoTypeTcpv6;
  frontend_->send_frame(tso, protocol::kTxfCsumBlank | protocol::kTxfDataValidated, &gso, 2000);
  got = receive_from(peer_->queue_fd(0), guest);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->frame, tso);
  net::PacketMeta meta;
  ASSERT_EQ(net::meta_from_virtio(got->header, meta), net::PacketStatus::kOk);
  EXPECT_EQ(meta.gso_type, net::GsoType::kTcpv6);
  EXPECT_EQ(meta.gso_size, 1400);
  EXPECT_EQ(meta.checksum, net::ChecksumState::kPartial);
  EXPECT_EQ(meta.csum_start, where.csum_start);

  EXPECT_EQ(frontend_->wait_tx_responses(6).size(), 6U);  // 1 + (4 data + 1 extra)
  const QueueStats s = stats();
  EXPECT_EQ(s.tap_writes, 2U);
  EXPECT_EQ(s.total_drops(), 0U);
}

TEST_F(TapQueueTest, HostFramesFillPostedBuffersWithFlagsAndAGsoExtra) {
  start({.sg = true, .gso_tcpv4 = true, .gso_tcpv6 = true, .csum_ipv6 = true});
  frontend_->post_rx(16);
  const protocol::MacAddress host = test_mac(0x50);

  // Small frame, no metadata.
  auto plain = build_frame({.l4_protocol = 17, .payload = 100}).bytes;
  set_macs(plain, test_mac(1), host);
  net::VirtioNetHdr none{};
  ASSERT_EQ(net::tap_write(peer_->queue_fd(0), none, plain).status, net::TapIoStatus::kOk);
  auto responses = frontend_->wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(responses[0].status, static_cast<std::int16_t>(plain.size()));
  EXPECT_EQ(responses[0].offset, 0);
  EXPECT_EQ(responses[0].flags & protocol::kRxfMoreData, 0);
  EXPECT_EQ(frontend_->frames_of(responses).at(0), plain);

  // A 10000-byte TCPv4 GSO frame with a partial checksum: 3 data slots and
  // the GSO extra in the second response slot.
  auto tso = build_frame({.payload = 10000}).bytes;
  set_macs(tso, test_mac(1), host);
  net::ChecksumLocation where;
  ASSERT_EQ(net::locate_checksum(tso, where), net::PacketStatus::kOk);
  ASSERT_EQ(net::seed_pseudo_header_checksum(tso, where), net::PacketStatus::kOk);
  net::PacketMeta meta;
  meta.checksum = net::ChecksumState::kPartial;
  meta.csum_located = true;
  meta.csum_start = where.csum_start;
  meta.csum_offset = where.csum_offset;
  meta.gso_type = net::GsoType::kTcpv4;
  meta.gso_size = 1448;
  meta.hdr_len = where.header_len;
  net::VirtioNetHdr header{};
  ASSERT_EQ(net::meta_to_virtio(meta, header), net::PacketStatus::kOk);
  ASSERT_EQ(net::tap_write(peer_->queue_fd(0), header, tso).status, net::TapIoStatus::kOk);
  responses = frontend_->wait_rx_responses(4);
  ASSERT_EQ(responses.size(), 4U);
  EXPECT_EQ(responses[0].flags, protocol::kRxfCsumBlank | protocol::kRxfDataValidated |
                                    protocol::kRxfExtraInfo | protocol::kRxfMoreData);
  EXPECT_EQ(responses[0].status, 4096);
  protocol::ExtraInfo extra{};
  std::memcpy(&extra, &responses[1], sizeof(extra));
  EXPECT_EQ(extra.type, protocol::kExtraTypeGso);
  EXPECT_EQ(extra.u.gso.type, protocol::kGsoTypeTcpv4);
  EXPECT_EQ(extra.u.gso.size, 1448);
  EXPECT_EQ(responses[2].flags, protocol::kRxfMoreData);
  EXPECT_EQ(responses[3].flags, 0);
  EXPECT_EQ(frontend_->frames_of(responses).at(0), tso);
  const QueueStats s = stats();
  EXPECT_EQ(s.rx_packets, 2U);
  EXPECT_EQ(s.rx_bytes, plain.size() + tso.size());
  EXPECT_GE(s.tap_reads, 2U);
}

TEST_F(TapQueueTest, WithoutSgAFrameLargerThanAPageIsDropped) {
  start({.sg = false, .csum_ipv4 = true}, 9000);
  frontend_->post_rx(8);
  auto jumbo = build_frame({.l4_protocol = 17, .payload = 6000}).bytes;
  set_macs(jumbo, test_mac(1), test_mac(0x50));
  net::VirtioNetHdr none{};
  ASSERT_EQ(net::tap_write(peer_->queue_fd(0), none, jumbo).status, net::TapIoStatus::kOk);
  EXPECT_TRUE(eventually([&] { return stats().drop(DropReason::kRxFrameTooLarge) == 1; }));
  // A frame that fits still arrives.
  auto small = build_frame({.l4_protocol = 17, .payload = 1000}).bytes;
  set_macs(small, test_mac(1), test_mac(0x50));
  ASSERT_EQ(net::tap_write(peer_->queue_fd(0), none, small).status, net::TapIoStatus::kOk);
  const auto responses = frontend_->wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(frontend_->frames_of(responses).at(0), small);
}

TEST_F(TapQueueTest, TxToTapThroughput) {
  start({.sg = true});
  // Not a timed assertion: prints a figure for docs/PERFORMANCE.md.
  auto frame = build_frame({.l4_protocol = 17, .payload = 1400}).bytes;
  set_macs(frame, test_mac(9), test_mac(1));
  constexpr int kFrames = 20000;
  const auto begin = std::chrono::steady_clock::now();
  int sent = 0;
  int answered = 0;
  std::vector<protocol::TxResponse> responses(256);
  while (answered < kFrames) {
    while (sent < kFrames && frontend_->tx().free_requests() > 0) {
      frontend_->send_frame(frame);
      ++sent;
    }
    answered += static_cast<int>(frontend_->tx().take_responses(responses).count);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  const QueueStats s = stats();
  std::printf(
      "TX->TAP: %d frames of %zu bytes in %.3f s: %.0f packets/s, %.2f Gbit/s; "
      "%.3f grant-copy calls and %.3f notifications per packet\n",
      kFrames, frame.size(), seconds, kFrames / seconds, kFrames * frame.size() * 8 / seconds / 1e9,
      static_cast<double>(s.grant_copy_calls) / kFrames,
      static_cast<double>(s.notifications_sent) / kFrames);
  EXPECT_EQ(s.tx_packets + s.drop(DropReason::kTxTapFull), static_cast<std::uint64_t>(kFrames));
}

}  // namespace
}  // namespace vifd::backend::testing
