// The blocking py2p-style API (syncmesh::sync_socket) on a real scheduler,
// including the one-node cases of py2p's own test_sync.py.

#define BOOST_TEST_MODULE syncmesh_api
#include <boost/test/unit_test.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/facade.hpp"
#include "actors/store_reader.hpp"
#include "node/facade_requester.hpp"
#include "node/write_combiner.hpp"
#include "support/caf_setup.hpp"
#include "support/eventually.hpp"
#include "support/remote_writes.hpp"
#include "support/scratch_dir.hpp"
#include "syncmesh/sync_socket.hpp"

using namespace std::chrono_literals;
using namespace syncmesh;
using syncmesh::test::eventually;
using syncmesh::test::remote_version;
using syncmesh::test::set_record;
using syncmesh::test::write_envelope;

namespace {

constexpr uint64_t hour_us = 3'600'000'000;
const std::string other_id = "other-node";
const node_id other = node_id::from_raw(other_id);

/// One actor system per test; sockets die before it.
struct api_fixture {
  test::threaded_config cfg;
  caf::actor_system sys{cfg};
};

/// Collects values from callbacks and lets the test wait for them.
template <class T>
struct mailbox {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<T> items;

  void push(T x) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      items.push_back(std::move(x));
    }
    cv.notify_all();
  }

  /// Waits (with a deadline) until at least `n` items arrived.
  bool wait_for(size_t n) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, 5s, [&] { return items.size() >= n; });
  }
};

/// Injects a write from another node as the mesh would deliver it, and
/// waits until the router accepted it.
void inject(caf::actor_system& sys, sync_socket& sock,
            const pb::Envelope& env) {
  caf::scoped_actor self{sys};
  bool accepted = false;
  self
    ->request(internals(sock).router, 5s, inbound_atom::value,
              std::string{"peer-1"}, env)
    .receive([&](bool ok) { accepted = ok; },
             [&](caf::error& err) { BOOST_FAIL(sys.render(err)); });
  BOOST_REQUIRE(accepted);
}

