#include "backend/lib/datapath/gref_table.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <system_error>

namespace vifd::backend {

GrefTable::GrefTable(std::uint64_t generation, std::span<const GrefEntry> entries)
    : generation_(generation), size_(entries.size()) {
  if (entries.empty()) {
    return;
  }
  const std::size_t capacity = std::bit_ceil(entries.size() * 2);
  mask_ = capacity - 1;
  slots_.resize(capacity);
  for (const GrefEntry& entry : entries) {
    std::size_t i = hash(entry.ref) & mask_;
    while (slots_[i].page != nullptr) {
      i = (i + 1) & mask_;
    }
    slots_[i] = entry;
  }
}

GrefHandoff::GrefHandoff() {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "gref handoff eventfd");
  }
}

GrefHandoff::~GrefHandoff() {
  ::close(wake_fd_);
}

void GrefHandoff::publish(const GrefTable* table) noexcept {
  published_.store(table, std::memory_order_release);
  const std::uint64_t one = 1;
  // A full counter (never, at one write per publish) still leaves it readable.
  [[maybe_unused]] const ssize_t written = ::write(wake_fd_, &one, sizeof(one));
}

void GrefHandoff::consume_wake() noexcept {
  std::uint64_t value = 0;
  [[maybe_unused]] const ssize_t got = ::read(wake_fd_, &value, sizeof(value));
}

}  // namespace vifd::backend
