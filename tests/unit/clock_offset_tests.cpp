// The clock offset estimator and the self-fence (actors/clock_offset.hpp).

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <string>

#include "actors/clock_offset.hpp"

using namespace syncmesh;

namespace {

constexpr uint64_t t0 = 1'700'000'000'000'000;
constexpr uint64_t ms = 1000;
constexpr uint64_t bound = 500 * ms;

/// A sample of a peer whose clock is `offset` ahead, over a round trip of
/// `rtt` split `out`/`rtt - out` between the two directions.
clock_sample sample(int64_t offset, uint64_t rtt, uint64_t out, uint64_t at) {
  auto ping = at;
  auto peer = static_cast<uint64_t>(static_cast<int64_t>(ping + out) + offset);
  auto s = clock_sample_from(ping, peer, ping + rtt);
  BOOST_REQUIRE(s);
  return *s;
}

clock_estimate est(int64_t offset, uint64_t uncertainty) {
  clock_estimate e;
  e.offset_us = offset;
  e.uncertainty_us = uncertainty;
  e.at_us = t0;
  return e;
}

} // namespace

BOOST_AUTO_TEST_SUITE(clock_offset)

BOOST_AUTO_TEST_CASE(a_symmetric_round_trip_measures_the_offset_exactly) {
  auto s = sample(2000 * ms, 10 * ms, 5 * ms, t0);
  BOOST_CHECK_EQUAL(s.offset_us, 2000 * 1000);
  BOOST_CHECK_EQUAL(s.rtt_us, 10 * ms);
  auto behind = sample(-750 * 1000, 4 * ms, 2 * ms, t0);
  BOOST_CHECK_EQUAL(behind.offset_us, -750 * 1000);
}

BOOST_AUTO_TEST_CASE(an_asymmetric_trip_errs_by_at_most_half_the_rtt) {
  // All of the 10 ms on the way out: the peer's stamp looks 5 ms later.
  auto s = sample(0, 10 * ms, 10 * ms, t0);
  BOOST_CHECK_EQUAL(s.offset_us, 5 * 1000);
  offset_estimator e;
  e.add(s);
  BOOST_CHECK(std::abs(e.estimate()->offset_us)
              <= static_cast<int64_t>(e.estimate()->uncertainty_us));
}

BOOST_AUTO_TEST_CASE(missing_times_or_a_clock_going_back_give_no_sample) {
  BOOST_CHECK(!clock_sample_from(0, t0, t0));
  BOOST_CHECK(!clock_sample_from(t0, 0, t0));
  BOOST_CHECK(!clock_sample_from(t0, t0, t0 - 1));
}

BOOST_AUTO_TEST_CASE(the_estimate_comes_from_the_lowest_rtt_sample) {
  offset_estimator e{4};
  BOOST_CHECK(!e.estimate());
  // Queued pongs: long RTTs whose asymmetry skews their offsets.
  e.add(sample(100 * ms, 300 * ms, 290 * ms, t0));
  e.add(sample(100 * ms, 2 * ms, 1 * ms, t0 + 1000 * ms));
  e.add(sample(100 * ms, 200 * ms, 10 * ms, t0 + 2000 * ms));
  auto x = e.estimate();
  BOOST_REQUIRE(x);
  BOOST_CHECK_EQUAL(x->offset_us, 100 * 1000);
  BOOST_CHECK_EQUAL(x->uncertainty_us, 1 * ms);
  BOOST_CHECK_EQUAL(x->at_us, t0 + 1000 * ms + 2 * ms);
}

BOOST_AUTO_TEST_CASE(old_samples_leave_the_window) {
  offset_estimator e{3};
  e.add(sample(0, 1 * ms, 0, t0));
  // The clock stepped 2 s; slower samples since, but the window forgets.
  for (int i = 1; i <= 3; ++i)
    e.add(sample(2000 * ms, 4 * ms, 2 * ms, t0 + i * 1000 * ms));
  BOOST_CHECK_EQUAL(e.size(), 3u);
  BOOST_CHECK_EQUAL(e.estimate()->offset_us, 2000 * 1000);
}

