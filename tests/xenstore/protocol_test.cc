// One request in, one reply out: framing, argument parsing and error names.
#include "xenstore-tools/lib/xenstored/protocol.h"

#include <gtest/gtest.h>

#include <cstring>

#include "common/xenbus/paths.h"

namespace vifd::xenstored {
namespace {

const Caller kDom0{1, 0, true};
const Caller kDom5{2, 5, false};

Message call(Store& store, const Caller& caller, std::uint32_t type, std::string_view payload,
             std::uint32_t tx = 0) {
  xsd_sockmsg header{type, 42, tx, static_cast<std::uint32_t>(payload.size())};
  return handle_request(store, caller, header, payload);
}

std::string args(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto part : parts) {
    out += part;
    out += '\0';
  }
  return out;
}

TEST(ProtocolTest, WriteReadEchoesIds) {
  Store store;
  std::string write_payload = args({"/a"}) + "value";
  Message ok = call(store, kDom0, XS_WRITE, write_payload, 0);
  EXPECT_EQ(ok.type, XS_WRITE);
  EXPECT_EQ(ok.req_id, 42U);
  EXPECT_EQ(ok.payload, std::string("OK\0", 3));
  Message read = call(store, kDom0, XS_READ, args({"/a"}));
  EXPECT_EQ(read.type, XS_READ);
  EXPECT_EQ(read.payload, "value");
}

TEST(ProtocolTest, ErrorsAreNamedAsXenstored) {
  Store store;
  Message missing = call(store, kDom0, XS_READ, args({"/nope"}));
  EXPECT_EQ(missing.type, XS_ERROR);
  EXPECT_EQ(missing.req_id, 42U);
  EXPECT_EQ(missing.payload, args({"ENOENT"}));
  EXPECT_EQ(call(store, kDom5, XS_READ, args({"/local"})).payload, args({"EACCES"}));
  EXPECT_EQ(error_from_name("EAGAIN"), EAGAIN);
  EXPECT_EQ(error_name(12345), "EINVAL");
}

TEST(ProtocolTest, MalformedRequestsGetEinval) {
  Store store;
  EXPECT_EQ(call(store, kDom0, XS_READ, "/a").payload, args({"EINVAL"}));  // no NUL
  EXPECT_EQ(call(store, kDom0, XS_READ, args({"/a", "/b"})).payload, args({"EINVAL"}));
  EXPECT_EQ(call(store, kDom0, XS_WRITE, "/a").payload, args({"EINVAL"}));
  EXPECT_EQ(call(store, kDom0, XS_WATCH, args({"/a"})).payload, args({"EINVAL"}));
  EXPECT_EQ(call(store, kDom0, XS_SET_PERMS, args({"/", "q9"})).payload, args({"EINVAL"}));
  EXPECT_EQ(call(store, kDom0, XS_INTRODUCE, args({"5", "x", "1"})).payload, args({"EINVAL"}));
  EXPECT_EQ(call(store, kDom0, XS_GET_DOMAIN_PATH, args({"99999"})).payload, args({"EINVAL"}));
  EXPECT_EQ(call(store, kDom0, 999, "").payload, args({"ENOSYS"}));
  EXPECT_EQ(call(store, kDom0, XS_WATCH_EVENT, "").payload, args({"ENOSYS"}));
  EXPECT_EQ(call(store, kDom0, XS_SET_TARGET, args({"5", "6"})).payload, args({"EINVAL"}));
  EXPECT_EQ(call(store, kDom5, XS_SET_TARGET, args({"5", "6"})).payload, args({"EACCES"}));
  EXPECT_EQ(call(store, kDom0, XS_WATCH, args({"/a", "t"}), 99).payload, args({"ENOENT"}));
  EXPECT_EQ(call(store, kDom0, XS_CONTROL, args({"frobnicate"})).payload, args({"EINVAL"}));
  EXPECT_EQ(call(store, kDom0, XS_CONTROL, args({"print", "hello"})).payload, args({"OK"}));
  EXPECT_EQ(call(store, kDom5, XS_CONTROL, args({"print", "hello"})).payload, args({"EACCES"}));
}

TEST(ProtocolTest, PermsDirectoryAndDomains) {
  Store store;
  call(store, kDom0, XS_WRITE, args({"/d/x"}) + "1");
  call(store, kDom0, XS_WRITE, args({"/d/y"}) + "2");
  EXPECT_EQ(call(store, kDom0, XS_DIRECTORY, args({"/d"})).payload, args({"x", "y"}));
  Message part = call(store, kDom0, XS_DIRECTORY_PART, args({"/d", "0"}));
  // generation, the children, and an empty string that ends the list
  EXPECT_TRUE(part.payload.ends_with(std::string("x\0y\0\0", 5)));
  EXPECT_EQ(call(store, kDom0, XS_SET_PERMS, args({"/d", "r0", "w5"})).payload, args({"OK"}));
  EXPECT_EQ(call(store, kDom0, XS_GET_PERMS, args({"/d"})).payload, args({"r0", "w5"}));
  EXPECT_EQ(call(store, kDom0, XS_GET_DOMAIN_PATH, args({"5"})).payload,
            args({xenbus::domain_path(5)}));
  EXPECT_EQ(call(store, kDom0, XS_IS_DOMAIN_INTRODUCED, args({"5"})).payload, args({"F"}));
  EXPECT_EQ(call(store, kDom0, XS_INTRODUCE, args({"5", "0", "0"})).payload, args({"OK"}));
  EXPECT_EQ(call(store, kDom0, XS_IS_DOMAIN_INTRODUCED, args({"5"})).payload, args({"T"}));
  EXPECT_EQ(call(store, kDom5, XS_RELEASE, args({"5"})).payload, args({"EACCES"}));
  EXPECT_EQ(call(store, kDom5, XS_IS_DOMAIN_INTRODUCED, args({"5"})).payload, args({"EACCES"}));
  EXPECT_EQ(call(store, kDom0, XS_RESUME, args({"5"})).payload, args({"OK"}));
  EXPECT_EQ(call(store, kDom0, XS_RELEASE, args({"5"})).payload, args({"OK"}));
}

TEST(ProtocolTest, TransactionsOverTheWire) {
  Store store;
  Message start = call(store, kDom0, XS_TRANSACTION_START, args({""}));
  ASSERT_EQ(start.type, XS_TRANSACTION_START);
  const auto tx = static_cast<std::uint32_t>(std::stoul(start.payload));
  EXPECT_EQ(call(store, kDom0, XS_WRITE, args({"/t"}) + "1", tx).tx_id, tx);
  EXPECT_EQ(call(store, kDom0, XS_TRANSACTION_END, args({"T"}), tx).payload, args({"OK"}));
  EXPECT_EQ(call(store, kDom0, XS_TRANSACTION_END, args({"T"}), tx).payload, args({"ENOENT"}));
  EXPECT_EQ(call(store, kDom0, XS_READ, args({"/t"}), 77).payload, args({"ENOENT"}));
}

TEST(ProtocolTest, SerializeWritesTheHeader) {
  Message m{XS_WATCH_EVENT, 0, 0, args({"/a", "tok"})};
  std::string wire = m.serialize();
  ASSERT_EQ(wire.size(), kHeaderSize + m.payload.size());
  xsd_sockmsg header{};
  std::memcpy(&header, wire.data(), kHeaderSize);
  EXPECT_EQ(header.type, static_cast<std::uint32_t>(XS_WATCH_EVENT));
  EXPECT_EQ(header.len, m.payload.size());
}

}  // namespace
}  // namespace vifd::xenstored

