// The HTTP server alone (no CAF, no node): a toy dispatch, attacked with
// raw sockets. Every bound gets an attack that asserts the status, the
// counter and a memory bound, then an honest request that still works.
// Timeouts are small (hundreds of ms) so deadlines pass quickly; waiting
// is always a poll with a deadline, never a sleep standing for an event.

#define BOOST_TEST_MODULE http_server_tests
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "actors/tls_identity.hpp"
#include "node/daemon/http_auth.hpp"
#include "node/daemon/http_server.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/self_signed.hpp"

using namespace std::chrono_literals;
using namespace syncmesh;
using namespace syncmesh::http;
using syncmesh::test::make_self_signed;

namespace {

using clock_type = std::chrono::steady_clock;

struct ignore_sigpipe {
  ignore_sigpipe() { signal(SIGPIPE, SIG_IGN); }
};
BOOST_TEST_GLOBAL_FIXTURE(ignore_sigpipe);

/// The shared poll (sleeps between tries), with this file's 5 s default.
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = 5s) {
  return syncmesh::test::eventually(std::move(done), limit);
}

/// Resident set size of this process in bytes (server and clients).
uint64_t rss_bytes() {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stoull(line.substr(6)) * 1024;
  return 0;
}

/// A temporary directory removed at the end of the test.
struct temp_dir {
  std::string path;
  temp_dir() {
    char templ[] = "/tmp/http_server_tests.XXXXXX";
    path = mkdtemp(templ);
  }
  ~temp_dir() {
    std::string cmd = "rm -rf '" + path + "'";
    if (std::system(cmd.c_str()) != 0)
      std::fprintf(stderr, "could not remove %s\n", path.c_str());
  }
  std::string write(const std::string& name, const std::string& text) const {
    auto file = path + "/" + name;
    std::ofstream{file} << text;
    return file;
  }
};

/// One parsed response.
struct parsed_response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool chunked = false;

  std::string header(const std::string& name) const {
    for (const auto& [key, value] : headers)
      if (key == name)
        return value;
    return {};
  }
};

std::string lower(std::string text) {
  for (auto& c : text)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

/// Parses one complete response at the front of `data`; returns the bytes
/// it took, 0 when incomplete. `at_eof`: the connection ended (a body
/// without length runs to the end).
size_t parse_response(const std::string& data, bool at_eof,
                      parsed_response& out) {
  auto head_end = data.find("\r\n\r\n");
  if (head_end == std::string::npos)
    return 0;
  out = {};
  std::istringstream head{data.substr(0, head_end)};
  std::string line;
  std::getline(head, line);
  out.status = std::atoi(line.substr(9, 3).c_str());
  long length = -1;
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    auto name = lower(line.substr(0, colon));
    auto value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ')
      value.erase(0, 1);
    if (name == "content-length")
      length = std::atol(value.c_str());
    if (name == "transfer-encoding" && lower(value) == "chunked")
      out.chunked = true;
    out.headers.emplace_back(name, value);
  }
  size_t pos = head_end + 4;
  if (out.chunked) {
    for (;;) {
      auto size_end = data.find("\r\n", pos);
      if (size_end == std::string::npos)
        return 0;
      auto size = std::stoul(data.substr(pos, size_end - pos), nullptr, 16);
      if (data.size() < size_end + 2 + size + 2)
        return 0;
      out.body += data.substr(size_end + 2, size);
      pos = size_end + 2 + size + 2;
      if (size == 0)
        return pos;
    }
  }
  if (length < 0) {
    if (!at_eof)
      return 0;
    out.body = data.substr(pos);
    return data.size();
  }
  if (data.size() < pos + static_cast<size_t>(length))
    return 0;
  out.body = data.substr(pos, length);
  return pos + length;
}

/// A blocking-with-deadlines client on a raw TCP socket.
class raw_client {
public:
  explicit raw_client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_
      = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~raw_client() { close(); }
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

