// The set sketch (invertible Bloom lookup table) on its own: what a
// subtracted sketch decodes to, when it cannot, and hostile bytes.

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <random>
#include <set>

#include "actors/set_sketch.hpp"

using namespace syncmesh;

namespace {

/// Two sets sharing `shared` elements; `only_a` and `only_b` more each.
struct two_sets {
  std::vector<uint64_t> a, b, only_a, only_b;

  two_sets(size_t shared, size_t a_only, size_t b_only, uint64_t seed) {
    std::mt19937_64 rng{seed};
    for (size_t i = 0; i < shared; ++i) {
      auto x = rng();
      a.push_back(x);
      b.push_back(x);
    }
    for (size_t i = 0; i < a_only; ++i) {
      only_a.push_back(rng());
      a.push_back(only_a.back());
    }
    for (size_t i = 0; i < b_only; ++i) {
      only_b.push_back(rng());
      b.push_back(only_b.back());
    }
  }
};

set_sketch sketch_of(const std::vector<uint64_t>& xs, size_t cells) {
  set_sketch s{cells};
  for (auto x : xs)
    s.add(x);
  return s;
}

std::set<uint64_t> as_set(const std::vector<uint64_t>& xs) {
  return {xs.begin(), xs.end()};
}

} // namespace

BOOST_AUTO_TEST_SUITE(set_sketch_suite)

BOOST_AUTO_TEST_CASE(the_difference_of_large_sets_decodes_from_a_small_sketch) {
  // 1,000 differing elements among 100,000: the sketch has ~1,300 cells.
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    two_sets sets{100000, 600, 400, seed};
    auto cells = set_sketch::cells_for(1000);
    BOOST_CHECK_LT(cells, 1400u);
    auto mine = sketch_of(sets.a, cells);
    BOOST_REQUIRE(mine.subtract(sketch_of(sets.b, cells)));
    auto diff = mine.decode();
    BOOST_REQUIRE(diff.complete);
    BOOST_CHECK(as_set(diff.ours) == as_set(sets.only_a));
    BOOST_CHECK(as_set(diff.theirs) == as_set(sets.only_b));
  }
}

BOOST_AUTO_TEST_CASE(equal_sets_decode_to_nothing) {
  two_sets sets{5000, 0, 0, 9};
  auto mine = sketch_of(sets.a, 30);
  mine.subtract(sketch_of(sets.b, 30));
  auto diff = mine.decode();
  BOOST_CHECK(diff.complete);
  BOOST_CHECK(diff.ours.empty() && diff.theirs.empty());
}

BOOST_AUTO_TEST_CASE(a_sketch_too_small_says_so_instead_of_guessing) {
  two_sets sets{1000, 300, 300, 3};
  auto mine = sketch_of(sets.a, 60);
  mine.subtract(sketch_of(sets.b, 60));
  auto diff = mine.decode();
  BOOST_CHECK(!diff.complete);
  // Whatever it did peel is genuinely part of the difference.
  auto only_a = as_set(sets.only_a);
  auto only_b = as_set(sets.only_b);
  for (auto x : diff.ours)
    BOOST_CHECK(only_a.count(x) == 1);
  for (auto x : diff.theirs)
    BOOST_CHECK(only_b.count(x) == 1);
}

BOOST_AUTO_TEST_CASE(the_wire_form_round_trips_and_checks_its_size) {
  two_sets sets{100, 10, 0, 4};
  auto sketch = sketch_of(sets.a, 99);
  BOOST_CHECK_EQUAL(sketch.cells() % set_sketch::hash_count, 0u);
  auto bytes = sketch.serialize();
  BOOST_CHECK_EQUAL(bytes.size(), sketch.cells() * set_sketch::cell_bytes);
  set_sketch copy{set_sketch::min_cells};
  BOOST_REQUIRE(set_sketch::parse(bytes, sketch.cells(), copy));
  BOOST_CHECK(copy.serialize() == bytes);
  BOOST_CHECK(!set_sketch::parse(bytes, sketch.cells() + 3, copy));
  BOOST_CHECK(!set_sketch::parse(bytes.substr(1), sketch.cells(), copy));
  // A cell count that is not a multiple of the hash count names no sketch.
  BOOST_CHECK(!set_sketch::parse(std::string(100 * set_sketch::cell_bytes, 'x'),
                                 100, copy));
  // Sketches of different sizes do not subtract.
  BOOST_CHECK(!sketch.subtract(set_sketch{sketch.cells() + 3}));
}

BOOST_AUTO_TEST_CASE(hostile_bytes_decode_to_a_bounded_answer) {
  std::mt19937_64 rng{11};
  for (int round = 0; round < 200; ++round) {
    size_t cells = set_sketch::min_cells + 3 * (rng() % 50);
    std::string bytes(cells * set_sketch::cell_bytes, '\0');
    for (auto& c : bytes)
      c = static_cast<char>(rng());
    set_sketch sketch{set_sketch::min_cells};
    BOOST_REQUIRE(set_sketch::parse(bytes, cells, sketch));
    auto diff = sketch.decode();
    BOOST_CHECK_LE(diff.ours.size() + diff.theirs.size(), cells + 1);
  }
}

BOOST_AUTO_TEST_SUITE_END()
