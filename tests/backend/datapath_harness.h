// A hand-written frontend and the control plane's side of one queue, for
// data-path tests: a sim host in a temp dir, a frontend domain that shares
// its rings and buffer pages with grant sharing and binds an event channel,
// and a backend (dom0) that maps the rings and runs a Queue on them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/lib/datapath/gref_table.h"
#include "backend/lib/datapath/queue.h"
#include "common/net/packet_meta.h"
#include "common/platform/platform.h"
#include "common/protocol/ring.h"
#include "tests/support/eventually.h"
#include "tests/support/faulty_grant_table.h"

namespace vifd::backend::testing {

// A simulated host with the given domains (dom0 always exists).
class SimHost {
 public:
  explicit SimHost(std::initializer_list<platform::DomId> domains);
  ~SimHost();
  SimHost(const SimHost&) = delete;
  SimHost& operator=(const SimHost&) = delete;
  const std::filesystem::path& dir() const { return dir_; }
  std::unique_ptr<platform::Platform> join(platform::DomId domid) const;

 private:
  std::filesystem::path dir_;
};

using vifd::testing::eventually;

// A SOCK_SEQPACKET socket pair standing in for a TAP fd: one datagram per
// frame, virtio header first, exactly what tap_write produces and tap_read
// expects. The queue gets queue_fd(); the test plays the host on the other
// end.
class FakeTap {
 public:
  FakeTap();
  ~FakeTap();
  FakeTap(const FakeTap&) = delete;
  FakeTap& operator=(const FakeTap&) = delete;

  int queue_fd() const { return queue_end_; }
  // The next frame the queue wrote, header stripped; empty on timeout.
  std::vector<std::uint8_t> receive(net::VirtioNetHdr* header = nullptr);
  // Whether a frame from the queue is waiting, without waiting for one.
  bool has_frame() const;
  // Hands the queue a frame with this virtio header, as the kernel would.
  void send(std::span<const std::uint8_t> frame, const net::VirtioNetHdr& header = {});
  // Hands the queue one datagram exactly as given (a broken host side).
  void send_raw(std::span<const std::uint8_t> datagram);
  // send(), waiting (up to 10 s) while the socket buffer is full, as a
  // host stack would with a stopped TAP queue; false on timeout.
  bool send_when_room(std::span<const std::uint8_t> frame, const net::VirtioNetHdr& header = {});

 private:
  int queue_end_ = -1;
  int host_end_ = -1;
};

class TestFrontend {
 public:
  static constexpr std::size_t kPages = 64;

  TestFrontend(const SimHost& host, platform::DomId domid);
  ~TestFrontend();

  platform::DomId domid() const { return domid_; }
  platform::GrantRef tx_ring_ref() const { return tx_ring_ref_; }
  platform::GrantRef rx_ring_ref() const { return rx_ring_ref_; }
  platform::EvtchnPort port() const { return port_; }
  protocol::TxFrontRing& tx() { return *tx_; }
  protocol::RxFrontRing& rx() { return *rx_; }
  std::byte* tx_ring_page() { return static_cast<std::byte*>(tx_ring_); }
  std::byte* rx_ring_page() { return static_cast<std::byte*>(rx_ring_); }

  // Writes `frame` into TX buffer pages, `slot_bytes` per slot, and pushes
  // its requests (first slot size = whole length, more_data, extras after
  // the first). Returns the ids of the data slots.
  std::vector<std::uint16_t> send_frame(std::span<const std::uint8_t> frame,
                                        std::uint16_t flags = 0,
                                        const protocol::ExtraInfo* extra = nullptr,
                                        std::size_t slot_bytes = 4096);
  // Kicks the backend whatever the ring asked for.
  void notify();
  // Pushes requests exactly as given (hostile frontends).
  void push_raw(std::span<const protocol::TxRequest> requests);
  platform::GrantRef tx_page_ref(std::size_t page) const { return tx_refs_[page]; }
  // The grant of the RX page that RX requests with this id carry.
  platform::GrantRef rx_page_ref(std::uint16_t id) const { return rx_refs_[id % kPages]; }
  std::uint8_t* tx_page(std::size_t page) const;

  // Takes TX responses until `count` arrived (or the deadline passed).
  std::vector<protocol::TxResponse> wait_tx_responses(std::size_t count);
  // Posts `count` RX requests, each with one of the RX pages.
  void post_rx(std::size_t count);
  std::vector<protocol::RxResponse> wait_rx_responses(std::size_t count);
  // The RX page of the request with this id.
  const std::uint8_t* rx_page(std::uint16_t id) const;
  // Reassembles the frames in a run of RX responses (extra slots, chained
  // by their MORE flag, skipped).
  std::vector<std::vector<std::uint8_t>> frames_of(
      std::span<const protocol::RxResponse> responses) const;

