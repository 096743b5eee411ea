// vifd-launcher's pure parts: what it does for one guest from what the guest
// needs and what it knows of the guest's vifd, and how commands expand.
#include "backend/lib/launcher/launcher.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/lib/control/instance_lock.h"

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

// What a restarted launcher finds: the domains whose vifd holds its lock,
// not files left behind by one that exited, nor names that only look alike.
TEST(ServedDomains, AreTheHeldDomainLocksOnly) {
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("vifd-launcher-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::remove_all(dir);
  using backend::InstanceLock;
  {
    InstanceLock three(dir, 0, {3});
    InstanceLock twelve(dir, 0, {12});
    std::optional<InstanceLock> forty(std::in_place, dir, 0, std::set<platform::DomId>{40});
    InstanceLock other_backend(dir, 7, {5});
    for (const char* name : {"vifd-backend-0-domain-007.lock", "vifd-backend-0-domain-abc.lock",
                             "vifd-backend-0-domain-99999.lock", "vifd-backend-0-domain-4"}) {
      std::ofstream(dir / name) << "1\n";
    }
    EXPECT_EQ(InstanceLock::served_domains(dir, 0), (std::set<platform::DomId>{3, 12, 40}));
    forty.reset();
    EXPECT_EQ(InstanceLock::served_domains(dir, 0), (std::set<platform::DomId>{3, 12}));
    EXPECT_EQ(InstanceLock::served_domains(dir, 7), (std::set<platform::DomId>{5}));
  }
  EXPECT_TRUE(InstanceLock::served_domains(dir, 0).empty());
  EXPECT_TRUE(InstanceLock::served_domains(dir / "missing", 0).empty());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vifd::launcher
