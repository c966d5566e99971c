// The peer links' TLS channel on its own: two channels talking through
// byte buffers (no sockets, no CAF), and what a bad peer can do to one.

#define BOOST_TEST_MODULE tls_channel_tests
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include <openssl/ssl.h>

#include "actors/tls_channel.hpp"
#include "actors/tls_identity.hpp"
#include "support/test_ca.hpp"

using namespace syncmesh;
using syncmesh::test::pem_pair;
using syncmesh::test::test_ca;

namespace {

/// A peer TLS context for `pair` trusting `ca_pem`.
std::shared_ptr<tls_context> context(const pem_pair& pair,
                                     const std::string& ca_pem) {
  tls_identity_options opts;
  opts.cert_pem = pair.cert;
  opts.key_pem = pair.key;
  opts.ca_pem = ca_pem;
  tls_identity id;
  std::string error;
  BOOST_REQUIRE_MESSAGE(id.load(opts, error), error);
  auto ctx = tls_context::make(id, error);
  BOOST_REQUIRE_MESSAGE(ctx, error);
  return ctx;
}

/// Moves bytes between a client and a server channel until neither has
/// anything to say; collects what each decrypted.
struct wire {
  tls_channel& client;
  tls_channel& server;
  std::string client_got;
  std::string server_got;

