#include "common/net/tap_device.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "common/net/packet_meta.h"

namespace vifd::net {
namespace {

[[noreturn]] void throw_errno(int error, const std::string& what) {
  throw std::system_error(error, std::generic_category(), what);
}

void tun_ioctl(int fd, unsigned long op, unsigned long arg, std::string_view name,
               const char* what) {
  if (::ioctl(fd, op, arg) < 0) throw_errno(errno, fmt::format("{} on TAP {}", what, name));
}

unsigned long tun_offload_flags(const TapOffloads& offloads) {
  unsigned long flags = 0;
  if (offloads.csum) flags |= TUN_F_CSUM;
  if (offloads.tso4) flags |= TUN_F_TSO4;
  if (offloads.tso6) flags |= TUN_F_TSO6;
  return flags;
}

}  // namespace

TapDevice::TapDevice(const TapOptions& options) : name_(options.name) {
  check_interface_name(name_);
  if (options.queues == 0) {
    throw std::invalid_argument(fmt::format("TAP {}: at least one queue is needed", name_));
  }
  if (options.queues > 1 && !options.multi_queue) {
    throw std::invalid_argument(
        fmt::format("TAP {}: {} queues need multi_queue", name_, options.queues));
  }
  ifreq request{};
  request.ifr_flags = static_cast<short>(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
                                         (options.multi_queue ? IFF_MULTI_QUEUE : 0));
  std::memcpy(request.ifr_name, name_.data(), name_.size());
  fds_.reserve(options.queues);
  try {
    for (unsigned queue = 0; queue < options.queues; ++queue) {
      const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) {
        throw_errno(errno, fmt::format("opening /dev/net/tun for TAP {} (is the tun module "
                                       "loaded?)",
                                       name_));
      }
      fds_.push_back(fd);
      // Each TUNSETIFF on a multi-queue device attaches one more queue.
      ifreq attach = request;
      if (::ioctl(fd, TUNSETIFF, &attach) < 0) {
        throw_errno(errno, fmt::format("TUNSETIFF queue {} of TAP {}", queue, name_));
      }
    }
    // Header size, byte order and offloads belong to the device, not to a
    // queue: setting them through the first fd covers every queue.
    const int fd = fds_.front();
    int header_size = static_cast<int>(kVirtioNetHdrSize);
    if (::ioctl(fd, TUNSETVNETHDRSZ, &header_size) < 0) {
      throw_errno(errno, fmt::format("TUNSETVNETHDRSZ on TAP {}", name_));
    }
    int little_endian = 1;
    if (::ioctl(fd, TUNSETVNETLE, &little_endian) < 0) {
      throw_errno(errno, fmt::format("TUNSETVNETLE on TAP {}", name_));
    }
    set_offloads(options.offloads);
    set_persistent(options.persistent);
    ifindex_ = link_index(name_);
  } catch (...) {
    close_queues();
    throw;
  }
}

TapDevice::~TapDevice() {
  destroy();
}

TapDevice::TapDevice(TapDevice&& other) noexcept
    : name_(std::move(other.name_)),
      ifindex_(std::exchange(other.ifindex_, 0)),
      fds_(std::move(other.fds_)),
      offloads_(other.offloads_),
      persistent_(std::exchange(other.persistent_, false)) {
  other.fds_.clear();
}

TapDevice& TapDevice::operator=(TapDevice&& other) noexcept {
  if (this != &other) {
    destroy();
    name_ = std::move(other.name_);
    ifindex_ = std::exchange(other.ifindex_, 0);
    fds_ = std::move(other.fds_);
    other.fds_.clear();
    offloads_ = other.offloads_;
    persistent_ = std::exchange(other.persistent_, false);
  }
  return *this;
}

void TapDevice::set_offloads(const TapOffloads& offloads) {
  if ((offloads.tso4 || offloads.tso6) && !offloads.csum) {
    // The kernel silently ignores TSO without checksum offload; refuse
    // instead so a caller never believes TSO is on when it is not.
    throw std::invalid_argument(fmt::format("TAP {}: TSO requires checksum offload", name_));
  }
  if (fds_.empty()) throw std::logic_error(fmt::format("TAP {} is destroyed", name_));
  tun_ioctl(fds_.front(), TUNSETOFFLOAD, tun_offload_flags(offloads), name_, "TUNSETOFFLOAD");
  offloads_ = offloads;
}

void TapDevice::set_carrier(bool on) {
  if (fds_.empty()) throw std::logic_error(fmt::format("TAP {} is destroyed", name_));
  int carrier = on ? 1 : 0;
  if (::ioctl(fds_.front(), TUNSETCARRIER, &carrier) < 0) {
    throw_errno(errno, fmt::format("TUNSETCARRIER {} on TAP {}", carrier, name_));
  }
}

void TapDevice::set_persistent(bool persistent) {
  if (fds_.empty()) throw std::logic_error(fmt::format("TAP {} is destroyed", name_));
  tun_ioctl(fds_.front(), TUNSETPERSIST, persistent ? 1 : 0, name_, "TUNSETPERSIST");
  persistent_ = persistent;
}

void TapDevice::destroy() noexcept {
  if (fds_.empty()) return;
  if (persistent_) {
    // Clearing persistence cannot fail on an fd attached to the device; if
    // it somehow did, the device would outlive us, which delete_link() by
    // name still cleans up, so there is nothing better to do than go on.
    if (::ioctl(fds_.front(), TUNSETPERSIST, 0UL) == 0) persistent_ = false;
  }
  close_queues();
}

void TapDevice::close_queues() noexcept {
  for (const int fd : fds_) ::close(fd);
  fds_.clear();
}

TapIoResult tap_read(int fd, VirtioNetHdr& header, std::span<std::uint8_t> frame) noexcept {
  iovec parts[2] = {{&header, sizeof(header)}, {frame.data(), frame.size()}};
  for (;;) {
    const ssize_t n = ::readv(fd, parts, 2);
    if (n >= 0) {
      if (static_cast<std::size_t>(n) < sizeof(header)) return {TapIoStatus::kError, 0, EPROTO};
      const std::size_t bytes = static_cast<std::size_t>(n) - sizeof(header);
      if (bytes == frame.size()) return {TapIoStatus::kOversize, bytes, 0};
      return {TapIoStatus::kOk, bytes, 0};
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return {TapIoStatus::kWouldBlock, 0, 0};
    return {TapIoStatus::kError, 0, errno};
  }
}

TapIoResult tap_write(int fd, const VirtioNetHdr& header,
                      std::span<const std::uint8_t> frame) noexcept {
  // writev takes non-const iovecs for both directions; the kernel only
  // reads from them here.
  iovec parts[2] = {{const_cast<VirtioNetHdr*>(&header), sizeof(header)},
                    {const_cast<std::uint8_t*>(frame.data()), frame.size()}};
  for (;;) {
    const ssize_t n = ::writev(fd, parts, 2);
    if (n >= 0) return {TapIoStatus::kOk, frame.size(), 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return {TapIoStatus::kWouldBlock, 0, 0};
    return {TapIoStatus::kError, 0, errno};
  }
}

}  // namespace vifd::net
