// Every documented spelling of syncmesh-node's options, and each error line,
// on parse_node_options directly (no process, no actor system).

#define BOOST_TEST_MODULE syncmesh_node_options
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "node/daemon/node_options.hpp"

using namespace std::chrono_literals;
using syncmesh::node_action;
using syncmesh::node_options_result;

namespace {

/// Parses `words`, the program name first.
node_options_result parse_words(const std::vector<std::string>& words) {
  std::vector<const char*> argv;
  for (const auto& w : words)
    argv.push_back(w.c_str());
  return syncmesh::parse_node_options(static_cast<int>(argv.size()),
                                      argv.data());
}

/// Parses `args` as the words after "syncmesh-node".
node_options_result parse(std::initializer_list<std::string> args) {
  std::vector<std::string> words{"syncmesh-node"};
  words.insert(words.end(), args.begin(), args.end());
  return parse_words(words);
}

/// The words of one shell command line: split at blanks outside quotes,
/// quotes removed, a `#` comment and `...` (more options) dropped.
std::vector<std::string> shell_words(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (char c : line) {
    if (quote) {
      if (c == quote)
        quote = 0;
      else
        word += c;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '#' && !in_word) {
      break;
    } else if (c == ' ' || c == '\t') {
      if (in_word && word != "...")
        words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word && word != "...")
    words.push_back(word);
  return words;
}

/// Every syncmesh-node command line in the Markdown file `path`: in code
/// blocks (joining lines continued with a backslash) and in inline code.
std::vector<std::string> documented_commands(const std::string& path) {
  std::ifstream in{path};
  BOOST_REQUIRE_MESSAGE(in, "cannot read " << path);
  std::vector<std::string> result;
  auto is_command = [](const std::string& text) {
    auto words = shell_words(text);
    if (words.empty())
      return false;
    const auto& prog = words.front();
    return prog == "syncmesh-node"
           || (prog.size() > 14
               && prog.compare(prog.size() - 14, 14, "/syncmesh-node") == 0);
  };
  bool in_block = false;
  std::string pending;
  std::string line;
  while (std::getline(in, line)) {
    auto first = line.find_first_not_of(' ');
    if (first != std::string::npos && line.compare(first, 3, "```") == 0) {
      in_block = !in_block;
      pending.clear();
      continue;
    }
    if (in_block) {
      pending += line;
      if (!pending.empty() && pending.back() == '\\') {
        pending.pop_back();
        pending += ' ';
        continue;
      }
      if (is_command(pending))
        result.push_back(pending);
      pending.clear();
      continue;
    }
    for (size_t open = line.find('`'); open != std::string::npos;) {
      auto close = line.find('`', open + 1);
      if (close == std::string::npos)
        break;
      auto code = line.substr(open + 1, close - open - 1);
      if (is_command(code))
        result.push_back(code);
      open = line.find('`', close + 1);
    }
  }
  return result;
}

/// Parses `args`, requiring that the node would run.
syncmesh::node_options ok(std::initializer_list<std::string> args) {
  auto res = parse(args);
  BOOST_REQUIRE_MESSAGE(res.action == node_action::run,
                        "refused: " << res.text);
  return res.options;
}

/// The error line for `args` (fails the test when they are accepted).
std::string error_of(std::initializer_list<std::string> args) {
  auto res = parse(args);
  BOOST_REQUIRE(res.action == node_action::fail);
  BOOST_CHECK_MESSAGE(res.text.find('\n') == std::string::npos,
                      "more than one line: " << res.text);
  return res.text;
}

/// An INI file in /tmp, removed at the end of the test.
struct ini_file {
  std::string path;

  explicit ini_file(const std::string& content) {
    char tmpl[] = "/tmp/syncmesh-options-XXXXXX";
    int fd = ::mkstemp(tmpl);
    BOOST_REQUIRE(fd >= 0);
    ::close(fd);
    path = tmpl;
    std::ofstream{path} << content;
  }

  ~ini_file() { std::remove(path.c_str()); }
};

} // namespace

BOOST_AUTO_TEST_SUITE(node_options)

BOOST_AUTO_TEST_CASE(no_arguments_give_the_documented_defaults) {
  auto o = ok({});
  BOOST_CHECK_EQUAL(o.node.host, "127.0.0.1");
  BOOST_CHECK_EQUAL(o.node.port, 7440);
  BOOST_CHECK(o.node.leasing);
  BOOST_CHECK(!o.node.py2p_allow_delete);
  BOOST_CHECK_EQUAL(o.http, "127.0.0.1:7441");
  BOOST_CHECK_EQUAL(o.http_host, "127.0.0.1");
  BOOST_CHECK_EQUAL(o.http_port, 7441);
  BOOST_CHECK(o.node.lease_duration == 1h);
  BOOST_CHECK(o.node.max_lease_duration == 24h);
  BOOST_CHECK(o.node.max_clock_offset == 500ms);
  // Margin and hold threshold follow the bound unless set.
  BOOST_CHECK(o.node.effective_lease_margin() == 500ms);
  BOOST_CHECK(o.node.effective_max_clock_skew() == 500ms);
  BOOST_CHECK_EQUAL(o.node.max_value_size, 1024u * 1024u);
  BOOST_CHECK(o.level == syncmesh::log_level::info);
  BOOST_CHECK(o.node.peers.empty());
}

BOOST_AUTO_TEST_CASE(booleans_take_every_documented_spelling) {
  BOOST_CHECK(!ok({"--leasing=false"}).node.leasing);
  BOOST_CHECK(ok({"--leasing=true"}).node.leasing);
  BOOST_CHECK(ok({"--leasing"}).node.leasing);
  BOOST_CHECK(!ok({"--no-leasing"}).node.leasing);
  BOOST_CHECK(ok({"--no-leasing=false"}).node.leasing);
  BOOST_CHECK(!ok({"--leasing=no"}).node.leasing);
  BOOST_CHECK(!ok({"--leasing=off"}).node.leasing);
  BOOST_CHECK(!ok({"--leasing=0"}).node.leasing);
  BOOST_CHECK(!ok({"--leasing=FALSE"}).node.leasing);
  BOOST_CHECK(ok({"--leasing=yes"}).node.leasing);
  BOOST_CHECK(ok({"--py2p-allow-delete"}).node.py2p_allow_delete);
  BOOST_CHECK(ok({"--py2p-allow-delete=true"}).node.py2p_allow_delete);
  BOOST_CHECK(!ok({"--py2p-allow-delete=false"}).node.py2p_allow_delete);
  BOOST_CHECK(!ok({"--no-py2p-allow-delete"}).node.py2p_allow_delete);
  // The last one wins.
  BOOST_CHECK(ok({"--no-leasing", "--leasing"}).node.leasing);
  BOOST_CHECK(!ok({"--leasing", "--leasing=false"}).node.leasing);
}

BOOST_AUTO_TEST_CASE(an_empty_http_turns_the_api_off) {
  BOOST_CHECK_EQUAL(ok({"--http="}).http, "");
  BOOST_CHECK_EQUAL(ok({"--http"}).http, "");
  auto o = ok({"--http=127.0.0.1:0"});
  BOOST_CHECK_EQUAL(o.http_host, "127.0.0.1");
  BOOST_CHECK_EQUAL(o.http_port, 0);
  // "--name value" works like "--name=value".
  o = ok({"--http", "[::1]:8080"});
  BOOST_CHECK_EQUAL(o.http_host, "::1");
  BOOST_CHECK_EQUAL(o.http_port, 8080);
}

BOOST_AUTO_TEST_CASE(durations_take_units_or_plain_seconds) {
  BOOST_CHECK(ok({"--redial-max=2s"}).node.redial_max == 2s);
  BOOST_CHECK(ok({"--lease-duration=90s"}).node.lease_duration == 90s);
  auto wide = ok({"--max-clock-offset=5s"}).node;
  BOOST_CHECK(wide.max_clock_offset == 5s);
  BOOST_CHECK(wide.effective_lease_margin() == 5s);
  BOOST_CHECK(wide.effective_max_clock_skew() == 5s);
  BOOST_CHECK(ok({"--heartbeat-interval=1500ms"}).node.heartbeat_interval
              == 1500ms);
  BOOST_CHECK(ok({"--anti-entropy-interval=5m"}).node.anti_entropy_interval
              == 5min);
  BOOST_CHECK(ok({"--tombstone-horizon=1h"}).node.tombstone_horizon == 1h);
  BOOST_CHECK(ok({"--peer-timeout=30"}).node.peer_timeout == 30s);
  BOOST_CHECK(
    ok({"--duplicate-probe-timeout=250ms"}).node.duplicate_probe_timeout
    == 250ms);
  std::chrono::milliseconds d{};
  for (auto bad :
       {"", "s", "-1s", "1.5s", "1d", "2 s", "1h30m", "9999999999999h"})
    BOOST_CHECK_MESSAGE(!syncmesh::parse_duration(bad, d), bad);
  BOOST_CHECK_EQUAL(syncmesh::format_duration(1h), "1h");
  BOOST_CHECK_EQUAL(syncmesh::format_duration(90s), "90s");
  BOOST_CHECK_EQUAL(syncmesh::format_duration(5min), "5m");
  BOOST_CHECK_EQUAL(syncmesh::format_duration(1500ms), "1500ms");
  BOOST_CHECK_EQUAL(syncmesh::format_duration(0ms), "0s");
}

BOOST_AUTO_TEST_CASE(sizes_take_bytes_or_binary_units) {
  BOOST_CHECK_EQUAL(ok({"--max-value-size=65536"}).node.max_value_size, 65536u);
  BOOST_CHECK_EQUAL(ok({"--max-value-size=64KiB"}).node.max_value_size, 65536u);
  BOOST_CHECK_EQUAL(ok({"--ingress-window=4MiB"}).node.ingress_window,
                    4u << 20);
  BOOST_CHECK_EQUAL(ok({"--max-ae-outbox-bytes=1GiB"}).node.max_ae_outbox_bytes,
                    size_t{1} << 30);
  BOOST_CHECK_EQUAL(
    ok({"--max-handshake-frame=32kib"}).node.max_handshake_frame, 32u << 10);
  size_t n = 0;
  for (auto bad : {"", "64K", "64KB", "1MB", "-1", "1.5MiB", "KiB",
                   "99999999999999999999", "17179869184GiB"})
    BOOST_CHECK_MESSAGE(!syncmesh::parse_size(bad, n), bad);
  BOOST_CHECK_EQUAL(syncmesh::format_size(1 << 20), "1MiB");
  BOOST_CHECK_EQUAL(syncmesh::format_size(65536), "64KiB");
  BOOST_CHECK_EQUAL(syncmesh::format_size(1000), "1000");
  BOOST_CHECK_EQUAL(syncmesh::format_size(0), "0");
}

BOOST_AUTO_TEST_CASE(numbers_words_and_lists) {
  auto o = ok({"--port=0", "--max-peers=7", "--max-inbound=100",
               "--expected-keys=1000", "--max-value-depth=16", "--wire=py2p",
               "--anti-entropy-method=keys", "--log-level=debug",
               "--subnet=blue", "--host=10.0.0.1", "--data-dir=/tmp/x",
               "--peers=a:1,b.example:7440,[::1]:9"});
  BOOST_CHECK_EQUAL(o.node.port, 0);
  BOOST_CHECK_EQUAL(o.node.max_peers, 7u);
  BOOST_CHECK_EQUAL(o.node.max_inbound, 100u);
  BOOST_CHECK_EQUAL(o.node.expected_keys, 1000u);
  BOOST_CHECK_EQUAL(o.node.max_value_depth, 16u);
  BOOST_CHECK(o.node.wire == syncmesh::wire_kind::py2p);
  BOOST_CHECK(o.node.anti_entropy_method == syncmesh::ae_method::key_lists);
  BOOST_CHECK(o.level == syncmesh::log_level::debug);
  BOOST_CHECK_EQUAL(o.node.subnet, "blue");
  BOOST_CHECK_EQUAL(o.node.host, "10.0.0.1");
  BOOST_CHECK_EQUAL(o.data_dir, "/tmp/x");
  BOOST_REQUIRE_EQUAL(o.node.peers.size(), 3u);
  BOOST_CHECK_EQUAL(o.node.peers[2], "[::1]:9");
  BOOST_CHECK(ok({"--anti-entropy-method=auto"}).node.anti_entropy_method
              == syncmesh::ae_method::automatic);
  BOOST_CHECK(ok({"--peers="}).node.peers.empty());
  auto d = ok({"--durability=always", "--durability-interval=50ms"});
  BOOST_CHECK(d.node.durability == syncmesh::durability_mode::always);
  BOOST_CHECK_EQUAL(d.node.durability_interval.count(), 50);
  BOOST_CHECK(ok({"--durability=none"}).node.durability
              == syncmesh::durability_mode::none);
  BOOST_CHECK(ok({}).node.durability == syncmesh::durability_mode::batch);
  BOOST_CHECK(!ok({}).node.keep_stale_data);
  BOOST_CHECK(ok({"--keep-stale-data"}).node.keep_stale_data);
}

BOOST_AUTO_TEST_CASE(each_bad_option_gives_one_human_line) {
  BOOST_CHECK_EQUAL(error_of({"--leasing=nope"}),
                    "--leasing expects true or false, got \"nope\"");
  BOOST_CHECK_EQUAL(error_of({"--py2p-allow-delete=maybe"}),
                    "--py2p-allow-delete expects true or false, got \"maybe\"");
  BOOST_CHECK_EQUAL(error_of({"--foo"}), "unknown option --foo (see --help)");
  BOOST_CHECK_EQUAL(error_of({"--bogus=1"}),
                    "unknown option --bogus (see --help)");
  BOOST_CHECK_EQUAL(error_of({"-x"}), "unknown option -x (see --help)");
  BOOST_CHECK_EQUAL(
    error_of({"stray"}),
    "unexpected argument \"stray\" (options are --name=value; see --help)");
  // A boolean's value is not taken from the next word.
  BOOST_CHECK_EQUAL(
    error_of({"--leasing", "false"}),
    "unexpected argument \"false\" (options are --name=value; see --help)");
  BOOST_CHECK_EQUAL(
    error_of({"--port=abc"}),
    "--port expects a port number from 0 to 65535, got \"abc\"");
  BOOST_CHECK_EQUAL(
    error_of({"--port=70000"}),
    "--port expects a port number from 0 to 65535, got \"70000\"");
  BOOST_CHECK_EQUAL(error_of({"--port="}),
                    "--port expects a port number from 0 to 65535, got \"\"");
  BOOST_CHECK_EQUAL(error_of({"--lease-duration=soon"}),
                    "--lease-duration expects a duration like 1500ms, 30s, 5m "
                    "or 1h, got \"soon\"");
  BOOST_CHECK_EQUAL(error_of({"--max-value-size=big"}),
                    "--max-value-size expects a size in bytes like 65536, "
                    "64KiB or 4MiB, got \"big\"");
  BOOST_CHECK_EQUAL(error_of({"--max-peers=-1"}),
                    "--max-peers expects a whole number, got \"-1\"");
  BOOST_CHECK_EQUAL(error_of({"--http=nonsense"}),
                    "--http expects HOST:PORT, or nothing to turn the API "
                    "off, got \"nonsense\"");
  BOOST_CHECK_EQUAL(
    error_of({"--log-level=loud"}),
    "--log-level expects quiet, error, warning, info or debug, got \"loud\"");
  BOOST_CHECK_EQUAL(error_of({"--wire=tcp"}),
                    "--wire expects native or py2p, got \"tcp\"");
  BOOST_CHECK_EQUAL(error_of({"--durability=sometimes"}),
                    "--durability expects always, batch or none, got "
                    "\"sometimes\"");
  BOOST_CHECK_EQUAL(error_of({"--anti-entropy-method=fast"}),
                    "--anti-entropy-method expects auto, sketch or keys, got "
                    "\"fast\"");
  BOOST_CHECK_EQUAL(error_of({"--peers=a:1,nonsense"}),
                    "--peers expects a list like host:port,host:port, got "
                    "\"a:1,nonsense\"");
  // Values that are well-formed but do not fit together: the library's
  // own check, still one line.
  BOOST_CHECK_EQUAL(
    error_of({"--lease-duration=2h", "--max-lease-duration=1h"}),
    "lease_duration must not exceed max_lease_duration");
  BOOST_CHECK_EQUAL(
    error_of({"--lease-duration=2s", "--max-clock-offset=1s"}),
    "max_clock_offset (the lease margin unless lease_margin is set) must be "
    "less than half of lease_duration");
  BOOST_CHECK_EQUAL(error_of({"--config-file=/nonexistent/node.ini"}),
                    "--config-file: cannot read \"/nonexistent/node.ini\"");
}

BOOST_AUTO_TEST_CASE(the_http_front_defaults_are_loopback_without_token) {
  auto o = ok({});
  const auto& srv = o.http_server;
  BOOST_CHECK_EQUAL(o.http_host, "127.0.0.1");
  BOOST_CHECK(o.http_token_file.empty());
  BOOST_CHECK(srv.tls_cert_file.empty() && srv.tls_key_file.empty());
  BOOST_CHECK(srv.allowed_hosts.empty());
  BOOST_CHECK(srv.allowed_origins.empty());
  BOOST_CHECK(
    (srv.open_paths == std::vector<std::string>{"/healthz", "/readyz"}));
  // The server's own safe defaults, and the body limit left to the API.
  syncmesh::http::server_options server_defaults;
  BOOST_CHECK_EQUAL(srv.max_body, 0u);
  BOOST_CHECK_EQUAL(srv.max_header_bytes, server_defaults.max_header_bytes);
  BOOST_CHECK_EQUAL(srv.max_header_fields, server_defaults.max_header_fields);
  BOOST_CHECK_EQUAL(srv.max_url, server_defaults.max_url);
  BOOST_CHECK_EQUAL(srv.body_piece, server_defaults.body_piece);
  BOOST_CHECK(srv.header_timeout == server_defaults.header_timeout);
  BOOST_CHECK(srv.body_timeout == server_defaults.body_timeout);
  BOOST_CHECK(srv.idle_timeout == server_defaults.idle_timeout);
  BOOST_CHECK(srv.write_timeout == server_defaults.write_timeout);
  BOOST_CHECK_EQUAL(srv.max_connections, server_defaults.max_connections);
  BOOST_CHECK_EQUAL(srv.max_in_flight, server_defaults.max_in_flight);
}

BOOST_AUTO_TEST_CASE(http_front_options_take_every_documented_spelling) {
  auto o = ok({"--http-cert=/etc/syncmesh/cert.pem", "--http-key",
               "/etc/syncmesh/key.pem"});
  BOOST_CHECK_EQUAL(o.http_server.tls_cert_file, "/etc/syncmesh/cert.pem");
  BOOST_CHECK_EQUAL(o.http_server.tls_key_file, "/etc/syncmesh/key.pem");
  o = ok({"--http-allowed-hosts=api.example.com, node1,,10.0.0.7,::1"});
  BOOST_CHECK((o.http_server.allowed_hosts
               == std::vector<std::string>{"api.example.com", "node1",
                                           "10.0.0.7", "::1"}));
  o = ok({"--http-allowed-origins=https://dash.example.com,"
          "http://localhost:8080,https://[::1]:8443"});
  BOOST_CHECK((o.http_server.allowed_origins
               == std::vector<std::string>{"https://dash.example.com",
                                           "http://localhost:8080",
                                           "https://[::1]:8443"}));
  BOOST_CHECK((ok({"--http-open=healthz,metrics"}).http_server.open_paths
               == std::vector<std::string>{"/healthz", "/metrics"}));
  BOOST_CHECK(
    (ok({"--http-open=metrics, readyz,metrics"}).http_server.open_paths
     == std::vector<std::string>{"/metrics", "/readyz"}));
  BOOST_CHECK(ok({"--http-open="}).http_server.open_paths.empty());
  BOOST_CHECK(ok({"--http-open=none"}).http_server.open_paths.empty());
  o = ok({"--http-max-header-bytes=8KiB", "--http-max-header-fields=20",
          "--http-max-url=2048", "--http-max-body=4MiB", "--http-body-piece=7",
          "--http-read-timeout=2s", "--http-idle-timeout=5m",
          "--http-write-timeout=1500ms", "--http-max-connections=500",
          "--http-max-in-flight=64"});
  const auto& srv = o.http_server;
  BOOST_CHECK_EQUAL(srv.max_header_bytes, 8192u);
  BOOST_CHECK_EQUAL(srv.max_header_fields, 20u);
  BOOST_CHECK_EQUAL(srv.max_url, 2048u);
  BOOST_CHECK_EQUAL(srv.max_body, 4u << 20);
  BOOST_CHECK_EQUAL(srv.body_piece, 7u);
  BOOST_CHECK(srv.header_timeout == 2s);
  BOOST_CHECK(srv.body_timeout == 2s); // one read deadline for both
  BOOST_CHECK(srv.idle_timeout == 5min);
  BOOST_CHECK(srv.write_timeout == 1500ms);
  BOOST_CHECK_EQUAL(srv.max_connections, 500u);
  BOOST_CHECK_EQUAL(srv.max_in_flight, 64u);
  BOOST_CHECK_EQUAL(ok({"--http-max-body=0"}).http_server.max_body, 0u);
}

BOOST_AUTO_TEST_CASE(peer_tls_options_take_three_readable_files) {
  // Readability is checked here; what the files hold when the node starts.
  const std::string file = std::string{SYNCMESH_SOURCE_DIR} + "/README.md";
  auto o = ok({"--tls-cert=" + file, "--tls-key", file, "--tls-ca=" + file});
  BOOST_CHECK_EQUAL(o.node.tls.cert_file, file);
  BOOST_CHECK_EQUAL(o.node.tls.key_file, file);
  BOOST_CHECK_EQUAL(o.node.tls.ca_file, file);
  BOOST_CHECK(o.node.tls.enabled());
  BOOST_CHECK(!ok({}).node.tls.enabled());
  ini_file ini{"tls-cert = \"" + file + "\"\ntls-key = \"" + file
               + "\"\ntls-ca = \"" + file + "\"\n"};
  o = ok({"--config-file=" + ini.path});
  BOOST_CHECK_EQUAL(o.node.tls.ca_file, file);
  for (auto partial : {std::initializer_list<std::string>{"--tls-cert=" + file},
                       {"--tls-cert=" + file, "--tls-key=" + file},
                       {"--tls-ca=" + file}})
    BOOST_CHECK_EQUAL(error_of(partial),
                      "--tls-cert, --tls-key and --tls-ca go together (peer "
                      "TLS needs all three)");
  BOOST_CHECK_EQUAL(error_of({"--tls-cert=/nonexistent/c.pem",
                              "--tls-key=" + file, "--tls-ca=" + file}),
                    "--tls-cert: cannot read /nonexistent/c.pem: No such file "
                    "or directory");
  BOOST_CHECK_EQUAL(error_of({"--tls-cert=" + file, "--tls-key=" + file,
                              "--tls-ca=/nonexistent/ca.pem"}),
                    "--tls-ca: cannot read /nonexistent/ca.pem: No such file "
                    "or directory");
  BOOST_CHECK_EQUAL(error_of({"--tls-cert=" + file, "--tls-key=" + file,
                              "--tls-ca=" + file, "--wire=py2p"}),
                    "--tls-cert: peer TLS is not available with --wire=py2p "
                    "(py2p and js2p speak no TLS)");
}

BOOST_AUTO_TEST_CASE(bad_http_front_options_give_one_human_line) {
  BOOST_CHECK_EQUAL(error_of({"--http-cert=/c.pem"}),
                    "--http-cert needs --http-key (HTTPS needs both)");
  BOOST_CHECK_EQUAL(error_of({"--http-key=/k.pem"}),
                    "--http-key needs --http-cert (HTTPS needs both)");
  BOOST_CHECK_EQUAL(error_of({"--http-open=healthz,admin"}),
                    "--http-open expects a list of healthz, readyz and "
                    "metrics, or none, got \"healthz,admin\"");
  BOOST_CHECK_EQUAL(error_of({"--http-open=none,metrics"}),
                    "--http-open expects a list of healthz, readyz and "
                    "metrics, or none, got \"none,metrics\"");
  for (auto bad : {"dash.example.com", "https://dash.example.com/",
                   "https://dash.example.com/app", "ftp://x", "https://",
                   "https://x:0", "https://x:99999", "*"})
    BOOST_CHECK_EQUAL(
      error_of({std::string{"--http-allowed-origins="} + bad}),
      std::string{"--http-allowed-origins expects a list of origins like "
                  "https://dash.example.com,http://host:8080, got \""}
        + bad + "\"");
  BOOST_CHECK_EQUAL(error_of({"--http-allowed-hosts=ok,evil/host"}),
                    "--http-allowed-hosts expects a list of host names like "
                    "api.example.com,node1, got \"ok,evil/host\"");
  BOOST_CHECK_EQUAL(error_of({"--http-max-header-fields=0"}),
                    "--http-max-header-fields expects a whole number from 1 "
                    "to 100000, got \"0\"");
  BOOST_CHECK_EQUAL(error_of({"--http-max-header-bytes=512"}),
                    "--http-max-header-bytes expects a size from 1KiB to "
                    "64MiB like 16KiB, got \"512\"");
  BOOST_CHECK_EQUAL(error_of({"--http-max-url=big"}),
                    "--http-max-url expects a size from 16 bytes to 64MiB "
                    "like 8KiB, got \"big\"");
  BOOST_CHECK_EQUAL(error_of({"--http-max-body=lots"}),
                    "--http-max-body expects a size in bytes like 65536, "
                    "64KiB or 4MiB, got \"lots\"");
  BOOST_CHECK_EQUAL(error_of({"--http-body-piece=0"}),
                    "--http-body-piece expects a size from 1 byte to 16MiB "
                    "like 64KiB, got \"0\"");
  BOOST_CHECK_EQUAL(error_of({"--http-read-timeout=0s"}),
                    "--http-read-timeout expects a duration above zero like "
                    "1500ms, 30s, 5m or 1h, got \"0s\"");
  BOOST_CHECK_EQUAL(error_of({"--http-idle-timeout=soon"}),
                    "--http-idle-timeout expects a duration above zero like "
                    "1500ms, 30s, 5m or 1h, got \"soon\"");
  BOOST_CHECK_EQUAL(error_of({"--http-write-timeout=0"}),
                    "--http-write-timeout expects a duration above zero like "
                    "1500ms, 30s, 5m or 1h, got \"0\"");
  BOOST_CHECK_EQUAL(error_of({"--http-max-connections=0"}),
                    "--http-max-connections expects a whole number from 1 to "
                    "10000000, got \"0\"");
  BOOST_CHECK_EQUAL(error_of({"--http-max-in-flight=-3"}),
                    "--http-max-in-flight expects a whole number from 1 to "
                    "10000000, got \"-3\"");
}

BOOST_AUTO_TEST_CASE(the_ini_file_takes_the_http_front_options) {
  ini_file ini{"[global]\n"
               "http-cert = \"/c.pem\"\n"
               "http-key = /k.pem\n"
               "http-allowed-hosts = api.example.com,node1\n"
               "http-allowed-origins = \"https://dash.example.com\"\n"
               "http-open = metrics\n"
               "http-max-body = 64KiB\n"
               "http-read-timeout = 3s\n"
               "http-max-in-flight = 10\n"};
  auto o = ok({"--config-file=" + ini.path, "--http-max-in-flight=11"});
  BOOST_CHECK_EQUAL(o.http_server.tls_cert_file, "/c.pem");
  BOOST_CHECK_EQUAL(o.http_server.tls_key_file, "/k.pem");
  BOOST_CHECK_EQUAL(o.http_server.allowed_hosts.size(), 2u);
  BOOST_CHECK_EQUAL(o.http_server.allowed_origins.at(0),
                    "https://dash.example.com");
  BOOST_CHECK(
    (o.http_server.open_paths == std::vector<std::string>{"/metrics"}));
  BOOST_CHECK_EQUAL(o.http_server.max_body, 65536u);
  BOOST_CHECK(o.http_server.header_timeout == 3s);
  BOOST_CHECK_EQUAL(o.http_server.max_in_flight, 11u); // the command line wins
}

BOOST_AUTO_TEST_CASE(py2p_mode_takes_the_value_limit_py2p_accepts) {
  // py2p and js2p set no limit; 8 MiB is what they relay in practice, so
  // --wire=py2p stores what its peers relay (a 2 MiB value was relayed but
  // not stored under the native 1 MiB default).
  auto o = ok({"--wire=py2p"});
  BOOST_CHECK_EQUAL(o.node.max_value_size, syncmesh::py2p_max_value_size);
  BOOST_CHECK_GE(o.node.max_frame_size,
                 o.node.max_value_size + o.node.max_key_size);
  BOOST_CHECK_GE(o.node.ingress_window, o.node.max_frame_size);
  BOOST_CHECK(o.node.validate().empty());
  // The option still wins, on the command line or in the INI file.
  BOOST_CHECK_EQUAL(
    ok({"--wire=py2p", "--max-value-size=64KiB"}).node.max_value_size, 65536u);
  ini_file file{"[global]\nwire=py2p\nmax-value-size=2MiB\n"};
  BOOST_CHECK_EQUAL(ok({"--config-file=" + file.path}).node.max_value_size,
                    2u << 20);
  // Native mode keeps its own default.
  BOOST_CHECK_EQUAL(ok({}).node.max_value_size,
                    syncmesh::config{}.max_value_size);
  // Applications get the same from config::for_py2p().
  auto app = syncmesh::config::for_py2p();
  BOOST_CHECK(app.wire == syncmesh::wire_kind::py2p);
  BOOST_CHECK_EQUAL(app.max_value_size, syncmesh::py2p_max_value_size);
  BOOST_CHECK(app.validate().empty());
}

BOOST_AUTO_TEST_CASE(every_documented_command_line_parses_as_written) {
  // The READMEs once showed options the daemon refused; every syncmesh-node
  // line they show now goes through the real parser. Placeholder files of
  // the TLS example may be missing here: only "cannot read" is let pass.
  size_t checked = 0;
  for (auto doc :
       {"README.md", "tests/interop/README.md", "deploy/README.md"}) {
    auto path = std::string{SYNCMESH_SOURCE_DIR} + "/" + doc;
    for (const auto& cmd : documented_commands(path)) {
      BOOST_TEST_CONTEXT(doc << ": " << cmd) {
        auto res = parse_words(shell_words(cmd));
        bool missing_file
          = res.action == node_action::fail
            && res.text.find(": cannot read ") != std::string::npos;
        BOOST_CHECK_MESSAGE(res.action == node_action::run || missing_file,
                            res.text);
        ++checked;
      }
    }
  }
  // The py2p examples (README and interop README), the restore and TLS
  // lines: a parser that found nothing would pass vacuously.
  BOOST_CHECK_GE(checked, 5u);
  // The extraction itself: continued lines, comments and "..." placeholders.
  auto words = shell_words("syncmesh-node --a=1 'b c' ...  # comment");
  BOOST_REQUIRE_EQUAL(words.size(), 3u);
  BOOST_CHECK_EQUAL(words[2], "b c");
}

BOOST_AUTO_TEST_CASE(the_ini_file_takes_the_same_spellings) {
  ini_file file{R"(; a comment
# another comment
[global]
leasing=false
http=""
lease-duration="5s"
redial-max=2s
heartbeat-interval=1500ms
max-value-size=64KiB
peers=a:1,b:2
subnet="blue"
port=0
py2p-allow-delete
)"};
  auto o = ok({"--config-file=" + file.path});
  BOOST_CHECK(!o.node.leasing);
  BOOST_CHECK_EQUAL(o.http, "");
  BOOST_CHECK(o.node.lease_duration == 5s);
  BOOST_CHECK(o.node.redial_max == 2s);
  BOOST_CHECK(o.node.heartbeat_interval == 1500ms);
  BOOST_CHECK_EQUAL(o.node.max_value_size, 65536u);
  BOOST_REQUIRE_EQUAL(o.node.peers.size(), 2u);
  BOOST_CHECK_EQUAL(o.node.peers[1], "b:2");
  BOOST_CHECK_EQUAL(o.node.subnet, "blue");
  BOOST_CHECK_EQUAL(o.node.port, 0);
  BOOST_CHECK(o.node.py2p_allow_delete);
  BOOST_CHECK_EQUAL(o.config_file, file.path);
  // The command line wins over the file, whichever comes first.
  o = ok({"--leasing", "--config-file=" + file.path, "--http=127.0.0.1:0"});
  BOOST_CHECK(o.node.leasing);
  BOOST_CHECK_EQUAL(o.http, "127.0.0.1:0");
  // Unquoted values stay whole; ';' starts a comment after a value.
  ini_file spaced{"[global]\nsubnet=my mesh\nhost = 10.0.0.1 ; the LAN\n"
                  "peers = \"a:1, b:2\"\n"};
  o = ok({"--config-file=" + spaced.path});
  BOOST_CHECK_EQUAL(o.node.subnet, "my mesh");
  BOOST_CHECK_EQUAL(o.node.host, "10.0.0.1");
  BOOST_REQUIRE_EQUAL(o.node.peers.size(), 2u);
  BOOST_CHECK_EQUAL(o.node.peers[1], "b:2");
  // Keys before any section count too.
  ini_file bare{"no-leasing\nmax-peers=9\n"};
  o = ok({"--config-file=" + bare.path});
  BOOST_CHECK(!o.node.leasing);
  BOOST_CHECK_EQUAL(o.node.max_peers, 9u);
}

BOOST_AUTO_TEST_CASE(the_ini_file_refuses_what_it_does_not_know) {
  ini_file typo{"[global]\nleasing=true\nleasnig=false\n"};
  BOOST_CHECK_EQUAL(error_of({"--config-file=" + typo.path}),
                    typo.path + ": unknown option \"leasnig\" (see --help)");
  // CAF's own sections are not read any more: said, not ignored.
  ini_file caf{"[global]\nport=1\n[scheduler]\nmax-threads=4\n"};
  BOOST_CHECK_EQUAL(
    error_of({"--config-file=" + caf.path}),
    caf.path + ": unknown option \"scheduler.max-threads\" (see --help)");
  ini_file bad{"[global]\nleasing=nope\n"};
  BOOST_CHECK_EQUAL(error_of({"--config-file=" + bad.path}),
                    "--leasing expects true or false, got \"nope\"");
}

BOOST_AUTO_TEST_CASE(the_example_ini_of_deploy_is_read) {
  auto o = ok({std::string{"--config-file="} + SYNCMESH_SOURCE_DIR
               + "/deploy/syncmesh.ini"});
  BOOST_CHECK_EQUAL(o.node.host, "127.0.0.1");
  BOOST_CHECK_EQUAL(o.node.port, 7440);
  BOOST_CHECK(o.node.leasing);
  BOOST_CHECK(o.node.lease_duration == 1h);
  BOOST_CHECK_EQUAL(o.http, "127.0.0.1:7441");
  BOOST_CHECK(o.level == syncmesh::log_level::info);
}

BOOST_AUTO_TEST_CASE(help_lists_every_option_with_its_default) {
  auto res = parse({"--help"});
  BOOST_REQUIRE(res.action == node_action::help);
  BOOST_CHECK(parse({"-h"}).action == node_action::help);
  const auto& help = res.text;
  for (auto name : {"host",
                    "port",
                    "peers",
                    "subnet",
                    "leasing",
                    "wire",
                    "py2p-allow-delete",
                    "lease-duration",
                    "max-lease-duration",
                    "max-clock-offset",
                    "max-peers",
                    "max-inbound",
                    "http",
                    "data-dir",
                    "durability",
                    "durability-interval",
                    "log-level",
                    "heartbeat-interval",
                    "peer-timeout",
                    "anti-entropy-interval",
                    "anti-entropy-method",
                    "redial-max",
                    "tombstone-horizon",
                    "max-value-size",
                    "max-value-depth",
                    "expected-keys",
                    "max-handshake-frame",
                    "max-pending-handshake-bytes",
                    "ingress-window",
                    "max-ae-outbox-bytes",
                    "duplicate-probe-timeout",
                    "http-token-file",
                    "tls-cert",
                    "tls-key",
                    "tls-ca",
                    "http-cert",
                    "http-key",
                    "http-allowed-hosts",
                    "http-allowed-origins",
                    "http-open",
                    "http-max-header-bytes",
                    "http-max-header-fields",
                    "http-max-url",
                    "http-max-body",
                    "http-body-piece",
                    "http-read-timeout",
                    "http-idle-timeout",
                    "http-write-timeout",
                    "http-max-connections",
                    "http-max-in-flight",
                    "config-file",
                    "dump-config"})
    BOOST_CHECK_MESSAGE(help.find(std::string{"--"} + name)
                          != std::string::npos,
                        "--help lacks --" << name);
  for (auto shown :
       {"--no-leasing", "(default: 7440)", "(default: true)",
        "(default: 127.0.0.1:7441)", "(default: 1h)", "(default: 1MiB)",
        "(default: info)", "(default: healthz,readyz)", "(default: 16KiB)",
        "(default: 20000)"})
    BOOST_CHECK_MESSAGE(help.find(shown) != std::string::npos,
                        "--help lacks " << shown);
  // Every option line states its default.
  size_t options = 0;
  size_t defaults = 0;
  for (size_t pos = 0; (pos = help.find("\n  --", pos)) != std::string::npos;
       ++pos)
    ++options;
  for (size_t pos = 0;
       (pos = help.find("(default: ", pos)) != std::string::npos; ++pos)
    ++defaults;
  BOOST_CHECK_EQUAL(defaults, options - 2); // not --config-file, --dump-config
}

BOOST_AUTO_TEST_CASE(dump_config_reads_back_to_the_same_options) {
  auto res = parse({"--dump-config", "--no-leasing",
                    "--http=", "--max-value-size=64KiB", "--peers=a:1,b:2",
                    "--heartbeat-interval=1500ms", "--http-cert=/my cert.pem",
                    "--http-key=/k.pem", "--http-allowed-hosts=a.example,b",
                    "--http-allowed-origins=https://x.example,http://y:81",
                    "--http-open=", "--http-max-body=3KiB",
                    "--http-read-timeout=2500ms"});
  BOOST_REQUIRE(res.action == node_action::dump_config);
  ini_file dumped{res.text};
  auto again = parse({"--dump-config", "--config-file=" + dumped.path});
  BOOST_REQUIRE(again.action == node_action::dump_config);
  BOOST_CHECK_EQUAL(again.text, res.text);
  auto o = ok({"--config-file=" + dumped.path});
  BOOST_CHECK(!o.node.leasing);
  BOOST_CHECK_EQUAL(o.http, "");
  BOOST_CHECK_EQUAL(o.node.peers.size(), 2u);
  BOOST_CHECK_EQUAL(o.http_server.tls_cert_file, "/my cert.pem");
  BOOST_CHECK_EQUAL(o.http_server.allowed_hosts.size(), 2u);
  BOOST_CHECK_EQUAL(o.http_server.allowed_origins.size(), 2u);
  BOOST_CHECK(o.http_server.open_paths.empty());
  BOOST_CHECK_EQUAL(o.http_server.max_body, 3072u);
  BOOST_CHECK(o.http_server.body_timeout == 2500ms);
}

BOOST_AUTO_TEST_CASE(watch_options_take_a_count_and_a_size) {
  auto d = ok({});
  BOOST_CHECK_EQUAL(d.http_max_watchers, 10'000u);
  BOOST_CHECK_EQUAL(d.http_watch_window, 8u << 20);
  auto o = ok({"--http-max-watchers=3", "--http-watch-window=256KiB"});
  BOOST_CHECK_EQUAL(o.http_max_watchers, 3u);
  BOOST_CHECK_EQUAL(o.http_watch_window, 256u << 10);
  BOOST_CHECK_EQUAL(ok({"--http-watch-window=65536"}).http_watch_window,
                    65536u);
  BOOST_CHECK(error_of({"--http-max-watchers=many"}).find("http-max-watchers")
              != std::string::npos);
  BOOST_CHECK(error_of({"--http-watch-window=8MB"}).find("http-watch-window")
              != std::string::npos);
  auto help = parse({"--help"}).text;
  BOOST_CHECK(help.find("--http-max-watchers") != std::string::npos);
  BOOST_CHECK(help.find("(default: 8MiB)") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
