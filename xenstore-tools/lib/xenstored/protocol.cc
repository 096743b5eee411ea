#include "xenstore-tools/lib/xenstored/protocol.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include "xenstore-tools/lib/xenstored/paths.h"

namespace vifd::xenstored {
namespace {

// Splits a payload of NUL-terminated strings; std::nullopt if the last one
// is not terminated (xenstored rejects such requests with EINVAL).
std::optional<std::vector<std::string_view>> split_args(std::string_view payload) {
  std::vector<std::string_view> args;
  if (payload.empty()) return args;
  if (payload.back() != '\0') return std::nullopt;
  std::size_t start = 0;
  while (start < payload.size()) {
    const std::size_t nul = payload.find('\0', start);
    args.push_back(payload.substr(start, nul - start));
    start = nul + 1;
  }
  return args;
}

// Xenstored's onearg(): exactly one NUL-terminated string.
std::optional<std::string_view> one_arg(std::string_view payload) {
  if (payload.empty() || payload.back() != '\0') return std::nullopt;
  const std::size_t nul = payload.find('\0');
  if (nul != payload.size() - 1) return std::nullopt;
  return payload.substr(0, nul);
}

template <typename T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::optional<DomId> parse_domid(std::string_view text) {
  auto value = parse_number<unsigned>(text);
  if (!value || *value > 0xFFFFU) return std::nullopt;
  return static_cast<DomId>(*value);
}

Message reply(const xsd_sockmsg& request, std::string payload) {
  return Message{request.type, request.req_id, request.tx_id, std::move(payload)};
}

Message ack(const xsd_sockmsg& request) {
  return reply(request, std::string("OK\0", 3));
}

Message status_reply(const xsd_sockmsg& request, int error) {
  return error == 0 ? ack(request) : error_reply(request, error);
}

std::string nul_joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    out += item;
    out += '\0';
  }
  return out;
}

// XS_DIRECTORY_PART: "<generation>\0" then the children from byte `offset`
// of the full NUL-joined list, as many as fit; a final empty string marks the
// end of the list, as xenstored sends it.
Message directory_part(Store& store, const Caller& caller, const xsd_sockmsg& request,
                       const std::vector<std::string_view>& args) {
  if (args.size() != 2) return error_reply(request, EINVAL);
  auto offset = parse_number<std::size_t>(args[1]);
  if (!offset) return error_reply(request, EINVAL);
  auto listing = store.directory(caller, request.tx_id, args[0]);
  if (!listing.ok()) return error_reply(request, listing.error());
  const std::string all = nul_joined(listing.value().children);
  if (*offset > all.size()) return error_reply(request, EINVAL);
  std::string out = std::to_string(listing.value().generation);
  out += '\0';
  const std::size_t room = XENSTORE_PAYLOAD_MAX - out.size() - 1;
  std::string_view rest = std::string_view(all).substr(*offset);
  if (rest.size() <= room) {
    out += rest;
    out += '\0';
  } else {
    // Cut after the last complete child that fits.
    const std::size_t cut = rest.substr(0, room).rfind('\0');
    if (cut == std::string_view::npos) return error_reply(request, E2BIG);
    out += rest.substr(0, cut + 1);
  }
  return reply(request, std::move(out));
}

}  // namespace

std::string Message::serialize() const {
  xsd_sockmsg header{type, req_id, tx_id, static_cast<std::uint32_t>(payload.size())};
  std::string out(kHeaderSize + payload.size(), '\0');
  std::memcpy(out.data(), &header, kHeaderSize);
  std::memcpy(out.data() + kHeaderSize, payload.data(), payload.size());
  return out;
}

std::string_view error_name(int error) {
  for (const auto& entry : xsd_errors) {
    if (entry.errnum == error) return entry.errstring;
  }
  return "EINVAL";
}

int error_from_name(std::string_view name) {
  for (const auto& entry : xsd_errors) {
    if (name == entry.errstring) return entry.errnum;
  }
  return 0;
}

Message error_reply(const xsd_sockmsg& request, int error) {
  std::string payload(error_name(error));
  payload += '\0';
  return Message{XS_ERROR, request.req_id, request.tx_id, std::move(payload)};
}

Message watch_event_message(const WatchEvent& event) {
  std::string payload = event.path;
  payload += '\0';
  payload += event.token;
  payload += '\0';
  return Message{XS_WATCH_EVENT, 0, 0, std::move(payload)};
}

