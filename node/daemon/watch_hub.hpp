#pragma once

// The /v1/watch streams of one node: an event_window shared by every
// watcher, and one chunk_source per stream that the HTTP server pulls
// from. Event-driven: a stream that has nothing to send parks the server's
// `deliver` callback; the next matching event (or a keep-alive, or the
// end) answers it. No thread per watcher and no polling thread: events
// are published from the node's event subscription, keep-alives from the
// API's once-a-second sampler.
//
// Memory: the window (bytes and count bounded), plus at most one chunk
// per stream held by the server (`chunk_bytes`, or one event when a
// single event is larger). A watcher too slow for the window is told
// `event: overflow` (with the last id it reached) and its stream ends.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "node/daemon/event_window.hpp"
#include "node/daemon/http_exchange.hpp"

namespace syncmesh {

/// The limits of the watch streams.
struct watch_options {
  /// Most streams open at once (`--http-max-watchers`); 503 beyond.
  size_t max_watchers = 10'000;
  /// Bytes of recent events kept for all watchers and for resuming
  /// (`--http-watch-window`).
  size_t window_bytes = 8 * 1024 * 1024;
  /// Most events kept in the window, whatever their size.
  size_t window_events = 100'000;
  /// Bytes of events handed to the server per chunk of one stream: what a
  /// stream holds in the server while its client reads.
  size_t chunk_bytes = 64 * 1024;
  /// A stream idle this long gets a `: keepalive` comment (proxies keep it
  /// open, a vanished client is noticed).
  std::chrono::milliseconds heartbeat{15'000};
  /// How long the window keeps recording after the last watcher left, so
  /// a client that reconnects can resume; with nobody watching for longer
  /// events are not even formatted, and old ids answer "re-list".
  std::chrono::milliseconds resume_grace{300'000};
};

/// Counters of the watch streams for /metrics (monotonic unless noted).
struct watch_stats {
  uint64_t watchers = 0;      ///< streams open now (gauge)
  uint64_t published = 0;     ///< events put into the window
  uint64_t skipped = 0;       ///< events not kept: nobody watching
  uint64_t overflows = 0;     ///< streams ended with `event: overflow`
  uint64_t resumes = 0;       ///< streams resumed after an id
  uint64_t compacted = 0;     ///< resumes refused with 410 (re-list)
  uint64_t refused = 0;       ///< streams refused at the cap (503)
  uint64_t keepalives = 0;    ///< keep-alive comments sent
  uint64_t window_bytes = 0;  ///< bytes in the window now (gauge)
  uint64_t window_events = 0; ///< events in the window now (gauge)
  uint64_t window_limit = 0;  ///< the window's byte bound (gauge)
  uint64_t feed_on = 0;       ///< the node's events flow to the hub (gauge)
  uint64_t feed_offs = 0;     ///< feed switched off, as the node confirmed
};

/// The watch streams of one node (see the file comment). Create with
/// std::make_shared: streams share ownership of the hub.
class watch_hub : public std::enable_shared_from_this<watch_hub> {
public:
  /// Log sink for overflow lines (rate-limited); null: stderr.
  using log_fn = std::function<void(const std::string&)>;

  /// A hub whose ids start with `run` (empty: a random one).
  explicit watch_hub(watch_options opts, std::string run = {}, log_fn log = {});

  /// A random run id (16 hex digits), new for every process start.
  static std::string random_run();

  /// Why a stream could not be opened, or that it was.
  enum class open_status { ok, full, closed, compacted, foreign, malformed };

  /// The outcome of `open`.
  struct opened {
    open_status status = open_status::ok;
    /// The stream (status ok).
    std::shared_ptr<http::chunk_source> stream;
    /// The newest id now (for the 410 answer: where a re-listed client
    /// stands).
    std::string newest;
    /// The feed is being switched on: answer the stream in `on_fed`.
    bool feed_pending = false;
  };

  /// Switches the node's event feed on (`on`) or off; `done` runs once
  /// the node confirmed (on: it publishes events), false when it could
  /// not. Called with the hub's lock held, so switches reach the
  /// node in the order they were decided: it must only queue the request.
  using feed_fn = std::function<void(bool on, std::function<void(bool)> done)>;

  /// Lets the hub switch the node's event feed: off at the first event
  /// nobody wants (building each event costs the node ~10 % of a relaying
  /// node's CPU in chain3), on again when a stream opens. Without it the
  /// feed stays on. Call before the first event; the feed is on then.
  void set_feed(feed_fn feed);

  /// Opens a stream of the events whose key starts with `prefix` (and
  /// every message), from now on or, with `last_id`, resuming after it.
  /// When the feed was off, it is switched on and `status` is ok with
  /// `feed_pending` set: the stream must not be answered before `on_fed`
  /// runs (true: the node publishes; false: it could not, answer 503).
  opened open(std::string prefix, std::string_view last_id,
              std::function<void(bool)> on_fed = {});

  /// Decides, for one event of the node, whether to format and publish it
  /// (true) or to use up its seq without keeping it (false: nobody has
  /// watched for `resume_grace`). Atomic with `open`, so a stream opened
  /// meanwhile never misses an event.
  bool wanted();

  /// Publishes a key's event (`name`: update, delete, lease_lost) with its
  /// JSON data, waking the streams that wait for it. Call after `wanted`.
  void publish(std::string_view key, std::string_view name,
               std::string_view json);

  /// Publishes an event every stream gets whatever its prefix (messages).
  void publish_all(std::string_view name, std::string_view json);

  /// Sends `: keepalive` to streams idle since `heartbeat`; call about
  /// once a second.
  void heartbeat(std::chrono::steady_clock::time_point now);

  /// Ends every stream (at shutdown); later opens answer `closed`.
  void close();

  /// Streams open now.
  size_t size() const { return watchers_.load(std::memory_order_relaxed); }

  /// The counters.
  watch_stats stats() const;

  /// The limits.
  const watch_options& options() const { return opts_; }

  /// One stream (defined in watch_hub.cpp).
  class stream;

private:
  using deliver_fn = http::chunk_source::deliver_fn;

  /// Appends to `chunk` what stream `s` should send next; true when there
  /// is something (`last`: end the stream), false when it must wait.
  /// Needs mtx_.
  bool fill_locked(stream& s, std::string& chunk, bool& last);

  /// Publishes and collects the streams to wake; delivers outside the lock.
  void publish_impl(std::string_view key, bool to_all, std::string_view name,
                    std::string_view json);

  /// A stream ends (cancelled or destroyed); idempotent. Needs mtx_.
  void leave_locked(stream& s);

  /// Logs, at most once a second, with a count of the lines held back.
  void log_limited(const std::string& line);

  watch_options opts_;
  log_fn log_;
  mutable std::mutex mtx_;
  event_window window_;
  std::unordered_map<event_window::cursor_id, stream*> streams_;
  std::vector<event_window::cursor_id> woken_;
  bool closed_ = false;
  std::atomic<size_t> watchers_{0};
  /// When the last watcher left (steady clock); none yet: never recorded.
  std::chrono::steady_clock::time_point last_left_{};
  bool ever_watched_ = false;
  /// See set_feed(); `feed_on_` is what was last asked of the node.
  feed_fn feed_;
  bool feed_on_ = true;
  watch_stats counters_;
  std::mutex log_mtx_;
  std::chrono::steady_clock::time_point log_last_{};
  uint64_t log_held_ = 0;
};

} // namespace syncmesh
