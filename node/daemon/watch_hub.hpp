#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace syncmesh {

/// Fans node events out to watch streams, each with a bounded queue: a slow
/// watcher loses its oldest events (and is told how many), never blocks the
/// node, never grows memory without bound.
class watch_hub {
public:
  /// One watch stream's queue.
  struct watcher {
    /// Only events for keys starting with this are queued.
    std::string prefix;
    /// Server-Sent Events, each already formatted.
    std::deque<std::string> events;
    /// Events dropped because the queue was full, not yet reported.
    size_t dropped = 0;
  };

  /// At most `max_watchers` streams, each queueing at most `queue_limit`.
  watch_hub(size_t max_watchers, size_t queue_limit)
      : max_watchers_(max_watchers), queue_limit_(queue_limit) {}

  /// Registers a stream; nullptr when the cap is reached or the hub closed.
  std::shared_ptr<watcher> join(std::string prefix);

  /// Unregisters a stream.
  void leave(const std::shared_ptr<watcher>& w);

  /// Queues an SSE event for every stream whose prefix matches `key`.
  void publish(const std::string& key, const std::string& event_name,
               const std::string& json_data);

  /// Waits up to `timeout` for events for `w`; moves them (plus a note about
  /// dropped events) into `out`. Returns false once the hub is closed.
  template <class Duration>
  bool wait(const std::shared_ptr<watcher>& w, Duration timeout,
            std::string& out) {
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait_for(guard, timeout,
                 [&] { return closed_ || !w->events.empty() || w->dropped; });
    if (w->dropped > 0) {
      out += "event: overflow\ndata: {\"dropped\":" + std::to_string(w->dropped)
             + "}\n\n";
      w->dropped = 0;
    }
    while (!w->events.empty()) {
      out += std::move(w->events.front());
      w->events.pop_front();
    }
    return !closed_;
  }

  /// Queues an SSE event for every stream, whatever its prefix (messages).
  void publish_all(const std::string& event_name, const std::string& json_data);

  /// Ends every stream (at shutdown).
  void close();

  /// Streams open now.
  size_t size() const;

private:
  /// Queues a formatted event, dropping the oldest when full; needs mtx_.
  void append(watcher& w, const std::string& event);

  size_t max_watchers_;
  size_t queue_limit_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<watcher>> watchers_;
  bool closed_ = false;
};

} // namespace syncmesh
