// The value model (messages/syncmesh/value.hpp) and its protobuf and
// canonical encodings (messages/value_proto.hpp).
#include <boost/test/unit_test.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <sstream>
#include <vector>

#include "messages/value_proto.hpp"
#include "syncmesh/errors.hpp"
#include "syncmesh/pb/value.pb.h"
#include "syncmesh/value.hpp"
#include "tests/unit/test_support.hpp"

using namespace syncmesh;

namespace {

using kind = value::kind;

const double nan_value = std::numeric_limits<double>::quiet_NaN();

/// Keys of a map value in order, "t:" or "b:" marking text or bytes.
std::vector<std::string> keys_of(const value& x) {
  std::vector<std::string> result;
  for (const auto& item : x.as_map())
    result.push_back((item.key.is_text ? "t:" : "b:") + item.key.data);
  return result;
}

/// A list nested `depth` levels deep around nil: depth 0 is nil itself.
pb::Value nested_lists(int depth) {
  pb::Value result;
  result.mutable_nil();
  for (int i = 0; i < depth; ++i) {
    pb::Value outer;
    *outer.mutable_list()->add_items() = std::move(result);
    result = std::move(outer);
  }
  return result;
}

/// A map nested `depth` levels deep ({"k": {"k": ... nil}}).
pb::Value nested_maps(int depth) {
  pb::Value result;
  result.mutable_nil();
  for (int i = 0; i < depth; ++i) {
    pb::Value outer;
    auto* entry = outer.mutable_map()->add_entries();
    entry->mutable_key()->set_text("k");
    *entry->mutable_value() = std::move(result);
    result = std::move(outer);
  }
  return result;
}

value round_trip(const value& x) {
  pb::Value msg;
  to_proto(x, &msg);
  // Through the wire format too, so nothing relies on in-memory state.
  pb::Value parsed;
  BOOST_REQUIRE(parsed.ParseFromString(msg.SerializeAsString()));
  value result;
  auto err = from_proto(parsed, result);
  BOOST_TEST(err.empty(), "from_proto failed: " << err);
  return result;
}

std::string canonical(const value& x) {
  std::string out;
  encode_canonical(x, out);
  return out;
}

/// Distinct values covering every kind; no two are equal.
std::vector<value> distinct_samples() {
  return {
    value{},
    value{false},
    value{true},
    value{0},
    value{-1},
    value{std::numeric_limits<int64_t>::min()},
    value{0u},
    value{std::numeric_limits<uint64_t>::max()},
    value{0.0},
    value{-0.0},
    value{1.5},
    value{nan_value},
    value{std::numeric_limits<double>::infinity()},
    value{""},
    value{"ab"},
    value::from_bytes(""),
    value::from_bytes("ab"),
    value::from_bytes(std::string("\0\xff", 2)),
    value{value_list{}},
    value{value_list{value{"ab"}}},
    value{value_list{value{"a"}, value{"b"}}},
    value{value_list{value{value_list{}}}},
    value::empty_map(),
    value{{"a", 1}, {"b", 2}},
    value{{"b", 2}, {"a", 1}},
    value{{map_key::from_bytes("a"), 1}, {"b", 2}},
    value{{"a", value{{"x", value_list{1, "y"}}}}},
    value{ext_value{1, "xy"}},
    value{ext_value{2, "xy"}},
    value{ext_value{-128, ""}},
  };
}

} // namespace

BOOST_AUTO_TEST_SUITE(value_model)

BOOST_AUTO_TEST_CASE(constructors_pick_the_documented_kind) {
  BOOST_TEST(value{}.is_nil());
  BOOST_TEST(value{nullptr}.is_nil());
  BOOST_TEST(value{true}.is_bool());
  BOOST_TEST(value{42}.is_int64());
  BOOST_TEST(value{int8_t{-1}}.is_int64());
  BOOST_TEST(value{42u}.is_uint64());
  BOOST_TEST(value{uint16_t{7}}.is_uint64());
  BOOST_TEST(value{1.5}.is_float64());
  BOOST_TEST(value{1.5f}.is_float64());
  BOOST_TEST(value{"text"}.is_text());
  BOOST_TEST(value{std::string{"text"}}.is_text());
  BOOST_TEST(value{std::string_view{"text"}}.is_text());
  BOOST_TEST(value{u8"text"}.is_text());
  BOOST_TEST(value::from_bytes("raw").is_bytes());
  BOOST_TEST(value(bytes_tag{}, "raw").is_bytes());
  BOOST_TEST((value{std::vector<uint8_t>{1, 2}}).is_bytes());
  BOOST_TEST((value{std::array<std::byte, 2>{}}).is_bytes());
  BOOST_TEST((value{value_list{1, 2}}).is_list());
  BOOST_TEST(value::empty_map().is_map());
  BOOST_TEST((value{{"a", 1}}).is_map());
  BOOST_TEST((value{ext_value{5, "x"}}).is_ext());
  BOOST_TEST(value{1.5}.type() == kind::float64);
  BOOST_TEST(std::string{to_string(kind::uint64)} == "uint64");
  BOOST_TEST(std::string{to_string(kind::map)} == "map");
}

