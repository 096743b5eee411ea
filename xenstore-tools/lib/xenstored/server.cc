#include "xenstore-tools/lib/xenstored/server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <utility>

#include "common/platform/sim/sim_host.h"
#include "xenstore-tools/lib/xenstored/paths.h"

namespace vifd::xenstored {

namespace asio = boost::asio;
using Socket = asio::local::stream_protocol::socket;

class Server::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, Socket socket, Caller caller)
      : server_(server), socket_(std::move(socket)), caller_(caller) {}

  const Caller& caller() const { return caller_; }

  void start() { read_header(); }

  // Returns false when the queue is full: the caller closes the connection.
  bool send(const Message& message) {
    const std::size_t bytes = kHeaderSize + message.payload.size();
    const std::size_t max_messages =
        caller_.privileged ? kMaxQueuedMessagesPrivileged : kMaxQueuedMessages;
    const std::size_t max_bytes = caller_.privileged ? kMaxQueuedBytesPrivileged : kMaxQueuedBytes;
    if (queue_.size() >= max_messages || queued_bytes_ + bytes > max_bytes) {
      return false;
    }
    queue_.push_back(message.serialize());
    queued_bytes_ += queue_.back().size();
    if (!writing_) write_next();
    return true;
  }

  void shutdown() {
    closed_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

 private:
  void read_header() {
    auto self = shared_from_this();
    asio::async_read(socket_, asio::buffer(&header_, kHeaderSize),
                     [this, self](boost::system::error_code ec, std::size_t) {
                       if (ec || closed_) return server_.close(caller_.conn);
                       // A length beyond the protocol maximum cannot be
                       // answered in sync; xenstored drops such a connection.
                       if (header_.len > XENSTORE_PAYLOAD_MAX) {
                         spdlog::warn("xenstored: domain {} sent a {}-byte payload, closing",
                                      caller_.domid, header_.len);
                         ++server_.stats_.dropped_connections;
                         return server_.close(caller_.conn);
                       }
                       payload_.resize(header_.len);
                       read_payload();
                     });
  }

  void read_payload() {
    auto self = shared_from_this();
    asio::async_read(socket_, asio::buffer(payload_),
                     [this, self](boost::system::error_code ec, std::size_t) {
                       if (ec || closed_) return server_.close(caller_.conn);
                       server_.handle(*this, header_, payload_);
                       if (!closed_) read_header();
                     });
  }

  void write_next() {
    writing_ = true;
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(queue_.front()),
                      [this, self](boost::system::error_code ec, std::size_t) {
                        if (ec || closed_) return server_.close(caller_.conn);
                        queued_bytes_ -= queue_.front().size();
                        queue_.pop_front();
                        if (queue_.empty()) {
                          writing_ = false;
                        } else {
                          write_next();
                        }
                      });
  }

  Server& server_;
  Socket socket_;
  Caller caller_;
  xsd_sockmsg header_{};
  std::string payload_;
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closed_ = false;
};

Server::Server(asio::io_context& io, std::filesystem::path host_dir, Quotas quotas)
    : io_(io), host_dir_(std::move(host_dir)), store_(quotas) {}

Server::~Server() {
  stop();
}

std::filesystem::path Server::dom0_socket() const {
  return sim::HostPaths{host_dir_}.xenstored_socket();
}

void Server::start() {
  const Caller dom0{0, 0, true};
  const std::string home = domain_path(0);
  store_.write(dom0, kNoTx, home + "/domid", "0");
  store_.write(dom0, kNoTx, home + "/name", "Domain-0");
  store_.take_events();
  dom0_acceptor_ = listen(dom0_socket());
  accept(*dom0_acceptor_, 0, true);
  sync_domains();
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  if (dom0_acceptor_) {
    dom0_acceptor_->close(ignored);
    std::error_code fs_ignored;
    std::filesystem::remove(dom0_socket(), fs_ignored);
  }
  for (auto& [domid, acceptor] : domain_acceptors_) {
    acceptor->close(ignored);
    std::error_code fs_ignored;
    std::filesystem::remove(sim::HostPaths{host_dir_}.domain_xenstored_socket(domid), fs_ignored);
  }
  domain_acceptors_.clear();
  // The per-domain socket directory goes too (removal fails harmlessly if
  // something else still lives there).
  std::error_code fs_ignored;
  std::filesystem::remove(sim::HostPaths{host_dir_}.domain_xenstored_socket(0).parent_path(),
                          fs_ignored);
  for (auto& [id, connection] : connections_) connection->shutdown();
  connections_.clear();
}

