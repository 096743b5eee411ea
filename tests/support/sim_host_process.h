// A running vif-sim host for tests: starts `vif-sim --dir <fresh temp dir>`
// as a child process, waits until it serves xenstore, and tears everything
// down (SIGTERM, which makes vif-sim remove its shared state) when destroyed.
// Tests then act as any domain of that host through the real platform and
// the real libxenstore client, exactly as the daemons do.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/platform/platform.h"
#include "common/xenstore/client.h"

namespace vifd::testing {

class SimHostProcess {
 public:
  SimHostProcess();
  ~SimHostProcess();
  SimHostProcess(const SimHostProcess&) = delete;
  SimHostProcess& operator=(const SimHostProcess&) = delete;

  const std::filesystem::path& dir() const { return dir_; }

  // `vif-sim --dir DIR create N` / `destroy N`, as the toolstack would.
  void create_domain(platform::DomId domid, const std::string& name = "");
  void destroy_domain(platform::DomId domid);

  // This process acting as `domid` of the host.
  std::unique_ptr<platform::Platform> platform(platform::DomId domid) const;
  // A libxenstore connection as `domid` (dom0 is privileged).
  xs::Client xenstore(platform::DomId domid) const;

  // Environment a child process needs to act as `domid`:
  // VIF_SIM_DIR, VIF_SIM_DOMID and XENSTORED_PATH.
  std::vector<std::string> environment(platform::DomId domid) const;

  // Path of a project executable built next to vif-sim (e.g. "vifd").
  static std::filesystem::path binary(const std::string& name);

 private:
  void run_vif_sim(const std::vector<std::string>& args) const;

  std::filesystem::path dir_;
  pid_t server_pid_ = -1;
};

}  // namespace vifd::testing
