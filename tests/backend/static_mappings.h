// The control plane's part of static grant mappings for data-path tests:
// a frontend's buffer pages mapped once and published to a queue as
// GrefTables through its GrefHandoff.
#pragma once

#include <memory>
#include <vector>

#include "backend/lib/datapath/gref_table.h"
#include "tests/backend/datapath_harness.h"

namespace vifd::backend::testing {

// The control plane's part for one frontend: every TX and/or RX buffer page
// mapped once, published as one table.
class StaticMappings {
 public:
  StaticMappings(const SimHost& host, TestFrontend& frontend, bool tx, bool rx)
      : platform_(host.join(0)), grants_(platform_->open_grant_table()) {
    const platform::DomId domids[] = {frontend.domid()};
    for (std::size_t page = 0; page < TestFrontend::kPages; ++page) {
      if (tx) add(domids, frontend.tx_page_ref(page), false);
      if (rx) add(domids, frontend.rx_page_ref(static_cast<std::uint16_t>(page)), true);
    }
    publish(entries_);
  }
  ~StaticMappings() {
    for (const GrefEntry& entry : entries_) grants_->unmap(entry.page, 1);
  }

  // A table with `entries` as the next generation.
  void publish(const std::vector<GrefEntry>& entries) {
    tables_.push_back(std::make_unique<GrefTable>(tables_.size() + 1, entries));
    handoff->publish(tables_.back().get());
  }
  std::uint64_t latest_generation() const { return tables_.back()->generation(); }

  std::shared_ptr<GrefHandoff> handoff = std::make_shared<GrefHandoff>();

 private:
  void add(std::span<const platform::DomId> domids, platform::GrantRef ref, bool writable) {
    const platform::GrantRef refs[] = {ref};
    entries_.push_back(
        {ref, writable, static_cast<std::uint8_t*>(grants_->map(domids, refs, writable))});
  }

  std::unique_ptr<platform::Platform> platform_;
  std::unique_ptr<platform::GrantTable> grants_;
  std::vector<GrefEntry> entries_;
  std::vector<std::unique_ptr<GrefTable>> tables_;
};

}  // namespace vifd::backend::testing
