#include "frontend/lib/bench/baselines.h"

#include <sys/mman.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace vifd::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::byte* map_touched(std::size_t bytes) {
  void* memory = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(), "mmap");
  }
  // Fault every page in now, so the measurement copies and does not fault.
  std::memset(memory, 0x5a, bytes);
  return static_cast<std::byte*>(memory);
}

// Slots start on cache-line boundaries, as ring buffers would.
std::size_t stride_for(std::size_t frame) {
  return (frame + 63) / 64 * 64;
}

BaselineResult make_result(const char* name, std::size_t frame, std::uint64_t frames,
                           double seconds) {
  BaselineResult result{name, frame, 0, 0};
  if (seconds > 0) {
    result.mpps = static_cast<double>(frames) / seconds / 1e6;
    result.gbit_per_sec =
        static_cast<double>(frames) * static_cast<double>(frame) * 8 / seconds / 1e9;
  }
  return result;
}

}  // namespace

std::size_t last_level_cache_bytes() {
  std::size_t largest = 0;
  for (int index = 0; index < 8; ++index) {
    std::ifstream file("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) +
                       "/size");
    std::string text;
    if (!(file >> text) || text.empty()) {
      continue;
    }
    std::size_t value = 0;
    std::size_t used = 0;
    try {
      value = std::stoul(text, &used);
    } catch (const std::exception&) {
      continue;
    }
    const char unit = used < text.size() ? text[used] : 'B';
    if (unit == 'K') {
      value <<= 10;
    }
    if (unit == 'M') {
      value <<= 20;
    }
    largest = std::max(largest, value);
  }
  return largest;
}

MemcpyBaseline::MemcpyBaseline(std::size_t buffer_bytes) : bytes_(buffer_bytes) {
  source_ = map_touched(bytes_);
  try {
    destination_ = map_touched(bytes_);
  } catch (...) {
    ::munmap(source_, bytes_);
    throw;
  }
}

MemcpyBaseline::~MemcpyBaseline() {
  ::munmap(source_, bytes_);
  ::munmap(destination_, bytes_);
}

BaselineResult MemcpyBaseline::run(std::size_t frame, std::chrono::duration<double> duration) {
  const std::size_t stride = stride_for(frame);
  const std::size_t slots = bytes_ / stride;
  std::uint64_t copies = 0;
  std::size_t slot = 0;
  const auto start = Clock::now();
  auto now = start;
  do {
    // The clock is read once per batch, not per copy.
    for (int i = 0; i < 64; ++i) {
      std::memcpy(destination_ + slot * stride, source_ + slot * stride, frame);
      if (++slot == slots) {
        slot = 0;
      }
    }
    copies += 64;
    now = Clock::now();
  } while (now - start < duration);
  return make_result("memcpy", frame, copies, std::chrono::duration<double>(now - start).count());
}

BaselineResult run_spsc_baseline(std::size_t frame, std::chrono::duration<double> duration) {
  constexpr std::size_t kRing = 256;  // a one-page netif ring's size
  const std::size_t stride = (frame + 4095) / 4096 * 4096;
  // The producer's pool (its granted pages) and the consumer's buffers.
  std::vector<std::byte> pool(kRing * stride, std::byte{0x5a});
  std::vector<std::byte> buffers(kRing * stride);
  struct Request {
    std::uint16_t id;
    std::uint16_t size;
  };
  std::array<Request, kRing> requests{};
  std::array<std::uint16_t, kRing> responses{};
  alignas(64) std::atomic<std::uint32_t> request_producer{0};
  alignas(64) std::atomic<std::uint32_t> response_producer{0};
  alignas(64) std::atomic<bool> stop{false};

  std::thread consumer([&] {
    std::uint32_t request_consumer = 0;
    std::uint32_t spins = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const std::uint32_t end = request_producer.load(std::memory_order_acquire);
      if (end == request_consumer) {
        if (++spins % 64 == 0) {
          std::this_thread::yield();
        }
        continue;
      }
      std::uint32_t responses_end = response_producer.load(std::memory_order_relaxed);
      for (; request_consumer != end; ++request_consumer) {
        const Request request = requests[request_consumer % kRing];
        std::memcpy(buffers.data() + request.id * stride, pool.data() + request.id * stride, frame);
        responses[responses_end++ % kRing] = request.id;
      }
      response_producer.store(responses_end, std::memory_order_release);
    }
  });

  std::vector<std::uint16_t> free_ids;
  for (std::size_t id = 0; id < kRing; ++id) {
    free_ids.push_back(static_cast<std::uint16_t>(id));
  }
  std::uint32_t produced = 0;
  std::uint32_t response_consumer = 0;
  std::uint32_t spins = 0;
  const auto start = Clock::now();
  auto now = start;
  std::uint64_t consumed_at_end = 0;
  while (true) {
    const std::uint32_t responses_end = response_producer.load(std::memory_order_acquire);
    for (; response_consumer != responses_end; ++response_consumer) {
      free_ids.push_back(responses[response_consumer % kRing]);
    }
    if (free_ids.empty()) {
      if (++spins % 64 == 0) {
        std::this_thread::yield();
      }
    } else {
      while (!free_ids.empty()) {
        requests[produced++ % kRing] = {free_ids.back(), static_cast<std::uint16_t>(frame)};
        free_ids.pop_back();
      }
      request_producer.store(produced, std::memory_order_release);
    }
    now = Clock::now();
    if (now - start >= duration) {
      // Frames answered by now: the consumer's count is read after the
      // acquire of its responses.
      consumed_at_end = response_consumer;
      break;
    }
  }
  stop.store(true, std::memory_order_relaxed);
  consumer.join();
  return make_result("spsc", frame, consumed_at_end,
                     std::chrono::duration<double>(now - start).count());
}

}  // namespace vifd::bench
