#include "actors/router_state.hpp"

#include <algorithm>

#include "messages/frame_codec.hpp"
#include "messages/value_proto.hpp"
#include "syncmesh/pb/wire.pb.h"

namespace syncmesh {

std::string validate_remote_record(const pb::WriteRecord& rec,
                                   const write_limits& limits) {
  if (rec.key().empty())
    return "empty key";
  if (rec.key().size() > limits.max_key_size)
    return "key of " + std::to_string(rec.key().size()) + " bytes exceeds "
           + std::to_string(limits.max_key_size);
  version v;
  if (auto err = from_proto(rec.version(), v); !err.empty())
    return err;
  if (rec.field_origins_size() > 0 && !rec.has_fields())
    return "field origins without fields";
  switch (rec.op_case()) {
    case pb::WriteRecord::kValue: {
      if (rec.value().ByteSizeLong() > limits.max_value_size)
        return "value exceeds " + std::to_string(limits.max_value_size)
               + " bytes";
      if (auto err = validate(rec.value(), limits.max_value_depth);
          !err.empty())
        return err;
      break;
    }
    case pb::WriteRecord::kFields: {
      if (rec.fields().entries_size() == 0)
        return "delta without fields";
      if (rec.fields().ByteSizeLong() > limits.max_value_size)
        return "fields exceed " + std::to_string(limits.max_value_size)
               + " bytes";
      if (auto err = validate(rec.fields(), limits.max_value_depth);
          !err.empty())
        return err;
      if (rec.field_origins_size() > rec.fields().entries_size())
        return "more field origins than fields";
      break;
    }
    case pb::WriteRecord::kTombstone:
      break;
    default:
      return "no operation";
  }
  return {};
}

std::string validate_remote_batch(const pb::WriteBatch& batch,
                                  const write_limits& limits) {
  int index = 0;
  for (const auto& rec : batch.records()) {
    if (auto err = validate_remote_record(rec, limits); !err.empty())
      return "record " + std::to_string(index) + ": " + err;
    ++index;
  }
  return {};
}

skipped_records remove_invalid_records(pb::WriteBatch& batch,
                                       const write_limits& limits) {
  skipped_records skipped;
  auto* records = batch.mutable_records();
  int kept = 0;
  for (int i = 0; i < records->size(); ++i) {
    auto err = validate_remote_record(records->Get(i), limits);
    if (!err.empty()) {
      if (skipped.count++ == 0)
        skipped.first_error = "record " + std::to_string(i) + ": " + err;
      continue;
    }
    if (kept != i)
      records->SwapElements(kept, i);
    ++kept;
  }
  // Only the refused records are left past `kept`.
  while (records->size() > kept)
    records->RemoveLast();
  return skipped;
}

envelope_builder::envelope_builder(node_id self, uint32_t max_hops,
                                   size_t max_frame_size)
    : self_(std::move(self)), max_hops_(max_hops),
      max_frame_size_(max_frame_size) {}

void envelope_builder::emit(pb::WriteBatch& part, bool delta, uint64_t now_us,
                            std::vector<std::string>& frames) {
  if (part.records_size() == 0)
    return;
  pb::Envelope env;
  auto id = self_;
  for (int shift = 56; shift >= 0; shift -= 8)
    id += static_cast<char>((next_message_ >> shift) & 0xff);
  ++next_message_;
  env.set_message_id(std::move(id));
  env.set_origin(self_);
  env.set_origin_time_us(now_us);
  env.set_hops_left(max_hops_);
  if (delta)
    part.SerializeToString(env.mutable_delta());
  else
    part.SerializeToString(env.mutable_write());
  std::string frame;
  if (append_frame(frame, env, max_frame_size_))
    frames.push_back(std::move(frame));
  part.Clear();
}

void envelope_builder::build(const pb::WriteBatch& batch, uint64_t now_us,
                             std::vector<std::string>& frames) {
  build(pb::WriteBatch{batch}, now_us, frames);
}

void envelope_builder::build(pb::WriteBatch&& batch, uint64_t now_us,
                             std::vector<std::string>& frames) {
  // Leave room for the envelope's own fields around the batch.
  const size_t budget
    = max_frame_size_ > 1024 ? max_frame_size_ - 1024 : max_frame_size_ / 2;
  pb::WriteBatch writes;
  pb::WriteBatch deltas;
  size_t write_bytes = 0;
  size_t delta_bytes = 0;
  for (auto& rec : *batch.mutable_records()) {
    bool is_delta = rec.has_fields();
    auto& part = is_delta ? deltas : writes;
    auto& bytes = is_delta ? delta_bytes : write_bytes;
    auto size = rec.ByteSizeLong() + 8;
    if (bytes + size > budget && part.records_size() > 0) {
      emit(part, is_delta, now_us, frames);
      bytes = 0;
    }
    part.mutable_records()->Add(std::move(rec));
    bytes += size;
  }
  emit(writes, false, now_us, frames);
  emit(deltas, true, now_us, frames);
}

std::string envelope_builder::decode_writes(const pb::Envelope& env,
                                            pb::WriteBatch& out) {
  const std::string* body = nullptr;
  if (env.body_case() == pb::Envelope::kWrite)
    body = &env.write();
  else if (env.body_case() == pb::Envelope::kDelta)
    body = &env.delta();
  else
    return "envelope carries no writes";
  if (!parse_untrusted(*body, out))
    return "write batch does not parse";
  bool want_fields = env.body_case() == pb::Envelope::kDelta;
  for (const auto& rec : out.records())
    if (rec.has_fields() != want_fields)
      return want_fields ? "delta body holds a whole-value write"
                         : "write body holds field writes";
  return {};
}

} // namespace syncmesh

