// A process's connection to a sim host: the host table and the names of the
// host's shared-memory objects. Internal to the sim platform and sim_host.cc.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "common/platform/sim/shm_layout.h"
#include "common/platform/sim/sim_host.h"
#include "common/platform/types.h"

namespace vifd::sim::detail {

// A shared mapping that is unmapped when it goes away.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* addr, std::size_t size) : addr_(addr), size_(size) {}
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  void* get() const noexcept { return addr_; }
  // Gives up ownership: the caller unmaps (used for ranges handed out to users).
  void* release() noexcept;

 private:
  void* addr_ = nullptr;
  std::size_t size_ = 0;
};

// A shm_open name, built without allocating so the data path may open a
// domain lazily.
struct ShmName {
  std::array<char, 64> text{};
  const char* c_str() const noexcept { return text.data(); }
};

enum class DomainObject { kMeta, kMemory };

// Opens (read-write) and maps a whole shm object; returns MAP_FAILED-free
// pointer or nullptr with errno set. `at`, when not null, is replaced in
// place (MAP_FIXED). Never allocates.
void* map_shm(const ShmName& name, std::size_t size, void* at) noexcept;

class Host {
 public:
  // Joins the host in `dir`; throws PlatformError naming the directory when
  // it holds no host.
  static std::shared_ptr<Host> open(const std::filesystem::path& dir);
  // Creates the host-id file and the host table; throws if one exists.
  static std::shared_ptr<Host> create(const std::filesystem::path& dir);

  const HostPaths& paths() const noexcept { return paths_; }
  HostTable& table() const noexcept { return *table_; }
  GrantHandleTable& grant_handles() const noexcept { return *grant_handles_; }
  const std::string& host_id() const noexcept { return host_id_; }

  ShmName host_table_name() const noexcept;
  ShmName grant_handles_name() const noexcept;
  ShmName domain_object_name(platform::DomId domid, DomainObject object) const noexcept;

  // The domain's host-table word (acquire: a reader that sees kAlive also
  // sees the domain's shm objects fully initialised).
  std::uint64_t domain_word(platform::DomId domid) const noexcept;
  bool is_alive(platform::DomId domid) const noexcept;

  // Control plane: maps one domain's meta object (its grant table, ports
  // and counters) or throws PlatformError naming the domid.
  std::pair<Mapping, DomainShared*> map_domain_meta(platform::DomId domid) const;

 private:
  Host(HostPaths paths, std::string host_id, Mapping table, Mapping grant_handles);

  HostPaths paths_;
  std::string host_id_;
  Mapping table_mapping_;
  HostTable* table_;
  Mapping grant_handles_mapping_;
  GrantHandleTable* grant_handles_;
};

// Checks a unix socket path fits sockaddr_un; throws naming the path.
void check_socket_path(const std::filesystem::path& path);

// Counts a hypercall-equivalent against the calling domain (relaxed: the
// counters order nothing, readers only want eventually-exact totals).
inline void count_hypercall(std::uint64_t& counter, std::uint64_t amount) noexcept {
  shared(counter).fetch_add(amount, std::memory_order_relaxed);
}

}  // namespace vifd::sim::detail
