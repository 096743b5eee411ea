#include "common/xenstore/perms.h"

#include <charconv>
#include <limits>

namespace vifd::xs {

std::optional<Perm> parse_perm(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  Perm perm;
  switch (text[0]) {
    case 'n':
      perm.access = Access::kNone;
      break;
    case 'r':
      perm.access = Access::kRead;
      break;
    case 'w':
      perm.access = Access::kWrite;
      break;
    case 'b':
      perm.access = Access::kBoth;
      break;
    default:
      return std::nullopt;
  }
  const char* first = text.data() + 1;
  const char* last = text.data() + text.size();
  unsigned long domid = 0;
  auto [end, ec] = std::from_chars(first, last, domid);
  if (ec != std::errc{} || end != last || domid > std::numeric_limits<platform::DomId>::max()) {
    return std::nullopt;
  }
  perm.domid = static_cast<platform::DomId>(domid);
  return perm;
}

std::string format_perm(const Perm& perm) {
  static constexpr char kLetters[] = {'n', 'r', 'w', 'b'};
  return kLetters[static_cast<unsigned>(perm.access) & 3U] + std::to_string(perm.domid);
}

std::optional<std::vector<Perm>> parse_perms(const std::vector<std::string>& texts) {
  if (texts.empty()) return std::nullopt;
  std::vector<Perm> perms;
  perms.reserve(texts.size());
  for (const auto& text : texts) {
    auto perm = parse_perm(text);
    if (!perm) return std::nullopt;
    perms.push_back(*perm);
  }
  return perms;
}

std::string format_perms(const std::vector<Perm>& perms) {
  std::string out;
  for (const auto& perm : perms) {
    if (!out.empty()) out += ' ';
    out += format_perm(perm);
  }
  return out;
}

}  // namespace vifd::xs