  /// Sends everything; false when the connection broke or it timed out.
  bool send(const std::string& data, std::chrono::milliseconds limit = 5s) {
    auto deadline = clock_type::now() + limit;
    size_t sent = 0;
    while (sent < data.size()) {
      pollfd p{fd_, POLLOUT, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - clock_type::now());
      if (left.count() <= 0 || ::poll(&p, 1, left.count()) <= 0)
        return false;
      auto n = ::send(fd_, data.data() + sent, data.size() - sent,
                      MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
          continue;
        return false;
      }
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  /// Reads more into `pending_`; 1 read, 0 EOF/error, -1 timeout.
  int fill(clock_type::time_point deadline) {
    pollfd p{fd_, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - clock_type::now());
    if (left.count() <= 0 || ::poll(&p, 1, left.count()) <= 0)
      return -1;
    char buf[65536];
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      eof_ = true;
      return 0;
    }
    pending_.append(buf, static_cast<size_t>(n));
    return 1;
  }

  /// The next response, or nullopt at EOF/timeout.
  std::optional<parsed_response> read_response(std::chrono::milliseconds limit
                                               = 5s) {
    auto deadline = clock_type::now() + limit;
    for (;;) {
      parsed_response res;
      if (auto used = parse_response(pending_, eof_, res); used > 0) {
        pending_.erase(0, used);
        return res;
      }
      if (eof_ || fill(deadline) != 1) {
        if (eof_) {
          if (auto used = parse_response(pending_, true, res); used > 0) {
            pending_.erase(0, used);
            return res;
          }
        }
        return std::nullopt;
      }
    }
  }

  /// Reads until `needle` arrived; false at EOF/timeout.
  bool read_until(const std::string& needle,
                  std::chrono::milliseconds limit = 5s) {
    auto deadline = clock_type::now() + limit;
    while (pending_.find(needle) == std::string::npos)
      if (fill(deadline) != 1)
        return false;
    return true;
  }

  /// True when the server closed the connection within `limit` (what it
  /// sent before is kept in `pending`).
  bool closed_within(std::chrono::milliseconds limit = 5s) {
    auto deadline = clock_type::now() + limit;
    while (!eof_)
      if (fill(deadline) == -1)
        return false;
    return true;
  }

  std::string& pending() { return pending_; }

private:
  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string pending_;
};

std::string get(const std::string& path, const std::string& extra = {}) {
  return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n" + extra + "\r\n";
}

std::string post(const std::string& path, const std::string& body,
                 const std::string& extra = {}) {
  return "POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Length: "
         + std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

// -- the toy API
// ---------------------------------------------------------------

/// A stream of `total` chunks ("c0\n", "c1\n", ...); with `hold`, it
/// delivers one chunk and then keeps the next `deliver` until cancelled.
class counting_source final : public chunk_source {
public:
  counting_source(int total, bool hold, std::atomic<int>& cancels,
                  size_t pad = 0)
      : total_(total), hold_(hold), cancels_(cancels), pad_(pad) {}
  void next(deliver_fn deliver) override {
    if (hold_ && sent_ >= 1) {
      std::lock_guard<std::mutex> guard{mutex_};
      held_ = std::move(deliver);
      return;
    }
    auto chunk = "c" + std::to_string(sent_) + std::string(pad_, '.') + "\n";
    ++sent_;
    bool last = !hold_ && sent_ >= total_;
    // Deliver from another thread, as the API will.
    std::thread{[deliver = std::move(deliver), chunk, last] {
      deliver(chunk, last);
    }}.detach();
  }
  void cancel() override {
    cancels_.fetch_add(1);
    std::lock_guard<std::mutex> guard{mutex_};
    held_ = nullptr;
  }

private:
  int total_;
  bool hold_;
  std::atomic<int>& cancels_;
  size_t pad_;
  int sent_ = 0;
  std::mutex mutex_;
  deliver_fn held_;
};

/// The routes: /echo (method, body, granted role), /healthz, /slow (held
/// until the test releases it, then answered from the test's thread),
/// /stream?n=N and /stream?hold=1, and /bulk (read in pieces, counted).
struct toy_api {
  std::mutex mutex;
  std::vector<responder> held;
  std::atomic<int> cancels{0};
  std::atomic<uint64_t> bulk_bytes{0};
  std::atomic<size_t> max_piece{0};
  std::atomic<int> early_read_errors{0};

  size_t held_count() {
    std::lock_guard<std::mutex> guard{mutex};
    return held.size();
  }

  /// Answers every held /slow request from this thread.
  void release(int status = 200) {
    std::vector<responder> now;
    {
      std::lock_guard<std::mutex> guard{mutex};
      now.swap(held);
    }
    for (auto& answer : now) {
      response res;
      res.status = status;
      res.content_type = "text/plain";
      res.body = "slow done";
      answer(std::move(res));
    }
  }

  http_dispatch dispatch() {
    http_dispatch d;
    d.whole = [this](request&& req, responder answer) {
      response res;
      res.content_type = "text/plain";
      if (req.path == "/healthz") {
        res.body = "ok";
      } else if (req.path == "/echo") {
        res.body = req.method + " " + req.body;
        res.headers.emplace_back("X-Granted",
                                 std::string{to_string(req.granted)});
        res.headers.emplace_back("X-Query", std::string{req.param("q")});
      } else if (req.path == "/big") {
        res.body.assign(16 * 1024 * 1024, 'z');
      } else if (req.path == "/slow") {
        std::lock_guard<std::mutex> guard{mutex};
        held.push_back(std::move(answer));
        return;
      } else if (req.path == "/stream") {
        int n = req.has_param("n")
                  ? std::atoi(std::string{req.param("n")}.c_str())
                  : 1;
        res.content_type = "text/event-stream";
        res.stream = std::make_shared<counting_source>(
          n, req.has_param("hold"), cancels,
          std::strtoul(std::string{req.param("pad")}.c_str(), nullptr, 10));
      } else {
        res = json_error(404, "not_found", "no route " + req.path);
      }
      answer(std::move(res));
    };
    d.reads_in_pieces = [](std::string_view method, std::string_view path) {
      return method == "POST" && path == "/bulk";
    };
    d.pieces = [this](request&& req, std::shared_ptr<body_reader> reader,
                      responder answer) {
      if (req.has_param("early")) {
        // Answers while a read is still waiting for the body.
        reader->read([this](std::string_view, bool, std::string_view error) {
          if (!error.empty())
            early_read_errors.fetch_add(1);
        });
        response res;
        res.body = "early";
        answer(std::move(res));
        return;
      }
      auto count = std::make_shared<uint64_t>(0);
      auto step = std::make_shared<body_reader::got_fn>();
      *step = [this, reader, answer, count,
               step](std::string_view piece, bool end, std::string_view error) {
        if (!error.empty()) {
          answer(json_error(error == "body_too_large" ? 413 : 400, "bulk",
                            std::string{error}));
          *step = nullptr; // breaks the cycle
          return;
        }
        *count += piece.size();
        if (piece.size() > max_piece.load())
          max_piece = piece.size();
        if (end) {
          bulk_bytes = *count;
          response res;
          res.content_type = "application/json";
          res.body = "{\"bytes\":" + std::to_string(*count) + "}";
          answer(std::move(res));
          *step = nullptr;
          return;
        }
        reader->read(*step);
      };
      reader->read(*step);
    };
    return d;
  }
};

/// Deadlines: generous by default (a loaded machine or a sanitizer build
/// must meet them when honest, e.g. a writer thread that starts late);
/// tests of a deadline set a short one themselves.
server_options test_options() {
  server_options o;
  o.header_timeout = 5s;
  o.body_timeout = 5s;
  o.idle_timeout = 5s;
  o.write_timeout = 1s;
  o.max_body = 1024 * 1024;
  return o;
}

/// A toy API behind a started server on 127.0.0.1 (port from the OS).
struct fixture {
  toy_api api;
  std::atomic<size_t> log_lines{0};
  std::unique_ptr<http_server> server;
  uint16_t port = 0;

  explicit fixture(server_options options = test_options()) {
    options.log = [this](const std::string&) {
      log_lines.fetch_add(1);
    };
    server = std::make_unique<http_server>(std::move(options), api.dispatch());
    std::string error;
    port = server->start("127.0.0.1", 0, error);
    BOOST_REQUIRE_MESSAGE(port != 0, error);
  }
  ~fixture() { server->stop(); }

  server_stats stats() const { return server->stats(); }

  /// A fresh connection gets 200 for GET /healthz.
  bool healthy() {
    raw_client c{port};
    if (!c.send(get("/healthz")))
      return false;
    auto res = c.read_response();
    return res && res->status == 200 && res->body == "ok";
  }
};

/// One request on a fresh connection; its response (nullopt when none).
std::optional<parsed_response> ask(uint16_t port, const std::string& raw) {
  raw_client c{port};
  if (!c.send(raw))
    return std::nullopt;
  return c.read_response();
}

} // namespace

// -- admission rules as plain functions
// ------------------------------------------

BOOST_AUTO_TEST_SUITE(rules)

BOOST_AUTO_TEST_CASE(token_file_parses_roles_comments_and_names) {
  token_table tokens;
  std::string error;
  BOOST_REQUIRE_MESSAGE(tokens.parse("# operators\n"
                                     "\n"
                                     "admin  0123456789abcdef0123 alice\n"
                                     "read\tREADREADREADREAD42\n"
                                     "  write writewritewritewrite bob  \n",
                                     error),
                        error);
  BOOST_TEST(tokens.size() == 3u);
  BOOST_TEST((tokens.lookup("0123456789abcdef0123") == role::admin));
  BOOST_TEST((tokens.lookup("READREADREADREAD42") == role::read));
  BOOST_TEST((tokens.lookup("writewritewritewrite") == role::write));
  BOOST_TEST(tokens.name_of("writewritewritewrite") == "bob");
  BOOST_TEST(!tokens.lookup("0123456789abcdef012"));
  BOOST_TEST(!tokens.lookup(""));
  BOOST_TEST(!tokens.lookup("nope"));
}

BOOST_AUTO_TEST_CASE(token_file_errors_name_the_line_not_the_token) {
  token_table tokens;
  std::string error;
  BOOST_TEST(!tokens.parse("admin short\n", error));
  BOOST_TEST(error.find("line 1") != std::string::npos);
  BOOST_TEST(error.find("shorter than 16") != std::string::npos);
  BOOST_TEST(!tokens.parse("# c\nroot 0123456789abcdef0123\n", error));
  BOOST_TEST(error.find("line 2") != std::string::npos);
  BOOST_TEST(error.find("unknown role") != std::string::npos);
  BOOST_TEST(!tokens.parse("read\n", error));
  BOOST_TEST(!tokens.parse("read a b c d\n", error));
  BOOST_TEST(!tokens.parse("read 0123456789abcdef0123\nadmin "
                           "0123456789abcdef0123\n",
                           error));
  BOOST_TEST(error.find("twice") != std::string::npos);
  BOOST_TEST(!tokens.load_file("/nonexistent/tokens", error));
  BOOST_TEST(error.find("--http-token-file: cannot read /nonexistent/tokens")
             == 0u);
}

BOOST_AUTO_TEST_CASE(roles_are_ordered) {
  BOOST_TEST(allows(role::admin, role::write));
  BOOST_TEST(allows(role::write, role::read));
  BOOST_TEST(allows(role::read, role::read));
  BOOST_TEST(!allows(role::read, role::write));
  BOOST_TEST(!allows(role::none, role::read));
  BOOST_TEST(allows(role::none, role::none));
  BOOST_TEST((parse_role("write") == role::write));
  BOOST_TEST(!parse_role("root"));
}

BOOST_AUTO_TEST_CASE(bearer_header_is_parsed) {
  BOOST_TEST(bearer_token("Bearer abc") == "abc");
  BOOST_TEST(bearer_token("bearer   abc ") == "abc");
  BOOST_TEST(bearer_token("Basic abc") == "");
  BOOST_TEST(bearer_token("Bearer") == "");
  BOOST_TEST(bearer_token("Bearerabc") == "");
}

BOOST_AUTO_TEST_CASE(host_rules_accept_our_names_and_ip_literals) {
  host_policy hosts{{"localhost", "Node1.Example.com."}};
  BOOST_TEST(hosts.allows("localhost"));
  BOOST_TEST(hosts.allows("LOCALHOST:8080"));
  BOOST_TEST(hosts.allows("node1.example.com:80"));
  BOOST_TEST(hosts.allows("node1.example.com."));
  BOOST_TEST(hosts.allows("127.0.0.1:8080"));
  BOOST_TEST(hosts.allows("10.1.2.3"));
  BOOST_TEST(hosts.allows("[::1]:8080"));
  BOOST_TEST(hosts.allows("[fe80::1]"));
  BOOST_TEST(!hosts.allows("evil.example"));
  BOOST_TEST(!hosts.allows("localhost.evil.example"));
  BOOST_TEST(!hosts.allows(""));
  BOOST_TEST(!hosts.allows("::1"));            // v6 needs brackets
  BOOST_TEST(!hosts.allows("[evil.example]")); // brackets hold v6 only
  BOOST_TEST(!hosts.allows("localhost:80x"));
  BOOST_TEST(!hosts.allows("local host"));
  std::string host, port;
  BOOST_TEST(split_host_port("[::1]:9", host, port));
  BOOST_TEST(host == "::1");
  BOOST_TEST(port == "9");
}

BOOST_AUTO_TEST_CASE(origin_rules_refuse_cross_site_writes_only) {
  std::vector<std::string> none;
  std::vector<std::string> dash{"https://dash.example.com"};
  // No Origin (curl, servers): fine.
  BOOST_TEST(origin_allows("POST", "", "localhost:8080", false, none));
  // Reads are fine from anywhere (no CORS headers: the page cannot read).
  BOOST_TEST(
    origin_allows("GET", "http://evil.example", "localhost", false, none));
  BOOST_TEST(
    origin_allows("OPTIONS", "http://evil.example", "localhost", false, none));
  BOOST_TEST(!origin_allows("POST", "http://evil.example", "localhost:8080",
                            false, none));
  BOOST_TEST(!origin_allows("PUT", "null", "localhost:8080", false, none));
  BOOST_TEST(!origin_allows("DELETE", "http://localhost:8081", "localhost:8080",
                            false, none));
  // Same origin: scheme, host and port match (default ports folded).
  BOOST_TEST(origin_allows("POST", "http://localhost:8080", "localhost:8080",
                           false, none));
  BOOST_TEST(
    origin_allows("POST", "http://LOCALHOST", "localhost:80", false, none));
  BOOST_TEST(!origin_allows("POST", "http://localhost:8080", "localhost:8080",
                            true, none)); // we are https
  BOOST_TEST(origin_allows("POST", "https://localhost:8443", "localhost:8443",
                           true, none));
  BOOST_TEST(origin_allows("POST", "https://dash.example.com", "localhost:8080",
                           false, dash));
  BOOST_TEST(origin_allows("PUT", "https://dash.example.com:443",
                           "localhost:8080", false, dash));
  BOOST_TEST(!origin_allows("PUT", "http://dash.example.com", "localhost:8080",
                            false, dash));
}

BOOST_AUTO_TEST_CASE(json_error_escapes) {
  auto res = json_error(400, "bad", "quote \" back \\ nl \n ctl \x01");
  BOOST_TEST(res.status == 400);
  BOOST_TEST(res.content_type == "application/json");
  BOOST_TEST(res.body
             == "{\"error\":\"bad\",\"message\":\"quote \\\" back \\\\ nl "
                "\\n ctl \\u0001\"}");
}

BOOST_AUTO_TEST_SUITE_END()

// -- the server under honest use
// -------------------------------------------------

BOOST_AUTO_TEST_SUITE(serving)

BOOST_AUTO_TEST_CASE(keep_alive_serves_1000_requests_on_one_connection) {
  fixture f;
  raw_client c{f.port};
  for (int i = 0; i < 1000; ++i) {
    auto body = "n" + std::to_string(i);
    BOOST_REQUIRE(c.send(post("/echo?q=a%20b+c", body)));
    auto res = c.read_response();
    BOOST_REQUIRE(res);
    BOOST_REQUIRE_EQUAL(res->status, 200);
    BOOST_REQUIRE_EQUAL(res->body, "POST " + body);
    BOOST_REQUIRE_EQUAL(res->header("x-query"), "a b c");
  }
  BOOST_TEST(f.stats().connections_accepted == 1u);
  BOOST_TEST(f.stats().requests == 1000u);
}

BOOST_AUTO_TEST_CASE(pipelined_requests_are_answered_in_order) {
  fixture f;
  raw_client c{f.port};
  BOOST_REQUIRE(
    c.send(post("/echo", "one") + post("/echo", "two") + get("/healthz")));
  auto a = c.read_response();
  auto b = c.read_response();
  auto h = c.read_response();
  BOOST_REQUIRE(a && b && h);
  BOOST_TEST(a->body == "POST one");
  BOOST_TEST(b->body == "POST two");
  BOOST_TEST(h->body == "ok");
}

BOOST_AUTO_TEST_CASE(chunked_body_within_the_limit_is_read) {
  fixture f;
  auto res = ask(f.port, "POST /echo HTTP/1.1\r\nHost: localhost\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"
                         "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 200);
  BOOST_TEST(res->body == "POST abcde");
}

BOOST_AUTO_TEST_CASE(expect_100_continue_is_honoured) {
  fixture f;
  raw_client c{f.port};
  BOOST_REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: localhost\r\n"
                       "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n"));
  BOOST_REQUIRE(c.read_until("HTTP/1.1 100 Continue\r\n\r\n"));
  c.pending().clear();
  BOOST_REQUIRE(c.send("abc"));
  auto res = c.read_response();
  BOOST_REQUIRE(res);
  BOOST_TEST(res->body == "POST abc");
}

