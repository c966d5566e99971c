#pragma once

// The rules of /v1/watch without threads or sockets: a window of recent
// events, bounded in bytes and in count, shared by every watcher. A
// watcher is a cursor into the window plus a key prefix, never a private
// copy of the events, so N watchers cost N cursors, not N queues.
//
// Ids are "<run>-<seq>": `run` is random per process start (so an id from
// a previous process is recognised as foreign and the client is told to
// re-list), `seq` increases by one per event, also for events the window
// did not keep. A client resumes after an id when every event since it is
// still in the window; otherwise it must re-list (like etcd's compacted
// revision). A cursor is marked lost when an event it had not read (and
// that matches its prefix) is evicted: its stream must say `overflow` and
// end, never skip silently. Evicted events it would not have sent are
// passed over, so a slow prefix watcher is not cut for others' traffic.
//
// Not thread-safe: the watch_hub serialises every call.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace syncmesh {

/// The shared window of recent Server-Sent Events (see the file comment).
class event_window {
public:
  /// Names a cursor.
  using cursor_id = uint64_t;

  /// A window of at most `max_bytes` (events are counted with their key and
  /// a fixed overhead) and at most `max_events` events, whose ids start
  /// with `run` (letters and digits, no '-').
  event_window(std::string run, size_t max_bytes, size_t max_events);

  /// The id prefix of this process's events.
  const std::string& run() const { return run_; }

  /// Appends an event for `key` ("update", "delete", ... with its JSON
  /// data; formatted here, once for every watcher). `to_all`: every
  /// watcher gets it whatever its prefix (messages). Evicts the oldest
  /// events beyond the bounds, marking lagging cursors lost when an evicted
  /// event matches them. Returns the event's seq; the cursors that were
  /// waiting and match it are added to `woken`.
  uint64_t append(std::string_view key, bool to_all, std::string_view name,
                  std::string_view json, std::vector<cursor_id>& woken);

  /// An event happened that the window does not keep (nobody watches, so
  /// it was not even formatted): its seq is used up and the window
  /// emptied, so no id from before it can be resumed. For use with no
  /// cursor open; any open one is marked lost.
  void skip();

  /// The id of `seq` ("<run>-<seq>").
  std::string id_of(uint64_t seq) const;

  /// The seq the next event will get; `next_seq() - 1` is the newest.
  uint64_t next_seq() const { return next_seq_; }

  /// The seq of the oldest event kept (`next_seq()` when empty).
  uint64_t front_seq() const {
    return events_.empty() ? next_seq_ : events_.front().seq;
  }

  /// Bytes held by the events (text, key and overhead).
  size_t bytes() const { return bytes_; }

  /// Events held.
  size_t size() const { return events_.size(); }

  /// How an id given to resume from turned out.
  enum class resume_status {
    ok,        ///< every event after it is in the window
    compacted, ///< events after it were evicted or skipped: re-list
    foreign,   ///< not an id of this process's run: re-list
    malformed, ///< not "<run>-<seq>", or a seq not yet used
  };

  /// Where a cursor resuming after `id` starts (`seq` + 1), or why it
  /// cannot. An empty `id` means "from now on".
  resume_status locate(std::string_view id, uint64_t& start) const;

  /// Opens a cursor at `start` (from `locate`, or `next_seq()` for new
  /// events only) that sees events whose key starts with `prefix`.
  cursor_id open(std::string prefix, uint64_t start);

  /// Closes a cursor (unknown ids are ignored).
  void close(cursor_id c);

  /// Cursors open.
  size_t cursors() const { return cursors_.size(); }

  /// What `read` found.
  enum class read_status {
    data,  ///< events were appended to `out`
    empty, ///< nothing new: the cursor now waits for `append` to wake it
    lost,  ///< events the cursor needed were evicted: overflow
  };

  /// Appends the cursor's next matching events to `out`, whole events,
  /// until `out` holds at least `max_bytes` (at least one event is always
  /// taken, whatever its size). Non-matching events are passed over.
  read_status read(cursor_id c, size_t max_bytes, std::string& out);

  /// The id of the last event a cursor has passed (all before it were
  /// delivered or did not match), or, once lost, had passed before the
  /// loss: what its overflow event and keep-alives report.
  std::string reached(cursor_id c) const;

  /// The fixed bytes counted for each event besides its text and key.
  static constexpr size_t overhead = 64;

private:
  struct event {
    uint64_t seq;
    bool to_all;
    std::string key;
    std::string text;
  };

  struct cursor {
    std::string prefix;
    /// The seq of the next event to look at (stale while waiting).
    uint64_t pos;
    /// Read everything; `append` wakes it on a matching event. Listed in
    /// its group, passed over by eviction.
    bool waiting = false;
    /// An unread matching event was evicted.
    bool lost = false;
    /// Once lost: the seq of the last event passed before the loss.
    uint64_t reached = 0;
  };

  static bool matches(const event& e, const cursor& c) {
    return e.to_all || e.key.compare(0, c.prefix.size(), c.prefix) == 0;
  }

  /// The cursors of one prefix.
  struct group {
    /// Those waiting (woken together by a matching event).
    std::vector<cursor_id> waiting;
    /// Those open.
    size_t cursors = 0;
  };

  /// Wakes the waiting cursors that `e` matches.
  void wake(const event& e, std::vector<cursor_id>& woken);

  /// Marks a cursor that read everything as waiting.
  void start_waiting(cursor_id id, cursor& c);

  void evict_front();

  std::string run_;
  size_t max_bytes_;
  size_t max_events_;
  std::deque<event> events_;
  size_t bytes_ = 0;
  uint64_t next_seq_ = 1;
  std::unordered_map<cursor_id, cursor> cursors_;
  cursor_id next_cursor_ = 1;
  /// No cursor that is not waiting has `pos` below this: evicting an event
  /// older than it needs no look at the cursors.
  uint64_t floor_ = 0;
  /// The cursors by prefix.
  std::unordered_map<std::string, group> groups_;
  /// How many prefixes of each length `groups_` holds: an event looks up
  /// only these lengths of its key.
  std::map<size_t, size_t> lengths_;
  /// Cursors waiting, in all groups.
  size_t waiting_count_ = 0;
};

} // namespace syncmesh
