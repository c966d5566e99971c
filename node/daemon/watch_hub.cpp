#include "node/daemon/watch_hub.hpp"

#include <iostream>
#include <random>

namespace syncmesh {

using clock = std::chrono::steady_clock;

/// One /v1/watch stream: a cursor of the hub's window and, while it has
/// nothing to send, the server's parked `deliver`. Every member is guarded
/// by the hub's mutex.
class watch_hub::stream : public http::chunk_source {
public:
  stream(std::shared_ptr<watch_hub> hub, event_window::cursor_id cursor,
         std::string preamble)
      : hub_(std::move(hub)), cursor_(cursor), preamble_(std::move(preamble)) {}

  ~stream() override {
    std::lock_guard<std::mutex> guard{hub_->mtx_};
    hub_->leave_locked(*this);
  }

  void next(deliver_fn deliver) override {
    std::string chunk;
    bool last = false;
    {
      std::lock_guard<std::mutex> guard{hub_->mtx_};
      if (gone_)
        return;
      if (!hub_->fill_locked(*this, chunk, last)) {
        pending_ = std::move(deliver);
        since_ = clock::now();
        return;
      }
    }
    deliver(std::move(chunk), last);
  }

  void cancel() override {
    deliver_fn dropped; // may own the connection: released after the lock
    std::lock_guard<std::mutex> guard{hub_->mtx_};
    dropped = std::move(pending_);
    pending_ = nullptr;
    hub_->leave_locked(*this);
  }

private:
  friend class watch_hub;

  std::shared_ptr<watch_hub> hub_;
  event_window::cursor_id cursor_;
  /// Sent before the first events: the id the stream starts from.
  std::string preamble_;
  /// The server's callback while the stream waits for events.
  deliver_fn pending_;
  /// When `pending_` was parked (for keep-alives).
  clock::time_point since_{};
  /// Left the hub (cancelled, ended or the hub closed).
  bool gone_ = false;
};

watch_hub::watch_hub(watch_options opts, std::string run, log_fn log)
    : opts_(opts), log_(std::move(log)),
      window_(run.empty() ? random_run() : std::move(run), opts.window_bytes,
              opts.window_events) {
  counters_.window_limit = opts_.window_bytes;
}

std::string watch_hub::random_run() {
  std::random_device rd;
  std::mt19937_64 gen{
    (static_cast<uint64_t>(rd()) << 32) ^ rd()
    ^ static_cast<uint64_t>(clock::now().time_since_epoch().count())};
  static const char* hex = "0123456789abcdef";
  std::string out(16, '0');
  auto x = gen();
  for (auto& ch : out) {
    ch = hex[x & 15];
    x >>= 4;
  }
  return out;
}

void watch_hub::set_feed(feed_fn feed) {
  std::lock_guard<std::mutex> guard{mtx_};
  feed_ = std::move(feed);
}

watch_hub::opened watch_hub::open(std::string prefix, std::string_view last_id,
                                  std::function<void(bool)> on_fed) {
  opened out;
  std::lock_guard<std::mutex> guard{mtx_};
  out.newest = window_.id_of(window_.next_seq() - 1);
  if (closed_) {
    out.status = open_status::closed;
    return out;
  }
  if (watchers_.load(std::memory_order_relaxed) >= opts_.max_watchers) {
    ++counters_.refused;
    out.status = open_status::full;
    return out;
  }
  uint64_t start = 0;
  switch (window_.locate(last_id, start)) {
    case event_window::resume_status::ok:
      break;
    case event_window::resume_status::compacted:
      ++counters_.compacted;
      out.status = open_status::compacted;
      return out;
    case event_window::resume_status::foreign:
      ++counters_.compacted;
      out.status = open_status::foreign;
      return out;
    case event_window::resume_status::malformed:
      out.status = open_status::malformed;
      return out;
  }
  if (!last_id.empty())
    ++counters_.resumes;
  auto cursor = window_.open(std::move(prefix), start);
  // An id-only block: the client's Last-Event-ID is set before any event
  // arrives, so even a stream that saw nothing can resume.
  auto preamble = ": watching\nid: " + window_.id_of(start - 1) + "\n\n";
  auto s
    = std::make_shared<stream>(shared_from_this(), cursor, std::move(preamble));
  streams_.emplace(cursor, s.get());
  watchers_.fetch_add(1, std::memory_order_relaxed);
  ever_watched_ = true;
  out.stream = std::move(s);
  if (feed_ && !feed_on_) {
    // Nothing was published while the feed was off, and the window was
    // emptied when it went off (wanted()), so this stream starts "from
    // now on" (an id from before answered compacted above). It is answered
    // once the node publishes again: a write the client makes after it
    // sees the stream's first bytes is then never missed.
    feed_on_ = true;
    out.feed_pending = true;
    feed_(true, std::move(on_fed));
  }
  return out;
}

void watch_hub::leave_locked(stream& s) {
  if (s.gone_)
    return;
  s.gone_ = true;
  window_.close(s.cursor_);
  streams_.erase(s.cursor_);
  if (watchers_.fetch_sub(1, std::memory_order_relaxed) == 1)
    last_left_ = clock::now();
}

bool watch_hub::fill_locked(stream& s, std::string& chunk, bool& last) {
  if (closed_) {
    last = true;
    return true;
  }
  chunk = std::move(s.preamble_);
  s.preamble_.clear();
  switch (window_.read(s.cursor_, opts_.chunk_bytes, chunk)) {
    case event_window::read_status::data:
      return true;
    case event_window::read_status::empty:
      return !chunk.empty();
    case event_window::read_status::lost:
      break;
  }
  auto reached = window_.reached(s.cursor_);
  chunk += "event: overflow\ndata: {\"id\":\"" + reached
           + "\",\"message\":\"this watcher fell behind the node's event "
             "window and events were lost: re-list (GET /v1/kv?prefix=) "
             "and watch again\"}\n\n";
  last = true;
  ++counters_.overflows;
  log_limited("watch: a slow watcher fell out of the event window at " + reached
              + "; its stream ends with an overflow event");
  return true;
}

bool watch_hub::wanted() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (closed_)
    return false;
  if (watchers_.load(std::memory_order_relaxed) > 0
      || (ever_watched_ && clock::now() - last_left_ < opts_.resume_grace))
    return true;
  window_.skip();
  ++counters_.skipped;
  if (feed_ && feed_on_) {
    // Nobody wants events: the node stops building them until a stream
    // opens (events already on their way are skipped here).
    feed_on_ = false;
    std::weak_ptr<watch_hub> weak = shared_from_this();
    feed_(false, [weak](bool ok) {
      if (auto hub = weak.lock(); hub && ok) {
        std::lock_guard<std::mutex> guard{hub->mtx_};
        ++hub->counters_.feed_offs;
      }
    });
  }
  return false;
}