BOOST_AUTO_TEST_CASE(http_10_without_keep_alive_is_closed_after_the_answer) {
  fixture f;
  raw_client c{f.port};
  BOOST_REQUIRE(c.send("GET /healthz HTTP/1.0\r\n\r\n"));
  auto res = c.read_response();
  BOOST_REQUIRE(res);
  BOOST_TEST(res->body == "ok");
  BOOST_TEST(c.closed_within(5s));
}

BOOST_AUTO_TEST_CASE(head_gets_the_length_without_the_body) {
  fixture f;
  raw_client c{f.port};
  BOOST_REQUIRE(c.send("HEAD /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
                       + get("/healthz")));
  BOOST_REQUIRE(c.read_until("\r\n\r\n"));
  BOOST_TEST(c.pending().find("Content-Length: 2") != std::string::npos);
  c.pending().erase(0, c.pending().find("\r\n\r\n") + 4);
  auto next = c.read_response();
  BOOST_REQUIRE(next);
  BOOST_TEST(next->body == "ok");
}

BOOST_AUTO_TEST_CASE(unknown_route_and_bad_target_answer_json) {
  fixture f;
  auto res = ask(f.port, get("/nope"));
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 404);
  BOOST_TEST(res->header("content-type") == "application/json");
  res = ask(f.port, get("/bad%zzescape"));
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 400);
  BOOST_TEST(res->body.find("\"error\"") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

// -- framing attacks (RFC 9112)
// --------------------------------------------------

BOOST_AUTO_TEST_SUITE(framing)

/// Sends `raw`, expects a 400 with a JSON body, then the connection closed.
void expect_400_and_close(fixture& f, const std::string& raw) {
  raw_client c{f.port};
  BOOST_REQUIRE(c.send(raw));
  auto res = c.read_response();
  BOOST_REQUIRE_MESSAGE(res, "no response to: " << raw);
  BOOST_TEST(res->status == 400, raw);
  BOOST_TEST(res->header("content-type") == "application/json");
  BOOST_TEST(c.closed_within(5s), "connection left open after: " << raw);
}

BOOST_AUTO_TEST_CASE(conflicting_content_lengths_are_refused) {
  fixture f;
  expect_400_and_close(f, "POST /echo HTTP/1.1\r\nHost: localhost\r\n"
                          "Content-Length: 3\r\nContent-Length: 4\r\n\r\n"
                          "abcd");
  expect_400_and_close(f, "POST /echo HTTP/1.1\r\nHost: localhost\r\n"
                          "Content-Length: 3\r\nContent-Length: 3\r\n\r\n"
                          "abc");
  expect_400_and_close(f, "POST /echo HTTP/1.1\r\nHost: localhost\r\n"
                          "Content-Length: 3, 4\r\n\r\nabcd");
  BOOST_TEST(f.stats().bad_framing >= 3u);
  BOOST_TEST(f.healthy());
}

BOOST_AUTO_TEST_CASE(obfuscated_transfer_encodings_are_refused) {
  fixture f;
  auto with_te = [](const std::string& te, const std::string& more = {}) {
    return "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: " + te
           + "\r\n" + more + "\r\n3\r\nabc\r\n0\r\n\r\n";
  };
  expect_400_and_close(f, with_te("chunked, identity"));
  expect_400_and_close(f, with_te("xchunked"));
  expect_400_and_close(f, with_te("identity"));
  expect_400_and_close(f, with_te("gzip, chunked"));
  expect_400_and_close(f, with_te("chunked", "Transfer-Encoding: chunked\r\n"));
  expect_400_and_close(f, with_te("chunked", "Content-Length: 3\r\n"));
  expect_400_and_close(f, "POST /echo HTTP/1.1\r\nHost: localhost\r\n"
                          "Content-Length: 3\r\nTransfer-Encoding: chunked"
                          "\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  BOOST_TEST(f.stats().bad_framing >= 7u);
  BOOST_TEST(f.healthy());
}

BOOST_AUTO_TEST_CASE(garbage_and_unknown_versions_are_refused) {
  fixture f;
  expect_400_and_close(f, "HELLO\r\n\r\n");
  expect_400_and_close(f, "GET / HTTP/2.0\r\nHost: localhost\r\n\r\n");
  expect_400_and_close(f,
                       "GET http://evil/ HTTP/1.1\r\nHost: localhost\r\n\r\n");
  BOOST_TEST(f.healthy());
}

BOOST_AUTO_TEST_SUITE_END()

// -- size limits
// ---------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(limits)

BOOST_AUTO_TEST_CASE(chunked_100mb_body_is_refused_after_about_max_body) {
  fixture f; // max_body 1 MiB
  auto rss_before = rss_bytes();
  raw_client c{f.port};
  BOOST_REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: localhost\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"));
  std::atomic<uint64_t> sent{0};
  std::atomic<bool> stop_writing{false};
  std::thread writer{[&] {
    std::string chunk = "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
    while (!stop_writing && sent < 100ull * 1024 * 1024) {
      if (!c.send(chunk, 2s))
        return;
      sent += 0x10000;
    }
  }};
  auto res = c.read_response(10s);
  stop_writing = true;
  writer.join();
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 413);
  BOOST_TEST(res->body.find("body_too_large") != std::string::npos);
  BOOST_TEST(f.stats().body_too_large == 1u);
  // What the server read (and at most held) stays near max_body, far from
  // the 100 MB the client wanted to send.
  BOOST_TEST_MESSAGE("100 MB chunked upload: server read "
                     << f.stats().bytes_read << " bytes, client sent "
                     << sent.load());
  BOOST_TEST(f.stats().bytes_read < 20u * 1024 * 1024,
             "bytes read " << f.stats().bytes_read);
  BOOST_TEST(sent.load() < 100ull * 1024 * 1024);
  c.close();
  BOOST_TEST(eventually([&] { return f.stats().connections_open == 0; }));
  BOOST_TEST(f.stats().request_bytes_held == 0u);
  auto rss_after = rss_bytes();
  BOOST_TEST(rss_after < rss_before + 20u * 1024 * 1024,
             "RSS grew by " << (rss_after - rss_before));
  BOOST_TEST(f.healthy());
}

BOOST_AUTO_TEST_CASE(declared_length_over_the_limit_is_refused_before_reading) {
  fixture f;
  raw_client c{f.port};
  BOOST_REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: localhost\r\n"
                       "Content-Length: 2000000\r\n\r\n"));
  auto res = c.read_response();
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 413);
  BOOST_TEST(c.closed_within(5s));
  BOOST_TEST(f.stats().bytes_read < 4096u);
}

