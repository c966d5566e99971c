// Framing (messages/frame_codec.hpp) and the router's plain rules
// (actors/router_state.hpp): validation of remote batches and envelopes.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "actors/peer_link_state.hpp"
#include "actors/router_state.hpp"
#include "messages/frame_codec.hpp"
#include "syncmesh/pb/wire.pb.h"
#include "tests/unit/test_support.hpp"

using namespace syncmesh;
using namespace syncmesh::test;

namespace {

/// Three envelopes of different shapes, the last one empty.
std::vector<pb::Envelope> sample_envelopes() {
  std::vector<pb::Envelope> result(3);
  result[0].set_origin("node-a");
  result[0].mutable_ping()->set_nonce(7);
  result[1].set_message_id("m2");
  result[1].set_write(std::string(300, 'w')); // length needs two varint bytes
  return result;
}

/// Every payload `decoder.next` hands out until it stops returning ok.
std::vector<std::string> drain(frame_decoder& decoder) {
  std::vector<std::string> result;
  std::string payload;
  while (decoder.next(payload) == frame_status::ok)
    result.push_back(payload);
  return result;
}

std::string frame_header(uint32_t len) {
  std::string result;
  BOOST_REQUIRE(append_frame(result, std::string(len, 'x'), len));
  result.resize(frame_header_size);
  return result;
}

pb::WriteRecord good_set(const std::string& key) {
  return set_record(key, make_version(100, "n1"), value{"v"});
}

pb::WriteBatch batch_of(std::initializer_list<pb::WriteRecord> recs) {
  pb::WriteBatch result;
  for (const auto& rec : recs)
    *result.add_records() = rec;
  return result;
}

/// Decodes every frame into its envelope.
std::vector<pb::Envelope> envelopes_of(const std::vector<std::string>& frames,
                                       size_t max_frame_size) {
  std::vector<pb::Envelope> result;
  for (const auto& frame : frames) {
    frame_decoder decoder{max_frame_size};
    decoder.feed(frame);
    std::string payload;
    BOOST_REQUIRE(decoder.next(payload) == frame_status::ok);
    BOOST_TEST(decoder.buffered() == 0u, "one frame per string");
    pb::Envelope env;
    BOOST_REQUIRE(parse_envelope(payload, env).empty());
    result.push_back(std::move(env));
  }
  return result;
}

std::vector<std::string> keys_of(const pb::WriteBatch& batch) {
  std::vector<std::string> result;
  for (const auto& rec : batch.records())
    result.push_back(rec.key());
  return result;
}

} // namespace

BOOST_AUTO_TEST_SUITE(frame_codec)

BOOST_AUTO_TEST_CASE(frame_length_is_big_endian) {
  BOOST_TEST(read_frame_length("\x01\x02\x03\x04") == 0x01020304u);
  BOOST_TEST(read_frame_length("\xff\x00\x00\x01") == 0xff000001u);
  std::string out;
  BOOST_REQUIRE(append_frame(out, std::string(258, 'p')));
  BOOST_TEST(out.substr(0, 4) == std::string("\0\0\x01\x02", 4));
}

BOOST_AUTO_TEST_CASE(frames_fed_byte_by_byte_round_trip) {
  auto envs = sample_envelopes();
  std::string stream;
  for (const auto& env : envs)
    BOOST_REQUIRE(append_frame(stream, env));
  frame_decoder decoder;
  std::vector<std::string> payloads;
  for (char c : stream) {
    decoder.feed(std::string_view{&c, 1});
    for (auto& p : drain(decoder))
      payloads.push_back(std::move(p));
  }
  BOOST_REQUIRE(payloads.size() == envs.size());
  for (size_t i = 0; i < envs.size(); ++i) {
    BOOST_TEST(payloads[i] == envs[i].SerializeAsString());
    pb::Envelope back;
    BOOST_TEST(parse_envelope(payloads[i], back).empty());
    BOOST_TEST(back.SerializeAsString() == envs[i].SerializeAsString());
  }
  BOOST_TEST(decoder.buffered() == 0u);
}

