// Peer TLS inside the link broker on CAF's test multiplexer: the TLS
// handshake runs before the hello, plain peers get a plain goodbye, the
// node's frames are ciphertext on the wire, and what a peer makes the
// TLS layer hold counts against the node's handshake budget.

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "actors/peer_link_state.hpp"
#include "actors/tls_channel.hpp"
#include "messages/frame_codec.hpp"
#include "support/node_fixture.hpp"
#include "support/test_ca.hpp"

using namespace syncmesh;

namespace {

/// The fixture's node ("node-a") with peer TLS from a test CA.
struct tls_fixture : test::node_fixture {
  static test::test_ca& ca() {
    static test::test_ca instance;
    return instance;
  }

  tls_fixture()
      : node_fixture([](config& cfg) {
          auto pair = ca().issue("node-a");
          cfg.tls.cert_pem = pair.cert;
          cfg.tls.key_pem = pair.key;
          cfg.tls.ca_pem = ca().cert_pem();
          // Small enough that a few partial TLS records (the fixture
          // accepts 32 connections) exceed it.
          cfg.max_pending_handshake_bytes = 128 * 1024;
        }) {}

  /// A peer TLS context for a certificate naming `id`.
  std::shared_ptr<tls_context> context(const std::string& id) {
    auto pair = ca().issue(id);
    tls_identity_options opts;
    opts.cert_pem = pair.cert;
    opts.key_pem = pair.key;
    opts.ca_pem = ca().cert_pem();
    tls_identity identity;
    std::string error;
    BOOST_REQUIRE_MESSAGE(identity.load(opts, error), error);
    auto ctx = tls_context::make(identity, error);
    BOOST_REQUIRE_MESSAGE(ctx, error);
    return ctx;
  }

  /// A hello from `id` with the node's terms, framed.
  std::string hello(const std::string& id) {
    std::string out;
    BOOST_REQUIRE(append_frame(out,
                               make_hello(id, protocol_id(node_cfg), "10.0.0.2",
                                          7000, hello_terms_of(node_cfg)),
                               1 << 20));
    return out;
  }
};

/// A scripted peer speaking TLS to the node over the test multiplexer.
struct tls_peer {
  tls_fixture& f;
  caf::io::connection_handle hdl;
  tls_channel ch;
  size_t seen = 0;
  std::string plain;

  tls_peer(tls_fixture& fixture, const std::string& id)
      : f(fixture), hdl(fixture.connect_peer()),
        ch(fixture.context(id), false) {
    pump();
  }

  /// Moves bytes both ways until neither side has more to say.
  void pump() {
    for (int round = 0; round < 20; ++round) {
      std::string out;
      ch.take_output(out);
      if (!out.empty())
        f.send(hdl, out);
      auto all = f.written(hdl);
      auto fresh = all.substr(seen);
      seen = all.size();
      if (!fresh.empty())
        ch.feed(fresh, plain);
      if (out.empty() && fresh.empty())
        return;
    }
  }

  /// The envelopes decrypted so far.
  std::vector<pb::Envelope> envelopes() {
    return syncmesh::test::envelopes_in(plain);
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(tls_links, tls_fixture)

BOOST_AUTO_TEST_CASE(the_tls_handshake_comes_before_the_hello_and_hides_it) {
  tls_peer peer{*this, "node-b"};
  BOOST_REQUIRE_MESSAGE(peer.ch.established(), peer.ch.error());
  BOOST_CHECK_EQUAL(peer.ch.peer_id(), "node-a");
  // The node's hello came through the channel, not in clear.
  auto envs = peer.envelopes();
  BOOST_REQUIRE(!envs.empty());
  BOOST_REQUIRE(envs.front().has_hello());
  BOOST_CHECK_EQUAL(envs.front().hello().node_id(), "node-a");
  BOOST_CHECK(written(peer.hdl).find("node-a") == std::string::npos);
  BOOST_REQUIRE(peer.ch.write(hello("node-b")));
  peer.pump();
  BOOST_CHECK_EQUAL(peer_count(), 1u);
  // A write flooded to the peer is ciphertext on the wire.
  write_key("tls-key-4711", value{"tls-value-0815"});
  peer.pump();
  BOOST_CHECK(peer.plain.find("tls-value-0815") != std::string::npos);
  BOOST_CHECK(written(peer.hdl).find("tls-value-0815") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_plain_peer_gets_a_plain_goodbye) {
  auto hdl = connect_peer();
  send(hdl, hello("node-b"));
  auto bye = goodbye(hdl);
  BOOST_REQUIRE(bye);
  BOOST_CHECK(bye->reason() == pb::Goodbye::TLS_REQUIRED);
  BOOST_CHECK(closed(hdl));
  BOOST_CHECK_EQUAL(peer_count(), 0u);
}

BOOST_AUTO_TEST_CASE(
  a_hello_naming_another_id_than_the_certificate_is_refused) {
  tls_peer peer{*this, "node-x"};
  BOOST_REQUIRE(peer.ch.established());
  BOOST_REQUIRE(peer.ch.write(hello("node-b")));
  peer.pump();
  std::optional<pb::Goodbye> bye;
  for (auto& env : peer.envelopes())
    if (env.has_goodbye())
      bye = env.goodbye();
  BOOST_REQUIRE(bye);
  BOOST_CHECK(bye->reason() == pb::Goodbye::IDENTITY_MISMATCH);
  BOOST_CHECK(closed(peer.hdl));
  BOOST_CHECK_EQUAL(peer_count(), 0u);
}

BOOST_AUTO_TEST_CASE(what_tls_holds_counts_against_the_handshake_budget) {
  // Each connection announces a full-size handshake record and sends all
  // but its last byte: the TLS layer must hold it (it cannot decrypt a
  // partial record). The node's budget caps the sum.
  const size_t per_connection = 16383;
  std::string partial = "\x16\x03\x01\x40\x00"; // 16384 bytes follow
  partial += std::string(per_connection, '\x01');
  size_t conns = 2 * node_cfg.max_pending_handshake_bytes / per_connection;
  for (size_t i = 0; i < conns; ++i) {
    auto hdl = connect_peer();
    send(hdl, partial);
    BOOST_REQUIRE_LE(links().handshakes.total(),
                     node_cfg.max_pending_handshake_bytes);
  }
  BOOST_CHECK_GT(links().handshakes.evictions(), 0u);
  // A record longer than TLS allows fails at once, holding nothing.
  auto hdl = connect_peer();
  send(hdl, std::string("\x16\x03\x01\xff\xff", 5) + std::string(4096, '\x02'));
  BOOST_CHECK(closed(hdl));
}

BOOST_AUTO_TEST_SUITE_END()
