// Xenstore node permissions in the form xenstored and libxenstore use.
//
// A permission list is ordered: the first entry names the owner and the
// access of every domain not listed ("other"); each further entry grants one
// domain explicit access. The text form of an entry is a letter followed by a
// domid: n (none), r (read), w (write), b (both), e.g. "n0", "r5".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/platform/types.h"

namespace vifd::xs {

enum class Access : unsigned { kNone = 0, kRead = 1, kWrite = 2, kBoth = 3 };

struct Perm {
  platform::DomId domid = 0;
  Access access = Access::kNone;

  friend bool operator==(const Perm&, const Perm&) = default;
};

// "r5" -> {5, kRead}; std::nullopt for anything else (unknown letter, domid
// missing, not a number, trailing characters, domid above 65535).
std::optional<Perm> parse_perm(std::string_view text);
std::string format_perm(const Perm& perm);

// Parses a whole list; std::nullopt if any entry is invalid or the list is empty.
std::optional<std::vector<Perm>> parse_perms(const std::vector<std::string>& texts);
std::string format_perms(const std::vector<Perm>& perms);  // "n0 r5"

inline bool allows_read(Access a) {
  return (static_cast<unsigned>(a) & static_cast<unsigned>(Access::kRead)) != 0;
}
inline bool allows_write(Access a) {
  return (static_cast<unsigned>(a) & static_cast<unsigned>(Access::kWrite)) != 0;
}

}  // namespace vifd::xs
