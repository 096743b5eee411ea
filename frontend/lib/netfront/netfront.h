// vifd::frontend::Netfront: the userspace netfront for one vif,
// `device/vif/<devid>` of this domain, driven like Linux's xen-netfront.
//
// Handshake (what Linux netfront does, so the Linux netback can be the peer):
//
//   ours:    Initialising(1) ------------------------------> Connected(4)
//                 | reads backend/ backend-id/ mac/ mtu/ trusted    ^
//   backend:      Initialising --> InitWait(2) ------> features read, rings
//                                  (or Connected)      shared, channels bound,
//                                                      keys + state=4 in ONE
//                                                      transaction
//
//   backend Closing(5)/Closed(6)/removed while we are Connected:
//       disconnect (queues freed, keys removed), state Closed(6); reconnect
//       when the backend comes back to InitWait.
//   a queue found the backend broken (see queue.h):
//       error node, Closing(5), disconnect, Closed(6); state() == kFailed
//       until the backend comes back to InitWait.
//   close(): Closing(5), wait (bounded) for the backend to close, disconnect,
//       Closed(6).
//   started while the device says Connected (or Closed) and the backend
//       Connected (a previous instance died connected): Closing(5), wait for
//       the backend's Closing, Closed(6), wait for its Closed, then
//       Initialising as usual (Linux's xenbus_reset_frontend()), so the
//       backend lets go of the dead instance's rings before we offer new ones.
//
// Event-loop friendly: no threads. Poll xenstore_fd() and every queue's
// event_fd(); call process_xenstore() when the former is readable (or at any
// time: it re-reads the backend state, the watch only wakes you up), and
// queue(i).poll() for the latter, then check_failed().
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/platform/platform.h"
#include "common/protocol/xenbus_state.h"
#include "common/xenstore/client.h"
#include "frontend/lib/netfront/ctrl_channel.h"
#include "frontend/lib/netfront/queue.h"
#include "frontend/lib/netfront/xenbus.h"

namespace vifd::frontend {

struct NetfrontOptions {
  std::uint32_t devid = 0;
  unsigned queues = 1;               // requested; the backend's maximum caps it
  FrontendFeatures features{};       // what this frontend advertises (all on by default)
  bool split_event_channels = true;  // use them when the backend offers them
  // Static grant mappings: when the backend offers a control ring and keeps
  // enough mappings, each queue's TX and RX pools are offered to it once
  // (ADD_GREF_MAPPING) so it copies them with memcpy instead of grant copies.
  // Off: no control ring is offered (the measurement's baseline).
  bool static_grants = true;
};

enum class NetfrontState : std::uint8_t {
  kWaitingForBackend,  // Initialising, backend not yet at InitWait
  kConnected,
  kClosed,  // backend closed the device, or close() was called
  kFailed,  // broken backend or unusable configuration; see error()
};
const char* to_string(NetfrontState state) noexcept;

class Netfront {
 public:
  // The largest frame a TAP with TSO may hand over that one netif packet can
  // carry (its size field is 16 bits).
  static constexpr std::size_t kMaxTapFrame = NetfrontQueue::kMaxFrame;

  // Reads and validates the frontend directory, watches the backend state and
  // writes state Initialising. Throws (XenstoreValueError, XsError,
  // std::runtime_error) naming the key when the toolstack's nodes are
  // missing or malformed.
  Netfront(platform::Platform& platform, xs::Client xenstore, NetfrontOptions options);
  // Releases queues, grants and channels; writes nothing to xenstore (an
  // orderly shutdown is close()).
  ~Netfront();
  Netfront(const Netfront&) = delete;
  Netfront& operator=(const Netfront&) = delete;

  const std::string& path() const noexcept { return path_; }
  const DeviceConfig& config() const noexcept { return config_; }
  NetfrontState state() const noexcept { return state_; }
  bool connected() const noexcept { return state_ == NetfrontState::kConnected; }
  // Connected and the backend says Connected too: carrier on.
  bool backend_connected() const noexcept { return connected() && backend_connected_; }
  // Valid while connected.
  const BackendFeatures& backend_features() const noexcept { return backend_features_; }
  // The offloads a frame sent on this device may carry (what the backend takes).
  net::PeerOffloads tx_offloads() const noexcept;
  const std::string& error() const noexcept { return error_; }
  // How many times the device connected (a reconnect adds one).
  std::uint64_t connect_count() const noexcept { return connect_count_; }

  int xenstore_fd() { return xenstore_.fileno(); }
  // Drains watch events and acts on the backend's current state.
  void process_xenstore();

  std::size_t queue_count() const noexcept { return queues_.size(); }
  NetfrontQueue& queue(std::size_t index) { return *queues_.at(index); }

  // Pool pages the backend keeps mapped (static grant mappings): 0 until it
  // accepted them, and when it does not support them or they are off.
  std::size_t static_grants_mapped() const noexcept { return static_grants_mapped_; }

  // Disconnects the device if a queue failed; returns true if it did.
  bool check_failed();

  // Orderly shutdown: Closing, wait up to `grace` for the backend to close,
  // release everything, Closed.
  void close(std::chrono::milliseconds grace);

  // Throws XsError when the connection to xenstored is gone: a lost
  // connection wakes no watch, so only a request finds out. Reads the
  // device's own state node, which exists while the device does. After a
  // throw the destructor no longer talks to xenstored.
  void probe_xenstore();

 private:
  // How long each step of reset_stale_connection() waits for the backend
  // (Linux's xenbus_reset_wait_for_backend() waits 5 s).
  static constexpr std::chrono::milliseconds kResetWait{5000};

  void reset_stale_connection();
  // Waits (bounded by kResetWait) until the backend's state is at least
  // `at_least` or the backend is gone.
  void wait_for_backend(protocol::XenbusState at_least);
  void connect();
  // Once the backend is Connected: offers every queue's pools over the
  // control ring, or leaves them on grant copies (logged) when the backend
  // declines.
  void offer_static_grants();
  void disconnect() noexcept;
  void fail(const std::string& reason);
  void write_state(protocol::XenbusState state);
  void remove_connect_keys(xs::TxId tx);

  platform::Platform& platform_;
  xs::Client xenstore_;
  NetfrontOptions options_;
  std::string path_;
  std::string watch_token_;
  DeviceConfig config_;
  BackendFeatures backend_features_;
  std::unique_ptr<platform::GrantShare> share_;
  // After share_: queues unshare through it when destroyed.
  std::vector<std::unique_ptr<NetfrontQueue>> queues_;
  std::unique_ptr<CtrlChannel> ctrl_;  // with feature-ctrl-ring and static_grants
  bool static_grants_offered_ = false;
  std::size_t static_grants_mapped_ = 0;
  NetfrontState state_ = NetfrontState::kWaitingForBackend;
  bool backend_connected_ = false;
  // Set when the backend was seen outside InitWait/Connected since our last
  // disconnect: only then does InitWait mean "connect again".
  bool backend_cycled_ = true;
  bool shut_down_ = false;  // close() was called
  bool xenstore_lost_ = false;
  std::string error_;
  std::uint64_t connect_count_ = 0;
};

}  // namespace vifd::frontend
