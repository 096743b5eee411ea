// The Boost.Asio headers the control plane uses. GCC 12 at -O2 reports
// -Wnull-dereference inside Asio's scheduler (thread_info casts and executor
// comparison) after inlining; the pointers are checked by Asio's own logic,
// so the warning is disabled for the Asio headers only, not for our code
// (as in xenstore-tools/lib/xenstored/asio.h).
#pragma once

// clang-format off
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#pragma GCC diagnostic pop
// clang-format on
