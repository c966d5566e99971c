#include "node/daemon/event_window.hpp"

#include <algorithm>
#include <limits>

namespace syncmesh {

event_window::event_window(std::string run, size_t max_bytes, size_t max_events)
    : run_(std::move(run)), max_bytes_(max_bytes),
      max_events_(std::max<size_t>(max_events, 1)) {}

std::string event_window::id_of(uint64_t seq) const {
  return run_ + "-" + std::to_string(seq);
}

uint64_t event_window::append(std::string_view key, bool to_all,
                              std::string_view name, std::string_view json,
                              std::vector<cursor_id>& woken) {
  auto seq = next_seq_++;
  event e{seq, to_all, std::string{key}, {}};
  auto id = id_of(seq);
  e.text.reserve(id.size() + name.size() + json.size() + 24);
  e.text.append("id: ").append(id).append("\nevent: ").append(name);
  e.text.append("\ndata: ").append(json).append("\n\n");
  bytes_ += e.text.size() + e.key.size() + overhead;
  if (waiting_count_ > 0)
    wake(e, woken);
  events_.push_back(std::move(e));
  // The newest event stays even when it alone is above the byte bound
  // (the node's value size limit bounds it).
  while (events_.size() > 1
         && (bytes_ > max_bytes_ || events_.size() > max_events_))
    evict_front();
  return seq;
}

void event_window::wake(const event& e, std::vector<cursor_id>& woken) {
  // Waiting cursors have passed over everything before this event. Only
  // the prefixes that `e.key` starts with are looked up (one lookup per
  // distinct prefix length), so idle watchers of other prefixes cost
  // nothing per event; a group's list keeps its capacity for the next wait.
  auto wake_group = [&](group& g) {
    for (auto id : g.waiting) {
      auto& c = cursors_.at(id);
      c.waiting = false;
      c.pos = e.seq;
      woken.push_back(id);
    }
    if (!g.waiting.empty())
      floor_ = std::min(floor_, e.seq);
    waiting_count_ -= g.waiting.size();
    g.waiting.clear();
  };
  if (e.to_all) {
    for (auto& [prefix, g] : groups_)
      wake_group(g);
  } else {
    for (const auto& [len, n] : lengths_) {
      if (len > e.key.size())
        break;
      if (auto g = groups_.find(e.key.substr(0, len)); g != groups_.end())
        wake_group(g->second);
    }
  }
}

void event_window::start_waiting(cursor_id id, cursor& c) {
  c.waiting = true;
  groups_.at(c.prefix).waiting.push_back(id);
  ++waiting_count_;
}

void event_window::evict_front() {
  auto& e = events_.front();
  if (e.seq >= floor_) {
    // Some cursor may still need this event: pass it over for the cursors
    // it does not match, mark lost those it does.
    auto lowest = std::numeric_limits<uint64_t>::max();
    for (auto& [cid, c] : cursors_) {
      if (c.waiting)
        continue; // nothing unread: it would have been woken
      if (c.pos <= e.seq) {
        if (!c.lost && matches(e, c)) {
          c.lost = true;
          c.reached = e.seq - 1;
        }
        c.pos = e.seq + 1;
      }
      lowest = std::min(lowest, c.pos);
    }
    floor_ = lowest;
  }
  bytes_ -= e.text.size() + e.key.size() + overhead;
  events_.pop_front();
}

void event_window::skip() {
  ++next_seq_;
  events_.clear();
  bytes_ = 0;
  // The hub skips only with no cursors open; one that is open anyway may
  // have needed the event, and saying so is the only honest answer.
  for (auto& [cid, c] : cursors_) {
    if (!c.lost) {
      c.lost = true;
      c.reached = c.waiting ? next_seq_ - 2 : c.pos - 1;
    }
    c.waiting = false;
    c.pos = next_seq_;
  }
  for (auto& [prefix, g] : groups_)
    g.waiting.clear();
  waiting_count_ = 0;
}

event_window::resume_status event_window::locate(std::string_view id,
                                                 uint64_t& start) const {
  if (id.empty()) {
    start = next_seq_;
    return resume_status::ok;
  }
  // "<run>-<seq>" with a short run of letters and digits and at most 19
  // digits of seq (no overflow).
  auto dash = id.rfind('-');
  if (id.size() > 64 || dash == std::string_view::npos || dash == 0
      || dash + 1 == id.size() || id.size() - dash - 1 > 19)
    return resume_status::malformed;
  auto run = id.substr(0, dash);
  auto digits = id.substr(dash + 1);
  uint64_t seq = 0;
  for (auto ch : digits) {
    if (ch < '0' || ch > '9')
      return resume_status::malformed;
    seq = seq * 10 + static_cast<uint64_t>(ch - '0');
  }
  for (auto ch : run)
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z')
          || (ch >= 'A' && ch <= 'Z')))
      return resume_status::malformed;
  if (run != run_)
    return resume_status::foreign;
  if (seq >= next_seq_)
    return resume_status::malformed;
  if (seq + 1 < front_seq())
    return resume_status::compacted;
  start = seq + 1;
  return resume_status::ok;
}

