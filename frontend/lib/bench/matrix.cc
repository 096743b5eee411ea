#include "frontend/lib/bench/matrix.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "frontend/lib/bench/frame.h"

namespace vifd::bench {
namespace {

std::vector<std::string_view> split(std::string_view text) {
  std::vector<std::string_view> items;
  while (true) {
    const std::size_t comma = text.find(',');
    items.push_back(text.substr(0, comma));
    if (comma == std::string_view::npos) {
      break;
    }
    text.remove_prefix(comma + 1);
  }
  return items;
}

template <typename T>
void refuse_repeats(const std::vector<T>& values, std::string_view item, std::string_view what) {
  if (std::count(values.begin(), values.end(), values.back()) > 1) {
    throw std::invalid_argument(fmt::format("{} '{}' given twice", what, item));
  }
}

std::size_t parse_number(std::string_view item, std::string_view what) {
  std::size_t value = 0;
  const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), value);
  if (item.empty() || error != std::errc() || end != item.data() + item.size()) {
    throw std::invalid_argument(fmt::format("{} '{}' is not a number", what, item));
  }
  return value;
}

}  // namespace

const char* to_string(Path path) noexcept {
  switch (path) {
    case Path::kDomuToDomu:
      return "domu-domu";
    case Path::kDomuToDom0:
      return "domu-dom0";
    case Path::kDom0ToDomu:
      return "dom0-domu";
  }
  return "unknown";
}

const char* to_string(Grants grants) noexcept {
  switch (grants) {
    case Grants::kCopy:
      return "copy";
    case Grants::kMapped:
      return "mapped";
  }
  return "unknown";
}

bool Cell::gso() const noexcept {
  return frame > kLargestPlainFrame;
}

std::vector<std::size_t> parse_sizes(std::string_view text) {
  std::vector<std::size_t> sizes;
  for (const std::string_view item : split(text)) {
    std::size_t size = 0;
    if (item == "64k" || item == "64K" || item == "64KiB") {
      size = kMaxFrame;
    } else {
      size = parse_number(item, "frame size");
    }
    if (size < 64 || size > kMaxFrame) {
      throw std::invalid_argument(fmt::format("frame size '{}' outside [64, {}]", item, kMaxFrame));
    }
    sizes.push_back(size);
    refuse_repeats(sizes, item, "frame size");
  }
  return sizes;
}

std::vector<unsigned> parse_queues(std::string_view text, unsigned max) {
  std::vector<unsigned> queues;
  for (const std::string_view item : split(text)) {
    const std::size_t count = parse_number(item, "queue count");
    if (count < 1 || count > max) {
      throw std::invalid_argument(fmt::format("queue count '{}' outside [1, {}]", item, max));
    }
    queues.push_back(static_cast<unsigned>(count));
    refuse_repeats(queues, item, "queue count");
  }
  return queues;
}

std::vector<Path> parse_paths(std::string_view text) {
  if (text == "all") {
    return {Path::kDomuToDomu, Path::kDomuToDom0, Path::kDom0ToDomu};
  }
  std::vector<Path> paths;
  for (const std::string_view item : split(text)) {
    bool known = false;
    for (const Path path : {Path::kDomuToDomu, Path::kDomuToDom0, Path::kDom0ToDomu}) {
      if (item == to_string(path)) {
        paths.push_back(path);
        known = true;
      }
    }
    if (!known) {
      throw std::invalid_argument(
          fmt::format("unknown path '{}' (expected domu-domu, domu-dom0, dom0-domu or all)", item));
    }
    refuse_repeats(paths, item, "path");
  }
  return paths;
}

std::vector<Grants> parse_grants(std::string_view text) {
  std::vector<Grants> modes;
  for (const std::string_view item : split(text)) {
    if (item == to_string(Grants::kCopy)) {
      modes.push_back(Grants::kCopy);
    } else if (item == to_string(Grants::kMapped)) {
      modes.push_back(Grants::kMapped);
    } else {
      throw std::invalid_argument(
          fmt::format("unknown grant mode '{}' (expected copy or mapped)", item));
    }
    refuse_repeats(modes, item, "grant mode");
  }
  return modes;
}

std::vector<Cell> build_matrix(const std::vector<Path>& paths, const std::vector<unsigned>& queues,
                               const std::vector<Grants>& grants,
                               const std::vector<std::size_t>& sizes) {
  std::vector<Cell> cells;
  for (const Path path : paths) {
    for (const unsigned count : queues) {
      for (const Grants mode : grants) {
        for (const std::size_t size : sizes) {
          cells.push_back({path, count, size, mode});
        }
      }
    }
  }
  return cells;
}

std::string size_label(std::size_t frame) {
  return frame == kMaxFrame ? std::string("64k") : std::to_string(frame);
}

}  // namespace vifd::bench
