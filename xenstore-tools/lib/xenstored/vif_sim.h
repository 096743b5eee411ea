// The commands of the vif-sim executable: run a simulated Xen host (its
// xenstored and shared hypervisor state) and manage its domains the way xl
// does on real Xen. Failures throw std::runtime_error naming the culprit.
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

#include "common/platform/types.h"

namespace vifd::xenstored {

// Creates the host in `dir`, serves xenstore in the foreground until SIGTERM
// or SIGINT, then destroys the host. Prints one "ready" line once clients can
// connect.
void run_host(const std::filesystem::path& dir, std::ostream& out);

// As `xl create`: creates the domain in the hypervisor state, writes its
// domain_path(domid) tree with libxl's permissions, then introduces it
// (which fires @introduceDomain).
void create_domain_command(const std::filesystem::path& dir, platform::DomId domid,
                           const std::optional<std::string>& name, std::ostream& out);

// As `xl destroy`: releases the domain (fires @releaseDomain), removes its
// xenstore nodes and backend directories, then destroys it.
void destroy_domain_command(const std::filesystem::path& dir, platform::DomId domid,
                            std::ostream& out);

void list_command(const std::filesystem::path& dir, std::ostream& out);

// Hypercall counters of one domain, or of every domain when domid is absent.
void stats_command(const std::filesystem::path& dir, std::optional<platform::DomId> domid,
                   bool json, std::ostream& out);

}  // namespace vifd::xenstored