BOOST_AUTO_TEST_CASE(too_many_header_lines_get_431) {
  fixture f;
  std::string lines;
  for (int i = 0; i < 200; ++i)
    lines += "X-Filler-" + std::to_string(i) + ": v\r\n";
  raw_client c{f.port};
  BOOST_REQUIRE(c.send(get("/healthz", lines)));
  auto res = c.read_response();
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 431);
  BOOST_TEST(c.closed_within(5s));
  BOOST_TEST(f.stats().header_too_large == 1u);
  BOOST_TEST(f.healthy());
}

BOOST_AUTO_TEST_CASE(one_megabyte_header_gets_431_with_bounded_memory) {
  fixture f;
  auto rss_before = rss_bytes();
  raw_client c{f.port};
  std::thread writer{[&] {
    std::string head = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n";
    std::string line = "X-Big: " + std::string(1000, 'y') + "\r\n";
    if (!c.send(head, 2s))
      return;
    for (int i = 0; i < 1000; ++i)
      if (!c.send(line, 2s))
        return;
  }};
  auto res = c.read_response(5s);
  writer.join();
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 431);
  BOOST_TEST(f.stats().header_too_large == 1u);
  c.close();
  BOOST_TEST(eventually([&] { return f.stats().connections_open == 0; }));
  BOOST_TEST(f.stats().request_bytes_held == 0u);
  BOOST_TEST(rss_bytes() < rss_before + 20u * 1024 * 1024);
  BOOST_TEST(f.healthy());
}

