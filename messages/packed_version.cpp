#include "messages/packed_version.hpp"

namespace syncmesh {

namespace {

template <class T>
int three_way(const T& x, const T& y) noexcept {
  return x < y ? -1 : (y < x ? 1 : 0);
}

} // namespace

node_id_table::node_id_table() {
  ids_.emplace_back();
  counts_.push_back(0);
  refs_.emplace(std::string_view{ids_.front()}, node_ref{0});
}

node_ref node_id_table::intern(std::string_view id) {
  if (id.empty())
    return 0;
  if (auto i = refs_.find(id); i != refs_.end()) {
    ++counts_[i->second];
    return i->second;
  }
  node_ref ref;
  if (!free_.empty()) {
    ref = free_.back();
    free_.pop_back();
    ids_[ref].assign(id.data(), id.size());
  } else {
    ref = static_cast<node_ref>(ids_.size());
    ids_.emplace_back(id);
    counts_.push_back(0);
  }
  counts_[ref] = 1;
  refs_.emplace(std::string_view{ids_[ref]}, ref);
  return ref;
}

void node_id_table::retain(node_ref ref) noexcept {
  if (ref != 0)
    ++counts_[ref];
}

void node_id_table::release(node_ref ref) noexcept {
  if (ref == 0 || --counts_[ref] > 0)
    return;
  refs_.erase(std::string_view{ids_[ref]});
  raw_node_id{}.swap(ids_[ref]); // frees a long ID's heap block
  free_.push_back(ref);
}

int node_id_table::compare(node_ref x, node_ref y) const noexcept {
  if (x == y)
    return 0;
  return three_way(ids_[x].compare(ids_[y]), 0);
}

int node_id_table::compare(const raw_node_id& x, node_ref y) const noexcept {
  if (y == 0)
    return x.empty() ? 0 : 1;
  return three_way(x.compare(ids_[y]), 0);
}

packed_version pack(node_id_table& ids, const version& v) {
  packed_version result;
  result.epoch = v.epoch;
  result.claim_us = v.claim_us;
  result.wall_us = v.stamp.wall_us;
  result.lease_end_us = v.lease_end_us;
  result.counter = v.stamp.counter;
  result.claimer = ids.intern(v.claimer);
  try {
    result.node = ids.intern(v.stamp.node);
  } catch (...) {
    ids.release(result.claimer); // no reference leaks when interning throws
    throw;
  }
  return result;
}

version unpack(const node_id_table& ids, const packed_version& v) {
  version result;
  result.epoch = v.epoch;
  result.claim_us = v.claim_us;
  result.claimer = ids.bytes(v.claimer);
  result.stamp.wall_us = v.wall_us;
  result.stamp.counter = v.counter;
  result.stamp.node = ids.bytes(v.node);
  result.lease_end_us = v.lease_end_us;
  return result;
}

int compare(const node_id_table& ids, const packed_version& x,
            const packed_version& y) noexcept {
  if (auto c = three_way(x.epoch, y.epoch))
    return c;
  // Within an epoch the earlier claim wins, hence the reversed operands.
  if (auto c = three_way(y.claim_us, x.claim_us))
    return c;
  if (auto c = ids.compare(y.claimer, x.claimer))
    return c;
  if (auto c = three_way(x.wall_us, y.wall_us))
    return c;
  if (auto c = three_way(x.counter, y.counter))
    return c;
  return ids.compare(x.node, y.node);
}

int compare(const node_id_table& ids, const version& x,
            const packed_version& y) noexcept {
  if (auto c = three_way(x.epoch, y.epoch))
    return c;
  if (auto c = three_way(y.claim_us, x.claim_us))
    return c;
  // Reversed: the smaller claimer wins.
  if (auto c = -ids.compare(x.claimer, y.claimer))
    return c;
  if (auto c = three_way(x.stamp.wall_us, y.wall_us))
    return c;
  if (auto c = three_way(x.stamp.counter, y.counter))
    return c;
  return ids.compare(x.stamp.node, y.node);
}

} // namespace syncmesh
