// The pure core of the xenstored-compatible server: the node tree,
// permissions, watches, transactions, quotas and introduced domains, with no
// I/O so it can be tested on its own. Semantics follow C xenstored (Xen 4.17):
// dom0 is privileged; other domains get the access of their permission entry;
// errors are the errno values of the xsd_errors table.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/platform/types.h"
#include "common/xenstore/perms.h"

namespace vifd::xenstored {

using platform::DomId;
using ConnId = std::uint64_t;
using TxId = std::uint32_t;
inline constexpr TxId kNoTx = 0;

// Who is asking. Watches and transactions belong to a connection.
struct Caller {
  ConnId conn = 0;
  DomId domid = 0;
  bool privileged = false;
};

// Limits applied to unprivileged domains (cxenstored's defaults).
struct Quotas {
  std::size_t entries_per_domain = 1000;
  std::size_t watches_per_domain = 128;
  std::size_t transactions_per_connection = 10;
  // Size of a node's record as cxenstored stores it (header, permissions,
  // value and child names): an unprivileged domain may not write a node
  // whose record reaches this.
  std::size_t max_node_size = 2048;
  // Connections a domain may hold on its socket at once (the server's
  // limit; a real guest has one ring). A further one is closed at accept.
  std::size_t connections_per_domain = 16;
};

// An errno value (0 = success) or a result.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  static Result failure(int error) { return Result(error, 0); }
  bool ok() const { return error_ == 0; }
  int error() const { return error_; }
  const T& value() const { return *value_; }
  T& value() { return *value_; }

 private:
  Result(int error, int /*tag*/) : error_(error) {}
  std::optional<T> value_;
  int error_ = 0;
};

struct Node {
  std::string value;
  std::vector<xs::Perm> perms;
  std::set<std::string> children;
  // Changes whenever the node (value, perms or child list) changes; a
  // transaction that saw an older generation cannot commit.
  std::uint64_t generation = 0;
};

struct DirectoryListing {
  std::uint64_t generation = 0;
  std::vector<std::string> children;
};

// A watch event to deliver to connection `conn`.
struct WatchEvent {
  ConnId conn = 0;
  std::string path;  // relative if the watch was registered relative
  std::string token;
};

// What a change means for watchers. A change fires for watches at the path
// or above it; a removal also fires for watches below the removed path.
struct PendingEvent {
  std::string path;
  std::vector<xs::Perm> perms;  // who may see it
  bool removal_below = false;
};

class Store {
 public:
  explicit Store(Quotas quotas = {});

  Result<std::string> read(const Caller& caller, TxId tx, std::string_view path);
  int write(const Caller& caller, TxId tx, std::string_view path, std::string_view value);
  int mkdir(const Caller& caller, TxId tx, std::string_view path);
  int rm(const Caller& caller, TxId tx, std::string_view path);
  Result<DirectoryListing> directory(const Caller& caller, TxId tx, std::string_view path);
  Result<std::vector<xs::Perm>> get_perms(const Caller& caller, TxId tx, std::string_view path);
  int set_perms(const Caller& caller, TxId tx, std::string_view path,
                const std::vector<xs::Perm>& perms);

  int watch(const Caller& caller, std::string_view path, std::string_view token);
  int unwatch(const Caller& caller, std::string_view path, std::string_view token);
  void reset_watches(const Caller& caller);

  Result<TxId> transaction_start(const Caller& caller);
  bool has_transaction(const Caller& caller, TxId tx) const {
    auto it = transactions_.find(tx);
    return it != transactions_.end() && it->second.conn == caller.conn;
  }
  // EAGAIN when a node the transaction read or wrote changed since it did;
  // ENOSPC, for an unprivileged caller, when the nodes it created would take
  // a domain past entries_per_domain now (other writes may have landed since
  // each write inside the transaction was checked), as cxenstored's
  // acc_fix_domains() at commit. Either way nothing is applied.
  int transaction_end(const Caller& caller, TxId tx, bool commit);

  int introduce(const Caller& caller, DomId domid);
  int release(const Caller& caller, DomId domid);
  bool is_introduced(DomId domid) const { return introduced_.contains(domid); }
  std::vector<DomId> introduced_domains() const { return {introduced_.begin(), introduced_.end()}; }

  // Drops the watches and open transactions of a closed connection.
  void disconnect(ConnId conn);

  // Events produced by the operations so far, in order; the server drains
  // them after each request (after sending the request's reply).
  std::vector<WatchEvent> take_events();

  // Nodes owned by `domid` (counted for every domain, enforced for unprivileged).
  std::size_t entries_owned_by(DomId domid) const;
  std::size_t node_count() const { return nodes_.size(); }
  const Quotas& quotas() const { return quotas_; }

 private:
  struct Transaction {
    ConnId conn = 0;
    // Nodes this transaction wrote (std::nullopt = removed).
    std::map<std::string, std::optional<Node>> overlay;
    // Generation of every live node the transaction looked at (0 = absent).
    std::map<std::string, std::uint64_t> observed;
    std::map<DomId, long> entry_delta;
    // One event per changed path (as cxenstored fires once per accessed
    // node), so rewriting one node in a loop does not grow the transaction.
    std::vector<PendingEvent> events;
    std::map<std::pair<std::string, bool>, std::size_t> event_index;
  };
  struct Watch {
    Caller owner;
    std::string path;  // absolute or special
    std::string token;
    bool relative = false;
  };
  class View;

  Transaction* find_transaction(const Caller& caller, TxId tx, int& error);
  static int missing_node_error(View& view, const Caller& caller, const std::string& path,
                                bool want_write);
  bool exceeds_node_quota(const Caller& caller, const Node& node) const;
  int create_node(View& view, const Caller& caller, const std::string& path,
                  std::string_view value);
  void fire(const PendingEvent& event);
  void record(View& view, PendingEvent event);

  Quotas quotas_;
  std::map<std::string, Node> nodes_;
  std::map<DomId, std::size_t> entries_;
  std::map<std::string, std::vector<xs::Perm>> special_perms_;
  std::uint64_t next_generation_ = 1;
  std::map<TxId, Transaction> transactions_;
  TxId next_tx_ = 1;
  std::vector<Watch> watches_;
  std::set<DomId> introduced_;
  std::vector<WatchEvent> events_;
};

}  // namespace vifd::xenstored
