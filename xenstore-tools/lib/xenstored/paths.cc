#include "xenstore-tools/lib/xenstored/paths.h"

#include <string>

#include "xenstore-tools/lib/xenstored/xs_wire.h"

namespace vifd::xenstored {
namespace {

bool is_legal_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '/' || c == '_' || c == '@';
}

bool is_valid_absolute(std::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  if (path.size() > XENSTORE_ABS_PATH_MAX) return false;
  if (path.size() > 1 && path.back() == '/') return false;
  if (path.find("//") != std::string_view::npos) return false;
  for (char c : path) {
    if (!is_legal_char(c)) return false;
  }
  return true;
}

}  // namespace

bool is_special_path(std::string_view path) {
  return path == kIntroduceDomain || path == kReleaseDomain;
}

std::optional<CanonicalPath> canonicalize(platform::DomId caller, std::string_view path,
                                          bool allow_special) {
  if (path.empty()) return std::nullopt;
  if (path.front() == '@') {
    if (!allow_special || !is_special_path(path)) return std::nullopt;
    return CanonicalPath{std::string(path), false};
  }
  if (path.front() == '/') {
    if (!is_valid_absolute(path)) return std::nullopt;
    return CanonicalPath{std::string(path), false};
  }
  // Relative paths have their own, shorter limit so that the resolved path
  // stays within the absolute limit whatever the domid.
  if (path.size() > XENSTORE_REL_PATH_MAX) return std::nullopt;
  std::string absolute = domain_path(caller);
  absolute += '/';
  absolute += path;
  if (!is_valid_absolute(absolute)) return std::nullopt;
  return CanonicalPath{std::move(absolute), true};
}

std::string parent_of(const std::string& absolute) {
  const auto slash = absolute.rfind('/');
  if (slash == 0 || slash == std::string::npos) return "/";
  return absolute.substr(0, slash);
}

std::string_view basename_of(std::string_view absolute) {
  const auto slash = absolute.rfind('/');
  return slash == std::string_view::npos ? absolute : absolute.substr(slash + 1);
}

bool is_under(std::string_view path, std::string_view ancestor) {
  if (ancestor == "/") return !path.empty() && path.front() == '/';
  if (!path.starts_with(ancestor)) return false;
  return path.size() == ancestor.size() || path[ancestor.size()] == '/';
}

}  // namespace vifd::xenstored
