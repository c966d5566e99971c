// /v1/watch that tells the truth: the event window's rules as a plain
// class, the hub's streams with a recording `deliver`, and the API with a
// real in-process node and server spoken to over raw sockets (ids,
// resume, 410 re-list, overflow of a slow client with bounded memory,
// 1,000 watchers, the cap).

#define BOOST_TEST_MODULE syncmesh_watch
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "node/daemon/event_window.hpp"
#include "node/daemon/http_api.hpp"
#include "node/daemon/watch_hub.hpp"
#include "support/caf_setup.hpp"
#include "support/eventually.hpp"

using namespace std::chrono_literals;
using syncmesh::event_window;
using syncmesh::watch_hub;
using syncmesh::watch_options;
using syncmesh::test::eventually;

namespace {

using read_status = event_window::read_status;
using resume_status = event_window::resume_status;

/// Appends an update event for `key` with a `pad`-byte payload.
uint64_t add(event_window& w, const std::string& key, size_t pad = 0) {
  std::vector<event_window::cursor_id> woken;
  return w.append(key, false, "update",
                  "{\"key\":\"" + key + "\",\"pad\":\"" + std::string(pad, 'x')
                    + "\"}",
                  woken);
}

/// How often `needle` occurs in `text`.
size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size()))
    ++n;
  return n;
}

} // namespace

// -- the window ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(events_carry_increasing_ids_of_the_run) {
  event_window w{"abc", 1 << 20, 1000};
  BOOST_CHECK_EQUAL(add(w, "a"), 1u);
  BOOST_CHECK_EQUAL(add(w, "b"), 2u);
  auto c = w.open("", 1);
  std::string out;
  BOOST_REQUIRE(w.read(c, 1 << 20, out) == read_status::data);
  BOOST_CHECK_EQUAL(out, "id: abc-1\nevent: update\ndata: "
                         "{\"key\":\"a\",\"pad\":\"\"}\n\n"
                         "id: abc-2\nevent: update\ndata: "
                         "{\"key\":\"b\",\"pad\":\"\"}\n\n");
  BOOST_CHECK_EQUAL(w.reached(c), "abc-2");
}

