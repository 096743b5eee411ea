#include "backend/lib/datapath/switch.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

namespace vifd::backend {

namespace {

constexpr std::uint64_t kPinnedFlag = 0x8000;
constexpr std::uint64_t kTagBits = kMaxPortTag;

PortTag tag_of(std::uint64_t entry) noexcept {
  return static_cast<PortTag>(entry & kTagBits);
}
bool is_pinned(std::uint64_t entry) noexcept {
  return (entry & kPinnedFlag) != 0;
}

std::uint64_t mac48(std::span<const std::uint8_t, 6> mac) noexcept {
  std::uint64_t value = 0;
  for (const std::uint8_t octet : mac) {
    value = value << 8 | octet;
  }
  return value;
}

// The inbox sizes boost::lockfree accepts with fixed_sized nodes.
std::size_t checked_capacity(std::size_t capacity, const char* what) {
  if (capacity == 0 || capacity >= 65535) {
    throw std::invalid_argument(std::string("switch endpoint: ") + what + " capacity " +
                                std::to_string(capacity) + " outside 1..65534");
  }
  return capacity;
}

}  // namespace

SwitchEndpoint::SwitchEndpoint(platform::DomId domid, std::uint32_t devid,
                               std::uint32_t queue_index, const VifFeatures& features,
                               std::size_t inbox_capacity, std::size_t completion_capacity,
                               std::shared_ptr<const FlowSteering> steering)
    : domid_(domid),
      devid_(devid),
      queue_index_(queue_index),
      features_(features),
      steering_(std::move(steering)),
      frames_(checked_capacity(inbox_capacity, "inbox")),
      completions_(checked_capacity(completion_capacity, "completion")) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    throw std::system_error(errno, std::generic_category(),
                            "eventfd for switch endpoint of domain " + std::to_string(domid) +
                                " vif " + std::to_string(devid) + " queue " +
                                std::to_string(queue_index));
  }
}

SwitchEndpoint::~SwitchEndpoint() {
  ::close(wake_fd_);
}

void SwitchEndpoint::wake() noexcept {
  const std::uint64_t one = 1;
  // EAGAIN means the counter is saturated: the reader is awake anyway.
  [[maybe_unused]] const ssize_t written = ::write(wake_fd_, &one, sizeof(one));
}

void SwitchEndpoint::wake_if_sleeping() noexcept {
  // Pairs with arm_wake(): the push before this exchange is seen by the
  // owner's look at the inboxes after its own exchange, or this one reads
  // true and writes.
  if (sleeping_.exchange(false, std::memory_order_seq_cst)) {
    wake();
  }
}

bool SwitchEndpoint::arm_wake() noexcept {
  sleeping_.exchange(true, std::memory_order_seq_cst);
  return frames_.empty() && completions_.empty();
}

void SwitchEndpoint::consume_wake() noexcept {
  std::uint64_t value = 0;
  [[maybe_unused]] const ssize_t got = ::read(wake_fd_, &value, sizeof(value));
}

bool SwitchEndpoint::push_frame(const ForwardDescriptor& frame) noexcept {
  // Announce the push before looking at closed_: close_inbox() sets closed_
  // and then waits for pushers_ to drain, so (seq_cst on both sides) either
  // we see closed_ or the closer sees our push and waits for it.
  pushers_.fetch_add(1, std::memory_order_seq_cst);
  bool pushed = false;
  if (!closed_.load(std::memory_order_seq_cst)) {
    pushed = frames_.bounded_push(frame);
  }
  pushers_.fetch_sub(1, std::memory_order_release);
  return pushed;
}

bool SwitchEndpoint::pop_frame(ForwardDescriptor& frame) noexcept {
  return frames_.pop(frame);
}

void SwitchEndpoint::close_inbox() noexcept {
  closed_.store(true, std::memory_order_seq_cst);
  // A pusher holds the count only across one bounded_push: never blocks.
  while (pushers_.load(std::memory_order_acquire) != 0) {
    std::this_thread::yield();
  }
}

void SwitchEndpoint::post_completions(std::span<const ForwardCompletion> completions) noexcept {
  if (completions.empty()) {
    return;
  }
  for (const ForwardCompletion& completion : completions) {
    // Cannot fail: at most `outstanding` completions exist and the queue
    // holds the sender's whole TX ring.
    [[maybe_unused]] const bool pushed = completions_.bounded_push(completion);
  }
  wake_if_sleeping();
  // Last access: after this the sender may see zero and be destroyed.
  outstanding_.fetch_sub(static_cast<std::uint32_t>(completions.size()), std::memory_order_release);
}

bool SwitchEndpoint::pop_completion(ForwardCompletion& completion) noexcept {
  return completions_.pop(completion);
}

