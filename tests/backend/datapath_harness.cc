#include "tests/backend/datapath_harness.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <thread>

#include "common/platform/sim/sim_host.h"
#include "common/platform/sim/sim_platform.h"

namespace vifd::backend::testing {

using protocol::RxRequest;
using protocol::RxResponse;
using protocol::TxRequest;
using protocol::TxResponse;

SimHost::SimHost(std::initializer_list<platform::DomId> domains) {
  char pattern[] = "/tmp/vifd-dp-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) {
    throw std::runtime_error("mkdtemp");
  }
  dir_ = pattern;
  sim::create_host(dir_);
  for (const platform::DomId domid : domains) {
    sim::create_domain(dir_, domid);
  }
}

SimHost::~SimHost() {
  sim::destroy_host(dir_);
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::unique_ptr<platform::Platform> SimHost::join(platform::DomId domid) const {
  return platform::make_sim_platform(dir_.native(), domid);
}

FakeTap::FakeTap() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  queue_end_ = fds[0];
  host_end_ = fds[1];
}

FakeTap::~FakeTap() {
  ::close(queue_end_);
  ::close(host_end_);
}

std::vector<std::uint8_t> FakeTap::receive(net::VirtioNetHdr* header) {
  pollfd p{host_end_, POLLIN, 0};
  if (::poll(&p, 1, 10000) != 1) {
    return {};
  }
  std::vector<std::uint8_t> datagram(70000);
  const ssize_t n = ::recv(host_end_, datagram.data(), datagram.size(), 0);
  if (n < static_cast<ssize_t>(net::kVirtioNetHdrSize)) {
    return {};
  }
  if (header != nullptr) {
    std::memcpy(header, datagram.data(), net::kVirtioNetHdrSize);
  }
  return {datagram.begin() + net::kVirtioNetHdrSize, datagram.begin() + n};
}

bool FakeTap::has_frame() const {
  pollfd p{host_end_, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

void FakeTap::send(std::span<const std::uint8_t> frame, const net::VirtioNetHdr& header) {
  std::vector<std::uint8_t> datagram(net::kVirtioNetHdrSize + frame.size());
  std::memcpy(datagram.data(), &header, net::kVirtioNetHdrSize);
  std::copy(frame.begin(), frame.end(), datagram.begin() + net::kVirtioNetHdrSize);
  send_raw(datagram);
}

void FakeTap::send_raw(std::span<const std::uint8_t> datagram) {
  EXPECT_EQ(::send(host_end_, datagram.data(), datagram.size(), 0),
            static_cast<ssize_t>(datagram.size()));
}

bool FakeTap::send_when_room(std::span<const std::uint8_t> frame, const net::VirtioNetHdr& header) {
  std::vector<std::uint8_t> datagram(net::kVirtioNetHdrSize + frame.size());
  std::memcpy(datagram.data(), &header, net::kVirtioNetHdrSize);
  std::copy(frame.begin(), frame.end(), datagram.begin() + net::kVirtioNetHdrSize);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    const ssize_t sent = ::send(host_end_, datagram.data(), datagram.size(), 0);
    if (sent == static_cast<ssize_t>(datagram.size())) {
      return true;
    }
    if (sent >= 0 || errno != EAGAIN) {
      return false;
    }
    pollfd p{host_end_, POLLOUT, 0};
    ::poll(&p, 1, 100);
  }
  return false;
}

TestFrontend::TestFrontend(const SimHost& host, platform::DomId domid)
    : domid_(domid), platform_(host.join(domid)) {
  share_ = platform_->open_grant_share();
  events_ = platform_->open_event_channels();
  platform::GrantRef ref = 0;
  tx_ring_ = share_->share(0, std::span(&ref, 1), true);
  tx_ring_ref_ = ref;
  rx_ring_ = share_->share(0, std::span(&ref, 1), true);
  rx_ring_ref_ = ref;
  tx_refs_.resize(kPages);
  rx_refs_.resize(kPages);
  // The backend only reads TX buffers and only writes RX buffers.
  tx_pages_ = share_->share(0, tx_refs_, false);
  rx_pages_ = share_->share(0, rx_refs_, true);
  tx_.emplace(protocol::TxFrontRing::init(
      std::span(static_cast<std::byte*>(tx_ring_), protocol::kPageSize)));
  rx_.emplace(protocol::RxFrontRing::init(
      std::span(static_cast<std::byte*>(rx_ring_), protocol::kPageSize)));
  port_ = events_->bind_unbound(0);
}

TestFrontend::~TestFrontend() {
  share_->unshare(tx_ring_, 1);
  share_->unshare(rx_ring_, 1);
  share_->unshare(tx_pages_, kPages);
  share_->unshare(rx_pages_, kPages);
}

std::uint8_t* TestFrontend::tx_page(std::size_t page) const {
  return static_cast<std::uint8_t*>(tx_pages_) + page * protocol::kPageSize;
}

void TestFrontend::notify() {
  EXPECT_EQ(events_->notify(port_), 0);
}

void TestFrontend::publish_tx() {
  if (tx_->push_requests_and_check_notify()) {
    events_->notify(port_);
  }
}

std::vector<std::uint16_t> TestFrontend::send_frame(std::span<const std::uint8_t> frame,
                                                    std::uint16_t flags,
                                                    const protocol::ExtraInfo* extra,
                                                    std::size_t slot_bytes) {
  // A fixed array: g++ 12 reports a bogus -Warray-bounds for vector growth here.
  std::array<TxRequest, 64> requests{};
  std::size_t count = 0;
  std::vector<std::uint16_t> ids;
  std::size_t position = 0;
  do {
    const std::size_t chunk = std::min(slot_bytes, frame.size() - position);
    const std::size_t page = next_tx_page_++ % kPages;
    std::memcpy(tx_page(page), frame.data() + position, chunk);
    TxRequest request{};
    request.gref = tx_refs_[page];
    request.offset = 0;
    request.id = next_tx_id_++;
    request.size = static_cast<std::uint16_t>(position == 0 ? frame.size() : chunk);
    request.flags = position == 0 ? flags : 0;
    position += chunk;
    if (position < frame.size()) {
      request.flags |= protocol::kTxfMoreData;
    }
    ids.push_back(request.id);
    requests.at(count++) = request;
    if (count == 1 && extra != nullptr) {
      requests[0].flags |= protocol::kTxfExtraInfo;
      TxRequest slot{};
      std::memcpy(&slot, extra, sizeof(*extra));
      requests.at(count++) = slot;
    }
  } while (position < frame.size());
  push_raw(std::span(requests.data(), count));
  return ids;
}

void TestFrontend::push_raw(std::span<const TxRequest> requests) {
  EXPECT_EQ(tx_->push_requests(requests), requests.size());
  publish_tx();
}

std::vector<TxResponse> TestFrontend::wait_tx_responses(std::size_t count) {
  std::vector<TxResponse> responses;
  eventually([&] {
    TxResponse response{};
    while (tx_->take_responses(std::span(&response, 1)).count == 1) {
      responses.push_back(response);
    }
    return responses.size() >= count;
  });
  return responses;
}

void TestFrontend::post_rx(std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint16_t id = next_rx_id_++ % kPages;
    RxRequest request{};
    request.id = id;
    request.gref = rx_refs_[id];
    EXPECT_TRUE(rx_->push_request(request));
  }
  if (rx_->push_requests_and_check_notify()) {
    events_->notify(port_);
  }
}