BOOST_AUTO_TEST_CASE(frames_fed_in_random_chunks_round_trip) {
  std::mt19937 rng{12345};
  std::vector<std::string> sent;
  std::string stream;
  // Enough frames that the decoder compacts its buffer along the way.
  for (int i = 0; i < 200; ++i) {
    sent.push_back(std::string(static_cast<size_t>(rng() % 80), 'a' + i % 26));
    BOOST_REQUIRE(append_frame(stream, sent.back()));
  }
  frame_decoder decoder;
  std::vector<std::string> received;
  for (size_t pos = 0; pos < stream.size();) {
    auto chunk = std::min<size_t>(1 + rng() % 97, stream.size() - pos);
    decoder.feed(std::string_view{stream}.substr(pos, chunk));
    pos += chunk;
    for (auto& p : drain(decoder))
      received.push_back(std::move(p));
  }
  BOOST_TEST(received == sent, boost::test_tools::per_element());
  BOOST_TEST(decoder.buffered() == 0u);
}

BOOST_AUTO_TEST_CASE(truncated_input_needs_more_and_stays_buffered) {
  std::string frame;
  BOOST_REQUIRE(append_frame(frame, "payload"));
  frame_decoder decoder;
  std::string payload;
  decoder.feed(std::string_view{frame}.substr(0, 3)); // part of the header
  BOOST_TEST(decoder.next(payload) == frame_status::need_more);
  BOOST_TEST(decoder.buffered() == 3u);
  decoder.feed(std::string_view{frame}.substr(3, 5)); // header + 4 bytes
  BOOST_TEST(decoder.next(payload) == frame_status::need_more);
  BOOST_TEST(decoder.buffered() == 8u);
  decoder.feed(std::string_view{frame}.substr(8));
  BOOST_TEST(decoder.next(payload) == frame_status::ok);
  BOOST_TEST(payload == "payload");
  BOOST_TEST(decoder.buffered() == 0u);
  BOOST_TEST(decoder.next(payload) == frame_status::need_more);
}

BOOST_AUTO_TEST_CASE(oversize_header_is_refused_before_its_payload) {
  frame_decoder decoder{100};
  BOOST_TEST(decoder.max_frame_size() == 100u);
  decoder.feed(frame_header(101));
  std::string payload;
  BOOST_TEST(decoder.next(payload) == frame_status::too_large);
  frame_decoder huge;
  huge.feed("\xff\xff\xff\xff");
  BOOST_TEST(huge.next(payload) == frame_status::too_large);
}

BOOST_AUTO_TEST_CASE(payload_of_exactly_the_maximum_is_accepted) {
  std::string frame;
  BOOST_REQUIRE(append_frame(frame, std::string(100, 'm'), 100));
  BOOST_TEST(frame.size() == frame_header_size + 100);
  frame_decoder decoder{100};
  decoder.feed(frame);
  std::string payload;
  BOOST_TEST(decoder.next(payload) == frame_status::ok);
  BOOST_TEST(payload == std::string(100, 'm'));
}

BOOST_AUTO_TEST_CASE(append_frame_refuses_oversize_and_leaves_output_alone) {
  std::string out = "prefix";
  BOOST_TEST(!append_frame(out, std::string(101, 'x'), 100));
  BOOST_TEST(out == "prefix");
  pb::Envelope env;
  env.set_write(std::string(200, 'w'));
  BOOST_TEST(!append_frame(out, env, 100));
  BOOST_TEST(out == "prefix");
  BOOST_TEST(append_frame(out, env, env.ByteSizeLong()));
  BOOST_TEST(out.size() == 6 + frame_header_size + env.ByteSizeLong());
}

BOOST_AUTO_TEST_CASE(zero_length_frame_is_an_empty_envelope) {
  std::string out;
  BOOST_REQUIRE(append_frame(out, pb::Envelope{}));
  BOOST_TEST(out == std::string(4, '\0'));
  frame_decoder decoder;
  decoder.feed(out);
  std::string payload = "stale";
  BOOST_TEST(decoder.next(payload) == frame_status::ok);
  BOOST_TEST(payload.empty());
  pb::Envelope env;
  BOOST_TEST(parse_envelope(payload, env).empty());
  BOOST_TEST(env.body_case() == pb::Envelope::BODY_NOT_SET);
}

BOOST_AUTO_TEST_CASE(garbage_payload_is_reported) {
  pb::Envelope env;
  // Field 1, length 5, but only two bytes follow.
  BOOST_TEST(!parse_envelope("\x0a\x05"
                             "ab",
                             env)
                .empty());
  // A varint that never ends.
  BOOST_TEST(!parse_envelope("\x20\xff\xff\xff", env).empty());
  // Wire type 7 does not exist.
  BOOST_TEST(!parse_envelope("\x0f", env).empty());
}