Message handle_request(Store& store, const Caller& caller, const xsd_sockmsg& request,
                       std::string_view payload) {
  const TxId tx = request.tx_id;
  // As xenstored's process_message: a request naming a transaction this
  // connection does not have fails before anything else; the domain
  // management requests are dom0's alone.
  if (tx != kNoTx && !store.has_transaction(caller, tx)) return error_reply(request, ENOENT);
  switch (request.type) {
    case XS_INTRODUCE:
    case XS_RELEASE:
    case XS_IS_DOMAIN_INTRODUCED:
    case XS_RESUME:
    case XS_SET_TARGET:
    case XS_CONTROL:
      if (!caller.privileged) return error_reply(request, EACCES);
      break;
    default:
      break;
  }
  switch (request.type) {
    case XS_READ: {
      auto path = one_arg(payload);
      if (!path) return error_reply(request, EINVAL);
      auto value = store.read(caller, tx, *path);
      return value.ok() ? reply(request, std::move(value.value()))
                        : error_reply(request, value.error());
    }
    case XS_WRITE: {
      // "path\0value": the value is raw bytes, not NUL-terminated.
      const std::size_t nul = payload.find('\0');
      if (nul == std::string_view::npos) return error_reply(request, EINVAL);
      return status_reply(request,
                          store.write(caller, tx, payload.substr(0, nul), payload.substr(nul + 1)));
    }
    case XS_MKDIR: {
      auto path = one_arg(payload);
      if (!path) return error_reply(request, EINVAL);
      return status_reply(request, store.mkdir(caller, tx, *path));
    }
    case XS_RM: {
      auto path = one_arg(payload);
      if (!path) return error_reply(request, EINVAL);
      return status_reply(request, store.rm(caller, tx, *path));
    }
    case XS_DIRECTORY: {
      auto path = one_arg(payload);
      if (!path) return error_reply(request, EINVAL);
      auto listing = store.directory(caller, tx, *path);
      if (!listing.ok()) return error_reply(request, listing.error());
      std::string out = nul_joined(listing.value().children);
      // libxenstore falls back to XS_DIRECTORY_PART on E2BIG.
      if (out.size() > XENSTORE_PAYLOAD_MAX) return error_reply(request, E2BIG);
      return reply(request, std::move(out));
    }
    case XS_DIRECTORY_PART: {
      auto args = split_args(payload);
      if (!args) return error_reply(request, EINVAL);
      return directory_part(store, caller, request, *args);
    }
    case XS_GET_PERMS: {
      auto path = one_arg(payload);
      if (!path) return error_reply(request, EINVAL);
      auto perms = store.get_perms(caller, tx, *path);
      if (!perms.ok()) return error_reply(request, perms.error());
      std::vector<std::string> texts;
      for (const auto& perm : perms.value()) texts.push_back(xs::format_perm(perm));
      return reply(request, nul_joined(texts));
    }
    case XS_SET_PERMS: {
      auto args = split_args(payload);
      if (!args || args->size() < 2) return error_reply(request, EINVAL);
      std::vector<std::string> texts(args->begin() + 1, args->end());
      auto perms = xs::parse_perms(texts);
      if (!perms) return error_reply(request, EINVAL);
      return status_reply(request, store.set_perms(caller, tx, (*args)[0], *perms));
    }
    case XS_WATCH:
    case XS_UNWATCH: {
      auto args = split_args(payload);
      if (!args || args->size() != 2) return error_reply(request, EINVAL);
      const int error = request.type == XS_WATCH ? store.watch(caller, (*args)[0], (*args)[1])
                                                 : store.unwatch(caller, (*args)[0], (*args)[1]);
      return status_reply(request, error);
    }
    case XS_RESET_WATCHES:
      store.reset_watches(caller);
      return ack(request);
    case XS_TRANSACTION_START: {
      if (tx != kNoTx) return error_reply(request, EBUSY);
      auto id = store.transaction_start(caller);
      if (!id.ok()) return error_reply(request, id.error());
      std::string out = std::to_string(id.value());
      out += '\0';
      return reply(request, std::move(out));
    }
    case XS_TRANSACTION_END: {
      auto arg = one_arg(payload);
      if (!arg || (*arg != "T" && *arg != "F")) return error_reply(request, EINVAL);
      return status_reply(request, store.transaction_end(caller, tx, *arg == "T"));
    }
    case XS_GET_DOMAIN_PATH: {
      auto arg = one_arg(payload);
      auto domid = arg ? parse_domid(*arg) : std::nullopt;
      if (!domid) return error_reply(request, EINVAL);
      std::string out = domain_path(*domid);
      out += '\0';
      return reply(request, std::move(out));
    }
    case XS_INTRODUCE: {
      // "domid\0mfn\0port\0": the simulator has no ring page, mfn and port
      // are checked for form only.
      auto args = split_args(payload);
      if (!args || args->size() != 3) return error_reply(request, EINVAL);
      auto domid = parse_domid((*args)[0]);
      if (!domid || !parse_number<std::uint64_t>((*args)[1]) ||
          !parse_number<std::uint32_t>((*args)[2])) {
        return error_reply(request, EINVAL);
      }
      return status_reply(request, store.introduce(caller, *domid));
    }
    case XS_RELEASE: {
      auto arg = one_arg(payload);
      auto domid = arg ? parse_domid(*arg) : std::nullopt;
      if (!domid) return error_reply(request, EINVAL);
      return status_reply(request, store.release(caller, *domid));
    }
    case XS_IS_DOMAIN_INTRODUCED: {
      auto arg = one_arg(payload);
      auto domid = arg ? parse_domid(*arg) : std::nullopt;
      if (!domid) return error_reply(request, EINVAL);
      const bool introduced = *domid == 0 || store.is_introduced(*domid);
      return reply(request, std::string(introduced ? "T\0" : "F\0", 2));
    }
    case XS_RESUME: {
      auto arg = one_arg(payload);
      auto domid = arg ? parse_domid(*arg) : std::nullopt;
      if (!domid) return error_reply(request, EINVAL);
      // Nothing to reset: the simulator has no shutdown state per domain.
      return status_reply(request, store.is_introduced(*domid) ? 0 : ENOENT);
    }
    case XS_SET_TARGET:
      // Device-model stub domains are not simulated.
      return error_reply(request, EINVAL);
    case XS_CONTROL: {
      auto args = split_args(payload);
      if (!args || args->empty()) return error_reply(request, EINVAL);
      if ((*args)[0] == "print") return ack(request);
      return error_reply(request, EINVAL);
    }
    default:
      // Unknown types and the server-to-client ones (XS_WATCH_EVENT,
      // XS_ERROR), answered as xenstored does.
      return error_reply(request, ENOSYS);
  }
}

}  // namespace vifd::xenstored
