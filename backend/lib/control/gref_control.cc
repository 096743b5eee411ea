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
    case GrefRefusal::kRangeLimit:
      return "range_limit";
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
    for (const auto& [key, range] : queue.ranges) {
      unmap(queue, range.base, range.pages);
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
  if (queue.held_pages + count > kMaxMappingsPerQueue) {
    return refuse(GrefRefusal::kLimit);
  }
  std::unordered_set<platform::GrantRef> seen;
  seen.reserve(count);
  std::array<std::vector<platform::GrantRef>, 2> by_mode;  // [0] read-only, [1] writable
  for (const protocol::StaticGrant& entry : wanted) {
    if ((entry.flags & ~XEN_NETIF_CTRLF_GREF_readonly) != 0) {
      return refuse(GrefRefusal::kBadFlags);
    }
    if (!seen.insert(entry.ref).second || queue.live.contains(entry.ref)) {
      return refuse(GrefRefusal::kDuplicate);
    }
    by_mode[(entry.flags & XEN_NETIF_CTRLF_GREF_readonly) == 0 ? 1 : 0].push_back(entry.ref);
  }
  const auto new_ranges =
      static_cast<std::size_t>(!by_mode[0].empty()) + static_cast<std::size_t>(!by_mode[1].empty());
  if (queue.ranges.size() + new_ranges > kMaxRangesPerQueue) {
    return refuse(GrefRefusal::kRangeLimit);
  }
  // All or nothing (netif.h): a range mapped for this request goes again
  // when the other cannot be mapped.
  std::array<void*, 2> bases{};
  for (std::size_t mode = 0; mode < by_mode.size(); ++mode) {
    if (by_mode[mode].empty()) {
      continue;
    }
    const std::vector<platform::DomId> domids(by_mode[mode].size(), frontend_);
    try {
      bases[mode] = queue.grants->map(domids, by_mode[mode], mode == 1);
    } catch (const platform::PlatformError& error) {
      control_log().info("ctrl ring of domain {}: ADD_GREF_MAPPING queue {}: {}", frontend_,
                         queue_index, error.what());
      if (mode == 1 && bases[0] != nullptr) {
        unmap(queue, bases[0], static_cast<std::uint32_t>(by_mode[0].size()));
      }
      return refuse(GrefRefusal::kMapFailed);
    }
  }
  for (std::size_t mode = 0; mode < by_mode.size(); ++mode) {
    if (by_mode[mode].empty()) {
      continue;
    }
    const std::uint64_t key = queue.next_range++;
    const auto pages = static_cast<std::uint32_t>(by_mode[mode].size());
    queue.ranges.emplace(key, Range{bases[mode], pages, pages, 0});
    queue.held_pages += pages;
    auto* page = static_cast<std::uint8_t*>(bases[mode]);
    for (const platform::GrantRef ref : by_mode[mode]) {
      queue.live.emplace(ref, Mapping{mode == 1, page, key});
      page += platform::kPageSize;
    }
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
    // Out of use from the next table on; its range is unmapped once all of
    // its pages are and the queue acknowledged that table.
    Range& range = queue.ranges.at(found->second.range);
    if (--range.live == 0) {
      range.retired_generation = generation;
    }
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
    bool retiring = false;
    std::erase_if(queue.ranges, [&](const auto& item) {
      const Range& range = item.second;
      if (range.live != 0) {
        return false;
      }
      if (range.retired_generation > acknowledged) {
        retiring = true;
        return false;
      }
      unmap(queue, range.base, range.pages);
      queue.held_pages -= range.pages;
      return true;
    });
    while (queue.tables.size() > 1 && queue.tables.front()->generation() < acknowledged) {
      queue.tables.pop_front();
    }
    waiting = waiting || retiring || queue.tables.size() > 1;
  }
  return waiting;
}

void GrefControl::unmap(QueueMappings& queue, void* base, std::uint32_t pages) noexcept {
  try {
    queue.grants->unmap(base, pages);
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
    total += queue.held_pages - queue.live.size();
  }
  return total;
}

std::size_t GrefControl::ranges() const noexcept {
  std::size_t total = 0;
  for (const QueueMappings& queue : queues_) {
    total += queue.ranges.size();
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