BOOST_AUTO_TEST_CASE(one_field_longer_than_max_url_is_still_431) {
  // Beast has parsed the request line and consumed it from the buffer when
  // the header passes its limit: the long field left in the buffer is not
  // the URL, and a short URL is not "too long".
  fixture f;
  raw_client c{f.port};
  std::thread writer{[&] {
    c.send(get("/healthz", "X-Long: " + std::string(20 * 1024, 'z') + "\r\n"),
           2s);
  }};
  auto res = c.read_response();
  writer.join();
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 431);
  BOOST_TEST(f.stats().header_too_large == 1u);
  BOOST_TEST(f.stats().url_too_long == 0u);
  BOOST_TEST(f.healthy());
}

BOOST_AUTO_TEST_CASE(url_of_100kb_gets_414) {
  fixture f;
  raw_client c{f.port};
  std::thread writer{[&] {
    c.send(get("/echo?q=" + std::string(100 * 1024, 'u')), 2s);
  }};
  auto res = c.read_response();
  writer.join();
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 414);
  // A URL over max_url that still fits the header limit: 414 as well.
  res = ask(f.port, get("/echo?q=" + std::string(9 * 1024, 'u')));
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 414);
  BOOST_TEST(f.stats().url_too_long == 2u);
  BOOST_TEST(f.healthy());
}

BOOST_AUTO_TEST_CASE(piecewise_body_arrives_in_bounded_pieces) {
  auto options = test_options();
  options.body_piece = 16 * 1024;
  options.max_piecewise_body = 3 * 1024 * 1024;
  fixture f{options};
  // 2 MiB, over max_body but under the piecewise limit, chunked.
  raw_client c{f.port};
  std::string request = "POST /bulk HTTP/1.1\r\nHost: localhost\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 32; ++i)
    request += "10000\r\n" + std::string(0x10000, 'b') + "\r\n";
  request += "0\r\n\r\n";
  std::atomic<bool> sent_all{false};
  std::thread writer{[&] {
    sent_all = c.send(request, 5s);
  }};
  auto res = c.read_response();
  writer.join();
  BOOST_REQUIRE_MESSAGE(
    res, "no answer; sent all: "
           << sent_all.load() << ", bulk bytes " << f.api.bulk_bytes.load()
           << ", read " << f.stats().bytes_read << ", timeouts "
           << f.stats().timeout << ", open " << f.stats().connections_open
           << ", in flight " << f.stats().in_flight << ", pending "
           << c.pending().size() << ", connected " << c.connected()
           << ", accepted " << f.stats().connections_accepted << ", refused "
           << f.stats().connections_refused << ", log lines "
           << f.log_lines.load());
  BOOST_TEST(res->status == 200);
  BOOST_TEST(res->body == "{\"bytes\":2097152}");
  BOOST_TEST(f.api.max_piece.load() <= 16u * 1024);
  // The connection stays usable.
  BOOST_REQUIRE(c.send(get("/healthz")));
  BOOST_TEST(c.read_response()->body == "ok");
  // Over the piecewise limit: the reader reports it, the API answers 413.
  raw_client big{f.port};
  std::thread big_writer{[&] {
    big.send("POST /bulk HTTP/1.1\r\nHost: localhost\r\n"
             "Transfer-Encoding: chunked\r\n\r\n",
             2s);
    for (int i = 0; i < 64; ++i)
      if (!big.send("10000\r\n" + std::string(0x10000, 'b') + "\r\n", 2s))
        return;
  }};
  auto refused = big.read_response();
  big_writer.join();
  BOOST_REQUIRE(refused);
  BOOST_TEST(refused->status == 413);
  BOOST_TEST(f.stats().body_too_large == 1u);
}

BOOST_AUTO_TEST_CASE(answer_before_the_body_is_read_closes_the_connection) {
  fixture f;
  raw_client c{f.port};
  BOOST_REQUIRE(c.send("POST /bulk?early=1 HTTP/1.1\r\nHost: localhost\r\n"
                       "Content-Length: 1000\r\n\r\n0123456789"));
  auto res = c.read_response();
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 200);
  BOOST_TEST(res->body == "early");
  BOOST_TEST(c.closed_within(5s));
  BOOST_TEST(eventually([&] { return f.api.early_read_errors.load() == 1; }));
  BOOST_TEST(f.healthy());
}