BOOST_AUTO_TEST_CASE(the_window_is_bounded_in_bytes_and_count) {
  event_window w{"r", 10'000, 1000};
  for (int i = 0; i < 100; ++i) {
    add(w, "k" + std::to_string(i), 900);
    BOOST_REQUIRE_LE(w.bytes(), 10'000u);
  }
  BOOST_CHECK_GE(w.size(), 5u); // ~1 KB events, 10 KB window
  BOOST_CHECK_LE(w.size(), 10u);
  BOOST_CHECK_EQUAL(w.front_seq(), 101 - w.size());
  event_window few{"r", 1 << 20, 3};
  for (int i = 0; i < 10; ++i)
    add(few, "k");
  BOOST_CHECK_EQUAL(few.size(), 3u);
  // One event larger than the whole window is kept alone.
  add(w, "huge", 50'000);
  BOOST_CHECK_EQUAL(w.size(), 1u);
  add(w, "small");
  BOOST_CHECK_EQUAL(w.size(), 1u);
  BOOST_CHECK_LE(w.bytes(), 10'000u);
}

BOOST_AUTO_TEST_CASE(resume_inside_the_window_replays_what_followed) {
  event_window w{"r", 1 << 20, 5};
  for (int i = 1; i <= 8; ++i)
    add(w, "k" + std::to_string(i)); // keeps 4..8
  uint64_t start = 0;
  BOOST_CHECK(w.locate("r-6", start) == resume_status::ok);
  BOOST_CHECK_EQUAL(start, 7u);
  auto c = w.open("", start);
  std::string out;
  BOOST_REQUIRE(w.read(c, 1 << 20, out) == read_status::data);
  BOOST_CHECK_EQUAL(count_of(out, "id: "), 2u);
  BOOST_CHECK(out.find("id: r-7\n") != std::string::npos);
  BOOST_CHECK(out.find("id: r-8\n") != std::string::npos);
  // The oldest resumable id is the one just before the window.
  BOOST_CHECK(w.locate("r-3", start) == resume_status::ok);
  BOOST_CHECK_EQUAL(start, 4u);
  BOOST_CHECK(w.locate("r-2", start) == resume_status::compacted);
  BOOST_CHECK(w.locate("r-8", start) == resume_status::ok);
  BOOST_CHECK_EQUAL(start, 9u);
  BOOST_CHECK(w.locate("", start) == resume_status::ok);
  BOOST_CHECK_EQUAL(start, 9u);
}

BOOST_AUTO_TEST_CASE(foreign_and_malformed_ids_are_told_apart) {
  event_window w{"r1", 1 << 20, 5};
  add(w, "k");
  uint64_t start = 0;
  BOOST_CHECK(w.locate("r0-1", start) == resume_status::foreign);
  BOOST_CHECK(w.locate("r1-2", start) == resume_status::malformed); // unused
  BOOST_CHECK(w.locate("r1-x", start) == resume_status::malformed);
  BOOST_CHECK(w.locate("r1-", start) == resume_status::malformed);
  BOOST_CHECK(w.locate("-1", start) == resume_status::malformed);
  BOOST_CHECK(w.locate("nodash", start) == resume_status::malformed);
  BOOST_CHECK(w.locate("r1-99999999999999999999", start)
              == resume_status::malformed);
  BOOST_CHECK(w.locate("r/1-1", start) == resume_status::malformed);
  BOOST_CHECK(w.locate(std::string(100, 'a') + "-1", start)
              == resume_status::malformed);
}

BOOST_AUTO_TEST_CASE(skipped_events_make_older_ids_compacted) {
  event_window w{"r", 1 << 20, 100};
  add(w, "a");
  add(w, "b");
  w.skip(); // seq 3, not kept
  BOOST_CHECK_EQUAL(w.size(), 0u);
  uint64_t start = 0;
  BOOST_CHECK(w.locate("r-2", start) == resume_status::compacted);
  BOOST_CHECK(w.locate("r-3", start) == resume_status::ok);
  BOOST_CHECK_EQUAL(add(w, "c"), 4u);
}

BOOST_AUTO_TEST_CASE(a_cursor_sees_its_prefix_and_every_message) {
  event_window w{"r", 1 << 20, 100};
  auto c = w.open("user/", w.next_seq());
  std::vector<event_window::cursor_id> woken;
  add(w, "user/1");
  add(w, "other");
  w.append({}, true, "message", "{\"m\":1}", woken);
  add(w, "user"); // shorter than the prefix
  add(w, "user/2");
  std::string out;
  BOOST_REQUIRE(w.read(c, 1 << 20, out) == read_status::data);
  BOOST_CHECK_EQUAL(count_of(out, "id: "), 3u);
  BOOST_CHECK(out.find("user/1") != std::string::npos);
  BOOST_CHECK(out.find("event: message") != std::string::npos);
  BOOST_CHECK(out.find("user/2") != std::string::npos);
  BOOST_CHECK(out.find("other") == std::string::npos);
  out.clear();
  BOOST_CHECK(w.read(c, 1 << 20, out) == read_status::empty);
}

BOOST_AUTO_TEST_CASE(reads_are_chunked_by_bytes_whole_events_at_a_time) {
  event_window w{"r", 1 << 20, 100};
  auto c = w.open("", w.next_seq());
  for (int i = 0; i < 10; ++i)
    add(w, "k", 100);
  std::string out;
  BOOST_REQUIRE(w.read(c, 250, out) == read_status::data);
  BOOST_CHECK_EQUAL(count_of(out, "id: "), 2u); // ~140 bytes each
  out.clear();
  BOOST_REQUIRE(w.read(c, 1, out) == read_status::data);
  BOOST_CHECK_EQUAL(count_of(out, "id: "), 1u);
  BOOST_CHECK_EQUAL(w.reached(c), "r-3");
}

BOOST_AUTO_TEST_CASE(a_waiting_cursor_is_woken_only_by_a_match) {
  event_window w{"r", 1 << 20, 3};
  auto c = w.open("w", w.next_seq());
  std::string out;
  BOOST_REQUIRE(w.read(c, 1 << 20, out) == read_status::empty);
  std::vector<event_window::cursor_id> woken;
  // Many non-matching events pass through the small window: the waiting
  // cursor is moved along with them, never lost.
  for (int i = 0; i < 10; ++i)
    w.append("x", false, "update", "{}", woken);
  BOOST_CHECK(woken.empty());
  BOOST_CHECK_EQUAL(w.reached(c), "r-10");
  w.append("w1", false, "update", "{}", woken);
  BOOST_REQUIRE_EQUAL(woken.size(), 1u);
  BOOST_CHECK_EQUAL(woken[0], c);
  BOOST_REQUIRE(w.read(c, 1 << 20, out) == read_status::data);
  BOOST_CHECK_EQUAL(count_of(out, "id: "), 1u);
}

BOOST_AUTO_TEST_CASE(waiting_cursors_are_found_by_the_prefixes_of_the_key) {
  event_window w{"r", 1 << 20, 100};
  std::map<std::string, event_window::cursor_id> c;
  for (auto p : {"", "a", "ab", "abc", "x", "ab2"}) {
    c[p] = w.open(p, w.next_seq());
    std::string out;
    BOOST_REQUIRE(w.read(c[p], 1 << 20, out) == read_status::empty);
  }
  auto second_ab = w.open("ab", w.next_seq()); // same prefix, one group
  std::string out;
  BOOST_REQUIRE(w.read(second_ab, 1 << 20, out) == read_status::empty);
  w.close(c["a"]); // a closed waiting cursor is never woken
  std::vector<event_window::cursor_id> woken;
  w.append("abd", false, "update", "{}", woken);
  std::set<event_window::cursor_id> got{woken.begin(), woken.end()};
  BOOST_CHECK(
    (got == std::set<event_window::cursor_id>{c[""], c["ab"], second_ab}));
  // The woken ones read it; the others are still waiting, and a message
  // wakes every one of them.
  woken.clear();
  w.append({}, true, "message", "{}", woken);
  got = {woken.begin(), woken.end()};
  BOOST_CHECK(
    (got == std::set<event_window::cursor_id>{c["abc"], c["x"], c["ab2"]}));
  out.clear();
  BOOST_REQUIRE(w.read(c["ab"], 1 << 20, out) == read_status::data);
  BOOST_CHECK_EQUAL(count_of(out, "id: "), 2u); // abd and the message
  out.clear();
  BOOST_REQUIRE(w.read(c["x"], 1 << 20, out) == read_status::data);
  BOOST_CHECK_EQUAL(count_of(out, "id: "), 1u); // the message only
  BOOST_CHECK_EQUAL(w.reached(c["x"]), "r-2");
  for (auto& [p, id] : c)
    w.close(id);
  w.close(second_ab);
  BOOST_CHECK_EQUAL(w.cursors(), 0u);
}

BOOST_AUTO_TEST_CASE(a_slow_cursor_is_lost_only_for_events_it_needed) {
  event_window w{"r", 1 << 20, 4};
  auto a = w.open("a", w.next_seq());
  auto b = w.open("b", w.next_seq());
  // Neither reads (both busy writing): the evicted "b" events 1 and 2 are
  // passed over for `a`, and lose `b`, which needed them.
  for (int i = 0; i < 6; ++i)
    add(w, "b");
  std::string out;
  BOOST_CHECK(w.read(b, 1 << 20, out) == read_status::lost);
  BOOST_CHECK_EQUAL(w.reached(b), "r-0");
  BOOST_CHECK(out.empty());
  BOOST_REQUIRE(w.read(a, 1 << 20, out) == read_status::empty);
  BOOST_CHECK_EQUAL(w.reached(a), "r-6");
  std::vector<event_window::cursor_id> woken;
  w.append("a1", false, "update", "{}", woken); // seq 7 wakes `a`
  BOOST_REQUIRE_EQUAL(woken.size(), 1u);
  // `a` does not read; four more events evict a1, which it needed.
  for (int i = 0; i < 4; ++i)
    add(w, "b");
  BOOST_CHECK(w.read(a, 1 << 20, out) == read_status::lost);
  BOOST_CHECK(out.empty());
  BOOST_CHECK_EQUAL(w.reached(a), "r-6");
  w.close(a);
  w.close(b);
  BOOST_CHECK_EQUAL(w.cursors(), 0u);
}

// -- the hub's streams --------------------------------------------------------

namespace {

/// Records what a stream delivers.
struct recorder {
  std::mutex mtx;
  std::string got;
  int calls = 0;
  bool ended = false;

  syncmesh::http::chunk_source::deliver_fn fn() {
    return [this](std::string chunk, bool last) {
      std::lock_guard<std::mutex> guard{mtx};
      got += chunk;
      ++calls;
      ended = ended || last;
    };
  }
};

watch_options small_hub() {
  watch_options o;
  o.max_watchers = 2;
  o.window_bytes = 4096;
  o.window_events = 100;
  o.chunk_bytes = 1024;
  o.heartbeat = 1s;
  return o;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_stream_waits_and_is_woken_by_a_matching_event) {
  auto hub = std::make_shared<watch_hub>(small_hub(), "run");
  auto opened = hub->open("k", "");
  BOOST_REQUIRE(opened.status == watch_hub::open_status::ok);
  recorder r;
  opened.stream->next(r.fn()); // the preamble with the starting id
  BOOST_CHECK_EQUAL(r.got, ": watching\nid: run-0\n\n");
  opened.stream->next(r.fn()); // parks
  BOOST_CHECK_EQUAL(r.calls, 1);
  BOOST_REQUIRE(hub->wanted());
  hub->publish("x", "update", "{}");
  BOOST_CHECK_EQUAL(r.calls, 1);
  BOOST_REQUIRE(hub->wanted());
  hub->publish("k1", "update", "{\"v\":1}");
  BOOST_CHECK_EQUAL(r.calls, 2);
  BOOST_CHECK(r.got.find("id: run-2\nevent: update\ndata: {\"v\":1}\n\n")
              != std::string::npos);
  // Keep-alives only after `heartbeat` of idleness, with the reached id.
  opened.stream->next(r.fn());
  auto now = std::chrono::steady_clock::now();
  hub->heartbeat(now);
  BOOST_CHECK_EQUAL(r.calls, 2);
  hub->heartbeat(now + 2s);
  BOOST_CHECK_EQUAL(r.calls, 3);
  BOOST_CHECK(r.got.find(": keepalive\nid: run-2\n\n") != std::string::npos);
  // Closing the hub ends a parked stream.
  opened.stream->next(r.fn());
  hub->close();
  BOOST_CHECK(r.ended);
  BOOST_CHECK(hub->open("", "").status == watch_hub::open_status::closed);
}

BOOST_AUTO_TEST_CASE(a_slow_stream_gets_overflow_and_ends) {
  auto hub = std::make_shared<watch_hub>(small_hub(), "run");
  auto opened = hub->open("", "");
  recorder r;
  opened.stream->next(r.fn()); // preamble; the "server" is now writing it
  for (int i = 0; i < 50; ++i) {
    BOOST_REQUIRE(hub->wanted());
    hub->publish("k", "update", "{\"pad\":\"" + std::string(200, 'x') + "\"}");
    BOOST_REQUIRE_LE(hub->stats().window_bytes, 4096u);
  }
  opened.stream->next(r.fn());
  BOOST_CHECK(r.ended);
  BOOST_CHECK(r.got.find("event: overflow\ndata: {\"id\":\"run-0\"")
              != std::string::npos);
  BOOST_CHECK_EQUAL(hub->stats().overflows, 1u);
  opened.stream->cancel();
  BOOST_CHECK_EQUAL(hub->size(), 0u);
}

BOOST_AUTO_TEST_CASE(the_hub_caps_streams_and_refuses_old_ids) {
  auto hub = std::make_shared<watch_hub>(small_hub(), "run");
  auto a = hub->open("", "");
  auto b = hub->open("", "");
  BOOST_CHECK(hub->open("", "").status == watch_hub::open_status::full);
  BOOST_CHECK_EQUAL(hub->stats().refused, 1u);
  a.stream->cancel();
  b.stream.reset(); // a stream dropped without cancel also leaves
  BOOST_CHECK_EQUAL(hub->size(), 0u);
  BOOST_CHECK(hub->open("", "other-1").status
              == watch_hub::open_status::foreign);
  BOOST_CHECK(hub->open("", "run-5").status
              == watch_hub::open_status::malformed);
  BOOST_CHECK(hub->open("", "run-0").status == watch_hub::open_status::ok);
  BOOST_CHECK_EQUAL(hub->stats().resumes, 1u);
  BOOST_CHECK_EQUAL(hub->stats().compacted, 1u);
}

BOOST_AUTO_TEST_CASE(nobody_watching_for_the_grace_skips_events) {
  auto opts = small_hub();
  opts.resume_grace = 0ms;
  auto hub = std::make_shared<watch_hub>(opts, "run");
  BOOST_CHECK(!hub->wanted()); // nobody ever watched: seq 1 used up
  auto s = hub->open("", "");
  BOOST_REQUIRE(hub->wanted());
  hub->publish("k", "update", "{}"); // seq 2
  s.stream->cancel();
  BOOST_CHECK(!hub->wanted()); // seq 3 skipped, the window emptied
  BOOST_CHECK(hub->open("", "run-2").status
              == watch_hub::open_status::compacted);
  BOOST_CHECK_EQUAL(hub->stats().skipped, 2u);
}

BOOST_AUTO_TEST_CASE(the_feed_goes_off_with_nobody_watching_and_on_at_an_open) {
  auto opts = small_hub();
  opts.resume_grace = 0ms;
  auto hub = std::make_shared<watch_hub>(opts, "run");
  std::vector<bool> asked;
  std::vector<std::function<void(bool)>> answers;
  hub->set_feed([&](bool on, std::function<void(bool)> done) {
    asked.push_back(on);
    answers.push_back(std::move(done));
  });
  // Nobody watches: the first unwanted event switches the feed off, once.
  BOOST_CHECK(!hub->wanted());
  BOOST_CHECK(!hub->wanted());
  BOOST_CHECK((asked == std::vector<bool>{false}));
  BOOST_CHECK_EQUAL(hub->stats().feed_on, 0u);
  BOOST_CHECK_EQUAL(hub->stats().feed_offs, 0u);
  answers.back()(true); // the node confirmed
  BOOST_CHECK_EQUAL(hub->stats().feed_offs, 1u);
  // A stream opens: the feed goes on and the stream waits for the node.
  bool fed = false;
  auto s = hub->open("", "", [&](bool ok) { fed = ok; });
  BOOST_REQUIRE(s.status == watch_hub::open_status::ok);
  BOOST_CHECK(s.feed_pending);
  BOOST_CHECK((asked == std::vector<bool>{false, true}));
  BOOST_CHECK(!fed);
  answers.back()(true);
  BOOST_CHECK(fed);
  BOOST_CHECK_EQUAL(hub->stats().feed_on, 1u);
  // A second stream finds the feed on: nothing to wait for.
  auto t = hub->open("", "", [](bool) {});
  BOOST_CHECK(!t.feed_pending);
  BOOST_CHECK_EQUAL(asked.size(), 2u);
  // Both leave: off again at the next event (grace 0).
  s.stream->cancel();
  t.stream->cancel();
  BOOST_CHECK(!hub->wanted());
  BOOST_CHECK((asked == std::vector<bool>{false, true, false}));
  // After close() the hub asks nothing more of the node.
  hub->close();
  BOOST_CHECK(hub->open("", "", [](bool) {}).status
              == watch_hub::open_status::closed);
  BOOST_CHECK_EQUAL(asked.size(), 3u);
}

// -- the API over sockets -----------------------------------------------------

namespace {

/// A node with its HTTP API on an OS-picked port, in this process.
struct api_fixture {
  syncmesh::test::threaded_config cfg;
  caf::actor_system sys{cfg};
  std::unique_ptr<syncmesh::sync_socket> sock;
  std::unique_ptr<syncmesh::http_api> api;
  uint16_t port = 0;

  explicit api_fixture(syncmesh::http_options opts = {}) {
    syncmesh::config c;
    c.listen = false;
    sock = std::make_unique<syncmesh::sync_socket>(sys, c);
    api = std::make_unique<syncmesh::http_api>(*sock, opts);
    std::string err;
    port = api->start("127.0.0.1", 0, err);
    BOOST_REQUIRE_MESSAGE(port != 0, err);
  }

  ~api_fixture() {
    api.reset();
    sock.reset();
  }
};

/// A raw client socket: what a watcher, fast or slow, looks like.
struct raw_client {
  int fd = -1;
  std::string got;

  /// Connects; `rcvbuf` > 0 shrinks the receive buffer (a slow client
  /// whose kernel holds little).
  explicit raw_client(uint16_t port, int rcvbuf = 0) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    BOOST_REQUIRE(fd >= 0);
    if (rcvbuf > 0)
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }

  ~raw_client() {
    if (fd >= 0)
      ::close(fd);
  }

  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  /// Sends a GET with extra header lines ("Name: value\r\n" each).
  void get(const std::string& target, const std::string& headers = {}) {
    auto req
      = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + "\r\n";
    BOOST_REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL)
                  == static_cast<ssize_t>(req.size()));
  }

  /// Reads what is there without waiting; false once the peer closed.
  bool pump() {
    char buf[65536];
    for (;;) {
      auto n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) {
        got.append(buf, static_cast<size_t>(n));
        continue;
      }
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
  }

  /// Reads until `pred(got)` holds or `limit` passes (polling the socket).
  bool read_until(const std::function<bool(const std::string&)>& pred,
                  std::chrono::milliseconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (pred(got))
        return true;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return false;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) > 0 && !pump())
        return pred(got);
    }
  }

  /// Reads until `text` arrived.
  bool wait_for(const std::string& text,
                std::chrono::milliseconds limit = 10s) {
    return read_until(
      [&](const std::string& g) { return g.find(text) != std::string::npos; },
      limit);
  }

  /// Reads until the server closes the connection.
  bool read_to_end(std::chrono::milliseconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return false;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) > 0 && !pump())
        return true;
    }
  }

  /// The status code of the response, 0 before its status line.
  int status() const {
    static const std::regex line{R"(^HTTP/1\.1 (\d{3}) )"};
    std::smatch m;
    return std::regex_search(got, m, line) ? std::stoi(m[1]) : 0;
  }
};