void watch_hub::publish(std::string_view key, std::string_view name,
                        std::string_view json) {
  publish_impl(key, false, name, json);
}

void watch_hub::publish_all(std::string_view name, std::string_view json) {
  publish_impl({}, true, name, json);
}

void watch_hub::publish_impl(std::string_view key, bool to_all,
                             std::string_view name, std::string_view json) {
  std::vector<std::pair<deliver_fn, std::string>> wake;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closed_)
      return;
    woken_.clear();
    window_.append(key, to_all, name, json, woken_);
    ++counters_.published;
    for (auto cursor : woken_) {
      auto i = streams_.find(cursor);
      if (i == streams_.end() || !i->second->pending_)
        continue; // busy writing (or keep-alive): reads on its next call
      std::string chunk;
      bool last = false;
      if (!fill_locked(*i->second, chunk, last))
        continue;
      wake.emplace_back(std::move(i->second->pending_), std::move(chunk));
      i->second->pending_ = nullptr;
    }
  }
  // The server posts each chunk to its connection's strand: cheap, and
  // never back into this hub while we hold the lock.
  for (auto& [deliver, chunk] : wake)
    deliver(std::move(chunk), false);
}

void watch_hub::heartbeat(clock::time_point now) {
  std::vector<std::pair<deliver_fn, std::string>> due;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& [cursor, s] : streams_) {
      if (!s->pending_ || now - s->since_ < opts_.heartbeat)
        continue;
      // The id moves the client's resume point past the events that did
      // not match its prefix, so a quiet prefix does not age out.
      due.emplace_back(std::move(s->pending_),
                       ": keepalive\nid: " + window_.reached(cursor) + "\n\n");
      s->pending_ = nullptr;
      ++counters_.keepalives;
    }
  }
  for (auto& [deliver, chunk] : due)
    deliver(std::move(chunk), false);
}

void watch_hub::close() {
  std::vector<deliver_fn> ending;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    closed_ = true;
    feed_ = nullptr; // the bridge it calls stops after this
    for (auto& [cursor, s] : streams_)
      if (s->pending_) {
        ending.push_back(std::move(s->pending_));
        s->pending_ = nullptr;
      }
  }
  for (auto& deliver : ending)
    deliver({}, true);
}

watch_stats watch_hub::stats() const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto out = counters_;
  out.watchers = watchers_.load(std::memory_order_relaxed);
  out.window_bytes = window_.bytes();
  out.window_events = window_.size();
  out.feed_on = feed_on_ ? 1 : 0;
  return out;
}

void watch_hub::log_limited(const std::string& line) {
  std::string text;
  {
    std::lock_guard<std::mutex> guard{log_mtx_};
    auto now = clock::now();
    if (log_last_ != clock::time_point{}
        && now - log_last_ < std::chrono::seconds(1)) {
      ++log_held_;
      return;
    }
    log_last_ = now;
    text = line;
    if (log_held_ > 0)
      text += " (" + std::to_string(log_held_) + " similar lines held back)";
    log_held_ = 0;
  }
  if (log_)
    log_(text);
  else
    std::cerr << "syncmesh-node: " << text << "\n";
}

} // namespace syncmesh