BOOST_AUTO_TEST_CASE(byte_containers_keep_every_byte) {
  std::vector<uint8_t> raw{0x00, 0xff, 'a'};
  value x{raw};
  BOOST_TEST(x.as_bytes()
             == std::string("\0\xff"
                            "a",
                            3));
  std::array<std::byte, 2> arr{std::byte{0x10}, std::byte{0x00}};
  BOOST_TEST(value{arr}.as_bytes() == std::string("\x10\0", 2));
}

BOOST_AUTO_TEST_CASE(key_arg_gives_one_key_for_text_and_byte_forms) {
  const std::string expected = "k\xc3\xa9"; // "ké" in UTF-8
  BOOST_TEST(key_arg{"k\xc3\xa9"}.str() == expected);
  BOOST_TEST(key_arg{std::string{expected}}.str() == expected);
  BOOST_TEST(key_arg{std::string_view{expected}}.str() == expected);
  BOOST_TEST(key_arg{u8"k\u00e9"}.str() == expected);
  BOOST_TEST((key_arg{std::vector<uint8_t>{'k', 0xc3, 0xa9}}).str()
             == expected);
  BOOST_TEST((key_arg{std::vector<unsigned char>{'k', 0xc3, 0xa9}}).str()
             == expected);
  BOOST_TEST((key_arg{std::array<std::byte, 3>{std::byte{'k'}, std::byte{0xc3},
                                               std::byte{0xa9}}}
                .str()
              == expected));
  // Byte containers may hold zero bytes; text stops at none of them either.
  BOOST_TEST((key_arg{std::vector<uint8_t>{'a', 0, 'b'}}).str()
             == std::string("a\0b", 3));
  BOOST_TEST(key_arg{std::string("a\0b", 3)}.str().size() == 3u);
}

BOOST_AUTO_TEST_CASE(equality_between_values_is_strict) {
  BOOST_TEST(value{"abc"} == value{"abc"});
  BOOST_TEST(value{"abc"} != value::from_bytes("abc"));
  BOOST_TEST(value{1} != value{1u});
  BOOST_TEST(value{1} != value{1.0});
  BOOST_TEST(value{} != value{false});
  BOOST_TEST(value{nan_value} == value{nan_value});
  BOOST_TEST(value{0.0} != value{-0.0});
  BOOST_TEST((value{value_list{1, "a"}}) == (value{value_list{1, "a"}}));
  BOOST_TEST((value{value_list{1, "a"}}) != (value{value_list{1u, "a"}}));
  BOOST_TEST((value{{"k", 1}}) != (value{{map_key::from_bytes("k"), 1}}));
  BOOST_TEST((value{{"k", value_list{nan_value}}})
             == (value{{"k", value_list{nan_value}}}));
  BOOST_TEST((value{ext_value{1, "a"}}) == (value{ext_value{1, "a"}}));
  BOOST_TEST((value{ext_value{1, "a"}}) != (value{ext_value{2, "a"}}));
  // Every pair of distinct samples differs, every sample equals itself.
  auto xs = distinct_samples();
  for (size_t i = 0; i < xs.size(); ++i)
    for (size_t j = 0; j < xs.size(); ++j)
      BOOST_TEST((xs[i] == xs[j]) == (i == j), xs[i] << " vs " << xs[j]);
}

