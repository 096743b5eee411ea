#include "frontend/lib/bench/netfront_port.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace vifd::bench {

NetfrontPort::NetfrontPort(platform::Platform& platform, xs::Client xenstore, std::uint32_t devid,
                           unsigned queues, bool static_grants, std::chrono::milliseconds timeout)
    : name_(fmt::format("netfront dom{} vif {}", platform.self_domid(), devid)),
      watcher_(xs::Client::open(platform.xenstore_socket())),
      front_(platform, std::move(xenstore),
             frontend::NetfrontOptions{devid, queues, {}, true, static_grants}) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  front_.process_xenstore();
  while (!front_.backend_connected()) {
    if (front_.state() == frontend::NetfrontState::kFailed) {
      throw std::runtime_error(fmt::format("{}: {}", front_.path(), front_.error()));
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      throw std::runtime_error(fmt::format("{}: backend not Connected within {} ms (we are {})",
                                           front_.path(), timeout.count(),
                                           frontend::to_string(front_.state())));
    }
    pollfd entry{front_.xenstore_fd(), POLLIN, 0};
    ::poll(&entry, 1, static_cast<int>(std::min<long>(left.count(), 50)));
    front_.process_xenstore();
  }
}

NetfrontPort::~NetfrontPort() {
  front_.close(std::chrono::milliseconds(2000));
}

std::string NetfrontPort::name() const {
  return name_;
}

void NetfrontPort::check_alive() {
  if (front_.check_failed() || !front_.connected()) {
    throw std::runtime_error(fmt::format("{}: {}", front_.path(),
                                         front_.error().empty() ? "disconnected" : front_.error()));
  }
}

void NetfrontPort::fill(std::span<const std::span<std::uint8_t>> pages, const Frame& frame,
                        std::uint64_t id) {
  std::size_t done = 0;
  for (std::size_t slot = 0; slot < pages.size() && done < frame.bytes.size(); ++slot) {
    const std::size_t bytes = std::min(pages[slot].size(), frame.bytes.size() - done);
    const std::uint64_t tag = id * 64 + slot;
    // The first page carries the sequence number: always written.
    if (slot == 0 || primed_[pages[slot].data()] != tag) {
      std::memcpy(pages[slot].data(), frame.bytes.data() + done, bytes);
      if (slot > 0) {
        primed_[pages[slot].data()] = tag;
      }
    }
    done += bytes;
  }
}

std::size_t NetfrontPort::send(std::span<Frame> frames, std::size_t budget) {
  check_alive();
  const std::size_t queues = front_.queue_count();
  std::size_t sent = 0;
  for (std::size_t turn = 0; turn < queues && sent < budget; ++turn) {
    const std::size_t q = next_queue_++ % queues;
    auto& queue = front_.queue(q);
    Frame& frame = frames[q % frames.size()];
    std::size_t queued = 0;
    while (sent < budget && queue.tx_can_reserve(frame.bytes.size())) {
      const auto pages = queue.reserve_tx(frame.bytes.size());
      if (pages.empty()) {
        break;
      }
      fill(pages, frame, frame.id);
      const frontend::TxStatus status = queue.commit_tx(frame.bytes.size(), frame.meta);
      if (status != frontend::TxStatus::kOk) {
        throw std::runtime_error(fmt::format("{} queue {}: frame of {} bytes refused: {}",
                                             front_.path(), q, frame.bytes.size(),
                                             frontend::to_string(status)));
      }
      ++sent;
      ++queued;
      ++counts_.sent_packets;
      counts_.sent_bytes += frame.bytes.size();
    }
    if (queued > 0) {
      queue.flush_tx();
    }
  }
  return sent;
}

void NetfrontPort::receive() {
  check_alive();
  const auto handler = [this](const frontend::RxFrame& frame) {
    count_received(frame.segments.empty() ? std::span<const std::uint8_t>() : frame.segments[0],
                   frame.length);
  };
  for (std::size_t q = 0; q < front_.queue_count(); ++q) {
    for (int round = 0; round < 16; ++round) {
      if (!front_.queue(q).poll(handler).more_work) {
        break;
      }
    }
  }
  check_alive();
}

void NetfrontPort::wait_fds(std::vector<pollfd>& fds) {
  for (std::size_t q = 0; q < front_.queue_count(); ++q) {
    fds.push_back({front_.queue(q).event_fd(), POLLIN, 0});
  }
}

}  // namespace vifd::bench