std::unique_ptr<Server::Acceptor> Server::listen(const std::filesystem::path& path) {
  std::error_code fs_error;
  std::filesystem::create_directories(path.parent_path(), fs_error);
  // A socket file left by a dead server would make bind fail; a live server
  // is detected by the caller (vif-sim) before it gets here.
  std::filesystem::remove(path, fs_error);
  // Bound under a temporary name and renamed once listening: clients wait
  // for the socket file to appear, and a file that exists before listen()
  // would refuse their connect.
  const std::filesystem::path bound = path.string() + ".new";
  std::filesystem::remove(bound, fs_error);
  auto acceptor = std::make_unique<Acceptor>(io_);
  boost::system::error_code ec;
  acceptor->open(asio::local::stream_protocol(), ec);
  if (!ec) acceptor->bind(asio::local::stream_protocol::endpoint(bound.string()), ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("xenstored: cannot listen on " + path.string() + ": " + ec.message());
  std::filesystem::rename(bound, path, fs_error);
  if (fs_error)
    throw std::runtime_error("xenstored: cannot listen on " + path.string() + ": " +
                             fs_error.message());
  return acceptor;
}

void Server::accept(Acceptor& acceptor, DomId domid, bool privileged) {
  acceptor.async_accept(
      [this, &acceptor, domid, privileged](boost::system::error_code ec, Socket socket) {
        if (ec) {
          // operation_aborted: the listener was closed (stop or release).
          if (ec != asio::error::operation_aborted) {
            spdlog::warn("xenstored: accept for domain {} failed: {}", domid, ec.message());
          }
          return;
        }
        if (!privileged && connections_of(domid) >= store_.quotas().connections_per_domain) {
          // A guest opening connections in a loop would otherwise grow the
          // server by one queue per connection.
          spdlog::warn(
              "xenstored: domain {} already holds {} connections (the limit), closing "
              "a further one",
              domid, store_.quotas().connections_per_domain);
          ++stats_.refused_connections;
          boost::system::error_code ignored;
          socket.close(ignored);
          accept(acceptor, domid, privileged);
          return;
        }
        const ConnId id = next_conn_++;
        auto connection =
            std::make_shared<Connection>(*this, std::move(socket), Caller{id, domid, privileged});
        connections_[id] = connection;
        connection->start();
        accept(acceptor, domid, privileged);
      });
}

void Server::handle(Connection& connection, const xsd_sockmsg& header, std::string_view payload) {
  ++stats_.requests;
  const Message reply = handle_request(store_, connection.caller(), header, payload);
  if (reply.type == XS_ERROR) ++stats_.errors;
  if (header.type == XS_CONTROL && reply.type != XS_ERROR &&
      payload.starts_with(std::string_view("print\0", 6))) {
    spdlog::info("xenstored: {}", payload.substr(6, payload.find('\0', 6) - 6));
  }
  // The domain's socket must exist before dom0 learns that the introduce
  // succeeded, so that a client may connect right after the reply.
  if ((header.type == XS_INTRODUCE || header.type == XS_RELEASE) && reply.type != XS_ERROR) {
    sync_domains();
  }
  const ConnId id = connection.caller().conn;
  if (!connection.send(reply)) {
    spdlog::warn("xenstored: domain {} does not read its replies, closing",
                 connection.caller().domid);
    ++stats_.dropped_connections;
    close(id);
  }
  deliver_events();
}

void Server::deliver_events() {
  for (const auto& event : store_.take_events()) {
    auto it = connections_.find(event.conn);
    if (it == connections_.end()) continue;
    ++stats_.watch_events;
    if (!it->second->send(watch_event_message(event))) {
      spdlog::warn("xenstored: domain {} does not read its watch events, closing",
                   it->second->caller().domid);
      ++stats_.dropped_connections;
      close(event.conn);
    }
  }
}

std::size_t Server::connections_of(DomId domid) const {
  std::size_t count = 0;
  for (const auto& [id, connection] : connections_) {
    if (!connection->caller().privileged && connection->caller().domid == domid) ++count;
  }
  return count;
}

void Server::close(ConnId id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  auto connection = it->second;
  connections_.erase(it);
  connection->shutdown();
  store_.disconnect(id);
}

void Server::sync_domains() {
  if (stopped_) return;
  const sim::HostPaths paths{host_dir_};
  const auto introduced = store_.introduced_domains();
  for (DomId domid : introduced) {
    if (domain_acceptors_.contains(domid)) continue;
    try {
      auto acceptor = listen(paths.domain_xenstored_socket(domid));
      accept(*acceptor, domid, false);
      domain_acceptors_[domid] = std::move(acceptor);
    } catch (const std::exception& e) {
      // The domain stays introduced in the store; only its socket is missing.
      spdlog::error("{}", e.what());
    }
  }
  for (auto it = domain_acceptors_.begin(); it != domain_acceptors_.end();) {
    const DomId domid = it->first;
    if (store_.is_introduced(domid)) {
      ++it;
      continue;
    }
    // A released domain loses its ring: close its listener and connections.
    boost::system::error_code ignored;
    it->second->close(ignored);
    std::error_code fs_ignored;
    std::filesystem::remove(paths.domain_xenstored_socket(domid), fs_ignored);
    it = domain_acceptors_.erase(it);
    std::vector<ConnId> doomed;
    for (const auto& [id, connection] : connections_) {
      if (!connection->caller().privileged && connection->caller().domid == domid)
        doomed.push_back(id);
    }
    for (ConnId id : doomed) close(id);
  }
}

}  // namespace vifd::xenstored
