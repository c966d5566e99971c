// Times in messages: ISO 8601 UTC and a hint relative to now.

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "messages/time_text.hpp"
#include "syncmesh/errors.hpp"

namespace {

/// 2026-12-06T01:23:45Z in µs since the epoch.
constexpr uint64_t at = 1'796'520'225'000'000;
constexpr uint64_t second = 1'000'000;

} // namespace

BOOST_AUTO_TEST_SUITE(time_text)

BOOST_AUTO_TEST_CASE(instants_are_iso_8601_utc_to_the_second) {
  BOOST_CHECK_EQUAL(syncmesh::iso8601_utc(at), "2026-12-06T01:23:45Z");
  BOOST_CHECK_EQUAL(syncmesh::iso8601_utc(at + 999'999),
                    "2026-12-06T01:23:45Z");
  BOOST_CHECK_EQUAL(syncmesh::iso8601_utc(0), "1970-01-01T00:00:00Z");
}

BOOST_AUTO_TEST_CASE(the_hint_uses_seconds_minutes_hours_and_days) {
  using syncmesh::relative_time;
  BOOST_CHECK_EQUAL(relative_time(at, at), "now");
  BOOST_CHECK_EQUAL(relative_time(at + 999'999, at), "now");
  BOOST_CHECK_EQUAL(relative_time(at + 42 * second, at), "in 42 s");
  BOOST_CHECK_EQUAL(relative_time(at + 60 * second, at), "in 1 min");
  BOOST_CHECK_EQUAL(relative_time(at + 3599 * second, at), "in 59 min");
  BOOST_CHECK_EQUAL(relative_time(at + 3600 * second, at), "in 1 h");
  BOOST_CHECK_EQUAL(relative_time(at + (3 * 3600 + 5 * 60) * second, at),
                    "in 3 h 5 min");
  BOOST_CHECK_EQUAL(relative_time(at + 47 * 3600 * second, at), "in 47 h");
  BOOST_CHECK_EQUAL(relative_time(at + 3 * 86400 * second, at), "in 3 days");
}

BOOST_AUTO_TEST_CASE(the_past_says_ago) {
  using syncmesh::relative_time;
  BOOST_CHECK_EQUAL(relative_time(at - 5 * second, at), "5 s ago");
  BOOST_CHECK_EQUAL(relative_time(at - 12 * 60 * second, at), "12 min ago");
  BOOST_CHECK_EQUAL(relative_time(at - 2 * 3600 * second, at), "2 h ago");
  BOOST_CHECK_EQUAL(relative_time(0, at), "20793 days ago");
}

BOOST_AUTO_TEST_CASE(both_together) {
  BOOST_CHECK_EQUAL(syncmesh::format_time_until(at + 3599 * second, at),
                    "2026-12-06T02:23:44Z (in 59 min)");
}

/// The node ID written as hex in the messages below.
syncmesh::node_id hex_id(const char* hex) {
  return syncmesh::node_id::from_hex(hex).value();
}

BOOST_AUTO_TEST_CASE(a_lease_conflict_names_its_end_readably) {
  auto end = syncmesh::wall_clock_us() + 3600 * second;
  syncmesh::lease_error e{"k", hex_id("3fa2c1"), end};
  std::string what = e.what();
  BOOST_CHECK_MESSAGE(what.find("key 'k' is leased by node 3fa2c1 until "
                                + syncmesh::iso8601_utc(end) + " (in ")
                        != std::string::npos,
                      what);
  BOOST_CHECK_MESSAGE(what.find("since the epoch") == std::string::npos, what);
  // The machine fields stay.
  BOOST_CHECK_EQUAL(e.lease_end_us(), end);
  BOOST_CHECK_EQUAL(e.owner(), hex_id("3fa2c1"));
  // An unknown end (0) is not shown as 1970.
  BOOST_CHECK_EQUAL(
    std::string{syncmesh::lease_error("k", hex_id("ab"), 0).what()},
    "key 'k' is leased by node ab");
}

BOOST_AUTO_TEST_CASE(a_batch_conflict_names_every_key_and_bounds_its_message) {
  auto end = syncmesh::wall_clock_us() + 3600 * second;
  std::vector<syncmesh::lease_conflict> all;
  for (int i = 0; i < 5; ++i)
    all.push_back({"k" + std::to_string(i), hex_id("ab"), end + i});
  all[0].key = std::string{"bin\x01"};
  syncmesh::lease_error e{all};
  BOOST_REQUIRE_EQUAL(e.conflicts().size(), 5u);
  BOOST_CHECK_EQUAL(e.conflicts()[0].key, std::string{"bin\x01"}); // raw
  BOOST_CHECK_EQUAL(e.conflicts()[4].lease_end_us, end + 4);
  BOOST_CHECK_EQUAL(e.key(), "bin\\x01"); // printable, as before
  BOOST_CHECK_EQUAL(e.owner(), hex_id("ab"));
  BOOST_CHECK_EQUAL(e.lease_end_us(), end);
  std::string what = e.what();
  BOOST_CHECK_MESSAGE(
    what.rfind("key 'bin\\x01' is leased by node ab until ", 0) == 0, what);
  BOOST_CHECK_MESSAGE(what.find("; key 'k2' is leased") != std::string::npos,
                      what);
  BOOST_CHECK_MESSAGE(what.find("'k3'") == std::string::npos, what);
  BOOST_CHECK_MESSAGE(
    what.find("; and 2 more leased keys") != std::string::npos, what);
  // One conflict reads exactly like the single-key refusal.
  syncmesh::lease_error one{
    std::vector<syncmesh::lease_conflict>{{"k", hex_id("3fa2c1"), 0}}};
  BOOST_CHECK_EQUAL(std::string{one.what()},
                    "key 'k' is leased by node 3fa2c1");
  BOOST_CHECK_EQUAL(one.conflicts().size(), 1u);
}

BOOST_AUTO_TEST_SUITE_END()
