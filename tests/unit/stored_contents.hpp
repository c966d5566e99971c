#pragma once

// What an entry_storage holds, as a map, for the storage tests.

#include <boost/test/unit_test.hpp>

#include <map>
#include <string>
#include <string_view>

#include "actors/entry_storage.hpp"

namespace syncmesh::test {

/// Every key and record of a storage.
using stored_contents = std::map<std::string, std::string>;

/// Everything `store.for_each` yields, in a map; a key yielded twice fails
/// the test.
inline stored_contents load_contents(entry_storage& store) {
  stored_contents out;
  store.for_each([&](std::string_view key, std::string_view record) {
    auto [_, fresh] = out.emplace(std::string{key}, std::string{record});
    BOOST_TEST(fresh);
  });
  return out;
}

} // namespace syncmesh::test
