// xenstored's special watch paths: @introduceDomain fires when the toolstack
// introduces a domain, @releaseDomain when a domain is released (it died or
// shut down). Neither carries the domain id: a watcher re-reads what it
// needs.
#pragma once

#include <string_view>

namespace vifd::xenbus {

inline constexpr std::string_view kIntroduceDomainWatch = "@introduceDomain";
inline constexpr std::string_view kReleaseDomainWatch = "@releaseDomain";

}  // namespace vifd::xenbus
