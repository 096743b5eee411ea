// TapDevice and link helpers against the real kernel. Needs root (CI runs as
// root) and never touches the host's interfaces: each test moves this test
// process into a fresh network namespace first. gtest_discover_tests runs
// every test in its own process, and a namespace that loses its last process
// is torn down by the kernel with all links in it, so nothing is left behind
// even when a test fails halfway.
#include "common/net/tap_device.h"

#include <endian.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "common/net/link.h"
#include "common/net/packet_meta.h"
#include "common/protocol/xs_parse.h"
#include "tests/net/frame_builder.h"

namespace vifd::net {
namespace {

using vifd::net::testing::build_frame;
using vifd::net::testing::Frame;

class TapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::getuid(), 0U) << "TAP tests need root (CI runs as root)";
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << std::strerror(errno);
  }
};

struct Received {
  VirtioNetHdr header{};
  std::vector<std::uint8_t> frame;
};

// Reads frames from `fd` until one for which `wanted` holds; the bridge also
// forwards whatever else the stack sends (IPv6 router solicitations, MLD).
// The wait bound only keeps a broken kernel path from hanging the test.
template <typename Predicate>
std::optional<Received> receive_matching(int fd, Predicate wanted) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    Received received;
    received.frame.resize(70000);
    const TapIoResult result = tap_read(fd, received.header, received.frame);
    if (result.status != TapIoStatus::kOk) continue;
    received.frame.resize(result.bytes);
    if (wanted(received.frame)) return received;
  }
  return std::nullopt;
}

// Our test frames carry TCP/UDP port 5001 as destination.
bool is_test_frame(const std::vector<std::uint8_t>& frame) {
  ChecksumLocation where;
  if (locate_checksum(frame, where) != PacketStatus::kOk) return false;
  return frame[where.csum_start + 2] == 0x13 && frame[where.csum_start + 3] == 0x89;
}

void bring_up_bridge(const std::string& bridge) {
  create_bridge(bridge);
  set_link_up(bridge, true);
}

TEST_F(TapTest, CreatesAMultiQueueTapWithEveryQueueNonBlocking) {
  TapDevice tap({.name = "vif5.0", .queues = 4, .multi_queue = true});
  EXPECT_TRUE(link_exists("vif5.0"));
  EXPECT_EQ(tap.queue_count(), 4U);
  EXPECT_EQ(tap.ifindex(), link_index("vif5.0"));
  for (std::size_t queue = 0; queue < tap.queue_count(); ++queue) {
    const int flags = ::fcntl(tap.queue_fd(queue), F_GETFL);
    EXPECT_NE(flags & O_NONBLOCK, 0);
    EXPECT_NE(::fcntl(tap.queue_fd(queue), F_GETFD) & FD_CLOEXEC, 0);
    VirtioNetHdr header{};
    std::vector<std::uint8_t> frame(2048);
    EXPECT_EQ(tap_read(tap.queue_fd(queue), header, frame).status, TapIoStatus::kWouldBlock);
  }
}

TEST_F(TapTest, DestroyRemovesTheLink) {
  TapDevice tap({.name = "vif7.3"});
  ASSERT_TRUE(link_exists("vif7.3"));
  tap.destroy();
  EXPECT_FALSE(tap.is_open());
  EXPECT_FALSE(link_exists("vif7.3"));
  tap.destroy();  // idempotent
}

TEST_F(TapTest, APersistentTapOutlivesItsFdsUntilDestroyedOrDeleted) {
  {
    TapDevice tap({.name = "vif8.0", .persistent = true});
    tap.destroy();
  }
  EXPECT_FALSE(link_exists("vif8.0")) << "destroy() clears persistence";

  // A process that exits without destroy() leaves a persistent TAP behind
  // (the restart case): delete_link() removes it by name, or a new TapDevice
  // attaches to it and, not asking for persistence, takes it down on destroy.
  for (const char* name : {"vif8.1", "vif8.2"}) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {
        TapDevice tap({.name = name, .persistent = true});
        ::_exit(0);  // skips the destructor: only the kernel closes the fds
      } catch (...) {
        ::_exit(1);
      }
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_TRUE(link_exists(name));
  }
  delete_link("vif8.1");
  EXPECT_FALSE(link_exists("vif8.1"));
  {
    TapDevice reattached({.name = "vif8.2"});
    EXPECT_EQ(reattached.ifindex(), link_index("vif8.2"));
  }
  EXPECT_FALSE(link_exists("vif8.2"));
}

