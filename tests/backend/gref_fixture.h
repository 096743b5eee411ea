// GrefControl against a vif-sim host: the frontend (domain 1) shares a list
// page and data pages with dom0; the test plays each queue thread (it
// acknowledges tables through the handoffs).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/lib/control/gref_control.h"
#include "common/platform/sim/sim_host.h"
#include "tests/backend/control_harness.h"

namespace vifd::backend::testing {

class GrefControlTest : public ControlPlaneTest {
 protected:
  static constexpr std::size_t kDataPages = 16;

  void SetUp() override {
    ControlPlaneTest::SetUp();
    backend_platform_ = host().platform(0);
    frontend_platform_ = host().platform(1);
    copier_ = backend_platform_->open_grant_table();
    share_ = frontend_platform_->open_grant_share();
    list_page_ = share_->share(0, std::span(&list_ref_, 1), true);
    data_refs_.resize(kDataPages);
    data_pages_ = share_->share(0, data_refs_, true);
  }
  void TearDown() override {
    control_.reset();
    if (list_page_ != nullptr) {
      share_->unshare(list_page_, 1);
    }
    if (data_pages_ != nullptr) {
      share_->unshare(data_pages_, kDataPages);
    }
  }

  void start(unsigned queues = 2) {
    handoffs_.clear();
    for (unsigned i = 0; i < queues; ++i) {
      handoffs_.push_back(std::make_shared<GrefHandoff>());
    }
    control_ = std::make_unique<GrefControl>(*backend_platform_, *copier_, 1, handoffs_);
  }

  protocol::StaticGrant* list() { return static_cast<protocol::StaticGrant*>(list_page_); }
  std::uint8_t* data_page(std::size_t i) {
    return static_cast<std::uint8_t*>(data_pages_) + i * platform::kPageSize;
  }
  // Writes the list page: these refs, flags 0 (writable).
  void write_list(const std::vector<platform::GrantRef>& refs, std::uint16_t flags = 0) {
    for (std::size_t i = 0; i < refs.size(); ++i) {
      list()[i] = {refs[i], flags, 0xFFFF};
    }
  }
  std::vector<platform::GrantRef> data_refs(std::size_t first, std::size_t count) const {
    return {data_refs_.begin() + static_cast<std::ptrdiff_t>(first),
            data_refs_.begin() + static_cast<std::ptrdiff_t>(first + count)};
  }

  protocol::CtrlResponse send(std::uint16_t type, std::uint32_t queue, std::uint32_t ref = 0,
                              std::uint32_t count = 0) {
    protocol::CtrlRequest request{};
    request.id = ++id_;
    request.type = type;
    request.data[0] = queue;
    request.data[1] = ref;
    request.data[2] = count;
    const auto response = control_->handle(request);
    EXPECT_EQ(response.id, request.id);
    EXPECT_EQ(response.type, type);
    return response;
  }
  protocol::CtrlResponse add(std::uint32_t queue, const std::vector<platform::GrantRef>& refs,
                             std::uint16_t flags = 0) {
    write_list(refs, flags);
    return send(XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING, queue, list_ref_,
                static_cast<std::uint32_t>(refs.size()));
  }
  protocol::CtrlResponse del(std::uint32_t queue, const std::vector<platform::GrantRef>& refs) {
    write_list(refs);
    return send(XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING, queue, list_ref_,
                static_cast<std::uint32_t>(refs.size()));
  }
  // What queue `i`'s thread does at the top of a turn.
  void queue_acknowledges(std::size_t i) {
    const GrefTable* table = handoffs_[i]->latest();
    ASSERT_NE(table, nullptr);
    handoffs_[i]->acknowledge(table->generation());
  }
  sim::HypercallCounters dom0() const { return sim::read_counters(host_->dir(), 0); }

  std::unique_ptr<platform::Platform> backend_platform_;
  std::unique_ptr<platform::Platform> frontend_platform_;
  std::unique_ptr<platform::GrantTable> copier_;
  std::unique_ptr<platform::GrantShare> share_;
  platform::GrantRef list_ref_ = 0;
  void* list_page_ = nullptr;
  std::vector<platform::GrantRef> data_refs_;
  void* data_pages_ = nullptr;
  std::vector<std::shared_ptr<GrefHandoff>> handoffs_;
  std::unique_ptr<GrefControl> control_;
  std::uint16_t id_ = 0;
};

}  // namespace vifd::backend::testing
