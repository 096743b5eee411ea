// The `hostile` test harness: a real vifd control plane and data path
// in-process (the daemon on its own io_context thread, its queues on theirs)
// against a vif-sim host, and guests that connect through xenstore like a
// netfront and drive their rings.
//
// Every case has the same shape. Two well-behaved neighbours on the bridge
// the attacker uses stream frames A -> B through vifd's switch; a prober asks
// the control socket for `stats` every few milliseconds; the attacker does
// its worst. measure() interleaves windows with and without the attack (the
// attacker and the neighbours run at the same time, on the same machine, in
// the same process), prints the neighbour's frames/s for both, their ratio
// and the control socket's latency, and checks ratio >= 0.9 and worst
// latency < 100 ms. The case itself asserts the offender's outcome: a drop
// counted on its own queue or its vif Closing with an `error` naming the
// cause, and that vifd still serves everyone else.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/platform/platform.h"
#include "common/protocol/mac_address.h"
#include "common/protocol/ring.h"
#include "common/xenstore/client.h"
#include "tests/backend/control_harness.h"
#include "tests/support/eventually.h"
#include "tests/support/sim_host_process.h"

namespace vifd::backend::hostile {

using testing::DaemonThread;
using testing::Toolstack;
using vifd::testing::eventually;
using vifd::testing::SimHostProcess;

// 00:16:3e:00:00:<domid>, the MAC the toolstack configures for guest domid.
protocol::MacAddress guest_mac(platform::DomId domid);
std::string mac_text(const protocol::MacAddress& mac);
// An Ethernet frame dst <- src of `length` bytes with a local experimental
// ethertype (no offload applies) and a payload pattern.
std::vector<std::uint8_t> ethernet_frame(const protocol::MacAddress& destination,
                                         const protocol::MacAddress& source, std::size_t length,
                                         std::uint8_t seed = 0);

struct GuestOptions {
  bool ctrl_ring = false;
  bool multicast_control = false;
  bool sg = true;
  bool gso = true;
  // Keys written last (relative to the frontend directory): "" removes.
  std::map<std::string, std::string> overrides;
  // Write the connect keys but leave `state` alone.
  bool write_state = true;
};

// A netfront driven by the test: one queue, one event channel for both rings
// (plus one for the control ring), TX buffer pages granted read-only one by
// one (so each can be revoked alone), RX buffer pages granted writable. The
// honest methods keep the protocol; the raw ones let a case break it. Use a
// Guest from one thread at a time.
class Guest {
 public:
  static constexpr std::size_t kTxPages = 64;
  static constexpr std::size_t kRxPages = protocol::kRxRingSizeOnePage;

  Guest(const SimHostProcess& host, platform::DomId domid);
  ~Guest();
  Guest(const Guest&) = delete;
  Guest& operator=(const Guest&) = delete;

  platform::DomId domid() const { return domid_; }
  protocol::MacAddress mac() const { return guest_mac(domid_); }

  // ---- xenstore, as a netfront ----
  // Shares fresh rings and buffers, binds ports, writes the keys and state 4.
  void connect(const GuestOptions& options = {});
  // Ends every grant and port of the last connect().
  void release();
  void set_state(int state);
  // Closing, Closed, wait for the backend's Closed, release, Initialising,
  // wait for InitWait: a frontend starting over after its vif failed.
  ::testing::AssertionResult start_over();
  // start_over() and connect() with the options of the last connect.
  ::testing::AssertionResult reconnect();
  // Writes (or with "" removes) a key of its own frontend directory.
  void write_key(std::string_view name, const std::string& value);
  std::string backend_key(std::string_view name);
  xs::Client& xenstore() { return xenstore_; }

