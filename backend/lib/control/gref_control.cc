#include "backend/lib/control/gref_control.h"

#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "backend/lib/control/log.h"
#include "common/platform/error.h"

namespace vifd::backend {

std::string_view to_string(GrefRefusal refusal) noexcept {
  switch (refusal) {
    case GrefRefusal::kBadQueue:
      return "bad_queue";
    case GrefRefusal::kBadList:
      return "bad_list";
    case GrefRefusal::kBadFlags:
      return "bad_flags";
    case GrefRefusal::kDuplicate:
      return "duplicate";
    case GrefRefusal::kLimit:
      return "limit";
    case GrefRefusal::kMapFailed:
      return "map_failed";
    case GrefRefusal::kNotMapped:
      return "not_mapped";
    case GrefRefusal::kStatusWriteFailed:
      return "status_write_failed";
    case GrefRefusal::kCount:
      break;
  }
  return "unknown";
}

GrefControl::GrefControl(platform::Platform& platform, platform::GrantTable& copier,
                         platform::DomId frontend,
                         std::vector<std::shared_ptr<GrefHandoff>> handoffs)
    : copier_(copier), frontend_(frontend) {
  queues_.resize(handoffs.size());
  for (std::size_t i = 0; i < handoffs.size(); ++i) {
    queues_[i].handoff = std::move(handoffs[i]);
    queues_[i].grants = platform.open_grant_table();
    publish(queues_[i]);
  }
}

GrefControl::~GrefControl() {
  for (QueueMappings& queue : queues_) {
    queue.handoff->publish(nullptr);
    for (const auto& [ref, mapping] : queue.live) {
      unmap(queue, mapping.page);
    }
    for (const Retired& retired : queue.retired) {
      unmap(queue, retired.page);
    }
  }
}

bool GrefControl::handles(std::uint16_t type) noexcept {
  return type == XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE ||
         type == XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING ||
         type == XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING;
}

protocol::CtrlResponse GrefControl::handle(const protocol::CtrlRequest& request) {
  reclaim();
  protocol::CtrlResponse response{};
  response.id = request.id;
  response.type = request.type;
  response.status = XEN_NETIF_CTRL_STATUS_SUCCESS;
  const std::uint32_t queue = request.data[0];
  if (queue >= queues_.size()) {
    response.status = refuse(GrefRefusal::kBadQueue);
    return response;
  }
  switch (request.type) {
    case XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE:
      response.data = kMaxMappingsPerQueue;
      break;
    case XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING:
      response.status = add(queue, request.data[1], request.data[2]);
      break;
    case XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING: {
      std::uint32_t removed = 0;
      response.status = del(queue, request.data[1], request.data[2], removed);
      response.data = removed;
      break;
    }
    default:
      response.status = XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED;
      break;
  }
  return response;
}

bool GrefControl::read_list(platform::GrantRef list, std::uint32_t count,
                            std::span<protocol::StaticGrant> entries) {
  if (count == 0 || count > kMaxListEntries) {
    return false;
  }
  platform::GrantCopySegment segment{};
  segment.source.foreign = {list, 0, frontend_};
  segment.dest.virt = entries.data();
  segment.len = static_cast<std::uint16_t>(count * sizeof(protocol::StaticGrant));
  segment.flags = platform::kCopySourceGref;
  return copier_.copy(std::span(&segment, 1)) == 0 && segment.status == platform::kGntstOkay;
}

std::uint32_t GrefControl::add(std::uint32_t queue_index, platform::GrantRef list,
                               std::uint32_t count) {
  QueueMappings& queue = queues_[queue_index];
  // Copied once: the frontend may rewrite its page while we work.
  std::array<protocol::StaticGrant, kMaxListEntries> entries{};
  if (!read_list(list, count, entries)) {
    return refuse(GrefRefusal::kBadList);
  }
  const std::span<const protocol::StaticGrant> wanted(entries.data(), count);
  if (queue.live.size() + queue.retired.size() + count > kMaxMappingsPerQueue) {
    return refuse(GrefRefusal::kLimit);
  }
  std::unordered_set<platform::GrantRef> seen;
  seen.reserve(count);
  for (const protocol::StaticGrant& entry : wanted) {
    if ((entry.flags & ~XEN_NETIF_CTRLF_GREF_readonly) != 0) {
      return refuse(GrefRefusal::kBadFlags);
    }
    if (!seen.insert(entry.ref).second || queue.live.contains(entry.ref)) {
      return refuse(GrefRefusal::kDuplicate);
    }
  }
  // All or nothing (netif.h): what this request mapped goes again when one
  // entry fails.
  std::vector<std::pair<platform::GrantRef, Mapping>> mapped;
  mapped.reserve(count);
  for (const protocol::StaticGrant& entry : wanted) {
    const bool writable = (entry.flags & XEN_NETIF_CTRLF_GREF_readonly) == 0;
    const platform::DomId domids[] = {frontend_};
    const platform::GrantRef refs[] = {entry.ref};
    try {
      mapped.emplace_back(entry.ref, Mapping{writable, queue.grants->map(domids, refs, writable)});
    } catch (const platform::PlatformError& error) {
      control_log().info("ctrl ring of domain {}: ADD_GREF_MAPPING queue {}: {}", frontend_,
                         queue_index, error.what());
      for (const auto& [ref, mapping] : mapped) {
        unmap(queue, mapping.page);
      }
      return refuse(GrefRefusal::kMapFailed);
    }
  }
  for (const auto& [ref, mapping] : mapped) {
    queue.live.emplace(ref, mapping);
  }
  publish(queue);
  return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

std::uint32_t GrefControl::del(std::uint32_t queue_index, platform::GrantRef list,
                               std::uint32_t count, std::uint32_t& removed) {
  QueueMappings& queue = queues_[queue_index];
  std::array<protocol::StaticGrant, kMaxListEntries> entries{};
  if (!read_list(list, count, entries)) {
    return refuse(GrefRefusal::kBadList);
  }
  const std::uint64_t generation = queue.next_generation;  // of the table published below
  for (std::uint32_t i = 0; i < count; ++i) {
    protocol::StaticGrant& entry = entries[i];
    const auto found = queue.live.find(entry.ref);
    if (found == queue.live.end()) {
      entry.status = XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
      ++refused_[static_cast<std::size_t>(GrefRefusal::kNotMapped)];
      continue;
    }
    // Out of use from the next table on; unmapped once the queue says so.
    queue.retired.push_back({generation, found->second.page});
    queue.live.erase(found);
    entry.status = XEN_NETIF_CTRL_STATUS_SUCCESS;
    ++removed;
  }
  if (removed != 0) {
    publish(queue);
  }
  platform::GrantCopySegment segment{};
  segment.source.virt = entries.data();
  segment.dest.foreign = {list, 0, frontend_};
  segment.len = static_cast<std::uint16_t>(count * sizeof(protocol::StaticGrant));
  segment.flags = platform::kCopyDestGref;
  if (copier_.copy(std::span(&segment, 1)) != 0 || segment.status != platform::kGntstOkay) {
    // The entries are out of use all the same; the frontend cannot tell which.
    return refuse(GrefRefusal::kStatusWriteFailed);
  }
  return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

void GrefControl::publish(QueueMappings& queue) {
  std::vector<GrefEntry> entries;
  entries.reserve(queue.live.size());
  for (const auto& [ref, mapping] : queue.live) {
    entries.push_back({ref, mapping.writable, static_cast<std::uint8_t*>(mapping.page)});
  }
  queue.tables.push_back(std::make_unique<GrefTable>(queue.next_generation++, entries));
  queue.handoff->publish(queue.tables.back().get());
}

bool GrefControl::reclaim() noexcept {
  bool waiting = false;
  for (QueueMappings& queue : queues_) {
    const std::uint64_t acknowledged = queue.handoff->acknowledged();
    std::erase_if(queue.retired, [&](const Retired& retired) {
      if (retired.generation > acknowledged) {
        return false;
      }
      unmap(queue, retired.page);
      return true;
    });
    while (queue.tables.size() > 1 && queue.tables.front()->generation() < acknowledged) {
      queue.tables.pop_front();
    }
    waiting = waiting || !queue.retired.empty() || queue.tables.size() > 1;
  }
  return waiting;
}

void GrefControl::unmap(QueueMappings& queue, void* page) noexcept {
  try {
    queue.grants->unmap(page, 1);
  } catch (const platform::PlatformError& error) {
    control_log().error("ctrl ring of domain {}: unmapping a static grant: {}", frontend_,
                        error.what());
  }
}

std::uint32_t GrefControl::refuse(GrefRefusal refusal) noexcept {
  ++refused_[static_cast<std::size_t>(refusal)];
  return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
}

std::size_t GrefControl::mapped() const noexcept {
  std::size_t total = 0;
  for (const QueueMappings& queue : queues_) {
    total += queue.live.size();
  }
  return total;
}

std::size_t GrefControl::retiring() const noexcept {
  std::size_t total = 0;
  for (const QueueMappings& queue : queues_) {
    total += queue.retired.size();
  }
  return total;
}

std::uint64_t GrefControl::refused_total() const noexcept {
  std::uint64_t total = 0;
  for (const std::uint64_t n : refused_) {
    total += n;
  }
  return total;
}

}  // namespace vifd::backend
