// The `xen` platform: thin wrappers over libxengnttab, libxengntshr,
// libxenevtchn and (for domain info only) libxenctrl. Each call maps one-to-one onto a library call
// so that what the simulator proves about our use of the interface carries over to Xen.
#include "common/platform/xen/xen_platform.h"

#include <fcntl.h>
#include <sys/mman.h>
// Debian's libxenevtchn/libxengnttab/libxenstore headers have no
// extern "C" guards.
extern "C" {
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>
}

#include <fmt/format.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/platform/error.h"
#include "common/platform/xen/kernel_backends.h"
#include "common/protocol/xs_parse.h"

namespace vifd::platform {
namespace {

// Our segment type is passed to xengnttab_grant_copy without conversion, so it
// must have exactly the library's layout.
static_assert(sizeof(GrantCopySegment) == sizeof(xengnttab_grant_copy_segment_t));
static_assert(offsetof(GrantCopySegment, source) ==
              offsetof(xengnttab_grant_copy_segment_t, source));
static_assert(offsetof(GrantCopySegment, dest) == offsetof(xengnttab_grant_copy_segment_t, dest));
static_assert(offsetof(GrantCopySegment, len) == offsetof(xengnttab_grant_copy_segment_t, len));
static_assert(offsetof(GrantCopySegment, flags) == offsetof(xengnttab_grant_copy_segment_t, flags));
static_assert(offsetof(GrantCopySegment, status) ==
              offsetof(xengnttab_grant_copy_segment_t, status));
static_assert(offsetof(GrantCopyPtr::Foreign, ref) ==
              offsetof(xengnttab_grant_copy_segment_t, source.foreign.ref));
static_assert(offsetof(GrantCopyPtr::Foreign, offset) ==
              offsetof(xengnttab_grant_copy_segment_t, source.foreign.offset));
static_assert(offsetof(GrantCopyPtr::Foreign, domid) ==
              offsetof(xengnttab_grant_copy_segment_t, source.foreign.domid));
static_assert(kCopySourceGref == GNTCOPY_source_gref && kCopyDestGref == GNTCOPY_dest_gref);

[[noreturn]] void throw_errno(const std::string& what) {
  const int saved = errno;
  throw PlatformError(fmt::format("{}: {}", what, std::strerror(saved)), saved);
}

class XenGrantTable final : public GrantTable {
 public:
  XenGrantTable() : handle_(xengnttab_open(nullptr, 0)) {
    if (handle_ == nullptr) throw_errno("xengnttab_open (is the gntdev module loaded?)");
  }
  ~XenGrantTable() override { xengnttab_close(handle_); }

  void* map(std::span<const DomId> domids, std::span<const GrantRef> refs, bool writable) override {
    if (domids.size() != refs.size() || refs.empty()) {
      throw PlatformError(
          fmt::format("grant map: {} domids for {} refs", domids.size(), refs.size()), EINVAL);
    }
    // libxengnttab takes 32-bit domids; this is control-plane work.
    std::vector<std::uint32_t> wide_domids(domids.begin(), domids.end());
    std::vector<std::uint32_t> ref_copy(refs.begin(), refs.end());
    void* addr = xengnttab_map_grant_refs(handle_, static_cast<std::uint32_t>(refs.size()),
                                          wide_domids.data(), ref_copy.data(),
                                          writable ? PROT_READ | PROT_WRITE : PROT_READ);
    if (addr == nullptr) {
      throw_errno(fmt::format("grant map of {} refs (first: domid {} ref {})", refs.size(),
                              domids.front(), refs.front()));
    }
    return addr;
  }

  void unmap(void* addr, std::size_t count) override {
    if (xengnttab_unmap(handle_, addr, static_cast<std::uint32_t>(count)) != 0) {
      throw_errno(fmt::format("grant unmap of {} pages at {}", count, addr));
    }
  }

