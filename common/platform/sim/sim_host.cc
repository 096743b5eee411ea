// The toolstack side of the sim host: create/destroy the host and its
// domains, list them, read their counters.
#include "common/platform/sim/sim_host.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

#include "common/platform/error.h"
#include "common/platform/sim/handle_slots.h"
#include "common/platform/sim/host.h"
#include "common/platform/sim/port_ops.h"

namespace vifd::sim {

using platform::DomId;

std::filesystem::path HostPaths::domain_xenstored_socket(DomId domid) const {
  return dir / "xs" / (std::to_string(domid) + ".sock");
}

namespace {

using namespace detail;

// Creates one zero-filled shm object of `size` bytes (sparse: tmpfs only
// backs pages once touched). A stale object of a crashed create is replaced.
void create_shm_object(const Host& host, DomId domid, DomainObject object, std::size_t size) {
  const ShmName name = host.domain_object_name(domid, object);
  ::shm_unlink(name.c_str());
  const int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int saved = errno;
    if (fd >= 0) ::close(fd);
    ::shm_unlink(name.c_str());
    throw std::runtime_error(fmt::format("sim host '{}': domain {}: cannot create {}: {}",
                                         host.paths().dir.native(), domid, name.c_str(),
                                         std::strerror(saved)));
  }
  ::close(fd);
}

void unlink_domain_objects(const Host& host, DomId domid) noexcept {
  ::shm_unlink(host.domain_object_name(domid, DomainObject::kMeta).c_str());
  ::shm_unlink(host.domain_object_name(domid, DomainObject::kMemory).c_str());
}

void create_domain_on(const Host& host, DomId domid) {
  std::uint64_t& slot = host.table().domains[domid];
  std::uint64_t word = shared(slot).load(std::memory_order_acquire);
  // Claim the domid: kAbsent -> kCreating of the next generation. Only one
  // concurrent creator wins; the others report the domain as existing.
  std::uint64_t creating = 0;
  do {
    if (domain_state(word) != DomainState::kAbsent) {
      throw std::runtime_error(
          fmt::format("sim host '{}': domain {} already exists", host.paths().dir.native(), domid));
    }
    creating = make_domain_word(domain_generation(word) + 1, DomainState::kCreating);
  } while (!shared(slot).compare_exchange_weak(word, creating, std::memory_order_acq_rel,
                                               std::memory_order_acquire));
  const std::uint64_t generation = domain_generation(creating);
  try {
    create_shm_object(host, domid, DomainObject::kMeta, sizeof(DomainShared));
    create_shm_object(host, domid, DomainObject::kMemory, kDomainMemoryBytes);
    auto [mapping, meta] = host.map_domain_meta(domid);
    meta->domid = domid;
    meta->generation = static_cast<std::uint32_t>(generation);
    shared(meta->magic).store(kDomainMagic, std::memory_order_release);
  } catch (...) {
    unlink_domain_objects(host, domid);
    shared(slot).store(make_domain_word(generation, DomainState::kAbsent),
                       std::memory_order_release);
    throw;
  }
  // Release: whoever sees kAlive sees the initialised objects.
  shared(slot).store(make_domain_word(generation, DomainState::kAlive), std::memory_order_release);
}

// Closes every port of the dying domain; interdomain peers become unbound.
void revoke_event_channels(const Host& host, DomId domid, DomainShared& meta) {
  for (std::uint32_t port = 0; port < kPortsPerDomain; ++port) {
    PortSlot& slot = meta.ports[port];
    const auto state = static_cast<PortState>(shared(slot.state).load(std::memory_order_acquire));
    if (state == PortState::kInterdomain) {
      const auto peer_domid =
          static_cast<DomId>(shared(slot.remote_domid).load(std::memory_order_relaxed));
      const std::uint32_t peer_port = shared(slot.remote_port).load(std::memory_order_relaxed);
      if (peer_domid != domid && host.is_alive(peer_domid)) {
        auto [mapping, peer] = host.map_domain_meta(peer_domid);
        unlink_peer_port(*peer, peer_port, domid, port);
      }
    }
    if (state != PortState::kFree) publish_port(slot, PortState::kFree);
  }
}

// Ends every grant of the dying domain: new maps and copies already fail
// with GNTST_bad_domain (the domain is no longer kAlive); clearing the
// entries also stops anyone still holding a stale view of the table.
void revoke_grants(DomainShared& meta) noexcept {
  for (auto& entry : meta.grant_entries) {
    shared(entry.flags).store(0, std::memory_order_release);
  }
}

}  // namespace

void create_host(const std::filesystem::path& dir) {
  const auto host = Host::create(dir);
  create_domain_on(*host, platform::kDom0);
}

