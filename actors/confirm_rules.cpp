#include "actors/confirm_rules.hpp"

#include <algorithm>
#include <optional>

#include "actors/store_state.hpp"
#include "messages/value_proto.hpp"
#include "syncmesh/pb/wire.pb.h"

namespace syncmesh {

// -- the concern --------------------------------------------------------------

uint32_t required_nodes(concern_kind kind, uint32_t nodes, size_t cluster_size,
                        std::string& error) {
  switch (kind) {
    case concern_kind::local:
      return 1;
    case concern_kind::nodes:
      if (nodes == 0) {
        error = "confirm::nodes needs at least 1 node";
        return 0;
      }
      if (cluster_size > 0 && nodes > cluster_size) {
        error = "confirm::nodes(" + std::to_string(nodes)
                + ") exceeds the cluster size of "
                + std::to_string(cluster_size) + " (config::cluster_size)";
        return 0;
      }
      return nodes;
    case concern_kind::majority:
    case concern_kind::all:
      if (cluster_size == 0) {
        error = std::string{kind == concern_kind::majority ? "majority" : "all"}
                + " needs the configured membership: set "
                  "config::cluster_size (--cluster-size, cluster-size= in "
                  "the ini file) or give seeds (peers), whose number + 1 "
                  "is taken as the cluster size";
        return 0;
      }
      return kind == concern_kind::all
               ? static_cast<uint32_t>(cluster_size)
               : static_cast<uint32_t>(cluster_size / 2 + 1);
  }
  error = "unknown write concern";
  return 0;
}

// -- one record ---------------------------------------------------------------

std::string from_proto(const pb::ConfirmRecord& x, confirm_item& out,
                       size_t max_fields) {
  if (x.key().empty())
    return "confirm record without a key";
  if (auto err = from_proto(x.version(), out.ver); !err.empty())
    return "confirm record: " + err;
  if (static_cast<size_t>(x.fields_size()) > max_fields)
    return "confirm record with too many fields";
  out.key = x.key();
  out.fields.clear();
  out.fields.reserve(static_cast<size_t>(x.fields_size()));
  for (const auto& f : x.fields()) {
    map_key k;
    if (auto err = from_proto(f, k); !err.empty())
      return "confirm record field: " + err;
    out.fields.push_back(std::move(k));
  }
  return {};
}

void to_proto(const confirm_item& x, pb::ConfirmRecord* out) {
  out->set_key(x.key);
  to_proto(x.ver, out->mutable_version());
  for (const auto& f : x.fields)
    to_proto(f, out->add_fields());
}

bool continues_claim(const version& later, const version& v) noexcept {
  return same_claim(later, v)
         || (!v.claimer.empty() && later.claimer == v.claimer);
}

namespace {

/// `x` is `v` or a later version of the same claim.
bool holds(const version& x, const version& v) noexcept {
  return continues_claim(x, v) && compare(x, v) >= 0;
}

} // namespace

confirm_status check_record(const store_state& store, const confirm_item& item,
                            superseding_claim* by) {
  const auto* entry = store.find(item.key);
  if (entry == nullptr)
    return confirm_status::pending;
  const auto& ids = store.ids();
  const auto& head = entry->head();
  if (!head.has_base() && !head.has_fields())
    return confirm_status::pending;
  auto newest = head.newest(ids);
  if (!continues_claim(newest, item.ver) && newer(newest, item.ver)) {
    if (by != nullptr) {
      by->owner = newest.claimer.empty() ? newest.stamp.node : newest.claimer;
      by->lease_end_us = head.lease_end_us();
    }
    return confirm_status::superseded;
  }
  if (head.has_base() && holds(head.base_version(ids), item.ver))
    return confirm_status::held;
  if (item.fields.empty())
    return confirm_status::pending;
  const auto& fields = entry->fields();
  for (const auto& name : item.fields) {
    auto i = std::find_if(fields.begin(), fields.end(),
                          [&](const field_write& f) { return f.key == name; });
    if (i == fields.end() || !holds(i->ver, item.ver))
      return confirm_status::pending;
  }
  return confirm_status::held;
}

// -- queries held at a node ---------------------------------------------------

confirm_waits::confirm_waits(size_t max_count, size_t max_bytes)
    : max_count_(std::max<size_t>(max_count, 1)),
      max_bytes_(std::max<size_t>(max_bytes, 1)) {}

size_t confirm_waits::charge(const confirm_wait& w) noexcept {
  // Bookkeeping: the wait, its index entries, each item's version.
  size_t n = 128 + w.origin.size();
  for (const auto& item : w.items) {
    n += 96 + 2 * item.key.size() + item.ver.claimer.size()
         + item.ver.stamp.node.size();
    for (const auto& f : item.fields)
      n += 40 + f.data.size();
  }
  return n;
}

size_t confirm_waits::add(confirm_wait w) {
  size_t dropped = 0;
  auto q = std::make_pair(w.origin, w.query_id);
  if (auto i = by_query_.find(q); i != by_query_.end())
    remove(i->second);
  auto bytes = charge(w);
  if (bytes > max_bytes_)
    return 1;
  while (!waits_.empty()
         && (waits_.size() + 1 > max_count_ || bytes_ + bytes > max_bytes_)) {
    remove(waits_.begin()->first);
    ++dropped;
  }
  auto serial = next_serial_++;
  for (const auto& item : w.items) {
    auto& list = by_key_[item.key];
    if (list.empty() || list.back() != serial)
      list.push_back(serial);
  }
  by_query_.emplace(std::move(q), serial);
  bytes_ += bytes;
  waits_.emplace(serial, held{std::move(w), bytes});
  return dropped;
}

void confirm_waits::remove(uint64_t serial) {
  auto i = waits_.find(serial);
  if (i == waits_.end())
    return;
  for (const auto& item : i->second.wait.items) {
    auto k = by_key_.find(item.key);
    if (k == by_key_.end())
      continue;
    auto& list = k->second;
    list.erase(std::remove(list.begin(), list.end(), serial), list.end());
    if (list.empty())
      by_key_.erase(k);
  }
  by_query_.erase({i->second.wait.origin, i->second.wait.query_id});
  bytes_ -= i->second.bytes;
  waits_.erase(i);
}

std::vector<confirm_verdict> confirm_waits::on_change(
  std::string_view key,
  const std::function<confirm_status(const confirm_item&, superseding_claim*)>&
    check) {
  std::vector<confirm_verdict> result;
  auto k = by_key_.find(std::string{key});
  if (k == by_key_.end())
    return result;
  auto serials = k->second; // remove() edits the list
  for (auto serial : serials) {
    auto i = waits_.find(serial);
    if (i == waits_.end())
      continue;
    auto& items = i->second.wait.items;
    std::optional<confirm_verdict> done;
    for (auto it = items.begin(); it != items.end();) {
      if (it->key != key) {
        ++it;
        continue;
      }
      superseding_claim by;
      auto status = check(*it, &by);
      if (status == confirm_status::superseded) {
        done = confirm_verdict{i->second.wait.origin, i->second.wait.query_id,
                               false, it->key, std::move(by)};
        break;
      }
      if (status == confirm_status::held)
        it = items.erase(it);
      else
        ++it;
    }
    if (!done && items.empty())
      done = confirm_verdict{
        i->second.wait.origin, i->second.wait.query_id, true, {}, {}};
    if (done) {
      result.push_back(std::move(*done));
      remove(serial);
    }
  }
  return result;
}

size_t confirm_waits::expire(uint64_t now_us) {
  std::vector<uint64_t> due;
  for (const auto& [serial, h] : waits_)
    if (h.wait.deadline_us <= now_us)
      due.push_back(serial);
  for (auto serial : due)
    remove(serial);
  return due.size();
}

// -- confirmations an origin waits for ---------------------------------------

uint64_t confirm_tracker::add(uint32_t required, const raw_node_id& self,
                              uint64_t deadline_us,
                              std::vector<std::string> keys) {
  if (full())
    return 0;
  auto id = next_id_++;
  pending p;
  p.required = required;
  p.holders.insert(self);
  p.deadline_us = deadline_us;
  p.keys = std::move(keys);
  for (const auto& key : p.keys) {
    auto& list = by_key_[key];
    if (list.empty() || list.back() != id)
      list.push_back(id);
  }
  pending_.emplace(id, std::move(p));
  return id;
}

confirm_tracker::outcome
confirm_tracker::on_answer(uint64_t id, const raw_node_id& responder, bool held,
                           bool superseded) {
  auto i = pending_.find(id);
  if (i == pending_.end())
    return outcome::unknown;
  if (superseded)
    return outcome::superseded;
  auto& p = i->second;
  // Bounded: holders never grow past `required` (the confirmation ends).
  if (held && p.holders.size() < p.required)
    p.holders.insert(responder);
  return p.holders.size() >= p.required ? outcome::confirmed : outcome::waiting;
}

std::vector<uint64_t>
confirm_tracker::waiting_on(const std::string& key) const {
  auto i = by_key_.find(key);
  if (i == by_key_.end())
    return {};
  return i->second;
}

std::vector<uint64_t> confirm_tracker::expired(uint64_t now_us) const {
  std::vector<uint64_t> result;
  for (const auto& [id, p] : pending_)
    if (p.deadline_us <= now_us)
      result.push_back(id);
  return result;
}

const confirm_tracker::pending* confirm_tracker::find(uint64_t id) const {
  auto i = pending_.find(id);
  return i == pending_.end() ? nullptr : &i->second;
}

void confirm_tracker::erase(uint64_t id) {
  auto i = pending_.find(id);
  if (i == pending_.end())
    return;
  for (const auto& key : i->second.keys) {
    auto k = by_key_.find(key);
    if (k == by_key_.end())
      continue;
    auto& list = k->second;
    list.erase(std::remove(list.begin(), list.end(), id), list.end());
    if (list.empty())
      by_key_.erase(k);
  }
  pending_.erase(i);
}

std::vector<uint64_t> confirm_tracker::ids() const {
  std::vector<uint64_t> result;
  result.reserve(pending_.size());
  for (const auto& kv : pending_)
    result.push_back(kv.first);
  return result;
}

} // namespace syncmesh
