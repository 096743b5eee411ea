// The xenstore wire protocol (xen/io/xs_wire.h) comes with the rest of the
// Xen ABI from common/protocol/xen_abi.h, which includes it completely
// (uint32_t and EINVAL declared first, so the xsd_errors table is defined).
#pragma once

#include "common/protocol/xen_abi.h"