/// This process's resident set in bytes (from /proc/self/statm), after
/// glibc returned its free pages: what is held, not what malloc's
/// per-thread arenas keep cached (which alone varied the growth measured
/// below between 6 and 17 MB from run to run).
size_t rss_bytes() {
  ::malloc_trim(0);
  std::ifstream statm{"/proc/self/statm"};
  size_t pages = 0;
  size_t resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

/// The `id:` of the event that carries `text`.
std::string id_before(const std::string& got, const std::string& text) {
  auto at = got.find(text);
  BOOST_REQUIRE(at != std::string::npos);
  auto id = got.rfind("id: ", at);
  BOOST_REQUIRE(id != std::string::npos);
  auto end = got.find('\n', id);
  return got.substr(id + 4, end - id - 4);
}

} // namespace

BOOST_AUTO_TEST_CASE(a_watcher_sees_a_write_with_an_id_and_resumes) {
  api_fixture fx;
  raw_client w{fx.port};
  w.get("/v1/watch?prefix=w");
  BOOST_REQUIRE(w.wait_for(": watching\nid: "));
  BOOST_CHECK_EQUAL(w.status(), 200);
  fx.sock->set("x-not-watched", "v");
  fx.sock->set("w1", "one");
  BOOST_REQUIRE(w.wait_for("\"w1\""));
  BOOST_CHECK(w.got.find("x-not-watched") == std::string::npos);
  auto id = id_before(w.got, "\"w1\"");
  BOOST_CHECK(std::regex_match(id, std::regex{R"([0-9a-f]{16}-\d+)"}));
  // The client goes away; what happens meanwhile is replayed on resume.
  ::close(w.fd);
  w.fd = -1;
  fx.sock->set("w2", "two");
  fx.sock->erase("w1");
  raw_client again{fx.port};
  again.get("/v1/watch?prefix=w", "Last-Event-ID: " + id + "\r\n");
  BOOST_REQUIRE(again.wait_for("event: delete"));
  BOOST_CHECK(again.got.find("\"w2\"") != std::string::npos);
  BOOST_CHECK(again.got.find("\"one\"") == std::string::npos); // not again
  BOOST_CHECK_LT(again.got.find("\"w2\""), again.got.find("event: delete"));
  // `?since=` does the same.
  raw_client since{fx.port};
  since.get("/v1/watch?prefix=w&since=" + id);
  BOOST_REQUIRE(since.wait_for("event: delete"));
  BOOST_CHECK_EQUAL(fx.api->watch_stats().resumes, 2u);
}

