// Peer mutual TLS over real sockets on 127.0.0.1 (issue 16): nodes in one
// process with certificates from a test CA, intruders (plain, other CA,
// expired, another node's ID, forged writes) that must not join or write,
// and a recording TCP relay that shows what is on the wire.

#define BOOST_TEST_MODULE syncmesh_tls_mesh
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <caf/all.hpp>

#include "actors/peer_link_state.hpp"
#include "actors/tls_channel.hpp"
#include "messages/frame_codec.hpp"
#include "support/caf_setup.hpp"
#include "support/eventually.hpp"
#include "support/fast_config.hpp"
#include "support/raw_peer.hpp"
#include "support/remote_writes.hpp"
#include "support/test_ca.hpp"
#include "syncmesh/sync_socket.hpp"

using namespace std::chrono_literals;
using namespace syncmesh;
using syncmesh::test::eventually;
using syncmesh::test::fast_config;
using syncmesh::test::pem_pair;
using syncmesh::test::test_ca;

namespace {

/// fast_config with peer TLS from `pair`, trusting `ca_pem`.
config tls_config_of(const pem_pair& pair, const std::string& ca_pem) {
  auto cfg = fast_config();
  cfg.tls.cert_pem = pair.cert;
  cfg.tls.key_pem = pair.key;
  cfg.tls.ca_pem = ca_pem;
  return cfg;
}

/// How many links `node` closed for `reason` (a goodbye reason's name).
uint64_t refusals(sync_socket& node, const std::string& reason) {
  auto stats = node.stats();
  const auto& errors = stats.router().frame_errors();
  auto i = errors.find(reason);
  return i == errors.end() ? 0 : i->second;
}

struct tls_fixture {
  test::threaded_config cfg;
  caf::actor_system sys{cfg};
  test_ca ca;
  std::vector<std::unique_ptr<sync_socket>> nodes;

  ~tls_fixture() { nodes.clear(); }

  sync_socket& add(config c) {
    nodes.push_back(std::make_unique<sync_socket>(sys, std::move(c)));
    return *nodes.back();
  }

  /// A TLS node whose certificate names `id`.
  sync_socket& add_tls(const std::string& id) {
    return add(tls_config_of(ca.issue(id), ca.cert_pem()));
  }

  /// `intruder` cannot connect to `victim`, and the victim counted the
  /// refusal under `reason`.
  void refused(sync_socket& intruder, sync_socket& victim,
               const std::string& reason) {
    auto before = refusals(victim, reason);
    BOOST_CHECK_THROW(intruder.connect("127.0.0.1", victim.port()),
                      syncmesh::error);
    BOOST_CHECK(eventually([&] { return refusals(victim, reason) > before; }));
    BOOST_CHECK(victim.peers().empty());
    // Whatever the intruder writes stays with it.
    intruder.set("intruder-key", value{"x"});
    BOOST_CHECK(!eventually([&] { return victim.get("intruder-key"); }, 300ms));
  }
};

/// A TLS client on a raw socket, playing a member that misbehaves after a
/// valid TLS handshake (its certificate is genuine).
class tls_raw_peer {
public:
  tls_raw_peer(uint16_t port, std::shared_ptr<const tls_context> ctx)
      : sock_(port), tls_(std::move(ctx), false) {
    flush();
  }

  /// Runs the TLS handshake; false when it fails.
  bool handshake() {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!tls_.established() && !tls_.failed()
           && std::chrono::steady_clock::now() < deadline)
      pump(100ms);
    return tls_.established();
  }

  /// Encrypts and sends one envelope.
  void send(const pb::Envelope& env) {
    std::string frame;
    BOOST_REQUIRE(append_frame(frame, env, default_max_frame_size));
    BOOST_REQUIRE(tls_.write(frame));
    flush();
  }

  /// Reads and decrypts until the node closes or `limit` passes; returns
  /// the envelopes.
  std::vector<pb::Envelope> read_for(std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!closed_ && std::chrono::steady_clock::now() < deadline)
      pump(50ms);
    std::vector<pb::Envelope> result;
    std::string payload;
    while (decoder_.next(payload) == frame_status::ok) {
      pb::Envelope env;
      if (parse_envelope(payload, env).empty())
        result.push_back(std::move(env));
    }
    return result;
  }

  /// The goodbye among `envs`, if any.
  static std::optional<pb::Goodbye>
  goodbye_in(const std::vector<pb::Envelope>& envs) {
    for (const auto& env : envs)
      if (env.has_goodbye())
        return env.goodbye();
    return std::nullopt;
  }

private:
  void flush() {
    std::string out;
    tls_.take_output(out);
    if (!out.empty())
      sock_.send(out);
  }
  void pump(std::chrono::milliseconds wait) {
    bool closed = false;
    auto bytes = sock_.read_some(wait, closed);
    closed_ = closed_ || closed;
    std::string plain;
    if (!bytes.empty())
      tls_.feed(bytes, plain);
    decoder_.feed(plain);
    flush();
  }

  test::raw_peer sock_;
  tls_channel tls_;
  frame_decoder decoder_;
  bool closed_ = false;
};

