#include "common/net/link.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <linux/if_bridge.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace vifd::net {
namespace {

[[noreturn]] void throw_errno(int error, const std::string& what) {
  throw std::system_error(error, std::generic_category(), what);
}

// A datagram socket is the handle the interface ioctls need; it is never
// used for traffic.
class IoctlSocket {
 public:
  IoctlSocket() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) throw_errno(errno, "socket(AF_INET) for interface ioctls");
  }
  ~IoctlSocket() { ::close(fd_); }
  IoctlSocket(const IoctlSocket&) = delete;
  IoctlSocket& operator=(const IoctlSocket&) = delete;
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

ifreq make_ifreq(std::string_view name) {
  check_interface_name(name);
  ifreq request{};
  std::memcpy(request.ifr_name, name.data(), name.size());
  return request;
}

void interface_ioctl(std::string_view name, unsigned long op, ifreq& request, const char* what) {
  IoctlSocket sock;
  if (::ioctl(sock.fd(), op, &request) < 0) {
    throw_errno(errno, fmt::format("{} on interface {}", what, name));
  }
}

// Sends one rtnetlink request and waits for its acknowledgement; the kernel
// answers NLMSG_ERROR with error 0 on success.
void rtnetlink_request(nlmsghdr* message, std::uint16_t extra_flags, std::string_view name,
                       const char* what) {
  const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) throw_errno(errno, fmt::format("netlink socket for {} on {}", what, name));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  message->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | NLM_F_ACK | extra_flags);
  message->nlmsg_seq = 1;
  if (::sendto(fd, message, message->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof(kernel)) < 0) {
    throw_errno(errno, fmt::format("netlink {} on {}", what, name));
  }
  alignas(nlmsghdr) char reply[4096];
  for (;;) {
    const ssize_t received = ::recv(fd, reply, sizeof(reply), 0);
    if (received < 0) {
      if (errno == EINTR) continue;
      throw_errno(errno, fmt::format("netlink {} reply on {}", what, name));
    }
    // The kernel's reply is trusted, but its lengths are still checked
    // against what recv() returned before a header or payload is read.
    std::size_t at = 0;
    const auto total = static_cast<std::size_t>(received);
    while (total - at >= sizeof(nlmsghdr)) {
      nlmsghdr header;
      std::memcpy(&header, reply + at, sizeof(header));
      if (header.nlmsg_len < sizeof(nlmsghdr) || header.nlmsg_len > total - at) break;
      if (header.nlmsg_type == NLMSG_ERROR && header.nlmsg_len >= NLMSG_LENGTH(sizeof(nlmsgerr))) {
        nlmsgerr error;
        std::memcpy(&error, reply + at + NLMSG_LENGTH(0), sizeof(error));
        if (error.error != 0) throw_errno(-error.error, fmt::format("{} on {}", what, name));
        return;
      }
      at += NLMSG_ALIGN(header.nlmsg_len);
    }
  }
}

void add_attribute(nlmsghdr* message, std::size_t capacity, unsigned short type, const void* data,
                   std::size_t length) {
  const std::size_t attribute_len = RTA_LENGTH(length);
  if (NLMSG_ALIGN(message->nlmsg_len) + RTA_ALIGN(attribute_len) > capacity) {
    throw std::length_error("netlink request buffer too small");
  }
  auto* attribute =
      reinterpret_cast<rtattr*>(reinterpret_cast<char*>(message) + NLMSG_ALIGN(message->nlmsg_len));
  attribute->rta_type = type;
  attribute->rta_len = static_cast<unsigned short>(attribute_len);
  std::memcpy(reinterpret_cast<char*>(attribute) + RTA_LENGTH(0), data, length);
  message->nlmsg_len =
      static_cast<std::uint32_t>(NLMSG_ALIGN(message->nlmsg_len) + RTA_ALIGN(attribute_len));
}

}  // namespace