 private:
  void publish_tx();

  platform::DomId domid_;
  std::unique_ptr<platform::Platform> platform_;
  std::unique_ptr<platform::GrantShare> share_;
  std::unique_ptr<platform::EventChannels> events_;
  void* tx_ring_ = nullptr;
  void* rx_ring_ = nullptr;
  void* tx_pages_ = nullptr;
  void* rx_pages_ = nullptr;
  platform::GrantRef tx_ring_ref_ = 0;
  platform::GrantRef rx_ring_ref_ = 0;
  std::vector<platform::GrantRef> tx_refs_;
  std::vector<platform::GrantRef> rx_refs_;
  platform::EvtchnPort port_ = 0;
  std::optional<protocol::TxFrontRing> tx_;
  std::optional<protocol::RxFrontRing> rx_;
  std::size_t next_tx_page_ = 0;
  std::uint16_t next_tx_id_ = 0;
  std::uint16_t next_rx_id_ = 0;
};

struct QueueOptions {
  VifFeatures features{};
  int tap_fd = -1;
  Switch* network_switch = nullptr;
  std::optional<protocol::RateLimit> rate{};
  std::size_t rx_backlog_frames = 256;
  std::chrono::milliseconds rx_stall_timeout{10000};
  std::size_t switch_inbox_frames = 512;
  std::size_t rx_backlog_bytes = std::size_t{512} * 1024;
  // Long, unlike the daemon's default: frames in tests that are not about
  // draining may wait for buffers as long as a slow (sanitizer) run needs.
  std::chrono::milliseconds rx_drain_timeout{30000};
  unsigned switch_receiver_share_percent = 50;
  std::chrono::milliseconds spurious_event_backoff_max{8};
  protocol::MacAddress mac{};
  // The switch's admission (QueueSetup.mac_learning / allowed_ipv4).
  bool mac_learning = false;
  std::vector<protocol::Ipv4Prefix> allowed_ipv4{};
  // Continue from the ring indices a previous queue left (QueueSetup.resume).
  bool resume = false;
  // When set, the queue's grant table fails what this plan says.
  std::shared_ptr<vifd::testing::GrantFaults> grant_faults{};
  // The RX headroom the control plane may change (QueueSetup.xdp_headroom).
  std::shared_ptr<const std::atomic<std::uint16_t>> xdp_headroom{};
  // Called once the rings are mapped and the handles opened, right before
  // the Queue is constructed (what the queue itself costs is measured from
  // there).
  std::function<void()> before_queue{};
  // The queue's static grant mappings (QueueSetup.static_grants).
  std::shared_ptr<GrefHandoff> static_grants{};
  // When set, the queue gets what this makes of its event-channel handle (a
  // wrapper that counts calls).
  std::function<std::unique_ptr<platform::EventChannels>(std::unique_ptr<platform::EventChannels>)>
      wrap_events{};
};

// What the control plane does for one queue: map the rings, bind the
// channel, build the QueueSetup, start the Queue; stop and unmap at the end.
class BackendQueue {
 public:
  BackendQueue(const SimHost& host, TestFrontend& frontend, const QueueOptions& options);
  ~BackendQueue();

  Queue& queue() { return *queue_; }
  QueueStats stats() const { return queue_->stats(); }
  int fatal_calls() const { return fatal_calls_.load(); }
  std::string fatal_reason() const;
  void stop();
  // Kicks the queue through its event channel until its thread completed two
  // loop turns after the call: the second began after the call, so whatever
  // the test did before (requests, RX buffers, frames for the switch) has
  // been looked at. Only then is "nothing happened" worth asserting. Fails
  // if the queue stopped turning (a failed queue keeps its ports masked).
  ::testing::AssertionResult settle();

 private:
  TestFrontend* frontend_;
  std::unique_ptr<platform::Platform> platform_;
  std::unique_ptr<platform::GrantTable> ring_grants_;
  void* tx_ring_ = nullptr;
  void* rx_ring_ = nullptr;
  std::unique_ptr<Queue> queue_;
  std::atomic<int> fatal_calls_{0};
  mutable std::mutex reason_mutex_;
  std::string fatal_reason_;
};

// A MAC 02:00:00:00:00:<last>.
protocol::MacAddress test_mac(std::uint8_t last);
// An Ethernet frame dst -> src with an arbitrary payload pattern.
std::vector<std::uint8_t> ethernet_frame(const protocol::MacAddress& destination,
                                         const protocol::MacAddress& source, std::size_t length,
                                         std::uint8_t seed);
// A TCP/IPv4 frame of `payload` bytes after the headers.
std::vector<std::uint8_t> tcp4_frame(const protocol::MacAddress& destination,
                                     const protocol::MacAddress& source, std::size_t payload);

}  // namespace vifd::backend::testing
