// The API on the event-driven server, attacked as a hostile client would,
// against a real syncmesh-node process: deep JSON, framing tricks, floods
// of headers and bodies, slow and idle clients, Host/Origin, tokens and
// roles, batch and NDJSON writes, read-your-writes under pipelining. Each
// attack asserts the status and a (generous) bound on the node's RSS, and
// that honest requests are still served afterwards.

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "actors/peer_link_state.hpp"
#include "messages/frame_codec.hpp"
#include "support/daemon_process.hpp"
#include "support/eventually.hpp"
#include "support/process.hpp"
#include "support/raw_peer.hpp"
#include "support/scratch_dir.hpp"
#include "support/self_signed.hpp"
#include "syncmesh/clock.hpp"
#include "syncmesh/config.hpp"
#include "syncmesh/pb/wire.pb.h"

using namespace std::chrono_literals;
using nlohmann::json;
using syncmesh::test::child_process;
using syncmesh::test::eventually;
using syncmesh::test::make_self_signed;
using syncmesh::test::scratch_dir;
using syncmesh::test::slurp;

namespace {

/// A syncmesh-node with its API on an OS-picked port, quick timers and
/// warnings only.
struct api_node : syncmesh::test::daemon_process {
  api_node(const std::string& dir, const std::vector<std::string>& extra)
      : daemon_process(dir,
                       syncmesh::test::quick_daemon_args(
                         {"--http=127.0.0.1:0", "--log-level=warning",
                          "--anti-entropy-interval=300ms"},
                         extra),
                       "api-node") {}

  /// A client that waits up to 20 s for an answer.
  httplib::Client client() const { return daemon_process::client(20); }
};

/// A raw TCP connection for requests no honest client library would send.
struct raw_conn {
  int fd = -1;
  std::string buf;

  explicit raw_conn(uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ~raw_conn() {
    if (fd >= 0)
      ::close(fd);
  }
  raw_conn(const raw_conn&) = delete;
  raw_conn& operator=(const raw_conn&) = delete;

  /// False once the peer closed (or the write would block past 5 s).
  bool send_all(std::string_view data) {
    while (!data.empty()) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 5000) <= 0)
        return false;
      auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  /// True when data (or the close) arrived within `timeout`.
  bool fill(std::chrono::milliseconds timeout) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
      return false;
    char tmp[65536];
    auto n = ::recv(fd, tmp, sizeof(tmp), 0);
    if (n <= 0)
      return false;
    buf.append(tmp, static_cast<size_t>(n));
    return true;
  }

  /// One response: status (0 when none came), its header and body (by
  /// Content-Length; responses here are never chunked).
  struct reply {
    int status = 0;
    std::string header;
    std::string body;
  };

  reply read_response(std::chrono::milliseconds timeout = 10s) {
    reply r;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto left = [&] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    };
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos)
      if (left().count() <= 0 || !fill(left()))
        return r;
    r.header = buf.substr(0, end + 4);
    buf.erase(0, end + 4);
    if (r.header.size() > 12)
      r.status = std::stoi(r.header.substr(9, 3));
    std::smatch m;
    static const std::regex length{R"(\r\n[Cc]ontent-[Ll]ength:\s*(\d+))"};
    size_t body = 0;
    if (std::regex_search(r.header, m, length))
      body = std::stoul(m[1]);
    while (buf.size() < body)
      if (left().count() <= 0 || !fill(left()))
        break;
    r.body = buf.substr(0, std::min(body, buf.size()));
    buf.erase(0, r.body.size());
    return r;
  }

  /// True when the server closed the connection within `timeout`.
  bool closed_within(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
      if (ms <= 0 || ::poll(&p, 1, static_cast<int>(ms)) <= 0)
        return false;
      char tmp[4096];
      auto n = ::recv(fd, tmp, sizeof(tmp), 0);
      if (n <= 0)
        return true;
    }
  }
};

std::string request(const std::string& method, const std::string& path,
                    const std::string& body = {},
                    const std::string& type = "text/plain",
                    const std::string& extra = {}) {
  return method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
         + (body.empty() && method == "GET"
              ? std::string{}
              : "Content-Type: " + type + "\r\nContent-Length: "
                  + std::to_string(body.size()) + "\r\n")
         + extra + "\r\n" + body;
}

json parsed(const std::string& body) {
  auto x = json::parse(body, nullptr, false);
  BOOST_REQUIRE_MESSAGE(!x.is_discarded(), "not JSON: " << body);
  return x;
}

/// Lets this test process open a few thousand sockets.
void raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

/// Honest use still works: a write, a read, a listing.
void still_serves(const api_node& n, const std::string& key) {
  auto cli = n.client();
  auto put = cli.Put("/v1/kv/" + key, "fine", "text/plain");
  BOOST_REQUIRE(put);
  BOOST_CHECK_EQUAL(put->status, 204);
  auto got = cli.Get("/v1/kv/" + key);
  BOOST_REQUIRE(got);
  BOOST_CHECK_EQUAL(got->body, "fine");
  BOOST_CHECK_EQUAL(n.status_of("/healthz"), 200);
}

constexpr long generous_kib = 96 * 1024; // growth allowed by an attack