BOOST_AUTO_TEST_CASE(frames_hold_values_nested_to_the_depth_ceiling) {
  // A map nested as deep as any node may allow, in the deepest wrapper
  // (anti-entropy entries).
  auto deep_entries = [](int depth) {
    pb::Envelope env;
    auto* rec = env.mutable_entries()->add_records();
    rec->set_key("k");
    auto* cur = rec->mutable_value();
    for (int i = 0; i < depth; ++i) {
      auto* entry = cur->mutable_map()->add_entries();
      entry->mutable_key()->set_text("k");
      cur = entry->mutable_value();
    }
    cur->mutable_nil();
    std::string bytes;
    env.SerializeToString(&bytes);
    return bytes;
  };
  pb::Envelope env;
  auto at_ceiling = deep_entries(max_value_depth_ceiling);
  BOOST_TEST(parse_envelope(at_ceiling, env) == "");
  // What protobuf's default limit (100) makes of the default depth, 64:
  // the peer's link was dropped as malformed for every such write.
  auto at_default = deep_entries(default_max_value_depth);
  BOOST_TEST(!pb::Envelope{}.ParseFromString(at_default));
  BOOST_TEST(parse_envelope(at_default, env) == "");
  // The limit is tight: the bound holds the ceiling with its spare levels
  // and no more, so hostile nesting is still cut off.
  BOOST_TEST(wire_recursion_limit()
             == proto_recursion_limit(max_value_depth_ceiling));
  BOOST_TEST(parse_envelope(deep_entries(max_value_depth_ceiling + 2), env)
             != "");
  // Opaque write bodies parse with the same limit.
  BOOST_REQUIRE(parse_envelope(at_default, env) == "");
  pb::WriteBatch body;
  *body.add_records() = env.entries().records(0);
  auto bytes = body.SerializeAsString();
  pb::WriteBatch batch;
  BOOST_TEST(!batch.ParseFromString(bytes));
  BOOST_TEST(parse_untrusted(bytes, batch));
  BOOST_TEST(batch.records_size() == 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(router_rules)

BOOST_AUTO_TEST_CASE(validate_accepts_well_formed_batches) {
  write_limits limits;
  auto batch = batch_of(
    {good_set("a"), delete_record("b", make_version(101, "n1")),
     fields_record("c", make_version(102, "n1"), fields_of({{"f", 1}})),
     good_set(std::string(limits.max_key_size, 'k'))});
  BOOST_TEST(validate_remote_batch(batch, limits) == "");
  BOOST_TEST(validate_remote_batch(pb::WriteBatch{}, limits) == "");
}

BOOST_AUTO_TEST_CASE(validate_rejects_every_malformed_record) {
  write_limits limits;
  limits.max_key_size = 8;
  limits.max_value_size = 64;
  auto v = make_version(100, "n1");

  auto no_stamp = good_set("k");
  no_stamp.mutable_version()->clear_stamp();
  auto no_op = good_set("k");
  no_op.clear_value();
  auto kindless = good_set("k");
  kindless.mutable_value()->Clear();
  pb::WriteRecord duplicate_fields = fields_record("k", v, {});
  for (int i = 0; i < 2; ++i) {
    auto* entry = duplicate_fields.mutable_fields()->add_entries();
    entry->mutable_key()->set_text("f");
    entry->mutable_value()->set_int64(i);
  }

  const std::vector<std::pair<std::string, pb::WriteRecord>> cases{
    {"empty key", good_set("")},
    {"oversize key", good_set("123456789")},
    {"missing stamp", no_stamp},
    {"stamp without node", set_record("k", make_version(100, ""), 1)},
    {"stamp without time", set_record("k", make_version(0, "n1"), 1)},
    {"oversize node id",
     set_record("k", make_version(100, std::string(max_node_id_size + 1, 'n')),
                1)},
    {"no operation", no_op},
    {"value without kind", kindless},
    {"oversize value", set_record("k", v, value{std::string(100, 'x')})},
    {"oversize fields",
     fields_record("k", v, fields_of({{"f", std::string(100, 'x')}}))},
    {"duplicate field keys", duplicate_fields},
  };
  for (const auto& [what, bad] : cases) {
    BOOST_TEST_CONTEXT(what) {
      auto alone = batch_of({bad});
      BOOST_TEST(validate_remote_batch(alone, limits) != "");
      // One bad record refuses the whole batch and is named by its index.
      auto mixed = batch_of({good_set("ok"), bad});
      auto err = validate_remote_batch(mixed, limits);
      BOOST_TEST(err.rfind("record 1: ", 0) == 0u, err);
    }
  }
}

BOOST_AUTO_TEST_CASE(remove_invalid_records_keeps_the_good_ones_in_order) {
  write_limits limits;
  limits.max_value_size = 64;
  auto v = make_version(100, "n1");
  auto batch = batch_of({good_set("a"),
                         set_record("big", v, value{std::string(100, 'x')}),
                         good_set("c"), good_set(""), good_set("e")});
  auto skipped = remove_invalid_records(batch, limits);
  BOOST_TEST(skipped.count == 2u);
  BOOST_TEST(skipped.first_error.rfind("record 1: ", 0) == 0u,
             skipped.first_error);
  BOOST_TEST((keys_of(batch) == std::vector<std::string>{"a", "c", "e"}));
  // A clean batch is left alone.
  auto clean = batch_of({good_set("x"), good_set("y")});
  BOOST_TEST(remove_invalid_records(clean, limits).count == 0u);
  BOOST_TEST(clean.records_size() == 2);
}

BOOST_AUTO_TEST_CASE(records_deeper_than_the_configured_depth_are_invalid) {
  auto nested = [](int depth) {
    value x{int64_t{1}};
    for (int i = 0; i < depth; ++i) {
      value m = value::empty_map();
      m.as_map().push_back(map_item{map_key{"k"}, std::move(x)});
      x = std::move(m);
    }
    return x;
  };
  write_limits limits;
  limits.max_value_depth = 8;
  auto v = make_version(100, "n1");
  BOOST_TEST(validate_remote_record(set_record("k", v, nested(8)), limits)
             == "");
  auto err = validate_remote_record(set_record("k", v, nested(9)), limits);
  BOOST_TEST(err.find("deeper than 8") != std::string::npos, err);
  // Fields are merged into a map: their values sit one level down.
  auto fields = fields_record("k", v, fields_of({{"f", nested(7)}}));
  BOOST_TEST(validate_remote_record(fields, limits) == "");
  fields = fields_record("k", v, fields_of({{"f", nested(8)}}));
  BOOST_TEST(validate_remote_record(fields, limits) != "");
}

BOOST_AUTO_TEST_CASE(log_lines_about_skipped_records_are_rate_limited) {
  int lines = 0;
  uint64_t total = 0;
  for (int i = 0; i < 5000; ++i)
    lines += worth_logging(++total, 1) ? 1 : 0;
  BOOST_TEST(lines == 10 + 5);
  // A burst crossing a thousand logs once.
  BOOST_TEST(worth_logging(2500, 600));
  BOOST_TEST(!worth_logging(2500, 100));
}

BOOST_AUTO_TEST_CASE(builder_puts_whole_values_in_write_and_fields_in_delta) {
  auto batch = batch_of(
    {good_set("a"),
     fields_record("c", make_version(102, "n1"), fields_of({{"f", 1}})),
     delete_record("b", make_version(101, "n1"))});
  envelope_builder builder{"self", 9, default_max_frame_size};
  std::vector<std::string> frames;
  builder.build(batch, 5555, frames);
  auto envs = envelopes_of(frames, default_max_frame_size);
  BOOST_REQUIRE(envs.size() == 2u);
  BOOST_TEST(envs[0].body_case() == pb::Envelope::kWrite);
  BOOST_TEST(envs[1].body_case() == pb::Envelope::kDelta);
  for (const auto& env : envs) {
    BOOST_TEST(env.origin() == "self");
    BOOST_TEST(env.origin_time_us() == 5555u);
    BOOST_TEST(env.hops_left() == 9u);
    BOOST_TEST(env.message_id().rfind("self", 0) == 0u);
  }
  BOOST_TEST(envs[0].message_id() != envs[1].message_id());
  pb::WriteBatch writes;
  BOOST_TEST(envelope_builder::decode_writes(envs[0], writes) == "");
  BOOST_TEST(keys_of(writes) == (std::vector<std::string>{"a", "b"}),
             boost::test_tools::per_element());
  BOOST_TEST(writes.records(0).SerializeAsString()
             == batch.records(0).SerializeAsString());
  BOOST_TEST(writes.records(1).SerializeAsString()
             == batch.records(2).SerializeAsString());
  pb::WriteBatch deltas;
  BOOST_TEST(envelope_builder::decode_writes(envs[1], deltas) == "");
  BOOST_REQUIRE(deltas.records_size() == 1);
  BOOST_TEST(deltas.records(0).SerializeAsString()
             == batch.records(1).SerializeAsString());
}

BOOST_AUTO_TEST_CASE(builder_emits_no_empty_envelopes) {
  envelope_builder builder{"self", 9, default_max_frame_size};
  std::vector<std::string> frames;
  builder.build(pb::WriteBatch{}, 1, frames);
  BOOST_TEST(frames.empty());
  builder.build(batch_of({good_set("a")}), 1, frames);
  BOOST_REQUIRE(frames.size() == 1u);
  BOOST_TEST(envelopes_of(frames, default_max_frame_size)[0].body_case()
             == pb::Envelope::kWrite);
}

BOOST_AUTO_TEST_CASE(builder_splits_batches_over_the_frame_budget) {
  const size_t max_frame = 2048;
  pb::WriteBatch batch;
  for (int i = 0; i < 12; ++i) {
    auto key = "key" + std::to_string(i);
    auto v = make_version(100 + i, "n1");
    if (i % 3 == 2)
      *batch.add_records()
        = fields_record(key, v, fields_of({{"f", std::string(300, 'f')}}));
    else
      *batch.add_records() = set_record(key, v, std::string(300, 'v'));
  }
  envelope_builder builder{"self", 4, max_frame};
  std::vector<std::string> frames;
  builder.build(batch, 1, frames);
  BOOST_TEST(frames.size() > 2u);
  std::vector<std::string> write_keys;
  std::vector<std::string> delta_keys;
  for (const auto& frame : frames)
    BOOST_TEST(frame.size() <= frame_header_size + max_frame);
  for (const auto& env : envelopes_of(frames, max_frame)) {
    pb::WriteBatch part;
    BOOST_REQUIRE(envelope_builder::decode_writes(env, part) == "");
    BOOST_TEST(part.records_size() > 0);
    auto& keys
      = env.body_case() == pb::Envelope::kDelta ? delta_keys : write_keys;
    for (const auto& key : keys_of(part))
      keys.push_back(key);
  }
  // Nothing lost, nothing duplicated, order kept within each kind.
  std::vector<std::string> want_writes;
  std::vector<std::string> want_deltas;
  for (const auto& rec : batch.records())
    (rec.has_fields() ? want_deltas : want_writes).push_back(rec.key());
  BOOST_TEST(write_keys == want_writes, boost::test_tools::per_element());
  BOOST_TEST(delta_keys == want_deltas, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(decode_writes_refuses_bodies_of_the_wrong_kind) {
  pb::WriteBatch out;
  pb::Envelope delta_with_value;
  delta_with_value.set_delta(batch_of({good_set("a")}).SerializeAsString());
  BOOST_TEST(envelope_builder::decode_writes(delta_with_value, out) != "");
  pb::Envelope write_with_fields;
  write_with_fields.set_write(
    batch_of({fields_record("a", make_version(1, "n"), fields_of({{"f", 1}}))})
      .SerializeAsString());
  BOOST_TEST(envelope_builder::decode_writes(write_with_fields, out) != "");
  pb::Envelope ping;
  ping.mutable_ping()->set_nonce(1);
  BOOST_TEST(envelope_builder::decode_writes(ping, out) != "");
  pb::Envelope garbage;
  garbage.set_write("\x0a\x05"
                    "ab");
  BOOST_TEST(envelope_builder::decode_writes(garbage, out) != "");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(link_rules)

BOOST_AUTO_TEST_CASE(versions_negotiate_to_the_highest_common_one) {
  // Overlapping.
  BOOST_TEST(negotiate_version(3, 5, 4, 9) == 5u);
  BOOST_TEST(negotiate_version(4, 9, 3, 5) == 5u);
  BOOST_TEST(negotiate_version(1, 3, 3, 7) == 3u);
  // One inside the other.
  BOOST_TEST(negotiate_version(1, 9, 4, 6) == 6u);
  // Equal.
  BOOST_TEST(negotiate_version(3, 3, 3, 3) == 3u);
  BOOST_TEST(negotiate_version(2, 4, 2, 4) == 4u);
  // Disjoint, either way round.
  BOOST_TEST(negotiate_version(1, 2, 3, 4) == 0u);
  BOOST_TEST(negotiate_version(3, 4, 1, 2) == 0u);
  // An empty range shares nothing.
  BOOST_TEST(negotiate_version(5, 4, 1, 9) == 0u);
}

BOOST_AUTO_TEST_CASE(check_hello_negotiates_and_names_what_differs) {
  const std::string id = "syncmesh subnet= leasing=1";
  hello_terms ours;
  auto hello_with = [&](hello_terms terms) {
    return make_hello("peer", id, "h", 1, terms).hello();
  };
  auto ok = check_hello(hello_with(ours), id, "self", ours);
  BOOST_TEST(ok.ok());
  BOOST_TEST(ok.version == max_protocol_version);
  // A syncmesh/2 hello: no range; told to upgrade, in a reason it knows.
  pb::Hello old;
  old.set_protocol_id("syncmesh/2 subnet= leasing=1");
  old.set_node_id("peer");
  auto verdict = check_hello(old, id, "self", ours);
  BOOST_TEST(verdict.reason == pb::Goodbye::PROTOCOL_MISMATCH);
  BOOST_TEST(verdict.detail.find("syncmesh/2") != std::string::npos);
  // Another subnet.
  verdict = check_hello(hello_with(ours), "syncmesh subnet=x leasing=1", "self",
                        ours);
  BOOST_TEST(verdict.reason == pb::Goodbye::PROTOCOL_MISMATCH);
  // Disjoint versions.
  auto later = ours;
  later.min_version = later.max_version = ours.max_version + 1;
  verdict = check_hello(hello_with(later), id, "self", ours);
  BOOST_TEST(verdict.reason == pb::Goodbye::VERSION_MISMATCH);
  // An inverted range is malformed.
  auto inverted = ours;
  inverted.min_version = ours.max_version + 1;
  verdict = check_hello(hello_with(inverted), id, "self", ours);
  BOOST_TEST(verdict.reason == pb::Goodbye::MALFORMED);
  // Other limits: both values named.
  auto smaller = ours;
  smaller.max_value_size = 65536;
  verdict = check_hello(hello_with(smaller), id, "self", ours);
  BOOST_TEST(verdict.reason == pb::Goodbye::LIMITS_MISMATCH);
  BOOST_TEST(verdict.detail == "max_value_size 1048576 here, 65536 there");
  BOOST_TEST(std::string{to_string(pb::Goodbye::LIMITS_MISMATCH)}
             == "limits mismatch");
}

BOOST_AUTO_TEST_CASE(default_hello_terms_match_a_default_config) {
  auto a = hello_terms{};
  auto b = hello_terms_of(config{});
  BOOST_TEST(a.min_version == b.min_version);
  BOOST_TEST(a.max_version == b.max_version);
  BOOST_TEST(a.max_key_size == b.max_key_size);
  BOOST_TEST(a.max_value_size == b.max_value_size);
  BOOST_TEST(a.max_value_depth == b.max_value_depth);
  BOOST_TEST(a.max_lease_duration_us == b.max_lease_duration_us);
}

BOOST_AUTO_TEST_CASE(early_frames_replay_in_order_within_their_bound) {
  early_frames<std::string> early;
  BOOST_TEST(early.keep("first", 5, 12));
  BOOST_TEST(early.keep("second", 6, 12));
  // A frame that would pass the bound is refused and nothing changes.
  BOOST_TEST(!early.keep("third", 5, 12));
  BOOST_TEST(early.size() == 2u);
  std::vector<std::string> seen;
  early.replay([&](std::string& f) { seen.push_back(f); },
               [] { return false; });
  BOOST_TEST((seen == std::vector<std::string>{"first", "second"}));
  BOOST_TEST(early.size() == 0u);
  // The bound counts from zero again after a replay.
  BOOST_TEST(early.keep("again", 12, 12));
}

BOOST_AUTO_TEST_CASE(a_replay_stops_once_the_link_closed) {
  early_frames<int> early;
  for (int i = 0; i < 5; ++i)
    BOOST_TEST(early.keep(int{i}, 1, 100));
  std::vector<int> seen;
  bool closed = false;
  early.replay(
    [&](int& f) {
      seen.push_back(f);
      closed = f == 1;
    },
    [&] { return closed; });
  BOOST_TEST((seen == std::vector<int>{0, 1}));
}

BOOST_AUTO_TEST_SUITE_END()
