// Values written like py2p's Python literals (issue 17): braces, ranges of
// values and of pairs, nested forms, the distinct bytes type, and accessors
// that never hand out a reference into a temporary.
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "syncmesh/errors.hpp"
#include "syncmesh/value.hpp"

using namespace syncmesh;

namespace syncmesh {

/// Prints a list in failure messages as its value.
std::ostream& boost_test_print_type(std::ostream& out, const value_list& x) {
  return out << value(x);
}

} // namespace syncmesh

namespace {

/// The keys of a map value in order, "t:" or "b:" marking text or bytes.
std::vector<std::string> keys_of(const value& x) {
  std::vector<std::string> result;
  for (const auto& item : x.as_map())
    result.push_back((item.key.is_text ? "t:" : "b:") + item.key.data);
  return result;
}

/// A function that takes a value, as sync_socket::set does.
value take(value x) {
  return x;
}

/// A temporary value, as sync_socket::at returns one.
value fresh_map() {
  return value{{"name", "ada"}, {"tags", {"x", "y", "z"}}};
}

} // namespace

BOOST_AUTO_TEST_SUITE(value_forms)

BOOST_AUTO_TEST_CASE(braces_of_values_make_a_list) {
  value x = {1, 2, 3};
  BOOST_TEST_REQUIRE(x.is_list());
  BOOST_TEST(x == (value_list{1, 2, 3}));
  BOOST_TEST(take({1, "two", 3.0}) == (value_list{1, "two", 3.0}));
  // Mixed elements, and pairs whose first element is not text, are lists.
  BOOST_TEST(take({{1, 2}, {3, 4}}).is_list());
  BOOST_TEST(take({{1, 2}, {3, 4}}).as_list().size() == 2u);
  BOOST_TEST(take({{"a", 1}, 5}).is_list());
  BOOST_TEST(take({{"a", 1}, {"b", 2, 3}}).is_list());
}

BOOST_AUTO_TEST_CASE(braces_of_text_keyed_pairs_make_a_map) {
  value m = {{"a", 1}, {"b", 2}};
  BOOST_TEST_REQUIRE(m.is_map());
  BOOST_TEST(keys_of(m) == (std::vector<std::string>{"t:a", "t:b"}));
  BOOST_TEST(m.find("b")->as_int64() == 2);
  // One field is a map too: the ambiguous case has one documented answer.
  value one = {{"a", 1}};
  BOOST_TEST(one.is_map());
  BOOST_TEST(keys_of(one) == (std::vector<std::string>{"t:a"}));
  // Bytes keys are map keys as well.
  value raw = {{bytes{0x01}, 1}};
  BOOST_TEST(keys_of(raw) == (std::vector<std::string>{"b:\x01"}));
  value keyed = {{map_key::from_bytes("k"), 1}, {map_key{"t"}, 2}};
  BOOST_TEST(keys_of(keyed) == (std::vector<std::string>{"b:k", "t:t"}));
  // A map key as a value is its text or bytes.
  BOOST_TEST(value(map_key::from_bytes("k")) == value::from_bytes("k"));
  BOOST_TEST(value(map_key{"k"}) == value{"k"});
  // Later duplicates replace earlier ones in place.
  value dup = {{"a", 1}, {"b", 2}, {"a", 3}};
  BOOST_TEST(keys_of(dup) == (std::vector<std::string>{"t:a", "t:b"}));
  BOOST_TEST(dup.find("a")->as_int64() == 3);
}

BOOST_AUTO_TEST_CASE(a_list_of_pairs_is_written_with_value_list_or_list) {
  auto pairs = value::list({{"a", 1}});
  BOOST_TEST_REQUIRE(pairs.is_list());
  BOOST_TEST_REQUIRE(pairs.as_list().size() == 1u);
  BOOST_TEST(pairs.as_list()[0] == (value_list{"a", 1}));
  BOOST_TEST(value(value_list{{"a", 1}}) == pairs);
  // value::list of one element is a list of one element.
  BOOST_TEST(value::list({5}) == (value_list{5}));
  // value::map always makes a map.
  auto m = value::map({{"a", {1, 2}}});
  BOOST_TEST(m.is_map());
  BOOST_TEST(*m.find("a") == (value_list{1, 2}));
  // A list value written out in braces stays a list: the rule looks at
  // how each element was written, not at what it holds.
  value kept{value_list{"a", 1}};
  BOOST_TEST(kept.is_list());
  value named = {"a", 1};
  value outer = {named, named};
  BOOST_TEST(outer.is_list());
}

BOOST_AUTO_TEST_CASE(braces_around_one_element_are_that_element) {
  BOOST_TEST(value{"x"}.is_text());
  BOOST_TEST(value{5}.as_int64() == 5);
  BOOST_TEST(take({5}).is_int64());
  BOOST_TEST(value{value_list{}}.is_list());
  BOOST_TEST((value{ext_value{3, "e"}}).is_ext());
  BOOST_TEST((value{{1, 2}}) == (value_list{1, 2}));
  BOOST_TEST(value{}.is_nil());
  BOOST_TEST(take({}).is_nil());
}

