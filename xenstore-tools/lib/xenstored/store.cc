#include "xenstore-tools/lib/xenstored/store.h"

#include <algorithm>
#include <cerrno>
#include <utility>

#include "xenstore-tools/lib/xenstored/paths.h"

namespace vifd::xenstored {
namespace {

using xs::Access;
using xs::Perm;

// The access a caller has to a node, as xenstored's perm_for_conn: dom0 and
// the owner (first entry) have full access; a domain listed in a later entry
// gets that entry; everyone else gets the first entry's ("other") access.
Access access_for(const Caller& caller, const std::vector<Perm>& perms) {
  if (caller.privileged || perms.empty() || perms.front().domid == caller.domid) {
    return Access::kBoth;
  }
  for (std::size_t i = 1; i < perms.size(); ++i) {
    if (perms[i].domid == caller.domid) return perms[i].access;
  }
  return perms.front().access;
}

bool can_read(const Caller& caller, const std::vector<Perm>& perms) {
  return xs::allows_read(access_for(caller, perms));
}

bool can_write(const Caller& caller, const std::vector<Perm>& perms) {
  return xs::allows_write(access_for(caller, perms));
}

// Only the owner (or dom0) may change a node's permissions.
bool is_owner(const Caller& caller, const std::vector<Perm>& perms) {
  return caller.privileged || (!perms.empty() && perms.front().domid == caller.domid);
}

DomId owner_of(const Node& node) {
  return node.perms.empty() ? 0 : node.perms.front().domid;
}

// cxenstored's record: a 24-byte header (generation, counts), 8 bytes per
// permission, the value, and every child name with its NUL.
std::size_t record_size(const Node& node) {
  std::size_t size = 24 + 8 * node.perms.size() + node.value.size();
  for (const auto& child : node.children) size += child.size() + 1;
  return size;
}

std::string child_path(const std::string& parent, const std::string& name) {
  return parent == "/" ? "/" + name : parent + "/" + name;
}

}  // namespace

// Node access for one operation: the live tree, or a transaction's overlay on
// top of it. Every node a transaction looks at is recorded with the
// generation it had, which is what commit checks.
class Store::View {
 public:
  View(Store& store, Transaction* tx) : store_(store), tx_(tx) {}

  const Node* find(const std::string& path) {
    if (tx_ != nullptr) {
      auto written = tx_->overlay.find(path);
      if (written != tx_->overlay.end()) return written->second ? &*written->second : nullptr;
    }
    auto it = store_.nodes_.find(path);
    if (tx_ != nullptr) {
      tx_->observed.try_emplace(path, it == store_.nodes_.end() ? 0 : it->second.generation);
    }
    return it == store_.nodes_.end() ? nullptr : &it->second;
  }

  void put(const std::string& path, Node node) {
    if (const Node* old = find(path)) count(owner_of(*old), -1);
    count(owner_of(node), +1);
    if (tx_ != nullptr) {
      tx_->overlay[path] = std::move(node);
    } else {
      node.generation = store_.next_generation_++;
      store_.nodes_[path] = std::move(node);
    }
  }

  void erase(const std::string& path) {
    if (const Node* old = find(path)) count(owner_of(*old), -1);
    if (tx_ != nullptr) {
      tx_->overlay[path] = std::nullopt;
    } else {
      store_.nodes_.erase(path);
    }
  }

  std::size_t entries(DomId domid) const {
    long total = static_cast<long>(store_.entries_owned_by(domid));
    if (tx_ != nullptr) {
      auto delta = tx_->entry_delta.find(domid);
      if (delta != tx_->entry_delta.end()) total += delta->second;
    }
    return total < 0 ? 0 : static_cast<std::size_t>(total);
  }

  Transaction* transaction() const { return tx_; }

 private:
  void count(DomId domid, long delta) {
    if (tx_ != nullptr) {
      tx_->entry_delta[domid] += delta;
      return;
    }
    auto& entries = store_.entries_[domid];
    entries = delta < 0 && entries == 0 ? 0 : entries + static_cast<std::size_t>(delta);
  }