BOOST_AUTO_TEST_CASE(equality_with_a_string_compares_text_or_bytes_content) {
  BOOST_TEST(value{"abc"} == "abc");
  BOOST_TEST(value::from_bytes("abc") == "abc");
  BOOST_TEST(value::from_bytes("abc") == std::string_view{"abc"});
  BOOST_TEST(std::string_view{"abc"} == value{"abc"});
  BOOST_TEST(value{"abc"} != "abd");
  BOOST_TEST(value{"abc"} != std::string_view{"ab"});
  BOOST_TEST(value{1} != "1");
  BOOST_TEST(value{} != "");
  BOOST_TEST(value{value_list{"abc"}} != "abc");
  BOOST_TEST(value::from_bytes(std::string("a\0b", 3))
             == std::string_view("a\0b", 3));
}

BOOST_AUTO_TEST_CASE(accessors_return_content_or_throw_type_error) {
  BOOST_TEST(value{true}.as_bool());
  BOOST_TEST(value{-5}.as_int64() == -5);
  BOOST_TEST(value{5u}.as_int64() == 5);
  BOOST_TEST(value{5}.as_uint64() == 5u);
  BOOST_TEST(value{7}.as_float64() == 7.0);
  BOOST_TEST(value{7u}.as_float64() == 7.0);
  BOOST_TEST(value{"t"}.as_text() == "t");
  BOOST_TEST(value{"t"}.as_bytes() == "t");
  BOOST_TEST(value::from_bytes("b").as_bytes() == "b");
  BOOST_TEST(value{value_list{1}}.as_list().size() == 1u);
  BOOST_TEST((value{{"a", 1}}).as_map().size() == 1u);
  BOOST_TEST((value{ext_value{3, "x"}}).as_ext().type == 3);

  BOOST_CHECK_THROW(value{1}.as_bool(), type_error);
  BOOST_CHECK_THROW(value{"1"}.as_int64(), type_error);
  BOOST_CHECK_THROW(value{1.0}.as_int64(), type_error);
  BOOST_CHECK_THROW(value{std::numeric_limits<uint64_t>::max()}.as_int64(),
                    type_error);
  BOOST_CHECK_THROW(value{-1}.as_uint64(), type_error);
  BOOST_CHECK_THROW(value{"1"}.as_float64(), type_error);
  BOOST_CHECK_THROW(value::from_bytes("b").as_text(), type_error);
  BOOST_CHECK_THROW(value{1}.as_bytes(), type_error);
  BOOST_CHECK_THROW(value::empty_map().as_list(), type_error);
  BOOST_CHECK_THROW(value{value_list{}}.as_map(), type_error);
  BOOST_CHECK_THROW(value{}.as_ext(), type_error);
  value mutable_list{value_list{}};
  BOOST_CHECK_THROW(mutable_list.as_map(), type_error);
  value mutable_map = value::empty_map();
  BOOST_CHECK_THROW(mutable_map.as_list(), type_error);
  // type_error carries its code, and is a syncmesh::error.
  try {
    value{}.as_text();
    BOOST_FAIL("as_text on nil did not throw");
  } catch (const error& e) {
    BOOST_TEST(e.code() == errc::wrong_type);
  }
}

BOOST_AUTO_TEST_CASE(insert_or_assign_keeps_the_position_of_existing_keys) {
  value x{{"a", 1}, {"b", 2}, {"c", 3}};
  x.insert_or_assign("b", 20);
  BOOST_TEST(keys_of(x) == (std::vector<std::string>{"t:a", "t:b", "t:c"}),
             boost::test_tools::per_element());
  BOOST_TEST(*x.find("b") == value{20});
  x.insert_or_assign("d", 4);
  x.insert_or_assign(map_key::from_bytes("a"), 5); // a different key
  BOOST_TEST(keys_of(x)
               == (std::vector<std::string>{"t:a", "t:b", "t:c", "t:d", "b:a"}),
             boost::test_tools::per_element());
  BOOST_TEST(*x.find("a") == value{1});
  BOOST_TEST(*x.find(map_key::from_bytes("a")) == value{5});
  value not_a_map{value_list{}};
  BOOST_CHECK_THROW(not_a_map.insert_or_assign("a", 1), type_error);
}

