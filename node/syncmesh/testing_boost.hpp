#pragma once

// A Boost.Test fixture for <syncmesh/testing.hpp>: the cluster runs with
// the seed from SYNCMESH_TEST_SEED (or the test's own), and a failing test
// prints that seed and the cluster's trace, so any failure can be replayed:
//
//   struct my_fixture : syncmesh::testing::cluster_fixture {
//     my_fixture() : cluster_fixture(options()) {}
//     static syncmesh::testing::cluster_options options() { ... }
//   };
//   BOOST_FIXTURE_TEST_CASE(my_test, my_fixture) { mesh.connect(0, 1); ... }
//
// Include it after <boost/test/unit_test.hpp> in a Boost.Test program.

#include <exception>
#include <iostream>

#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>

#include "syncmesh/testing.hpp"

namespace syncmesh::testing {

/// `opts` with its seed replaced by SYNCMESH_TEST_SEED when that is set.
inline cluster_options with_env_seed(cluster_options opts) {
  opts.seed = seed_from_env(opts.seed);
  return opts;
}

/// Owns a cluster seeded from SYNCMESH_TEST_SEED (else from the options),
/// says which seed in the test log, and on failure (a failed check or an
/// exception) prints the seed and the trace to stderr.
class cluster_fixture {
public:
  /// A cluster with `opts` (its seed unless the environment names one).
  explicit cluster_fixture(cluster_options opts = {})
      : mesh(with_env_seed(std::move(opts))),
        exceptions_at_start_(std::uncaught_exceptions()) {
    BOOST_TEST_MESSAGE(
      "syncmesh cluster seed: SYNCMESH_TEST_SEED=" << mesh.seed());
  }

  /// Prints the seed and the trace when the test failed.
  ~cluster_fixture() {
    namespace utf = boost::unit_test;
    bool failed = std::uncaught_exceptions() > exceptions_at_start_;
    if (!failed) {
      auto id = utf::framework::current_test_case().p_id;
      // Not passed(): a test that expects failures "passes" with them.
      failed = utf::results_collector.results(id).p_assertions_failed.get()
               > 0;
    }
    if (failed) {
      std::cerr << "syncmesh: test failed; replay it with ";
      mesh.dump(std::cerr);
    }
  }

  cluster_fixture(const cluster_fixture&) = delete;
  cluster_fixture& operator=(const cluster_fixture&) = delete;

  /// The cluster under test.
  cluster mesh;

private:
  int exceptions_at_start_;
};

} // namespace syncmesh::testing
