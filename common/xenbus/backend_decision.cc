#include "common/xenbus/backend_decision.h"

namespace vifd::xenbus {

using protocol::XenbusState;

namespace {

// Moves to `target` unless already there.
void move(BackendActions& actions, XenbusState from, XenbusState target) {
  if (from != target) {
    actions.target = target;
  }
}

void clear_failed(BackendActions& actions, const BackendView& view) {
  if (view.failed) {
    actions.failed = false;
  }
}

}  // namespace

bool restarts_under_us(const BackendView& view) {
  const bool starting =
      view.frontend == XenbusState::kInitialising || view.frontend == XenbusState::kInitWait;
  return starting && view.frontend != view.frontend_seen && view.online &&
         (view.ours == XenbusState::kConnected || view.ours == XenbusState::kClosing);
}

namespace {

// Like netback's frontend_changed(): the frontend's state drives ours.
void react_to_frontend(BackendActions& actions, const BackendView& view) {
  // A new attempt starts only when the frontend MOVES to Initialising or
  // InitWait: our own writes (error, state) fire the same watch and must not
  // retry a device that just failed.
  const bool frontend_moved = view.frontend != view.frontend_seen;
  if (frontend_moved) {
    actions.frontend_seen = view.frontend;
  }
  switch (view.frontend) {
    case XenbusState::kInitialising:
    case XenbusState::kInitWait:
      if (!frontend_moved) {
        break;
      }
      if (view.ours == XenbusState::kClosed && view.online && view.reconnect_paced) {
        actions.frontend_seen.reset();
        actions.reconnect_later = true;
        break;
      }
      clear_failed(actions, view);
      if (view.ours == XenbusState::kClosed && view.online) {
        actions.remove_error = true;
        actions.target = XenbusState::kInitWait;  // the frontend reconnects
      } else if (restarts_under_us(view)) {
        // The frontend started over while we were still connected or
        // closing: a watch coalesces its Closing, Closed and Initialising
        // into one event, so its Closed may never be seen. Close first, as
        // netback's set_backend_state() walks Closing -> Closed -> InitWait;
        // the frontend's move is not remembered, so the event our Closed
        // fires starts the new attempt from Closed.
        actions.target = XenbusState::kClosed;
        actions.frontend_seen.reset();
      }
      break;
    case XenbusState::kInitialised:
    case XenbusState::kConnected: {
      // Initialised means the rings are published, once they are there.
      if (view.frontend == XenbusState::kInitialised && !view.frontend_rings_published) {
        break;
      }
      const bool hotplug_ready = !view.script || view.hotplug_connected;
      if (!view.failed && view.ours == XenbusState::kInitWait && hotplug_ready) {
        actions.target = XenbusState::kConnected;
      }
      break;
    }
    case XenbusState::kClosing:
      clear_failed(actions, view);
      if (view.ours != XenbusState::kClosed) {
        move(actions, view.ours, XenbusState::kClosing);
      }
      break;
    case XenbusState::kClosed:
    case XenbusState::kUnknown:
      // Unknown: the frontend directory is gone (domain destroyed). A
      // Closed frontend of a dying domain will not come back either.
      clear_failed(actions, view);
      move(actions, view.ours, XenbusState::kClosed);
      actions.remove_host_port =
          !view.online || view.frontend == XenbusState::kUnknown || view.frontend_domain_gone;
      break;
    case XenbusState::kReconfiguring:
    case XenbusState::kReconfigured:
      break;
  }
}

}  // namespace

BackendActions decide_start(const BackendStartView& view) {
  BackendActions actions;
  if (!view.configured) {
    // Nothing was advertised yet: straight to Closed, so a toolstack waiting
    // for InitWait sees the failure instead of running hotplug scripts.
    actions.report_error = true;
    actions.target = XenbusState::kClosed;
    return actions;
  }
  actions.frontend_seen = view.frontend;
  if (view.published == XenbusState::kConnected && view.frontend == XenbusState::kConnected &&
      view.frontend_rings_published) {
    // A previous backend process left the device Connected and the frontend
    // still is: carry on from the shared ring indices.
    actions.adopt = XenbusState::kConnected;
    actions.resume = true;
    return actions;
  }
  actions.advertise = true;
  if (view.published && protocol::is_backend_state(*view.published) &&
      *view.published != XenbusState::kInitialising) {
    // Left mid-handshake or closed by a previous backend process: carry on
    // from the state the frontend knows. A connection cannot be resumed
    // (the frontend is not connected anymore): close it.
    actions.adopt = *view.published;
    if (*view.published == XenbusState::kConnected) {
      actions.target = XenbusState::kClosing;
    }
  } else {
    actions.target = XenbusState::kInitWait;
  }
  return actions;
}

BackendActions decide(const BackendView& view) {
  BackendActions actions;
  // libxl detaches by writing online=0 and state=Closing on the BACKEND. A
  // state that differs from what we last wrote was written by the
  // toolstack. The backend never writes `online`, so online=0 with Closing is
  // the toolstack's even when we had written Closing ourselves already.
  const bool state_is_ours =
      view.published && view.last_written && *view.published == *view.last_written;
  if (view.published == XenbusState::kClosing && (!state_is_ours || !view.online)) {
    actions.set_toolstack_closed = true;
    actions.adopt = XenbusState::kClosing;  // the toolstack took this step for us
  }
  if (view.toolstack_closed || actions.set_toolstack_closed) {
    move(actions, actions.adopt.value_or(view.ours), XenbusState::kClosed);
    actions.remove_host_port = !view.online;
    return actions;
  }
  if (!view.configured) {
    return actions;  // failed validation: nothing to drive until the device is removed
  }
  react_to_frontend(actions, view);
  actions.refresh_multicast_control = view.ours == XenbusState::kConnected && !actions.target;
  if (actions.refresh_multicast_control) {
    const bool reconfiguring = view.frontend == XenbusState::kReconfiguring;
    const bool answered = view.last_written == XenbusState::kReconfigured;
    if (reconfiguring && !answered) {
      actions.publish_while_connected = XenbusState::kReconfigured;
    } else if (!reconfiguring && answered) {
      actions.publish_while_connected = XenbusState::kConnected;
    }
  }
  return actions;
}

}  // namespace vifd::xenbus
