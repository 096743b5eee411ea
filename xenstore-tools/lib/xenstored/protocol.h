// The xenstored wire protocol (xen/io/xs_wire.h) over a byte stream: a
// 16-byte xsd_sockmsg header followed by `len` payload bytes, arguments
// separated by NULs. handle_request turns one request into one reply using
// the Store; it never throws on malformed input (errors become XS_ERROR).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "xenstore-tools/lib/xenstored/store.h"
#include "xenstore-tools/lib/xenstored/xs_wire.h"

namespace vifd::xenstored {

inline constexpr std::size_t kHeaderSize = sizeof(xsd_sockmsg);

struct Message {
  std::uint32_t type = XS_INVALID;
  std::uint32_t req_id = 0;
  std::uint32_t tx_id = 0;
  std::string payload;

  // Header and payload as they go on the wire (host byte order, as xenstored).
  std::string serialize() const;
};

// The name xenstored sends for an errno ("EACCES"); EINVAL for values the
// xsd_errors table does not know.
std::string_view error_name(int error);
// The errno of a name from the table; 0 if unknown.
int error_from_name(std::string_view name);

Message error_reply(const xsd_sockmsg& request, int error);
Message watch_event_message(const WatchEvent& event);

Message handle_request(Store& store, const Caller& caller, const xsd_sockmsg& header,
                       std::string_view payload);

}  // namespace vifd::xenstored
