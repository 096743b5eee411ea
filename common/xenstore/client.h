// vifd::xs::Client: the project's only xenstore client, a thin RAII wrapper
// over libxenstore. On real Xen it opens libxenstore's default endpoint; in
// the simulator it talks to vif-sim's server through XENSTORED_PATH, so the
// same code path (and the same wire protocol) runs on both.
#pragma once

// libxenstore's header has no extern "C" guard of its own.
extern "C" {
#include <xenstore.h>
}

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/platform/types.h"
#include "common/xenstore/perms.h"

namespace vifd::xs {

using TxId = xs_transaction_t;
inline constexpr TxId kNoTx = XBT_NULL;

// A failed xenstore operation; the message names the operation and the path.
class XsError : public std::runtime_error {
 public:
  XsError(const std::string& what, int errno_value)
      : std::runtime_error(what), errno_value_(errno_value) {}
  int errno_value() const noexcept { return errno_value_; }

 private:
  int errno_value_;
};

struct WatchEvent {
  std::string path;
  std::string token;
};

class Client {
 public:
  // socket_path: a unix socket exported as XENSTORED_PATH (process-wide, as
  // libxenstore reads it inside xs_open) and opened socket-only; std::nullopt
  // keeps libxenstore's default (/dev/xen/xenbus, then the daemon socket).
  static Client open(const std::optional<std::string>& socket_path);

  Client(Client&& other) noexcept;
  Client& operator=(Client&& other) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // std::nullopt when the node does not exist; other failures throw.
  std::optional<std::string> read(const std::string& path, TxId tx = kNoTx);
  void write(const std::string& path, const std::string& value, TxId tx = kNoTx);
  void mkdir(const std::string& path, TxId tx = kNoTx);
  // Removes a node and its children; a missing node whose parent exists is fine.
  void rm(const std::string& path, TxId tx = kNoTx);
  // std::nullopt when the node does not exist.
  std::optional<std::vector<std::string>> directory(const std::string& path, TxId tx = kNoTx);
  std::vector<Perm> get_perms(const std::string& path, TxId tx = kNoTx);
  void set_perms(const std::string& path, const std::vector<Perm>& perms, TxId tx = kNoTx);

  // The server sends one event for the path right after registering.
  void watch(const std::string& path, const std::string& token);
  void unwatch(const std::string& path, const std::string& token);
  // Readable when an event is queued; drain with check_watch.
  int fileno();
  // Blocks until an event arrives.
  WatchEvent read_watch();
  // Never blocks; std::nullopt when no event is queued.
  std::optional<WatchEvent> check_watch();

  TxId transaction_start();
  // Returns false when the commit lost a race (EAGAIN); other failures throw.
  bool transaction_end(TxId tx, bool commit);
  // Runs body in a transaction and commits, retrying the whole body when the
  // commit fails with EAGAIN. An exception from body aborts the transaction.
  void transact(const std::function<void(TxId)>& body);

  void introduce_domain(platform::DomId domid);
  void release_domain(platform::DomId domid);
  bool is_domain_introduced(platform::DomId domid);
  std::string get_domain_path(platform::DomId domid);

  xs_handle* handle() const { return handle_; }
  const std::string& endpoint() const { return endpoint_; }

 private:
  Client(xs_handle* handle, std::string endpoint)
      : handle_(handle), endpoint_(std::move(endpoint)) {}
  [[noreturn]] void fail(const std::string& operation, const std::string& path) const;

  xs_handle* handle_ = nullptr;
  std::string endpoint_;
};

}  // namespace vifd::xs