std::vector<RxResponse> TestFrontend::wait_rx_responses(std::size_t count) {
  std::vector<RxResponse> responses;
  eventually([&] {
    RxResponse response{};
    while (rx_->take_responses(std::span(&response, 1)).count == 1) {
      responses.push_back(response);
    }
    return responses.size() >= count;
  });
  return responses;
}

const std::uint8_t* TestFrontend::rx_page(std::uint16_t id) const {
  return static_cast<const std::uint8_t*>(rx_pages_) + std::size_t{id} * protocol::kPageSize;
}

std::vector<std::vector<std::uint8_t>> TestFrontend::frames_of(
    std::span<const RxResponse> responses) const {
  std::vector<std::vector<std::uint8_t>> frames;
  bool in_frame = false;
  bool extra_next = false;
  for (const RxResponse& response : responses) {
    if (extra_next) {  // the slots after a first slot with extra_info
      protocol::ExtraInfo extra{};
      std::memcpy(&extra, &response, sizeof(extra));
      extra_next = (extra.flags & protocol::kExtraFlagMore) != 0;
      continue;
    }
    if (!in_frame) {
      frames.emplace_back();
    }
    if (response.status > 0) {
      const std::uint8_t* page = rx_page(response.id) + response.offset;
      frames.back().insert(frames.back().end(), page, page + response.status);
    }
    if (!in_frame && (response.flags & protocol::kRxfExtraInfo) != 0) {
      extra_next = true;
    }
    in_frame = (response.flags & protocol::kRxfMoreData) != 0;
  }
  return frames;
}