BOOST_AUTO_TEST_CASE(map_constructors_let_later_duplicates_replace_in_place) {
  value from_items{value_map{{"a", 1}, {"b", 2}, {"a", 3}}};
  BOOST_TEST(keys_of(from_items) == (std::vector<std::string>{"t:a", "t:b"}),
             boost::test_tools::per_element());
  BOOST_TEST(*from_items.find("a") == value{3});
  value from_pairs{{"x", 1}, {"y", 2}, {"x", 3}};
  BOOST_TEST(keys_of(from_pairs) == (std::vector<std::string>{"t:x", "t:y"}),
             boost::test_tools::per_element());
  BOOST_TEST(*from_pairs.find("x") == value{3});
}

BOOST_AUTO_TEST_CASE(find_distinguishes_text_and_bytes_keys) {
  value x{{map_key::from_bytes("k"), 1}, {"j", 2}};
  BOOST_TEST(x.find("k") == nullptr);
  BOOST_TEST(x.find(map_key::from_bytes("k")) != nullptr);
  BOOST_TEST(x.find(map_key{"j"}) != nullptr);
  BOOST_TEST(x.find("missing") == nullptr);
  value not_a_map{1};
  BOOST_TEST(not_a_map.find("k") == nullptr);
  BOOST_TEST(not_a_map.find(map_key{"k"}) == nullptr);
}

