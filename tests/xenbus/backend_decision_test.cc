#include "common/xenbus/backend_decision.h"

#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace vifd::xenbus {
namespace {

using protocol::XenbusState;
using S = XenbusState;

constexpr std::array kAllStates = {S::kUnknown,     S::kInitialising,  S::kInitWait,
                                   S::kInitialised, S::kConnected,     S::kClosing,
                                   S::kClosed,      S::kReconfiguring, S::kReconfigured};
constexpr std::array kBackendStates = {S::kInitialising, S::kInitWait, S::kConnected, S::kClosing,
                                       S::kClosed};

std::string show(std::optional<XenbusState> state) {
  return state ? std::string(protocol::name(*state)) : "-";
}

std::string describe(const BackendView& v) {
  std::ostringstream out;
  out << "ours=" << show(v.ours) << " published=" << show(v.published)
      << " last_written=" << show(v.last_written) << " online=" << v.online
      << " toolstack_closed=" << v.toolstack_closed << " configured=" << v.configured
      << " frontend=" << show(v.frontend) << " seen=" << show(v.frontend_seen)
      << " rings=" << v.frontend_rings_published << " script=" << v.script
      << " hotplug=" << v.hotplug_connected << " failed=" << v.failed
      << " paced=" << v.reconnect_paced << " domain_gone=" << v.frontend_domain_gone;
  return out.str();
}

// The state the backend is in once the actions ran and every transition
// succeeded.
XenbusState final_state(const BackendView& v, const BackendActions& a) {
  return a.target.value_or(a.adopt.value_or(v.ours));
}

BackendActions with_reconnect_later() {
  BackendActions actions;
  actions.reconnect_later = true;
  return actions;
}

// The first invariant `a` breaks for `v`; "" when it keeps them all.
std::string violation(const BackendView& v, const BackendActions& a) {
  const XenbusState from = a.adopt.value_or(v.ours);
  const XenbusState end = final_state(v, a);
  const bool toolstack_wrote_closing =
      v.published == S::kClosing && (!v.online || v.last_written != S::kClosing);
  const bool closing_by_toolstack = v.toolstack_closed || toolstack_wrote_closing;

  if (a.report_error || a.resume || a.advertise) {
    return "a start-only action on a watch event";
  }
  if (a.target && !protocol::backend_state_path(from, *a.target)) {
    return "an illegal transition";
  }
  if (a.target == from) {
    return "a transition to the state we are in";
  }
  if (a.adopt && !(a.adopt == S::kClosing && a.set_toolstack_closed)) {
    return "a state adopted that the toolstack did not write";
  }
  if (a.set_toolstack_closed != toolstack_wrote_closing) {
    return "toolstack Closing not recognised (or imagined)";
  }
  if (closing_by_toolstack) {
    if (end != S::kClosed) {
      return "toolstack Closing does not end Closed";
    }
    if (a.remove_host_port == v.online) {
      return "host port kept offline or removed while online after a toolstack close";
    }
    if (a.failed || a.frontend_seen || a.remove_error || a.refresh_multicast_control) {
      return "the frontend still drives a device the toolstack closed";
    }
    return "";
  }
  if (!v.configured) {
    return a == BackendActions{} ? "" : "an unconfigured device does something";
  }
  if (end == S::kConnected && v.ours != S::kConnected) {
    if (v.failed) {
      return "Connected while failed";
    }
    if (v.script && !v.hotplug_connected) {
      return "Connected before the hotplug script is done";
    }
    if (v.ours != S::kInitWait) {
      return "Connected from anywhere but InitWait";
    }
    const bool frontend_ready = v.frontend == S::kConnected ||
                                (v.frontend == S::kInitialised && v.frontend_rings_published);
    if (!frontend_ready) {
      return "Connected before the frontend published its rings";
    }
  }
  if ((v.frontend == S::kClosed || v.frontend == S::kUnknown) && end != S::kClosed) {
    return "frontend Closed/Unknown does not close the backend";
  }
  if (v.frontend == S::kUnknown && !a.remove_host_port) {
    return "frontend gone but the host port kept";
  }
  if (v.frontend == S::kClosed && a.remove_host_port != (!v.online || v.frontend_domain_gone)) {
    return "frontend Closed: host port removed while online and the domain lives, or kept "
           "offline or for a dying domain";
  }
  if (a.remove_host_port && v.frontend != S::kClosed && v.frontend != S::kUnknown) {
    return "host port removed while the frontend is alive";
  }
  if (v.frontend == S::kClosing && end != S::kClosing && end != S::kClosed) {
    return "frontend Closing leaves the backend open";
  }
  const bool moved = v.frontend != v.frontend_seen;
  const bool reconnect_asked =
      moved && (v.frontend == S::kInitialising || v.frontend == S::kInitWait);
  const bool paced = reconnect_asked && v.ours == S::kClosed && v.online && v.reconnect_paced;
  if (a.reconnect_later != paced) {
    return "a paced reconnect not deferred (or one deferred that was not paced)";
  }
  if (paced) {
    return a == with_reconnect_later() ? "" : "a deferred reconnect does something else";
  }
  const bool restarted = restarts_under_us(v);
  if (restarted && end != S::kClosed) {
    return "a frontend that started over under a live connection is not closed first";
  }
  if (a.frontend_seen !=
      (moved && !restarted ? std::optional<XenbusState>(v.frontend) : std::nullopt)) {
    return "frontend state not remembered (or remembered across a restart under us)";
  }
  const bool clears_failed = v.failed && (reconnect_asked || v.frontend == S::kClosing ||
                                          v.frontend == S::kClosed || v.frontend == S::kUnknown);
  if (a.failed != (clears_failed ? std::optional<bool>(false) : std::nullopt)) {
    return "failed flag changed when the frontend did not move on";
  }
  if (a.remove_error != (a.target == S::kInitWait)) {
    return "error node removed without a new attempt (or kept on one)";
  }
  if (a.target == S::kInitWait &&
      (v.ours != S::kClosed || !v.online || !moved ||
       (v.frontend != S::kInitialising && v.frontend != S::kInitWait))) {
    return "a new attempt the frontend did not ask for";
  }
  if (a.refresh_multicast_control != (v.ours == S::kConnected && end == S::kConnected)) {
    return "multicast control not followed exactly while connected";
  }
  if ((v.frontend == S::kReconfiguring || v.frontend == S::kReconfigured) &&
      (a.target || a.failed || a.remove_host_port)) {
    return "Reconfiguring moves the backend";
  }
  std::optional<XenbusState> publish;
  if (v.ours == S::kConnected && end == S::kConnected) {
    const bool answered = v.last_written == S::kReconfigured;
    if (v.frontend == S::kReconfiguring && !answered) {
      publish = S::kReconfigured;
    } else if (v.frontend != S::kReconfiguring && answered) {
      publish = S::kConnected;
    }
  }
  if (a.publish_while_connected != publish) {
    return "Reconfiguring not answered exactly once while connected (or Connected not "
           "published back)";
  }
  return "";
}

TEST(BackendDecision, EveryCombinationKeepsTheInvariants) {
  std::vector<std::optional<XenbusState>> published = {std::nullopt};
  published.insert(published.end(), kAllStates.begin(), kAllStates.end());
  std::size_t rows = 0;
  std::size_t failures = 0;
  BackendView v;
  for (const auto ours : kBackendStates) {
    v.ours = ours;
    for (const auto state_key : published) {
      v.published = state_key;
      // What we wrote last: nothing, the key as read, or another state.
      const std::array<std::optional<XenbusState>, 3> written = {
          std::nullopt, state_key, state_key == S::kClosed ? S::kInitWait : S::kClosed};
      for (const auto last_written : written) {
        v.last_written = last_written;
        for (const bool online : {true, false}) {
          v.online = online;
          for (const bool toolstack_closed : {false, true}) {
            v.toolstack_closed = toolstack_closed;
            for (const bool configured : {true, false}) {
              v.configured = configured;
              for (const auto frontend : kAllStates) {
                v.frontend = frontend;
                for (const auto seen : kAllStates) {
                  v.frontend_seen = seen;
                  for (int flags = 0; flags < 64; ++flags) {
                    v.frontend_rings_published = (flags & 1) != 0;
                    v.script = (flags & 2) != 0;
                    v.hotplug_connected = (flags & 4) != 0;
                    v.failed = (flags & 8) != 0;
                    v.reconnect_paced = (flags & 16) != 0;
                    v.frontend_domain_gone = (flags & 32) != 0;
                    ++rows;
                    const std::string broken = violation(v, decide(v));
                    if (!broken.empty() && ++failures <= 20) {
                      ADD_FAILURE() << broken << ": " << describe(v);
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(failures, 0U);
  EXPECT_EQ(rows, 5U * 10 * 3 * 2 * 2 * 2 * 9 * 9 * 64);
}

// A connected, configured device with no script whose frontend is
// Connected and already seen: the steady state the rows below vary.
BackendView connected() {
  BackendView v;
  v.ours = S::kConnected;
  v.published = S::kConnected;
  v.last_written = S::kConnected;
  v.frontend = S::kConnected;
  v.frontend_seen = S::kConnected;
  v.frontend_rings_published = true;
  return v;
}

BackendView waiting() {
  BackendView v = connected();
  v.ours = S::kInitWait;
  v.published = S::kInitWait;
  v.last_written = S::kInitWait;
  v.frontend = S::kInitialising;
  v.frontend_seen = S::kInitialising;
  v.frontend_rings_published = false;
  return v;
}

BackendActions with(const std::function<void(BackendActions&)>& set) {
  BackendActions actions;
  set(actions);
  return actions;
}

TEST(BackendDecision, ConnectedStaysConnectedAndFollowsMulticast) {
  EXPECT_EQ(decide(connected()),
            with([](BackendActions& a) { a.refresh_multicast_control = true; }));
}

TEST(BackendDecision, ReconfiguringIsAnsweredWhileStayingConnected) {
  // Linux netfront attaching an XDP program: Reconfiguring, xdp-headroom
  // rewritten; the backend reads it again and says Reconfigured.
  BackendView v = connected();
  v.frontend = S::kReconfiguring;
  EXPECT_EQ(decide(v), with([](BackendActions& a) {
              a.frontend_seen = S::kReconfiguring;
              a.refresh_multicast_control = true;
              a.publish_while_connected = S::kReconfigured;
            }));
  // Our own write fires the watch again: nothing more to do.
  v.frontend_seen = S::kReconfiguring;
  v.published = S::kReconfigured;
  v.last_written = S::kReconfigured;
  EXPECT_EQ(decide(v), with([](BackendActions& a) { a.refresh_multicast_control = true; }));
  // Back to Connected: so is `state`.
  v.frontend = S::kConnected;
  EXPECT_EQ(decide(v), with([](BackendActions& a) {
              a.frontend_seen = S::kConnected;
              a.refresh_multicast_control = true;
              a.publish_while_connected = S::kConnected;
            }));
}

TEST(BackendDecision, FrontendConnectsWhenTheRingsAreThere) {
  BackendView v = waiting();
  v.frontend = S::kConnected;
  EXPECT_EQ(decide(v), with([](BackendActions& a) {
              a.frontend_seen = S::kConnected;
              a.target = S::kConnected;
            }));
  v.frontend = S::kInitialised;
  EXPECT_EQ(decide(v), with([](BackendActions& a) { a.frontend_seen = S::kInitialised; }));
  v.frontend_rings_published = true;
  EXPECT_EQ(decide(v), with([](BackendActions& a) {
              a.frontend_seen = S::kInitialised;
              a.target = S::kConnected;
            }));
}

TEST(BackendDecision, HotplugScriptGatesConnected) {
  BackendView v = waiting();
  v.frontend = S::kConnected;
  v.frontend_seen = S::kConnected;
  v.script = true;
  EXPECT_EQ(decide(v), BackendActions{});
  v.hotplug_connected = true;
  EXPECT_EQ(decide(v), with([](BackendActions& a) { a.target = S::kConnected; }));
}

TEST(BackendDecision, FailedIsNotRetriedUntilTheFrontendMoves) {
  BackendView v = waiting();
  v.ours = S::kClosing;
  v.frontend = S::kConnected;
  v.frontend_seen = S::kConnected;
  v.failed = true;
  EXPECT_EQ(decide(v), BackendActions{});
  // Our own error/state writes fire the watch again: still nothing.
  v.ours = S::kInitWait;
  EXPECT_EQ(decide(v), BackendActions{});
  // The frontend closes: the failure is forgotten.
  v.frontend = S::kClosing;
  EXPECT_EQ(decide(v), with([](BackendActions& a) {
              a.frontend_seen = S::kClosing;
              a.failed = false;
              a.target = S::kClosing;
            }));
}

TEST(BackendDecision, FrontendReconnectsAfterClosed) {
  BackendView v = waiting();
  v.ours = S::kClosed;
  v.frontend = S::kInitialising;
  v.frontend_seen = S::kClosed;
  v.failed = true;
  EXPECT_EQ(decide(v), with([](BackendActions& a) {
              a.frontend_seen = S::kInitialising;
              a.failed = false;
              a.remove_error = true;
              a.target = S::kInitWait;
            }));
  // Offline (being detached): the failure is forgotten but no new attempt.
  v.online = false;
  EXPECT_EQ(decide(v), with([](BackendActions& a) {
              a.frontend_seen = S::kInitialising;
              a.failed = false;
            }));
}

TEST(BackendDecision, FrontendStartingOverUnderALiveConnectionIsClosedThenReconnected) {
  // A frontend reset (Closing, Closed, Initialising) can reach us as one
  // watch event: we are still Connected, or Closing, and see Initialising.
  for (const auto ours : {S::kConnected, S::kClosing}) {
    BackendView v = connected();
    v.ours = ours;
    v.published = ours;
    v.last_written = ours;
    v.frontend_seen = ours == S::kConnected ? S::kConnected : S::kClosing;
    v.frontend = S::kInitialising;
    EXPECT_EQ(decide(v), with([](BackendActions& a) { a.target = S::kClosed; }))
        << "from " << protocol::name(ours);
    // Our Closed fires the watch again; the frontend's move was not
    // remembered, so that event starts the new attempt.
    v.ours = S::kClosed;
    v.published = S::kClosed;
    v.last_written = S::kClosed;
    EXPECT_EQ(decide(v), with([](BackendActions& a) {
                a.frontend_seen = S::kInitialising;
                a.remove_error = true;
                a.target = S::kInitWait;
              }))
        << "from " << protocol::name(ours);
  }
  // Offline (being detached): no restart, the toolstack is taking it away.
  BackendView v = connected();
  v.online = false;
  v.frontend = S::kInitialising;
  EXPECT_EQ(decide(v).target, std::nullopt);
}

TEST(BackendDecision, PacedReconnectWaitsWithTheMoveUnseen) {
  BackendView v = waiting();
  v.ours = S::kClosed;
  v.frontend = S::kInitialising;
  v.frontend_seen = S::kClosed;
  v.failed = true;
  v.reconnect_paced = true;
  EXPECT_EQ(decide(v), with_reconnect_later());
  // When the pacing allows, the same views give the new attempt.
  v.reconnect_paced = false;
  EXPECT_EQ(decide(v), with([](BackendActions& a) {
              a.frontend_seen = S::kInitialising;
              a.failed = false;
              a.remove_error = true;
              a.target = S::kInitWait;
            }));
  // Pacing never holds back a close, nor a frontend that has not moved.
  v.reconnect_paced = true;
  v.frontend = S::kClosed;
  EXPECT_FALSE(decide(v).reconnect_later);
  v.frontend = S::kInitialising;
  v.frontend_seen = S::kInitialising;
  EXPECT_FALSE(decide(v).reconnect_later);
}

TEST(BackendDecision, FrontendGoneClosesAndRemovesTheHostPort) {
  BackendView v = connected();
  v.frontend = S::kUnknown;
  EXPECT_EQ(decide(v), with([](BackendActions& a) {
              a.frontend_seen = S::kUnknown;
              a.target = S::kClosed;
              a.remove_host_port = true;
            }));
  // Closed while online keeps the TAP for the next connection.
  v.frontend = S::kClosed;
  EXPECT_EQ(decide(v), with([](BackendActions& a) {
              a.frontend_seen = S::kClosed;
              a.target = S::kClosed;
            }));
  // ... unless the guest's domain is dying: nothing will reconnect.
  v.frontend_domain_gone = true;
  EXPECT_EQ(decide(v), with([](BackendActions& a) {
              a.frontend_seen = S::kClosed;
              a.target = S::kClosed;
              a.remove_host_port = true;
            }));
}

TEST(BackendDecision, ToolstackDetach) {
  // libxl: online=0, state=Closing on the backend.
  BackendView v = connected();
  v.online = false;
  v.published = S::kClosing;
  EXPECT_EQ(decide(v), with([](BackendActions& a) {
              a.set_toolstack_closed = true;
              a.adopt = S::kClosing;
              a.target = S::kClosed;
              a.remove_host_port = true;
            }));
  // Closing written by the toolstack while online.
  v.online = true;
  EXPECT_EQ(decide(v), with([](BackendActions& a) {
              a.set_toolstack_closed = true;
              a.adopt = S::kClosing;
              a.target = S::kClosed;
            }));
  // Our own Closing while online is not the toolstack's.
  v.last_written = S::kClosing;
  v.frontend = S::kClosing;
  v.frontend_seen = S::kClosing;
  v.ours = S::kClosing;
  EXPECT_EQ(decide(v), BackendActions{});
  // Once closed by the toolstack, the frontend no longer matters.
  v.toolstack_closed = true;
  v.ours = S::kClosed;
  v.published = S::kClosed;
  v.frontend = S::kInitialising;
  EXPECT_EQ(decide(v), BackendActions{});
}

TEST(BackendDecision, UnconfiguredWaitsForRemoval) {
  BackendView v = waiting();
  v.configured = false;
  v.ours = S::kClosed;
  v.frontend = S::kConnected;
  EXPECT_EQ(decide(v), BackendActions{});
}

// ---- start ------------------------------------------------------------------

TEST(BackendDecisionStart, EveryCombination) {
  std::vector<std::optional<XenbusState>> published = {std::nullopt};
  published.insert(published.end(), kAllStates.begin(), kAllStates.end());
  for (const auto state_key : published) {
    for (const auto frontend : kAllStates) {
      for (const bool rings : {false, true}) {
        for (const bool configured : {false, true}) {
          const BackendStartView view{configured, state_key, frontend, rings};
          const BackendActions a = decide_start(view);
          const std::string row = show(state_key) + " " + show(frontend) +
                                  " rings=" + std::to_string(rings) +
                                  " configured=" + std::to_string(configured);
          if (!configured) {
            EXPECT_EQ(a, with([](BackendActions& e) {
                        e.report_error = true;
                        e.target = S::kClosed;
                      }))
                << row;
            continue;
          }
          EXPECT_EQ(a.frontend_seen, frontend) << row;
          const bool resumable = state_key == S::kConnected && frontend == S::kConnected && rings;
          EXPECT_EQ(a.resume, resumable) << row;
          EXPECT_EQ(a.advertise, !resumable) << row;
          EXPECT_FALSE(a.report_error || a.set_toolstack_closed || a.failed || a.remove_error ||
                       a.remove_host_port || a.refresh_multicast_control)
              << row;
          // Whatever is adopted is a state a backend writes; every target
          // is reachable from it.
          const XenbusState from = a.adopt.value_or(S::kInitialising);
          EXPECT_TRUE(protocol::is_backend_state(from)) << row;
          if (a.target) {
            EXPECT_TRUE(protocol::backend_state_path(from, *a.target)) << row;
          }
          if (resumable) {
            EXPECT_EQ(a.adopt, S::kConnected) << row;
            EXPECT_FALSE(a.target) << row;
          } else if (state_key == S::kConnected) {
            // Cannot resume: the frontend must see the disconnect.
            EXPECT_EQ(a.adopt, S::kConnected) << row;
            EXPECT_EQ(a.target, S::kClosing) << row;
          } else if (state_key == S::kInitWait || state_key == S::kClosing ||
                     state_key == S::kClosed) {
            EXPECT_EQ(a.adopt, state_key) << row;
            EXPECT_FALSE(a.target) << row;
          } else {
            // Fresh (or a state no backend writes): advertise, then InitWait.
            EXPECT_FALSE(a.adopt) << row;
            EXPECT_EQ(a.target, S::kInitWait) << row;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace vifd::xenbus
