#include "frontend/lib/ttcp/session.h"

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

namespace vifd::ttcp {
namespace {

int socket_type(const Options& options) {
  return options.protocol == Protocol::kUdp ? SOCK_DGRAM : SOCK_STREAM;
}

void set_option(int fd, int level, int name, int value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof(value)) < 0) {
    throw SystemError(what, errno);
  }
}

void bind_to(int fd, const SocketAddress& address) {
  if (::bind(fd, address.get(), address.length) < 0) {
    throw SystemError("bind", errno);
  }
}

SocketAddress local_address(int fd) {
  SocketAddress address;
  address.length = sizeof(address.storage);
  if (::getsockname(fd, address.get(), &address.length) < 0) {
    throw SystemError("getsockname", errno);
  }
  return address;
}

// The --bind address for a socket of `family`, or nothing without --bind.
std::optional<SocketAddress> bind_address_for(const Options& options, int family, int port) {
  if (options.bind_address.empty()) {
    return std::nullopt;
  }
  for (const SocketAddress& address :
       resolve(options.bind_address, port, socket_type(options), true)) {
    if (address.family() == family) {
      return address;
    }
  }
  throw ResolveError("--bind " + options.bind_address +
                     " has no address of the destination's family");
}

// Non-blocking connect, so that --timeout bounds it like every other wait.
void connect_to(int fd, const SocketAddress& address, std::optional<double> timeout_seconds) {
  if (::connect(fd, address.get(), address.length) == 0) {
    return;
  }
  if (errno != EINPROGRESS && errno != EINTR) {
    throw SystemError("connect", errno);
  }
  wait_ready(fd, POLLOUT, timeout_seconds, "connect");
  int error = 0;
  socklen_t length = sizeof(error);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0) {
    throw SystemError("getsockopt", errno);
  }
  if (error != 0) {
    throw SystemError("connect", error);
  }
}

}  // namespace

void print_report(const Options& options, const TransferResult& result, const void* buffer_address,
                  std::FILE* messages) {
  const std::string_view tag = options.tag();
  if (result.ended_by_timeout) {
    fmt::print(messages, "{}: end sentinel lost; run ended by --timeout\n", tag);
  }
  fmt::print(messages, "{}\n", throughput_line(tag, result, options.format));
  fmt::print(messages, "{}\n", calls_line(tag, result));
  fmt::print(messages, "{}\n", usage_line(tag, result));
  if (options.verbose) {
    fmt::print(messages, "{}\n", cpu_line(tag, result, options.format));
    fmt::print(messages, "{}: buffer address {}\n", tag, fmt::ptr(buffer_address));
  }
  if (options.checksum) {
    fmt::print(messages, "{}\n", checksum_line(tag, result));
  }
  std::fflush(messages);
}

Transmitter::Transmitter(Options options, std::FILE* messages)
    : options_(std::move(options)), messages_(messages) {}

void Transmitter::say(const char* message) const {
  fmt::print(messages_, "{}: {}\n", options_.tag(), message);
  std::fflush(messages_);
}

void Transmitter::open_socket() {
  const std::vector<SocketAddress> candidates =
      resolve(options_.host, options_.port, socket_type(options_), false);
  if (candidates.empty()) {
    throw ResolveError("bad hostname '" + options_.host + "': no usable address");
  }
  bool announced = false;
  // Like ssh or curl, try each address of the host in turn; the last
  // failure is the one reported.
  for (std::size_t index = 0; index < candidates.size(); ++index) {
    const SocketAddress& candidate = candidates[index];
    try {
      FileDescriptor fd(::socket(candidate.family(), socket_type(options_) | SOCK_CLOEXEC, 0));
      if (!fd.valid()) {
        throw SystemError("socket", errno);
      }
      if (!announced) {
        say("socket");
        announced = true;
      }
      if (const auto source = bind_address_for(options_, candidate.family(), 0)) {
        bind_to(fd.get(), *source);
      }
      if (options_.socket_buffer_size != 0) {
        set_option(fd.get(), SOL_SOCKET, SO_SNDBUF, static_cast<int>(options_.socket_buffer_size),
                   "setsockopt");
        say("sndbuf");
      }
      set_non_blocking(fd.get());
      if (options_.protocol == Protocol::kTcp) {
        if (options_.socket_debug) {
          set_option(fd.get(), SOL_SOCKET, SO_DEBUG, 1, "setsockopt");
        }
        if (options_.no_delay) {
          set_option(fd.get(), IPPROTO_TCP, TCP_NODELAY, 1, "setsockopt");
          say("nodelay");
        }
        connect_to(fd.get(), candidate, options_.timeout_seconds);
        say("connect");
      }
      socket_ = std::move(fd);
      peer_ = candidate;
      return;
    } catch (const SystemError&) {
      if (index + 1 == candidates.size()) {
        throw;
      }
    }
  }
}

