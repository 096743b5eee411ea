// vif-front as a real child process of domain 1 in its own network
// namespace: it creates its TAP with the MAC and MTU from xenstore, connects
// to the test backend in dom0, moves frames both ways between the TAP and
// the rings, and closes the device on SIGTERM.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "common/net/link.h"
#include "common/net/packet_meta.h"
#include "common/protocol/xs_parse.h"
#include "common/xenbus/keys.h"
#include "common/xenbus/paths.h"
#include "frontend/lib/netfront/xenbus.h"
#include "tests/frontend/test_backend.h"
#include "tests/support/eventually.h"

namespace vifd::frontend::testing {
namespace {

using namespace std::chrono_literals;
using platform::kPageSize;
using protocol::XenbusState;
using vifd::testing::eventually;

constexpr std::uint16_t kTestEthertype = 0x88B5;  // IEEE local experimental

// vif-front in a fresh network namespace, killed and reaped at the end.
class DaemonProcess {
 public:
  DaemonProcess(const vifd::testing::SimHostProcess& host, const std::vector<std::string>& args) {
    std::vector<std::string> argv{vifd::testing::SimHostProcess::binary("vif-front").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto env = host.environment(kGuest);
    pid_ = ::fork();
    if (pid_ == 0) {
      if (::unshare(CLONE_NEWNET) != 0) ::_exit(120);
      for (const auto& entry : env) ::putenv(const_cast<char*>(entry.c_str()));
      std::vector<char*> raw;
      for (auto& arg : argv) raw.push_back(arg.data());
      raw.push_back(nullptr);
      ::execv(raw[0], raw.data());
      ::_exit(127);
    }
  }
  ~DaemonProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running() {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_status_ = status;
      pid_ = -1;
    }
    return pid_ > 0;
  }
  // SIGTERM and wait; returns the exit status (as waitpid reports it).
  int terminate() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  int exit_status() const { return exit_status_; }