BOOST_AUTO_TEST_CASE(old_and_foreign_ids_answer_410_relist) {
  syncmesh::http_options opts;
  opts.watch.window_events = 4;
  api_fixture fx{opts};
  raw_client w{fx.port};
  w.get("/v1/watch");
  BOOST_REQUIRE(w.wait_for(": watching\n"));
  fx.sock->set("a", "1");
  BOOST_REQUIRE(w.wait_for("\"a\""));
  auto old = id_before(w.got, "\"a\"");
  for (int i = 0; i < 10; ++i)
    fx.sock->set("k" + std::to_string(i), std::to_string(i));
  // (`w` itself may fall out of so small a window: it is not asked.)
  BOOST_REQUIRE(
    eventually([&] { return fx.api->watch_stats().published >= 11; }));
  raw_client late{fx.port};
  late.get("/v1/watch", "Last-Event-ID: " + old + "\r\n");
  BOOST_REQUIRE(late.wait_for("}"));
  BOOST_CHECK_EQUAL(late.status(), 410);
  BOOST_CHECK(late.got.find("\"error\":\"compacted\"") != std::string::npos);
  raw_client foreign{fx.port};
  foreign.get("/v1/watch?since=0123456789abcdef-1");
  BOOST_REQUIRE(foreign.wait_for("}"));
  BOOST_CHECK_EQUAL(foreign.status(), 410);
  raw_client bad{fx.port};
  bad.get("/v1/watch?since=nonsense");
  BOOST_REQUIRE(bad.wait_for("}"));
  BOOST_CHECK_EQUAL(bad.status(), 400);
  BOOST_CHECK_EQUAL(fx.api->watch_stats().compacted, 2u);
}

