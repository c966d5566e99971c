// A node's data dir (actors/data_dir.hpp) on a real RocksDB: the ID file is
// written durably and checked, and the tombstone-horizon rule sets aside
// entries that were away too long unless the operator keeps them.
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "actors/data_dir.hpp"
#include "syncmesh/errors.hpp"
#include "tests/support/scratch_dir.hpp"
#include "tests/unit/test_support.hpp"

using namespace syncmesh;
using namespace syncmesh::test;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t hour_us = 3'600'000'000;

std::string slurp(const std::string& path) {
  std::ifstream in{path};
  return {std::istreambuf_iterator<char>{in}, {}};
}

/// A config of a node on `dir` whose wall clock reads `*now`.
config on_dir(const std::string& dir, const uint64_t* now) {
  config cfg;
  cfg.data_dir = dir;
  cfg.tombstone_horizon = 1h;
  cfg.clock = [now] {
    return *now;
  };
  return cfg;
}

/// Opens `cfg`'s dir as node "n1", writes one key stamped at `*now`, and
/// closes it.
void write_one_key(const config& cfg, const uint64_t* now) {
  auto [id, start] = open_data_dir(cfg, {}, "n1");
  BOOST_REQUIRE_EQUAL(id, "n1");
  start->persistence->reserve_clock(*now, *now);
  pb::WriteRecord rec = set_record("k", make_version(*now, id), value{"v"});
  std::string err;
  start->store.apply(rec, false, err);
  BOOST_REQUIRE(err.empty());
  pb::WriteBatch changed;
  *changed.add_records() = rec;
  start->persistence->stage(start->store, changed);
  start->persistence->write();
}

} // namespace

BOOST_AUTO_TEST_SUITE(data_dir)

BOOST_AUTO_TEST_CASE(the_horizon_rule_counts_the_clock_offset_of_peers) {
  // Away for exactly the horizon less the offset: still fresh.
  BOOST_CHECK(
    !older_than_horizon(1'000, 1'000 + hour_us - 500'000, hour_us, 500'000));
  BOOST_CHECK(
    older_than_horizon(1'000, 1'001 + hour_us - 500'000, hour_us, 500'000));
  // A mark from the future (a clock that went back) is not stale.
  BOOST_CHECK(!older_than_horizon(5 * hour_us, hour_us, hour_us, 0));
  // An offset beyond the horizon makes any absence stale.
  BOOST_CHECK(older_than_horizon(1'000, 1'001, 10, 20));
}

BOOST_AUTO_TEST_CASE(files_are_replaced_whole) {
  scratch_dir dir;
  auto path = dir.path + "/f";
  write_file_durably(path, "first\n");
  write_file_durably(path, "second\n");
  BOOST_CHECK_EQUAL(slurp(path), "second\n");
  BOOST_CHECK(!std::filesystem::exists(path + ".tmp"));
  BOOST_CHECK_THROW(write_file_durably(dir.path + "/no/such/f", "x"),
                    std::system_error);
}

BOOST_AUTO_TEST_CASE(the_node_id_file_round_trips_any_id_length) {
  scratch_dir dir;
  BOOST_CHECK_EQUAL(read_node_id(dir.path), "");
  // A py2p-mode ID is 65-66 characters: 130-132 hex digits.
  std::string py2p_id(66, 'Q');
  write_node_id(dir.path, py2p_id);
  BOOST_CHECK_EQUAL(read_node_id(dir.path), py2p_id);
  write_file_durably(dir.path + "/node-id", "not hex\n");
  BOOST_CHECK_THROW(read_node_id(dir.path), value_error);
}

BOOST_AUTO_TEST_CASE(a_dir_keeps_its_node_and_refuses_another) {
  scratch_dir dir;
  uint64_t now = 1'700'000'000'000'000;
  auto cfg = on_dir(dir.path + "/d", &now);
  write_one_key(cfg, &now);
  BOOST_CHECK_EQUAL(slurp(cfg.data_dir + "/node-id"), to_hex("n1") + "\n");
  // Reopened with a fresh ID offered: the stored one wins, the key is back.
  auto [id, start] = open_data_dir(cfg, {}, "other");
  BOOST_CHECK_EQUAL(id, "n1");
  BOOST_CHECK_EQUAL(start->entries, 1u);
  BOOST_CHECK(start->set_aside.empty());
  BOOST_CHECK_GT(start->clock_floor_us, now);
  start.reset();
  auto named = cfg;
  named.node_id = node_id::from_raw("n2");
  BOOST_CHECK_THROW(open_data_dir(named, {}, "n2"), value_error);
  BOOST_CHECK_THROW(open_data_dir(cfg, "cert-id", "cert-id"), value_error);
}

// Away longer than the horizon: the entries move aside (kept for the
// operator) and the node starts empty, keeping its ID and staying above
// every stamp it made; still running, the mark keeps a dir fresh.
BOOST_AUTO_TEST_CASE(entries_away_longer_than_the_horizon_are_set_aside) {
  scratch_dir dir;
  uint64_t now = 1'700'000'000'000'000;
  auto cfg = on_dir(dir.path + "/d", &now);
  write_one_key(cfg, &now);
  auto stamped = now;
  now += 2 * hour_us;
  auto [id, start] = open_data_dir(cfg, {}, "other");
  BOOST_CHECK_EQUAL(id, "n1");
  BOOST_CHECK_EQUAL(start->entries, 0u);
  BOOST_REQUIRE(!start->set_aside.empty());
  BOOST_CHECK(std::filesystem::is_directory(start->set_aside));
  BOOST_CHECK_EQUAL(
    std::filesystem::path(start->set_aside).parent_path().string(),
    cfg.data_dir);
  BOOST_CHECK_GT(start->clock_floor_us, stamped);
  start.reset();
  // Reopened at once, the (empty) entries are fresh: nothing moves.
  auto [id2, again] = open_data_dir(cfg, {}, "other");
  BOOST_CHECK(again->set_aside.empty());
}

BOOST_AUTO_TEST_CASE(keep_stale_data_loads_them_anyway) {
  scratch_dir dir;
  uint64_t now = 1'700'000'000'000'000;
  auto cfg = on_dir(dir.path + "/d", &now);
  write_one_key(cfg, &now);
  now += 2 * hour_us;
  cfg.keep_stale_data = true;
  auto [id, start] = open_data_dir(cfg, {}, "other");
  BOOST_CHECK_EQUAL(start->entries, 1u);
  BOOST_CHECK(start->set_aside.empty());
}

BOOST_AUTO_TEST_SUITE_END()