 private:
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

// Runs `body` on a thread that joined the daemon's network namespace
// (setns changes only the calling thread).
void in_namespace(pid_t pid, const std::function<void()>& body) {
  std::thread worker([&] {
    const std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(::setns(fd, CLONE_NEWNET), 0) << std::strerror(errno);
    ::close(fd);
    body();
  });
  worker.join();
}

std::vector<std::uint8_t> test_frame(const protocol::MacAddress& dst,
                                     const protocol::MacAddress& src, std::size_t payload,
                                     std::uint8_t seed) {
  std::vector<std::uint8_t> frame(14 + payload);
  std::memcpy(frame.data(), dst.octets.data(), 6);
  std::memcpy(frame.data() + 6, src.octets.data(), 6);
  frame[12] = kTestEthertype >> 8;
  frame[13] = kTestEthertype & 0xFF;
  for (std::size_t i = 0; i < payload; ++i) frame[14 + i] = static_cast<std::uint8_t>(seed + i);
  return frame;
}

int packet_socket(const std::string& ifname) {
  const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(kTestEthertype));
  if (fd < 0) return -1;
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_protocol = htons(kTestEthertype);
  address.sll_ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval timeout{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return fd;
}

TEST(VifFrontDaemonTest, TapInPrivateNamespaceCarriesFramesBothWays) {
  vifd::testing::SimHostProcess host;
  host.create_domain(kGuest);
  {
    auto dom0 = host.xenstore(0);
    attach_vif(dom0, kGuest, 0, 1400);
  }
  TestBackend backend(host, kGuest, 0);
  backend.offer({});
  DaemonProcess daemon(host, {"--platform", "sim", "--devid", "0", "--ifname", "eth0"});

  ASSERT_TRUE(eventually([&] {
    return backend.frontend_value(xenbus::key::kState) == "4" || !daemon.running();
  })) << "vif-front never connected";
  ASSERT_TRUE(daemon.running()) << "vif-front exited with status " << daemon.exit_status();
  backend.attach();
  backend.set_state(XenbusState::kConnected);

  const protocol::MacAddress guest_mac = protocol::parse_mac(xenbus::key::kMac, kGuestMac).value();
  const protocol::MacAddress peer_mac =
      protocol::parse_mac(xenbus::key::kMac, "00:16:3e:00:00:01").value();
  in_namespace(daemon.pid(), [&] {
    ASSERT_TRUE(net::link_exists("eth0"));
    EXPECT_EQ(net::link_mac("eth0"), guest_mac);
    EXPECT_EQ(net::link_mtu("eth0"), 1400U);
    EXPECT_TRUE(net::link_is_up("eth0"));
    ASSERT_TRUE(eventually([] { return net::link_is_running("eth0"); }))
        << "carrier never came on after the backend connected";

    const int socket = packet_socket("eth0");
    ASSERT_GE(socket, 0) << std::strerror(errno);

    // Namespace -> TAP -> vif-front -> TX ring -> backend.
    const auto sent = test_frame(peer_mac, guest_mac, 300, 7);
    bool found = false;
    // IFF_RUNNING can show up a moment before the kernel swaps in the real
    // qdisc (both happen in linkwatch), and a frame sent in between is
    // silently dropped: send again until one arrives.
    int attempts = 0;
    ASSERT_TRUE(eventually([&] {
      if (!found && attempts++ % 20 == 0) {
        EXPECT_EQ(::send(socket, sent.data(), sent.size(), 0), static_cast<ssize_t>(sent.size()));
      }
      for (const auto& request : backend.take_tx(0)) {
        // The kernel may send IPv6 autoconfiguration frames too; answer all.
        std::vector<std::uint8_t> bytes(request.size);
        if (request.size <= 4096) {
          backend.copy_from_guest(request.gref, request.offset, bytes);
          if (bytes == sent) found = true;
        }
        backend.respond_tx(0, {{request.id, protocol::kRspOkay}});
      }
      return found;
    })) << "the frame never reached the TX ring";

    // Backend -> RX ring -> vif-front -> TAP -> namespace.
    const auto delivered = test_frame(guest_mac, peer_mac, 500, 11);
    backend.deliver_rx(0, delivered, protocol::kRxfDataValidated);
    std::vector<std::uint8_t> received(2048);
    const ssize_t n = ::recv(socket, received.data(), received.size(), 0);
    ASSERT_EQ(n, static_cast<ssize_t>(delivered.size())) << std::strerror(errno);
    received.resize(static_cast<std::size_t>(n));
    EXPECT_EQ(received, delivered);
    ::close(socket);
  });

  // Answer the frontend's Closing as a backend does, so the daemon's orderly
  // close does not have to wait out its grace period.
  std::thread closer([&] {
    auto dom0 = host.xenstore(0);
    if (eventually([&] {
          return dom0.read(xenbus::join(backend.frontend_path(), xenbus::key::kState)) == "5";
        })) {
      dom0.write(xenbus::join(backend.backend_path(), xenbus::key::kState), "6");
    }
  });
  const int status = daemon.terminate();
  closer.join();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_EQ(backend.frontend_value(xenbus::key::kState), "6");
  EXPECT_FALSE(backend.frontend_value(xenbus::key::kTxRingRef).has_value());
}

// A backend offering feature-gso-tcpv4 (and sg) gets the guest's TCP
// frames whole: vif-front turns TSO on on its TAP, so a 60 KiB TCP frame the
// guest sends crosses as one request chain (first slot, GSO extra,
// continuations) instead of 42 segments the kernel cut in software.
TEST(VifFrontDaemonTest, TapTakesA60KiBTcpFrameWholeWhenTheBackendOffersGso) {
  vifd::testing::SimHostProcess host;
  host.create_domain(kGuest);
  {
    auto dom0 = host.xenstore(0);
    attach_vif(dom0, kGuest, 0);
  }
  TestBackend backend(host, kGuest, 0);
  backend.offer({});
  DaemonProcess daemon(host, {"--platform", "sim", "--devid", "0", "--ifname", "eth0"});
  ASSERT_TRUE(eventually([&] {
    return backend.frontend_value(xenbus::key::kState) == "4" || !daemon.running();
  })) << "vif-front never connected";
  ASSERT_TRUE(daemon.running()) << "vif-front exited with status " << daemon.exit_status();
  backend.attach();
  backend.set_state(XenbusState::kConnected);

  const protocol::MacAddress guest_mac = protocol::parse_mac(xenbus::key::kMac, kGuestMac).value();
  const protocol::MacAddress peer_mac =
      protocol::parse_mac(xenbus::key::kMac, "00:16:3e:00:00:01").value();
  // Ethernet, IPv4 (10.0.0.1 -> 10.0.0.2, DF), TCP without options.
  constexpr std::size_t kPayload = 60000;
  std::vector<std::uint8_t> frame(14 + 20 + 20 + kPayload);
  std::memcpy(frame.data(), peer_mac.octets.data(), 6);
  std::memcpy(frame.data() + 6, guest_mac.octets.data(), 6);
  frame[12] = 0x08;
  frame[14] = 0x45;
  frame[16] = static_cast<std::uint8_t>((20 + 20 + kPayload) >> 8);
  frame[17] = static_cast<std::uint8_t>(20 + 20 + kPayload);
  frame[20] = 0x40;
  frame[22] = 64;
  frame[23] = 6;
  const std::array<std::uint8_t, 8> addresses{10, 0, 0, 1, 10, 0, 0, 2};
  std::copy(addresses.begin(), addresses.end(), frame.begin() + 26);
  frame[14 + 20 + 1] = 80;
  frame[14 + 20 + 3] = 80;
  frame[14 + 20 + 12] = 0x50;
  frame[14 + 20 + 13] = 0x18;  // PSH, ACK
  frame[14 + 20 + 14] = 0xFF;  // window
  for (std::size_t i = 54; i < frame.size(); ++i) frame[i] = static_cast<std::uint8_t>(i * 7);
  net::VirtioNetHdr header{};
  header.flags = net::kVirtioNetHdrFNeedsCsum;
  header.gso_type = net::kVirtioNetHdrGsoTcpv4;
  header.hdr_len = 54;
  header.gso_size = 1448;
  header.csum_start = 34;
  header.csum_offset = 16;
  std::vector<std::uint8_t> datagram(sizeof(header) + frame.size());
  std::memcpy(datagram.data(), &header, sizeof(header));
  std::memcpy(datagram.data() + sizeof(header), frame.data(), frame.size());

  in_namespace(daemon.pid(), [&] {
    ASSERT_TRUE(eventually([] { return net::link_is_running("eth0"); }));
    // A packet socket with virtio headers hands the kernel the frame as one
    // GSO packet; only a TAP with TSO on gets it unsegmented.
    const int socket = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_IP));
    ASSERT_GE(socket, 0) << std::strerror(errno);
    const int on = 1;
    ASSERT_EQ(::setsockopt(socket, SOL_PACKET, PACKET_VNET_HDR, &on, sizeof(on)), 0)
        << std::strerror(errno);
    sockaddr_ll address{};
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ETH_P_IP);
    address.sll_ifindex = static_cast<int>(::if_nametoindex("eth0"));
    ASSERT_EQ(::bind(socket, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0)
        << std::strerror(errno);

    std::size_t slots = 0;  // data slots of the frame's chain, once seen
    std::size_t largest_tcp = 0;
    std::vector<std::uint8_t> chain;
    int attempts = 0;
    ASSERT_TRUE(eventually([&] {
      // Sent again until it arrives: frames sent while the qdisc is being
      // swapped in are dropped (see the test above).
      if (slots == 0 && attempts++ % 20 == 0) {
        EXPECT_EQ(::send(socket, datagram.data(), datagram.size(), 0),
                  static_cast<ssize_t>(datagram.size()))
            << std::strerror(errno);
      }
      const auto requests = backend.take_tx(0);
      std::vector<protocol::TxResponse> responses;
      for (std::size_t i = 0; i < requests.size();) {
        const protocol::TxRequest first = requests[i];
        responses.push_back({first.id, protocol::kRspOkay});
        std::size_t next = i + 1;
        if ((first.flags & protocol::kTxfExtraInfo) != 0 && next < requests.size()) {
          responses.push_back({0, protocol::kRspNull});
          ++next;
        }
        std::vector<protocol::TxRequest> data{first};
        bool more = (first.flags & protocol::kTxfMoreData) != 0;
        while (more && next < requests.size()) {
          data.push_back(requests[next]);
          responses.push_back({requests[next].id, protocol::kRspOkay});
          more = (requests[next].flags & protocol::kTxfMoreData) != 0;
          ++next;
        }
        i = next;
        if (first.size > 14 + 20 && data.size() > 0) {
          std::vector<std::uint8_t> bytes(first.size);
          // The first slot's size is the packet's; its own share is what
          // the continuations leave.
          std::size_t continued = 0;
          for (std::size_t d = 1; d < data.size(); ++d) continued += data[d].size;
          std::size_t done = 0;
          for (std::size_t d = 0; d < data.size(); ++d) {
            const std::size_t size =
                d == 0 ? first.size - std::min<std::size_t>(continued, first.size) : data[d].size;
            if (size > kPageSize || done + size > bytes.size()) break;
            backend.copy_from_guest(data[d].gref, data[d].offset,
                                    std::span(bytes).subspan(done, size));
            done += size;
          }
          if (bytes[23] == 6) largest_tcp = std::max<std::size_t>(largest_tcp, first.size);
          if (bytes == frame) {
            slots = data.size();
            chain = bytes;
          }
        }
      }
      backend.respond_tx(0, responses);
      return slots != 0;
    })) << "the 60 KiB frame never crossed whole; largest TCP frame seen: "
        << largest_tcp;
    EXPECT_EQ(slots, (frame.size() + kPageSize - 1) / kPageSize);
    EXPECT_EQ(chain, frame);
    ::close(socket);
  });
}

TEST(VifFrontDaemonTest, ExitsWithAnErrorWhenTheVifDoesNotExist) {
  vifd::testing::SimHostProcess host;
  host.create_domain(kGuest);
  DaemonProcess daemon(host, {"--platform", "sim", "--devid", "3"});
  ASSERT_TRUE(eventually([&] { return !daemon.running(); }));
  EXPECT_TRUE(WIFEXITED(daemon.exit_status()));
  EXPECT_EQ(WEXITSTATUS(daemon.exit_status()), 1);
}

}  // namespace
}  // namespace vifd::frontend::testing
