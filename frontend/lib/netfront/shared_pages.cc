#include "frontend/lib/netfront/shared_pages.h"

#include <spdlog/spdlog.h>

#include <exception>

namespace vifd::frontend {

SharedPages::SharedPages(platform::GrantShare& share, platform::DomId domid, std::size_t count,
                         bool writable)
    : share_(share), refs_(count) {
  base_ = static_cast<std::byte*>(share_.share(domid, refs_, writable));
}

SharedPages::~SharedPages() {
  try {
    // gntalloc semantics: a page the backend still maps is freed only when
    // it unmaps, so ending the grants here is safe even mid-teardown.
    share_.unshare(base_, refs_.size());
  } catch (const std::exception& error) {
    spdlog::error("vif-front: cannot unshare {} pages: {}", refs_.size(), error.what());
  }
}

}  // namespace vifd::frontend
