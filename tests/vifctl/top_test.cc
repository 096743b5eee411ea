// vifctl top's arithmetic: rates from two stats snapshots over vifd's
// monotonic time, counters that start over, vifs that come and go, and the
// plain (scriptable) table.
#include "xenstore-tools/lib/vifctl/top.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace vifd::vifctl {
namespace {

nlohmann::json queue(std::uint64_t tx, std::uint64_t rx, std::uint64_t dropped) {
  return {{"tx", {{"packets", tx}, {"bytes", tx * 1000}}},
          {"rx", {{"packets", rx}, {"bytes", rx * 100}}},
          {"drops", {{"rx_no_buffers", dropped}, {"tx_tap_full", dropped}}}};
}

// Arrays built element by element: a braced list of one json value would
// be that value, not an array of it.
nlohmann::json array(std::initializer_list<nlohmann::json> elements) {
  nlohmann::json result = nlohmann::json::array();
  for (const auto& element : elements) result.push_back(element);
  return result;
}

nlohmann::json vif(unsigned domid, std::initializer_list<nlohmann::json> queues,
                   const char* state = "Connected") {
  return {{"domid", domid}, {"devid", 0}, {"state", state}, {"queues", array(queues)}};
}

nlohmann::json answer(std::int64_t ns, std::initializer_list<nlohmann::json> vifs) {
  return {{"ok", true}, {"monotonic_ns", ns}, {"vifs", array(vifs)}};
}

TEST(VifctlTop, RatesAreCounterDifferencesOverTheSnapshotsTime) {
  const auto before = answer(
      1'000'000'000, {vif(1, {queue(100, 50, 1), queue(10, 0, 0)}), vif(2, {queue(0, 0, 0)})});
  const auto after = answer(
      3'000'000'000, {vif(1, {queue(300, 150, 3), queue(30, 0, 0)}), vif(2, {queue(0, 0, 0)})});
  const double seconds = snapshot_interval(before, after, 99);
  EXPECT_DOUBLE_EQ(seconds, 2.0);
  const auto rows = top_rows(before, after, seconds);
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0].vif, "1/0");
  EXPECT_EQ(rows[0].state, "Connected");
  EXPECT_DOUBLE_EQ(rows[0].tx_packets, (200 + 20) / 2.0);
  EXPECT_DOUBLE_EQ(rows[0].tx_bytes, (200 + 20) * 1000 / 2.0);
  EXPECT_DOUBLE_EQ(rows[0].rx_packets, 50);
  EXPECT_DOUBLE_EQ(rows[0].rx_bytes, 5000);
  EXPECT_DOUBLE_EQ(rows[0].drops, 2);  // two reasons, +2 each, over 2 s
  EXPECT_DOUBLE_EQ(rows[1].tx_packets, 0);
}

TEST(VifctlTop, ANewVifOrAReconnectCountsFromZero) {
  const auto before = answer(0, {vif(1, {queue(1000, 1000, 0)})});
  // vif 1 reconnected (its queues started over); vif 3 appeared.
  const auto after = answer(1'000'000'000, {vif(1, {queue(40, 20, 0)}), vif(3, {queue(7, 0, 0)})});
  const auto rows = top_rows(before, after, 1.0);
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_DOUBLE_EQ(rows[0].tx_packets, 40);
  EXPECT_DOUBLE_EQ(rows[0].rx_packets, 20);
  EXPECT_EQ(rows[1].vif, "3/0");
  EXPECT_DOUBLE_EQ(rows[1].tx_packets, 7);
}

TEST(VifctlTop, AnOlderVifdWithoutTimestampsUsesTheMeasuredInterval) {
  EXPECT_DOUBLE_EQ(snapshot_interval({{"vifs", nlohmann::json::array()}}, answer(5, {}), 1.5), 1.5);
  EXPECT_DOUBLE_EQ(snapshot_interval(answer(9, {}), answer(5, {}), 0.7), 0.7);
  EXPECT_THROW(top_rows(answer(0, {}), answer(0, {}), 0), std::invalid_argument);
}

TEST(VifctlTop, PlainTableHasARowPerVifAndATotal) {
  const auto rows = top_rows(
      answer(0, {vif(1, {queue(0, 0, 0)}), vif(2, {queue(0, 0, 0)}, "Closed")}),
      answer(1'000'000'000, {vif(1, {queue(1500, 10, 0)}), vif(2, {queue(500, 0, 0)}, "Closed")}),
      1.0);
  std::ostringstream plain;
  print_top(rows, false, plain);
  const std::string text = plain.str();
  EXPECT_NE(text.find("VIF"), std::string::npos);
  EXPECT_NE(text.find("1/0       Connected           1500      1500000         10         1000"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("2/0       Closed"), std::string::npos) << text;
  EXPECT_NE(text.find("total     2 vifs              2000      2000000         10         1000"),
            std::string::npos)
      << text;
  std::ostringstream human;
  print_top(rows, true, human);
  EXPECT_NE(human.str().find("1.5M"), std::string::npos) << human.str();
  EXPECT_NE(human.str().find("2.0K"), std::string::npos) << human.str();
}

}  // namespace
}  // namespace vifd::vifctl
