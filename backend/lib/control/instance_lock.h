// One vifd per backend domain (or per frontend domain it serves): flock()s on
// files in the run directory, taken before the daemon touches xenstore. A
// second vifd started by mistake would otherwise adopt every vif the first
// one serves and fight over their `state` nodes.
//
// A vifd serving every frontend domain holds vifd-backend-<B>.lock
// exclusively. A vifd serving only some domains (--domain) holds it shared
// and vifd-backend-<B>-domain-<D>.lock exclusively for each of them, so
// per-domain vifds coexist with each other but not with a serve-all one.
// Each exclusive holder writes its pid into the file for the error message
// of the next one; the kernel releases the locks when the process dies, so
// a crashed vifd never blocks its successor.
#pragma once

#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/platform/types.h"

namespace vifd::backend {

class InstanceLockError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class InstanceLock {
 public:
  // Creates `dir` if needed. Throws InstanceLockError naming the running
  // instance (its pid, when it wrote one) when the lock is held, and
  // std::system_error when a lock file cannot be opened.
  InstanceLock(const std::filesystem::path& dir, platform::DomId backend,
               const std::set<platform::DomId>& domains);
  ~InstanceLock();
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;

  // Where vifd keeps the locks unless told otherwise: fixed per host (not
  // next to a --control-socket the operator may vary), so two vifds, and
  // vifd-launcher looking for the per-guest ones, always meet there.
  // /run/vifd; the simulator's directory ($VIF_SIM_DIR) on platform sim.
  static std::filesystem::path default_dir(std::string_view platform_name);

  static std::filesystem::path backend_lock_path(const std::filesystem::path& dir,
                                                 platform::DomId backend);
  static std::filesystem::path domain_lock_path(const std::filesystem::path& dir,
                                                platform::DomId backend, platform::DomId domain);
  // The domains whose per-domain vifd of `backend` holds its lock in `dir`
  // (vifd-launcher's view after a restart). File names that are not a
  // canonical domain lock name are skipped.
  static std::set<platform::DomId> served_domains(const std::filesystem::path& dir,
                                                  platform::DomId backend);

 private:
  std::vector<int> fds_;
};

}  // namespace vifd::backend