event_window::cursor_id event_window::open(std::string prefix, uint64_t start) {
  auto id = next_cursor_++;
  cursor c;
  c.prefix = std::move(prefix);
  c.pos = std::clamp(start, front_seq(), next_seq_);
  floor_ = std::min(floor_, c.pos);
  auto [g, fresh] = groups_.try_emplace(c.prefix);
  if (fresh)
    ++lengths_[c.prefix.size()];
  ++g->second.cursors;
  cursors_.emplace(id, std::move(c));
  return id;
}

void event_window::close(cursor_id id) {
  auto i = cursors_.find(id);
  if (i == cursors_.end())
    return;
  auto g = groups_.find(i->second.prefix);
  if (i->second.waiting) {
    auto& ids = g->second.waiting;
    auto at = std::find(ids.begin(), ids.end(), id);
    *at = ids.back();
    ids.pop_back();
    --waiting_count_;
  }
  if (--g->second.cursors == 0) {
    auto len = g->first.size();
    groups_.erase(g);
    if (--lengths_[len] == 0)
      lengths_.erase(len);
  }
  cursors_.erase(i);
}

event_window::read_status event_window::read(cursor_id id, size_t max_bytes,
                                             std::string& out) {
  auto i = cursors_.find(id);
  if (i == cursors_.end())
    return read_status::lost;
  auto& c = i->second;
  if (c.lost)
    return read_status::lost;
  if (c.waiting)
    return read_status::empty; // nothing matched since it started waiting
  auto front = front_seq();
  if (c.pos < front) {
    // Cannot happen (eviction moves cursors along); if it did, the cursor
    // missed events, and saying so is the only honest answer.
    c.lost = true;
    c.reached = c.pos - 1;
    return read_status::lost;
  }
  auto start_size = out.size();
  bool took = false;
  for (auto k = static_cast<size_t>(c.pos - front); k < events_.size(); ++k) {
    const auto& e = events_[k];
    c.pos = e.seq + 1;
    if (!matches(e, c))
      continue;
    out += e.text;
    took = true;
    if (out.size() - start_size >= max_bytes)
      break;
  }
  if (took)
    return read_status::data;
  // Passed over everything up to the newest event: wait for a match.
  start_waiting(id, c);
  return read_status::empty;
}

std::string event_window::reached(cursor_id id) const {
  auto i = cursors_.find(id);
  if (i == cursors_.end())
    return id_of(next_seq_ - 1);
  const auto& c = i->second;
  if (c.lost)
    return id_of(c.reached);
  // A waiting cursor has passed over every event so far.
  return id_of(c.waiting ? next_seq_ - 1 : c.pos - 1);
}

} // namespace syncmesh
