#include "frontend/lib/ttcp/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <thread>
#include <utility>

namespace vifd::ttcp {
namespace {

// Classic ttcp sleeps 18 ms when a UDP send finds no buffer space (ENOBUFS)
// instead of counting the datagram as sent.
constexpr auto kNoBufferBackoff = std::chrono::milliseconds(18);

int poll_milliseconds(std::optional<double> timeout_seconds) {
  if (!timeout_seconds) {
    return -1;
  }
  // Options bound the timeout to a week, so this fits an int.
  return static_cast<int>(std::ceil(*timeout_seconds * 1000.0));
}

}  // namespace

SystemError::SystemError(std::string operation, int error_number)
    : std::runtime_error(operation + ": " + std::strerror(error_number)),
      operation_(std::move(operation)),
      error_number_(error_number) {}

FileDescriptor::FileDescriptor(FileDescriptor&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)) {}

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::string address_text(const SocketAddress& address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.family() == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address.storage);
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
  } else if (address.family() == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      ::inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], text, sizeof(text));
    } else {
      ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    }
  } else {
    return "unknown";
  }
  return text;
}

int address_port(const SocketAddress& address) {
  if (address.family() == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_port);
  }
  if (address.family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_port);
  }
  return 0;
}

std::vector<SocketAddress> resolve(const std::string& host, int port, int socket_type,
                                   bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socket_type;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const int status = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (status != 0) {
    if (status == EAI_SYSTEM) {
      throw SystemError("bad hostname '" + host + "'", errno);
    }
    throw ResolveError("bad hostname '" + host + "': " + ::gai_strerror(status));
  }
  std::vector<SocketAddress> addresses;
  for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    if (entry->ai_addrlen > sizeof(sockaddr_storage)) {
      continue;
    }
    SocketAddress address;
    std::memcpy(&address.storage, entry->ai_addr, entry->ai_addrlen);
    address.length = entry->ai_addrlen;
    addresses.push_back(address);
  }
  ::freeaddrinfo(found);
  return addresses;
}

void wait_ready(int fd, short events, std::optional<double> timeout_seconds,
                const char* operation) {
  pollfd entry{.fd = fd, .events = events, .revents = 0};
  for (;;) {
    const int ready = ::poll(&entry, 1, poll_milliseconds(timeout_seconds));
    if (ready > 0) {
      return;
    }
    if (ready == 0) {
      throw SystemError(operation, ETIMEDOUT);
    }
    if (errno != EINTR) {
      throw SystemError("poll", errno);
    }
  }
}

void set_non_blocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    throw SystemError("fcntl", errno);
  }
}

std::size_t send_some(int fd, std::span<const std::byte> data, const SocketAddress* peer,
                      std::optional<double> timeout_seconds) {
  for (;;) {
    // MSG_NOSIGNAL: a receiver that goes away must show up as EPIPE in the
    // report, not kill the transmitter with SIGPIPE.
    const ssize_t sent = peer != nullptr ? ::sendto(fd, data.data(), data.size(), MSG_NOSIGNAL,
                                                    peer->get(), peer->length)
                                         : ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent >= 0) {
      return static_cast<std::size_t>(sent);
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_ready(fd, POLLOUT, timeout_seconds, "IO");
      continue;
    }
    if (errno == ENOBUFS && peer != nullptr) {
      std::this_thread::sleep_for(kNoBufferBackoff);
      continue;
    }
    throw SystemError("IO", errno);
  }
}

std::optional<std::size_t> receive_within(int fd, std::span<std::byte> buffer,
                                          std::optional<double> timeout_seconds) {
  for (;;) {
    const ssize_t received = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (received >= 0) {
      return static_cast<std::size_t>(received);
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      throw SystemError("IO", errno);
    }
    pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
    const int ready = ::poll(&entry, 1, poll_milliseconds(timeout_seconds));
    if (ready == 0) {
      return std::nullopt;
    }
    if (ready < 0 && errno != EINTR) {
      throw SystemError("poll", errno);
    }
  }
}

std::size_t receive_some(int fd, std::span<std::byte> buffer,
                         std::optional<double> timeout_seconds) {
  const std::optional<std::size_t> received = receive_within(fd, buffer, timeout_seconds);
  if (!received) {
    throw SystemError("IO", ETIMEDOUT);
  }
  return *received;
}

std::size_t read_some(int fd, std::span<std::byte> buffer) {
  for (;;) {
    const ssize_t count = ::read(fd, buffer.data(), buffer.size());
    if (count >= 0) {
      return static_cast<std::size_t>(count);
    }
    if (errno != EINTR) {
      throw SystemError("read", errno);
    }
  }
}

void write_all(int fd, std::span<const std::byte> data) {
  while (!data.empty()) {
    const ssize_t count = ::write(fd, data.data(), data.size());
    if (count < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw SystemError("write", errno);
    }
    data = data.subspan(static_cast<std::size_t>(count));
  }
}

}  // namespace vifd::ttcp
