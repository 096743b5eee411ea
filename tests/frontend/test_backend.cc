#include "tests/frontend/test_backend.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>

#include "common/protocol/xs_parse.h"
#include "common/xenbus/keys.h"
#include "common/xenbus/paths.h"

namespace vifd::frontend::testing {
namespace {

namespace key = xenbus::key;
using platform::DomId;
using platform::kPageSize;
using protocol::XenbusState;
using xenbus::join;

std::string backend_dir(DomId guest, std::uint32_t devid) {
  return xenbus::backend_path(0, {guest, devid});
}
std::string frontend_dir(DomId guest, std::uint32_t devid) {
  return xenbus::frontend_path({guest, devid});
}

}  // namespace

void attach_vif(xs::Client& dom0, DomId guest, std::uint32_t devid, unsigned mtu, bool trusted) {
  const std::string back = backend_dir(guest, devid);
  const std::string front = frontend_dir(guest, devid);
  dom0.transact([&](xs::TxId tx) {
    dom0.mkdir(back, tx);
    dom0.set_perms(back, {{0, xs::Access::kNone}, {guest, xs::Access::kRead}}, tx);
    const std::map<std::string_view, std::string> back_keys{
        {key::kFrontend, front},
        {key::kFrontendId, std::to_string(guest)},
        {key::kHandle, std::to_string(devid)},
        {key::kMac, kGuestMac},
        {key::kBridge, "xenbr0"},
        {key::kOnline, "1"},
        {key::kState, "1"},
        {key::kType, "vif"},
        {key::kHotplugStatus, ""}};
    for (const auto& [name, value] : back_keys) dom0.write(join(back, name), value, tx);
    dom0.mkdir(front, tx);
    dom0.set_perms(front, {{guest, xs::Access::kNone}, {0, xs::Access::kRead}}, tx);
    const std::map<std::string_view, std::string> front_keys{{key::kBackend, back},
                                                             {key::kBackendId, "0"},
                                                             {key::kHandle, std::to_string(devid)},
                                                             {key::kMac, kGuestMac},
                                                             {key::kMtu, std::to_string(mtu)},
                                                             {key::kState, "1"},
                                                             {key::kTrusted, trusted ? "1" : "0"}};
    for (const auto& [name, value] : front_keys) dom0.write(join(front, name), value, tx);
  });
}

std::map<std::string, std::string> read_tree(xs::Client& client, const std::string& path) {
  std::map<std::string, std::string> tree;
  const auto children = client.directory(path);
  if (!children) return tree;
  for (const std::string& child : *children) {
    const std::string full = join(path, child);
    const auto grandchildren = client.directory(full);
    if (grandchildren && !grandchildren->empty()) {
      for (const auto& [key, value] : read_tree(client, full)) tree[child + "/" + key] = value;
    } else {
      tree[child] = client.read(full).value_or("");
    }
  }
  return tree;
}

TestBackend::TestBackend(const vifd::testing::SimHostProcess& host, DomId guest,
                         std::uint32_t devid)
    : guest_(guest),
      backend_path_(backend_dir(guest, devid)),
      frontend_path_(frontend_dir(guest, devid)),
      platform_(host.platform(0)),
      xenstore_(host.xenstore(0)),
      grants_(platform_->open_grant_table()),
      events_(platform_->open_event_channels()) {}

TestBackend::~TestBackend() {
  detach();
}

void TestBackend::offer(const BackendOffer& offer) {
  xenstore_.transact([&](xs::TxId tx) {
    const auto write = [&](std::string_view name, std::string_view value) {
      xenstore_.write(join(backend_path_, name), std::string(value), tx);
    };
    write(key::kFeatureRxCopy, offer.rx_copy ? "1" : "0");
    write(key::kFeatureSg, offer.sg ? "1" : "0");
    write(key::kFeatureGsoTcpv4, offer.gso ? "1" : "0");
    write(key::kFeatureGsoTcpv6, offer.gso ? "1" : "0");
    write(key::kFeatureIpv6CsumOffload, offer.ipv6_csum ? "1" : "0");
    write(key::kFeatureSplitEventChannels, offer.split ? "1" : "0");
    write(key::kFeatureRxNotify, "1");
    write(key::kFeatureCtrlRing, offer.ctrl_ring ? "1" : "0");
    if (offer.max_queues) {
      write(key::kMultiQueueMaxQueues, std::to_string(*offer.max_queues));
    } else {
      xenstore_.rm(join(backend_path_, key::kMultiQueueMaxQueues), tx);
    }
    write(key::kState, protocol::to_xenstore_value(XenbusState::kInitWait));
  });
}

void TestBackend::set_state(XenbusState state) {
  xenstore_.write(join(backend_path_, key::kState), protocol::to_xenstore_value(state));
}

std::optional<std::string> TestBackend::frontend_value(std::string_view key) {
  return xenstore_.read(join(frontend_path_, key));
}

void TestBackend::attach() {
  detach();
  const auto num = frontend_value(key::kMultiQueueNumQueues);
  const unsigned count =
      num ? static_cast<unsigned>(protocol::parse_uint("num", *num, 1, 64).value()) : 1;
  for (unsigned i = 0; i < count; ++i) {
    const std::string prefix = key::queue_prefix(i, count);
    auto ref = [&](std::string_view name) {
      const auto text = frontend_value(prefix + std::string(name));
      if (!text) throw std::runtime_error("missing " + prefix + std::string(name));
      return protocol::parse_grant_ref(name, *text).value();
    };
    auto port = [&](std::string_view name) {
      return protocol::parse_evtchn_port(name, frontend_value(prefix + std::string(name)).value())
          .value();
    };
    Queue queue;
    const DomId domids[] = {guest_};
    const platform::GrantRef tx_ref[] = {ref(key::kTxRingRef)};
    const platform::GrantRef rx_ref[] = {ref(key::kRxRingRef)};
    queue.tx_page = grants_->map(domids, tx_ref, true);
    queue.rx_page = grants_->map(domids, rx_ref, true);
    queue.tx = std::make_unique<protocol::TxBackRing>(
        std::span(static_cast<std::byte*>(queue.tx_page), kPageSize));
    queue.rx = std::make_unique<protocol::RxBackRing>(
        std::span(static_cast<std::byte*>(queue.rx_page), kPageSize));
    if (frontend_value(prefix + std::string(key::kEventChannelTx))) {
      queue.tx_port = events_->bind_interdomain(guest_, port(key::kEventChannelTx));
      queue.rx_port = events_->bind_interdomain(guest_, port(key::kEventChannelRx));
    } else {
      queue.tx_port = events_->bind_interdomain(guest_, port(key::kEventChannel));
      queue.rx_port = queue.tx_port;
    }
    queues_.push_back(std::move(queue));
  }
}

void TestBackend::detach() {
  for (Queue& queue : queues_) {
    grants_->unmap(queue.tx_page, 1);
    grants_->unmap(queue.rx_page, 1);
    events_->unbind(queue.tx_port);
    if (queue.rx_port != queue.tx_port) events_->unbind(queue.rx_port);
  }
  queues_.clear();
}

void TestBackend::copy_from_guest(platform::GrantRef ref, std::uint16_t offset,
                                  std::span<std::uint8_t> out) {
  platform::GrantCopySegment segment{};
  segment.source.foreign = {ref, offset, guest_};
  segment.dest.virt = out.data();
  segment.len = static_cast<std::uint16_t>(out.size());
  segment.flags = platform::kCopySourceGref;
  ASSERT_EQ(grants_->copy(std::span(&segment, 1)), 0);
  ASSERT_EQ(segment.status, platform::kGntstOkay) << "ref " << ref;
}

void TestBackend::copy_to_guest(platform::GrantRef ref, std::uint16_t offset,
                                std::span<const std::uint8_t> data) {
  platform::GrantCopySegment segment{};
  segment.source.virt = const_cast<std::uint8_t*>(data.data());
  segment.dest.foreign = {ref, offset, guest_};
  segment.len = static_cast<std::uint16_t>(data.size());
  segment.flags = platform::kCopyDestGref;
  ASSERT_EQ(grants_->copy(std::span(&segment, 1)), 0);
  ASSERT_EQ(segment.status, platform::kGntstOkay) << "ref " << ref;
}

std::vector<protocol::TxRequest> TestBackend::take_tx(std::size_t q) {
  std::vector<protocol::TxRequest> requests(256);
  const auto taken = queues_.at(q).tx->take_requests(requests);
  EXPECT_EQ(taken.status, protocol::RingStatus::kOk);
  requests.resize(taken.count);
  return requests;
}

void TestBackend::respond_tx(std::size_t q, const std::vector<protocol::TxResponse>& responses) {
  Queue& queue = queues_.at(q);
  ASSERT_EQ(queue.tx->push_responses(responses), responses.size());
  if (queue.tx->push_responses_and_check_notify()) events_->notify(queue.tx_port);
}

std::vector<protocol::RxRequest> TestBackend::take_rx(std::size_t q, std::size_t n) {
  std::vector<protocol::RxRequest> requests(n);
  const auto taken = queues_.at(q).rx->take_requests(requests);
  EXPECT_EQ(taken.status, protocol::RingStatus::kOk);
  EXPECT_EQ(taken.count, n);
  requests.resize(taken.count);
  return requests;
}

void TestBackend::respond_rx(std::size_t q, const std::vector<protocol::RxResponse>& responses) {
  Queue& queue = queues_.at(q);
  ASSERT_EQ(queue.rx->push_responses(responses), responses.size());
  if (queue.rx->push_responses_and_check_notify()) events_->notify(queue.rx_port);
}

void TestBackend::deliver_rx(std::size_t q, std::span<const std::uint8_t> frame,
                             std::uint16_t first_flags, std::uint8_t gso_type,
                             std::uint16_t gso_size) {
  const std::size_t data_slots = (frame.size() + kPageSize - 1) / kPageSize;
  const std::size_t slots = data_slots + (gso_size != 0 ? 1 : 0);
  const auto requests = take_rx(q, slots);
  ASSERT_EQ(requests.size(), slots);
  std::vector<protocol::RxResponse> responses;
  std::size_t done = 0;
  std::size_t request = 0;
  for (std::size_t slot = 0; slot < data_slots; ++slot) {
    const std::size_t bytes = std::min(kPageSize, frame.size() - done);
    const protocol::RxRequest& req = requests[request++];
    copy_to_guest(req.gref, 0, frame.subspan(done, bytes));
    done += bytes;
    protocol::RxResponse response{};
    response.id = req.id;
    response.offset = 0;
    response.status = static_cast<std::int16_t>(bytes);
    response.flags = slot == 0 ? first_flags : 0;
    if (slot == 0 && gso_size != 0) response.flags |= protocol::kRxfExtraInfo;
    if (slot + 1 < data_slots) response.flags |= protocol::kRxfMoreData;
    responses.push_back(response);
    if (slot == 0 && gso_size != 0) {
      // netback puts the extra right after the first data slot and
      // consumes a request for it.
      ++request;
      protocol::ExtraInfo extra{};
      extra.type = protocol::kExtraTypeGso;
      extra.u.gso.type = gso_type;
      extra.u.gso.size = gso_size;
      responses.push_back(std::bit_cast<protocol::RxResponse>(extra));
    }
  }
  respond_rx(q, responses);
}

}  // namespace vifd::frontend::testing
