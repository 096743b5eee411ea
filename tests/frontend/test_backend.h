// Test doubles for the netfront tests: the toolstack (the nodes libxl writes
// for `xl network-attach`) and a minimal netback in dom0 that maps the rings
// the frontend published, binds its ports and speaks netif through BackRing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/platform/platform.h"
#include "common/protocol/ring.h"
#include "common/protocol/xenbus_state.h"
#include "common/xenstore/client.h"
#include "tests/support/sim_host_process.h"

namespace vifd::frontend::testing {

inline constexpr platform::DomId kGuest = 1;
inline constexpr const char* kGuestMac = "00:16:3e:12:34:56";

// Writes the backend and frontend directories of vif <devid> of `guest`
// with libxl's keys, permissions and initial states (ISSUE3.md item 1).
void attach_vif(xs::Client& dom0, platform::DomId guest, std::uint32_t devid, unsigned mtu = 1500,
                bool trusted = true);

// Every node below `path`, relative to it ("queue-0/tx-ring-ref" -> value).
std::map<std::string, std::string> read_tree(xs::Client& client, const std::string& path);

struct BackendOffer {
  bool rx_copy = true;
  bool sg = true;
  bool gso = true;
  bool ipv6_csum = true;
  bool split = true;
  std::optional<unsigned> max_queues = 4;
  bool ctrl_ring = false;  // feature-ctrl-ring
};

class TestBackend {
 public:
  struct Queue {
    void* tx_page = nullptr;
    void* rx_page = nullptr;
    std::unique_ptr<protocol::TxBackRing> tx;
    std::unique_ptr<protocol::RxBackRing> rx;
    platform::EvtchnPort tx_port = 0;
    platform::EvtchnPort rx_port = 0;
  };

  TestBackend(const vifd::testing::SimHostProcess& host, platform::DomId guest,
              std::uint32_t devid);
  ~TestBackend();

  const std::string& backend_path() const { return backend_path_; }
  const std::string& frontend_path() const { return frontend_path_; }
  xs::Client& xenstore() { return xenstore_; }

  // Writes the feature keys, then state InitWait.
  void offer(const BackendOffer& offer);
  void set_state(protocol::XenbusState state);
  std::optional<std::string> frontend_value(std::string_view key);

  // Maps every queue the frontend published and binds its ports.
  void attach();
  void detach();
  std::vector<Queue>& queues() { return queues_; }

  // Copies `len` bytes from the guest's granted page into `out`.
  void copy_from_guest(platform::GrantRef ref, std::uint16_t offset, std::span<std::uint8_t> out);
  // Copies `data` into the guest's granted page.
  void copy_to_guest(platform::GrantRef ref, std::uint16_t offset,
                     std::span<const std::uint8_t> data);
  // Takes every TX request waiting on queue q.
  std::vector<protocol::TxRequest> take_tx(std::size_t q);
  void respond_tx(std::size_t q, const std::vector<protocol::TxResponse>& responses);
  // Takes n RX requests (all must be there).
  std::vector<protocol::RxRequest> take_rx(std::size_t q, std::size_t n);
  void respond_rx(std::size_t q, const std::vector<protocol::RxResponse>& responses);
  // Delivers one frame into posted buffers, one slot per 4096 bytes, with
  // `first_flags` on the first slot and a GSO extra when gso_size != 0.
  void deliver_rx(std::size_t q, std::span<const std::uint8_t> frame, std::uint16_t first_flags,
                  std::uint8_t gso_type = 0, std::uint16_t gso_size = 0);

 private:
  platform::DomId guest_;
  std::string backend_path_;
  std::string frontend_path_;
  std::unique_ptr<platform::Platform> platform_;
  xs::Client xenstore_;
  std::unique_ptr<platform::GrantTable> grants_;
  std::unique_ptr<platform::EventChannels> events_;
  std::vector<Queue> queues_;
};

}  // namespace vifd::frontend::testing