BOOST_AUTO_TEST_CASE(a_slow_watcher_gets_overflow_while_memory_stays_bounded) {
  syncmesh::http_options opts;
  opts.watch.window_bytes = 256 * 1024;
  opts.watch.chunk_bytes = 16 * 1024;
  api_fixture fx{opts};
  raw_client slow{fx.port, 4096};
  slow.get("/v1/watch");
  BOOST_REQUIRE(slow.wait_for(": watching\n"));
  // The client stops reading; 32 MiB of events go through a 256 KiB
  // window, far more than the sockets' buffers hold.
  std::string big(32 * 1024, 'v');
  for (int i = 0; i < 16; ++i) // the store's own copies, before measuring
    fx.sock->set("big" + std::to_string(i), big);
  auto rss_before = rss_bytes();
  for (int i = 0; i < 1024; ++i) {
    fx.sock->set("big" + std::to_string(i % 16), big);
    BOOST_REQUIRE_LE(fx.api->watch_stats().window_bytes, 256u * 1024);
  }
  // 32 MiB of events passed; a queue per watcher (the old design held
  // 1,024 events of any size) would have kept them all, 32 MiB and more.
  // What the process itself adds (threads' first stack pages, allocator
  // caches) measured 6-17 MB across runs on the CI machine, hence 24 MiB.
  auto grown = rss_bytes() - std::min(rss_before, rss_bytes());
  BOOST_TEST_MESSAGE("RSS grew by " << grown / 1024 << " KiB");
  BOOST_CHECK_LT(grown, 24u << 20);
  // A fast watcher opened once the node's events are all published (a
  // backlog of 32 KiB events could outrun even a reading client in so
  // small a window) still works.
  BOOST_REQUIRE(
    eventually([&] { return fx.api->watch_stats().published >= 1040; }));
  raw_client fast{fx.port};
  fast.get("/v1/watch");
  BOOST_REQUIRE(fast.wait_for(": watching\n"));
  fx.sock->set("after", "1");
  BOOST_REQUIRE(fast.wait_for("\"after\""));
  // The slow one reads again: what the sockets held, then the overflow
  // event, then the end of the stream.
  BOOST_REQUIRE(slow.read_to_end(20s));
  BOOST_CHECK(slow.got.find("event: overflow\ndata: {\"id\":\"")
              != std::string::npos);
  BOOST_CHECK(slow.got.find("\"after\"") == std::string::npos);
  auto st = fx.api->watch_stats();
  BOOST_CHECK_EQUAL(st.overflows, 1u);
  BOOST_CHECK_LE(st.window_bytes, 256u * 1024);
  BOOST_CHECK(eventually([&] { return fx.api->watch_stats().watchers == 1; }));
}

