// Grant operation status codes: the GNTST_* values of xen/grant_table.h
// (checked in xen_abi.h), returned per segment by a grant copy on real Xen and
// by the simulator alike.
#pragma once

#include <cstdint>

namespace vifd::protocol {

enum GrantStatus : std::int16_t {
  kGntstOkay = 0,
  kGntstGeneralError = -1,
  kGntstBadDomain = -2,
  kGntstBadGntref = -3,
  kGntstBadHandle = -4,
  kGntstBadVirtAddr = -5,
  kGntstBadDevAddr = -6,
  kGntstNoDeviceSpace = -7,
  kGntstPermissionDenied = -8,
  kGntstBadPage = -9,
  kGntstBadCopyArg = -10,
  kGntstAddressTooBig = -11,
  kGntstEagain = -12,
  kGntstNoSpace = -13,
};

// Human-readable name of a GNTST_* code, for error messages.
const char* grant_status_name(std::int16_t status) noexcept;

}  // namespace vifd::protocol
