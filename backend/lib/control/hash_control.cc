#include "backend/lib/control/hash_control.h"

#include <cstring>

#include "backend/lib/datapath/toeplitz.h"

namespace vifd::backend {

HashControl::HashControl(platform::GrantTable& grants, platform::DomId frontend,
                         unsigned num_queues, std::shared_ptr<FlowSteering> steering)
    : grants_(grants),
      frontend_(frontend),
      num_queues_(num_queues),
      steering_(std::move(steering)) {
  publish();
}

protocol::CtrlResponse HashControl::handle(const protocol::CtrlRequest& request) {
  protocol::CtrlResponse response{};
  response.id = request.id;
  response.type = request.type;
  response.status = XEN_NETIF_CTRL_STATUS_SUCCESS;
  switch (request.type) {
    case XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS:
      response.data = kSupportedFlags;
      break;
    case XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS:
      response.status = set_flags(request.data[0]);
      break;
    case XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM:
      response.status = set_algorithm(request.data[0]);
      break;
    case XEN_NETIF_CTRL_TYPE_SET_HASH_KEY:
      response.status = set_key(request.data[0], request.data[1]);
      break;
    case XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE:
      response.data = kMaxMappingSize;
      break;
    case XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE:
      response.status = set_mapping_size(request.data[0]);
      break;
    case XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING:
      response.status = set_mapping(request.data[0], request.data[1], request.data[2]);
      break;
    default:
      // Includes the gref mapping messages when no GrefControl serves them.
      response.status = XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED;
      break;
  }
  if (response.status == XEN_NETIF_CTRL_STATUS_SUCCESS &&
      request.type != XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS &&
      request.type != XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE) {
    publish();
  }
  return response;
}

std::uint32_t HashControl::set_algorithm(std::uint32_t algorithm) {
  if (algorithm != XEN_NETIF_CTRL_HASH_ALGORITHM_NONE &&
      algorithm != XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ) {
    return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
  }
  current_.toeplitz = algorithm == XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ;
  return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

std::uint32_t HashControl::set_flags(std::uint32_t flags) {
  // As netback: flags mean nothing without an algorithm to hash with.
  if ((flags & ~kSupportedFlags) != 0 || (flags != 0 && !current_.toeplitz)) {
    return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
  }
  current_.flags = flags;
  return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

std::uint32_t HashControl::set_key(platform::GrantRef ref, std::uint32_t size) {
  if (size > kToeplitzMaxKeySize) {
    return XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW;
  }
  std::vector<std::uint8_t> key(size);
  if (size != 0 && !copy_from_frontend(ref, key.data(), static_cast<std::uint16_t>(size))) {
    return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
  }
  current_.key = std::move(key);
  return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

std::uint32_t HashControl::set_mapping_size(std::uint32_t size) {
  if (size > kMaxMappingSize) {
    return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
  }
  // netif.h: the previous table is invalidated, the new one zero filled.
  current_.mapping.assign(size, 0);
  return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

std::uint32_t HashControl::set_mapping(platform::GrantRef ref, std::uint32_t count,
                                       std::uint32_t offset) {
  if (count > platform::kPageSize / sizeof(std::uint32_t)) {
    return XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW;
  }
  // 64-bit sum: offset + count must not wrap past the table.
  if (std::uint64_t{offset} + count > current_.mapping.size()) {
    return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
  }
  std::vector<std::uint32_t> entries(count);
  if (count != 0 &&
      !copy_from_frontend(ref, entries.data(),
                          static_cast<std::uint16_t>(count * sizeof(std::uint32_t)))) {
    return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
  }
  // Validated in the local copy, all before any is applied: the frontend
  // can rewrite its page at any time.
  for (const std::uint32_t queue : entries) {
    if (queue >= num_queues_) {
      return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
    }
  }
  std::copy(entries.begin(), entries.end(), current_.mapping.begin() + offset);
  return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

bool HashControl::copy_from_frontend(platform::GrantRef ref, void* destination,
                                     std::uint16_t bytes) {
  platform::GrantCopySegment segment{};
  segment.source.foreign = {ref, 0, frontend_};
  segment.dest.virt = destination;
  segment.len = bytes;
  segment.flags = platform::kCopySourceGref;
  return grants_.copy(std::span(&segment, 1)) == 0 && segment.status == platform::kGntstOkay;
}

void HashControl::publish() {
  steering_->publish(std::make_shared<const HashSnapshot>(current_));
}

}  // namespace vifd::backend
