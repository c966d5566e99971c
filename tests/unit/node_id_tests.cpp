// syncmesh::node_id, the one type every public API uses to name a node
// (issue 17): raw bytes inside, hex outside, hashable and ordered.
#include <boost/test/unit_test.hpp>

#include <sstream>
#include <string>
#include <type_traits>
#include <unordered_set>

#include "messages/version.hpp"
#include "syncmesh/errors.hpp"
#include "syncmesh/node_id.hpp"

using namespace syncmesh;

BOOST_AUTO_TEST_SUITE(node_ids)

BOOST_AUTO_TEST_CASE(hex_is_lowercase_and_round_trips) {
  auto id = node_id::from_raw(std::string("\x00\x01\xab\xff", 4));
  BOOST_TEST(id.to_hex() == "0001abff");
  // The same text the node's logs, HTTP API and CLI print.
  BOOST_TEST(id.to_hex() == to_hex(id.raw()));
  BOOST_TEST_REQUIRE(node_id::from_hex("0001ABff").has_value());
  BOOST_TEST(*node_id::from_hex("0001ABff") == id);
  BOOST_TEST(*node_id::from_hex(id.to_hex()) == id);
  BOOST_TEST(id.size() == 4u);
  BOOST_TEST(!id.empty());
}

BOOST_AUTO_TEST_CASE(from_hex_refuses_what_is_not_hex) {
  BOOST_TEST(!node_id::from_hex("abc").has_value()); // odd length
  BOOST_TEST(!node_id::from_hex("zz").has_value());
  BOOST_TEST(!node_id::from_hex("0x01").has_value());
  BOOST_TEST(!node_id::from_hex(std::string(2 * node_id::max_size + 2, 'a'))
                .has_value());
  BOOST_TEST(
    node_id::from_hex(std::string(2 * node_id::max_size, 'a')).has_value());
  // The empty text is the empty ID, so every ID round-trips.
  BOOST_TEST_REQUIRE(node_id::from_hex("").has_value());
  BOOST_TEST(node_id::from_hex("")->empty());
  BOOST_TEST(node_id{}.to_hex() == "");
}

BOOST_AUTO_TEST_CASE(py2p_ids_of_any_length_are_kept_whole) {
  // py2p-mode IDs are 65-66 characters of base58 text.
  std::string base58(66, 'Q');
  auto id = node_id::from_raw(base58);
  BOOST_TEST(id.raw() == base58);
  BOOST_TEST(id.to_hex().size() == 132u);
  BOOST_TEST(node_id::from_hex(id.to_hex())->raw() == base58);
}

BOOST_AUTO_TEST_CASE(ids_compare_bytewise_and_hash) {
  auto a = node_id::from_raw("a");
  auto b = node_id::from_raw("b");
  auto a2 = node_id::from_raw("a");
  BOOST_TEST(a == a2);
  BOOST_TEST(a != b);
  BOOST_TEST(a < b);
  BOOST_TEST(b > a);
  BOOST_TEST(a <= a2);
  BOOST_TEST(b >= a);
  // The seed's tie-break order: bytewise, so "\x7f" < "\x80".
  BOOST_TEST(node_id::from_raw("\x7f") < node_id::from_raw("\x80"));
  std::unordered_set<node_id> set{a, b, a2};
  BOOST_TEST(set.size() == 2u);
  BOOST_TEST(std::hash<node_id>{}(a) == std::hash<node_id>{}(a2));
}

BOOST_AUTO_TEST_CASE(streams_and_to_string_print_hex) {
  auto id = node_id::from_raw("\x12\x34");
  std::ostringstream out;
  out << id;
  BOOST_TEST(out.str() == "1234");
  BOOST_TEST(to_string(id) == "1234");
}

BOOST_AUTO_TEST_CASE(raw_of_a_temporary_is_a_value) {
  static_assert(
    std::is_same_v<decltype(node_id::from_raw("x").raw()), std::string>);
  static_assert(!std::is_convertible_v<std::string, node_id>);
  static_assert(!std::is_convertible_v<const char*, node_id>);
  static_assert(!std::is_convertible_v<node_id, std::string>);
  const auto& raw = node_id::from_raw(std::string(40, 'r')).raw();
  BOOST_TEST(raw == std::string(40, 'r'));
}

BOOST_AUTO_TEST_CASE(lease_errors_name_the_owner_as_a_node_id) {
  auto owner = node_id::from_raw("\xab\xcd");
  lease_error single{"k", owner, 0};
  BOOST_TEST(single.owner() == owner);
  BOOST_TEST(std::string{single.what()}.find("abcd") != std::string::npos);
  lease_error batch{
    {lease_conflict{"a", owner, 1}, lease_conflict{"b", {}, 2}}};
  BOOST_TEST(batch.owner() == owner);
  BOOST_TEST(batch.conflicts()[0].owner == owner);
  BOOST_TEST(batch.conflicts()[1].owner.empty());
}

BOOST_AUTO_TEST_SUITE_END()
