// vif-sim's xenstored as a domain's socket feeds it: the input is the byte
// stream of several connections interleaved (dom0, two connections of
// domain 1, one of domain 2), cut into xsd_sockmsg messages exactly as
// Server::Connection does: a 16-byte header, a payload of `len` bytes, the
// connection dropped when `len` exceeds XENSTORE_PAYLOAD_MAX. Each message
// goes through handle_request on one Store, as Server::handle does; a
// connection that disconnects loses its watches and transactions.
//
// Invariants: every reply answers its request (req_id, tx_id, type or
// XS_ERROR with a known errno name), fits the protocol's payload limit, and
// watch events go only to live connections with a path and a token; an
// unprivileged domain's direct request never takes a domain over its quota.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_check.h"
#include "xenstore-tools/lib/xenstored/protocol.h"
#include "xenstore-tools/lib/xenstored/store.h"

namespace {

using namespace vifd::xenstored;  // NOLINT(google-build-using-namespace)

constexpr std::array<Caller, 4> kCallers = {Caller{1, 0, true}, Caller{2, 1, false},
                                            Caller{3, 1, false}, Caller{4, 2, false}};

Message request(Store& store, const Caller& caller, std::uint32_t type, std::string_view payload) {
  const xsd_sockmsg header{type, 0, 0, static_cast<std::uint32_t>(payload.size())};
  return handle_request(store, caller, header, payload);
}

// What the toolstack sets up before a guest talks: each guest domain owns
// its home directory, and dom0 has introduced it.
void populate(Store& store) {
  using namespace std::string_view_literals;
  const Caller& dom0 = kCallers[0];
  for (const auto& [home, perms] : {std::pair{"/local/domain/1\0"sv, "/local/domain/1\0n1\0"sv},
                                    std::pair{"/local/domain/2\0"sv, "/local/domain/2\0n2\0"sv},
                                    std::pair{"/local/domain/0/backend/vif/1/0\0"sv,
                                              "/local/domain/0/backend/vif/1/0\0n0\0r1\0"sv}}) {
    FUZZ_CHECK(request(store, dom0, XS_MKDIR, home).type == XS_MKDIR);
    FUZZ_CHECK(request(store, dom0, XS_SET_PERMS, perms).type == XS_SET_PERMS);
  }
  FUZZ_CHECK(request(store, dom0, XS_INTRODUCE,
                     "1\0"
                     "0\0"
                     "1\0"sv)
                 .type == XS_INTRODUCE);
  FUZZ_CHECK(request(store, dom0, XS_INTRODUCE,
                     "2\0"
                     "0\0"
                     "2\0"sv)
                 .type == XS_INTRODUCE);
  store.take_events();
}

void check_reply(const xsd_sockmsg& header, const Message& reply) {
  FUZZ_CHECK(reply.req_id == header.req_id);
  FUZZ_CHECK(reply.tx_id == header.tx_id);
  FUZZ_CHECK(reply.payload.size() <= XENSTORE_PAYLOAD_MAX);
  if (reply.type == XS_ERROR) {
    FUZZ_CHECK(!reply.payload.empty() && reply.payload.back() == '\0');
    const std::string_view name(reply.payload.data(), reply.payload.size() - 1);
    FUZZ_CHECK(error_from_name(name) != 0);
  } else {
    FUZZ_CHECK(reply.type == header.type);
  }
  const std::string wire = reply.serialize();
  FUZZ_CHECK(wire.size() == kHeaderSize + reply.payload.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vifd::fuzz::Bytes in(data, size);
  // Small quotas, so that the limits are within the fuzzer's reach.
  Quotas quotas;
  quotas.entries_per_domain = 12;
  quotas.watches_per_domain = 4;
  quotas.transactions_per_connection = 2;
  quotas.max_node_size = 256;
  Store store(quotas);
  populate(store);
  while (!in.empty()) {
    const Caller& caller = kCallers[in.take<std::uint8_t>() % kCallers.size()];
    const auto header = in.take<xsd_sockmsg>();
    if (header.len > XENSTORE_PAYLOAD_MAX) {
      // Server::Connection drops the connection; the next message on this
      // id stands for a fresh connection of the same domain.
      store.disconnect(caller.conn);
      continue;
    }
    const auto payload = in.take_bytes(header.len);
    const std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
    const std::size_t before[3] = {0, store.entries_owned_by(1), store.entries_owned_by(2)};
    const Message reply = handle_request(store, caller, header, text);
    check_reply(header, reply);
    for (const auto& event : store.take_events()) {
      FUZZ_CHECK(event.conn >= 1 && event.conn <= kCallers.size());
      FUZZ_CHECK(!event.path.empty());
      const Message message = watch_event_message(event);
      FUZZ_CHECK(message.payload.size() == event.path.size() + event.token.size() + 2);
    }
    // dom0 may create nodes a guest owns beyond its quota (cxenstored checks
    // the quota of the writing connection only), and the quota is not yet
    // enforced when a transaction commits: an unprivileged direct request
    // never takes a domain's node count above its quota.
    if (!caller.privileged && header.type != XS_TRANSACTION_END) {
      for (const DomId domid : {DomId{1}, DomId{2}}) {
        FUZZ_CHECK(store.entries_owned_by(domid) <=
                   std::max(before[domid], quotas.entries_per_domain));
      }
    }
  }
  return 0;
}