/// A TCP relay on 127.0.0.1 that forwards one connection to `target` and
/// records every byte in both directions.
class recording_relay {
public:
  explicit recording_relay(uint16_t target) : target_(target) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(
      ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
      == 0);
    BOOST_REQUIRE(::listen(listen_fd_, 4) == 0);
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread{[this] {
      run();
    }};
  }

  ~recording_relay() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }

  /// The port to dial instead of the target's.
  uint16_t port() const { return port_; }

  /// Every byte seen so far, both directions.
  std::string capture() {
    std::lock_guard<std::mutex> guard{mtx_};
    return capture_;
  }

private:
  void run() {
    int client = -1;
    int server = -1;
    char buf[16384];
    while (!stop_) {
      if (client < 0) {
        pollfd pfd{listen_fd_, POLLIN, 0};
        if (::poll(&pfd, 1, 20) <= 0)
          continue;
        client = ::accept(listen_fd_, nullptr, nullptr);
        server = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(target_);
        if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
            != 0)
          break;
        continue;
      }
      pollfd pfds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(pfds, 2, 20) <= 0)
        continue;
      bool done = false;
      for (int i = 0; i < 2; ++i) {
        if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
          continue;
        auto n = ::recv(pfds[i].fd, buf, sizeof(buf), 0);
        if (n <= 0) {
          done = true;
          break;
        }
        {
          std::lock_guard<std::mutex> guard{mtx_};
          capture_.append(buf, static_cast<size_t>(n));
        }
        int to = i == 0 ? server : client;
        for (ssize_t off = 0; off < n;) {
          auto m
            = ::send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
          if (m <= 0) {
            done = true;
            break;
          }
          off += m;
        }
      }
      if (done)
        break;
    }
    if (client >= 0)
      ::close(client);
    if (server >= 0)
      ::close(server);
  }

  uint16_t target_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mtx_;
  std::string capture_;
};