  Store& store_;
  Transaction* tx_;
};

Store::Store(Quotas quotas) : quotas_(quotas) {
  View live(*this, nullptr);
  live.put("/", Node{"", {Perm{0, Access::kNone}}, {}, 0});
  special_perms_[std::string(kIntroduceDomain)] = {Perm{0, Access::kNone}};
  special_perms_[std::string(kReleaseDomain)] = {Perm{0, Access::kNone}};
}

std::size_t Store::entries_owned_by(DomId domid) const {
  auto it = entries_.find(domid);
  return it == entries_.end() ? 0 : it->second;
}

Store::Transaction* Store::find_transaction(const Caller& caller, TxId tx, int& error) {
  error = 0;
  if (tx == kNoTx) return nullptr;
  auto it = transactions_.find(tx);
  if (it == transactions_.end() || it->second.conn != caller.conn) {
    error = ENOENT;
    return nullptr;
  }
  return &it->second;
}

// Xenstored does not tell a caller that a node is missing below a node it may
// not access: the nearest existing ancestor decides between EACCES and ENOENT.
int Store::missing_node_error(View& view, const Caller& caller, const std::string& path,
                              bool want_write) {
  std::string ancestor = path;
  const Node* node = nullptr;
  while (node == nullptr && ancestor != "/") {
    ancestor = parent_of(ancestor);
    node = view.find(ancestor);
  }
  if (node == nullptr) return ENOENT;
  const bool allowed = want_write ? can_write(caller, node->perms) : can_read(caller, node->perms);
  return allowed ? ENOENT : EACCES;
}

bool Store::exceeds_node_quota(const Caller& caller, const Node& node) const {
  return !caller.privileged && record_size(node) >= quotas_.max_node_size;
}

int Store::create_node(View& view, const Caller& caller, const std::string& path,
                       std::string_view value) {
  std::vector<std::string> missing;
  std::string existing = path;
  const Node* ancestor = nullptr;
  while ((ancestor = view.find(existing)) == nullptr) {
    missing.push_back(existing);
    existing = parent_of(existing);
  }
  if (!can_write(caller, ancestor->perms)) return EACCES;
  if (!caller.privileged &&
      view.entries(caller.domid) + missing.size() > quotas_.entries_per_domain) {
    return ENOSPC;
  }
  // Build every changed node first and check it, so a refused request
  // leaves the tree untouched. Each new node inherits its parent's
  // permissions, and an unprivileged domain owns what it creates
  // (cxenstored's construct_node).
  std::vector<std::pair<std::string, Node>> changed;
  changed.emplace_back(existing, *ancestor);
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    Node& parent = changed.back().second;
    parent.children.insert(std::string(basename_of(*it)));
    Node child;
    child.perms = parent.perms;
    if (!caller.privileged) child.perms.front().domid = caller.domid;
    if (*it == path) child.value = std::string(value);
    changed.emplace_back(*it, std::move(child));
  }
  for (const auto& [node_path, node] : changed) {
    if (exceeds_node_quota(caller, node)) return ENOSPC;
  }
  for (auto& [node_path, node] : changed) view.put(node_path, std::move(node));
  return 0;
}

Result<std::string> Store::read(const Caller& caller, TxId tx, std::string_view path) {
  int error = 0;
  Transaction* transaction = find_transaction(caller, tx, error);
  if (error != 0) return Result<std::string>::failure(error);
  auto canonical = canonicalize(caller.domid, path, false);
  if (!canonical) return Result<std::string>::failure(EINVAL);
  View view(*this, transaction);
  const Node* node = view.find(canonical->absolute);
  if (node == nullptr) {
    return Result<std::string>::failure(
        missing_node_error(view, caller, canonical->absolute, false));
  }
  if (!can_read(caller, node->perms)) return Result<std::string>::failure(EACCES);
  return node->value;
}