namespace syncmesh {

bool seen_set::insert(const std::string& id, time_point now) {
  expire(now);
  if (ids_.count(id) > 0)
    return false;
  if (ids_.size() >= capacity_) {
    ids_.erase(order_.front().second);
    order_.pop_front();
  }
  ids_.insert(id);
  order_.emplace_back(now, id);
  return true;
}

void seen_set::expire(time_point now) {
  while (!order_.empty() && now - order_.front().first > ttl_) {
    ids_.erase(order_.front().second);
    order_.pop_front();
  }
}

address_book::address_book(size_t capacity, std::chrono::milliseconds min,
                           std::chrono::milliseconds max, uint64_t seed)
    : capacity_(capacity), min_(min), max_(max), rng_(seed) {}

address_book::entry* address_book::find(const address& addr) {
  for (auto& e : entries_)
    if (e.addr == addr)
      return &e;
  return nullptr;
}

bool address_book::add(const address& addr, bool seed, time_point now) {
  if (addr.port == 0 || addr.host.empty() || addr == self_)
    return false;
  if (auto* e = find(addr)) {
    e->seed |= seed;
    return false;
  }
  if (entries_.size() >= capacity_) {
    // Make room by dropping a learned address nobody is connected to.
    auto i = std::find_if(entries_.begin(), entries_.end(), [](const entry& e) {
      return !e.seed && !e.connected && !e.dialing;
    });
    if (i == entries_.end())
      return false;
    entries_.erase(i);
  }
  entries_.push_back(entry{addr, seed, false, false, 0, now});
  return true;
}

void address_book::set_self(const address& addr) {
  self_ = addr;
  forget(addr);
}

std::vector<address> address_book::due(time_point now, size_t n) {
  std::vector<address> result;
  // Seeds first: they are how a node finds the mesh at all.
  for (int pass = 0; pass < 2 && result.size() < n; ++pass) {
    for (auto& e : entries_) {
      if (result.size() >= n)
        break;
      if ((pass == 0) != e.seed || e.dialing || e.connected
          || e.next_dial > now)
        continue;
      e.dialing = true;
      result.push_back(e.addr);
    }
  }
  return result;
}

std::chrono::milliseconds address_book::backoff(uint32_t failures) const {
  auto delay = min_;
  for (uint32_t i = 1; i < failures && delay < max_; ++i)
    delay *= 2;
  return std::min(delay, max_);
}

void address_book::failed(const address& addr, time_point now) {
  auto* e = find(addr);
  if (e == nullptr)
    return;
  e->dialing = false;
  e->connected = false;
  ++e->failures;
  auto delay = backoff(e->failures);
  // Jitter of +-25% keeps a crowd of nodes from redialling in lockstep.
  std::uniform_real_distribution<double> jitter{0.75, 1.25};
  auto jittered = std::chrono::milliseconds{
    static_cast<int64_t>(static_cast<double>(delay.count()) * jitter(rng_))};
  e->next_dial = now + jittered;
}

void address_book::connected(const address& addr) {
  if (auto* e = find(addr)) {
    e->dialing = false;
    e->connected = true;
    e->failures = 0;
  }
}

void address_book::disconnected(const address& addr, time_point now) {
  if (auto* e = find(addr)) {
    e->dialing = false;
    e->connected = false;
    e->next_dial = now + min_;
  }
}

void address_book::forget(const address& addr) {
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const entry& e) { return e.addr == addr; }),
                 entries_.end());
}

} // namespace syncmesh