void destroy_host(const std::filesystem::path& dir) {
  const auto host = Host::open(dir);
  for (std::uint32_t domid = 0; domid <= kMaxDomid; ++domid) {
    const std::uint64_t word = host->domain_word(static_cast<DomId>(domid));
    if (domain_state(word) != DomainState::kAbsent) {
      unlink_domain_objects(*host, static_cast<DomId>(domid));
    }
  }
  ::shm_unlink(host->host_table_name().c_str());
  ::shm_unlink(host->grant_handles_name().c_str());
  std::error_code ignored;
  std::filesystem::remove_all(dir / "ev", ignored);
  std::filesystem::remove_all(dir / "gnt", ignored);
  std::filesystem::remove(dir / "host-id", ignored);
}

void create_domain(const std::filesystem::path& dir, DomId domid) {
  if (domid == platform::kDom0 || domid > kMaxDomid) {
    throw std::runtime_error(
        fmt::format("sim host '{}': cannot create domain {}: a guest domid "
                    "is 1..{}",
                    dir.native(), domid, kMaxDomid));
  }
  create_domain_on(*Host::open(dir), domid);
}

void destroy_domain(const std::filesystem::path& dir, DomId domid) {
  if (domid == platform::kDom0) {
    throw std::runtime_error(
        fmt::format("sim host '{}': dom0 cannot be destroyed (destroy the host)", dir.native()));
  }
  const auto host = Host::open(dir);
  if (domid > kMaxDomid) {
    throw std::runtime_error(
        fmt::format("sim host '{}': domain {} does not exist", dir.native(), domid));
  }
  std::uint64_t& slot = host->table().domains[domid];
  std::uint64_t word = shared(slot).load(std::memory_order_acquire);
  std::uint64_t dying = 0;
  do {
    if (domain_state(word) != DomainState::kAlive) {
      throw std::runtime_error(
          fmt::format("sim host '{}': domain {} does not exist", dir.native(), domid));
    }
    dying = make_domain_word(domain_generation(word), DomainState::kDying);
  } while (!shared(slot).compare_exchange_weak(word, dying, std::memory_order_acq_rel,
                                               std::memory_order_acquire));
  {
    auto [mapping, meta] = host->map_domain_meta(domid);
    revoke_grants(*meta);
    revoke_event_channels(*host, domid, *meta);
  }
  // Peers that mapped its pages keep them (the objects live on until their
  // last mapping goes, like a zombie domain); the names are free for a new
  // incarnation.
  unlink_domain_objects(*host, domid);
  shared(slot).store(make_domain_word(domain_generation(dying), DomainState::kAbsent),
                     std::memory_order_release);
}

struct ProcessReaper::State {
  explicit State(std::shared_ptr<Host> opened) : host(std::move(opened)), domains(host) {}
  std::shared_ptr<Host> host;
  DomainCache domains;
};

ProcessReaper::ProcessReaper(const std::filesystem::path& dir)
    : state_(std::make_unique<State>(Host::open(dir))) {}

ProcessReaper::~ProcessReaper() = default;

std::size_t ProcessReaper::sweep() noexcept {
  return reap_dead_handles(*state_->host, state_->domains);
}

std::vector<DomId> list_domains(const std::filesystem::path& dir) {
  const auto host = Host::open(dir);
  std::vector<DomId> domains;
  for (std::uint32_t domid = 0; domid <= kMaxDomid; ++domid) {
    if (host->is_alive(static_cast<DomId>(domid))) domains.push_back(static_cast<DomId>(domid));
  }
  return domains;
}

HypercallCounters read_counters(const std::filesystem::path& dir, DomId domid) {
  const auto host = Host::open(dir);
  if (!host->is_alive(domid)) {
    throw std::runtime_error(
        fmt::format("sim host '{}': domain {} does not exist", dir.native(), domid));
  }
  auto [mapping, meta] = host->map_domain_meta(domid);
  const SharedCounters& c = meta->counters;
  auto load = [](const std::uint64_t& counter) {
    return shared(const_cast<std::uint64_t&>(counter)).load(std::memory_order_relaxed);
  };
  HypercallCounters out;
  out.grant_copy_calls = load(c.grant_copy_calls);
  out.grant_copy_segments = load(c.grant_copy_segments);
  out.grant_copy_bytes = load(c.grant_copy_bytes);
  out.grant_map_calls = load(c.grant_map_calls);
  out.grant_map_pages = load(c.grant_map_pages);
  out.grant_unmap_calls = load(c.grant_unmap_calls);
  out.grant_unmap_pages = load(c.grant_unmap_pages);
  out.evtchn_notify_calls = load(c.evtchn_notify_calls);
  out.evtchn_events_delivered = load(c.evtchn_events_delivered);
  return out;
}

}  // namespace vifd::sim