  int copy(std::span<GrantCopySegment> segments) noexcept override {
    if (segments.empty()) return 0;
    // Layout identity is asserted above; the library only reads and writes
    // the fields through its own (identical) declaration.
    auto* segs = reinterpret_cast<xengnttab_grant_copy_segment_t*>(segments.data());
    if (xengnttab_grant_copy(handle_, static_cast<std::uint32_t>(segments.size()), segs) != 0) {
      return -errno;
    }
    return 0;
  }

 private:
  xengnttab_handle* handle_;
};

class XenGrantShare final : public GrantShare {
 public:
  XenGrantShare() : handle_(xengntshr_open(nullptr, 0)) {
    if (handle_ == nullptr) throw_errno("xengntshr_open (is the gntalloc module loaded?)");
  }
  ~XenGrantShare() override { xengntshr_close(handle_); }

  void* share(DomId domid, std::span<GrantRef> refs_out, bool writable) override {
    void* addr = xengntshr_share_pages(handle_, domid, static_cast<int>(refs_out.size()),
                                       refs_out.data(), writable ? 1 : 0);
    if (addr == nullptr) {
      throw_errno(fmt::format("grant share of {} pages to domid {}", refs_out.size(), domid));
    }
    return addr;
  }

  void unshare(void* addr, std::size_t count) override {
    if (xengntshr_unshare(handle_, addr, count) != 0) {
      throw_errno(fmt::format("grant unshare of {} pages at {}", count, addr));
    }
  }

 private:
  xengntshr_handle* handle_;
};

class XenEventChannels final : public EventChannels {
 public:
  XenEventChannels() : handle_(xenevtchn_open(nullptr, 0)) {
    if (handle_ == nullptr) throw_errno("xenevtchn_open (is the evtchn module loaded?)");
    // pending() must not block: callers poll fd() and drain until empty.
    const int fd = xenevtchn_fd(handle_);
    const int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
      xenevtchn_close(handle_);
      throw_errno("evtchn fd O_NONBLOCK");
    }
  }
  ~XenEventChannels() override { xenevtchn_close(handle_); }

  int fd() const noexcept override { return xenevtchn_fd(handle_); }

  EvtchnPort bind_unbound(DomId remote_domid) override {
    const xenevtchn_port_or_error_t port = xenevtchn_bind_unbound_port(handle_, remote_domid);
    if (port < 0) throw_errno(fmt::format("evtchn alloc-unbound for domid {}", remote_domid));
    return static_cast<EvtchnPort>(port);
  }

  EvtchnPort bind_interdomain(DomId remote_domid, EvtchnPort remote_port) override {
    const xenevtchn_port_or_error_t port =
        xenevtchn_bind_interdomain(handle_, remote_domid, remote_port);
    if (port < 0) {
      throw_errno(fmt::format("evtchn bind to domid {} port {}", remote_domid, remote_port));
    }
    return static_cast<EvtchnPort>(port);
  }

  void unbind(EvtchnPort local_port) override {
    if (xenevtchn_unbind(handle_, local_port) != 0) {
      throw_errno(fmt::format("evtchn unbind port {}", local_port));
    }
  }

  int notify(EvtchnPort local_port) noexcept override {
    return xenevtchn_notify(handle_, local_port) == 0 ? 0 : -errno;
  }

  std::optional<EvtchnPort> pending() noexcept override {
    const xenevtchn_port_or_error_t port = xenevtchn_pending(handle_);
    if (port < 0) return std::nullopt;
    return static_cast<EvtchnPort>(port);
  }

  int unmask(EvtchnPort local_port) noexcept override {
    return xenevtchn_unmask(handle_, local_port) == 0 ? 0 : -errno;
  }

  // evtchn_poll() in drivers/xen/evtchn.c: EPOLLIN while ring_cons !=
  // ring_prod, i.e. while a read would return a port.
  bool readable_exactly_while_pending() const noexcept override { return true; }