BOOST_AUTO_TEST_CASE(nested_braces_nest) {
  value x
    = {{"user", {{"name", "ada"}, {"langs", {"c++", "py"}}}}, {"ids", {1, 2}}};
  BOOST_TEST_REQUIRE(x.is_map());
  const auto& user = *x.find("user");
  BOOST_TEST(user.is_map());
  BOOST_TEST(*user.find("name") == "ada");
  BOOST_TEST(*user.find("langs") == (value_list{"c++", "py"}));
  BOOST_TEST(*x.find("ids") == (value_list{1, 2}));
  value lists = {{1, {2, 3}}, {4}};
  BOOST_TEST(lists.as_list()[0] == (value_list{1, value_list{2, 3}}));
  BOOST_TEST(lists.as_list()[1] == value{4});
}

BOOST_AUTO_TEST_CASE(ranges_of_values_make_lists) {
  BOOST_TEST(value(std::vector<int>{1, 2}) == (value_list{1, 2}));
  BOOST_TEST(value(std::list<std::string>{"a", "b"}) == (value_list{"a", "b"}));
  BOOST_TEST(value(std::array<double, 2>{1.5, 2.5}) == (value_list{1.5, 2.5}));
  BOOST_TEST(value(std::set<int>{3, 1, 2}) == (value_list{1, 2, 3}));
  BOOST_TEST(value(std::vector<std::vector<int>>{{1}, {2, 3}})
             == (value_list{value_list{1}, value_list{2, 3}}));
  BOOST_TEST(value(std::vector<int>{}) == value_list{});
  // unsigned stays uint64 inside lists as everywhere.
  BOOST_TEST(value(std::vector<uint64_t>{7}).as_list()[0].is_uint64());
}

BOOST_AUTO_TEST_CASE(ranges_of_pairs_make_maps) {
  std::map<std::string, int> sorted{{"b", 2}, {"a", 1}};
  value m = sorted;
  BOOST_TEST(keys_of(m) == (std::vector<std::string>{"t:a", "t:b"}));
  BOOST_TEST(m.find("b")->as_int64() == 2);
  std::unordered_map<std::string, std::string> hashed{{"k", "v"}};
  BOOST_TEST(value(hashed) == (value{{"k", "v"}}));
  // A vector of pairs keeps its order.
  std::vector<std::pair<std::string, double>> ordered{{"z", 1.0}, {"a", 2.0}};
  BOOST_TEST(keys_of(value(ordered))
             == (std::vector<std::string>{"t:z", "t:a"}));
  std::map<std::string, std::vector<int>> nested{{"xs", {1, 2}}};
  value from_nested = nested;
  BOOST_TEST(*from_nested.find("xs") == (value_list{1, 2}));
  std::map<bytes, int> raw{{bytes{0xff}, 1}};
  BOOST_TEST(keys_of(value(raw)) == (std::vector<std::string>{"b:\xff"}));
  BOOST_TEST(value(std::map<std::string, int>{}) == value::empty_map());
  // What sync_socket::copy() returns converts back as a whole.
  std::map<std::string, value> copy{{"a", value{1}}, {"b", value{"x"}}};
  BOOST_TEST(value(copy) == (value{{"a", 1}, {"b", "x"}}));
}

BOOST_AUTO_TEST_CASE(strings_stay_text_and_byte_containers_stay_bytes) {
  // Ranges with a meaning of their own are not lists.
  BOOST_TEST(value(std::string{"abc"}).is_text());
  BOOST_TEST(value(std::string_view{"abc"}).is_text());
  BOOST_TEST(value(std::vector<uint8_t>{1, 2}).is_bytes());
  BOOST_TEST(value(std::array<std::byte, 1>{std::byte{9}}).is_bytes());
  char buffer[] = "mutable";
  BOOST_TEST(value(static_cast<char*>(buffer)) == value{"mutable"});
  // Conversions a value refuses (tests/api/compile_fail holds the errors).
  static_assert(!std::is_constructible_v<value, const int*>);
  static_assert(!std::is_constructible_v<value, std::map<int, int>>);
  static_assert(!std::is_constructible_v<value, std::vector<char>>);
  static_assert(std::is_constructible_v<value, const char*>);
}

