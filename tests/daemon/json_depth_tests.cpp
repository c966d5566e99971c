// The non-recursive nesting check that runs before any JSON body is parsed
// (nlohmann's parser recurses once per level: 100,000 levels crashed it).

#define BOOST_TEST_MODULE json_depth
#include <boost/test/unit_test.hpp>

#include <string>

#include "node/daemon/json_value.hpp"

using syncmesh::json_nested_deeper_than;

BOOST_AUTO_TEST_CASE(counts_arrays_and_objects) {
  BOOST_CHECK(!json_nested_deeper_than("1", 0));
  BOOST_CHECK(!json_nested_deeper_than("[1]", 1));
  BOOST_CHECK(json_nested_deeper_than("[1]", 0));
  BOOST_CHECK(!json_nested_deeper_than(R"({"a":[1,{"b":2}]})", 3));
  BOOST_CHECK(json_nested_deeper_than(R"({"a":[1,{"b":2}]})", 2));
  // Siblings do not add up: depth is the deepest path, not the count.
  BOOST_CHECK(!json_nested_deeper_than("[[],[],[],[]]", 2));
}

BOOST_AUTO_TEST_CASE(brackets_inside_strings_do_not_count) {
  BOOST_CHECK(!json_nested_deeper_than(R"(["[[[[{{{{"])", 1));
  // An escaped quote does not end the string.
  BOOST_CHECK(!json_nested_deeper_than(R"(["a\"[[[[", "\\"])", 1));
  BOOST_CHECK(json_nested_deeper_than(R"(["\\", [[1]]])", 2));
}

BOOST_AUTO_TEST_CASE(a_100000_deep_body_is_refused_without_recursion) {
  std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  BOOST_CHECK(json_nested_deeper_than(deep, 64));
  BOOST_CHECK(!json_nested_deeper_than(deep, 100'000));
  // Unbalanced or malformed text is left to the parser, never a crash.
  BOOST_CHECK(!json_nested_deeper_than("]]]]}}}}", 1));
  BOOST_CHECK(json_nested_deeper_than(std::string(1'000'000, '{'), 64));
}
