// The mesh_socket half of py2p mode (actors/py2p_mesh_messages.hpp and the
// message builders of messages/py2p_codec.hpp): how py2p/js2p user
// messages, id lookups and their answers translate to syncmesh and back,
// with hostile input.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "actors/py2p_link_state.hpp"
#include "actors/py2p_mesh_messages.hpp"
#include "messages/py2p_codec.hpp"
#include "messages/value_proto.hpp"

using namespace syncmesh;

namespace {

const std::string self_id = "SeLfNoDe";
const std::string py2p_id = "4yYEMqdXJ7SJ5dvkYi9J";
constexpr uint64_t t0 = 1795679115;

/// The msgpack py2p 0.7.870 sends for `sock.send('hello', 5)`: its id as
/// bin, time uint32, sub-flag broadcast, then the user packets.
std::string py2p_send_hello() {
  std::string m;
  m += '\x96'; // fixarray, 6 elements
  m += '\x00'; // main flag broadcast
  m += '\xc4';
  m += static_cast<char>(py2p_id.size());
  m += py2p_id; // bin8 sender
  m += '\xce';
  for (int shift = 24; shift >= 0; shift -= 8)
    m += static_cast<char>((t0 >> shift) & 0xff);
  m += '\x00';      // sub-flag broadcast
  m += "\xa5hello"; // fixstr
  m += '\x05';      // fixint
  return m;
}

py2p::message parsed(const std::string& msgpack) {
  py2p::message msg;
  auto err = py2p::parse(msgpack, msg);
  BOOST_REQUIRE_MESSAGE(err.empty(), err);
  return msg;
}

py2p_mesh_inbound read(const std::string& msgpack,
                       const py2p_message_limits& limits = {}) {
  auto raw = py2p::make_raw(msgpack);
  return read_mesh_message(parsed(raw.msgpack), raw.id, self_id, limits);
}

pb::Value nested(int depth) {
  auto v = py2p::text("leaf");
  for (int i = 0; i < depth; ++i) {
    pb::Value outer;
    *outer.mutable_list()->add_items() = v;
    v = outer;
  }
  return v;
}

} // namespace

BOOST_AUTO_TEST_SUITE(py2p_user_messages)

BOOST_AUTO_TEST_CASE(a_py2p_broadcast_shows_its_packets_without_the_sub_flag) {
  auto in = read(py2p_send_hello());
  BOOST_REQUIRE(in.what == py2p_mesh_inbound::kind::user_message);
  const auto& m = in.message;
  BOOST_TEST(m.sender() == py2p_id);
  BOOST_TEST(m.time_us() == t0 * 1'000'000);
  BOOST_TEST(m.message_id() == py2p::sha256(py2p_send_hello()));
  BOOST_REQUIRE(m.packets_size() == 2);
  BOOST_TEST(m.packets(0).text() == "hello");
  BOOST_TEST(m.packets(1).int64() == 5);
  BOOST_TEST(!m.whisper());
  BOOST_TEST(m.to().empty()); // for everyone
}

BOOST_AUTO_TEST_CASE(a_reply_is_a_whisper_addressed_to_this_node) {
  // py2p's Message.reply('pong'): [0x02, id, now, 0x02, 'pong'].
  std::vector<pb::Value> packets{py2p::text("pong")};
  auto in = read(py2p::build(py2p::flag::whisper, py2p_id, t0,
                             py2p::user_payload(py2p::flag::whisper, packets)));
  BOOST_REQUIRE(in.what == py2p_mesh_inbound::kind::user_message);
  BOOST_TEST(in.message.whisper());
  BOOST_TEST(in.message.to() == self_id);
  BOOST_REQUIRE(in.message.packets_size() == 1);
  BOOST_TEST(in.message.packets(0).text() == "pong");
}

BOOST_AUTO_TEST_CASE(an_empty_message_has_no_packets) {
  auto in = read(py2p::build(py2p::flag::broadcast, py2p_id, t0,
                             py2p::user_payload(py2p::flag::broadcast, {})));
  BOOST_REQUIRE(in.what == py2p_mesh_inbound::kind::user_message);
  BOOST_TEST(in.message.packets_size() == 0);
}

BOOST_AUTO_TEST_CASE(what_syncmesh_sends_is_what_py2p_send_builds) {
  std::vector<pb::Value> packets{py2p::text("hello"), py2p::uint(5)};
  // py2p sends its id as bin, syncmesh as str: the rest is byte-identical.
  auto ours = py2p::build(py2p::flag::broadcast, py2p_id, t0,
                          py2p::user_payload(py2p::flag::broadcast, packets));
  auto theirs = py2p_send_hello();
  // The 20-byte id: fixstr (0xb4) from us, bin8 (0xc4 0x14) from py2p.
  BOOST_TEST(ours[2] == '\xb4');
  BOOST_TEST(theirs.substr(2, 2) == std::string("\xc4\x14"));
  BOOST_TEST(ours.substr(3) == theirs.substr(4));
}

