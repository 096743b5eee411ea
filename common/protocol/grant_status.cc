#include "common/protocol/grant_status.h"

namespace vifd::protocol {

const char* grant_status_name(std::int16_t status) noexcept {
  switch (status) {
    case kGntstOkay:
      return "GNTST_okay";
    case kGntstGeneralError:
      return "GNTST_general_error";
    case kGntstBadDomain:
      return "GNTST_bad_domain";
    case kGntstBadGntref:
      return "GNTST_bad_gntref";
    case kGntstBadHandle:
      return "GNTST_bad_handle";
    case kGntstBadVirtAddr:
      return "GNTST_bad_virt_addr";
    case kGntstBadDevAddr:
      return "GNTST_bad_dev_addr";
    case kGntstNoDeviceSpace:
      return "GNTST_no_device_space";
    case kGntstPermissionDenied:
      return "GNTST_permission_denied";
    case kGntstBadPage:
      return "GNTST_bad_page";
    case kGntstBadCopyArg:
      return "GNTST_bad_copy_arg";
    case kGntstAddressTooBig:
      return "GNTST_address_too_big";
    case kGntstEagain:
      return "GNTST_eagain";
    case kGntstNoSpace:
      return "GNTST_no_space";
    default:
      return "GNTST_unknown";
  }
}

}  // namespace vifd::protocol
