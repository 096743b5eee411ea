// The xenstore nodes of one vif, laid out exactly as libxl lays them out for
// `xl network-attach` (libxl__device_generic_add + libxl__set_xenstore_nic,
// Xen 4.17), and the transaction that writes or removes them.
//
//   backend directory (xenbus::backend_path)    owner B, read D   (the backend's)
//   frontend directory (xenbus::frontend_path)  owner D, read B   (the guest's)
//       .../mtu                                  owner B, read D   (read-only to the guest)
//   xenbus::libxl_path                          the toolstack's private copy
//
// B is the backend domain, D the guest (common/xenbus/paths.h).
//
// Why each key exists is in docs/operator-guide.md, section "vifctl".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/platform/types.h"
#include "common/xenstore/client.h"
#include "xenstore-tools/lib/vifctl/vif_spec.h"

namespace vifd::vifctl {

struct VifPaths {
  std::string backend;
  std::string frontend;
  std::string libxl;
};

VifPaths vif_paths(platform::DomId backend_domid, VifId id);

struct Node {
  std::string key;  // relative to the directory
  std::string value;
  friend bool operator==(const Node&, const Node&) = default;
};

// Everything attach writes, before it is written: pure, so tests and the
// docs can be checked against it.
struct AttachPlan {
  VifId id;
  VifPaths paths;
  std::vector<Node> backend;             // backend_perms
  std::vector<Node> frontend;            // frontend_perms
  std::vector<Node> frontend_read_only;  // backend_perms: the guest may read, not change
  std::vector<xs::Perm> backend_perms;
  std::vector<xs::Perm> frontend_perms;
};

AttachPlan plan_attach(const VifSpec& spec, std::uint32_t devid);

// Writes the plan in one transaction (retried as a whole when it races):
// checks the guest's and the backend's domains exist and the vif does not (libxl or backend
// directory; a leftover frontend directory is replaced, as libxl does), picks the next free
// devid when none was given (libxl__device_nextid: highest in use + 1), and
// returns the plan that was committed. Throws std::runtime_error naming the
// domain, devid or path on failure.
AttachPlan write_attach(xs::Client& xs, const VifSpec& spec);

// libxl__initiate_device_generic_remove: online=0 then state=5 (Closing), in
// one transaction. Returns false when the backend directory does not exist.
bool request_close(xs::Client& xs, const VifPaths& paths);

// libxl__device_destroy: removes the frontend, backend and libxl directories
// in one transaction.
void remove_vif(xs::Client& xs, const VifPaths& paths);

// Decimal children of a directory (devids, domids), ascending; other names
// are skipped, a missing directory gives an empty list.
std::vector<std::uint32_t> numeric_children(xs::Client& xs, const std::string& path,
                                            xs::TxId tx = xs::kNoTx);

}  // namespace vifd::vifctl
