// What vif-bench measures: the cells of its matrix (path x queues x frame
// size x grant mode) and the parsers of the lists given on the command line.
// Pure: no I/O, so the parsers are unit-tested on their own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vifd::bench {

enum class Path : std::uint8_t {
  kDomuToDomu,  // a domU's TX ring -> vifd's switch -> another domU's RX ring
  kDomuToDom0,  // a domU's TX ring -> vifd -> its TAP in dom0 (read by a packet socket)
  kDom0ToDomu,  // a packet socket writing into vifd's TAP -> vifd -> a domU's RX ring
};
const char* to_string(Path path) noexcept;  // "domu-domu", "domu-dom0", "dom0-domu"

// How vifd reaches the frontend's buffers. Only grant copy exists today;
// static grant mappings (the ctrl ring's ADD_GREF_MAPPING) become a second
// value, and every cell then runs once per mode.
// copy: vifd grant-copies every buffer; mapped: the frontend offers its
// pools as static grant mappings and vifd copies them with memcpy.
enum class Grants : std::uint8_t { kCopy, kMapped };
const char* to_string(Grants grants) noexcept;  // "copy", "mapped"

struct Cell {
  Path path = Path::kDomuToDomu;
  unsigned queues = 1;
  std::size_t frame = 64;  // Ethernet frame length
  Grants grants = Grants::kCopy;
  // Frames beyond a 9000-byte MTU go out as one TCPv4 GSO frame.
  bool gso() const noexcept;
};

// Frame sizes above this are GSO frames: a 9000-byte MTU plus Ethernet and VLAN headers.
inline constexpr std::size_t kLargestPlainFrame = 9018;

// "64,512,1500,9000,64k": each size in bytes; "64k" and "64KiB" mean the
// largest netif frame (65535). Throws std::invalid_argument naming the bad
// item (not a number, outside [64, 65535], repeated).
std::vector<std::size_t> parse_sizes(std::string_view text);
// "1,2,4": each in [1, max]. Throws std::invalid_argument.
std::vector<unsigned> parse_queues(std::string_view text, unsigned max);
// "domu-domu,domu-dom0,dom0-domu" (or "all"). Throws std::invalid_argument.
std::vector<Path> parse_paths(std::string_view text);
// "copy". Throws std::invalid_argument.
std::vector<Grants> parse_grants(std::string_view text);

// Every cell, grouped so that one connection (path, queue count, grant mode)
// serves consecutive cells: path, then queues, then grants, then size.
std::vector<Cell> build_matrix(const std::vector<Path>& paths, const std::vector<unsigned>& queues,
                               const std::vector<Grants>& grants,
                               const std::vector<std::size_t>& sizes);

// "64", "1500", "64k" (65535): how tables and plots label a size.
std::string size_label(std::size_t frame);

}  // namespace vifd::bench