/// The peer TLS context of a certificate for `id` from `ca`.
std::shared_ptr<tls_context> context_for(test_ca& ca, const std::string& id,
                                         const std::string& ca_pem) {
  auto pair = ca.issue(id);
  tls_identity_options opts;
  opts.cert_pem = pair.cert;
  opts.key_pem = pair.key;
  opts.ca_pem = ca_pem;
  tls_identity identity;
  std::string error;
  BOOST_REQUIRE_MESSAGE(identity.load(opts, error), error);
  auto ctx = tls_context::make(identity, error);
  BOOST_REQUIRE_MESSAGE(ctx, error);
  return ctx;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(peer_tls, tls_fixture)

BOOST_AUTO_TEST_CASE(tls_nodes_take_their_ids_from_certificates_and_replicate) {
  auto& a = add_tls("node-a");
  auto& b = add_tls("node-b");
  auto& c = add_tls("node-c");
  BOOST_CHECK_EQUAL(a.id().raw(), "node-a");
  BOOST_CHECK_EQUAL(b.id().raw(), "node-b");
  auto info = b.connect("127.0.0.1", a.port());
  BOOST_CHECK_EQUAL(info.id.raw(), "node-a");
  c.connect("127.0.0.1", b.port());
  a.set("from-a", value{"1"});
  c.set("from-c", value{"3"});
  BOOST_CHECK(eventually([&] { return c.get("from-a") && a.get("from-c"); }));
  BOOST_CHECK(eventually([&] { return a.peers().size() >= 1; }));
  BOOST_CHECK_EQUAL(refusals(a, "TLS required"), 0u);
  // Echoes of a's own writes that pass through the mesh are not forgeries.
  BOOST_CHECK_EQUAL(a.stats().store().forged_self_records(), 0u);
}

BOOST_AUTO_TEST_CASE(a_node_id_that_the_certificate_does_not_name_is_refused) {
  auto cfg = tls_config_of(ca.issue("node-a"), ca.cert_pem());
  cfg.node_id = node_id::from_raw("node-b");
  BOOST_CHECK_EXCEPTION(add(cfg), syncmesh::error, [](const auto& e) {
    return std::string{e.what()}.find("not the one the TLS certificate names")
           != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(a_plain_node_cannot_join_and_a_tls_node_does_not_join_it) {
  auto& a = add_tls("node-a");
  auto& plain = add(fast_config());
  refused(plain, a, "TLS required");
  // The other way round: the TLS node refuses the plain listener.
  auto& b = add_tls("node-b");
  BOOST_CHECK_THROW(b.connect("127.0.0.1", plain.port()), syncmesh::error);
  BOOST_CHECK(b.peers().empty());
  BOOST_CHECK(eventually([&] { return refusals(b, "TLS required") >= 1; }));
}

BOOST_AUTO_TEST_CASE(a_certificate_from_another_ca_cannot_join) {
  auto& a = add_tls("node-a");
  test_ca other{"another CA"};
  // It trusts our CA (it could have copied it); its own certificate is
  // signed by another.
  auto& intruder = add(tls_config_of(other.issue("node-x"), ca.cert_pem()));
  refused(intruder, a, "TLS required");
}

BOOST_AUTO_TEST_CASE(an_expired_certificate_cannot_join) {
  auto& a = add_tls("node-a");
  auto& intruder
    = add(tls_config_of(ca.issue("node-old", -7200, -60), ca.cert_pem()));
  refused(intruder, a, "TLS required");
}

BOOST_AUTO_TEST_CASE(a_member_claiming_another_nodes_id_is_refused_first) {
  auto& a = add_tls("node-a");
  auto& b = add_tls("node-b");
  b.connect("127.0.0.1", a.port());
  // node-x holds a genuine certificate, but says it is node-b.
  tls_raw_peer x{a.port(), context_for(ca, "node-x", ca.cert_pem())};
  BOOST_REQUIRE(x.handshake());
  auto before = refusals(a, "identity mismatch");
  x.send(make_hello("node-b", protocol_id(fast_config()), "127.0.0.1", 0,
                    hello_terms_of(fast_config())));
  auto now_us = static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now().time_since_epoch())
      .count());
  auto v = test::remote_version("node-b", now_us, now_us, now_us,
                                now_us + 3600'000'000ull);
  x.send(test::write_envelope(
    "node-b", {test::set_record("impersonated", value{"x"}, v)}));
  auto bye = tls_raw_peer::goodbye_in(x.read_for(2s));
  BOOST_REQUIRE(bye);
  BOOST_CHECK(bye->reason() == pb::Goodbye::IDENTITY_MISMATCH);
  BOOST_TEST_MESSAGE(bye->detail());
  BOOST_CHECK(refusals(a, "identity mismatch") == before + 1);
  BOOST_CHECK(!eventually([&] { return a.get("impersonated"); }, 300ms));
  // The real node-b stays connected.
  BOOST_CHECK_EQUAL(a.peers().size(), 1u);
}

BOOST_AUTO_TEST_CASE(a_member_may_write_only_as_itself) {
  auto& a = add_tls("node-a");
  tls_raw_peer x{a.port(), context_for(ca, "node-x", ca.cert_pem())};
  BOOST_REQUIRE(x.handshake());
  x.send(make_hello("node-x", protocol_id(fast_config()), "127.0.0.1", 0,
                    hello_terms_of(fast_config())));
  BOOST_REQUIRE(eventually([&] { return a.peers().size() == 1; }));
  auto now_us = static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now().time_since_epoch())
      .count());
  auto lease_end = now_us + 3600'000'000ull;
  // 1. An envelope naming another origin than the sender.
  x.send(test::write_envelope(
    "node-b", {test::set_record("forged-origin", value{"x"},
                                test::remote_version("node-b", now_us, now_us,
                                                     now_us, lease_end))}));
  // 2. A record stamped with the victim's own ID that it never made.
  x.send(test::write_envelope(
    "node-x", {test::set_record("forged-self", value{"x"},
                                test::remote_version("node-a", now_us, now_us,
                                                     now_us + 1, lease_end))}));
  // 3. An honest write of its own, after both: once it is applied, the two
  // before it were handled.
  x.send(test::write_envelope(
    "node-x", {test::set_record("honest", value{"ok"},
                                test::remote_version("node-x", now_us, now_us,
                                                     now_us + 2, lease_end))}));
  BOOST_REQUIRE(eventually([&] { return a.get("honest"); }));
  BOOST_CHECK(!a.get("forged-origin"));
  BOOST_CHECK(!a.get("forged-self"));
  auto stats = a.stats();
  BOOST_CHECK_EQUAL(stats.router().forged_writes_refused(), 1u);
  BOOST_CHECK_EQUAL(stats.store().forged_self_records(), 1u);
}

/// Two nodes linked through a recording relay; a distinctive write from
/// one reaches the other; returns the capture.
std::string capture_of_a_write(tls_fixture& f, sync_socket& a, sync_socket& b) {
  recording_relay relay{a.port()};
  b.connect("127.0.0.1", relay.port());
  b.set("secret-key-4711", value{"secret-value-0815"});
  BOOST_REQUIRE(eventually([&] { return a.get("secret-key-4711"); }));
  (void)f;
  return relay.capture();
}

BOOST_AUTO_TEST_CASE(tls_traffic_is_not_readable_on_the_wire) {
  auto& a = add_tls("node-a");
  auto& b = add_tls("node-b");
  auto capture = capture_of_a_write(*this, a, b);
  BOOST_CHECK_GT(capture.size(), 1000u);
  BOOST_CHECK(capture.find("secret-key-4711") == std::string::npos);
  BOOST_CHECK(capture.find("secret-value-0815") == std::string::npos);
  BOOST_CHECK(capture.find("node-b") == std::string::npos); // the hello
}

BOOST_AUTO_TEST_CASE(plain_traffic_is_readable_so_the_capture_can_fail) {
  auto& a = add(fast_config());
  auto& b = add(fast_config());
  auto capture = capture_of_a_write(*this, a, b);
  BOOST_CHECK(capture.find("secret-key-4711") != std::string::npos);
  BOOST_CHECK(capture.find("secret-value-0815") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
