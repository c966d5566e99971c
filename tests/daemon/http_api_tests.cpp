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
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "support/eventually.hpp"
#include "support/process.hpp"
#include "support/scratch_dir.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using syncmesh::test::child_process;
using syncmesh::test::eventually;
using syncmesh::test::scratch_dir;

namespace {

/// A syncmesh-node with its API on an OS-picked port.
struct api_node {
  std::unique_ptr<child_process> proc;
  std::string id;
  std::string listen;
  std::string host;
  uint16_t port = 0;

  api_node(const std::string& dir, std::vector<std::string> extra) {
    static int counter = 0;
    auto log = dir + "/api-node" + std::to_string(counter++) + ".log";
    std::vector<std::string> argv{SYNCMESH_NODE_BIN,
                                  "--port=0",
                                  "--http=127.0.0.1:0",
                                  "--log-level=warning",
                                  "--heartbeat-interval=100ms",
                                  "--peer-timeout=1s",
                                  "--anti-entropy-interval=300ms",
                                  "--redial-max=300ms"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = std::make_unique<child_process>(argv, log);
    auto line = proc->read_line(10s);
    std::smatch m;
    static const std::regex ready{
      R"(^syncmesh-node ready node=([0-9a-f]+) listen=(\S+) http=(\S+):(\d+)$)"};
    BOOST_REQUIRE_MESSAGE(std::regex_match(line, m, ready),
                          "no ready line, got '" << line << "'");
    id = m[1];
    listen = m[2];
    host = m[3];
    port = static_cast<uint16_t>(std::stoi(m[4]));
  }

  httplib::Client client() const {
    httplib::Client cli{host, port};
    cli.set_connection_timeout(5);
    cli.set_read_timeout(20);
    return cli;
  }

  /// The node's resident memory in KiB (VmRSS).
  long rss_kib() const {
    std::ifstream in{"/proc/" + std::to_string(proc->pid()) + "/status"};
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("VmRSS:", 0) == 0)
        return std::stol(line.substr(6));
    return -1;
  }

  int status_of(const std::string& path) const {
    auto res = client().Get(path);
    return res ? res->status : 0;
  }
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

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(http_api_security)

BOOST_AUTO_TEST_CASE(a_batch_with_a_leased_key_applies_nothing) {
  scratch_dir dir;
  api_node a{dir.path, {}};
  api_node b{dir.path, {"--peers=" + a.listen}};
  BOOST_REQUIRE(eventually([&] { return b.status_of("/readyz") == 200; }));
  BOOST_REQUIRE_EQUAL(a.client().Put("/v1/kv/owned", "a", "text/plain")->status,
                      204);
  BOOST_REQUIRE(eventually([&] { return b.status_of("/v1/kv/owned") == 200; }));
  auto res = b.client().Post(
    "/v1/kv",
    R"([{"key":"fresh","value":1},{"key":"owned","value":2},{"key":"gone","delete":true}])",
    "application/json");
  BOOST_REQUIRE(res);
  BOOST_CHECK_EQUAL(res->status, 409);
  auto err = parsed(res->body);
  BOOST_CHECK_EQUAL(err["error"], "lease");
  BOOST_CHECK_EQUAL(err["owner"], a.id);
  BOOST_REQUIRE(err["keys"].is_array());
  BOOST_CHECK_EQUAL(err["keys"][0]["key"], "owned");
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