  void pump() {
    for (int round = 0; round < 20; ++round) {
      std::string c2s;
      std::string s2c;
      client.take_output(c2s);
      server.take_output(s2c);
      if (c2s.empty() && s2c.empty())
        return;
      if (!c2s.empty())
        server.feed(c2s, server_got);
      if (!s2c.empty())
        client.feed(s2c, client_got);
    }
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(two_channels_verify_each_other_and_carry_bytes) {
  test_ca ca;
  auto a = context(ca.issue("node-a"), ca.cert_pem());
  auto b = context(ca.issue("node-b"), ca.cert_pem());
  BOOST_TEST(a->node_id() == "node-a");
  tls_channel client{a, false};
  tls_channel server{b, true};
  // Written before the handshake: kept until it completes.
  BOOST_REQUIRE(client.write("hello from a"));
  wire w{client, server};
  w.pump();
  BOOST_REQUIRE_MESSAGE(client.established(), client.error());
  BOOST_REQUIRE_MESSAGE(server.established(), server.error());
  BOOST_TEST(client.peer_id() == "node-b");
  BOOST_TEST(server.peer_id() == "node-a");
  BOOST_TEST(w.server_got == "hello from a");
  std::string big(300 * 1024, 'x');
  BOOST_REQUIRE(server.write(big));
  w.pump();
  BOOST_TEST(w.client_got.size() == big.size());
  BOOST_TEST((w.client_got == big));
  // The ciphertext does not contain the plaintext.
  BOOST_REQUIRE(client.write("distinctive-plaintext-123"));
  std::string cipher;
  client.take_output(cipher);
  BOOST_TEST(cipher.find("distinctive") == std::string::npos);
  BOOST_TEST(cipher.size() > 25u);
  // Idle: nothing held inside.
  w.server_got.clear();
  server.feed(cipher, w.server_got);
  BOOST_TEST(w.server_got == "distinctive-plaintext-123");
  BOOST_TEST(client.held_bytes() == 0u);
  BOOST_TEST(server.held_bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(a_certificate_from_another_ca_is_refused_both_ways) {
  test_ca ca;
  test_ca other{"another CA"};
  auto good = context(ca.issue("node-a"), ca.cert_pem());
  // The intruder trusts our CA (it could have copied it) but its
  // certificate was signed by another.
  auto intruder = context(other.issue("node-x"), ca.cert_pem());
  {
    tls_channel client{intruder, false};
    tls_channel server{good, true};
    wire{client, server}.pump();
    BOOST_TEST(!server.established());
    BOOST_TEST(server.failed());
    BOOST_TEST(server.error().find("certificate verify failed")
                 != std::string::npos,
               server.error());
  }
  {
    tls_channel client{good, false};
    tls_channel server{intruder, true};
    wire{client, server}.pump();
    BOOST_TEST(!client.established());
    BOOST_TEST(client.failed());
    BOOST_TEST(client.error().find("certificate verify failed")
                 != std::string::npos,
               client.error());
  }
}

BOOST_AUTO_TEST_CASE(an_expired_certificate_is_refused) {
  test_ca ca;
  auto good = context(ca.issue("node-a"), ca.cert_pem());
  auto expired = context(ca.issue("node-old", -7200, -3600), ca.cert_pem());
  tls_channel client{expired, false};
  tls_channel server{good, true};
  wire{client, server}.pump();
  BOOST_TEST(!server.established());
  BOOST_TEST(server.error().find("expired") != std::string::npos,
             server.error());
  // The client learns it from the alert.
  BOOST_TEST(client.failed());
}

BOOST_AUTO_TEST_CASE(a_client_without_a_certificate_is_refused) {
  test_ca ca;
  auto good = context(ca.issue("node-a"), ca.cert_pem());
  // A client context with the CA but no certificate of its own.
  SSL_CTX* bare = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(bare, TLS1_3_VERSION);
  SSL* ssl = SSL_new(bare);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(in, -1);
  SSL_set_bio(ssl, in, out);
  SSL_set_connect_state(ssl);
  tls_channel server{good, true};
  std::string plain;
  for (int round = 0; round < 10; ++round) {
    SSL_do_handshake(ssl);
    std::string c2s(static_cast<size_t>(BIO_ctrl_pending(out)), '\0');
    if (!c2s.empty())
      BIO_read(out, c2s.data(), static_cast<int>(c2s.size()));
    if (!c2s.empty())
      server.feed(c2s, plain);
    std::vector<char> s2c;
    server.take_output(s2c);
    if (!s2c.empty())
      BIO_write(in, s2c.data(), static_cast<int>(s2c.size()));
    if (c2s.empty() && s2c.empty())
      break;
  }
  SSL_free(ssl);
  SSL_CTX_free(bare);
  BOOST_TEST(!server.established());
  BOOST_TEST(server.failed());
  BOOST_TEST(server.error().find("certificate") != std::string::npos,
             server.error());
}

BOOST_AUTO_TEST_CASE(a_certificate_without_a_node_id_is_refused) {
  test_ca ca;
  auto good = context(ca.issue("node-a"), ca.cert_pem());
  // Loading an identity whose certificate names no node fails at once.
  auto anon = ca.issue("");
  tls_identity_options opts;
  opts.cert_pem = anon.cert;
  opts.key_pem = anon.key;
  opts.ca_pem = ca.cert_pem();
  tls_identity id;
  std::string error;
  BOOST_REQUIRE(id.load(opts, error));
  BOOST_TEST(!tls_context::make(id, error));
  BOOST_TEST(error.find("names no node") != std::string::npos, error);
  // Malformed hex in the SAN.
  auto bad = ca.issue("x", -60, 3600, "urn:syncmesh:node:zz");
  std::string why;
  opts.cert_pem = bad.cert;
  opts.key_pem = bad.key;
  BOOST_REQUIRE(id.load(opts, why));
  BOOST_TEST(!tls_context::make(id, why));
  BOOST_TEST(why.find("malformed") != std::string::npos, why);
}

BOOST_AUTO_TEST_CASE(garbage_and_plain_peers_fail_cleanly) {
  test_ca ca;
  auto good = context(ca.issue("node-a"), ca.cert_pem());
  {
    // A plain syncmesh peer: a length-prefixed frame.
    tls_channel server{good, true};
    std::string plain;
    BOOST_TEST(!server.feed(std::string("\0\0\0\x10hello", 9), plain));
    BOOST_TEST(server.plain_peer());
    BOOST_TEST(server.error().find("plain TCP") != std::string::npos);
  }
  {
    tls_channel server{good, true};
    std::string plain;
    BOOST_TEST(!server.feed("GET / HTTP/1.1\r\n\r\n", plain));
    BOOST_TEST(!server.plain_peer());
    BOOST_TEST(server.failed());
  }
  {
    // A handshake record header followed by garbage.
    tls_channel server{good, true};
    std::string plain;
    std::string junk = "\x16\x03\x01\x00\x40";
    junk += std::string(64, '\x7f');
    server.feed(junk, plain);
    BOOST_TEST(server.failed());
    BOOST_TEST(plain.empty());
  }
  {
    // Garbage after a valid handshake.
    auto b = context(ca.issue("node-b"), ca.cert_pem());
    tls_channel client{b, false};
    tls_channel server{good, true};
    wire w{client, server};
    w.pump();
    BOOST_REQUIRE(server.established());
    // A partial record waits (counted); once whole, it does not decrypt.
    BOOST_TEST(server.feed(std::string(100, '\x17'), w.server_got));
    BOOST_TEST(server.held_bytes() == 100u);
    BOOST_TEST(!server.feed(std::string(6000, '\x17'), w.server_got));
    BOOST_TEST(server.held_bytes() <= tls_max_record);
    BOOST_TEST(server.failed());
    // Once failed, it stays failed and takes nothing more.
    BOOST_TEST(!server.feed("more", w.server_got));
    BOOST_TEST(!server.write("x"));
  }
}

BOOST_AUTO_TEST_CASE(
  endless_handshake_bytes_and_huge_records_cost_bounded_memory) {
  test_ca ca;
  auto good = context(ca.issue("node-a"), ca.cert_pem());
  {
    // A record header announcing the largest length, then endless bytes:
    // the channel fails before it holds more than one record.
    tls_channel server{good, true};
    std::string plain;
    std::string head = "\x16\x03\x01\xff\xff";
    bool ok = server.feed(head, plain);
    size_t fed = head.size();
    std::string chunk(4096, '\x01');
    while (ok && fed < 10 * 1024 * 1024) {
      ok = server.feed(chunk, plain);
      fed += chunk.size();
      BOOST_TEST_REQUIRE(server.held_bytes() <= tls_max_record + chunk.size());
    }
    BOOST_TEST(!ok);
    BOOST_TEST(fed <= 2 * tls_max_record, "failed only after " << fed);
  }
  {
    // Established, then an application record announcing 60 KiB (more
    // than TLS allows) followed by its bytes.
    auto b = context(ca.issue("node-b"), ca.cert_pem());
    tls_channel client{b, false};
    tls_channel server{good, true};
    wire w{client, server};
    w.pump();
    BOOST_REQUIRE(server.established());
    std::string rec = "\x17\x03\x03\xf0\x00";
    rec += std::string(0xf000, '\x02');
    BOOST_TEST(!server.feed(rec, w.server_got));
    BOOST_TEST(server.held_bytes() <= tls_max_record);
  }
  {
    // Plaintext before the handshake is bounded too.
    tls_channel client{good, false, 1000};
    BOOST_TEST(client.write(std::string(600, 'a')));
    BOOST_TEST(!client.write(std::string(600, 'a')));
    BOOST_TEST(client.error().find("before the handshake")
               != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(identity_loading_errors_are_one_line) {
  tls_identity_options opts;
  opts.cert_file = "/nonexistent/cert.pem";
  opts.key_file = "/nonexistent/key.pem";
  opts.ca_file = "/nonexistent/ca.pem";
  tls_identity id;
  std::string error;
  BOOST_TEST(!id.load(opts, error));
  BOOST_TEST(error.find("--tls-cert: cannot read /nonexistent/cert.pem") == 0u,
             error);
  BOOST_TEST(error.find('\n') == std::string::npos);
  test_ca ca;
  auto pair = ca.issue("n");
  opts = {};
  opts.cert_pem = pair.cert;
  opts.key_pem = ca.issue("m").key; // another key
  opts.ca_pem = ca.cert_pem();
  BOOST_TEST(!id.load(opts, error));
  BOOST_TEST(error.find("--tls-key") == 0u, error);
}
