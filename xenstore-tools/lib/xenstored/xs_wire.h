// <xen/io/xs_wire.h> is not self-contained: it needs uint32_t, and it only
// defines the xsd_errors table when EINVAL is already defined. Include it
// through here so every user gets the complete header.
#pragma once

// clang-format off
#include <cerrno>
#include <cstdint>
#include <xen/io/xs_wire.h>
// clang-format on