void check_interface_name(std::string_view name) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    throw std::invalid_argument(fmt::format(
        "interface name '{}' must be 1 to {} characters long (IFNAMSIZ)", name, IFNAMSIZ - 1));
  }
  if (name == "." || name == "..") {
    throw std::invalid_argument(fmt::format("interface name '{}' is reserved", name));
  }
  for (const char c : name) {
    if (c == '/' || c == ':' || c == '\0' || c == ' ' || c == '\t' || c == '\n') {
      throw std::invalid_argument(
          fmt::format("interface name '{}' contains a character Linux refuses", name));
    }
  }
}

bool link_exists(std::string_view name) {
  check_interface_name(name);
  return ::if_nametoindex(std::string(name).c_str()) != 0;
}

int link_index(std::string_view name) {
  check_interface_name(name);
  const unsigned index = ::if_nametoindex(std::string(name).c_str());
  if (index == 0) throw_errno(errno, fmt::format("interface {} not found", name));
  return static_cast<int>(index);
}

void set_link_up(std::string_view name, bool up) {
  ifreq request = make_ifreq(name);
  interface_ioctl(name, SIOCGIFFLAGS, request, "SIOCGIFFLAGS");
  if (up) {
    request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
  } else {
    request.ifr_flags = static_cast<short>(request.ifr_flags & ~IFF_UP);
  }
  interface_ioctl(name, SIOCSIFFLAGS, request, up ? "setting link up" : "setting link down");
}

bool link_is_up(std::string_view name) {
  ifreq request = make_ifreq(name);
  interface_ioctl(name, SIOCGIFFLAGS, request, "SIOCGIFFLAGS");
  return (request.ifr_flags & IFF_UP) != 0;
}

bool link_is_running(std::string_view name) {
  ifreq request = make_ifreq(name);
  interface_ioctl(name, SIOCGIFFLAGS, request, "SIOCGIFFLAGS");
  return (request.ifr_flags & IFF_RUNNING) != 0;
}

void set_mtu(std::string_view name, unsigned mtu) {
  ifreq request = make_ifreq(name);
  request.ifr_mtu = static_cast<int>(mtu);
  interface_ioctl(name, SIOCSIFMTU, request, fmt::format("setting MTU {}", mtu).c_str());
}

unsigned link_mtu(std::string_view name) {
  ifreq request = make_ifreq(name);
  interface_ioctl(name, SIOCGIFMTU, request, "SIOCGIFMTU");
  return static_cast<unsigned>(request.ifr_mtu);
}

void set_mac(std::string_view name, const protocol::MacAddress& mac) {
  ifreq request = make_ifreq(name);
  request.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  std::memcpy(request.ifr_hwaddr.sa_data, mac.octets.data(), mac.octets.size());
  interface_ioctl(name, SIOCSIFHWADDR, request,
                  fmt::format("setting MAC {}", mac.to_string()).c_str());
}

protocol::MacAddress link_mac(std::string_view name) {
  ifreq request = make_ifreq(name);
  interface_ioctl(name, SIOCGIFHWADDR, request, "SIOCGIFHWADDR");
  protocol::MacAddress mac;
  std::memcpy(mac.octets.data(), request.ifr_hwaddr.sa_data, mac.octets.size());
  return mac;
}