BOOST_AUTO_TEST_CASE(beyond_means_beyond_even_at_the_favourable_end) {
  BOOST_CHECK(est(2000 * 1000, 1000).beyond(bound));
  BOOST_CHECK(est(-2000 * 1000, 1000).beyond(bound));
  BOOST_CHECK(!est(500 * 1000, 0).beyond(bound));
  BOOST_CHECK(est(500 * 1000 + 1, 0).beyond(bound));
  // 600 ms ± 200 ms may be 400 ms: not provably beyond.
  BOOST_CHECK(!est(600 * 1000, 200 * ms).beyond(bound));
  BOOST_CHECK(est(600 * 1000, 99 * ms).beyond(bound));
  BOOST_CHECK(!est(-600 * 1000, 100 * ms).beyond(bound));
}

BOOST_AUTO_TEST_CASE(a_lone_node_is_not_fenced) {
  clock_fence f{bound};
  BOOST_CHECK(!f.fenced());
  BOOST_CHECK(f.reason().empty());
  BOOST_CHECK(f.snapshot().empty());
}

BOOST_AUTO_TEST_CASE(the_fence_follows_a_strict_majority) {
  clock_fence f{bound};
  BOOST_CHECK(f.measured("b", est(2000 * 1000, ms)) == fence_change::raised);
  BOOST_CHECK(f.fenced());
  // 1 of 2 beyond: no majority.
  BOOST_CHECK(f.measured("c", est(10 * 1000, ms)) == fence_change::lowered);
  BOOST_CHECK(!f.fenced());
  BOOST_CHECK(f.measured("d", est(-900 * 1000, ms)) == fence_change::raised);
  BOOST_CHECK(f.reason().find("2 of 3") != std::string::npos);
  BOOST_CHECK(f.measured("d", est(-100 * 1000, ms)) == fence_change::lowered);
  BOOST_CHECK_EQUAL(f.times_raised(), 2u);
}

BOOST_AUTO_TEST_CASE(two_nodes_beyond_the_bound_both_fence) {
  // Each side sees the other beyond: neither can tell whose clock is wrong.
  clock_fence a{bound};
  clock_fence b{bound};
  a.refused("b", est(2000 * 1000, ms));
  b.refused("a", est(-2000 * 1000, ms));
  BOOST_CHECK(a.fenced());
  BOOST_CHECK(b.fenced());
  // The link is gone, the memory stays until a measurement within.
  a.closed("b");
  BOOST_CHECK(a.fenced());
  BOOST_CHECK(a.measured("b", est(100 * 1000, ms)) == fence_change::lowered);
  BOOST_CHECK(!a.fenced());
  BOOST_CHECK_EQUAL(a.refused_peers(), 1u);
}

BOOST_AUTO_TEST_CASE(a_node_every_peer_refused_stays_fenced) {
  clock_fence f{bound};
  f.measured("b", est(10 * 1000, ms));
  f.measured("c", est(20 * 1000, ms));
  BOOST_CHECK(!f.fenced());
  // Both peers close the link for our clock (their bound is tighter, or
  // they measured a different uncertainty): the fence remembers.
  f.refused_by("b");
  BOOST_CHECK(!f.fenced());
  BOOST_CHECK(f.refused_by("c") == fence_change::raised);
  BOOST_CHECK(f.fenced());
  f.closed("b");
  f.closed("c");
  BOOST_CHECK(f.fenced());
  auto snap = f.snapshot();
  BOOST_REQUIRE_EQUAL(snap.size(), 2u);
  BOOST_CHECK(snap[0].refused_us && snap[1].refused_us);
  // A later handshake measures b within: 1 of 2, down.
  BOOST_CHECK(f.measured("b", est(0, ms)) == fence_change::lowered);
}

BOOST_AUTO_TEST_CASE(closed_links_within_the_bound_stop_counting) {
  clock_fence f{bound};
  f.measured("b", est(0, ms));
  f.measured("c", est(0, ms));
  f.refused("d", est(5000 * 1000, ms));
  BOOST_CHECK(!f.fenced());
  f.closed("b");
  // c within, d beyond: 1 of 2.
  BOOST_CHECK(!f.fenced());
  BOOST_CHECK(f.closed("c") == fence_change::raised);
  BOOST_CHECK_EQUAL(f.snapshot().size(), 1u);
}

BOOST_AUTO_TEST_CASE(offsets_read_in_milliseconds) {
  BOOST_CHECK_EQUAL(describe_offset(est(2'000'100, 300)),
                    "+2000.1 ms ± 0.3 ms");
  BOOST_CHECK_EQUAL(describe_offset(est(-1500, 0)), "-1.5 ms ± 0.0 ms");
}

BOOST_AUTO_TEST_SUITE_END()
