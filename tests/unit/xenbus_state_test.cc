#include "common/protocol/xenbus_state.h"

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <queue>
#include <set>
#include <utility>

namespace vifd::protocol {
namespace {

using S = XenbusState;

constexpr std::array kAllStates{S::kUnknown,     S::kInitialising,  S::kInitWait,
                                S::kInitialised, S::kConnected,     S::kClosing,
                                S::kClosed,      S::kReconfiguring, S::kReconfigured};

// The legal single writes, restated independently of the implementation:
// netback's set_backend_state() moves.
const std::set<std::pair<S, S>>& legal_steps() {
  static const std::set<std::pair<S, S>> steps{
      {S::kInitialising, S::kInitWait}, {S::kInitialising, S::kClosed},
      {S::kInitWait, S::kConnected},    {S::kInitWait, S::kClosing},
      {S::kConnected, S::kClosing},     {S::kClosing, S::kClosed},
      {S::kClosed, S::kInitWait},       {S::kClosed, S::kClosing},
  };
  return steps;
}

// Breadth-first distance over legal_steps(), -1 if unreachable.
int shortest_distance(S from, S to) {
  std::map<S, int> distance{{from, 0}};
  std::queue<S> frontier;
  frontier.push(from);
  while (!frontier.empty()) {
    const S at = frontier.front();
    frontier.pop();
    if (at == to) {
      return distance[at];
    }
    for (const auto& [step_from, step_to] : legal_steps()) {
      if (step_from == at && !distance.contains(step_to)) {
        distance[step_to] = distance[at] + 1;
        frontier.push(step_to);
      }
    }
  }
  return -1;
}

TEST(XenbusStateTest, NamesMatchLinuxXenbusStrstate) {
  EXPECT_EQ(name(S::kUnknown), "Unknown");
  EXPECT_EQ(name(S::kInitialising), "Initialising");
  EXPECT_EQ(name(S::kInitWait), "InitWait");
  EXPECT_EQ(name(S::kInitialised), "Initialised");
  EXPECT_EQ(name(S::kConnected), "Connected");
  EXPECT_EQ(name(S::kClosing), "Closing");
  EXPECT_EQ(name(S::kClosed), "Closed");
  EXPECT_EQ(name(S::kReconfiguring), "Reconfiguring");
  EXPECT_EQ(name(S::kReconfigured), "Reconfigured");
  EXPECT_EQ(name(static_cast<S>(42)), "Invalid");
}

TEST(XenbusStateTest, XenstoreValueRoundTrips) {
  for (const S state : kAllStates) {
    const std::string text = to_xenstore_value(state);
    const auto parsed = parse_xenbus_state("backend/vif/1/0/state", text);
    ASSERT_TRUE(parsed.ok()) << text;
    EXPECT_EQ(parsed.value(), state);
  }
  EXPECT_EQ(to_xenstore_value(S::kConnected), "4");
}

TEST(XenbusStateTest, ParseRejectsGarbage) {
  for (const char* bad : {"", "9", "10", "-1", "+4", " 4", "4 ", "04", "4\n", "Connected", "0x4"}) {
    const auto parsed = parse_xenbus_state("device/vif/0/state", bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.error().message().find("device/vif/0/state"), std::string::npos);
  }
}

TEST(XenbusStateTest, BackendStates) {
  std::set<S> backend;
  for (const S state : kAllStates) {
    if (is_backend_state(state)) {
      backend.insert(state);
    }
  }
  EXPECT_EQ(backend,
            (std::set<S>{S::kInitialising, S::kInitWait, S::kConnected, S::kClosing, S::kClosed}));
}

// Every (from, to) pair: a path exists exactly for backend states (never
// back into Initialising), each step is legal, it ends at `to`, and it is a
// shortest one.
TEST(XenbusStateTest, EveryPairTakesAShortestLegalPath) {
  int pairs_with_path = 0;
  for (const S from : kAllStates) {
    for (const S to : kAllStates) {
      SCOPED_TRACE(std::string(name(from)) + " -> " + std::string(name(to)));
      const auto path = backend_state_path(from, to);
      const bool expect_path = is_backend_state(from) && is_backend_state(to) &&
                               (to != S::kInitialising || from == S::kInitialising);
      ASSERT_EQ(path.has_value(), expect_path);
      if (!path) {
        continue;
      }
      ++pairs_with_path;
      S at = from;
      for (const S step : *path) {
        EXPECT_TRUE(legal_steps().contains({at, step}))
            << name(at) << " -> " << name(step) << " is not a legal write";
        at = step;
      }
      EXPECT_EQ(at, to);
      EXPECT_EQ(static_cast<int>(path->size()), shortest_distance(from, to));
    }
  }
  EXPECT_EQ(pairs_with_path, 5 * 4 + 1);
}

TEST(XenbusStateTest, PathsNetbackTakes) {
  using Path = std::vector<S>;
  EXPECT_EQ(backend_state_path(S::kConnected, S::kConnected), Path{});
  EXPECT_EQ(backend_state_path(S::kInitialising, S::kConnected),
            (Path{S::kInitWait, S::kConnected}));
  // Where two shortest paths exist, netback's choice: via InitWait.
  EXPECT_EQ(backend_state_path(S::kInitialising, S::kClosing), (Path{S::kInitWait, S::kClosing}));
  EXPECT_EQ(backend_state_path(S::kConnected, S::kInitWait),
            (Path{S::kClosing, S::kClosed, S::kInitWait}));
  EXPECT_EQ(backend_state_path(S::kClosing, S::kConnected),
            (Path{S::kClosed, S::kInitWait, S::kConnected}));
  EXPECT_EQ(backend_state_path(S::kConnected, S::kClosed), (Path{S::kClosing, S::kClosed}));
  EXPECT_EQ(backend_state_path(S::kClosed, S::kClosing), (Path{S::kClosing}));
  EXPECT_FALSE(backend_state_path(S::kClosed, S::kInitialising).has_value());
  EXPECT_FALSE(backend_state_path(S::kInitialised, S::kConnected).has_value());
  EXPECT_FALSE(backend_state_path(S::kConnected, S::kReconfiguring).has_value());
}

}  // namespace
}  // namespace vifd::protocol
