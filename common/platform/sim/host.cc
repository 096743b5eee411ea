#include "common/platform/sim/host.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <utility>

#include "common/platform/error.h"

namespace vifd::sim::detail {

using platform::DomId;
using platform::PlatformError;

Mapping::Mapping(Mapping&& other) noexcept
    : addr_(std::exchange(other.addr_, nullptr)), size_(std::exchange(other.size_, 0)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    if (addr_ != nullptr) ::munmap(addr_, size_);
    addr_ = std::exchange(other.addr_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Mapping::~Mapping() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
}

void* Mapping::release() noexcept {
  size_ = 0;
  return std::exchange(addr_, nullptr);
}

void* map_shm(const ShmName& name, std::size_t size, void* at) noexcept {
  const int fd = ::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  const int flags = MAP_SHARED | (at != nullptr ? MAP_FIXED : 0);
  void* addr = ::mmap(at, size, PROT_READ | PROT_WRITE, flags, fd, 0);
  const int saved_errno = errno;
  ::close(fd);
  if (addr == MAP_FAILED) {
    errno = saved_errno;
    return nullptr;
  }
  return addr;
}

void check_socket_path(const std::filesystem::path& path) {
  // sun_path holds 108 bytes including the terminating NUL.
  constexpr std::size_t kMax = sizeof(sockaddr_un::sun_path) - 1;
  if (path.native().size() > kMax) {
    throw PlatformError(fmt::format("sim host: unix socket path '{}' is {} bytes, longer than the "
                                    "{} a socket address holds; use a shorter host directory",
                                    path.native(), path.native().size(), kMax),
                        ENAMETOOLONG);
  }
}

Host::Host(HostPaths paths, std::string host_id, Mapping table, Mapping grant_handles)
    : paths_(std::move(paths)),
      host_id_(std::move(host_id)),
      table_mapping_(std::move(table)),
      table_(static_cast<HostTable*>(table_mapping_.get())),
      grant_handles_mapping_(std::move(grant_handles)),
      grant_handles_(static_cast<GrantHandleTable*>(grant_handles_mapping_.get())) {}

namespace {

std::filesystem::path host_id_file(const std::filesystem::path& dir) {
  return dir / "host-id";
}

ShmName make_name(const std::string& host_id, const char* suffix) noexcept {
  ShmName name;
  std::snprintf(name.text.data(), name.text.size(), "/vifd-sim-%s-%s", host_id.c_str(), suffix);
  return name;
}

}  // namespace

ShmName Host::host_table_name() const noexcept {
  return make_name(host_id_, "host");
}

ShmName Host::grant_handles_name() const noexcept {
  return make_name(host_id_, "grants");
}

ShmName Host::domain_object_name(DomId domid, DomainObject object) const noexcept {
  ShmName name;
  std::snprintf(name.text.data(), name.text.size(), "/vifd-sim-%s-d%u-%s", host_id_.c_str(),
                static_cast<unsigned>(domid), object == DomainObject::kMeta ? "meta" : "mem");
  return name;
}

std::shared_ptr<Host> Host::open(const std::filesystem::path& dir) {
  std::ifstream in(host_id_file(dir));
  std::string host_id;
  if (!in || !(in >> host_id) || host_id.empty() || host_id.size() > 32) {
    throw PlatformError(fmt::format("sim host: no host in '{}' (missing or bad {})", dir.native(),
                                    host_id_file(dir).native()),
                        ENOENT);
  }
  HostPaths paths{dir};
  const ShmName name = make_name(host_id, "host");
  void* table = map_shm(name, sizeof(HostTable), nullptr);
  if (table == nullptr) {
    throw PlatformError(fmt::format("sim host '{}': cannot map host table {}: {}", dir.native(),
                                    name.c_str(), std::strerror(errno)),
                        errno);
  }
  Mapping mapping(table, sizeof(HostTable));
  // Acquire: the creator stores magic last, after initialising the table.
  if (shared(static_cast<HostTable*>(table)->magic).load(std::memory_order_acquire) != kHostMagic) {
    throw PlatformError(
        fmt::format("sim host '{}': host table {} is not initialised", dir.native(), name.c_str()),
        EINVAL);
  }
  const ShmName grants_name = make_name(host_id, "grants");
  void* grants = map_shm(grants_name, sizeof(GrantHandleTable), nullptr);
  if (grants == nullptr) {
    throw PlatformError(fmt::format("sim host '{}': cannot map grant handles {}: {}", dir.native(),
                                    grants_name.c_str(), std::strerror(errno)),
                        errno);
  }
  return std::shared_ptr<Host>(new Host(std::move(paths), std::move(host_id), std::move(mapping),
                                        Mapping(grants, sizeof(GrantHandleTable))));
}

std::shared_ptr<Host> Host::create(const std::filesystem::path& dir) {
  HostPaths paths{dir};
  std::filesystem::create_directories(dir);
  std::filesystem::create_directories(dir / "ev");
  std::filesystem::create_directories(dir / "gnt");
  std::filesystem::create_directories(dir / "xs");
  // Fail early, naming the path, rather than when the first socket binds.
  check_socket_path(paths.xenstored_socket());
  check_socket_path(paths.domain_xenstored_socket(static_cast<DomId>(kMaxDomid)));
  check_socket_path(dir / "ev" / std::to_string(kMaxHandles - 1));

  std::random_device random;
  const std::uint64_t id = (static_cast<std::uint64_t>(random()) << 32) ^ random();
  const std::string host_id = fmt::format("{:016x}", id);

  const auto id_path = host_id_file(dir);
  const int id_fd = ::open(id_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (id_fd < 0) {
    throw PlatformError(fmt::format("sim host: cannot create '{}': {} (does '{}' already hold a "
                                    "host?)",
                                    id_path.native(), std::strerror(errno), dir.native()),
                        errno);
  }
  const std::string line = host_id + "\n";
  const bool written =
      ::write(id_fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(id_fd);
  if (!written) {
    throw PlatformError(fmt::format("sim host: cannot write '{}'", id_path.native()), EIO);
  }

  const ShmName name = make_name(host_id, "host");
  const int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || ::ftruncate(fd, sizeof(HostTable)) != 0) {
    const int saved = errno;
    if (fd >= 0) ::close(fd);
    throw PlatformError(fmt::format("sim host '{}': cannot create host table {}: {}", dir.native(),
                                    name.c_str(), std::strerror(saved)),
                        saved);
  }
  void* table = ::mmap(nullptr, sizeof(HostTable), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (table == MAP_FAILED) {
    throw PlatformError(
        fmt::format("sim host '{}': cannot map host table: {}", dir.native(), std::strerror(errno)),
        errno);
  }
  Mapping mapping(table, sizeof(HostTable));
  // Every grant handle free (zero-filled, sparse until used).
  const ShmName grants_name = make_name(host_id, "grants");
  const int grants_fd =
      ::shm_open(grants_name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (grants_fd < 0 || ::ftruncate(grants_fd, sizeof(GrantHandleTable)) != 0) {
    const int saved = errno;
    if (grants_fd >= 0) {
      ::close(grants_fd);
    }
    ::shm_unlink(name.c_str());
    throw PlatformError(fmt::format("sim host '{}': cannot create grant handles {}: {}",
                                    dir.native(), grants_name.c_str(), std::strerror(saved)),
                        saved);
  }
  ::close(grants_fd);
  void* grants = map_shm(grants_name, sizeof(GrantHandleTable), nullptr);
  if (grants == nullptr) {
    const int saved = errno;
    ::shm_unlink(name.c_str());
    ::shm_unlink(grants_name.c_str());
    throw PlatformError(fmt::format("sim host '{}': cannot map grant handles: {}", dir.native(),
                                    std::strerror(saved)),
                        saved);
  }
  Mapping grants_mapping(grants, sizeof(GrantHandleTable));
  // The new object is zero-filled: every domain kAbsent at generation 0,
  // every handle free. Release: magic is published last.
  shared(static_cast<HostTable*>(table)->magic).store(kHostMagic, std::memory_order_release);
  return std::shared_ptr<Host>(
      new Host(std::move(paths), host_id, std::move(mapping), std::move(grants_mapping)));
}

std::uint64_t Host::domain_word(DomId domid) const noexcept {
  if (domid > kMaxDomid) return make_domain_word(0, DomainState::kAbsent);
  return shared(table_->domains[domid]).load(std::memory_order_acquire);
}

bool Host::is_alive(DomId domid) const noexcept {
  return domain_state(domain_word(domid)) == DomainState::kAlive;
}

std::pair<Mapping, DomainShared*> Host::map_domain_meta(DomId domid) const {
  const std::uint64_t word = domain_word(domid);
  // kCreating and kDying too: the toolstack initialises and revokes through
  // this mapping while the domain is not (or no longer) alive.
  if (domain_state(word) == DomainState::kAbsent) {
    throw PlatformError(
        fmt::format("sim host '{}': domain {} does not exist", paths_.dir.native(), domid), ESRCH);
  }
  const ShmName name = domain_object_name(domid, DomainObject::kMeta);
  void* meta = map_shm(name, sizeof(DomainShared), nullptr);
  if (meta == nullptr) {
    throw PlatformError(fmt::format("sim host '{}': domain {}: cannot map {}: {}",
                                    paths_.dir.native(), domid, name.c_str(), std::strerror(errno)),
                        errno);
  }
  return {Mapping(meta, sizeof(DomainShared)), static_cast<DomainShared*>(meta)};
}

}  // namespace vifd::sim::detail
