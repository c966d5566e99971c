// Reads through store_reader while another thread writes the store: built
// with ThreadSanitizer (its own executable, store_reader_race_tests), so a
// data race between the HTTP front's reads and the store actor's writes
// fails the test. Also checks what a reader may see: whole values only, and
// every write acknowledged before a read started (read-your-writes).
#define BOOST_TEST_MODULE syncmesh_store_reader_races
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "actors/store_reader.hpp"
#include "actors/store_state.hpp"
#include "syncmesh/pb/requests.pb.h"
#include "tests/unit/test_support.hpp"

using namespace syncmesh;
using namespace syncmesh::test;

namespace {

constexpr int key_count = 64;
constexpr int rounds = 40;

std::string key_of(int k) {
  return "key-" + std::to_string(k);
}

/// The value of write `n` to key `k`: maps on even writes (with field writes
/// over them), text on odd ones, so a torn read would show a wrong shape.
std::string text_of(int k, int n) {
  return std::to_string(k) + ":" + std::to_string(n);
}

/// The write number a value carries, or -1 when it is not one of ours.
int write_number(int k, const pb::GetReply& got) {
  value v;
  if (!from_proto(got.value(), v, max_value_depth_ceiling).empty())
    return -1;
  std::string text;
  if (v.is_text()) {
    text = v.as_text();
  } else if (v.is_map()) {
    const auto* field = v.find("n");
    if (field == nullptr || !field->is_text())
      return -1;
    text = field->as_text();
  } else {
    return -1;
  }
  auto prefix = std::to_string(k) + ":";
  if (text.compare(0, prefix.size(), prefix) != 0)
    return -1;
  return std::stoi(text.substr(prefix.size()));
}

/// True when a write numbered in [first, last] deletes (every 5th round).
bool deleted_between(int first, int last) {
  for (int n = first; n <= last; ++n)
    if (n % 5 == 4)
      return true;
  return false;
}

} // namespace

BOOST_AUTO_TEST_CASE(
  readers_see_whole_acknowledged_writes_while_the_store_writes) {
  store_state store;
  auto reader = std::make_shared<store_reader>();
  store.publish_to(reader);
  const raw_node_id writer = "writer-node";
  // acked[k]: the newest write to key k that the writer has finished
  // (its "acknowledgement"); a read that starts later must see it or newer.
  std::vector<std::atomic<int>> acked(key_count);
  for (auto& x : acked)
    x.store(-1);
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::atomic<uint64_t> reads{0};

  auto read_loop = [&] {
    int k = 0;
    while (!done.load()) {
      k = (k + 7) % key_count;
      int floor = acked[k].load();
      pb::GetReply got;
      if (!reader->get(key_of(k), got)) {
        bad.fetch_add(1);
        continue;
      }
      reads.fetch_add(1);
      if (!got.found()) {
        // Absent: never written yet, or deleted (every 5th round deletes)
        // by the acknowledged write or one the writer has made since (up to
        // the one it is making now).
        if (floor >= 0 && !deleted_between(floor, acked[k].load() + 1))
          bad.fetch_add(1);
        continue;
      }
      auto n = write_number(k, got);
      if (n < floor)
        bad.fetch_add(1);
    }
  };
  std::thread r1{read_loop};
  std::thread r2{read_loop};

  uint64_t wall = 1'000'000;
  for (int n = 0; n < rounds; ++n) {
    for (int k = 0; k < key_count; ++k) {
      auto v = make_version(++wall, writer);
      std::string err;
      if (n % 5 == 4) {
        store.apply(delete_record(key_of(k), v), false, err);
      } else if (n % 2 == 0) {
        store.apply(set_record(key_of(k), v,
                               value{fields_of({{"n", value{text_of(k, n)}}})}),
                    false, err);
        // A field write over the map, then the number again.
        store.apply(
          fields_record(key_of(k), make_version(++wall, writer),
                        fields_of({{"n", value{text_of(k, n)}},
                                   {"pad", value{std::string(40, 'x')}}})),
          false, err);
      } else {
        store.apply(set_record(key_of(k), v, value{text_of(k, n)}), false, err);
      }
      BOOST_REQUIRE_MESSAGE(err.empty(), err);
      acked[k].store(n);
    }
    // Growth and purges move entries around under the readers.
    if (n == rounds / 2)
      store.reserve(static_cast<size_t>(key_count) * 64);
    if (n % 5 == 4) {
      std::vector<std::string> keys;
      for (int k = 0; k < key_count; k += 2)
        keys.push_back(key_of(k));
      store.purge(keys);
    }
  }
  // Let the readers see the final state a few times before stopping.
  auto target = reads.load() + 1000;
  while (reads.load() < target)
    std::this_thread::yield();
  done.store(true);
  r1.join();
  r2.join();
  BOOST_CHECK_EQUAL(bad.load(), 0);
  BOOST_TEST_MESSAGE("reads: " << reads.load());
}

BOOST_AUTO_TEST_CASE(a_store_that_ends_detaches_its_reader) {
  auto reader = std::make_shared<store_reader>();
  {
    store_state store;
    store.publish_to(reader);
    std::string err;
    store.apply(set_record("k", make_version(1, "n"), value{"v"}), false, err);
    pb::GetReply got;
    BOOST_REQUIRE(reader->get("k", got));
    BOOST_CHECK(got.found());
    // Moving the store leaves the reader with the emptied original.
    store_state moved{std::move(store)};
    pb::GetReply after_move;
    BOOST_REQUIRE(reader->get("k", after_move));
    BOOST_CHECK(!after_move.found());
    BOOST_CHECK(moved.find("k") != nullptr);
  }
  pb::GetReply gone;
  BOOST_CHECK(!reader->get("k", gone));
}