BOOST_AUTO_TEST_SUITE_END()

// -- slow and many clients
// -------------------------------------------------------

BOOST_AUTO_TEST_SUITE(slow_clients)

BOOST_AUTO_TEST_CASE(slowloris_does_not_delay_others_and_is_cut) {
  auto options = test_options();
  options.header_timeout = 2s; // room to see the others served first
  fixture f{options};
  std::vector<std::unique_ptr<raw_client>> slow;
  for (int i = 0; i < 16; ++i) {
    slow.push_back(std::make_unique<raw_client>(f.port));
    BOOST_REQUIRE(
      slow.back()->send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n"));
  }
  std::atomic<bool> stop_trickle{false};
  std::thread trickler{[&] {
    // One header byte per connection every 20 ms: each byte resets any
    // per-read timer, never the header deadline.
    while (!stop_trickle) {
      for (auto& c : slow)
        c->send("X", 50ms);
      std::this_thread::sleep_for(20ms);
    }
  }};
  BOOST_REQUIRE(eventually([&] { return f.stats().connections_open >= 16; }));
  // A normal request is answered while they hang.
  BOOST_TEST(f.healthy());
  BOOST_TEST(f.stats().timeout == 0u);
  BOOST_TEST(f.stats().connections_open >= 16u);
  // All 16 are cut at the deadline (408 or close), not kept by trickling.
  for (auto& c : slow)
    BOOST_TEST(c->closed_within(6s));
  stop_trickle = true;
  trickler.join();
  BOOST_TEST(f.stats().timeout >= 16u);
  for (auto& c : slow)
    if (!c->pending().empty())
      BOOST_TEST(c->pending().rfind("HTTP/1.1 408", 0) == 0u);
  // Sixteen refusals, at most a couple of log lines.
  BOOST_TEST(f.log_lines.load() <= 2u);
  BOOST_TEST(f.healthy());
}

BOOST_AUTO_TEST_CASE(slow_body_is_cut_with_408) {
  auto options = test_options();
  options.body_timeout = 500ms;
  fixture f{options};
  raw_client c{f.port};
  BOOST_REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: localhost\r\n"
                       "Content-Length: 10\r\n\r\nabc"));
  auto res = c.read_response(5s);
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 408);
  BOOST_TEST(c.closed_within(5s));
}

BOOST_AUTO_TEST_CASE(a_thousand_idle_keep_alive_connections_and_healthz) {
  auto options = test_options();
  options.idle_timeout = 60s;
  fixture f{options};
  auto rss_before = rss_bytes();
  std::vector<std::unique_ptr<raw_client>> idle;
  for (int i = 0; i < 1000; ++i) {
    idle.push_back(std::make_unique<raw_client>(f.port));
    BOOST_REQUIRE(idle.back()->connected());
    BOOST_REQUIRE(idle.back()->send(get("/healthz")));
  }
  for (auto& c : idle) {
    auto res = c->read_response();
    BOOST_REQUIRE(res);
    BOOST_REQUIRE_EQUAL(res->status, 200);
  }
  BOOST_TEST(f.stats().connections_open == 1000u);
  auto rss_idle = rss_bytes();
  BOOST_TEST(f.healthy());
  // They are still served.
  BOOST_REQUIRE(idle.front()->send(get("/healthz")));
  BOOST_TEST(idle.front()->read_response()->status == 200);
  // Idle connections hold no request buffer; the process (server and
  // clients) grew by a few KB per connection, not a thread's stack.
  BOOST_TEST(f.stats().request_bytes_held < 1000u * 1024);
  auto per_connection = (rss_idle - rss_before) / 1000;
  BOOST_TEST_MESSAGE("RSS per idle keep-alive connection (server and client "
                     "side): "
                     << per_connection << " bytes");
  BOOST_TEST(per_connection < 32u * 1024);
}

BOOST_AUTO_TEST_CASE(idle_connection_is_closed_at_the_idle_timeout) {
  auto options = test_options();
  options.idle_timeout = 200ms;
  fixture f{options};
  raw_client c{f.port};
  BOOST_REQUIRE(c.send(get("/healthz")));
  BOOST_REQUIRE(c.read_response());
  BOOST_TEST(c.closed_within(3s));
}

BOOST_AUTO_TEST_CASE(client_that_stops_reading_is_cut_at_the_write_timeout) {
  fixture f; // write timeout 1 s
  raw_client c{f.port};
  int small = 4096;
  setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  BOOST_REQUIRE(c.send(get("/big"))); // 16 MB answer, never read
  BOOST_TEST(eventually([&] { return f.stats().timeout == 1; }, 10s));
  BOOST_TEST(eventually([&] { return f.stats().connections_open == 0; }));
  BOOST_TEST(f.healthy());
}

BOOST_AUTO_TEST_CASE(several_threads_serve_concurrent_clients) {
  auto options = test_options();
  options.threads = 4;
  fixture f{options};
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&, t] {
      raw_client c{f.port};
      for (int i = 0; i < 200; ++i) {
        auto body = std::to_string(t) + "/" + std::to_string(i);
        if (!c.send(post("/echo", body)))
          return;
        auto res = c.read_response();
        if (res && res->body == "POST " + body)
          ++ok;
      }
    });
  std::vector<std::unique_ptr<raw_client>> slow;
  for (int i = 0; i < 8; ++i) {
    slow.push_back(std::make_unique<raw_client>(f.port));
    BOOST_REQUIRE(slow.back()->send(get("/slow")));
  }
  BOOST_REQUIRE(eventually([&] { return f.api.held_count() == 8; }));
  std::thread releaser{[&] {
    f.api.release();
  }};
  for (auto& c : slow)
    BOOST_TEST(c->read_response()->body == "slow done");
  releaser.join();
  for (auto& c : clients)
    c.join();
  BOOST_TEST(ok.load() == 8 * 200);
}

BOOST_AUTO_TEST_CASE(max_in_flight_answers_503_never_queues) {
  auto options = test_options();
  options.max_in_flight = 4;
  fixture f{options};
  std::vector<std::unique_ptr<raw_client>> waiting;
  for (int i = 0; i < 4; ++i) {
    waiting.push_back(std::make_unique<raw_client>(f.port));
    BOOST_REQUIRE(waiting.back()->send(get("/slow")));
  }
  BOOST_REQUIRE(eventually([&] { return f.api.held_count() == 4; }));
  BOOST_TEST(f.stats().in_flight == 4u);
  raw_client extra{f.port};
  BOOST_REQUIRE(extra.send(get("/healthz")));
  auto res = extra.read_response();
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 503);
  BOOST_TEST(res->header("retry-after") == "1");
  BOOST_TEST(res->body.find("\"overloaded\"") != std::string::npos);
  BOOST_TEST(f.stats().overloaded == 1u);
  // Answered later from another thread: all four complete.
  f.api.release();
  for (auto& c : waiting) {
    auto done = c->read_response();
    BOOST_REQUIRE(done);
    BOOST_TEST(done->body == "slow done");
  }
  BOOST_TEST(f.stats().in_flight == 0u);
  // The refused client's connection still works.
  BOOST_REQUIRE(extra.send(get("/healthz")));
  BOOST_TEST(extra.read_response()->status == 200);
}