TEST_F(TapTest, MovedFromTapOwnsNothing) {
  TapDevice first({.name = "vif9.0"});
  TapDevice second(std::move(first));
  EXPECT_FALSE(first.is_open());  // NOLINT(bugprone-use-after-move): the contract under test
  first.destroy();
  EXPECT_TRUE(link_exists("vif9.0"));
  second.destroy();
  EXPECT_FALSE(link_exists("vif9.0"));
}

TEST_F(TapTest, NameTooLongIsAClearError) {
  try {
    TapDevice tap({.name = "vif12345.123456"});  // 15 bytes: fits
    EXPECT_TRUE(link_exists("vif12345.123456"));
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  try {
    TapDevice tap({.name = "vif123456.123456"});
    FAIL() << "a 16-byte name was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("vif123456.123456"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("IFNAMSIZ"), std::string::npos) << e.what();
  }
  EXPECT_THROW(TapDevice({.name = ""}), std::invalid_argument);
  EXPECT_THROW(TapDevice({.name = "vif1/0"}), std::invalid_argument);
}

TEST_F(TapTest, RefusesInconsistentOptions) {
  EXPECT_THROW(TapDevice({.name = "vif1.0", .queues = 2}), std::invalid_argument);
  EXPECT_THROW(TapDevice({.name = "vif1.0", .queues = 0}), std::invalid_argument);
  EXPECT_THROW(TapDevice({.name = "vif1.0", .offloads = {.tso4 = true}}), std::invalid_argument);
  EXPECT_FALSE(link_exists("vif1.0"));
}

TEST_F(TapTest, AttachingWithOtherFlagsNamesTheInterface) {
  TapDevice single({.name = "vif2.0"});
  try {
    TapDevice multi({.name = "vif2.0", .queues = 2, .multi_queue = true});
    FAIL() << "attached a multi-queue TAP to a single-queue one";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("vif2.0"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(link_exists("vif2.0")) << "the failed attach must not take the device down";
}

TEST_F(TapTest, LinkSettingsApply) {
  TapDevice tap({.name = "vif3.0"});
  tap.set_mtu(9000);
  EXPECT_EQ(link_mtu("vif3.0"), 9000U);
  const protocol::MacAddress mac = protocol::parse_mac("mac", "fe:ff:ff:ff:ff:ff").value();
  tap.set_mac(mac);
  EXPECT_EQ(link_mac("vif3.0"), mac);
  EXPECT_EQ(link_mac("vif3.0").to_string(), "fe:ff:ff:ff:ff:ff");
  tap.set_link_up(true);
  EXPECT_TRUE(link_is_up("vif3.0"));
  set_address("vif3.0", "192.0.2.1/24");
  set_address("vif3.0", "2001:db8::1/64");
  EXPECT_THROW(set_address("vif3.0", "192.0.2.1"), std::invalid_argument);
  EXPECT_THROW(set_address("vif3.0", "192.0.2.1/33"), std::invalid_argument);
  EXPECT_THROW(set_address("vif3.0", "192.0.2.999/24"), std::invalid_argument);
  EXPECT_THROW(set_address("vif3.0", "192.0.2.1/24"), std::system_error);  // already there
  tap.set_link_up(false);
  EXPECT_FALSE(link_is_up("vif3.0"));
  EXPECT_THROW(set_mtu("nosuchlink", 1500), std::system_error);
  EXPECT_THROW(protocol::parse_mac("mac", "fe:ff:ff:ff:ff").value(), protocol::XenstoreValueError);
  EXPECT_THROW(protocol::parse_mac("mac", "fe:ff:ff:ff:ff:fg").value(),
               protocol::XenstoreValueError);
}

TEST_F(TapTest, CarrierFollowsTunSetCarrier) {
  TapDevice tap({.name = "vif4.0"});
  tap.set_link_up(true);
  // The operational state is updated asynchronously by the kernel's link
  // watcher; wait for it to settle rather than asserting immediately.
  const auto settles_to = [](bool running) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (link_is_running("vif4.0") == running) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  EXPECT_TRUE(settles_to(true));
  tap.set_carrier(false);
  EXPECT_TRUE(settles_to(false));
  tap.set_carrier(true);
  EXPECT_TRUE(settles_to(true));
}

TEST_F(TapTest, BridgeMembershipAndLinkDeletion) {
  bring_up_bridge("xenbr0");
  TapDevice tap({.name = "vif6.0"});
  tap.add_to_bridge("xenbr0");
  EXPECT_THROW(tap.add_to_bridge("nosuchbr"), std::system_error);
  tap.remove_from_bridge("xenbr0");
  EXPECT_THROW(tap.remove_from_bridge("xenbr0"), std::system_error);
  delete_link("xenbr0");
  EXPECT_FALSE(link_exists("xenbr0"));
  EXPECT_THROW(delete_link("xenbr0"), std::system_error);
}

TEST_F(TapTest, LinkKindTellsLinuxBridgesFromOtherLinks) {
  bring_up_bridge("br0.10");  // a Linux bridge may carry a dot in its name
  TapDevice tap({.name = "vif6.0"});
  EXPECT_EQ(link_kind("br0.10"), LinkKind::kLinuxBridge);
  EXPECT_EQ(link_kind("vif6.0"), LinkKind::kOther) << "a TAP, as OVS's userspace bridges are";
  EXPECT_EQ(link_kind("lo"), LinkKind::kOther) << "no link kind at all";
  EXPECT_EQ(link_kind("br0"), LinkKind::kAbsent);
  EXPECT_THROW((void)link_kind("a/b"), std::invalid_argument);
}

// The data-path contract: a GSO frame with a partial checksum written on one
// TAP reaches another TAP on the same bridge with its metadata intact when
// that TAP has the offloads, and is segmented and checksummed by the kernel
// when it has not.
TEST_F(TapTest, VirtioMetadataSurvivesTheBridge) {
  bring_up_bridge("xenbr0");
  const TapOffloads all{.csum = true, .tso4 = true, .tso6 = true};
  TapDevice sender({.name = "vif5.0", .queues = 2, .multi_queue = true, .offloads = all});
  TapDevice receiver({.name = "vif6.0", .offloads = all});
  TapDevice plain({.name = "vif7.0"});
  for (TapDevice* tap : {&sender, &receiver, &plain}) {
    tap->add_to_bridge("xenbr0");
    tap->set_link_up(true);
  }

  for (const int ip_version : {4, 6}) {
    SCOPED_TRACE(ip_version);
    Frame frame = build_frame({.ip_version = ip_version, .payload = 3000});
    ChecksumLocation where;
    ASSERT_EQ(locate_checksum(frame.bytes, where), PacketStatus::kOk);
    ASSERT_EQ(seed_pseudo_header_checksum(frame.bytes, where), PacketStatus::kOk);
    PacketMeta meta;
    meta.checksum = ChecksumState::kPartial;
    meta.csum_located = true;
    meta.csum_start = where.csum_start;
    meta.csum_offset = where.csum_offset;
    meta.gso_type = ip_version == 4 ? GsoType::kTcpv4 : GsoType::kTcpv6;
    meta.gso_size = 1000;
    meta.hdr_len = where.header_len;
    VirtioNetHdr header{};
    ASSERT_EQ(meta_to_virtio(meta, header), PacketStatus::kOk);
    const TapIoResult written = tap_write(sender.queue_fd(1), header, frame.bytes);
    ASSERT_EQ(written.status, TapIoStatus::kOk) << std::strerror(written.error);

    const auto got = receive_matching(receiver.queue_fd(0), is_test_frame);
    ASSERT_TRUE(got.has_value()) << "the frame never reached vif6.0";
    PacketMeta received;
    ASSERT_EQ(meta_from_virtio(got->header, received), PacketStatus::kOk);
    EXPECT_EQ(received.checksum, ChecksumState::kPartial);
    EXPECT_EQ(received.csum_start, meta.csum_start);
    EXPECT_EQ(received.csum_offset, meta.csum_offset);
    EXPECT_EQ(received.gso_type, meta.gso_type);
    EXPECT_EQ(received.gso_size, meta.gso_size);
    EXPECT_EQ(got->frame, frame.bytes);

    // vif7.0 took no offloads: the kernel segmented the frame into 1000-byte
    // segments and completed each checksum.
    std::size_t payload = 0;
    while (payload < 3000) {
      const auto segment = receive_matching(plain.queue_fd(0), is_test_frame);
      ASSERT_TRUE(segment.has_value()) << "segment after " << payload << " bytes missing";
      PacketMeta segment_meta;
      ASSERT_EQ(meta_from_virtio(segment->header, segment_meta), PacketStatus::kOk);
      EXPECT_EQ(segment_meta.gso_type, GsoType::kNone);
      EXPECT_NE(segment_meta.checksum, ChecksumState::kPartial);
      Frame parsed;
      parsed.bytes = segment->frame;
      parsed.ip_offset = 14;
      parsed.l4_offset = where.csum_start;
      parsed.l4_header_len = 20;
      parsed.l4_protocol = IPPROTO_TCP;
      parsed.ip_end = segment->frame.size();
      EXPECT_EQ(testing::checksum_field(parsed),
                testing::reference_l4_checksum(parsed, parsed.ip_end));
      const std::size_t segment_payload = segment->frame.size() - where.header_len;
      EXPECT_LE(segment_payload, 1000U);
      ASSERT_GT(segment_payload, 0U);
      payload += segment_payload;
    }
    EXPECT_EQ(payload, 3000U);
  }
}

TEST_F(TapTest, AFrameThatDoesNotFitIsReportedNotSilentlyTruncated) {
  bring_up_bridge("xenbr0");
  TapDevice sender({.name = "vif5.0"});
  TapDevice receiver({.name = "vif6.0"});
  for (TapDevice* tap : {&sender, &receiver}) {
    tap->add_to_bridge("xenbr0");
    tap->set_link_up(true);
  }
  const Frame frame = build_frame({.payload = 200});
  VirtioNetHdr header{};
  ASSERT_EQ(tap_write(sender.queue_fd(0), header, frame.bytes).status, TapIoStatus::kOk);
  // Read into a buffer exactly as long as the frame: the contract says a
  // full buffer means "maybe more", so the frame is refused.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool refused = false;
  while (!refused && std::chrono::steady_clock::now() < deadline) {
    pollfd p{receiver.queue_fd(0), POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    std::vector<std::uint8_t> buffer(frame.bytes.size());
    const TapIoResult result = tap_read(receiver.queue_fd(0), header, buffer);
    if (result.status == TapIoStatus::kOversize) {
      refused = buffer == frame.bytes;
    } else {
      ASSERT_EQ(result.status, TapIoStatus::kOk);
      buffer.resize(result.bytes);
      EXPECT_FALSE(is_test_frame(buffer)) << "a full-size read must not be reported as ok";
    }
  }
  EXPECT_TRUE(refused);
}

TEST_F(TapTest, OffloadsCanBeChangedOnALiveTap) {
  TapDevice tap({.name = "vif5.1"});
  EXPECT_EQ(tap.offloads(), TapOffloads{});
  tap.set_offloads({.csum = true, .tso4 = true});
  EXPECT_EQ(tap.offloads(), (TapOffloads{.csum = true, .tso4 = true}));
  EXPECT_THROW(tap.set_offloads({.tso6 = true}), std::invalid_argument);
  EXPECT_EQ(tap.offloads(), (TapOffloads{.csum = true, .tso4 = true}));
}

}  // namespace
}  // namespace vifd::net