namespace vifd::xenstored {
namespace {

// Deterministic garbage of every message type, from dom0 and from a domain:
// every request gets exactly one well-formed reply and the store stays usable.
TEST(ProtocolTest, RandomRequestsNeverBreakTheStore) {
  Store store;
  std::uint32_t state = 12345;
  auto next = [&state] {
    state = state * 1103515245U + 12345U;
    return state >> 8;
  };
  const std::string alphabet = std::string("/ab@\0rnwb0159T F-_.", 19);
  for (int i = 0; i < 20000; ++i) {
    const Caller& caller = (i % 3 == 0) ? kDom5 : kDom0;
    std::string payload;
    const std::size_t len = next() % 24;
    for (std::size_t j = 0; j < len; ++j) payload += alphabet[next() % alphabet.size()];
    const auto type = static_cast<std::uint32_t>(next() % (XS_TYPE_COUNT + 2));
    Message reply = call(store, caller, type, payload, next() % 4);
    ASSERT_TRUE(reply.type == type || reply.type == XS_ERROR) << "type " << type;
    ASSERT_LE(reply.payload.size(), static_cast<std::size_t>(XENSTORE_PAYLOAD_MAX));
    store.take_events();
  }
  EXPECT_EQ(call(store, kDom0, XS_WRITE, args({"/after"}) + "ok").payload, args({"OK"}));
  EXPECT_EQ(call(store, kDom0, XS_READ, args({"/after"})).payload, "ok");
}

}  // namespace
}  // namespace vifd::xenstored
