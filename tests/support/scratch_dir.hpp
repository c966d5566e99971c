#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include <boost/test/unit_test.hpp>

namespace syncmesh::test {

/// A temporary directory for logs and data, removed with its content when
/// the test ends (declare it before the processes that write into it).
struct scratch_dir {
  /// The directory's path.
  std::string path;

  /// Creates /tmp/syncmesh-test-XXXXXX.
  scratch_dir() {
    char tmpl[] = "/tmp/syncmesh-test-XXXXXX";
    auto* dir = ::mkdtemp(tmpl);
    BOOST_REQUIRE(dir != nullptr);
    path = dir;
  }

  /// Removes the directory and everything in it.
  ~scratch_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }

  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
};

} // namespace syncmesh::test