BOOST_AUTO_TEST_CASE(a_watcher_during_a_join_of_10000_keys_sees_every_key) {
  // The API's node (empty) joins a node holding 10,000 keys; its watcher
  // must see every key or be told (overflow): never a silent gap.
  api_fixture fx;
  syncmesh::config c;
  syncmesh::sync_socket full{fx.sys, c};
  for (int batch = 0; batch < 10; ++batch) {
    std::vector<std::pair<std::string, syncmesh::value>> kvs;
    for (int i = 0; i < 1000; ++i)
      kvs.emplace_back("join/" + std::to_string(batch * 1000 + i), "v");
    full.update(kvs);
  }
  raw_client w{fx.port};
  w.get("/v1/watch?prefix=join/");
  BOOST_REQUIRE(w.wait_for(": watching\n"));
  fx.sock->connect("127.0.0.1", full.port());
  size_t updates = 0;
  size_t scanned = 0;
  const std::string needle = "event: update\n";
  auto done = [&](const std::string& got) {
    // Counts each match once: the next scan starts past the last match and
    // where no complete match can begin yet.
    auto from = scanned > 16 ? scanned - 16 : 0;
    if (got.find("event: overflow", from) != std::string::npos)
      return true;
    for (auto pos = got.find(needle, scanned); pos != std::string::npos;
         pos = got.find(needle, pos + needle.size())) {
      ++updates;
      scanned = pos + needle.size();
    }
    if (got.size() + 1 > needle.size())
      scanned = std::max(scanned, got.size() + 1 - needle.size());
    return updates >= 10'000;
  };
  BOOST_REQUIRE(w.read_until(done, 60s));
  BOOST_CHECK(w.got.find("event: overflow") == std::string::npos);
  std::set<std::string> keys;
  const std::string tag = "\"key\":\"";
  for (auto pos = w.got.find(tag); pos != std::string::npos;
       pos = w.got.find(tag, pos + 1)) {
    auto begin = pos + tag.size();
    keys.insert(w.got.substr(begin, w.got.find('"', begin) - begin));
  }
  BOOST_CHECK_EQUAL(keys.size(), 10'000u);
  BOOST_CHECK_EQUAL(fx.api->watch_stats().overflows, 0u);
}

BOOST_AUTO_TEST_CASE(with_nobody_watching_the_node_builds_no_events) {
  api_fixture fx;
  // No watcher has ever opened: the first write's event is skipped and
  // switches the node's event feed off.
  fx.sock->set("before", "1");
  BOOST_REQUIRE(
    eventually([&] { return fx.api->watch_stats().feed_offs == 1; }));
  BOOST_CHECK_EQUAL(fx.api->watch_stats().feed_on, 0u);
  auto skipped = fx.api->watch_stats().skipped;
  // Confirmed off: the store builds no event for these writes.
  for (int i = 0; i < 100; ++i)
    fx.sock->set("quiet-" + std::to_string(i), "v");
  // A watcher switches it on again and is answered once events flow.
  raw_client w{fx.port};
  w.get("/v1/watch");
  BOOST_REQUIRE(w.wait_for(": watching\n"));
  BOOST_CHECK_EQUAL(w.status(), 200);
  fx.sock->set("after", "2");
  BOOST_REQUIRE(w.wait_for("\"after\""));
  // Any event built for the quiet writes would have reached the hub
  // before this one (one path, in order) and been counted as skipped.
  BOOST_CHECK_EQUAL(fx.api->watch_stats().skipped, skipped);
  BOOST_CHECK(w.got.find("quiet-") == std::string::npos);
  BOOST_CHECK_EQUAL(fx.api->watch_stats().feed_on, 1u);
}

BOOST_AUTO_TEST_CASE(a_thousand_watchers_each_receive_one_write) {
  api_fixture fx;
  std::vector<std::unique_ptr<raw_client>> clients;
  for (int i = 0; i < 1000; ++i) {
    clients.push_back(std::make_unique<raw_client>(fx.port));
    clients.back()->get("/v1/watch?prefix=fan");
  }
  BOOST_REQUIRE(
    eventually([&] { return fx.api->watch_stats().watchers == 1000; }, 30s));
  // One deadline for all: a broken fan-out fails in seconds, not in
  // 1,000 timeouts.
  auto deadline = std::chrono::steady_clock::now() + 30s;
  auto left = [&] {
    return std::max(1ms, std::chrono::duration_cast<std::chrono::milliseconds>(
                           deadline - std::chrono::steady_clock::now()));
  };
  for (auto& c : clients)
    BOOST_REQUIRE(c->wait_for(": watching\n", left()));
  fx.sock->set("fan-out", "hello");
  size_t got = 0;
  for (auto& c : clients)
    got += c->wait_for("\"fan-out\"", left()) ? 1 : 0;
  BOOST_CHECK_EQUAL(got, 1000u);
}

BOOST_AUTO_TEST_CASE(watchers_beyond_the_cap_get_503) {
  syncmesh::http_options opts;
  opts.watch.max_watchers = 3;
  api_fixture fx{opts};
  std::vector<std::unique_ptr<raw_client>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<raw_client>(fx.port));
    open.back()->get("/v1/watch");
    BOOST_REQUIRE(open.back()->wait_for(": watching\n"));
  }
  raw_client refused{fx.port};
  refused.get("/v1/watch");
  BOOST_REQUIRE(refused.wait_for("}"));
  BOOST_CHECK_EQUAL(refused.status(), 503);
  BOOST_CHECK(refused.got.find("Retry-After: 5") != std::string::npos);
  BOOST_CHECK(refused.got.find("\"error\":\"overloaded\"")
              != std::string::npos);
  // A stream that ends frees its place.
  open.pop_back();
  BOOST_REQUIRE(
    eventually([&] { return fx.api->watch_stats().watchers == 2; }));
  raw_client next{fx.port};
  next.get("/v1/watch");
  BOOST_CHECK(next.wait_for(": watching\n"));
}