BOOST_AUTO_TEST_CASE(dropped_responder_answers_500_and_frees_the_slot) {
  fixture f;
  raw_client c{f.port};
  BOOST_REQUIRE(c.send(get("/slow")));
  BOOST_REQUIRE(eventually([&] { return f.api.held_count() == 1; }));
  {
    std::lock_guard<std::mutex> guard{f.api.mutex};
    f.api.held.clear();
  }
  auto res = c.read_response();
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 500);
  BOOST_TEST(f.stats().in_flight == 0u);
}

BOOST_AUTO_TEST_CASE(max_connections_refuses_and_counts) {
  auto options = test_options();
  options.max_connections = 3;
  fixture f{options};
  std::vector<std::unique_ptr<raw_client>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<raw_client>(f.port));
    BOOST_REQUIRE(open.back()->send(get("/healthz")));
    BOOST_REQUIRE(open.back()->read_response());
  }
  raw_client fourth{f.port};
  fourth.send(get("/healthz"));
  BOOST_TEST(fourth.closed_within(3s));
  BOOST_TEST(fourth.pending().empty());
  BOOST_TEST(f.stats().connections_refused >= 1u);
  open.pop_back();
  BOOST_REQUIRE(eventually([&] { return f.stats().connections_open == 2; }));
  BOOST_TEST(f.healthy());
}

BOOST_AUTO_TEST_SUITE_END()

// -- tokens, Host, Origin -----------------------------------------------------

BOOST_AUTO_TEST_SUITE(security)

BOOST_AUTO_TEST_CASE(tokens_gate_everything_but_open_paths) {
  temp_dir dir;
  auto options = test_options();
  options.token_file = dir.write("tokens", "# test\n"
                                           "read reader-token-0123456789 r\n"
                                           "admin admin-token-0123456789 a\n");
  fixture f{options};
  auto res = ask(f.port, get("/echo"));
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 401);
  BOOST_TEST(res->header("www-authenticate") == "Bearer");
  BOOST_TEST(res->body.find("unauthorized") != std::string::npos);
  res = ask(f.port,
            get("/echo", "Authorization: Bearer wrong-token-0123456789\r\n"));
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 401);
  res = ask(f.port,
            get("/echo", "Authorization: Bearer reader-token-0123456789\r\n"));
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 200);
  BOOST_TEST(res->header("x-granted") == "read");
  res = ask(f.port,
            get("/echo", "Authorization: bearer admin-token-0123456789\r\n"));
  BOOST_REQUIRE(res);
  BOOST_TEST(res->header("x-granted") == "admin");
  BOOST_TEST(f.healthy()); // /healthz is open
  res = ask(f.port, get("/metrics"));
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 401); // not listed as open
  BOOST_TEST(f.stats().unauthorized == 3u);
  // A 401 on a bodiless request keeps the connection.
  raw_client c{f.port};
  BOOST_REQUIRE(c.send(get("/echo") + get("/healthz")));
  BOOST_TEST(c.read_response()->status == 401);
  BOOST_TEST(c.read_response()->status == 200);
}

BOOST_AUTO_TEST_CASE(without_token_file_everyone_is_admin) {
  fixture f;
  auto res = ask(f.port, get("/echo"));
  BOOST_REQUIRE(res);
  BOOST_TEST(res->header("x-granted") == "admin");
}

BOOST_AUTO_TEST_CASE(bad_token_file_fails_start_with_a_clear_error) {
  temp_dir dir;
  toy_api api;
  auto options = test_options();
  options.token_file = dir.write("tokens", "admin tooshort\n");
  http_server server{options, api.dispatch()};
  std::string error;
  BOOST_TEST(server.start("127.0.0.1", 0, error) == 0);
  BOOST_TEST(error.find("--http-token-file") == 0u);
  BOOST_TEST(error.find("line 1") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(host_rebinding_names_are_refused) {
  fixture f;
  auto with_host = [&](const std::string& host) {
    return ask(f.port, "GET /healthz HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  };
  auto res = with_host("evil.example");
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 421);
  BOOST_TEST(res->body.find("misdirected") != std::string::npos);
  res = with_host("localhost.evil.example:" + std::to_string(f.port));
  BOOST_TEST(res->status == 421);
  BOOST_TEST(with_host("127.0.0.1:" + std::to_string(f.port))->status == 200);
  BOOST_TEST(with_host("192.0.2.7")->status == 200);
  BOOST_TEST(with_host("[::1]:" + std::to_string(f.port))->status == 200);
  BOOST_TEST(with_host("localhost:" + std::to_string(f.port))->status == 200);
  BOOST_TEST(with_host("LocalHost")->status == 200);
  res = ask(f.port, "GET /healthz HTTP/1.1\r\n\r\n");
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 400); // HTTP/1.1 without Host
  res = ask(f.port, "GET /healthz HTTP/1.0\r\n\r\n");
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 200); // HTTP/1.0 may omit it
  BOOST_TEST(f.stats().bad_host == 3u);
}

BOOST_AUTO_TEST_CASE(allowed_hosts_option_adds_names) {
  auto options = test_options();
  options.allowed_hosts = {"node1.example.com"};
  fixture f{options};
  auto res
    = ask(f.port, "GET /healthz HTTP/1.1\r\nHost: node1.example.com\r\n\r\n");
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 200);
}

BOOST_AUTO_TEST_CASE(cross_site_writes_are_refused) {
  auto options = test_options();
  options.allowed_origins = {"https://dash.example.com"};
  fixture f{options};
  auto res = ask(f.port, post("/echo", "x",
                              "Origin: http://evil.example\r\n"
                              "Content-Type: text/plain\r\n"));
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 403);
  BOOST_TEST(res->body.find("forbidden_origin") != std::string::npos);
  BOOST_TEST(f.stats().bad_origin == 1u);
  res = ask(f.port, post("/echo", "x", "Origin: http://localhost\r\n"));
  BOOST_TEST(res->status == 200); // same origin (Host: localhost)
  res = ask(f.port, post("/echo", "x", "Origin: https://dash.example.com\r\n"));
  BOOST_TEST(res->status == 200);
  res = ask(f.port, get("/echo", "Origin: http://evil.example\r\n"));
  BOOST_TEST(res->status == 200); // reads are fine: no CORS headers
  BOOST_TEST(res->header("access-control-allow-origin").empty());
}

BOOST_AUTO_TEST_SUITE_END()

// -- streams ---------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(streams)

