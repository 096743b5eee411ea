// Xenstore path rules as C xenstored applies them: which names are legal,
// how a relative path resolves against the connection's domain home, and the
// two special watch-only names.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/platform/types.h"
#include "common/xenbus/paths.h"

namespace vifd::xenstored {

inline constexpr std::string_view kIntroduceDomain = "@introduceDomain";
inline constexpr std::string_view kReleaseDomain = "@releaseDomain";

// The home of a domain's relative paths.
using xenbus::domain_path;

bool is_special_path(std::string_view path);

// A path as the client wrote it, resolved to an absolute one.
struct CanonicalPath {
  std::string absolute;   // domain_path(5) + "/device", or "@releaseDomain"
  bool relative = false;  // the client wrote it relative to its home
};

// Resolves and validates; std::nullopt means EINVAL (empty, illegal
// character, "//", trailing '/', too long, unknown '@' name). Special names
// are accepted only when allow_special is set (watch, get/set perms).
std::optional<CanonicalPath> canonicalize(platform::DomId caller, std::string_view path,
                                          bool allow_special);

std::string parent_of(const std::string& absolute);  // "/" for "/a"
std::string_view basename_of(std::string_view absolute);
// True when `path` is `ancestor` or below it ("/a/b" is under "/a", "/ab" is not).
bool is_under(std::string_view path, std::string_view ancestor);

}  // namespace vifd::xenstored
