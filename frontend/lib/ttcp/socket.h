// Socket plumbing for vif-ttcp: an owning descriptor, address helpers and
// I/O calls that survive EINTR and partial progress and honour --timeout.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace vifd::ttcp {

// A failed system call. Printed as ttcp's err() prints it:
// "ttcp-t: connect: Connection refused" followed by "errno=111".
class SystemError : public std::runtime_error {
 public:
  SystemError(std::string operation, int error_number);
  [[nodiscard]] const std::string& operation() const { return operation_; }
  [[nodiscard]] int error_number() const { return error_number_; }

 private:
  std::string operation_;
  int error_number_;
};

// getaddrinfo() failed; the resolver has its own error space, not errno.
class ResolveError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  FileDescriptor(FileDescriptor&& other) noexcept;
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  ~FileDescriptor();

  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  [[nodiscard]] const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  [[nodiscard]] sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  [[nodiscard]] int family() const { return storage.ss_family; }
};

// Numeric host text; IPv4-mapped IPv6 addresses print as plain IPv4, the way
// an operator typed them.
std::string address_text(const SocketAddress& address);
int address_port(const SocketAddress& address);

// getaddrinfo() for a host (or a numeric address) and a port; throws
// ResolveError naming the host when it cannot be resolved.
std::vector<SocketAddress> resolve(const std::string& host, int port, int socket_type,
                                   bool passive);

// Waits until `fd` is ready for `events` (POLLIN/POLLOUT). Without a timeout
// it waits forever; with one it throws SystemError(operation, ETIMEDOUT).
void wait_ready(int fd, short events, std::optional<double> timeout_seconds, const char* operation);

// Sockets are non-blocking so that every wait goes through wait_ready() and
// --timeout bounds it.
void set_non_blocking(int fd);

// One send() of up to data.size() bytes (sendto() when `peer` is given);
// retries EINTR and waits out EAGAIN; returns the bytes accepted.
std::size_t send_some(int fd, std::span<const std::byte> data, const SocketAddress* peer,
                      std::optional<double> timeout_seconds);

// One recv() into `buffer`; returns 0 at end of stream. Throws
// SystemError("IO", ETIMEDOUT) when nothing arrives within the timeout.
std::size_t receive_some(int fd, std::span<std::byte> buffer,
                         std::optional<double> timeout_seconds);

// As receive_some(), but a timeout is an answer (nullopt), not an error:
// for UDP, where the end sentinels themselves may be lost.
std::optional<std::size_t> receive_within(int fd, std::span<std::byte> buffer,
                                          std::optional<double> timeout_seconds);

// Blocking read()/write() on stdin/stdout, retrying EINTR; write_all loops
// over partial writes.
std::size_t read_some(int fd, std::span<std::byte> buffer);
void write_all(int fd, std::span<const std::byte> data);

}  // namespace vifd::ttcp