BOOST_AUTO_TEST_CASE(chunk_source_delivers_in_order_and_ends) {
  fixture f;
  raw_client c{f.port};
  BOOST_REQUIRE(c.send(get("/stream?n=50")));
  auto res = c.read_response();
  BOOST_REQUIRE(res);
  BOOST_TEST(res->status == 200);
  BOOST_TEST(res->chunked);
  BOOST_TEST(res->header("content-type") == "text/event-stream");
  std::string expected;
  for (int i = 0; i < 50; ++i)
    expected += "c" + std::to_string(i) + "\n";
  BOOST_TEST(res->body == expected);
  BOOST_TEST(c.closed_within(5s));
  BOOST_TEST(eventually([&] { return f.api.cancels.load() == 1; }));
}

BOOST_AUTO_TEST_CASE(client_leaving_cancels_the_source_once) {
  fixture f;
  {
    raw_client c{f.port};
    BOOST_REQUIRE(c.send(get("/stream?hold=1")));
    BOOST_REQUIRE(c.read_until("c0\n"));
  } // the client closes while the source holds its next chunk
  BOOST_TEST(eventually([&] { return f.api.cancels.load() == 1; }));
  BOOST_TEST(eventually([&] { return f.stats().connections_open == 0; }));
  f.server->stop();
  BOOST_TEST(f.api.cancels.load() == 1);
}

BOOST_AUTO_TEST_CASE(stream_reader_that_stops_reading_is_cut_and_cancelled) {
  fixture f; // write timeout 1 s
  raw_client c{f.port};
  int small = 4096;
  setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  // 64 chunks of 1 MiB that the client never reads: the server holds one
  // chunk (the source holds back the rest) until the write deadline.
  BOOST_REQUIRE(c.send(get("/stream?n=64&pad=1048576")));
  BOOST_TEST(eventually([&] { return f.api.cancels.load() == 1; }, 10s));
  BOOST_TEST(f.stats().timeout == 1u);
  BOOST_TEST(eventually([&] { return f.stats().connections_open == 0; }));
  BOOST_TEST(f.healthy());
}

BOOST_AUTO_TEST_CASE(stop_ends_streams_and_is_idempotent) {
  fixture f;
  raw_client c{f.port};
  BOOST_REQUIRE(c.send(get("/stream?hold=1")));
  BOOST_REQUIRE(c.read_until("c0\n"));
  f.server->stop();
  BOOST_TEST(f.api.cancels.load() == 1);
  BOOST_TEST(c.closed_within(5s));
  f.server->stop();
  BOOST_TEST(f.api.cancels.load() == 1);
}

BOOST_AUTO_TEST_SUITE_END()

// -- TLS
// -----------------------------------------------------------------------

namespace {

/// One HTTPS request with OpenSSL on a blocking socket (no verification:
/// the certificate is self-signed); the raw response, empty on failure.
std::string tls_request(uint16_t port, const std::string& raw) {
  raw_client c{port};
  timeval limit{5, 0};
  setsockopt(c.fd(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, c.fd());
  std::string out;
  if (SSL_connect(ssl) == 1 && SSL_write(ssl, raw.data(), raw.size()) > 0) {
    char buf[4096];
    int n;
    while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0) {
      out.append(buf, n);
      parsed_response res;
      if (parse_response(out, false, res) > 0)
        break;
    }
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(tls)

BOOST_AUTO_TEST_CASE(tls_client_is_served_and_plain_text_is_dropped) {
  temp_dir dir;
  auto options = test_options();
  options.header_timeout = 1s; // the silent client below
  options.tls_cert_file = dir.path + "/cert.pem";
  options.tls_key_file = dir.path + "/key.pem";
  make_self_signed(options.tls_cert_file, options.tls_key_file);
  fixture f{options};
  BOOST_TEST(f.server->secure());
  auto raw = tls_request(f.port, get("/echo"));
  BOOST_TEST(raw.rfind("HTTP/1.1 200", 0) == 0u, raw);
  // Plain HTTP on the TLS port: dropped, counted, nobody else harmed.
  raw_client plain{f.port};
  BOOST_REQUIRE(plain.send(get("/healthz")));
  BOOST_TEST(plain.closed_within(3s));
  BOOST_TEST(plain.pending().find("HTTP/1.1") == std::string::npos);
  BOOST_TEST(f.stats().tls_handshake_failures == 1u);
  // A silent client is cut at the handshake deadline.
  raw_client silent{f.port};
  BOOST_TEST(silent.closed_within(5s));
  raw = tls_request(f.port, post("/echo", "secret"));
  BOOST_TEST(raw.find("POST secret") != std::string::npos, raw);
}

BOOST_AUTO_TEST_CASE(bad_tls_files_give_a_clear_error) {
  temp_dir dir;
  toy_api api;
  auto start_error = [&](const std::string& cert, const std::string& key) {
    auto options = test_options();
    options.tls_cert_file = cert;
    options.tls_key_file = key;
    http_server server{options, api.dispatch()};
    std::string error;
    BOOST_TEST(server.start("127.0.0.1", 0, error) == 0);
    return error;
  };
  auto good_cert = dir.path + "/cert.pem";
  auto good_key = dir.path + "/key.pem";
  make_self_signed(good_cert, good_key);
  make_self_signed(dir.path + "/other-cert.pem", dir.path + "/other-key.pem");
  auto error = start_error("/x", good_key);
  BOOST_TEST(error == "--http-cert: cannot read /x: No such file or directory");
  error = start_error(good_cert, "/y");
  BOOST_TEST(error == "--http-key: cannot read /y: No such file or directory");
  error
    = start_error(dir.write("garbage.pem", "not a certificate\n"), good_key);
  BOOST_TEST(error.find("--http-cert: ") == 0u);
  BOOST_TEST(error.find("not a PEM certificate") != std::string::npos, error);
  error = start_error(good_cert, dir.path + "/other-key.pem");
  BOOST_TEST(error.find("--http-key: ") == 0u);
  BOOST_TEST(error.find("match") != std::string::npos, error);
  error = start_error(good_cert, "");
  BOOST_TEST(error.find("--http-cert given without --http-key") == 0u, error);
}

BOOST_AUTO_TEST_CASE(identity_configures_a_raw_ssl_ctx_for_tls13) {
  temp_dir dir;
  tls_identity_options options;
  options.cert_file = dir.path + "/cert.pem";
  options.key_file = dir.path + "/key.pem";
  options.tls13_only = true;
  make_self_signed(options.cert_file, options.key_file);
  tls_identity identity;
  std::string error;
  BOOST_REQUIRE_MESSAGE(identity.load(options, error), error);
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  BOOST_REQUIRE(identity.configure(ctx, error));
  BOOST_TEST(SSL_CTX_get_min_proto_version(ctx) == TLS1_3_VERSION);
  BOOST_TEST(SSL_CTX_check_private_key(ctx) == 1);
  SSL_CTX_free(ctx);
}

BOOST_AUTO_TEST_SUITE_END()
