// vifd's control plane: discovers the vifs under this domain's
// xenbus::backend_vif_root, runs one Vif per device and removes it
// when its directory goes, owns the in-process switches and answers the
// control socket. Everything runs on one io_context thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backend/lib/control/asio.h"
#include "backend/lib/control/control_socket.h"
#include "backend/lib/control/metrics_server.h"
#include "backend/lib/control/vif.h"
#include "common/platform/platform.h"
#include "common/xenbus/paths.h"
#include "common/xenbus/xenstore_watcher.h"
#include "common/xenstore/client.h"

namespace vifd::backend {

class InstanceLock;

struct DaemonOptions {
  // Serve only these frontend domains (one vifd per domU); empty serves all.
  std::set<platform::DomId> domains;
  unsigned max_queues = 1;
  // In-process switch between vifs naming the same bridge.
  bool fast_path = true;
  // Per bridge and vif: off the switch, MAC learning.
  SwitchPolicy switch_policy;
  // Unix socket for `stats`/`show`; empty for none.
  std::string control_socket;
  // The metrics endpoint (metrics_server.h): a unix socket (empty for none)
  // and TCP addresses to listen on as well.
  std::string metrics_socket;
  std::vector<boost::asio::ip::tcp::endpoint> metrics_listen;
  // Per queue: bytes of frames waiting for guest RX buffers, and how long
  // one may wait (QueueSetup.rx_backlog_bytes / rx_drain_timeout).
  std::size_t rx_backlog_bytes = std::size_t{512} * 1024;
  std::chrono::milliseconds rx_drain_timeout{250};
  // Directory of the instance lock (InstanceLock); empty takes none (tests
  // running several daemons on one host on purpose).
  std::string lock_dir;
  // Called once, when the control socket listens and the vifs present at
  // start have been picked up (systemd's READY=1).
  std::function<void(const std::string& status)> on_ready;
  // Called when the number of vifs served changes, with a status line.
  std::function<void(const std::string& status)> on_status;
  // How often the xenstored connection is checked; the reader libxenstore
  // runs notices a closed connection but tells no one, so without a request
  // vifd would wait for watch events forever.
  std::chrono::milliseconds xenstore_probe_interval{1000};
  // Called once when a request finds the xenstored connection gone, with
  // the error. Nothing can be served (or closed) without xenstore: the
  // caller shuts the daemon down and exits for its service manager to
  // restart it. Without a callback the daemon only stops probing.
  std::function<void(const std::string& error)> on_xenstore_lost;
};

// min(4, online CPUs): Linux netback's default (xenvif_max_queues) is the CPU
// count; four keeps the thread count modest on big hosts.
unsigned default_max_queues();

class VifBackendDaemon {
 public:
  // `platform` and `xenstore` must outlive the daemon; all methods run on
  // the io_context's thread.
  VifBackendDaemon(boost::asio::io_context& io, platform::Platform& platform, xs::Client& xenstore,
                   DaemonOptions options);
  ~VifBackendDaemon();
  VifBackendDaemon(const VifBackendDaemon&) = delete;
  VifBackendDaemon& operator=(const VifBackendDaemon&) = delete;

  // Takes the instance lock, opens the control socket and starts watching;
  // vifs already present are picked up (and re-attached if they were
  // connected). Throws, before anything is written to xenstore, when
  // another vifd holds the lock or answers on the control socket.
  void start();
  // Stops serving: every vif releases its threads, mappings, channels and
  // TAP. With close_vifs the frontends are told (Closing, Closed); without,
  // xenstore is left as it is so the next vifd re-attaches.
  void shutdown(bool close_vifs);

  const std::string& base_path() const { return base_path_; }
  // The thread the host-port (rtnl) steps of every vif run on.
  HostPortWorker& host_ports() { return host_ports_; }
  // The `vifs` array of the control socket's answer; all vifs or one.
  nlohmann::json describe(const std::optional<VifId>& only) const;
  // The answer to `stats`: every vif, the host-port worker, the metrics
  // endpoint's own counters and `monotonic_ns`, the CLOCK_MONOTONIC time of
  // the snapshot (rates are differences of two snapshots over it). The
  // metrics endpoint renders the same object.
  nlohmann::json stats_snapshot() const;
  // The metrics endpoint, while started and configured (else nullptr).
  const MetricsServer* metrics_server() const { return metrics_server_.get(); }
  // One control-socket request line -> one response object.
  nlohmann::json handle_request(const std::string& line) const;
  // What the control socket calls: handle_request, or for "capture" an
  // answer and the capture stream that follows it.
  ControlReply handle_control(const std::string& line);

 private:
  void on_change(const std::string& path);
  // The first scan ran: READY, and the xenstored probe starts.
  void on_initial_scan();
  void schedule_probe();
  void probe_xenstore();
  std::string status_line() const;
  void scan_all();
  void scan_domain(const std::string& domid_name);
  // The vif of a device directory (or a path below it); a path with invalid
  // names is logged once and ignored.
  std::optional<VifId> parse_vif_path(const std::string& path);
  void check_vif(VifId id);
  // A kernel backend driver (xen-netback) is bound to the device: vifd
  // neither serves nor writes it, and lets go of it if it was serving it.
  void leave_to_kernel(VifId id, const std::string& driver);
  // While devices are left to the kernel, they are looked at again every
  // kKernelRecheckInterval: a driver unbound (xen-netback unloaded) need not
  // write to xenstore after vifd last looked.
  void schedule_kernel_recheck();
  // [{"domid", "devid", "driver"}] of left_to_kernel_.
  nlohmann::json left_to_kernel_json() const;
  static constexpr std::chrono::seconds kKernelRecheckInterval{1};
  std::shared_ptr<Switch> switch_for(const std::string& bridge);
  ControlReply start_capture(const nlohmann::json& request);

  boost::asio::io_context& io_;
  platform::Platform& platform_;
  DaemonOptions options_;
  std::string base_path_;
  xenbus::XenstoreWatcher watcher_;
  // Outlives the vifs: the TAPs they release are closed on it.
  HostPortWorker host_ports_;
  VifEnvironment environment_;
  std::map<VifId, std::unique_ptr<Vif>> vifs_;
  std::map<std::string, std::weak_ptr<Switch>> switches_;
  // Paths already reported as invalid, so a hostile name is logged once.
  std::set<std::string> ignored_names_;
  std::unique_ptr<InstanceLock> instance_lock_;
  std::unique_ptr<ControlSocket> control_socket_;
  std::unique_ptr<MetricsServer> metrics_server_;
  // Captures running (CaptureStream::kMaxCaptures at most); shared with the
  // streams, which may outlive a request.
  std::shared_ptr<std::size_t> live_captures_ = std::make_shared<std::size_t>(0);
  bool started_ = false;
  bool ready_ = false;
  std::size_t reported_vifs_ = 0;
  std::unique_ptr<boost::asio::steady_timer> probe_timer_;
  // Devices a kernel backend driver serves, with the driver's description.
  std::map<VifId, std::string> left_to_kernel_;
  std::unique_ptr<boost::asio::steady_timer> kernel_recheck_timer_;
  bool kernel_recheck_pending_ = false;
};

}  // namespace vifd::backend