BOOST_AUTO_TEST_CASE(bytes_is_a_type_of_its_own) {
  static_assert(!std::is_same_v<bytes, std::string>);
  static_assert(!std::is_convertible_v<std::string, bytes>);
  static_assert(!std::is_convertible_v<const char*, bytes>);
  static_assert(!std::is_convertible_v<bytes, std::string>);
  value b = bytes{'k', 0x00, 0xff};
  BOOST_TEST(b.is_bytes());
  BOOST_TEST(b.as_bytes() == std::string("k\x00\xff", 3));
  BOOST_TEST(value(bytes::from("text")).is_bytes());
  BOOST_TEST(value(bytes::from("text")) != value{"text"});
  BOOST_TEST(value(bytes{std::string{"raw"}}) == value::from_bytes("raw"));
  BOOST_TEST(bytes::from("ab").view() == "ab");
  BOOST_TEST(bytes::from("ab").str() == "ab");
  BOOST_TEST(bytes::from("ab").size() == 2u);
  BOOST_TEST(bytes{}.empty());
  BOOST_TEST(bytes(std::vector<uint8_t>{0x61}) == bytes::from("a"));
  BOOST_TEST(bytes("ab", 1) == bytes::from("a"));
  BOOST_TEST(bytes::from("a") < bytes::from("b"));
  BOOST_TEST(to_string(bytes{0x01, 'x'}) == "b\"\\x01x\"");
  // As a key, bytes are the key's bytes: the same key as the text.
  BOOST_TEST(key_arg(bytes::from("k")).str() == key_arg("k").str());
  BOOST_TEST(map_key(bytes::from("k")).is_text == false);
}

BOOST_AUTO_TEST_CASE(find_takes_every_string_form_without_ambiguity) {
  value m = {{"a", 1}, {bytes::from("a"), 2}};
  std::string text_key = "a";
  std::string_view view_key = text_key;
  BOOST_TEST(m.find(text_key)->as_int64() == 1);
  BOOST_TEST(m.find(view_key)->as_int64() == 1);
  BOOST_TEST(m.find("a")->as_int64() == 1);
  BOOST_TEST(m.find(map_key{"a"})->as_int64() == 1);
  BOOST_TEST(m.find(bytes::from("a"))->as_int64() == 2);
  BOOST_TEST(m.find("missing") == nullptr);
  BOOST_TEST(m.contains(text_key));
  BOOST_TEST(m.contains(bytes::from("a")));
  BOOST_TEST(!m.contains("missing"));
  BOOST_TEST(fresh_map().contains("name"));
  BOOST_TEST(!value{1}.contains("name"));
}

BOOST_AUTO_TEST_CASE(find_on_a_temporary_owns_a_copy_of_the_field) {
  // Reads like the pointer find() gives on a named value...
  BOOST_TEST(*fresh_map().find("name") == value{"ada"});
  BOOST_TEST(fresh_map().find("name")->as_text() == "ada");
  BOOST_TEST(fresh_map().find("missing") == nullptr);
  BOOST_TEST(fresh_map().find(std::string{"tags"}) != nullptr);
  BOOST_TEST(!value{1}.find("x"));
  // ...but owns the field, so keeping it is safe.
  auto tags = fresh_map().find("tags");
  BOOST_TEST_REQUIRE(static_cast<bool>(tags));
  BOOST_TEST(*tags == (value_list{"x", "y", "z"}));
  static_assert(
    std::is_same_v<decltype(fresh_map().find("x")), value::owned_field>);
  static_assert(!std::is_convertible_v<value::owned_field, const value*>);
  value named = fresh_map();
  static_assert(std::is_same_v<decltype(named.find("x")), const value*>);
}

BOOST_AUTO_TEST_CASE(accessors_of_a_temporary_return_their_content) {
  // On a temporary, content comes back by value: binding it to a reference
  // keeps the content alive (it would dangle if it referred into the
  // destroyed value).
  static_assert(std::is_same_v<decltype(fresh_map().as_map()), value_map>);
  static_assert(std::is_same_v<decltype(value{"t"}.as_text()), std::string>);
  static_assert(std::is_same_v<decltype(value{"t"}.as_bytes()), std::string>);
  static_assert(
    std::is_same_v<decltype(value{value_list{}}.as_list()), value_list>);
  static_assert(
    std::is_same_v<decltype(value{ext_value{}}.as_ext()), ext_value>);
  static_assert(std::is_same_v<decltype(key_arg("k").str()), std::string>);
  // On a named value they still refer into it (no copy).
  value named = "text";
  static_assert(std::is_same_v<decltype(named.as_text()), const std::string&>);
  BOOST_TEST(&named.as_text() == &named.as_text());
  const auto& map = fresh_map().as_map();
  BOOST_TEST_REQUIRE(map.size() == 2u);
  BOOST_TEST(map[0].val == "ada");
  const auto& text
    = take("long enough to live on the heap, not in SSO").as_text();
  BOOST_TEST(text == "long enough to live on the heap, not in SSO");
  BOOST_CHECK_THROW(take(1).as_text(), type_error);
  BOOST_CHECK_THROW(take("x").as_list(), type_error);
  BOOST_CHECK_THROW(take(1).as_bytes(), type_error);
}

BOOST_AUTO_TEST_CASE(copies_of_a_braced_pair_are_plain_lists) {
  // A braced pair copied into a braced list is an element like any other:
  // only pairs written in place make a map.
  value pair = {"k", 1};
  BOOST_TEST(pair.is_list());
  value copied = pair;
  value two = {copied, copied};
  BOOST_TEST(two.is_list());
  BOOST_TEST(two.as_list().size() == 2u);
  value moved = std::move(copied);
  value again = {moved, {"j", 2}};
  BOOST_TEST(again.is_list());
}

BOOST_AUTO_TEST_SUITE_END()