  // ---- honest data path ----
  // Writes `frame` into every TX page (frames sent with send_prepared()),
  // or `other` into every eighth.
  void prepare_frame(std::span<const std::uint8_t> frame, std::span<const std::uint8_t> other = {});
  // Pushes up to `count` prepared single-slot frames; returns how many fitted.
  std::size_t send_prepared(std::size_t count);
  // Sends `frame` in slots of at most `slot_bytes` through the TX ring, with
  // `extra` after the first slot; returns the number of ring slots used, 0
  // when the ring has no room.
  std::size_t send(std::span<const std::uint8_t> frame, std::uint16_t flags = 0,
                   const protocol::ExtraInfo* extra = nullptr, std::size_t slot_bytes = 4096);
  // Takes TX responses (statuses tallied in tx_status()); returns how many.
  std::size_t reap_tx();
  std::vector<protocol::TxResponse> wait_tx_responses(std::size_t count,
                                                      std::chrono::milliseconds bound);
  // Posts RX buffers until the ring is full or `count` were posted.
  std::size_t post_rx(std::size_t count = kRxPages);
  // Takes RX responses into `out` (when given), reposts their buffers and
  // returns how many complete frames (a slot without more_data) arrived.
  std::size_t reap_rx(std::vector<protocol::RxResponse>* out = nullptr);
  // Sets the response events and waits up to `bound` for a notification.
  void wait_event(std::chrono::microseconds bound);
  void notify();
  std::uint64_t tx_status(std::int16_t status) const;
  const std::uint8_t* rx_page(std::uint16_t id) const;

  // ---- raw access: a hostile netfront ----
  protocol::TxFrontRing& tx() { return *tx_; }
  protocol::RxFrontRing& rx() { return *rx_; }
  protocol::CtrlFrontRing& ctrl() { return *ctrl_; }
  protocol::SharedRing<protocol::TxRequest, protocol::TxResponse> tx_shared() const;
  protocol::SharedRing<protocol::RxRequest, protocol::RxResponse> rx_shared() const;
  protocol::SharedRing<protocol::CtrlRequest, protocol::CtrlResponse> ctrl_shared() const;
  // Pushes these requests as they are and notifies.
  void push_tx_raw(std::span<const protocol::TxRequest> requests);
  void push_rx_raw(std::span<const protocol::RxRequest> requests);
  void notify_ctrl();
  platform::GrantRef tx_page_ref(std::size_t page) const { return tx_refs_.at(page); }
  std::uint8_t* tx_page(std::size_t page) const;
  platform::GrantRef rx_page_ref(std::size_t page) const { return rx_refs_.at(page); }
  platform::GrantRef data_page_ref() const { return data_ref_; }
  std::uint8_t* data_page() const { return static_cast<std::uint8_t*>(data_page_); }
  // Ends the grant of one TX page and shares a fresh page in its place: a
  // request still carrying the old reference names a revoked grant.
  void revoke_tx_page(std::size_t page);
  // Ends the grants of both rings while the backend may still use them.
  void revoke_rings();

 private:
  platform::DomId domid_;
  std::unique_ptr<platform::Platform> platform_;
  std::unique_ptr<platform::GrantShare> share_;
  std::unique_ptr<platform::EventChannels> events_;
  xs::Client xenstore_;
  void* tx_ring_ = nullptr;
  void* rx_ring_ = nullptr;
  void* ctrl_ring_ = nullptr;
  void* data_page_ = nullptr;
  void* rx_pages_ = nullptr;
  platform::GrantRef tx_ring_ref_ = 0;
  platform::GrantRef rx_ring_ref_ = 0;
  platform::GrantRef ctrl_ref_ = 0;
  platform::GrantRef data_ref_ = 0;
  std::vector<void*> tx_pages_;
  std::vector<platform::GrantRef> tx_refs_;
  std::vector<platform::GrantRef> rx_refs_;
  platform::EvtchnPort port_ = 0;
  platform::EvtchnPort ctrl_port_ = 0;
  std::optional<protocol::TxFrontRing> tx_;
  std::optional<protocol::RxFrontRing> rx_;
  std::optional<protocol::CtrlFrontRing> ctrl_;
  GuestOptions options_;
  std::size_t frame_length_ = 0;
  std::size_t next_tx_page_ = 0;
  std::uint16_t next_tx_id_ = 0;
  std::map<std::int16_t, std::uint64_t> tx_statuses_;
};

// The control socket as an operator's `vifctl` uses it: one connection per
// request.
class ControlProbe {
 public:
  explicit ControlProbe(std::string path) : path_(std::move(path)) {}
  // One request/answer; std::nullopt when the socket did not answer.
  std::optional<nlohmann::json> ask(const std::string& line) const;

