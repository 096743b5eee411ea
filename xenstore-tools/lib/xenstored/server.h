// The xenstored-compatible server of a sim host, on one Boost.Asio
// io_context thread. DIR/xenstored.sock is dom0's (privileged) endpoint; each
// introduced domain gets DIR/xs/<domid>.sock, and every connection there is
// that domain (unprivileged, relative paths under its domain_path()), as
// a guest's xenbus ring would be.
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>

#include "xenstore-tools/lib/xenstored/asio.h"
#include "xenstore-tools/lib/xenstored/protocol.h"
#include "xenstore-tools/lib/xenstored/store.h"

namespace vifd::xenstored {

// Atomic so a test or a stats reader on another thread may look at them
// while the io_context thread counts.
struct ServerStats {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> watch_events{0};
  // Malformed input or an output queue that overflowed.
  std::atomic<std::uint64_t> dropped_connections{0};
  // Closed at accept: the domain already held connections_per_domain.
  std::atomic<std::uint64_t> refused_connections{0};
};

class Server {
 public:
  // Replies and events queued for a connection that does not read them; past
  // either bound the connection is closed rather than letting it grow the
  // server (oxenstored drops such a connection too). The byte bound matters
  // for watch events with long tokens: 1024 of those would be 4 MiB.
  static constexpr std::size_t kMaxQueuedMessages = 1024;
  static constexpr std::size_t kMaxQueuedBytes = std::size_t{1024} * 1024;
  // dom0's tools are trusted but their reader threads get descheduled: a
  // backend watching a flooding guest's directory must survive a few hundred
  // milliseconds without reading (C xenstored applies its per-connection
  // quotas to unprivileged domains only; a bound remains so a hung dom0 tool
  // cannot grow the server without limit).
  static constexpr std::size_t kMaxQueuedMessagesPrivileged = 16 * 1024;
  static constexpr std::size_t kMaxQueuedBytesPrivileged = std::size_t{16} * 1024 * 1024;

  Server(boost::asio::io_context& io, std::filesystem::path host_dir, Quotas quotas = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Creates dom0's nodes (domain_path(0), as xen-init-dom0 does) and starts
  // listening on DIR/xenstored.sock. Throws naming the socket if it cannot.
  void start();
  // Closes every listener and connection and removes the socket files. Call
  // on the io_context thread (or after it stopped).
  void stop();

  std::filesystem::path dom0_socket() const;
  Store& store() { return store_; }
  const ServerStats& stats() const { return stats_; }

 private:
  class Connection;
  using Acceptor = boost::asio::local::stream_protocol::acceptor;

  std::unique_ptr<Acceptor> listen(const std::filesystem::path& path);
  void accept(Acceptor& acceptor, DomId domid, bool privileged);
  void handle(Connection& connection, const xsd_sockmsg& header, std::string_view payload);
  void deliver_events();
  void close(ConnId id);
  std::size_t connections_of(DomId domid) const;
  // Opens sockets for newly introduced domains and closes released ones.
  void sync_domains();

  boost::asio::io_context& io_;
  std::filesystem::path host_dir_;
  Store store_;
  ServerStats stats_;
  std::unique_ptr<Acceptor> dom0_acceptor_;
  std::map<DomId, std::unique_ptr<Acceptor>> domain_acceptors_;
  std::map<ConnId, std::shared_ptr<Connection>> connections_;
  ConnId next_conn_ = 1;
  bool stopped_ = false;
};

}  // namespace vifd::xenstored