int Store::write(const Caller& caller, TxId tx, std::string_view path, std::string_view value) {
  int error = 0;
  Transaction* transaction = find_transaction(caller, tx, error);
  if (error != 0) return error;
  auto canonical = canonicalize(caller.domid, path, false);
  if (!canonical) return EINVAL;
  View view(*this, transaction);
  const std::string& absolute = canonical->absolute;
  if (const Node* node = view.find(absolute)) {
    if (!can_write(caller, node->perms)) return EACCES;
    Node updated = *node;
    updated.value = std::string(value);
    if (exceeds_node_quota(caller, updated)) return ENOSPC;
    view.put(absolute, updated);
    record(view, PendingEvent{absolute, updated.perms, false});
    return 0;
  }
  if (int created = create_node(view, caller, absolute, value); created != 0) return created;
  record(view, PendingEvent{absolute, view.find(absolute)->perms, false});
  return 0;
}

int Store::mkdir(const Caller& caller, TxId tx, std::string_view path) {
  int error = 0;
  Transaction* transaction = find_transaction(caller, tx, error);
  if (error != 0) return error;
  auto canonical = canonicalize(caller.domid, path, false);
  if (!canonical) return EINVAL;
  View view(*this, transaction);
  const std::string& absolute = canonical->absolute;
  if (const Node* node = view.find(absolute)) {
    return can_write(caller, node->perms) ? 0 : EACCES;
  }
  if (int created = create_node(view, caller, absolute, ""); created != 0) return created;
  record(view, PendingEvent{absolute, view.find(absolute)->perms, false});
  return 0;
}

int Store::rm(const Caller& caller, TxId tx, std::string_view path) {
  int error = 0;
  Transaction* transaction = find_transaction(caller, tx, error);
  if (error != 0) return error;
  auto canonical = canonicalize(caller.domid, path, false);
  if (!canonical) return EINVAL;
  const std::string& absolute = canonical->absolute;
  if (absolute == "/") return EINVAL;
  View view(*this, transaction);
  const Node* node = view.find(absolute);
  if (node == nullptr) {
    const int missing = missing_node_error(view, caller, absolute, true);
    if (missing != ENOENT) return missing;
    // Removing a node that is already gone is fine if its parent exists.
    return view.find(parent_of(absolute)) != nullptr ? 0 : ENOENT;
  }
  if (!can_write(caller, node->perms)) return EACCES;
  const std::vector<Perm> top_perms = node->perms;

  // Children before parents, so each removal event names an existing path's
  // last state, as xenstored's recursive delete does.
  std::vector<std::string> order;
  std::vector<std::string> stack{absolute};
  while (!stack.empty()) {
    std::string current = std::move(stack.back());
    stack.pop_back();
    if (const Node* n = view.find(current)) {
      for (const auto& child : n->children) stack.push_back(child_path(current, child));
    }
    order.push_back(std::move(current));
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const Node* victim = view.find(*it);
    if (victim == nullptr) continue;
    record(view, PendingEvent{*it, victim->perms, false});
    view.erase(*it);
  }
  const std::string parent_path = parent_of(absolute);
  Node parent = *view.find(parent_path);
  parent.children.erase(std::string(basename_of(absolute)));
  view.put(parent_path, std::move(parent));
  record(view, PendingEvent{absolute, top_perms, true});
  return 0;
}

Result<DirectoryListing> Store::directory(const Caller& caller, TxId tx, std::string_view path) {
  int error = 0;
  Transaction* transaction = find_transaction(caller, tx, error);
  if (error != 0) return Result<DirectoryListing>::failure(error);
  auto canonical = canonicalize(caller.domid, path, false);
  if (!canonical) return Result<DirectoryListing>::failure(EINVAL);
  View view(*this, transaction);
  const Node* node = view.find(canonical->absolute);
  if (node == nullptr) {
    return Result<DirectoryListing>::failure(
        missing_node_error(view, caller, canonical->absolute, false));
  }
  if (!can_read(caller, node->perms)) return Result<DirectoryListing>::failure(EACCES);
  return DirectoryListing{node->generation, {node->children.begin(), node->children.end()}};
}

