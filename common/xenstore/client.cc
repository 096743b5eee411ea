#include "common/xenstore/client.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

namespace vifd::xs {
namespace {

// libxenstore returns malloc'ed memory; this frees it on every path.
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
template <typename T>
using MallocPtr = std::unique_ptr<T, FreeDeleter>;

constexpr int kMaxTransactionRetries = 100;

unsigned to_xs(Access access) {
  unsigned bits = XS_PERM_NONE;
  if (allows_read(access)) bits |= XS_PERM_READ;
  if (allows_write(access)) bits |= XS_PERM_WRITE;
  return bits;
}

Access from_xs(unsigned bits) {
  const bool r = (bits & XS_PERM_READ) != 0;
  const bool w = (bits & XS_PERM_WRITE) != 0;
  if (r && w) return Access::kBoth;
  if (r) return Access::kRead;
  if (w) return Access::kWrite;
  return Access::kNone;
}

}  // namespace

Client Client::open(const std::optional<std::string>& socket_path) {
  unsigned long flags = 0;
  std::string endpoint = "libxenstore default";
  if (socket_path) {
    if (::setenv("XENSTORED_PATH", socket_path->c_str(), 1) != 0) {
      throw XsError(
          fmt::format("cannot set XENSTORED_PATH={}: {}", *socket_path, std::strerror(errno)),
          errno);
    }
    flags = XS_OPEN_SOCKETONLY;
    endpoint = *socket_path;
  }
  xs_handle* handle = xs_open(flags);
  if (handle == nullptr) {
    const int err = errno;
    throw XsError(fmt::format("cannot open xenstore at {}: {}", endpoint, std::strerror(err)), err);
  }
  return Client(handle, std::move(endpoint));
}

Client::Client(Client&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)), endpoint_(std::move(other.endpoint_)) {}

Client& Client::operator=(Client&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) xs_close(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
    endpoint_ = std::move(other.endpoint_);
  }
  return *this;
}

Client::~Client() {
  if (handle_ != nullptr) xs_close(handle_);
}

void Client::fail(const std::string& operation, const std::string& path) const {
  const int err = errno;
  // libxenstore closes its socket when the connection breaks (xenstored
  // exited) and every later request fails with EBADF: say what happened.
  const std::string reason = err == EBADF ? "connection to xenstored closed" : std::strerror(err);
  throw XsError(fmt::format("xenstore {} {} (via {}): {}", operation, path, endpoint_, reason),
                err);
}

std::optional<std::string> Client::read(const std::string& path, TxId tx) {
  unsigned int len = 0;
  MallocPtr<char> value(static_cast<char*>(xs_read(handle_, tx, path.c_str(), &len)));
  if (!value) {
    if (errno == ENOENT) return std::nullopt;
    fail("read", path);
  }
  return std::string(value.get(), len);
}

void Client::write(const std::string& path, const std::string& value, TxId tx) {
  if (!xs_write(handle_, tx, path.c_str(), value.data(), static_cast<unsigned>(value.size()))) {
    fail("write", path);
  }
}

void Client::mkdir(const std::string& path, TxId tx) {
  if (!xs_mkdir(handle_, tx, path.c_str())) fail("mkdir", path);
}

void Client::rm(const std::string& path, TxId tx) {
  if (!xs_rm(handle_, tx, path.c_str())) fail("rm", path);
}

std::optional<std::vector<std::string>> Client::directory(const std::string& path, TxId tx) {
  unsigned int num = 0;
  MallocPtr<char*> entries(xs_directory(handle_, tx, path.c_str(), &num));
  if (!entries) {
    if (errno == ENOENT) return std::nullopt;
    fail("directory", path);
  }
  return std::vector<std::string>(entries.get(), entries.get() + num);
}

