// The hash messages of the netif control ring (netif.h, "Control requests"):
// the frontend chooses the hash algorithm, the flow types hashed, the
// Toeplitz key and the hash -> queue mapping table. Runs on the control
// plane, one request at a time; the data path reads the resulting
// configuration as an immutable snapshot swapped atomically, never a lock.
//
// CtrlRing feeds it the requests of the ring; the result goes to the
// vif's FlowSteering, which the switch reads to pick the receiving queue.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/lib/datapath/flow_steering.h"
#include "common/platform/grant_table.h"
#include "common/platform/types.h"
#include "common/protocol/xen_abi.h"

namespace vifd::backend {

class HashControl {
 public:
  // Flow types vifd can hash: IPv4 and IPv6, with or without TCP ports.
  static constexpr std::uint32_t kSupportedFlags =
      XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP |
      XEN_NETIF_CTRL_HASH_TYPE_IPV6 | XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP;
  // Linux netback's XEN_NETBK_MAX_HASH_MAPPING_SIZE.
  static constexpr std::uint32_t kMaxMappingSize = 128;

  // grants: copies the key and mapping out of the frontend's granted pages;
  // steering: where each accepted configuration is published.
  HashControl(platform::GrantTable& grants, platform::DomId frontend, unsigned num_queues,
              std::shared_ptr<FlowSteering> steering);

  // Answers one request (already copied out of the ring). Unknown types get
  // NOT_SUPPORTED, and so do the static grant mapping messages: CtrlRing
  // hands those to GrefControl when the vif offers them.
  protocol::CtrlResponse handle(const protocol::CtrlRequest& request);

  // What the data path hashes with now.
  std::shared_ptr<const HashSnapshot> snapshot() const noexcept { return steering_->current(); }

 private:
  std::uint32_t set_algorithm(std::uint32_t algorithm);
  std::uint32_t set_flags(std::uint32_t flags);
  std::uint32_t set_key(platform::GrantRef ref, std::uint32_t size);
  std::uint32_t set_mapping_size(std::uint32_t size);
  std::uint32_t set_mapping(platform::GrantRef ref, std::uint32_t count, std::uint32_t offset);
  // Copies `bytes` from the start of the frontend's grant `ref`.
  bool copy_from_frontend(platform::GrantRef ref, void* destination, std::uint16_t bytes);
  void publish();

  platform::GrantTable& grants_;
  platform::DomId frontend_;
  unsigned num_queues_;
  HashSnapshot current_;  // control plane's working copy
  std::shared_ptr<FlowSteering> steering_;
};

}  // namespace vifd::backend
