// The simulated Xen host's shared state: domains, their guest memory, grant
// tables, event-channel port tables and hypercall counters, kept in shared
// memory so every process of the host sees one consistent "hypervisor".
// Used by vif-sim (create/destroy domains) and by the sim platform.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/platform/types.h"

namespace vifd::sim {

// Hypercall-equivalents, counted per calling domain.
struct HypercallCounters {
  std::uint64_t grant_copy_calls = 0;
  std::uint64_t grant_copy_segments = 0;
  std::uint64_t grant_copy_bytes = 0;
  std::uint64_t grant_map_calls = 0;
  std::uint64_t grant_map_pages = 0;
  std::uint64_t grant_unmap_calls = 0;
  std::uint64_t grant_unmap_pages = 0;
  std::uint64_t evtchn_notify_calls = 0;
  std::uint64_t evtchn_events_delivered = 0;
};

// Paths of a host directory; every file the host creates is named here.
struct HostPaths {
  std::filesystem::path dir;
  std::filesystem::path xenstored_socket() const { return dir / "xenstored.sock"; }
  // The socket a process of domain `domid` uses as its xenstore connection;
  // the server treats it as that domain's (unprivileged) ring connection.
  std::filesystem::path domain_xenstored_socket(platform::DomId domid) const;
};

// Creates a new host in `dir` (which must not hold one) with dom0 present.
void create_host(const std::filesystem::path& dir);
// Removes every shared-memory object and file of the host.
void destroy_host(const std::filesystem::path& dir);

// Creates domain `domid` (1..32751, below DOMID_FIRST_RESERVED). Throws
// std::runtime_error naming the domid if it exists or the host is missing.
void create_domain(const std::filesystem::path& dir, platform::DomId domid);
// Destroys a domain: its grants and event channels are revoked; peers that
// still hold mappings keep the pages (as a zombie domain on Xen) but new maps
// and copies fail with GNTST_bad_domain.
void destroy_domain(const std::filesystem::path& dir, platform::DomId domid);

// The kernel's part of a process's death, for the whole host: closes the
// event-channel ports of every handle whose process is gone (as Linux's
// evtchn_release() does), so peers see their ports unbound again soon after
// the death rather than when someone next needs the port. vif-sim sweeps
// periodically; a new handle or a bind reaps what it needs without it.
class ProcessReaper {
 public:
  explicit ProcessReaper(const std::filesystem::path& dir);
  ~ProcessReaper();
  ProcessReaper(const ProcessReaper&) = delete;
  ProcessReaper& operator=(const ProcessReaper&) = delete;

  // Returns how many dead handles it closed.
  std::size_t sweep() noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::vector<platform::DomId> list_domains(const std::filesystem::path& dir);
HypercallCounters read_counters(const std::filesystem::path& dir, platform::DomId domid);

}  // namespace vifd::sim