 private:
  xenevtchn_handle* handle_;
};

// A PV dom0 advertises "control_d" in /proc/xen/capabilities.
bool running_in_dom0() {
  std::ifstream caps("/proc/xen/capabilities");
  std::string text;
  std::getline(caps, text);
  return text.find("control_d") != std::string::npos;
}

DomId discover_self_domid() {
  if (running_in_dom0()) return kDom0;
  std::unique_ptr<xs_handle, decltype(&xs_close)> xs(xs_open(0), &xs_close);
  if (!xs) throw_errno("xs_open to read this domain's id");
  unsigned int len = 0;
  std::unique_ptr<char, decltype(&free)> value(
      static_cast<char*>(xs_read(xs.get(), XBT_NULL, "domid", &len)), &free);
  if (!value) throw_errno("xenstore read of 'domid'");
  const auto domid = protocol::parse_domid("domid", std::string_view(value.get(), len));
  if (!domid) throw PlatformError(domid.error().message(), EINVAL);
  return domid.value();
}

// libxenctrl logs its failures to stderr by default; a domain that may not
// ask (a driver domain) is an expected answer here, not an error to print.
void discard_message(xentoollog_logger* /*logger*/, xentoollog_level /*level*/, int /*errnoval*/,
                     const char* /*context*/, const char* /*format*/, va_list /*args*/) {}
void discard_destroy(xentoollog_logger* /*logger*/) {}
xentoollog_logger quiet_logger{discard_message, nullptr, discard_destroy};

// xc_domain_getinfolist on one domain, through an xc_interface opened on
// first use (privcmd; only a privileged domain gets an answer).
class XenDomainInfo {
 public:
  XenDomainInfo() = default;
  ~XenDomainInfo() {
    if (handle_ != nullptr) {
      xc_interface_close(handle_);
    }
  }
  XenDomainInfo(const XenDomainInfo&) = delete;
  XenDomainInfo& operator=(const XenDomainInfo&) = delete;

  std::optional<DomainStatus> status(DomId domid) {
    std::lock_guard lock(mutex_);
    if (!opened_) {
      opened_ = true;
      handle_ = xc_interface_open(&quiet_logger, &quiet_logger, 0);
    }
    if (handle_ == nullptr) {
      return std::nullopt;
    }
    xc_domaininfo_t info{};
    // Returns the first domain with an id >= domid: a different id means
    // there is no domain `domid`.
    const int found = xc_domain_getinfolist(handle_, domid, 1, &info);
    if (found < 0) {
      return std::nullopt;  // e.g. EPERM: not ours to ask
    }
    if (found == 0 || info.domain != domid) {
      return DomainStatus::kAbsent;
    }
    if ((info.flags & XEN_DOMINF_dying) != 0) {
      return DomainStatus::kDying;
    }
    if ((info.flags & XEN_DOMINF_shutdown) != 0) {
      return DomainStatus::kShutdown;
    }
    return DomainStatus::kRunning;
  }

 private:
  std::mutex mutex_;
  bool opened_ = false;
  xc_interface* handle_ = nullptr;
};

class XenPlatform final : public Platform {
 public:
  explicit XenPlatform(DomId self) : self_(self) {}
  std::string name() const override { return "xen"; }
  DomId self_domid() const override { return self_; }
  std::unique_ptr<GrantTable> open_grant_table() override {
    return std::make_unique<XenGrantTable>();
  }
  std::unique_ptr<GrantShare> open_grant_share() override {
    return std::make_unique<XenGrantShare>();
  }
  std::unique_ptr<EventChannels> open_event_channels() override {
    return std::make_unique<XenEventChannels>();
  }
  std::optional<std::string> xenstore_socket() const override { return std::nullopt; }
  std::optional<DomainStatus> domain_status(DomId domid) override {
    return domain_info_.status(domid);
  }
  std::optional<std::string> kernel_backend_driver(std::string_view type, DomId domid,
                                                   std::uint32_t devid) override {
    return bound_kernel_backend("/sys", type, domid, devid);
  }

 private:
  DomId self_;
  XenDomainInfo domain_info_;
};

}  // namespace

std::unique_ptr<Platform> make_xen_platform(std::optional<DomId> self_domid) {
  return std::make_unique<XenPlatform>(self_domid ? *self_domid : discover_self_domid());
}

}  // namespace vifd::platform
