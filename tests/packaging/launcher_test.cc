// vifd-launcher's pure parts: what it does for one guest from what the guest
// needs and what it knows of the guest's vifd, and how commands expand.
#include "backend/lib/launcher/launcher.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace vifd::launcher {
namespace {

TEST(LauncherDecide, StartsANeededGuestWithoutVifd) {
  EXPECT_EQ(decide(true, {}), Action::kStart);
}

TEST(LauncherDecide, LeavesARunningNeededGuestAlone) {
  EXPECT_EQ(decide(true, {.running = true}), Action::kNone);
}

TEST(LauncherDecide, StopsAGuestThatIsGone) {
  EXPECT_EQ(decide(false, {.running = true}), Action::kStop);
}

TEST(LauncherDecide, ForgetsAGoneGuestWithoutVifd) {
  EXPECT_EQ(decide(false, {}), Action::kForget);
}

// One command at a time per guest, and a failed one waits for the retry.
TEST(LauncherDecide, WaitsWhileACommandRunsOrAwaitsItsRetry) {
  for (const bool needed : {false, true}) {
    for (const bool running : {false, true}) {
      EXPECT_EQ(decide(needed, {.running = running, .in_flight = true}), Action::kNone);
      EXPECT_EQ(decide(needed, {.running = running, .retry_wait = true}), Action::kNone);
    }
  }
}

TEST(CommandTemplate, ReplacesEveryPlaceholderAndSplitsOnSpaces) {
  const CommandTemplate command("systemctl  --no-block start vifd@{domid}.service {domid}{domid}");
  EXPECT_EQ(command.expand(17), (std::vector<std::string>{"systemctl", "--no-block", "start",
                                                          "vifd@17.service", "1717"}));
}

// No shell: quotes and metacharacters are plain characters of a word.
TEST(CommandTemplate, InterpretsNothing) {
  const CommandTemplate command("/bin/echo $(id) ';' {domid}");
  EXPECT_EQ(command.expand(0), (std::vector<std::string>{"/bin/echo", "$(id)", "';'", "0"}));
}

TEST(CommandTemplate, RejectsAnEmptyCommand) {
  EXPECT_THROW(CommandTemplate("   "), std::invalid_argument);
  EXPECT_THROW(CommandTemplate(""), std::invalid_argument);
}

}  // namespace
}  // namespace vifd::launcher