struct one_node {
  scratch_dir dir;
  api_node a{dir.path, {}};
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(http_api_attacks, one_node)

BOOST_AUTO_TEST_CASE(unknown_paths_and_methods_answer_json) {
  raw_conn c{a.port};
  BOOST_REQUIRE(c.send_all(request("GET", "/nope")));
  auto r = c.read_response();
  BOOST_CHECK_EQUAL(r.status, 404);
  BOOST_CHECK_EQUAL(parsed(r.body)["error"], "not_found");
  BOOST_REQUIRE(c.send_all(request("DELETE", "/v1/status", "x")));
  r = c.read_response();
  BOOST_CHECK_EQUAL(r.status, 405);
  BOOST_CHECK(r.header.find("Allow: GET") != std::string::npos);
  BOOST_CHECK_EQUAL(parsed(r.body)["error"], "method_not_allowed");
}

BOOST_AUTO_TEST_CASE(deep_json_is_refused_on_every_json_route) {
  auto before = a.rss_kib();
  std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  std::string deep_object;
  for (int i = 0; i < 50'000; ++i)
    deep_object += "{\"a\":";
  deep_object += "1" + std::string(50'000, '}');
  auto cli = a.client();
  struct attempt {
    std::string method, path, type, body;
  };
  std::vector<attempt> attempts{
    {"PUT", "/v1/kv/deep", "application/json", deep},
    {"PUT", "/v1/kv/deep", "application/json", deep_object},
    {"POST", "/v1/kv/deep/delta", "application/json", deep_object},
    {"POST", "/v1/kv/deep/delta", "application/json", deep},
    {"POST", "/v1/messages", "application/json", deep},
    {"POST", "/v1/messages", "application/json", "{\"packets\":" + deep + "}"},
    {"POST", "/v1/kv", "application/json", deep},
    {"POST", "/v1/kv", "application/json",
     "[{\"key\":\"k\",\"value\":" + deep + "}]"},
    {"POST", "/v1/kv", "application/x-ndjson",
     "{\"key\":\"k\",\"value\":" + deep + "}\n"},
  };
  for (const auto& x : attempts) {
    auto res = x.method == "PUT" ? cli.Put(x.path, x.body, x.type.c_str())
                                 : cli.Post(x.path, x.body, x.type.c_str());
    BOOST_REQUIRE_MESSAGE(res, x.method << " " << x.path << ": no answer");
    BOOST_CHECK_MESSAGE(res->status == 400, x.method << " " << x.path << " "
                                                     << x.type << ": "
                                                     << res->status);
  }
  BOOST_CHECK_EQUAL(a.status_of("/v1/kv/deep"), 404);
  still_serves(a, "after-deep");
  BOOST_CHECK_LT(a.rss_kib() - before, generous_kib);
}

BOOST_AUTO_TEST_CASE(framing_tricks_are_refused_and_the_connection_closed) {
  {
    raw_conn c{a.port};
    BOOST_REQUIRE(c.send_all("PUT /v1/kv/cl HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Content-Length: 3\r\nContent-Length: 5\r\n\r\n"
                             "abcde"));
    BOOST_CHECK_EQUAL(c.read_response().status, 400);
    BOOST_CHECK(c.closed_within(5s));
  }
  for (const char* te : {"chunked, identity", "xchunked",
                         "Chunked\r\nTransfer-Encoding: gzip", "identity"}) {
    raw_conn c{a.port};
    BOOST_REQUIRE(c.send_all(std::string{"PUT /v1/kv/te HTTP/1.1\r\nHost: "
                                         "127.0.0.1\r\nTransfer-Encoding: "}
                             + te + "\r\n\r\n3\r\nabc\r\n0\r\n\r\n"));
    auto r = c.read_response();
    BOOST_CHECK_MESSAGE(r.status == 400,
                        "Transfer-Encoding '" << te << "': " << r.status);
  }
  BOOST_CHECK_EQUAL(a.status_of("/v1/kv/cl"), 404);
  BOOST_CHECK_EQUAL(a.status_of("/v1/kv/te"), 404);
  still_serves(a, "after-framing");
}

BOOST_AUTO_TEST_CASE(floods_of_headers_and_bodies_are_cut_early) {
  auto before = a.rss_kib();
  {
    // 100 MB of header lines: refused at the header limit.
    raw_conn c{a.port};
    BOOST_REQUIRE(c.send_all("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    std::string lines;
    for (int i = 0; i < 1000; ++i)
      lines += "X-Flood-" + std::to_string(i) + ": " + std::string(80, 'f')
               + "\r\n";
    size_t sent = 0;
    while (sent < 100'000'000 && c.send_all(lines))
      sent += lines.size();
    auto r = c.read_response(5s);
    BOOST_CHECK_MESSAGE(r.status == 431 || r.status == 0,
                        "header flood: " << r.status);
    BOOST_CHECK_LT(sent, 100'000'000u); // cut before the end
  }
  {
    // A 100 MB chunked body: refused once it passes the body limit.
    raw_conn c{a.port};
    BOOST_REQUIRE(c.send_all("PUT /v1/kv/huge HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Content-Type: application/octet-stream\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n"));
    std::string chunk = "100000\r\n" + std::string(0x100000, 'x') + "\r\n";
    size_t sent = 0;
    while (sent < 100'000'000 && c.send_all(chunk))
      sent += chunk.size();
    auto r = c.read_response(5s);
    BOOST_CHECK_MESSAGE(r.status == 413 || r.status == 0,
                        "chunked flood: " << r.status);
    BOOST_CHECK_LT(sent, 100'000'000u);
  }
  BOOST_CHECK_EQUAL(a.status_of("/v1/kv/huge"), 404);
  still_serves(a, "after-floods");
  BOOST_CHECK_LT(a.rss_kib() - before, generous_kib);
}

BOOST_AUTO_TEST_CASE(slow_and_idle_clients_do_not_starve_new_ones) {
  raise_fd_limit();
  auto before = a.rss_kib();
  // 16 slowloris connections: a header that never ends.
  std::vector<std::unique_ptr<raw_conn>> slow;
  for (int i = 0; i < 16; ++i) {
    slow.push_back(std::make_unique<raw_conn>(a.port));
    BOOST_REQUIRE(slow.back()->send_all("GET /v1/status HTTP/1.1\r\nHost: "));
  }
  // 1,000 keep-alive clients, each served once and then idle.
  std::vector<std::unique_ptr<raw_conn>> idle;
  for (int i = 0; i < 1000; ++i) {
    idle.push_back(std::make_unique<raw_conn>(a.port));
    BOOST_REQUIRE(idle.back()->fd >= 0);
    BOOST_REQUIRE(idle.back()->send_all(request("GET", "/healthz")));
  }
  for (auto& c : idle)
    BOOST_REQUIRE_EQUAL(c->read_response().status, 200);
  // 20 pollers of /v1/status.
  std::atomic<bool> stop{false};
  std::atomic<int> polls{0};
  std::vector<std::thread> pollers;
  for (int i = 0; i < 20; ++i)
    pollers.emplace_back([&] {
      raw_conn c{a.port};
      while (!stop) {
        if (!c.send_all(request("GET", "/v1/status"))
            || c.read_response().status != 200)
          return;
        ++polls;
        std::this_thread::sleep_for(100ms);
      }
    });
  // A new client is served at once (a generous second on a loaded box).
  for (int i = 0; i < 5; ++i) {
    auto start = std::chrono::steady_clock::now();
    BOOST_CHECK_EQUAL(a.status_of("/healthz"), 200);
    BOOST_CHECK_EQUAL(a.status_of("/v1/status"), 200);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
    BOOST_CHECK_LT(took.count(), 2000);
  }
  // Every poller keeps being served.
  BOOST_CHECK(eventually([&] { return polls.load() >= 60; }));
  stop = true;
  for (auto& t : pollers)
    t.join();
  still_serves(a, "after-slow");
  BOOST_CHECK_LT(a.rss_kib() - before, generous_kib);
}

BOOST_AUTO_TEST_CASE(foreign_hosts_and_cross_site_writes_are_refused) {
  raw_conn c{a.port};
  BOOST_REQUIRE(
    c.send_all("GET /v1/status HTTP/1.1\r\nHost: evil.example\r\n\r\n"));
  BOOST_CHECK_EQUAL(c.read_response().status, 421);
  for (const char* path : {"/v1/kv/victim/delta", "/v1/messages"}) {
    raw_conn d{a.port};
    BOOST_REQUIRE(d.send_all(request("POST", path, "{\"a\":1}", "text/plain",
                                     "Origin: http://evil.example\r\n")));
    auto r = d.read_response();
    BOOST_CHECK_MESSAGE(r.status == 403, path << ": " << r.status);
  }
  BOOST_CHECK_EQUAL(a.status_of("/v1/kv/victim"), 404);
  still_serves(a, "after-origin");
}

BOOST_AUTO_TEST_CASE(pipelined_put_then_get_reads_its_write) {
  raw_conn c{a.port};
  for (int i = 0; i < 200; ++i) {
    auto v = std::to_string(i);
    BOOST_REQUIRE(c.send_all(request("PUT", "/v1/kv/ryw", v)
                             + request("GET", "/v1/kv/ryw")));
    BOOST_REQUIRE_EQUAL(c.read_response().status, 204);
    auto got = c.read_response();
    BOOST_REQUIRE_EQUAL(got.status, 200);
    BOOST_REQUIRE_EQUAL(got.body, v);
  }
}

BOOST_AUTO_TEST_CASE(a_json_batch_applies_sets_and_deletes) {
  auto cli = a.client();
  BOOST_REQUIRE_EQUAL(cli.Put("/v1/kv/old", "x", "text/plain")->status, 204);
  auto res
    = cli.Post("/v1/kv",
               R"([{"key":"b1","value":1},{"key_b64":"YjI=","value":"two"},
                          {"key":"old","delete":true},{"key":"absent","delete":true}])",
               "application/json");
  BOOST_REQUIRE(res);
  BOOST_CHECK_EQUAL(res->status, 200);
  BOOST_CHECK_EQUAL(parsed(res->body)["applied"], 4);
  BOOST_CHECK_EQUAL(cli.Get("/v1/kv/b1")->body, "1");
  BOOST_CHECK_EQUAL(cli.Get("/v1/kv/b2")->body, "two");
  BOOST_CHECK_EQUAL(a.status_of("/v1/kv/old"), 404);
  // Bounded: too many entries, malformed entries.
  std::string many = "[";
  for (int i = 0; i < 10'001; ++i)
    many += std::string{i ? "," : ""} + "{\"key\":\"m" + std::to_string(i)
            + "\",\"value\":1}";
  many += "]";
  BOOST_CHECK_EQUAL(cli.Post("/v1/kv", many, "application/json")->status, 413);
  BOOST_CHECK_EQUAL(
    cli.Post("/v1/kv", R"([{"value":1}])", "application/json")->status, 400);
  BOOST_CHECK_EQUAL(cli.Post("/v1/kv", "[]", "text/plain")->status, 415);
  BOOST_CHECK_EQUAL(a.status_of("/v1/kv/m0"), 404);
}

BOOST_AUTO_TEST_CASE(an_ndjson_bulk_load_of_100000_lines_stays_bounded) {
  auto before = a.rss_kib();
  std::string body;
  for (int i = 0; i < 100'000; ++i)
    body += "{\"key\":\"bulk/" + std::to_string(i) + "\",\"value\":\"v"
            + std::to_string(i) + "\"}\n";
  auto cli = a.client();
  cli.set_read_timeout(120);
  auto res = cli.Post("/v1/kv", body, "application/x-ndjson");
  BOOST_REQUIRE(res);
  BOOST_REQUIRE_EQUAL(res->status, 200);
  BOOST_CHECK_EQUAL(parsed(res->body)["applied"], 100'000);
  BOOST_CHECK_EQUAL(cli.Get("/v1/kv/bulk/99999")->body, "v99999");
  // The store holds 100,000 keys now; the load itself held one batch.
  BOOST_CHECK_LT(a.rss_kib() - before, 3 * generous_kib);
  // A bad line: the batches before it stay, the answer says where.
  std::string bad;
  for (int i = 0; i < 1500; ++i)
    bad += i == 1499
             ? "{\"key\":\"x\"}\n"
             : "{\"key\":\"again/" + std::to_string(i) + "\",\"value\":1}\n";
  res = cli.Post("/v1/kv", bad, "application/x-ndjson");
  BOOST_REQUIRE(res);
  BOOST_CHECK_EQUAL(res->status, 400);
  auto err = parsed(res->body);
  BOOST_CHECK_EQUAL(err["applied"], 1000);
  BOOST_CHECK_EQUAL(err["line"], 1500);
  BOOST_CHECK_EQUAL(a.status_of("/v1/kv/again/999"), 200);
  BOOST_CHECK_EQUAL(a.status_of("/v1/kv/again/1000"), 404);
}

BOOST_AUTO_TEST_CASE(an_ndjson_load_read_in_tiny_pieces_loads_every_line) {
  // 7-byte pieces: nearly every line straddles several of them, CRLF pairs
  // and blank lines split too.
  scratch_dir dir;
  api_node n{dir.path, {"--http-body-piece=7", "--max-value-size=1KiB"}};
  auto value_of = [](int i) {
    return std::string(static_cast<size_t>(i % 53), 'v') + std::to_string(i);
  };
  std::string body;
  for (int i = 0; i < 400; ++i) {
    body += "{\"key\":\"piece/" + std::to_string(i) + "\",\"value\":\""
            + value_of(i) + "\"}" + (i % 3 == 0 ? "\r\n" : "\n");
    if (i % 17 == 0)
      body += "\n  \n"; // blank lines are skipped
  }
  body.pop_back(); // the last line has no newline
  auto cli = n.client();
  auto res = cli.Post("/v1/kv", body, "application/x-ndjson");
  BOOST_REQUIRE(res);
  BOOST_REQUIRE_EQUAL(res->status, 200);
  BOOST_CHECK_EQUAL(parsed(res->body)["applied"], 400);
  for (int i = 0; i < 400; ++i) {
    auto got = cli.Get("/v1/kv/piece/" + std::to_string(i));
    BOOST_REQUIRE(got);
    BOOST_REQUIRE_EQUAL(got->status, 200);
    BOOST_REQUIRE_EQUAL(got->body, value_of(i));
  }
  // A line longer than the line limit (twice the value size plus the key
  // and JSON slack: about 14 KiB here) is refused with 413, though no
  // piece ever holds more than 7 bytes of it.
  std::string huge
    = "{\"key\":\"pre\",\"value\":1}\n{\"key\":\"huge\",\"value\":\""
      + std::string(64 * 1024, 'h') + "\"}\n";
  res = cli.Post("/v1/kv", huge, "application/x-ndjson");
  BOOST_REQUIRE(res);
  BOOST_CHECK_EQUAL(res->status, 413);
  auto err = parsed(res->body);
  BOOST_CHECK_EQUAL(err["error"], "line_too_large");
  BOOST_CHECK_EQUAL(err["line"], 2);
  BOOST_CHECK_EQUAL(n.status_of("/v1/kv/huge"), 404);
  still_serves(n, "after-pieces");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(http_api_security)

BOOST_AUTO_TEST_CASE(a_batch_with_a_leased_key_applies_nothing) {
  scratch_dir dir;
  api_node a{dir.path, {}};
  api_node b{dir.path, {"--peers=" + a.listen}};
  BOOST_REQUIRE(eventually([&] { return b.status_of("/readyz") == 200; }));
  BOOST_REQUIRE_EQUAL(a.client().Put("/v1/kv/owned", "a", "text/plain")->status,
                      204);
  BOOST_REQUIRE_EQUAL(
    a.client().Put("/v1/kv/owned2", "a2", "text/plain")->status, 204);
  BOOST_REQUIRE(eventually([&] {
    return b.status_of("/v1/kv/owned") == 200
           && b.status_of("/v1/kv/owned2") == 200;
  }));
  auto res = b.client().Post(
    "/v1/kv",
    R"([{"key":"fresh","value":1},{"key":"owned","value":2},{"key":"gone","delete":true},
        {"key":"owned2","delete":true}])",
    "application/json");
  BOOST_REQUIRE(res);
  BOOST_CHECK_EQUAL(res->status, 409);
  auto err = parsed(res->body);
  BOOST_CHECK_EQUAL(err["error"], "lease");
  BOOST_CHECK_EQUAL(err["owner"], a.id);
  // Every leased key of the batch is named, in the batch's order (sets,
  // then deletes), each with its owner and when its lease ends.
  BOOST_REQUIRE(err["keys"].is_array());
  BOOST_REQUIRE_EQUAL(err["keys"].size(), 2u);
  BOOST_CHECK_EQUAL(err["keys"][0]["key"], "owned");
  BOOST_CHECK_EQUAL(err["keys"][1]["key"], "owned2");
  BOOST_REQUIRE(err["conflicts"].is_array());
  BOOST_REQUIRE_EQUAL(err["conflicts"].size(), 2u);
  for (const auto& c : err["conflicts"]) {
    BOOST_CHECK_EQUAL(c["owner"], a.id);
    BOOST_CHECK_GT(c["expires_at"].get<uint64_t>(), 0u);
    BOOST_CHECK_MESSAGE(
      std::regex_match(c["expires_at_iso"].get<std::string>(),
                       std::regex{R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"}),
      c.dump());
    BOOST_CHECK_MESSAGE(c["in"].get<std::string>().rfind("in ", 0) == 0,
                        c.dump());
  }
  BOOST_CHECK_EQUAL(err["conflicts"][1]["key"], "owned2");
  auto message = err["message"].get<std::string>();
  BOOST_CHECK_MESSAGE(message.find("'owned'") != std::string::npos
                        && message.find("'owned2'") != std::string::npos,
                      message);
  BOOST_CHECK_EQUAL(b.status_of("/v1/kv/fresh"), 404);
  BOOST_CHECK_EQUAL(b.client().Get("/v1/kv/owned")->body, "a");
  // Deleting a leased key in a batch is refused the same way.
  res = b.client().Post("/v1/kv", R"([{"key":"owned","delete":true}])",
                        "application/json");
  BOOST_CHECK_EQUAL(res->status, 409);
  // Honest batches replicate.
  res = b.client().Post("/v1/kv", R"([{"key":"fresh","value":1}])",
                        "application/json");
  BOOST_CHECK_EQUAL(res->status, 200);
  BOOST_CHECK(eventually([&] { return a.status_of("/v1/kv/fresh") == 200; }));
}

BOOST_AUTO_TEST_CASE(tokens_grant_roles) {
  scratch_dir dir;
  auto tokens = dir.path + "/tokens";
  {
    std::ofstream out{tokens};
    out << "read reader-token-0123456789\nwrite writer-token-0123456789\n";
  }
  std::filesystem::permissions(tokens, std::filesystem::perms::owner_read
                                         | std::filesystem::perms::owner_write);
  api_node a{dir.path, {"--http-token-file=" + tokens}};
  auto cli = a.client();
  BOOST_CHECK_EQUAL(cli.Get("/healthz")->status, 200); // open path
  BOOST_CHECK_EQUAL(cli.Get("/v1/status")->status, 401);
  BOOST_CHECK_EQUAL(cli.Put("/v1/kv/k", "v", "text/plain")->status, 401);
  httplib::Headers reader{{"Authorization", "Bearer reader-token-0123456789"}};
  httplib::Headers writer{{"Authorization", "Bearer writer-token-0123456789"}};
  BOOST_CHECK_EQUAL(cli.Get("/v1/status", reader)->status, 200);
  auto refused = cli.Put("/v1/kv/k", reader, "v", "text/plain");
  BOOST_REQUIRE(refused);
  BOOST_CHECK_EQUAL(refused->status, 403);
  BOOST_CHECK_EQUAL(parsed(refused->body)["error"], "forbidden");
  BOOST_CHECK_EQUAL(
    cli
      .Post("/v1/kv", reader, R"([{"key":"k","value":1}])", "application/json")
      ->status,
    403);
  BOOST_CHECK_EQUAL(cli.Get("/v1/kv/k", reader)->status, 404);
  BOOST_CHECK_EQUAL(cli.Put("/v1/kv/k", writer, "v", "text/plain")->status,
                    204);
  BOOST_CHECK_EQUAL(cli.Get("/v1/kv/k", reader)->body, "v");
  BOOST_CHECK_EQUAL(cli.Get("/v1/kv/k", writer)->body, "v");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(http_api_operator_options)

BOOST_AUTO_TEST_CASE(the_size_and_time_limits_reach_the_server) {
  scratch_dir dir;
  api_node a{dir.path,
             {"--http-max-body=100", "--http-max-url=64",
              "--http-max-header-fields=8", "--http-max-header-bytes=1KiB",
              "--http-read-timeout=300ms", "--http-idle-timeout=300ms"}};
  auto cli = a.client();
  BOOST_CHECK_EQUAL(
    cli.Put("/v1/kv/small", std::string(100, 's'), "text/plain")->status, 204);
  BOOST_CHECK_EQUAL(
    cli.Put("/v1/kv/big", std::string(101, 'b'), "text/plain")->status, 413);
  {
    raw_conn c{a.port};
    BOOST_REQUIRE(c.send_all(request("GET", "/v1/kv/" + std::string(60, 'u'))));
    BOOST_CHECK_EQUAL(c.read_response().status, 414);
  }
  {
    std::string fields;
    for (int i = 0; i < 9; ++i)
      fields += "X-F" + std::to_string(i) + ": 1\r\n";
    raw_conn c{a.port};
    BOOST_REQUIRE(c.send_all(request("GET", "/healthz", "", "", fields)));
    BOOST_CHECK_EQUAL(c.read_response().status, 431);
  }
  {
    raw_conn c{a.port};
    BOOST_REQUIRE(c.send_all(request(
      "GET", "/healthz", "", "", "X-Big: " + std::string(1100, 'x') + "\r\n")));
    BOOST_CHECK_EQUAL(c.read_response().status, 431);
  }
  {
    // A header that never ends: 408 at the 300 ms read deadline (the
    // default, 10 s, would outlast the 5 s this waits).
    raw_conn c{a.port};
    BOOST_REQUIRE(c.send_all("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    BOOST_CHECK_EQUAL(c.read_response(5s).status, 408);
  }
  {
    // An idle keep-alive connection is closed after 300 ms (default: 60 s).
    raw_conn c{a.port};
    BOOST_REQUIRE(c.send_all(request("GET", "/healthz")));
    BOOST_CHECK_EQUAL(c.read_response().status, 200);
    BOOST_CHECK(c.closed_within(5s));
  }
  still_serves(a, "after-limits");
}

BOOST_AUTO_TEST_CASE(the_connection_and_in_flight_caps_reach_the_server) {
  scratch_dir dir;
  api_node a{dir.path, {"--http-max-connections=3", "--http-max-in-flight=1"}};
  // A bulk load whose body has not all arrived holds the one slot.
  raw_conn load{a.port};
  std::string first = "{\"key\":\"held\",\"value\":1}\n";
  std::string rest(200, ' ');
  BOOST_REQUIRE(load.send_all(
    "POST /v1/kv HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
    "application/x-ndjson\r\nContent-Length: "
    + std::to_string(first.size() + rest.size()) + "\r\n\r\n" + first));
  raw_conn probe{a.port};
  raw_conn::reply r;
  BOOST_REQUIRE(eventually([&] {
    if (!probe.send_all(request("GET", "/healthz")))
      return false;
    r = probe.read_response();
    return r.status == 503;
  }));
  BOOST_CHECK(r.header.find("Retry-After: 1\r\n") != std::string::npos);
  BOOST_CHECK_EQUAL(parsed(r.body)["error"], "overloaded");
  // Three connections are open now (load, probe, this one); a fourth is
  // closed at once.
  raw_conn third{a.port};
  raw_conn fourth{a.port};
  BOOST_CHECK(fourth.closed_within(5s));
  BOOST_REQUIRE(third.send_all(request("GET", "/healthz")));
  BOOST_CHECK_EQUAL(third.read_response().status, 503);
  // The load finishes and frees its slot.
  BOOST_REQUIRE(load.send_all(rest));
  auto done = load.read_response();
  BOOST_CHECK_EQUAL(done.status, 200);
  BOOST_CHECK_EQUAL(parsed(done.body)["applied"], 1);
  BOOST_REQUIRE(probe.send_all(request("GET", "/v1/kv/held")));
  BOOST_CHECK_EQUAL(probe.read_response().status, 200);
}

BOOST_AUTO_TEST_CASE(the_write_timeout_reaches_the_server) {
  scratch_dir dir;
  api_node a{dir.path, {"--http-write-timeout=300ms"}};
  std::string big(1'000'000, 'w');
  BOOST_REQUIRE_EQUAL(a.client().Put("/v1/kv/big", big, "text/plain")->status,
                      204);
  auto timeouts = [&]() -> uint64_t {
    auto res = a.client().Get("/metrics");
    if (!res)
      return uint64_t{0};
    std::smatch m;
    static const std::regex line{
      R"(syncmesh_http_refused_total\{cause="timeout"\} (\d+))"};
    return std::regex_search(res->body, m, line) ? std::stoull(m[1])
                                                 : uint64_t{0};
  };
  auto before = timeouts();
  // 32 MB of answers asked for and never read: the socket buffers fill,
  // the server's write stalls, and 300 ms later it gives up on the client
  // (the default, 30 s, would outlast the 10 s this waits).
  raw_conn c{a.port};
  std::string gets;
  for (int i = 0; i < 32; ++i)
    gets += request("GET", "/v1/kv/big");
  BOOST_REQUIRE(c.send_all(gets));
  BOOST_CHECK(eventually([&] { return timeouts() > before; }));
  size_t got = 0;
  while (c.fill(5s)) {
    got += c.buf.size();
    c.buf.clear();
  }
  BOOST_CHECK_LT(got, 32u * big.size()); // closed before the end
  still_serves(a, "after-write-timeout");
}

BOOST_AUTO_TEST_CASE(https_with_cert_and_key_serves_the_api) {
  scratch_dir dir;
  auto cert = dir.path + "/cert.pem";
  auto key = dir.path + "/key.pem";
  make_self_signed(cert, key);
  api_node a{dir.path, {"--http-cert=" + cert, "--http-key=" + key}};
  httplib::SSLClient tls{a.host, a.port};
  tls.enable_server_certificate_verification(false); // self-signed
  tls.set_connection_timeout(5);
  tls.set_read_timeout(20);
  auto put = tls.Put("/v1/kv/over-tls", "secret", "text/plain");
  BOOST_REQUIRE_MESSAGE(put,
                        "no HTTPS answer: " << httplib::to_string(put.error()));
  BOOST_CHECK_EQUAL(put->status, 204);
  auto got = tls.Get("/v1/kv/over-tls");
  BOOST_REQUIRE(got);
  BOOST_CHECK_EQUAL(got->body, "secret");
  // Plain HTTP on the HTTPS port gets no answer.
  auto plain = a.client().Get("/healthz");
  BOOST_CHECK(!plain || plain->status != 200);
  BOOST_CHECK_EQUAL(tls.Get("/healthz")->status, 200);
}

BOOST_AUTO_TEST_CASE(bad_tls_options_exit_2_with_one_line) {
  scratch_dir dir;
  auto log = dir.path + "/tls.log";
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv{SYNCMESH_NODE_BIN, "--port=0",
                                  "--http=127.0.0.1:0", "--log-level=error"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    child_process p{argv, log};
    return p.wait(10s);
  };
  BOOST_CHECK_EQUAL(run({"--http-cert=" + dir.path + "/missing.pem",
                         "--http-key=" + dir.path + "/missing-key.pem"}),
                    2);
  auto text = slurp(log);
  BOOST_CHECK_MESSAGE(text.rfind("syncmesh-node: --http-cert: ", 0) == 0
                        && text.find("missing.pem") != std::string::npos
                        && text.find('\n') == text.size() - 1,
                      text);
  BOOST_CHECK_EQUAL(run({"--http-cert=" + dir.path + "/c.pem"}), 2);
  BOOST_CHECK_EQUAL(
    slurp(log),
    "syncmesh-node: --http-cert needs --http-key (HTTPS needs both)\n");
}

BOOST_AUTO_TEST_CASE(http_open_says_which_endpoints_need_no_token) {
  scratch_dir dir;
  auto tokens = dir.path + "/tokens";
  std::ofstream{tokens} << "read reader-token-0123456789\n";
  std::filesystem::permissions(tokens, std::filesystem::perms::owner_read
                                         | std::filesystem::perms::owner_write);
  // The default: probes open, metrics behind the token.
  api_node a{dir.path, {"--http-token-file=" + tokens}};
  BOOST_CHECK_EQUAL(a.status_of("/healthz"), 200);
  BOOST_CHECK_EQUAL(a.status_of("/readyz"), 200);
  BOOST_CHECK_EQUAL(a.status_of("/metrics"), 401);
  BOOST_CHECK_EQUAL(a.status_of("/v1/status"), 401);
  // Metrics for an unauthenticated scraper, health behind the token.
  api_node b{dir.path, {"--http-token-file=" + tokens, "--http-open=metrics"}};
  auto scrape = b.client().Get("/metrics");
  BOOST_REQUIRE(scrape);
  BOOST_CHECK_EQUAL(scrape->status, 200);
  BOOST_CHECK(scrape->body.find("syncmesh_") != std::string::npos);
  BOOST_CHECK_EQUAL(b.status_of("/healthz"), 401);
  BOOST_CHECK_EQUAL(b.status_of("/readyz"), 401);
  BOOST_CHECK_EQUAL(b.status_of("/v1/status"), 401);
  // Opening metrics opens nothing else: a write still needs a token.
  BOOST_CHECK_EQUAL(b.client().Put("/v1/kv/k", "v", "text/plain")->status, 401);
}

BOOST_AUTO_TEST_CASE(allowed_hosts_and_origins_widen_the_checks) {
  scratch_dir dir;
  auto host_status = [](const api_node& n, const std::string& host) {
    raw_conn c{n.port};
    BOOST_REQUIRE(
      c.send_all("GET /v1/status HTTP/1.1\r\nHost: " + host + "\r\n\r\n"));
    return c.read_response().status;
  };
  auto origin_status = [](const api_node& n, const std::string& origin) {
    raw_conn c{n.port};
    BOOST_REQUIRE(c.send_all(request("PUT", "/v1/kv/o", "v", "text/plain",
                                     "Origin: " + origin + "\r\n")));
    return c.read_response().status;
  };
  api_node plain{dir.path, {}};
  BOOST_CHECK_EQUAL(host_status(plain, "api.example.com"), 421);
  BOOST_CHECK_EQUAL(origin_status(plain, "https://dash.example.com"), 403);
  api_node open{dir.path,
                {"--http-allowed-hosts=api.example.com,Node1",
                 "--http-allowed-origins=https://dash.example.com"}};
  BOOST_CHECK_EQUAL(host_status(open, "api.example.com"), 200);
  BOOST_CHECK_EQUAL(host_status(open, "node1:7441"), 200);
  BOOST_CHECK_EQUAL(host_status(open, "evil.example"), 421);
  BOOST_CHECK_EQUAL(origin_status(open, "https://dash.example.com"), 204);
  BOOST_CHECK_EQUAL(origin_status(open, "https://evil.example"), 403);
  BOOST_CHECK_EQUAL(origin_status(open, "http://dash.example.com"), 403);
}

BOOST_AUTO_TEST_SUITE_END()

// -- clock discipline (issue 16) ----------------------------------------------

namespace {

/// A scripted peer of `n` (over TCP) whose clock runs `offset_us` ahead: it
/// says hello and answers the node's pings, until `done` holds.
void clocked_peer(syncmesh::test::raw_peer& peer, int64_t offset_us,
                  const std::function<bool()>& done) {
  syncmesh::config defaults;
  auto skewed_now = [offset_us] {
    return static_cast<uint64_t>(
      static_cast<int64_t>(syncmesh::system_wall_clock()()) + offset_us);
  };
  auto hello
    = syncmesh::make_hello("clock-peer", syncmesh::protocol_id(defaults),
                           "127.0.0.1", 1, syncmesh::hello_terms_of(defaults));
  hello.mutable_hello()->set_wall_us(skewed_now());
  std::string out;
  BOOST_REQUIRE(syncmesh::append_frame(out, hello, 1 << 20));
  peer.send(out);
  syncmesh::frame_decoder decoder;
  BOOST_REQUIRE(eventually(
    [&] {
      bool closed = false;
      decoder.feed(peer.read_until_closed(50ms, closed));
      std::string payload;
      while (decoder.next(payload) == syncmesh::frame_status::ok) {
        syncmesh::pb::Envelope env;
        if (!syncmesh::parse_envelope(payload, env).empty() || !env.has_ping())
          continue;
        syncmesh::pb::Envelope pong;
        pong.set_hops_left(1);
        pong.mutable_pong()->set_nonce(env.ping().nonce());
        pong.mutable_pong()->set_sent_us(env.ping().sent_us());
        pong.mutable_pong()->set_ping_wall_us(env.ping().wall_us());
        pong.mutable_pong()->set_wall_us(skewed_now());
        std::string frame;
        syncmesh::append_frame(frame, pong, 1 << 20);
        peer.send(frame);
      }
      return done();
    },
    10s));
}

uint16_t peer_port(const api_node& n) {
  return static_cast<uint16_t>(
    std::stoi(n.listen.substr(n.listen.rfind(':') + 1)));
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(http_api_clock, one_node)

// Its only peer 2 s off, a node with the default 500 ms bound refuses the
// peer and fences itself (the two-node case): writes get 503 clock_offset,
// /v1/status and /metrics say so.
BOOST_AUTO_TEST_CASE(a_node_whose_only_peer_is_2s_off_answers_503) {
  still_serves(a, "before");
  auto cli = a.client();
  auto fenced = [&] {
    auto res = cli.Get("/v1/status");
    return res && parsed(res->body)["clock"]["fenced"] == true;
  };
  syncmesh::test::raw_peer peer{peer_port(a)};
  clocked_peer(peer, 2'000'000, fenced);
  auto status = parsed(cli.Get("/v1/status")->body)["clock"];
  BOOST_CHECK_EQUAL(status["max_offset_us"], 500000);
  BOOST_REQUIRE_EQUAL(status["peers"].size(), 1u);
  auto offset = status["peers"][0]["offset_us"].get<int64_t>();
  BOOST_CHECK_GT(offset, 1'900'000);
  BOOST_CHECK_LT(offset, 2'100'000);
  BOOST_CHECK_EQUAL(status["peers"][0]["beyond"], true);
  auto put = cli.Put("/v1/kv/k", "v", "text/plain");
  BOOST_REQUIRE(put);
  BOOST_CHECK_EQUAL(put->status, 503);
  BOOST_CHECK_EQUAL(parsed(put->body)["error"], "clock_offset");
  BOOST_CHECK_EQUAL(a.status_of("/v1/kv/k"), 404);
  BOOST_CHECK_EQUAL(cli.Get("/v1/kv/before")->body, "fine");
  auto metrics = cli.Get("/metrics")->body;
  BOOST_CHECK(metrics.find("syncmesh_clock_fenced 1") != std::string::npos);
  BOOST_CHECK(metrics.find("syncmesh_clock_offset_seconds{peer=\"")
              != std::string::npos);
  BOOST_CHECK(metrics.find("syncmesh_clock_total{kind=\"refused_writes\"} 1")
              != std::string::npos);
}

// Within the bound the same peer is accepted and the node keeps writing.
BOOST_AUTO_TEST_CASE(a_peer_100ms_off_is_accepted_and_shown) {
  auto cli = a.client();
  syncmesh::test::raw_peer peer{peer_port(a)};
  clocked_peer(peer, 100'000, [&] {
    auto res = cli.Get("/v1/status");
    return res && parsed(res->body)["clock"]["peers"].size() == 1;
  });
  auto status = parsed(cli.Get("/v1/status")->body)["clock"];
  BOOST_CHECK_EQUAL(status["fenced"], false);
  BOOST_CHECK_EQUAL(status["peers"][0]["beyond"], false);
  still_serves(a, "after");
}

BOOST_AUTO_TEST_SUITE_END()