Result<std::vector<Perm>> Store::get_perms(const Caller& caller, TxId tx, std::string_view path) {
  using R = Result<std::vector<Perm>>;
  int error = 0;
  Transaction* transaction = find_transaction(caller, tx, error);
  if (error != 0) return R::failure(error);
  auto canonical = canonicalize(caller.domid, path, true);
  if (!canonical) return R::failure(EINVAL);
  if (is_special_path(canonical->absolute)) {
    const auto& perms = special_perms_.at(canonical->absolute);
    if (!can_read(caller, perms)) return R::failure(EACCES);
    return perms;
  }
  View view(*this, transaction);
  const Node* node = view.find(canonical->absolute);
  if (node == nullptr)
    return R::failure(missing_node_error(view, caller, canonical->absolute, false));
  if (!can_read(caller, node->perms)) return R::failure(EACCES);
  return node->perms;
}

int Store::set_perms(const Caller& caller, TxId tx, std::string_view path,
                     const std::vector<Perm>& perms) {
  int error = 0;
  Transaction* transaction = find_transaction(caller, tx, error);
  if (error != 0) return error;
  if (perms.empty()) return EINVAL;
  auto canonical = canonicalize(caller.domid, path, true);
  if (!canonical) return EINVAL;
  if (is_special_path(canonical->absolute)) {
    if (!caller.privileged) return EACCES;
    special_perms_[canonical->absolute] = perms;
    return 0;
  }
  View view(*this, transaction);
  const Node* node = view.find(canonical->absolute);
  if (node == nullptr) return missing_node_error(view, caller, canonical->absolute, true);
  if (!is_owner(caller, node->perms)) return EACCES;
  // An unprivileged owner may restrict access but not give the node away.
  if (!caller.privileged && perms.front().domid != owner_of(*node)) return EPERM;
  Node updated = *node;
  updated.perms = perms;
  if (exceeds_node_quota(caller, updated)) return ENOSPC;
  view.put(canonical->absolute, updated);
  record(view, PendingEvent{canonical->absolute, perms, false});
  return 0;
}

int Store::watch(const Caller& caller, std::string_view path, std::string_view token) {
  auto canonical = canonicalize(caller.domid, path, true);
  if (!canonical) return EINVAL;
  std::size_t owned = 0;
  for (const auto& w : watches_) {
    if (w.owner.conn == caller.conn && w.path == canonical->absolute && w.token == token) {
      return EEXIST;
    }
    if (w.owner.domid == caller.domid) ++owned;
  }
  if (!caller.privileged && owned >= quotas_.watches_per_domain) return E2BIG;
  watches_.push_back(Watch{caller, canonical->absolute, std::string(token), canonical->relative});
  // Xenstored fires every new watch once, so a client can read the current
  // state in its event handler without a race.
  events_.push_back(WatchEvent{caller.conn, std::string(path), std::string(token)});
  return 0;
}

int Store::unwatch(const Caller& caller, std::string_view path, std::string_view token) {
  auto canonical = canonicalize(caller.domid, path, true);
  if (!canonical) return EINVAL;
  auto it = std::find_if(watches_.begin(), watches_.end(), [&](const Watch& w) {
    return w.owner.conn == caller.conn && w.path == canonical->absolute && w.token == token;
  });
  if (it == watches_.end()) return ENOENT;
  watches_.erase(it);
  return 0;
}

void Store::reset_watches(const Caller& caller) {
  std::erase_if(watches_, [&](const Watch& w) { return w.owner.conn == caller.conn; });
  std::erase_if(transactions_, [&](const auto& entry) { return entry.second.conn == caller.conn; });
}

