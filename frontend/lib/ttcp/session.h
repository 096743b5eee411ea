// One vif-ttcp run: socket set-up in ttcp's order and with ttcp's messages
// ("ttcp-t: socket", "ttcp-t: connect", "ttcp-r: accept from ..."), the data
// transfer, then the classic report. Messages go to `messages` (stderr in
// the tool) because stdout may carry the data.
#pragma once

#include <cstdio>

#include "frontend/lib/ttcp/options.h"
#include "frontend/lib/ttcp/report.h"
#include "frontend/lib/ttcp/socket.h"
#include "frontend/lib/ttcp/transfer.h"

namespace vifd::ttcp {

class Transmitter {
 public:
  Transmitter(Options options, std::FILE* messages);
  // Connects (TCP) or addresses the receiver (UDP), sends, reports.
  // Throws SystemError or ResolveError.
  TransferResult run();

 private:
  void open_socket();
  void say(const char* message) const;

  Options options_;
  std::FILE* messages_;
  FileDescriptor socket_;
  SocketAddress peer_;
};

class Receiver {
 public:
  // Creates and binds the socket, so port() is known before run().
  Receiver(Options options, std::FILE* messages);
  [[nodiscard]] int port() const { return port_; }
  // Accepts one transmitter (TCP) or awaits the start sentinel (UDP),
  // receives one run and reports it.
  TransferResult run();

 private:
  void say(const char* message) const;

  Options options_;
  std::FILE* messages_;
  FileDescriptor socket_;
  int port_ = 0;
};

// The closing lines of a run, in classic ttcp's order, plus the checksum line
// with --checksum.
void print_report(const Options& options, const TransferResult& result, const void* buffer_address,
                  std::FILE* messages);

}  // namespace vifd::ttcp