std::vector<Perm> Client::get_perms(const std::string& path, TxId tx) {
  unsigned int num = 0;
  MallocPtr<xs_permissions> perms(xs_get_permissions(handle_, tx, path.c_str(), &num));
  if (!perms) fail("get-perms", path);
  std::vector<Perm> out;
  out.reserve(num);
  for (unsigned int i = 0; i < num; ++i) {
    out.push_back(
        Perm{static_cast<platform::DomId>(perms.get()[i].id), from_xs(perms.get()[i].perms)});
  }
  return out;
}

void Client::set_perms(const std::string& path, const std::vector<Perm>& perms, TxId tx) {
  std::vector<xs_permissions> raw;
  raw.reserve(perms.size());
  for (const auto& perm : perms) raw.push_back(xs_permissions{perm.domid, to_xs(perm.access)});
  if (!xs_set_permissions(handle_, tx, path.c_str(), raw.data(),
                          static_cast<unsigned>(raw.size()))) {
    fail("set-perms " + format_perms(perms), path);
  }
}

void Client::watch(const std::string& path, const std::string& token) {
  if (!xs_watch(handle_, path.c_str(), token.c_str())) fail("watch", path);
}

void Client::unwatch(const std::string& path, const std::string& token) {
  if (!xs_unwatch(handle_, path.c_str(), token.c_str())) fail("unwatch", path);
}

int Client::fileno() {
  const int fd = xs_fileno(handle_);
  if (fd < 0) fail("fileno", "");
  return fd;
}

WatchEvent Client::read_watch() {
  unsigned int num = 0;
  MallocPtr<char*> event(xs_read_watch(handle_, &num));
  if (!event) fail("read-watch", "");
  return WatchEvent{event.get()[XS_WATCH_PATH], event.get()[XS_WATCH_TOKEN]};
}

std::optional<WatchEvent> Client::check_watch() {
  MallocPtr<char*> event(xs_check_watch(handle_));
  if (!event) {
    if (errno == EAGAIN) return std::nullopt;
    fail("check-watch", "");
  }
  return WatchEvent{event.get()[XS_WATCH_PATH], event.get()[XS_WATCH_TOKEN]};
}

TxId Client::transaction_start() {
  const TxId tx = xs_transaction_start(handle_);
  if (tx == XBT_NULL) fail("transaction-start", "");
  return tx;
}

bool Client::transaction_end(TxId tx, bool commit) {
  if (xs_transaction_end(handle_, tx, commit ? false : true)) return true;
  if (commit && errno == EAGAIN) return false;
  fail(commit ? "transaction-commit" : "transaction-abort", std::to_string(tx));
}

void Client::transact(const std::function<void(TxId)>& body) {
  for (int attempt = 0; attempt < kMaxTransactionRetries; ++attempt) {
    const TxId tx = transaction_start();
    try {
      body(tx);
    } catch (...) {
      xs_transaction_end(handle_, tx, true);
      throw;
    }
    if (transaction_end(tx, true)) return;
  }
  throw XsError(fmt::format("xenstore transaction via {} kept conflicting ({} attempts)", endpoint_,
                            kMaxTransactionRetries),
                EAGAIN);
}

void Client::introduce_domain(platform::DomId domid) {
  // The simulator has no ring page or event channel: mfn and port are 0.
  if (!xs_introduce_domain(handle_, domid, 0, 0))
    fail("introduce", "domain " + std::to_string(domid));
}

void Client::release_domain(platform::DomId domid) {
  if (!xs_release_domain(handle_, domid)) fail("release", "domain " + std::to_string(domid));
}

bool Client::is_domain_introduced(platform::DomId domid) {
  // libxenstore answers only true/false here: a failed request cannot be
  // told apart from "F", so there is no errno to report.
  return xs_is_domain_introduced(handle_, domid);
}

std::string Client::get_domain_path(platform::DomId domid) {
  MallocPtr<char> path(xs_get_domain_path(handle_, domid));
  if (!path) fail("get-domain-path", "domain " + std::to_string(domid));
  return std::string(path.get());
}

}  // namespace vifd::xs
