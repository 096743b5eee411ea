// make_sim_platform: a process joins a sim host as one domain.
#include "common/platform/sim/sim_platform.h"

#include <fmt/format.h>

#include <cerrno>

#include "common/platform/error.h"
#include "common/platform/sim/host.h"
#include "common/platform/sim/sim_event_channels.h"
#include "common/platform/sim/sim_grant_share.h"
#include "common/platform/sim/sim_grant_table.h"

namespace vifd::platform {

namespace {

class SimPlatform final : public Platform {
 public:
  SimPlatform(std::shared_ptr<const sim::detail::Host> host, DomId self)
      : host_(std::move(host)), self_(self) {}

  std::string name() const override { return "sim"; }
  DomId self_domid() const override { return self_; }

  std::unique_ptr<GrantTable> open_grant_table() override {
    return std::make_unique<sim::detail::SimGrantTable>(host_, self_);
  }
  std::unique_ptr<GrantShare> open_grant_share() override {
    return std::make_unique<sim::detail::SimGrantShare>(host_, self_);
  }
  std::unique_ptr<EventChannels> open_event_channels() override {
    return std::make_unique<sim::detail::SimEventChannels>(host_, self_);
  }

  // dom0 is the privileged connection (xenstored's own socket); a guest
  // talks through its per-domain socket, which the server treats as that
  // domain's ring.
  std::optional<std::string> xenstore_socket() const override {
    const auto& paths = host_->paths();
    return self_ == kDom0 ? paths.xenstored_socket().native()
                          : paths.domain_xenstored_socket(self_).native();
  }

  // The host table vif-sim keeps: a domain is kAlive from `vif-sim create`
  // until `vif-sim destroy` marks it kDying (revoking its grants and ports)
  // and then kAbsent. A domain still being created is not there yet. The
  // simulator has no shut-down-but-not-destroyed state.
  std::optional<DomainStatus> domain_status(DomId domid) override {
    switch (sim::detail::domain_state(host_->domain_word(domid))) {
      case sim::detail::DomainState::kAlive:
        return DomainStatus::kRunning;
      case sim::detail::DomainState::kDying:
        return DomainStatus::kDying;
      case sim::detail::DomainState::kAbsent:
      case sim::detail::DomainState::kCreating:
        return DomainStatus::kAbsent;
    }
    return DomainStatus::kAbsent;
  }

 private:
  std::shared_ptr<const sim::detail::Host> host_;
  DomId self_;
};

}  // namespace

std::unique_ptr<Platform> make_sim_platform(const std::string& sim_dir, DomId domid) {
  auto host = sim::detail::Host::open(sim_dir);
  if (!host->is_alive(domid)) {
    throw PlatformError(fmt::format("sim host '{}': domain {} does not exist", sim_dir, domid),
                        ESRCH);
  }
  return std::make_unique<SimPlatform>(std::move(host), domid);
}

}  // namespace vifd::platform