Result<TxId> Store::transaction_start(const Caller& caller) {
  const auto open =
      std::count_if(transactions_.begin(), transactions_.end(),
                    [&](const auto& entry) { return entry.second.conn == caller.conn; });
  if (!caller.privileged && static_cast<std::size_t>(open) >= quotas_.transactions_per_connection) {
    return Result<TxId>::failure(ENOSPC);
  }
  while (next_tx_ == kNoTx || transactions_.contains(next_tx_)) ++next_tx_;
  const TxId id = next_tx_++;
  transactions_[id].conn = caller.conn;
  return id;
}

int Store::transaction_end(const Caller& caller, TxId tx, bool commit) {
  int error = 0;
  Transaction* transaction = find_transaction(caller, tx, error);
  if (transaction == nullptr) return error != 0 ? error : ENOENT;
  Transaction finished = std::move(*transaction);
  transactions_.erase(tx);
  if (!commit) return 0;
  // Each write checked the quota against the tree as it was then; what
  // counts is the tree the transaction lands on.
  if (!caller.privileged) {
    for (const auto& [domid, delta] : finished.entry_delta) {
      if (delta > 0 &&
          entries_owned_by(domid) + static_cast<std::size_t>(delta) > quotas_.entries_per_domain) {
        return ENOSPC;
      }
    }
  }
  for (const auto& [path, generation] : finished.observed) {
    auto it = nodes_.find(path);
    const std::uint64_t now = it == nodes_.end() ? 0 : it->second.generation;
    if (now != generation) return EAGAIN;
  }
  View live(*this, nullptr);
  for (auto& [path, node] : finished.overlay) {
    if (node) {
      live.put(path, std::move(*node));
    } else {
      live.erase(path);
    }
  }
  for (const auto& event : finished.events) fire(event);
  return 0;
}

int Store::introduce(const Caller& caller, DomId domid) {
  if (!caller.privileged) return EACCES;
  if (domid == 0 || domid >= platform::kDomidSelf) return EINVAL;
  if (!introduced_.insert(domid).second) return 0;
  fire(PendingEvent{std::string(kIntroduceDomain), {}, false});
  return 0;
}

int Store::release(const Caller& caller, DomId domid) {
  if (!caller.privileged) return EACCES;
  if (domid == 0 || domid >= platform::kDomidSelf) return EINVAL;
  if (introduced_.erase(domid) == 0) return ENOENT;
  fire(PendingEvent{std::string(kReleaseDomain), {}, false});
  return 0;
}

void Store::disconnect(ConnId conn) {
  std::erase_if(watches_, [&](const Watch& w) { return w.owner.conn == conn; });
  std::erase_if(transactions_, [&](const auto& entry) { return entry.second.conn == conn; });
}

std::vector<WatchEvent> Store::take_events() {
  return std::exchange(events_, {});
}

void Store::record(View& view, PendingEvent event) {
  if (Transaction* tx = view.transaction()) {
    auto [slot, added] =
        tx->event_index.try_emplace(std::pair(event.path, event.removal_below), tx->events.size());
    if (added) {
      tx->events.push_back(std::move(event));
    } else {
      // The latest permissions decide who may see the change at commit.
      tx->events[slot->second].perms = std::move(event.perms);
    }
  } else {
    fire(event);
  }
}

void Store::fire(const PendingEvent& event) {
  const bool special = is_special_path(event.path);
  for (const auto& w : watches_) {
    std::string reported;
    if (special) {
      if (w.path != event.path || !can_read(w.owner, special_perms_.at(event.path))) continue;
      reported = event.path;
    } else {
      if (is_special_path(w.path)) continue;
      if (event.removal_below) {
        // Watches at or above the removed path had their own event already.
        if (w.path == event.path || !is_under(w.path, event.path)) continue;
        reported = w.path;
      } else {
        if (!is_under(event.path, w.path)) continue;
        reported = event.path;
      }
      if (!can_read(w.owner, event.perms)) continue;
      if (w.relative) {
        const std::string home = domain_path(w.owner.domid) + "/";
        if (reported.starts_with(home)) reported.erase(0, home.size());
      }
    }
    events_.push_back(WatchEvent{w.owner.conn, std::move(reported), w.token});
  }
}

}  // namespace vifd::xenstored