BOOST_AUTO_TEST_CASE(others_are_not_user_messages) {
  // Our own message echoed back.
  auto own = read(
    py2p::build(py2p::flag::broadcast, self_id, t0,
                py2p::user_payload(py2p::flag::broadcast, {py2p::text("x")})));
  BOOST_TEST((own.what == py2p_mesh_inbound::kind::none));
  // A store, a peers request, an unknown sub-flag, a renegotiation.
  for (const auto& payload : std::vector<std::vector<pb::Value>>{
         py2p::store_payload("k", py2p::text("v")),
         {py2p::uint(py2p::flag::request), py2p::bin("*")},
         {py2p::uint(0x20), py2p::text("x")},
         {py2p::uint(py2p::flag::broadcast)}}) {
    auto type
      = payload.size() == 1 ? py2p::flag::renegotiate : py2p::flag::broadcast;
    auto in = read(py2p::build(type, py2p_id, t0, payload));
    BOOST_TEST((in.what == py2p_mesh_inbound::kind::none));
  }
}

BOOST_AUTO_TEST_CASE(packet_count_and_depth_are_bounded) {
  py2p_message_limits limits;
  limits.max_packets = 3;
  limits.max_value_depth = 8;
  std::vector<pb::Value> four(4, py2p::uint(1));
  auto many = read(py2p::build(py2p::flag::broadcast, py2p_id, t0,
                               py2p::user_payload(0, four)),
                   limits);
  BOOST_TEST((many.what == py2p_mesh_inbound::kind::dropped));
  BOOST_TEST(many.drop_reason == "too_many_packets");
  std::vector<pb::Value> three(3, py2p::uint(1));
  BOOST_TEST((read(py2p::build(py2p::flag::broadcast, py2p_id, t0,
                               py2p::user_payload(0, three)),
                   limits)
                .what
              == py2p_mesh_inbound::kind::user_message));
  auto deep = read(py2p::build(py2p::flag::broadcast, py2p_id, t0,
                               py2p::user_payload(0, {nested(9)})),
                   limits);
  BOOST_TEST((deep.what == py2p_mesh_inbound::kind::dropped));
  BOOST_TEST(deep.drop_reason == "invalid_packet");
  BOOST_TEST((read(py2p::build(py2p::flag::broadcast, py2p_id, t0,
                               py2p::user_payload(0, {nested(8)})),
                   limits)
                .what
              == py2p_mesh_inbound::kind::user_message));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(py2p_lookups)

BOOST_AUTO_TEST_CASE(a_lookup_keeps_the_types_it_came_in) {
  // py2p's reply() fallback: [0x00, id, now, 0x08, request_id, target].
  std::vector<pb::Value> payload{py2p::uint(py2p::flag::request),
                                 py2p::text("req1"), py2p::bin("TaRgEt")};
  auto in = read(py2p::build(py2p::flag::broadcast, py2p_id, t0, payload));
  BOOST_REQUIRE(in.what == py2p_mesh_inbound::kind::lookup);
  BOOST_TEST(in.target_id == "TaRgEt");
  BOOST_TEST((in.target.kind_case() == pb::Value::kBytes));
  BOOST_TEST((in.request_id.kind_case() == pb::Value::kText));
  // The answer echoes both as received.
  auto answer
    = py2p::lookup_answer_payload(in.request_id, "127.0.0.1", 4444, in.target);
  std::string expected;
  py2p::encode(answer[2], expected);
  BOOST_TEST((answer[0].int64() == py2p::flag::response));
  BOOST_TEST(answer[1].text() == "req1");
  BOOST_TEST(answer[2].list().items(1).bytes() == "TaRgEt");
}

BOOST_AUTO_TEST_CASE(a_lookup_answer_reads_back) {
  auto payload = py2p::lookup_answer_payload(py2p::text("req1"), "10.0.0.7",
                                             4567, py2p::text("TaRgEt"));
  auto in = read(py2p::build(py2p::flag::broadcast, py2p_id, t0, payload));
  BOOST_REQUIRE(in.what == py2p_mesh_inbound::kind::lookup_answer);
  BOOST_TEST(in.answer.request_id == "req1");
  BOOST_TEST(in.answer.peer.host == "10.0.0.7");
  BOOST_TEST(in.answer.peer.port == 4567);
  BOOST_TEST(in.answer.peer.id == "TaRgEt");
}

BOOST_AUTO_TEST_CASE(malformed_lookups_and_answers_are_dropped) {
  std::vector<std::vector<pb::Value>> bad{
    {py2p::uint(py2p::flag::request), py2p::uint(1), py2p::text("t")},
    {py2p::uint(py2p::flag::request), py2p::text("r"), py2p::text("")},
    {py2p::uint(py2p::flag::response), py2p::text("r")},
    {py2p::uint(py2p::flag::response), py2p::text("r"), py2p::text("x")},
    py2p::lookup_answer_payload(py2p::text("r"), "h", 0, py2p::text("t")),
  };
  for (const auto& payload : bad) {
    auto in = read(py2p::build(py2p::flag::broadcast, py2p_id, t0, payload));
    BOOST_TEST((in.what == py2p_mesh_inbound::kind::dropped));
    BOOST_TEST(!in.drop_detail.empty());
  }
}

BOOST_AUTO_TEST_CASE(a_lookup_payload_names_the_target_as_asked) {
  auto as_bin = py2p::lookup_payload("r", "T", true);
  auto as_str = py2p::lookup_payload("r", "T", false);
  BOOST_TEST((as_bin[2].kind_case() == pb::Value::kBytes));
  BOOST_TEST((as_str[2].kind_case() == pb::Value::kText));
  BOOST_TEST((as_bin[1].kind_case() == pb::Value::kText));
}

BOOST_AUTO_TEST_CASE(request_ids_are_base58_and_unique) {
  auto a = py2p_request_id("T", "1/100");
  auto b = py2p_request_id("T", "2/100");
  BOOST_TEST(py2p::is_base58_id(a));
  BOOST_TEST(a != b);
  BOOST_TEST(a == py2p_request_id("T", "1/100"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(py2p_reply_state)

BOOST_AUTO_TEST_CASE(deferred_replies_wait_for_one_answer_then_the_peer) {
  py2p_deferred_replies replies;
  BOOST_TEST(replies.add("r1", "T", {py2p::text("a")}, 100));
  BOOST_TEST(replies.add("r2", "T", {py2p::text("b")}, 101));
  BOOST_TEST(replies.add("r3", "U", {py2p::text("c")}, 101));
  BOOST_TEST(!replies.answered("unknown", 102));
  BOOST_TEST((replies.answered("r1", 102) == std::optional<std::string>{"T"}));
  BOOST_TEST(!replies.answered("r1", 102)); // a second answer: nothing
  auto sent = replies.take("T");
  BOOST_REQUIRE(sent.size() == 2u);
  BOOST_TEST(sent[0][0].text() == "a");
  BOOST_TEST(sent[1][0].text() == "b");
  BOOST_TEST(replies.size() == 1u);
  BOOST_TEST(replies.take("T").empty());
}

BOOST_AUTO_TEST_CASE(deferred_replies_are_bounded_and_expire) {
  py2p_deferred_replies replies(2, 1000, 60);
  BOOST_TEST(replies.add("r1", "T", {py2p::text("a")}, 100));
  BOOST_TEST(replies.add("r2", "T", {py2p::text("b")}, 110));
  BOOST_TEST(!replies.add("r3", "T", {py2p::text("c")}, 120)); // entries
  BOOST_TEST(replies.expire(159) == 0u);
  BOOST_TEST(replies.expire(160) == 1u);
  BOOST_TEST(replies.add("r3", "T", {py2p::text("c")}, 160));
  BOOST_TEST(!replies.add("r4", "T", {py2p::text(std::string(2000, 'x'))},
                          161)); // bytes
  BOOST_TEST(replies.expire(1000) == 2u);
  BOOST_TEST(replies.size() == 0u);
  BOOST_TEST(replies.bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(id_types_are_remembered_within_a_bound) {
  // The router's one table (actors/py2p_link_state.hpp), as the message
  // code asks it: unknown, or the type the id arrived in.
  py2p_id_types ids(2);
  BOOST_TEST(!ids.known_type("a"));
  ids.observe("a", true, true);
  ids.observe("b", false, true);
  BOOST_TEST((ids.known_type("a") == std::optional<bool>{true}));
  BOOST_TEST((ids.known_type("b") == std::optional<bool>{false}));
  ids.observe("c", true, true);
  BOOST_TEST(ids.size() == 2u);
  BOOST_TEST(!ids.known_type("a")); // the least recently used went first
  BOOST_TEST((ids.known_type("c") == std::optional<bool>{true}));
}

BOOST_AUTO_TEST_SUITE_END()