LinkKind link_kind(std::string_view name) {
  check_interface_name(name);
  const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    throw_errno(errno, fmt::format("netlink socket for the link kind of {}", name));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  alignas(nlmsghdr) char request[NLMSG_SPACE(sizeof(ifinfomsg)) + RTA_SPACE(IFNAMSIZ)] = {};
  auto* message = reinterpret_cast<nlmsghdr*>(request);
  message->nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  message->nlmsg_type = RTM_GETLINK;
  message->nlmsg_flags = NLM_F_REQUEST;
  message->nlmsg_seq = 1;
  reinterpret_cast<ifinfomsg*>(request + NLMSG_LENGTH(0))->ifi_family = AF_UNSPEC;
  const std::string terminated(name);
  add_attribute(message, sizeof(request), IFLA_IFNAME, terminated.c_str(), terminated.size() + 1);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, message, message->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof(kernel)) < 0) {
    throw_errno(errno, fmt::format("netlink RTM_GETLINK on {}", name));
  }
  // One link's attributes (statistics, per-queue and VF details) fit well
  // within this; a longer answer is reported, not misread.
  std::vector<char> buffer(32768);
  char* const reply = buffer.data();
  ssize_t received = 0;
  do {
    received = ::recv(fd, reply, buffer.size(), MSG_TRUNC);
  } while (received < 0 && errno == EINTR);
  if (received < 0) {
    throw_errno(errno, fmt::format("netlink RTM_GETLINK reply on {}", name));
  }
  const auto total = static_cast<std::size_t>(received);
  if (total > buffer.size()) {
    throw std::runtime_error(fmt::format("netlink RTM_GETLINK reply on {} too long", name));
  }
  // The kernel's reply is trusted, but every length is checked against what
  // recv() returned before a header or attribute is read.
  nlmsghdr header;
  if (total < sizeof(header)) {
    throw std::runtime_error(fmt::format("netlink RTM_GETLINK reply on {} truncated", name));
  }
  std::memcpy(&header, reply, sizeof(header));
  if (header.nlmsg_len < sizeof(header) || header.nlmsg_len > total) {
    throw std::runtime_error(fmt::format("netlink RTM_GETLINK reply on {} malformed", name));
  }
  if (header.nlmsg_type == NLMSG_ERROR && header.nlmsg_len >= NLMSG_LENGTH(sizeof(nlmsgerr))) {
    nlmsgerr error;
    std::memcpy(&error, reply + NLMSG_LENGTH(0), sizeof(error));
    if (error.error == -ENODEV) {
      return LinkKind::kAbsent;
    }
    throw_errno(-error.error, fmt::format("netlink RTM_GETLINK on {}", name));
  }
  if (header.nlmsg_type != RTM_NEWLINK || header.nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) {
    throw std::runtime_error(fmt::format("netlink RTM_GETLINK reply on {} unexpected", name));
  }
  // Walks the attributes in [begin, end) for `type`; the payload's span.
  const auto find = [](const char* begin, const char* end,
                       unsigned short type) -> std::pair<const char*, std::size_t> {
    while (end - begin >= static_cast<std::ptrdiff_t>(sizeof(rtattr))) {
      rtattr attribute;
      std::memcpy(&attribute, begin, sizeof(attribute));
      if (attribute.rta_len < sizeof(rtattr) || attribute.rta_len > end - begin) {
        break;
      }
      if ((attribute.rta_type & NLA_TYPE_MASK) == type) {
        return {begin + RTA_LENGTH(0), attribute.rta_len - RTA_LENGTH(0)};
      }
      const std::size_t step = RTA_ALIGN(attribute.rta_len);
      if (step >= static_cast<std::size_t>(end - begin)) {
        break;
      }
      begin += step;
    }
    return {nullptr, 0};
  };
  const char* attributes = reply + NLMSG_SPACE(sizeof(ifinfomsg));
  const char* end = reply + header.nlmsg_len;
  if (attributes > end) {
    attributes = end;
  }
  const auto [info, info_size] = find(attributes, end, IFLA_LINKINFO);
  if (info == nullptr) {
    return LinkKind::kOther;
  }
  const auto [kind, kind_size] = find(info, info + info_size, IFLA_INFO_KIND);
  if (kind == nullptr) {
    return LinkKind::kOther;
  }
  // A NUL-terminated string; compared without the terminator.
  const std::string_view text(kind, ::strnlen(kind, kind_size));
  if (text == "bridge") {
    return LinkKind::kLinuxBridge;
  }
  if (text == "openvswitch") {
    return LinkKind::kOpenVswitch;
  }
  return LinkKind::kOther;
}