BackendQueue::BackendQueue(const SimHost& host, TestFrontend& frontend, const QueueOptions& options)
    : frontend_(&frontend), platform_(host.join(0)) {
  ring_grants_ = platform_->open_grant_table();
  const std::array<platform::DomId, 1> domids{frontend.domid()};
  const std::array<platform::GrantRef, 1> tx_ref{frontend.tx_ring_ref()};
  const std::array<platform::GrantRef, 1> rx_ref{frontend.rx_ring_ref()};
  tx_ring_ = ring_grants_->map(domids, tx_ref, true);
  rx_ring_ = ring_grants_->map(domids, rx_ref, true);
  QueueSetup setup;
  setup.frontend_domid = frontend.domid();
  setup.devid = 0;
  setup.queue_index = 0;
  setup.tx_shared_ring = std::span(static_cast<std::byte*>(tx_ring_), protocol::kPageSize);
  setup.rx_shared_ring = std::span(static_cast<std::byte*>(rx_ring_), protocol::kPageSize);
  setup.events = platform_->open_event_channels();
  setup.tx_port = setup.events->bind_interdomain(frontend.domid(), frontend.port());
  setup.rx_port = setup.tx_port;
  if (options.wrap_events) {
    setup.events = options.wrap_events(std::move(setup.events));
  }
  setup.grants = platform_->open_grant_table();
  if (options.grant_faults) {
    setup.grants = std::make_unique<vifd::testing::FaultyGrantTable>(std::move(setup.grants),
                                                                     options.grant_faults);
  }
  setup.tap_fd = options.tap_fd;
  setup.features = options.features;
  setup.rate = options.rate;
  setup.guest_mac = options.mac;
  setup.mac_learning = options.mac_learning;
  setup.allowed_ipv4 = options.allowed_ipv4;
  setup.network_switch = options.network_switch;
  setup.rx_backlog_frames = options.rx_backlog_frames;
  setup.rx_stall_timeout = options.rx_stall_timeout;
  setup.switch_inbox_frames = options.switch_inbox_frames;
  setup.rx_backlog_bytes = options.rx_backlog_bytes;
  setup.rx_drain_timeout = options.rx_drain_timeout;
  setup.switch_receiver_share_percent = options.switch_receiver_share_percent;
  setup.spurious_event_backoff_max = options.spurious_event_backoff_max;
  setup.resume = options.resume;
  setup.xdp_headroom = options.xdp_headroom;
  setup.static_grants = options.static_grants;
  setup.on_fatal_error = [this](const std::string& reason) {
    std::lock_guard lock(reason_mutex_);
    fatal_reason_ = reason;
    fatal_calls_.fetch_add(1);
  };
  if (options.before_queue) {
    options.before_queue();
  }
  queue_ = std::make_unique<Queue>(std::move(setup));
  queue_->start();
}

BackendQueue::~BackendQueue() {
  stop();
  queue_.reset();
  ring_grants_->unmap(tx_ring_, 1);
  ring_grants_->unmap(rx_ring_, 1);
}

void BackendQueue::stop() {
  queue_->stop();
}

::testing::AssertionResult BackendQueue::settle() {
  const std::uint64_t start = stats().loop_iterations;
  return eventually([&] {
    frontend_->notify();
    return stats().loop_iterations >= start + 2;
  });
}

std::string BackendQueue::fatal_reason() const {
  std::lock_guard lock(reason_mutex_);
  return fatal_reason_;
}

protocol::MacAddress test_mac(std::uint8_t last) {
  return protocol::MacAddress{{0x02, 0x00, 0x00, 0x00, 0x00, last}};
}

std::vector<std::uint8_t> ethernet_frame(const protocol::MacAddress& destination,
                                         const protocol::MacAddress& source, std::size_t length,
                                         std::uint8_t seed) {
  std::vector<std::uint8_t> frame(length);
  std::copy(destination.octets.begin(), destination.octets.end(), frame.begin());
  std::copy(source.octets.begin(), source.octets.end(), frame.begin() + 6);
  frame[12] = 0x88;  // a local experimental ethertype: no offload applies
  frame[13] = 0xB5;
  for (std::size_t i = 14; i < length; ++i) {
    frame[i] = static_cast<std::uint8_t>(seed + i * 7);
  }
  return frame;
}

std::vector<std::uint8_t> tcp4_frame(const protocol::MacAddress& destination,
                                     const protocol::MacAddress& source, std::size_t payload) {
  auto frame = ethernet_frame(destination, source, 14 + 20 + 20 + payload, 3);
  frame[12] = 0x08;
  frame[13] = 0x00;
  std::uint8_t* ip = frame.data() + 14;
  std::memset(ip, 0, 40);
  ip[0] = 0x45;
  const auto total = static_cast<std::uint16_t>(20 + 20 + payload);
  ip[2] = static_cast<std::uint8_t>(total >> 8);
  ip[3] = static_cast<std::uint8_t>(total & 0xFF);
  ip[8] = 64;
  ip[9] = 6;  // TCP
  ip[12] = 10;
  ip[15] = 1;
  ip[16] = 10;
  ip[19] = 2;
  ip[20 + 12] = 5 << 4;  // data offset
  return frame;
}

}  // namespace vifd::backend::testing