TransferResult Transmitter::run() {
  fmt::print(messages_, "{}\n", header_line(options_));
  open_socket();
  TransferBuffer buffer(options_.buffer_length, options_.buffer_alignment, options_.buffer_offset);
  const TransferResult result = transmit_data(
      options_, socket_.get(), options_.protocol == Protocol::kUdp ? &peer_ : nullptr, buffer);
  print_report(options_, result, buffer.bytes().data(), messages_);
  return result;
}

Receiver::Receiver(Options options, std::FILE* messages)
    : options_(std::move(options)), messages_(messages) {
  fmt::print(messages_, "{}\n", header_line(options_));
  const int type = socket_type(options_);
  SocketAddress address;
  if (!options_.bind_address.empty()) {
    const std::vector<SocketAddress> found =
        resolve(options_.bind_address, options_.port, type, true);
    if (found.empty()) {
      throw ResolveError("bad hostname '" + options_.bind_address + "': no usable address");
    }
    address = found.front();
    socket_ = FileDescriptor(::socket(address.family(), type | SOCK_CLOEXEC, 0));
  } else {
    // Listen on IPv6 and IPv4 at once (dual stack); fall back to IPv4 where
    // the kernel has no IPv6.
    socket_ = FileDescriptor(::socket(AF_INET6, type | SOCK_CLOEXEC, 0));
    if (socket_.valid()) {
      set_option(socket_.get(), IPPROTO_IPV6, IPV6_V6ONLY, 0, "setsockopt");
      auto* any6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
      any6->sin6_family = AF_INET6;
      any6->sin6_addr = in6addr_any;
      any6->sin6_port = htons(static_cast<std::uint16_t>(options_.port));
      address.length = sizeof(sockaddr_in6);
    } else if (errno == EAFNOSUPPORT) {
      socket_ = FileDescriptor(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
      auto* any4 = reinterpret_cast<sockaddr_in*>(&address.storage);
      any4->sin_family = AF_INET;
      any4->sin_addr.s_addr = htonl(INADDR_ANY);
      any4->sin_port = htons(static_cast<std::uint16_t>(options_.port));
      address.length = sizeof(sockaddr_in);
    }
  }
  if (!socket_.valid()) {
    throw SystemError("socket", errno);
  }
  say("socket");
  if (options_.socket_buffer_size != 0) {
    set_option(socket_.get(), SOL_SOCKET, SO_RCVBUF, static_cast<int>(options_.socket_buffer_size),
               "setsockopt");
    say("rcvbuf");
  }
  if (type == SOCK_STREAM) {
    // Back-to-back runs on one port would otherwise wait out TIME_WAIT.
    set_option(socket_.get(), SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt");
  }
  bind_to(socket_.get(), address);
  port_ = address_port(local_address(socket_.get()));
  if (options_.port == 0) {
    fmt::print(messages_, "{}: listening on port {}\n", options_.tag(), port_);
    std::fflush(messages_);
  }
  if (type == SOCK_STREAM) {
    if (options_.socket_debug) {
      set_option(socket_.get(), SOL_SOCKET, SO_DEBUG, 1, "setsockopt");
    }
    if (::listen(socket_.get(), 1) < 0) {
      throw SystemError("listen", errno);
    }
  }
  set_non_blocking(socket_.get());
}

void Receiver::say(const char* message) const {
  fmt::print(messages_, "{}: {}\n", options_.tag(), message);
  std::fflush(messages_);
}

TransferResult Receiver::run() {
  FileDescriptor data_socket;
  int fd = socket_.get();
  if (options_.protocol == Protocol::kTcp) {
    SocketAddress peer;
    for (;;) {
      wait_ready(socket_.get(), POLLIN, options_.timeout_seconds, "accept");
      peer.length = sizeof(peer.storage);
      data_socket = FileDescriptor(
          ::accept4(socket_.get(), peer.get(), &peer.length, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (data_socket.valid()) {
        break;
      }
      // A connection reset before we accepted it is gone; wait for another.
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
        throw SystemError("accept", errno);
      }
    }
    fmt::print(messages_, "{}: accept from {}\n", options_.tag(), address_text(peer));
    std::fflush(messages_);
    fd = data_socket.get();
  }
  TransferBuffer buffer(options_.buffer_length, options_.buffer_alignment, options_.buffer_offset);
  const TransferResult result = receive_data(options_, fd, buffer);
  print_report(options_, result, buffer.bytes().data(), messages_);
  return result;
}

}  // namespace vifd::ttcp