void create_bridge(std::string_view bridge) {
  check_interface_name(bridge);
  const std::string name(bridge);
  IoctlSocket sock;
  if (::ioctl(sock.fd(), SIOCBRADDBR, name.c_str()) < 0) {
    throw_errno(errno, fmt::format("creating bridge {}", bridge));
  }
}

void add_to_bridge(std::string_view bridge, std::string_view port) {
  ifreq request = make_ifreq(bridge);
  request.ifr_ifindex = link_index(port);
  interface_ioctl(bridge, SIOCBRADDIF, request, fmt::format("adding port {}", port).c_str());
}

void remove_from_bridge(std::string_view bridge, std::string_view port) {
  ifreq request = make_ifreq(bridge);
  request.ifr_ifindex = link_index(port);
  interface_ioctl(bridge, SIOCBRDELIF, request, fmt::format("removing port {}", port).c_str());
}

void delete_link(std::string_view name) {
  const int index = link_index(name);
  alignas(nlmsghdr) char buffer[NLMSG_SPACE(sizeof(ifinfomsg))] = {};
  auto* message = reinterpret_cast<nlmsghdr*>(buffer);
  message->nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  message->nlmsg_type = RTM_DELLINK;
  auto* info = reinterpret_cast<ifinfomsg*>(buffer + NLMSG_LENGTH(0));
  info->ifi_family = AF_UNSPEC;
  info->ifi_index = index;
  rtnetlink_request(message, 0, name, "deleting link");
}

void set_address(std::string_view name, std::string_view cidr) {
  const std::size_t slash = cidr.find('/');
  if (slash == std::string_view::npos) {
    throw std::invalid_argument(fmt::format("address '{}' for {} is not in CIDR form", cidr, name));
  }
  const std::string address(cidr.substr(0, slash));
  const std::string_view prefix_text = cidr.substr(slash + 1);
  unsigned prefix = 0;
  const auto [end, error] =
      std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), prefix);
  if (error != std::errc() || end != prefix_text.data() + prefix_text.size()) {
    throw std::invalid_argument(fmt::format("bad prefix length in '{}' for {}", cidr, name));
  }
  unsigned char bytes[sizeof(in6_addr)];
  int family = AF_INET;
  std::size_t length = sizeof(in_addr);
  if (::inet_pton(AF_INET, address.c_str(), bytes) != 1) {
    family = AF_INET6;
    length = sizeof(in6_addr);
    if (::inet_pton(AF_INET6, address.c_str(), bytes) != 1) {
      throw std::invalid_argument(fmt::format("bad address '{}' for {}", cidr, name));
    }
  }
  if (prefix > length * 8) {
    throw std::invalid_argument(fmt::format("prefix length too long in '{}' for {}", cidr, name));
  }
  alignas(
      nlmsghdr) char buffer[NLMSG_SPACE(sizeof(ifaddrmsg)) + 2 * RTA_SPACE(sizeof(in6_addr))] = {};
  auto* message = reinterpret_cast<nlmsghdr*>(buffer);
  message->nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  message->nlmsg_type = RTM_NEWADDR;
  auto* info = reinterpret_cast<ifaddrmsg*>(buffer + NLMSG_LENGTH(0));
  info->ifa_family = static_cast<unsigned char>(family);
  info->ifa_prefixlen = static_cast<unsigned char>(prefix);
  info->ifa_index = static_cast<unsigned>(link_index(name));
  add_attribute(message, sizeof(buffer), IFA_LOCAL, bytes, length);
  add_attribute(message, sizeof(buffer), IFA_ADDRESS, bytes, length);
  rtnetlink_request(message, NLM_F_CREATE | NLM_F_EXCL, name,
                    fmt::format("adding address {}", cidr).c_str());
}

}  // namespace vifd::net
