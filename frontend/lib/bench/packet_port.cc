#include "frontend/lib/bench/packet_port.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "common/net/packet_meta.h"

namespace vifd::bench {
namespace {

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// Enters a named network namespace for as long as it lives: a socket keeps
// the namespace it was created in, so only the creation happens inside.
class NetnsScope {
 public:
  explicit NetnsScope(const std::string& name) {
    if (name.empty()) {
      return;
    }
    original_ = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (original_ < 0) {
      throw_errno("open /proc/self/ns/net");
    }
    const std::string path = "/run/netns/" + name;
    const int target = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0) {
      ::close(original_);
      throw_errno("open " + path);
    }
    const int result = ::setns(target, CLONE_NEWNET);
    ::close(target);
    if (result != 0) {
      ::close(original_);
      throw_errno("enter network namespace " + name);
    }
  }
  ~NetnsScope() {
    if (original_ < 0) {
      return;
    }
    // Going back cannot fail for a namespace we came from; if it did, the
    // process would carry on in the wrong one, which is worse than stopping.
    if (::setns(original_, CLONE_NEWNET) != 0) {
      std::terminate();
    }
    ::close(original_);
  }
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;

 private:
  int original_ = -1;
};

int open_bound_socket(const std::string& ifname, std::uint16_t protocol, int& ifindex) {
  const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(protocol));
  if (fd < 0) {
    throw_errno("socket(AF_PACKET)");
  }
  ifreq request{};
  std::strncpy(request.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd, SIOCGIFINDEX, &request) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::system_error(error, std::generic_category(), "no interface " + ifname);
  }
  ifindex = request.ifr_ifindex;
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_protocol = htons(protocol);
  address.sll_ifindex = ifindex;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::system_error(error, std::generic_category(), "bind AF_PACKET to " + ifname);
  }
  return fd;
}

void set_option(int fd, int level, int name, int value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    throw_errno(what);
  }
}

net::VirtioNetHdr vnet_header(const Frame& frame) {
  // Packet sockets take the header in the host's byte order (legacy virtio
  // on a little-endian host), unlike vifd's TAPs which are set to LE.
  net::VirtioNetHdr header{};
  if (frame.meta.gso_type == net::GsoType::kTcpv4) {
    header.flags = net::kVirtioNetHdrFNeedsCsum;
    header.gso_type = net::kVirtioNetHdrGsoTcpv4;
    header.hdr_len = frame.meta.hdr_len;
    header.gso_size = frame.meta.gso_size;
    header.csum_start = frame.meta.csum_start;
    header.csum_offset = frame.meta.csum_offset;
  }
  return header;
}

}  // namespace

PacketPort::PacketPort(const std::string& netns, const std::string& ifname)
    : netns_(netns), ifname_(ifname) {
  NetnsScope scope(netns);
  int ifindex = 0;
  // Sending only: protocol 0 receives nothing.
  tx_fd_ = open_bound_socket(ifname, 0, ifindex);
  try {
    set_option(tx_fd_, SOL_PACKET, PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS");
    set_option(tx_fd_, SOL_PACKET, PACKET_VNET_HDR, 1, "PACKET_VNET_HDR");
    set_option(tx_fd_, SOL_SOCKET, SO_SNDBUFFORCE, 64 << 20, "SO_SNDBUFFORCE");
    rx_fd_ = open_bound_socket(ifname, ETH_P_ALL, ifindex);
    set_option(rx_fd_, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING");
    set_option(rx_fd_, SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20, "SO_RCVBUFFORCE");
    ifreq request{};
    std::strncpy(request.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    if (::ioctl(rx_fd_, SIOCGIFHWADDR, &request) != 0) {
      throw_errno("SIOCGIFHWADDR " + ifname);
    }
    std::memcpy(mac_.octets.data(), request.ifr_hwaddr.sa_data, 6);
  } catch (...) {
    ::close(tx_fd_);
    if (rx_fd_ >= 0) {
      ::close(rx_fd_);
    }
    throw;
  }
}

PacketPort::~PacketPort() {
  ::close(tx_fd_);
  ::close(rx_fd_);
}

std::string PacketPort::name() const {
  return netns_.empty() ? fmt::format("packet socket on {}", ifname_)
                        : fmt::format("packet socket on {} in {}", ifname_, netns_);
}

std::size_t PacketPort::send(std::span<Frame> frames, std::size_t budget) {
  const std::size_t count = std::min(budget, kBatch);
  if (count == 0) {
    return 0;
  }
  std::array<net::VirtioNetHdr, kBatch> headers{};
  std::array<std::array<iovec, 2>, kBatch> vectors{};
  std::array<mmsghdr, kBatch> messages{};
  std::array<const Frame*, kBatch> chosen{};
  for (std::size_t i = 0; i < count; ++i) {
    const Frame& frame = frames[(next_frame_ + i) % frames.size()];
    chosen[i] = &frame;
    headers[i] = vnet_header(frame);
    vectors[i][0] = {&headers[i], sizeof(headers[i])};
    vectors[i][1] = {const_cast<std::uint8_t*>(frame.bytes.data()), frame.bytes.size()};
    messages[i].msg_hdr.msg_iov = vectors[i].data();
    messages[i].msg_hdr.msg_iovlen = 2;
  }
  const int sent = ::sendmmsg(tx_fd_, messages.data(), static_cast<unsigned>(count), MSG_DONTWAIT);
  if (sent < 0) {
    if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) {
      return 0;
    }
    throw_errno("sendmmsg on " + ifname_);
  }
  for (int i = 0; i < sent; ++i) {
    ++counts_.sent_packets;
    counts_.sent_bytes += chosen[static_cast<std::size_t>(i)]->bytes.size();
  }
  next_frame_ += static_cast<std::size_t>(sent);
  return static_cast<std::size_t>(sent);
}

void PacketPort::receive() {
  for (;;) {
    std::array<iovec, kBatch> vectors{};
    std::array<mmsghdr, kBatch> messages{};
    for (std::size_t i = 0; i < kBatch; ++i) {
      vectors[i] = {heads_[i].data(), heads_[i].size()};
      messages[i].msg_hdr.msg_iov = &vectors[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    const int got = ::recvmmsg(rx_fd_, messages.data(), kBatch, MSG_DONTWAIT | MSG_TRUNC, nullptr);
    if (got < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        return;
      }
      throw_errno("recvmmsg on " + ifname_);
    }
    for (int i = 0; i < got; ++i) {
      const auto& message = messages[static_cast<std::size_t>(i)];
      const std::size_t length = message.msg_len;
      count_received({heads_[static_cast<std::size_t>(i)].data(), std::min(length, kHead)}, length);
    }
    if (static_cast<std::size_t>(got) < kBatch) {
      return;
    }
  }
}

void PacketPort::wait_fds(std::vector<pollfd>& fds) {
  fds.push_back({rx_fd_, POLLIN, 0});
}

}  // namespace vifd::bench