 private:
  std::string path_;
};

// Sanitizer builds run several times slower and unevenly (shadow memory,
// ASan's quarantine): there figures (rates, latencies, an attack's own
// rate) are printed but only the attacks' outcomes are enforced; the
// normal build's run enforces the bounds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kEnforceFigures = false;
#else
inline constexpr bool kEnforceFigures = true;
#endif

struct Figures {
  double baseline_fps = 0;
  double attacked_fps = 0;
  double ratio = 0;
  double probe_median_ms = 0;
  double probe_worst_ms = 0;
  std::size_t probes = 0;
  // Wall time of every attack window of every round (what an attack's own
  // count, e.g. writes, divides by to give its rate).
  double attack_seconds = 0;
};

// Neighbours A (domain 1) -> B (domain 2), the attacker (domain 3) and a
// helper guest (domain 4) that sends to the attacker, all on bridge xenbr0.
class HostileTest : public ::testing::Test {
 protected:
  static constexpr platform::DomId kA = 1;
  static constexpr platform::DomId kB = 2;
  static constexpr platform::DomId kAttacker = 3;
  static constexpr platform::DomId kHelper = 4;

  void SetUp() override;
  void TearDown() override;

  // Starts vifd, attaches the four vifs, connects A, B and the helper and
  // (unless told otherwise) the attacker.
  void start(bool connect_attacker = true, const GuestOptions& attacker_options = {});
  // Stops vifd (leaving xenstore as it is) and starts a new one.
  void restart_vifd();

  Guest& a() { return *guests_[0]; }
  Guest& b() { return *guests_[1]; }
  Guest& attacker() { return *guests_[2]; }
  Guest& helper() { return *guests_[3]; }
  DaemonThread& vifd() { return *vifd_; }
  SimHostProcess& host() { return *host_; }
  Toolstack& toolstack() { return *toolstack_; }

  std::string backend_key(platform::DomId domid, std::string_view name);
  bool backend_state_becomes(platform::DomId domid, const std::string& state);
  // The vif Closing (or Closed) with an `error` that contains `cause`.
  ::testing::AssertionResult closes_naming(platform::DomId domid, std::string_view cause);
  // The vif's description as the control socket gives it (`show`).
  nlohmann::json describe(platform::DomId domid);
  // A counter of queue 0 of the vif by JSON pointer ("/drops/tx_too_many_slots",
  // "/multicast_updates"); 0 when absent (drops list nonzero reasons only).
  std::uint64_t counter(platform::DomId domid, const std::string& pointer);
  // vifd's control plane still answers, lists `vifs` vifs, and the
  // neighbours are Connected.
  void expect_vifd_serves_the_others(std::size_t vifs = 4);

  // An attack in two parts: `prepare` runs before each attack window, with
  // the clock stopped (nothing it costs is measured), `step` in a loop
  // during the window, `pause` between calls.
  struct Attack {
    std::function<void()> step;
    std::chrono::microseconds pause{1000};
    std::function<void()> prepare{};
    // Run by the attacker's thread outside the attack windows (an attacker
    // that behaves between attacks, e.g. drains its RX ring, or the same
    // load on the platform without the part that reaches vifd).
    std::function<void()> idle{};
    // What the windows without the attack are, when `idle` makes them more
    // than "unattacked" (printed with the figures).
    std::string_view baseline = "unattacked";
    // One neighbour frame in eight goes to this MAC instead of B (a sender
    // that also talks to the attacker).
    std::optional<protocol::MacAddress> also_to{};
    // Niceness of the attacker's thread. On a host the attacker's loop runs
    // on its own vCPU; here it shares the two CPUs with the neighbours'
    // threads, so an attack that is pure guest-side spinning (writing
    // xenstore in a loop) would measure the machine, not vifd. What vifd and
    // xenstored do for each write still runs at full priority.
    int nice = 0;
  };

  // Runs the neighbour stream and the prober, alternates windows without and
  // with the attack, prints and checks the figures.
  Figures measure(std::string_view name, const Attack& attack);
  Figures measure(std::string_view name, std::function<void()> step) {
    return measure(name, Attack{std::move(step)});
  }

  // A case whose abuse closes the attacker's vif: before each window the
  // attacker starts over as a frontend does (reconnect, not measured: the
  // churn case measures what reconnecting costs), then abuses once and keeps
  // kicking its dead vif for the rest of the window.
  Attack fatal_cycle(std::function<void()> abuse);

  std::string socket_path() const;

  std::unique_ptr<SimHostProcess> host_;
  std::unique_ptr<Toolstack> toolstack_;
  std::unique_ptr<DaemonThread> vifd_;
  std::vector<std::unique_ptr<Guest>> guests_;
};

}  // namespace vifd::backend::hostile