/// A whole-value write by `other_id`, claimed and stamped at `at_us`.
pb::Envelope remote_set(const std::string& key, const value& val,
                        uint64_t at_us, bool leasing = true) {
  // A claim's epoch is its claim time (see lease_state.cpp).
  auto v = leasing
             ? remote_version(other_id, at_us, at_us, at_us, at_us + hour_us)
             : remote_version("", 0, 0, at_us, 0);
  if (!leasing)
    v.stamp.node = other_id;
  return write_envelope(other_id, {set_record(key, val, v)});
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(py2p_test_sync, api_fixture)

BOOST_AUTO_TEST_CASE(store_and_read_back) {
  sync_socket sock{sys};
  sock["test"] = "value";
  BOOST_CHECK(sock["test"] == "value");
  BOOST_CHECK_EQUAL(sock.get("test")->as_text(), "value");
  BOOST_CHECK_EQUAL(sock.at("test"), value{"value"});
  BOOST_CHECK(sock.contains("test"));
  BOOST_CHECK_EQUAL(sock.size(), 1u);
  BOOST_CHECK_THROW(sock.at("missing"), key_error);
  BOOST_CHECK_THROW(static_cast<value>(sock["missing"]), key_error);
  BOOST_CHECK(!sock.get("missing"));
  BOOST_CHECK_EQUAL(sock.get("missing", value{42}), value{42});
}

BOOST_AUTO_TEST_CASE(text_and_bytes_name_the_same_key) {
  sync_socket sock{sys};
  sock.set(u8"测试", "unicode");
  const char raw[] = "\xe6\xb5\x8b\xe8\xaf\x95";
  std::vector<uint8_t> as_bytes(raw, raw + 6);
  BOOST_CHECK(sock[as_bytes] == "unicode");
  BOOST_CHECK(sock[std::string_view{raw}] == "unicode");
  std::array<std::byte, 1> k{std::byte{'k'}};
  sock[k] = value::from_bytes(std::string("\x00\x01", 2));
  BOOST_CHECK(sock.at("k").is_bytes());
  BOOST_CHECK(sock["k"] == std::string_view("\x00\x01", 2));
  BOOST_CHECK_EQUAL(sock.size(), 2u);
}

BOOST_AUTO_TEST_CASE(every_value_kind_round_trips) {
  sync_socket sock{sys};
  std::vector<value> samples{
    value{},
    value{true},
    value{int64_t{-5}},
    value{uint64_t{18'446'744'073'709'551'615u}},
    value{2.5},
    value{"text"},
    value::from_bytes(std::string("\0\xff", 2)),
    value{value_list{1, "two", value_list{3.0}}},
    value{{"a", 1}, {"b", value{{"c", value_list{}}}}},
    value{ext_value{7, "payload"}},
  };
  for (size_t i = 0; i < samples.size(); ++i)
    sock.set("k" + std::to_string(i), samples[i]);
  for (size_t i = 0; i < samples.size(); ++i)
    BOOST_CHECK_EQUAL(sock.at("k" + std::to_string(i)), samples[i]);
}

BOOST_AUTO_TEST_CASE(update_sets_every_pair) {
  sync_socket sock{sys};
  sock.update(std::map<std::string, value>{{"a", 1}, {"b", "two"}, {"c", 3.0}});
  BOOST_CHECK_EQUAL(sock.size(), 3u);
  BOOST_CHECK_EQUAL(sock.at("a").as_int64(), 1);
  BOOST_CHECK(sock["b"] == "two");
  BOOST_CHECK_EQUAL(sock.at("c").as_float64(), 3.0);
  auto keys = sock.keys();
  BOOST_CHECK((keys == std::vector<std::string>{"a", "b", "c"}));
  auto copy = sock.copy();
  BOOST_CHECK_EQUAL(copy.size(), 3u);
  BOOST_CHECK_EQUAL(copy.at("b"), value{"two"});
  BOOST_CHECK_EQUAL(sock.values().size(), 3u);
  for (const auto& x : sock.items())
    BOOST_CHECK_EQUAL(x.meta.owner, sock.id());
}

BOOST_AUTO_TEST_CASE(remote_owner_makes_local_write_raise_lease_error) {
  manual_clock clock;
  config cfg;
  cfg.clock = clock.as_wall_clock();
  sync_socket sock{sys, cfg};
  auto now = clock.now();
  inject(sys, sock, remote_set("test", value{"theirs"}, now));
  BOOST_REQUIRE(eventually([&] { return sock.contains("test"); }));
  try {
    sock["test"] = "mine";
    BOOST_FAIL("a write under another node's lease succeeded");
  } catch (const lease_error& e) {
    BOOST_CHECK_EQUAL(e.owner(), other);
    BOOST_CHECK_EQUAL(e.lease_end_us(), now + hour_us);
    BOOST_CHECK_EQUAL(e.key(), "test");
    BOOST_CHECK(std::string{e.what()}.find(other.to_hex())
                != std::string::npos);
  }
  BOOST_CHECK_THROW(sock.erase("test"), lease_error);
  BOOST_CHECK_THROW(sock.update({{"free", 1}, {"test", 2}}), lease_error);
  BOOST_CHECK(!sock.contains("free"));
  // A refused batch names every leased key, not only the first.
  inject(sys, sock, remote_set("test2", value{"theirs"}, now));
  BOOST_REQUIRE(eventually([&] { return sock.contains("test2"); }));
  try {
    sock.update({{"free", 1}, {"test", 2}, {"test2", 3}});
    BOOST_FAIL("a batch with leased keys was applied");
  } catch (const lease_error& e) {
    BOOST_REQUIRE_EQUAL(e.conflicts().size(), 2u);
    BOOST_CHECK_EQUAL(e.conflicts()[0].key, "test");
    BOOST_CHECK_EQUAL(e.conflicts()[1].key, "test2");
    BOOST_CHECK_EQUAL(e.conflicts()[1].owner, other);
    BOOST_CHECK_EQUAL(e.conflicts()[1].lease_end_us, now + hour_us);
    BOOST_CHECK_EQUAL(e.key(), "test");
    std::string what = e.what();
    BOOST_CHECK_MESSAGE(what.find("'test'") != std::string::npos
                          && what.find("'test2'") != std::string::npos,
                        what);
  }
  BOOST_CHECK(!sock.contains("free"));
  BOOST_CHECK(sock["test"] == "theirs");
  BOOST_CHECK_EQUAL(sock.get_item("test")->meta.owner, other);
  // After the lease ends, the key is free for anyone.
  clock.advance(std::chrono::microseconds(hour_us) + 2s);
  sock["test"] = "mine";
  BOOST_CHECK(sock["test"] == "mine");
  BOOST_CHECK_EQUAL(sock.get_item("test")->meta.owner, sock.id());
}

BOOST_AUTO_TEST_CASE(without_leasing_the_newest_write_wins) {
  manual_clock clock;
  config cfg;
  cfg.leasing = false;
  cfg.clock = clock.as_wall_clock();
  sync_socket sock{sys, cfg};
  inject(sys, sock, remote_set("k", value{"theirs"}, clock.now(), false));
  BOOST_REQUIRE(eventually([&] { return sock.contains("k"); }));
  clock.advance(1ms);
  sock["k"] = "mine";
  BOOST_CHECK(sock["k"] == "mine");
  // An older remote write loses; a newer one wins.
  inject(sys, sock, remote_set("k", value{"old"}, clock.now() - 500, false));
  clock.advance(1ms);
  inject(sys, sock, remote_set("k", value{"new"}, clock.now(), false));
  BOOST_CHECK(eventually([&] { return sock["k"] == "new"; }));
}

BOOST_AUTO_TEST_CASE(deltas_merge_into_one_map) {
  sync_socket sock{sys};
  sock.apply_delta("test", {{"seven", 7}});
  sock.apply_delta("test", {{"array", value_list{1, 2, 3, 4, 5, 6, 7, 8, 9}},
                            {"number", 256}});
  sock.apply_delta("test", {{"three", value{{"three", "three"}}}});
  auto merged = sock.at("test");
  BOOST_REQUIRE(merged.is_map());
  BOOST_CHECK_EQUAL(merged.as_map().size(), 4u);
  BOOST_CHECK_EQUAL(merged.find("seven")->as_int64(), 7);
  BOOST_CHECK_EQUAL(merged.find("array")->as_list().size(), 9u);
  BOOST_CHECK_EQUAL(merged.find("number")->as_int64(), 256);
  BOOST_CHECK(*merged.find("three")->find("three") == "three");
  // A later delta overrides one field and keeps the others.
  sock.apply_delta("test", {{"seven", "seven"}});
  merged = sock.at("test");
  BOOST_CHECK(*merged.find("seven") == "seven");
  BOOST_CHECK_EQUAL(merged.as_map().size(), 4u);
  // A whole-value set replaces the fields.
  sock["test"] = value{{"only", true}};
  BOOST_CHECK_EQUAL(sock.at("test").as_map().size(), 1u);
}

BOOST_AUTO_TEST_CASE(delete_pop_and_popitem) {
  sync_socket sock{sys};
  sock.update({{"a", 1}, {"b", 2}, {"c", 3}});
  sock.del("a");
  BOOST_CHECK(!sock.contains("a"));
  BOOST_CHECK_THROW(sock.erase("a"), key_error);
  BOOST_CHECK_EQUAL(sock.pop("b").as_int64(), 2);
  BOOST_CHECK_THROW(sock.pop("b"), key_error);
  BOOST_CHECK_EQUAL(sock.pop("b", value{"fallback"}), value{"fallback"});
  auto [key, val] = sock.popitem();
  BOOST_CHECK_EQUAL(key, "c");
  BOOST_CHECK_EQUAL(val.as_int64(), 3);
  BOOST_CHECK_THROW(sock.popitem(), key_error);
  BOOST_CHECK_EQUAL(sock.size(), 0u);
  // A deleted key can be set again.
  sock["a"] = "again";
  BOOST_CHECK(sock["a"] == "again");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(bad_input, api_fixture)

BOOST_AUTO_TEST_CASE(bad_keys_and_values_are_refused_and_change_nothing) {
  config cfg;
  cfg.max_key_size = 16;
  cfg.max_value_size = 64;
  sync_socket sock{sys, cfg};
  sock["keep"] = "me";
  auto expect_code = [](auto&& f, errc code) {
    try {
      f();
      BOOST_ERROR("no exception for " << to_string(code));
    } catch (const value_error& e) {
      BOOST_CHECK_EQUAL(to_string(e.code()), to_string(code));
      BOOST_CHECK(std::string{e.what()}.size() > 5);
    }
  };
  expect_code([&] { sock[std::string(17, 'k')] = "v"; }, errc::key_too_large);
  expect_code([&] { sock["k"] = std::string(100, 'v'); },
              errc::value_too_large);
  expect_code([&] { sock[""] = "v"; }, errc::invalid_key);
  expect_code([&] { sock.update({{"ok", 1}, {"", 2}}); }, errc::invalid_key);
  expect_code(
    [&] {
      sock.apply_delta("m", {{"big", std::string(100, 'x')}});
    },
    errc::value_too_large);
  BOOST_CHECK_EQUAL(sock.size(), 1u);
  BOOST_CHECK(!sock.contains("ok"));
  BOOST_CHECK(sock["keep"] == "me");
}

BOOST_AUTO_TEST_CASE(delta_on_a_non_map_raises_type_error) {
  sync_socket sock{sys};
  sock["s"] = "text";
  BOOST_CHECK_THROW(sock.apply_delta("s", {{"f", 1}}), type_error);
  BOOST_CHECK(sock["s"] == "text");
}

BOOST_AUTO_TEST_CASE(invalid_config_is_refused_with_a_reason) {
  config cfg;
  cfg.lease_duration = 0ms;
  try {
    sync_socket sock{sys, cfg};
    BOOST_FAIL("accepted a zero lease duration");
  } catch (const value_error& e) {
    BOOST_CHECK(e.code() == errc::invalid_config);
    BOOST_CHECK(std::string{e.what()}.find("lease_duration")
                != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(expected_keys_sizes_the_node_within_a_bound) {
  config cfg;
  cfg.expected_keys = size_t{1} << 31;
  BOOST_CHECK(cfg.validate().find("expected_keys") != std::string::npos);
  cfg.expected_keys = 50000;
  BOOST_CHECK(cfg.validate().empty());
  sync_socket sock{sys, cfg};
  for (int i = 0; i < 100; ++i)
    sock[std::to_string(i)] = i;
  BOOST_CHECK_EQUAL(sock.size(), 100u);
}

BOOST_AUTO_TEST_CASE(value_accessors_raise_type_error_on_the_wrong_kind) {
  value text{"t"};
  BOOST_CHECK_THROW(text.as_int64(), type_error);
  BOOST_CHECK_THROW(text.as_map(), type_error);
  BOOST_CHECK_THROW(value{-1}.as_uint64(), type_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(events_and_lifecycle, api_fixture)

BOOST_AUTO_TEST_CASE(callbacks_see_local_and_remote_changes) {
  manual_clock clock;
  config cfg;
  cfg.clock = clock.as_wall_clock();
  // Before the socket, so they outlive its event thread.
  mailbox<std::pair<std::string, value>> updates;
  mailbox<std::string> deletes;
  mailbox<std::pair<std::string, node_id>> losses;
  sync_socket sock{sys, cfg};
  sock.on_update(
    [&](const std::string& key, const value& val, const entry_meta&) {
      updates.push({key, val});
    });
  sock.on_delete([&](const std::string& key) { deletes.push(key); });
  // Checked on the test's thread: Boost.Test's assertions are not
  // thread-safe (one here raced the main thread's and corrupted its
  // checkpoint string: std::length_error under load).
  sock.on_lease_lost([&](const std::string& key, const node_id& owner) {
    losses.push({key, owner});
  });
  sock["a"] = 1;
  sock.del("a");
  sock["mine"] = "x";
  // Another node that had not seen our claim claims "mine" a little later,
  // while our lease runs: its later claim wins and we lost the lease.
  inject(sys, sock, remote_set("mine", value{"theirs"}, clock.now() + 10));
  BOOST_REQUIRE(updates.wait_for(3));
  BOOST_REQUIRE(deletes.wait_for(1));
  BOOST_REQUIRE(losses.wait_for(1));
  std::lock_guard<std::mutex> guard{updates.mtx};
  BOOST_CHECK_EQUAL(updates.items[0].first, "a");
  BOOST_CHECK_EQUAL(updates.items[2].second, value{"theirs"});
  BOOST_CHECK_EQUAL(deletes.items[0], "a");
  BOOST_CHECK_EQUAL(losses.items[0].first, "mine");
  BOOST_CHECK_EQUAL(losses.items[0].second, other);
}

BOOST_AUTO_TEST_CASE(callbacks_may_call_the_socket_back) {
  sync_socket sock{sys};
  mailbox<size_t> seen_sizes;
  sock.on_update([&](const std::string& key, const value&, const entry_meta&) {
    if (key == "trigger") {
      sock["written-from-callback"] = true;
      seen_sizes.push(sock.size());
    }
  });
  sock["trigger"] = 1;
  BOOST_REQUIRE(seen_sizes.wait_for(1));
  BOOST_CHECK_EQUAL(seen_sizes.items[0], 2u);
  BOOST_CHECK(sock.at("written-from-callback").as_bool());
}

BOOST_AUTO_TEST_CASE(close_from_a_callback_does_not_hang) {
  sync_socket sock{sys};
  // Shared: the callback may still be inside push() when the test ends.
  auto closed = std::make_shared<mailbox<bool>>();
  sock.on_update(
    [&sock, closed](const std::string&, const value&, const entry_meta&) {
      sock.close();
      closed->push(true);
    });
  try {
    sock["k"] = 1;
  } catch (const syncmesh::error& e) {
    // The callback may close the socket before this write's reply arrives:
    // a call in flight when close() runs gets errc::closed.
    BOOST_CHECK(e.code() == errc::closed);
  }
  BOOST_REQUIRE(closed->wait_for(1));
  BOOST_CHECK(sock.closed());
}

BOOST_AUTO_TEST_CASE(calls_after_close_raise_closed) {
  sync_socket sock{sys};
  sock["k"] = 1;
  BOOST_CHECK_EQUAL(sock.id().size(), random_node_id_size);
  BOOST_CHECK_EQUAL(sock.id().to_hex().size(), 2 * random_node_id_size);
  sock.close();
  sock.close(); // idempotent
  try {
    sock.get("k");
    BOOST_FAIL("get after close succeeded");
  } catch (const syncmesh::error& e) {
    BOOST_CHECK(e.code() == errc::closed);
  }
}

BOOST_AUTO_TEST_CASE(many_sockets_in_one_system_shut_down_cleanly) {
  std::vector<std::unique_ptr<sync_socket>> socks;
  for (int i = 0; i < 8; ++i) {
    socks.push_back(std::make_unique<sync_socket>(sys));
    (*socks.back())["k"] = i;
  }
  std::set<node_id> ids;
  for (auto& s : socks)
    ids.insert(s->id());
  BOOST_CHECK_EQUAL(ids.size(), 8u);
  // Destructors close; the fixture's actor system then exits without hanging.
}

BOOST_AUTO_TEST_SUITE_END()

// -- blocking calls without an actor per call, set_async, and a close() that
// never waits (issue 17) ------------------------------------------------------

namespace {

using steady = std::chrono::steady_clock;

/// Milliseconds since `start`, for the measured values the tests print.
double ms_since(steady::time_point start) {
  return std::chrono::duration<double, std::milli>(steady::now() - start)
    .count();
}

/// The errc of a syncmesh::error thrown by `f`, or errc::none when `f`
/// returned; any other exception fails the test.
template <class F>
errc code_thrown_by(F&& f) {
  try {
    f();
  } catch (const syncmesh::error& e) {
    return e.code();
  }
  return errc::none;
}

/// Holds the store's table lock and sends a write, so the store actor
/// blocks in that write and every request queued behind it stays in
/// flight: the state a slow or stuck node presents to close(). The write
/// counts as one call in flight.
class stalled_store {
public:
  explicit stalled_store(sync_socket& sock) : reader_(*internals(sock).reader) {
    reader_.lock();
    stuck_write_ = sock.set_async("stall", 1);
  }
  ~stalled_store() { release(); }
  void release() {
    if (held_)
      reader_.unlock();
    held_ = false;
  }

private:
  store_reader& reader_;
  bool held_ = true;
  std::future<void> stuck_write_;
};

/// Holds both of CAF's scheduler threads (the fixture has two) with actors
/// that wait until it is destroyed: meanwhile only threads outside the
/// scheduler can run actors.
class scheduler_held {
public:
  explicit scheduler_held(caf::actor_system& sys) {
    auto released = release_.get_future().share();
    for (int i = 0; i < 2; ++i)
      holders_.push_back(sys.spawn([this, released]() -> caf::behavior {
        return {[this, released](caf::get_atom) {
          ++holding_;
          released.wait();
        }};
      }));
    for (auto& h : holders_)
      caf::anon_send(h, caf::get_atom::value);
    BOOST_REQUIRE(eventually([&] { return holding_.load() == 2; }));
  }

  ~scheduler_held() {
    release_.set_value();
    for (auto& h : holders_)
      caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
  }

private:
  std::promise<void> release_;
  std::atomic<int> holding_{0};
  std::vector<caf::actor> holders_;
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(calls_and_close, api_fixture)

BOOST_AUTO_TEST_CASE(set_async_applies_in_order_and_reports_errors) {
  sync_socket sock{sys};
  std::vector<std::future<void>> writes;
  for (int i = 0; i < 1000; ++i)
    writes.push_back(sock.set_async("counter", i));
  for (auto& w : writes)
    w.get();
  BOOST_CHECK_EQUAL(sock.at("counter"), value{999});
  // An invalid key fails through the future with set()'s exception.
  auto bad = sock.set_async("", 1);
  BOOST_CHECK_THROW(bad.get(), value_error);
}

BOOST_AUTO_TEST_CASE(combined_writes_fail_only_on_their_own_refusal) {
  manual_clock clock;
  config cfg;
  cfg.clock = clock.as_wall_clock();
  sync_socket sock{sys, cfg};
  auto now = clock.now();
  inject(sys, sock, remote_set("taken", value{"theirs"}, now));
  BOOST_REQUIRE(eventually([&] { return sock.contains("taken"); }));
  std::vector<std::future<void>> writes;
  {
    // Held in the store, the first write keeps the others queued behind
    // it: they go out as one batch when it is answered.
    stalled_store stall{sock};
    writes.push_back(sock.set_async("a", 1));
    writes.push_back(sock.set_async("taken", "mine"));
    writes.push_back(sock.set_async("b", 2));
    writes.push_back(sock.set_async("a", 3));
    BOOST_CHECK_EQUAL(sock.calls_in_flight(), 5u);
  }
  writes[0].get();
  try {
    writes[1].get();
    BOOST_FAIL("a write under another node's lease succeeded");
  } catch (const lease_error& e) {
    BOOST_CHECK_EQUAL(e.key(), "taken");
    BOOST_CHECK_EQUAL(e.owner(), other);
    BOOST_CHECK_EQUAL(e.lease_end_us(), now + hour_us);
  }
  writes[2].get();
  writes[3].get();
  BOOST_CHECK_EQUAL(sock.at("a"), value{3});
  BOOST_CHECK_EQUAL(sock.at("b"), value{2});
  BOOST_CHECK_EQUAL(sock.at("taken"), value{"theirs"});
  // A write that breaks a limit fails at once, alone.
  auto too_long = sock.set_async(std::string(cfg.max_key_size + 1, 'k'), 1);
  auto fine = sock.set_async("c", 1);
  BOOST_CHECK(too_long.wait_for(0s) == std::future_status::ready);
  BOOST_CHECK_THROW(too_long.get(), value_error);
  fine.get();
  BOOST_CHECK(eventually([&] { return sock.calls_in_flight() == 0; }));
}

BOOST_AUTO_TEST_CASE(a_blocking_write_goes_after_the_queued_async_ones) {
  sync_socket sock{sys};
  stalled_store stall{sock};
  std::vector<std::future<void>> queued;
  for (int i = 0; i < 10; ++i)
    queued.push_back(sock.set_async("k", i));
  // set() must not overtake the queued writes: it sends them first. The
  // store is released (by the thread that holds it) once all are in flight.
  std::thread writer{[&] {
    sock.set("k", "last");
  }};
  BOOST_CHECK(eventually([&] { return sock.calls_in_flight() == 12; }));
  stall.release();
  writer.join();
  for (auto& w : queued)
    w.get();
  BOOST_CHECK_EQUAL(sock.at("k"), value{"last"});
}

BOOST_AUTO_TEST_CASE(the_combiner_sends_one_batch_per_round_trip_or_bound) {
  sync_socket sock{sys};
  facade_requester requester{sys, caf::actor_cast<caf::actor>(sock.handle()),
                             std::chrono::milliseconds{30'000}};
  std::atomic<size_t> sent{0};
  std::vector<size_t> sizes;
  std::mutex sizes_mtx;
  auto combiner = write_combiner::make(
    sys,
    [&](pb::SetManyRequest req, std::shared_ptr<pending_call> call) {
      {
        std::lock_guard<std::mutex> guard{sizes_mtx};
        sizes.push_back(static_cast<size_t>(req.items_size()));
      }
      ++sent;
      return requester.start(std::move(call), caf::make_message(std::move(req)))
             != 0;
    },
    write_combiner::limits{10, 1024 * 1024});
  auto item = [](int i) {
    pb::KeyValue kv;
    kv.set_key("c");
    to_proto(value{i}, kv.mutable_value());
    return kv;
  };
  std::vector<std::future<void>> writes;
  {
    stalled_store stall{sock};
    // Nothing in flight: the first write goes at once, alone.
    writes.push_back(combiner->submit(item(0)));
    BOOST_CHECK_EQUAL(sent.load(), 1u);
    // Behind it, writes queue until the bound (10) sends them anyway.
    for (int i = 1; i <= 25; ++i)
      writes.push_back(combiner->submit(item(i)));
    BOOST_CHECK_EQUAL(sent.load(), 3u);
    BOOST_CHECK_EQUAL(combiner->writes_pending(), 26u);
  }
  // The rest (5) goes when the batch ahead of it is answered.
  for (auto& w : writes)
    w.get();
  BOOST_CHECK_EQUAL(sent.load(), 4u);
  {
    std::lock_guard<std::mutex> guard{sizes_mtx};
    BOOST_CHECK_EQUAL(sizes.size(), 4u);
    BOOST_CHECK((sizes == std::vector<size_t>{1, 10, 10, 5}));
  }
  BOOST_CHECK_EQUAL(sock.at("c"), value{25});
  // flush() sends a queue without waiting; close() fails what is queued.
  {
    stalled_store stall{sock};
    auto first = combiner->submit(item(26));
    auto second = combiner->submit(item(27));
    combiner->flush();
    BOOST_CHECK_EQUAL(sent.load(), 6u);
    auto third = combiner->submit(item(28));
    combiner->close();
    BOOST_CHECK(third.wait_for(0s) == std::future_status::ready);
    BOOST_CHECK(code_thrown_by([&] { third.get(); }) == errc::closed);
    BOOST_CHECK(code_thrown_by([&] { combiner->submit(item(29)).get(); })
                == errc::closed);
    stall.release();
    first.get();
    second.get();
  }
  BOOST_CHECK_EQUAL(sock.at("c"), value{27});
  requester.close();
}

BOOST_AUTO_TEST_CASE(the_combiner_sends_a_batch_at_its_byte_bound) {
  sync_socket sock{sys};
  facade_requester requester{sys, caf::actor_cast<caf::actor>(sock.handle()),
                             std::chrono::milliseconds{30'000}};
  std::vector<size_t> sizes;
  std::mutex sizes_mtx;
  auto sent_sizes = [&] {
    std::lock_guard<std::mutex> guard{sizes_mtx};
    return sizes;
  };
  // Far more items allowed than sent: only the 100 KiB byte bound decides.
  auto combiner = write_combiner::make(
    sys,
    [&](pb::SetManyRequest req, std::shared_ptr<pending_call> call) {
      {
        std::lock_guard<std::mutex> guard{sizes_mtx};
        sizes.push_back(static_cast<size_t>(req.items_size()));
      }
      return requester.start(std::move(call), caf::make_message(std::move(req)))
             != 0;
    },
    write_combiner::limits{1000, 100 * 1024});
  auto big = [](int i) {
    pb::KeyValue kv;
    kv.set_key("big-" + std::to_string(i));
    to_proto(value::from_bytes(std::string(30 * 1024, 'x')),
             kv.mutable_value());
    return kv;
  };
  std::vector<std::future<void>> writes;
  {
    stalled_store stall{sock};
    writes.push_back(combiner->submit(big(0))); // nothing in flight: alone
    // 30 KiB each: the fourth queued passes 100 KiB and the four leave
    // together; three more (90 KiB) stay queued behind them.
    for (int i = 1; i <= 7; ++i)
      writes.push_back(combiner->submit(big(i)));
    BOOST_CHECK((sent_sizes() == std::vector<size_t>{1, 4}));
    BOOST_CHECK_EQUAL(combiner->writes_pending(), 8u);
  }
  for (auto& w : writes)
    w.get();
  BOOST_CHECK((sent_sizes() == std::vector<size_t>{1, 4, 3}));
  for (int i = 0; i <= 7; ++i)
    BOOST_CHECK(sock.get("big-" + std::to_string(i)).has_value());
  requester.close();
}

BOOST_AUTO_TEST_CASE(a_blocking_call_runs_the_node_on_the_callers_thread) {
  config cfg;
  cfg.request_timeout = 5s; // fails fast where the caller would only wait
  sync_socket sock{sys, cfg};
  sock["warm"] = 0;
  // Only the calling thread can run the node's facade and store now.
  scheduler_held held{sys};
  sock["k"] = 1;
  sock.set("k", 2);
  BOOST_CHECK_EQUAL(sock.at("k"), value{2});
  BOOST_CHECK_EQUAL(sock.size(), 2u);
}

BOOST_AUTO_TEST_CASE(with_a_data_dir_the_store_stays_on_the_scheduler) {
  test::scratch_dir dir;
  config cfg;
  cfg.data_dir = dir.path;
  cfg.request_timeout = 300ms;
  sync_socket sock{sys, cfg};
  sock["warm"] = 0;
  scheduler_held held{sys};
  // The store writes to disk in its handlers (which can stall): a caller
  // does not run it, so its timeout still ends the wait.
  BOOST_CHECK(code_thrown_by([&] { sock.set("k", 1); }) == errc::timeout);
}

BOOST_AUTO_TEST_CASE(a_call_the_node_never_answers_times_out) {
  config cfg;
  cfg.request_timeout = 200ms;
  sync_socket sock{sys, cfg};
  stalled_store stall{sock};
  auto start = steady::now();
  BOOST_CHECK(code_thrown_by([&] { sock.stats(); }) == errc::timeout);
  auto waited = ms_since(start);
  BOOST_TEST_MESSAGE("stats() timed out after " << waited << " ms");
  BOOST_CHECK_GE(waited, 190.0);
  auto pending = sock.set_async("k", 1);
  BOOST_REQUIRE(pending.wait_for(5s) == std::future_status::ready);
  BOOST_CHECK(code_thrown_by([&] { pending.get(); }) == errc::timeout);
  stall.release();
  // The node still works, and the late replies went nowhere. Under load the
  // store may take longer than this socket's 200 ms to work off what queued
  // behind the stall, so the write may time out a few times first.
  BOOST_REQUIRE(eventually(
    [&] { return code_thrown_by([&] { sock["k"] = 2; }) == errc::none; }));
  BOOST_CHECK_EQUAL(sock.at("k"), value{2});
  BOOST_CHECK(eventually([&] { return sock.calls_in_flight() == 0; }));
}

BOOST_AUTO_TEST_CASE(close_answers_calls_in_flight_on_other_threads) {
  sync_socket sock{sys};
  sock["k"] = 0;
  stalled_store stall{sock};
  std::array<errc, 3> seen{errc::none, errc::none, errc::none};
  std::vector<std::thread> callers;
  callers.emplace_back(
    [&] { seen[0] = code_thrown_by([&] { sock.stats(); }); });
  callers.emplace_back(
    [&] { seen[1] = code_thrown_by([&] { sock.set("k", 1); }); });
  auto pending = sock.set_async("k", 2);
  callers.emplace_back(
    [&] { seen[2] = code_thrown_by([&] { pending.get(); }); });
  BOOST_REQUIRE(eventually([&] { return sock.calls_in_flight() == 4; }));
  auto start = steady::now();
  sock.close();
  auto took = ms_since(start);
  for (auto& t : callers)
    t.join();
  auto answered = ms_since(start);
  BOOST_TEST_MESSAGE("close() with 4 calls in flight returned in "
                     << took << " ms; all answered after " << answered
                     << " ms");
  BOOST_CHECK_LT(took, 1000.0);
  BOOST_CHECK_LT(answered, 1000.0);
  for (auto code : seen)
    BOOST_CHECK(code == errc::closed);
  BOOST_CHECK(code_thrown_by([&] { sock.get("k"); }) == errc::closed);
  BOOST_CHECK(code_thrown_by([&] { sock.set_async("k", 3).get(); })
              == errc::closed);
}

BOOST_AUTO_TEST_CASE(a_callback_calling_the_socket_does_not_stall_close) {
  sync_socket sock{sys};
  std::atomic<bool> entered{false};
  std::atomic<errc> callback_saw{errc::none};
  sock.on_update([&](const std::string& key, const value&, const entry_meta&) {
    if (key != "trigger")
      return;
    entered = true;
    // Keeps calling the socket, as a callback racing shutdown would.
    for (;;) {
      auto code = code_thrown_by([&] { sock.stats(); });
      if (code != errc::none) {
        callback_saw = code;
        return;
      }
    }
  });
  sock["trigger"] = 1;
  BOOST_REQUIRE(eventually([&] { return entered.load(); }));
  stalled_store stall{sock};
  BOOST_REQUIRE(eventually([&] { return sock.calls_in_flight() == 2; }));
  auto start = steady::now();
  sock.close();
  auto took = ms_since(start);
  BOOST_TEST_MESSAGE("close() with a callback blocked in stats() returned in "
                     << took << " ms");
  BOOST_CHECK_LT(took, 1000.0);
  // The callback's thread may be the one that runs the stuck store (a
  // waiting caller runs the node's actors on its thread): its call ends
  // once the store gets past the stall, with errc::closed.
  stall.release();
  BOOST_CHECK(eventually([&] { return callback_saw.load() != errc::none; }));
  BOOST_CHECK(callback_saw.load() == errc::closed);
}

BOOST_AUTO_TEST_CASE(destruction_does_not_wait_for_a_running_callback) {
  auto sock = std::make_unique<sync_socket>(sys);
  // Shared with the callback, which may outlive the socket by design.
  struct callback_state {
    std::atomic<bool> release{false};
    std::atomic<int> started{0};
  };
  auto state = std::make_shared<callback_state>();
  sock->on_update([state](const std::string&, const value&, const entry_meta&) {
    ++state->started;
    while (!state->release)
      std::this_thread::yield();
  });
  (*sock)["a"] = 1;
  (*sock)["b"] = 2; // queued behind the running callback
  BOOST_REQUIRE(eventually([&] { return state->started.load() == 1; }));
  auto start = steady::now();
  sock.reset();
  auto took = ms_since(start);
  BOOST_TEST_MESSAGE("~sync_socket with a callback running returned in "
                     << took << " ms");
  BOOST_CHECK_LT(took, 1000.0);
  state->release = true;
  // The queued event never reaches a callback after close().
  BOOST_CHECK_EQUAL(state->started.load(), 1);
}

namespace {

/// A callback that blocks until the test releases it.
struct held_callback {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> started{0};
};

/// Leaves a callback running on a closed socket of a system of its own
/// (closed by the destructor or, with `close_inside`, by the callback
/// itself), then destroys that system beside the callback. The event
/// thread holds the socket's actor handles until the callback returns;
/// released after the system died, they ran CAF's cleanup against freed
/// memory (api_tests crashed at random in the next test's fixture).
void destroy_the_system_beside_a_running_callback(bool close_inside) {
  test::threaded_config cfg;
  auto system = std::make_unique<caf::actor_system>(cfg);
  auto idle = system->registry().running();
  auto state = std::make_shared<held_callback>();
  auto sock = std::make_unique<sync_socket>(*system);
  auto* raw = sock.get();
  sock->on_update([state, raw, close_inside](const std::string&, const value&,
                                             const entry_meta&) {
    // The socket is alive here: the test waits for `started` before it
    // destroys it, and the callback does not touch it after.
    if (close_inside)
      raw->close();
    ++state->started;
    state->released.wait();
  });
  try {
    (*sock)["a"] = 1;
  } catch (const syncmesh::error& e) {
    // The callback may close the socket before this write's reply arrives.
    BOOST_CHECK(close_inside && e.code() == errc::closed);
  }
  BOOST_REQUIRE(eventually([&] { return state->started.load() == 1; }));
  sock.reset(); // returns after at most 50 ms, the callback still running
  // The node's actors stop; the event thread counts as one running actor
  // until it dropped the socket's actor handles, so ~actor_system (and
  // await_all_actors_done) waits for it.
  size_t running = 0;
  BOOST_CHECK_MESSAGE(eventually([&] {
                        running = system->registry().running();
                        return running == idle + 1;
                      }),
                      "running actors: " << running << ", idle: " << idle);
  // Destroyed on this thread (CAF 0.17's ~actor_system waits until every
  // thread that spawned in it lets go of its logger), while another thread
  // releases the callback: whichever comes first, the system ends after the
  // event thread dropped the socket's actor handles.
  std::thread releaser{[&] {
    state->release.set_value();
  }};
  system.reset();
  releaser.join();
  BOOST_CHECK_EQUAL(state->started.load(), 1);
}

} // namespace

BOOST_AUTO_TEST_CASE(the_system_waits_for_a_callback_the_destructor_left) {
  destroy_the_system_beside_a_running_callback(false);
}

BOOST_AUTO_TEST_CASE(the_system_waits_for_a_callback_that_closed_its_socket) {
  destroy_the_system_beside_a_running_callback(true);
}

BOOST_AUTO_TEST_CASE(close_under_load_from_several_threads) {
  // Writers, readers, stats and asynchronous writers hammer a socket from
  // four threads, and a callback reads it back, while it closes at a
  // different point each round (even rounds: close() racing the calls; odd
  // rounds: the destructor racing the callback once the callers stopped).
  // Every call succeeds or throws errc::closed, none times out or hangs,
  // and close() returns promptly.
  double slowest = 0;
  for (int round = 0; round < 20; ++round) {
    auto sock = std::make_shared<sync_socket>(sys);
    auto* raw = sock.get();
    std::atomic<bool> stop{false};
    // Shared with the callback, which may outlive this round (a callback
    // still running gets 50 ms, then the destructor returns without it).
    auto unexpected = std::make_shared<std::atomic<int>>(0);
    std::atomic<uint64_t> ok_calls{0};
    // Each read either succeeds or sees errc::closed: anything else fails
    // the test from the event thread's log and the count below. The callback
    // reaches the socket through a weak pointer: a raw one dangles once the
    // destructor returned without waiting for it.
    std::weak_ptr<sync_socket> weak = sock;
    sock->on_update([weak, unexpected](const std::string& key, const value&,
                                       const entry_meta&) {
      auto self = weak.lock();
      if (!self)
        return;
      auto code = code_thrown_by([&] { self->get(key); });
      if (code != errc::none && code != errc::closed)
        ++*unexpected;
    });
    auto hammer = [&](int kind) {
      for (int i = 0; !stop; ++i) {
        auto key = "k" + std::to_string(kind) + "-" + std::to_string(i % 50);
        auto code = code_thrown_by([&] {
          switch (kind) {
            case 0:
              raw->set(key, i);
              break;
            case 1:
              raw->get(key);
              break;
            case 2:
              raw->stats();
              break;
            default:
              raw->set_async(key, i).get();
          }
        });
        if (code == errc::none)
          ++ok_calls;
        else if (code == errc::closed)
          return;
        else
          ++*unexpected;
      }
    };
    std::vector<std::thread> threads;
    for (int kind = 0; kind < 4; ++kind)
      threads.emplace_back(hammer, kind);
    auto enough = static_cast<uint64_t>(50 * (round + 1));
    BOOST_REQUIRE(eventually([&] { return ok_calls >= enough; }));
    double took = 0;
    if (round % 2 == 0) {
      auto start = steady::now();
      sock->close();
      took = ms_since(start);
      for (auto& t : threads)
        t.join();
      sock.reset();
    } else {
      stop = true;
      for (auto& t : threads)
        t.join();
      auto start = steady::now();
      sock.reset();
      took = ms_since(start);
    }
    slowest = std::max(slowest, took);
    BOOST_CHECK_LT(took, 1000.0);
    BOOST_CHECK_EQUAL(unexpected->load(), 0);
  }
  BOOST_TEST_MESSAGE("slowest close()/destruction under load: " << slowest
                                                                << " ms");
}

BOOST_AUTO_TEST_SUITE_END()

// -- values that write like py2p, one node ID type (issue 17) -----------------

namespace syncmesh {

/// Prints a list in failure messages as its value.
std::ostream& boost_test_print_type(std::ostream& out, const value_list& x) {
  return out << value(x);
}

} // namespace syncmesh

BOOST_FIXTURE_TEST_SUITE(values_like_py2p, api_fixture)

BOOST_AUTO_TEST_CASE(braces_ranges_and_nested_forms_store_what_they_say) {
  sync_socket sock{sys};
  sock.set("list", {1, 2, 3});
  BOOST_CHECK_EQUAL(sock.at("list"), (value_list{1, 2, 3}));
  sock.set("map", {{"a", 1}, {"b", 2}});
  BOOST_REQUIRE(sock.at("map").is_map());
  BOOST_CHECK(sock.at("map").contains("b"));
  // One field is a map; a list of one pair is written as a list.
  sock.set("one-field", {{"a", 1}});
  BOOST_CHECK(sock.at("one-field").is_map());
  sock.set("one-pair", value::list({{"a", 1}}));
  BOOST_CHECK_EQUAL(sock.at("one-pair"), (value_list{value_list{"a", 1}}));
  sock["vector"] = std::vector<int>{1, 2};
  BOOST_CHECK_EQUAL(sock.at("vector"), (value_list{1, 2}));
  sock["sorted"] = std::map<std::string, int>{{"b", 2}, {"a", 1}};
  BOOST_CHECK_EQUAL(sock.at("sorted"), (value{{"a", 1}, {"b", 2}}));
  sock["hashed"] = std::unordered_map<std::string, std::string>{{"k", "v"}};
  BOOST_CHECK_EQUAL(sock.at("hashed"), (value{{"k", "v"}}));
  sock["pairs"] = std::vector<std::pair<std::string, double>>{{"x", 0.5}};
  BOOST_CHECK_EQUAL(sock.at("pairs"), (value{{"x", 0.5}}));
  sock["nested"] = {{"user", {{"name", "ada"}, {"langs", {"c++", "py"}}}}};
  auto nested = sock.at("nested");
  BOOST_REQUIRE(nested.find("user") != nullptr);
  BOOST_CHECK_EQUAL(*nested.find("user")->find("langs"),
                    (value_list{"c++", "py"}));
  // A whole dictionary copied into a value and back.
  sock["snapshot"] = sock.copy();
  auto snapshot = sock.at("snapshot");
  BOOST_REQUIRE(snapshot.find("sorted") != nullptr);
  BOOST_CHECK_EQUAL(*snapshot.find("sorted"), (value{{"a", 1}, {"b", 2}}));
}

BOOST_AUTO_TEST_CASE(bytes_stay_bytes_and_text_stays_text) {
  sync_socket sock{sys};
  sock["raw"] = bytes{0x00, 0xff};
  BOOST_CHECK(sock.at("raw").is_bytes());
  BOOST_CHECK_EQUAL(sock["raw"].as_bytes(), std::string("\x00\xff", 2));
  sock["named"] = bytes::from("text");
  BOOST_CHECK(sock["named"].is_bytes());
  BOOST_CHECK(sock.at("named") != value{"text"});
  sock["text"] = std::string{"text"};
  BOOST_CHECK(sock["text"].is_text());
  // bytes as a key are the key's bytes: the same key as the text.
  BOOST_CHECK(sock[bytes::from("text")] == "text");
}

BOOST_AUTO_TEST_CASE(the_proxy_reads_as_a_value_and_never_dangles) {
  sync_socket sock{sys};
  sock["greeting"] = "hello, a text too long for the small-string buffer";
  sock["n"] = 7;
  sock["xs"] = {1, 2};
  BOOST_CHECK_EQUAL(sock["greeting"].as_text(),
                    "hello, a text too long for the small-string buffer");
  BOOST_CHECK_EQUAL(sock["n"].as_int64(), 7);
  BOOST_CHECK_EQUAL(sock["n"].as_float64(), 7.0);
  BOOST_CHECK_EQUAL(sock["xs"].as_list().size(), 2u);
  BOOST_CHECK(sock["n"].type() == value::kind::int64);
  value v = sock["n"];
  BOOST_CHECK_EQUAL(v, value{7});
  BOOST_CHECK_EQUAL(sock["n"].get(), value{7});
  // References bound to what a temporary returns hold their own copy.
  const auto& from_at = sock.at("greeting").as_text();
  const auto& from_proxy = sock["greeting"].as_text();
  const auto& list = sock.at("xs").as_list();
  sock["greeting"] = "changed";
  sock["xs"] = {3};
  BOOST_CHECK_EQUAL(from_at,
                    "hello, a text too long for the small-string buffer");
  BOOST_CHECK_EQUAL(from_proxy, from_at);
  BOOST_CHECK_EQUAL(list.size(), 2u);
  // A proxy kept with auto names the key: it reads the current value.
  auto live = sock["greeting"];
  BOOST_CHECK_EQUAL(live.as_text(), "changed");
  sock["greeting"] = "again";
  BOOST_CHECK_EQUAL(live.as_text(), "again");
  // Assigning a proxy copies the value, as Python's d["a"] = d["b"].
  sock["copy"] = sock["n"];
  BOOST_CHECK_EQUAL(sock.at("copy"), value{7});
  sock["n"] = 8;
  BOOST_CHECK_EQUAL(sock.at("copy"), value{7});
  BOOST_CHECK_THROW(sock["absent"].as_text(), key_error);
  BOOST_CHECK_THROW(sock["n"].as_text(), type_error);
}

BOOST_AUTO_TEST_CASE(find_takes_a_std_string) {
  sync_socket sock{sys};
  sock.apply_delta("m", {{"field", 1}});
  std::string key = "field";
  auto m = sock.at("m");
  BOOST_REQUIRE(m.find(key) != nullptr);
  BOOST_CHECK_EQUAL(*m.find(key), value{1});
  BOOST_CHECK(sock.at("m").contains(key));
  BOOST_CHECK(sock["m"].contains(key));
}

BOOST_AUTO_TEST_CASE(every_api_names_nodes_with_node_id) {
  manual_clock clock;
  config cfg;
  cfg.clock = clock.as_wall_clock();
  sync_socket sock{sys, cfg};
  const node_id& me = sock.id();
  BOOST_CHECK(!me.empty());
  BOOST_CHECK_EQUAL(node_id::from_hex(me.to_hex()).value(), me);
  sock["mine"] = 1;
  BOOST_CHECK_EQUAL(sock.get_item("mine")->meta.owner, me);
  for (const auto& x : sock.items())
    BOOST_CHECK_EQUAL(x.meta.owner, me);
  mailbox<entry_meta> metas;
  sock.on_update([&](const std::string&, const value&, const entry_meta& m) {
    metas.push(m);
  });
  inject(sys, sock, remote_set("theirs", value{"x"}, clock.now()));
  BOOST_REQUIRE(metas.wait_for(1));
  BOOST_CHECK_EQUAL(metas.items.back().owner, other);
  try {
    sock["theirs"] = "mine";
    BOOST_FAIL("a write under another node's lease succeeded");
  } catch (const lease_error& e) {
    BOOST_CHECK_EQUAL(e.owner(), other);
    BOOST_CHECK_EQUAL(e.conflicts().at(0).owner, other);
  }
  send_options to_someone;
  to_someone.to = other;
  BOOST_CHECK(to_someone.to.raw() == other_id);
  BOOST_CHECK(!sock.disconnect(other)); // not a connected peer
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(confirmed_writes, api_fixture)

BOOST_AUTO_TEST_CASE(the_blocking_and_async_forms_wait_for_the_nodes) {
  config cfg;
  cfg.cluster_size = 2;
  sync_socket a{sys, cfg};
  sync_socket b{sys, cfg};
  b.connect("127.0.0.1", a.port());
  BOOST_REQUIRE(eventually([&] { return a.peers().size() == 1; }));
  auto c = a.set("k", "v", confirm::majority(5s));
  BOOST_CHECK_EQUAL(c.confirmed, 2u);
  BOOST_CHECK_EQUAL(c.required, 2u);
  BOOST_CHECK_EQUAL(c.cluster_size, 2u);
  // Confirmed by b: b holds it now, no waiting.
  BOOST_CHECK(b.get("k") == value{"v"});
  auto f = a.set_async("k2", 2, confirm::all(5s));
  BOOST_CHECK_EQUAL(f.get().confirmed, 2u);
  BOOST_CHECK(b.get("k2") == value{2});
  a.update({{"u1", 1}, {"u2", 2}}, confirm::nodes(2, 5s));
  BOOST_CHECK(b.get("u1") == value{1} && b.get("u2") == value{2});
  a.apply_delta("m", {{"x", 1}}, confirm::majority(5s));
  auto m = b.get("m");
  BOOST_REQUIRE(m && m->is_map());
  BOOST_CHECK((*m == value{value_map{{"x", 1}}}));
  a.erase("u1", confirm::majority(5s));
  BOOST_CHECK(!b.contains("u1"));
  // Another node's key: refused as without a concern, nothing written.
  BOOST_CHECK_THROW(b.set("k", "w", confirm::majority(5s)), lease_error);
  // b gone: all cannot be met; the write stands here.
  b.close();
  BOOST_REQUIRE(eventually([&] { return a.peers().empty(); }));
  try {
    a.set("lonely", "v", confirm::all(300ms));
    BOOST_FAIL("confirmed by a closed node");
  } catch (const unconfirmed_error& e) {
    BOOST_CHECK_EQUAL(e.confirmed(), 1u);
    BOOST_CHECK_EQUAL(e.required(), 2u);
    BOOST_CHECK(e.code() == errc::unconfirmed);
  }
  BOOST_CHECK(a.get("lonely") == value{"v"});
  auto lonely = a.set_async("lonely2", "v", confirm::all(300ms));
  BOOST_CHECK_THROW(lonely.get(), unconfirmed_error);
  // One node is enough without asking anyone.
  BOOST_CHECK_EQUAL(a.set("solo", 1, confirm::nodes(1)).confirmed, 1u);
  BOOST_CHECK_EQUAL(a.stats().confirm().unconfirmed(), 2u);
}

BOOST_AUTO_TEST_CASE(majority_needs_a_configured_membership) {
  sync_socket a{sys, config{}};
  BOOST_CHECK_THROW(a.set("k", 1, confirm::majority(1s)), value_error);
  BOOST_CHECK_THROW(a.set("k", 1, confirm::all(1s)), value_error);
  BOOST_CHECK_THROW(a.set("k", 1, confirm::nodes(0, 1s)), value_error);
  BOOST_CHECK(!a.contains("k"));
  // The seeds count as the membership when no size is given.
  config seeded;
  seeded.peers = {"127.0.0.1:1", "127.0.0.1:2"};
  BOOST_CHECK_EQUAL(seeded.effective_cluster_size(), 3u);
  config sized;
  sized.cluster_size = 5;
  sized.peers = seeded.peers;
  BOOST_CHECK_EQUAL(sized.effective_cluster_size(), 5u);
}

BOOST_AUTO_TEST_SUITE_END()