const Switch::Port* Switch::Topology::find(PortTag tag) const noexcept {
  for (const Port& port : ports) {
    if (port.tag == tag) {
      return &port;
    }
  }
  return nullptr;
}

Switch::Switch(std::string name)
    : name_(std::move(name)), topology_(std::make_shared<const Topology>()) {}

Switch::~Switch() = default;

void Switch::publish(std::shared_ptr<const Topology> next) {
  topology_.store(std::move(next));
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

PortTag Switch::attach(std::shared_ptr<SwitchEndpoint> endpoint,
                       const protocol::MacAddress& guest_mac) {
  std::lock_guard lock(control_mutex_);
  auto next = std::make_shared<Topology>(*topology_.load());
  Port* port = nullptr;
  for (Port& candidate : next->ports) {
    if (candidate.domid == endpoint->domid() && candidate.devid == endpoint->devid()) {
      port = &candidate;
    }
  }
  if (port == nullptr) {
    Port fresh;
    if (next->ports.size() >= kMaxPortTag) {
      throw std::invalid_argument("switch " + name_ + ": " + std::to_string(kMaxPortTag) +
                                  " ports already");
    }
    // Skip 0 and tags still in use after a wrap.
    while (next_tag_ == 0 || next_tag_ > kMaxPortTag || next->find(next_tag_) != nullptr) {
      next_tag_ = static_cast<PortTag>(next_tag_ > kMaxPortTag ? 1 : next_tag_ + 1);
    }
    fresh.tag = next_tag_++;
    fresh.domid = endpoint->domid();
    fresh.devid = endpoint->devid();
    fresh.features = endpoint->features();
    fresh.steering = endpoint->steering();
    fresh.taps = std::make_shared<CaptureTaps>();
    next->ports.push_back(std::move(fresh));
    port = &next->ports.back();
  }
  for (const auto& queue : port->queues) {
    if (queue->queue_index() == endpoint->queue_index()) {
      throw std::invalid_argument("switch " + name_ + ": domain " +
                                  std::to_string(endpoint->domid()) + " vif " +
                                  std::to_string(endpoint->devid()) + " queue " +
                                  std::to_string(endpoint->queue_index()) + " already attached");
    }
  }
  // Before the topology that names the endpoint is published: every thread
  // that can reach the endpoint sees its taps.
  endpoint->taps_ = port->taps;
  port->queues.push_back(std::move(endpoint));
  const PortTag tag = port->tag;
  if (!guest_mac.is_zero()) {
    pin(guest_mac, tag);
  }
  publish(std::move(next));
  return tag;
}

void Switch::detach(const SwitchEndpoint& endpoint) {
  std::lock_guard lock(control_mutex_);
  auto next = std::make_shared<Topology>(*topology_.load());
  for (auto port = next->ports.begin(); port != next->ports.end(); ++port) {
    if (port->domid != endpoint.domid() || port->devid != endpoint.devid()) {
      continue;
    }
    std::erase_if(port->queues, [&](const auto& queue) { return queue.get() == &endpoint; });
    if (port->queues.empty()) {
      // The vif went away: its captures end (their readers are told so).
      withdraw(*port->taps, nullptr);
      forget(port->tag);
      next->ports.erase(port);
    }
    break;
  }
  publish(std::move(next));
}

void Switch::forget(PortTag tag) noexcept {
  for (auto& bucket : mac_table_) {
    std::uint64_t value = bucket.load(std::memory_order_relaxed);
    if (value != 0 && tag_of(value) == tag) {
      bucket.compare_exchange_strong(value, 0, std::memory_order_acq_rel);
    }
  }
  // The port's queues have stopped learning: nothing races with this.
  learned_[tag & kTagBits].store(0, std::memory_order_relaxed);
}

std::size_t Switch::port_count() const {
  return topology_.load()->ports.size();
}

void Switch::wake_all() const {
  const auto topology = topology_.load();
  for (const Port& port : topology->ports) {
    for (const auto& queue : port.queues) {
      queue->wake();
    }
  }
}

void Switch::start_capture(platform::DomId domid, std::uint32_t devid, CaptureRing& ring) {
  std::lock_guard lock(control_mutex_);
  const auto topology = topology_.load();
  for (const Port& port : topology->ports) {
    if (port.domid != domid || port.devid != devid) {
      continue;
    }
    for (auto& slot : port.taps->rings) {
      CaptureRing* expected = nullptr;
      if (slot.compare_exchange_strong(expected, &ring, std::memory_order_seq_cst)) {
        captures_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    throw std::invalid_argument("vif" + std::to_string(domid) + "." + std::to_string(devid) +
                                " is already being captured " +
                                std::to_string(CaptureTaps::kMaxPerPort) + " times");
  }
  throw std::invalid_argument("vif" + std::to_string(domid) + "." + std::to_string(devid) +
                              " is not connected to switch " + name_);
}

void Switch::stop_capture(const CaptureRing& ring) noexcept {
  std::lock_guard lock(control_mutex_);
  const auto topology = topology_.load();
  for (const Port& port : topology->ports) {
    withdraw(*port.taps, &ring);
  }
}

std::size_t Switch::capture_count(platform::DomId domid, std::uint32_t devid) const {
  std::lock_guard lock(control_mutex_);
  const auto topology = topology_.load();
  std::size_t count = 0;
  for (const Port& port : topology->ports) {
    if (port.domid != domid || port.devid != devid) {
      continue;
    }
    for (const auto& slot : port.taps->rings) {
      if (slot.load(std::memory_order_relaxed) != nullptr) {
        ++count;
      }
    }
  }
  return count;
}

void Switch::withdraw(CaptureTaps& taps, const CaptureRing* only) noexcept {
  std::array<CaptureRing*, CaptureTaps::kMaxPerPort> withdrawn{};
  std::size_t count = 0;
  for (auto& slot : taps.rings) {
    CaptureRing* ring = slot.load(std::memory_order_seq_cst);
    if (ring == nullptr || (only != nullptr && ring != only)) {
      continue;
    }
    slot.store(nullptr, std::memory_order_seq_cst);
    captures_.fetch_sub(1, std::memory_order_relaxed);
    withdrawn[count++] = ring;
  }
  if (count == 0) {
    return;
  }
  // A producer holds `users` across one frame's reservation, copy and
  // commit: never blocks, so this wait is short.
  while (taps.users.load(std::memory_order_seq_cst) != 0) {
    std::this_thread::yield();
  }
  // The port went away: the capture's reader learns it from the ring, and
  // may free it once it does.
  if (only == nullptr) {
    for (std::size_t i = 0; i < count; ++i) {
      withdrawn[i]->close();
    }
  }
}

std::size_t Switch::bucket_of(std::uint64_t mac) noexcept {
  // Fibonacci hashing: the top bits of mac * 2^64/phi.
  return static_cast<std::size_t>((mac * 0x9E3779B97F4A7C15ULL) >> 52) & (kMacBuckets - 1);
}

void Switch::release_entry(std::uint64_t old) noexcept {
  if (old == 0 || is_pinned(old)) {
    return;
  }
  // Saturating: a count must not wrap to "full" if a race ever left it
  // short.
  auto& learned = learned_[tag_of(old)];
  std::uint16_t count = learned.load(std::memory_order_relaxed);
  while (count != 0 && !learned.compare_exchange_weak(count, static_cast<std::uint16_t>(count - 1),
                                                      std::memory_order_relaxed)) {
  }
}

bool Switch::pinned_anywhere(std::uint64_t key) const noexcept {
  const std::size_t home = bucket_of(key);
  for (std::size_t i = 0; i < kMacProbe; ++i) {
    const std::uint64_t value =
        mac_table_[(home + i) & (kMacBuckets - 1)].load(std::memory_order_seq_cst);
    if (value >> 16 == key && is_pinned(value)) {
      return true;
    }
  }
  return false;
}

void Switch::pin(const protocol::MacAddress& mac, PortTag tag) noexcept {
  const std::uint64_t key = mac48(std::span<const std::uint8_t, 6>(mac.octets));
  const std::uint64_t wanted = key << 16 | kPinnedFlag | tag;
  const std::size_t home = bucket_of(key);
  const auto bucket_at = [&](std::size_t i) -> auto& {
    return mac_table_[(home + i) & (kMacBuckets - 1)];
  };
  bool placed = false;
  // Learned entries for this MAC give way (one learned before this vif
  // came is a spoof or stale). Two vifs configured with one MAC: the first
  // keeps it.
  for (std::size_t i = 0; i < kMacProbe; ++i) {
    std::uint64_t value = bucket_at(i).load(std::memory_order_seq_cst);
    if (value == 0 || value >> 16 != key) {
      continue;
    }
    if (is_pinned(value)) {
      return;
    }
    if (!placed && bucket_at(i).compare_exchange_strong(value, wanted, std::memory_order_seq_cst)) {
      release_entry(value);
      placed = true;
    } else if (placed &&
               bucket_at(i).compare_exchange_strong(value, 0, std::memory_order_seq_cst)) {
      release_entry(value);
    }
  }
  if (placed) {
    return;
  }
  // Then a free bucket, then a learned entry of any port: the configured
  // MAC outranks whatever was learned.
  for (const bool evict : {false, true}) {
    for (std::size_t i = 0; i < kMacProbe; ++i) {
      std::uint64_t value = bucket_at(i).load(std::memory_order_seq_cst);
      if (evict ? (value == 0 || is_pinned(value)) : value != 0) {
        continue;
      }
      if (bucket_at(i).compare_exchange_strong(value, wanted, std::memory_order_seq_cst)) {
        release_entry(value);
        return;
      }
    }
  }
  // A neighbourhood of pinned MACs only: this one stays out of the table and
  // frames to it take the TAP.
}

LearnResult Switch::learn(std::span<const std::uint8_t, 6> mac, PortTag tag) noexcept {
  if ((mac[0] & 0x01U) != 0 || tag == 0 || tag > kMaxPortTag) {
    return LearnResult::kNotLearned;
  }
  const std::uint64_t key = mac48(mac);
  const std::uint64_t wanted = key << 16 | tag;
  const std::size_t home = bucket_of(key);
  const auto bucket_at = [&](std::size_t i) -> auto& {
    return mac_table_[(home + i) & (kMacBuckets - 1)];
  };
  auto& learned = learned_[tag];
  // Known MAC: read-only in the common case, so the cache line stays shared
  // between queue threads.
  for (std::size_t i = 0; i < kMacProbe; ++i) {
    std::uint64_t value = bucket_at(i).load(std::memory_order_acquire);
    if (value == 0 || value >> 16 != key) {
      continue;
    }
    if (is_pinned(value)) {
      return tag_of(value) == tag ? LearnResult::kLearned : LearnResult::kPinnedElsewhere;
    }
    if (tag_of(value) == tag) {
      return LearnResult::kLearned;
    }
    // Moved from another learning port.
    if (learned.load(std::memory_order_relaxed) >= kMaxLearnedPerPort) {
      return LearnResult::kNotLearned;
    }
    if (bucket_at(i).compare_exchange_strong(value, wanted, std::memory_order_acq_rel)) {
      release_entry(value);
      learned.fetch_add(1, std::memory_order_relaxed);
    }
    return LearnResult::kLearned;
  }
  if (learned.load(std::memory_order_relaxed) >= kMaxLearnedPerPort) {
    return LearnResult::kNotLearned;
  }
  // A free bucket first; with none, evict another learned entry, never a
  // pinned one (a port can evict at most its own bound's worth).
  for (const bool evict : {false, true}) {
    for (std::size_t i = 0; i < kMacProbe; ++i) {
      auto& bucket = bucket_at(i);
      std::uint64_t value = bucket.load(std::memory_order_seq_cst);
      if (evict ? (value == 0 || is_pinned(value)) : value != 0) {
        continue;
      }
      if (!bucket.compare_exchange_strong(value, wanted, std::memory_order_seq_cst)) {
        if (value >> 16 == key) {  // another queue recorded it meanwhile
          return is_pinned(value) && tag_of(value) != tag ? LearnResult::kPinnedElsewhere
                                                          : LearnResult::kLearned;
        }
        continue;
      }
      release_entry(value);
      learned.fetch_add(1, std::memory_order_relaxed);
      // pin() may have run meanwhile: its scan saw our entry (and replaced
      // it) or we see its pinned one now and withdraw ours.
      if (pinned_anywhere(key)) {
        std::uint64_t ours = wanted;
        if (bucket.compare_exchange_strong(ours, 0, std::memory_order_seq_cst)) {
          learned.fetch_sub(1, std::memory_order_relaxed);
        }
        return LearnResult::kPinnedElsewhere;
      }
      return LearnResult::kLearned;
    }
  }
  return LearnResult::kNotLearned;
}

PortTag Switch::lookup(std::span<const std::uint8_t, 6> mac) const noexcept {
  const std::uint64_t key = mac48(mac);
  const std::size_t home = bucket_of(key);
  PortTag found = 0;
  for (std::size_t i = 0; i < kMacProbe; ++i) {
    const std::uint64_t value =
        mac_table_[(home + i) & (kMacBuckets - 1)].load(std::memory_order_acquire);
    if (value == 0 || value >> 16 != key) {
      continue;
    }
    // While pin() and learn() race a MAC can sit in two buckets for a
    // moment; the pinned one is the truth.
    if (is_pinned(value)) {
      return tag_of(value);
    }
    if (found == 0) {
      found = tag_of(value);
    }
  }
  return found;
}

std::size_t Switch::learned_count(PortTag tag) const noexcept {
  return tag > kMaxPortTag ? 0 : learned_[tag].load(std::memory_order_relaxed);
}

}  // namespace vifd::backend