BOOST_AUTO_TEST_CASE(to_string_renders_every_kind) {
  BOOST_TEST(to_string(value{}) == "nil");
  BOOST_TEST(to_string(value{true}) == "true");
  BOOST_TEST(to_string(value{-5}) == "-5");
  BOOST_TEST(to_string(value{5u}) == "5u");
  BOOST_TEST(to_string(value{1.5}) == "1.5");
  BOOST_TEST(to_string(value{"a\"b"}) == "\"a\\\"b\"");
  BOOST_TEST(to_string(value::from_bytes(std::string("\0a", 2)))
             == "b\"\\x00a\"");
  BOOST_TEST(to_string(value{value_list{1, "x"}}) == "[1, \"x\"]");
  BOOST_TEST(to_string(value{{"a", 1}, {map_key::from_bytes("b"), value{}}})
             == "{\"a\": 1, b\"b\": nil}");
  BOOST_TEST(to_string(value{ext_value{3, "x"}}) == "ext(3, b\"x\")");
  std::ostringstream out;
  out << value{value_list{}};
  BOOST_TEST(out.str() == "[]");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(value_proto)

// validate() checks without building a value; it must accept exactly what
// from_proto accepts.
BOOST_AUTO_TEST_CASE(validate_agrees_with_from_proto) {
  std::vector<pb::Value> cases;
  auto add = [&](const value& v) {
    pb::Value x;
    to_proto(v, &x);
    cases.push_back(x);
  };
  add(value{});
  add(value{"text"});
  add(value{value_list{1, value{{"k", 2}}}});
  add(value{ext_value{-128, "x"}});
  pb::Value unset;
  cases.push_back(unset);
  pb::Value bad_ext;
  bad_ext.mutable_ext()->set_type(300);
  cases.push_back(bad_ext);
  // Duplicate keys, in a small map and in a large one.
  for (int size : {3, 40}) {
    pb::Value dup;
    for (int i = 0; i < size; ++i) {
      auto* e = dup.mutable_map()->add_entries();
      e->mutable_key()->set_text("k" + std::to_string(i % (size - 1)));
      e->mutable_value()->set_int64(i);
    }
    cases.push_back(dup);
  }
  // The same text as a text key and a bytes key is not a duplicate.
  pb::Value mixed;
  auto* t = mixed.mutable_map()->add_entries();
  t->mutable_key()->set_text("k");
  t->mutable_value()->mutable_nil();
  auto* b = mixed.mutable_map()->add_entries();
  b->mutable_key()->set_bytes("k");
  b->mutable_value()->mutable_nil();
  cases.push_back(mixed);
  // A key without a kind, and a list holding a value without one.
  pb::Value keyless;
  keyless.mutable_map()->add_entries()->mutable_value()->mutable_nil();
  cases.push_back(keyless);
  pb::Value hole;
  hole.mutable_list()->add_items();
  cases.push_back(hole);
  // Nesting past the limit.
  pb::Value deep;
  auto* cur = &deep;
  for (int i = 0; i <= default_max_value_depth + 1; ++i)
    cur = cur->mutable_list()->add_items();
  cur->set_int64(1);
  cases.push_back(deep);
  size_t refused = 0;
  for (const auto& x : cases) {
    value out;
    auto expected = from_proto(x, out).empty();
    BOOST_CHECK_EQUAL(validate(x).empty(), expected);
    refused += expected ? 0 : 1;
  }
  BOOST_CHECK_EQUAL(refused, 7u);
}

BOOST_AUTO_TEST_CASE(every_kind_round_trips) {
  for (const auto& x : distinct_samples()) {
    auto y = round_trip(x);
    BOOST_TEST(y == x);
    BOOST_TEST(y.type() == x.type());
  }
}

BOOST_AUTO_TEST_CASE(edge_values_round_trip) {
  auto max_u = value{std::numeric_limits<uint64_t>::max()};
  BOOST_TEST(round_trip(max_u).as_uint64()
             == std::numeric_limits<uint64_t>::max());
  BOOST_TEST(round_trip(value{std::numeric_limits<int64_t>::min()}).as_int64()
             == std::numeric_limits<int64_t>::min());
  BOOST_TEST(std::isnan(round_trip(value{nan_value}).as_float64()));
  BOOST_TEST(std::signbit(round_trip(value{-0.0}).as_float64()));
  BOOST_TEST(round_trip(value{ext_value{127, "p"}}).as_ext().type == 127);
  BOOST_TEST(round_trip(value{ext_value{-128, "p"}}).as_ext().type == -128);
  auto bytes_keys
    = value{{map_key::from_bytes(std::string("\0\xff", 2)), 1}, {"text", 2}};
  auto back = round_trip(bytes_keys);
  BOOST_TEST(back == bytes_keys);
  BOOST_TEST(!back.as_map()[0].key.is_text);
  BOOST_TEST(back.as_map()[1].key.is_text);
  // Insertion order survives, not a sorted order.
  auto ordered = value{{"z", 1}, {"a", 2}, {"m", 3}};
  BOOST_TEST(keys_of(round_trip(ordered))
               == (std::vector<std::string>{"t:z", "t:a", "t:m"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(nesting_up_to_default_max_value_depth_is_accepted) {
  value out;
  BOOST_TEST(from_proto(nested_lists(default_max_value_depth), out).empty());
  BOOST_TEST(out.is_list());
  BOOST_TEST(from_proto(nested_maps(default_max_value_depth), out).empty());
  BOOST_TEST(out.is_map());
}

BOOST_AUTO_TEST_CASE(nesting_deeper_than_default_max_value_depth_is_rejected) {
  value out;
  BOOST_TEST(
    !from_proto(nested_lists(default_max_value_depth + 1), out).empty());
  BOOST_TEST(
    !from_proto(nested_maps(default_max_value_depth + 1), out).empty());
  // A map of lists counts every level as well.
  pb::Value mixed = nested_lists(default_max_value_depth);
  pb::Value top;
  auto* entry = top.mutable_map()->add_entries();
  entry->mutable_key()->set_text("k");
  *entry->mutable_value() = mixed;
  BOOST_TEST(!from_proto(top, out).empty());
}

BOOST_AUTO_TEST_CASE(the_configured_depth_is_the_limit) {
  value out;
  for (int depth : {1, 8, 100, max_value_depth_ceiling}) {
    BOOST_TEST_CONTEXT("depth " << depth) {
      BOOST_TEST(from_proto(nested_lists(depth), out, depth).empty());
      BOOST_TEST(validate(nested_maps(depth), depth).empty());
      auto err = validate(nested_lists(depth + 1), depth);
      BOOST_TEST(
        err == "value nests deeper than " + std::to_string(depth) + " levels");
      BOOST_TEST(!from_proto(nested_maps(depth + 1), out, depth).empty());
    }
  }
  // A map's entries sit one level below it.
  pb::MapValue fields;
  auto* entry = fields.add_entries();
  entry->mutable_key()->set_text("f");
  *entry->mutable_value() = nested_lists(7);
  BOOST_TEST(validate(fields, 8).empty());
  BOOST_TEST(!validate(fields, 7).empty());
  // Stored values of any allowed depth decode from canonical bytes.
  value deep;
  BOOST_REQUIRE(from_proto(nested_maps(max_value_depth_ceiling), deep,
                           max_value_depth_ceiling)
                  .empty());
  std::string bytes;
  encode_canonical(deep, bytes);
  std::string_view in{bytes};
  value back;
  BOOST_TEST(decode_canonical(in, back));
  BOOST_TEST(back == deep);
}

BOOST_AUTO_TEST_CASE(unset_kinds_are_rejected_at_any_depth) {
  value out;
  BOOST_TEST(!from_proto(pb::Value{}, out).empty());
  pb::Value list;
  list.mutable_list()->add_items()->set_int64(1);
  list.mutable_list()->add_items(); // no kind
  BOOST_TEST(!from_proto(list, out).empty());
  pb::Value map_without_value;
  map_without_value.mutable_map()->add_entries()->mutable_key()->set_text("k");
  BOOST_TEST(!from_proto(map_without_value, out).empty());
  pb::Value map_without_key;
  map_without_key.mutable_map()->add_entries()->mutable_value()->mutable_nil();
  BOOST_TEST(!from_proto(map_without_key, out).empty());
}

BOOST_AUTO_TEST_CASE(duplicate_map_keys_are_rejected) {
  value out;
  pb::Value text_twice;
  for (int i = 0; i < 2; ++i) {
    auto* entry = text_twice.mutable_map()->add_entries();
    entry->mutable_key()->set_text("k");
    entry->mutable_value()->set_int64(i);
  }
  BOOST_TEST(!from_proto(text_twice, out).empty());
  pb::Value bytes_twice;
  for (int i = 0; i < 2; ++i) {
    auto* entry = bytes_twice.mutable_map()->add_entries();
    entry->mutable_key()->set_bytes("k");
    entry->mutable_value()->set_int64(i);
  }
  BOOST_TEST(!from_proto(bytes_twice, out).empty());
  value_map fields;
  BOOST_TEST(!from_proto(bytes_twice.map(), fields).empty());
  // Text "k" and bytes "k" are different keys.
  pb::Value text_and_bytes;
  auto* first = text_and_bytes.mutable_map()->add_entries();
  first->mutable_key()->set_text("k");
  first->mutable_value()->set_int64(1);
  auto* second = text_and_bytes.mutable_map()->add_entries();
  second->mutable_key()->set_bytes("k");
  second->mutable_value()->set_int64(2);
  BOOST_TEST(from_proto(text_and_bytes, out).empty());
  BOOST_TEST(out.as_map().size() == 2u);
}

BOOST_AUTO_TEST_CASE(ext_type_codes_outside_int8_are_rejected) {
  value out;
  for (int code : {128, -129, 1000}) {
    pb::Value x;
    x.mutable_ext()->set_type(code);
    x.mutable_ext()->set_data("d");
    BOOST_TEST(!from_proto(x, out).empty(), "ext type " << code);
  }
}

BOOST_AUTO_TEST_CASE(canonical_encoding_is_equal_exactly_for_equal_values) {
  auto xs = distinct_samples();
  for (size_t i = 0; i < xs.size(); ++i)
    for (size_t j = 0; j < xs.size(); ++j)
      BOOST_TEST((canonical(xs[i]) == canonical(xs[j])) == (i == j),
                 xs[i] << " vs " << xs[j]);
  // Equal values built in different ways encode alike.
  value built{{"a", 1}};
  built.insert_or_assign("b", value_list{"x"});
  value literal{{"a", 1}, {"b", value_list{"x"}}};
  BOOST_TEST(canonical(built) == canonical(literal));
  BOOST_TEST(canonical(round_trip(literal)) == canonical(literal));
  BOOST_TEST(canonical(value{"ab"}) != canonical(value::from_bytes("ab")));
}

// Float equality is bitwise, like the canonical encoding: equal values
// always give equal bytes, and values with different bytes are unequal.
BOOST_AUTO_TEST_CASE(float_equality_agrees_with_the_canonical_encoding) {
  const value quiet{std::numeric_limits<double>::quiet_NaN()};
  const value negative{-std::numeric_limits<double>::quiet_NaN()};
  BOOST_TEST(quiet == value{std::numeric_limits<double>::quiet_NaN()});
  BOOST_TEST(quiet != negative);
  BOOST_TEST(to_hex(canonical(quiet)) != to_hex(canonical(negative)));
  BOOST_TEST(value{0.0} != value{-0.0});
  BOOST_TEST(to_hex(canonical(value{0.0})) != to_hex(canonical(value{-0.0})));
}

BOOST_AUTO_TEST_SUITE_END()
