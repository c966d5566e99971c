// syncmesh-node's options as a person types them, readable lease times, and
// the CLI's export/import, against real processes on 127.0.0.1. Part of
// daemon_tests (its module is defined in daemon_tests.cpp); the rules of the
// options themselves are tested without processes in node_options_tests.

#include <boost/test/unit_test.hpp>

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "support/daemon_process.hpp"
#include "support/eventually.hpp"
#include "support/process.hpp"
#include "support/scratch_dir.hpp"
#include "support/test_ca.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using syncmesh::test::child_process;
using syncmesh::test::eventually;
using syncmesh::test::scratch_dir;
using syncmesh::test::slurp;

namespace {

/// A syncmesh-node started with exactly `args` (plus quick timers), ready.
struct running_node : syncmesh::test::daemon_process {
  running_node(const std::string& dir, const std::vector<std::string>& args)
      : daemon_process(dir, syncmesh::test::quick_daemon_args({}, args)) {}
};

/// The inodes of the TCP sockets in LISTEN state on this machine.
std::set<std::string> listening_inodes() {
  std::set<std::string> out;
  for (auto table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in{table};
    std::string line;
    std::getline(in, line); // header
    while (std::getline(in, line)) {
      std::istringstream fields{line};
      std::vector<std::string> f;
      for (std::string x; fields >> x;)
        f.push_back(x);
      // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
      if (f.size() > 9 && f[3] == "0A")
        out.insert(f[9]);
    }
  }
  return out;
}

/// How many listening TCP sockets process `pid` holds.
size_t listening_sockets_of(pid_t pid) {
  auto listening = listening_inodes();
  size_t n = 0;
  auto fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& entry : std::filesystem::directory_iterator{fd_dir}) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(entry.path(), ec).string();
    if (ec || target.rfind("socket:[", 0) != 0)
      continue;
    if (listening.count(target.substr(8, target.size() - 9)) > 0)
      ++n;
  }
  return n;
}

/// Runs the CLI with `args` (a shell word list); collects stdout and stderr.
int run_cli(const std::string& args, const std::string& dir, std::string& out,
            std::string& err) {
  auto out_path = dir + "/cli.out";
  auto err_path = dir + "/cli.err";
  auto cmd = std::string{SYNCMESH_CLI_BIN} + " " + args + " > " + out_path
             + " 2> " + err_path;
  auto rc = std::system(cmd.c_str());
  out = slurp(out_path);
  err = slurp(err_path);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/// The NDJSON lines of `text`, parsed.
std::vector<json> ndjson(const std::string& text) {
  std::vector<json> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) {
    auto parsed = json::parse(line, nullptr, false);
    BOOST_REQUIRE_MESSAGE(parsed.is_object(), "not a JSON object: " << line);
    out.push_back(parsed);
  }
  return out;
}

/// Writes 1,203 keys under "bulk/" (more than one page of 1,000), three of
/// other kinds, and one key that is not UTF-8.
void fill(const running_node& d) {
  auto cli = d.client();
  for (int i = 0; i < 1200; ++i) {
    auto res = cli.Put("/v1/kv/bulk%2F" + std::to_string(10000 + i),
                       "v" + std::to_string(i), "text/plain");
    BOOST_REQUIRE(res && res->status == 204);
  }
  BOOST_REQUIRE_EQUAL(
    cli.Put("/v1/kv/doc", R"({"a":[1,2],"b":{"c":true}})", "application/json")
      ->status,
    204);
  BOOST_REQUIRE_EQUAL(cli
                        .Put("/v1/kv/raw", std::string("\x00\xff\x10", 3),
                             "application/octet-stream")
                        ->status,
                      204);
  BOOST_REQUIRE_EQUAL(cli.Put("/v1/kv/%FF%FE", "odd", "text/plain")->status,
                      204);
}

} // namespace

BOOST_AUTO_TEST_SUITE(options_as_typed)

BOOST_AUTO_TEST_CASE(leasing_false_and_an_empty_http_run_without_an_api) {
  scratch_dir dir;
  // The peer speaks "leasing off" too (--no-leasing), with its API on: nodes
  // of different leasing modes refuse each other, so the link shows that
  // --leasing=false took effect.
  running_node peer{dir.path, {"--no-leasing", "--http=127.0.0.1:0"}};
  auto status = json::parse(peer.client().Get("/v1/status")->body);
  BOOST_CHECK_EQUAL(status["leasing"], false);
  running_node quiet{dir.path,
                     {"--leasing=false", "--http=", "--peers=" + peer.listen}};
  BOOST_CHECK_EQUAL(quiet.http, "-");
  // One listening socket: the peer port. No HTTP API.
  BOOST_CHECK_EQUAL(listening_sockets_of(quiet.proc->pid()), 1u);
  BOOST_CHECK_EQUAL(listening_sockets_of(peer.proc->pid()), 2u);
  BOOST_CHECK(eventually([&] { return peer.peer_count() == 1; }));
  quiet.proc->signal(SIGTERM);
  BOOST_CHECK_EQUAL(quiet.proc->wait(5s), 0);
}

BOOST_AUTO_TEST_CASE(a_bad_boolean_exits_2_with_one_human_line) {
  scratch_dir dir;
  auto log = dir.path + "/bad.log";
  child_process p{{SYNCMESH_NODE_BIN, "--leasing=nope"}, log};
  BOOST_CHECK_EQUAL(p.wait(5s), 2);
  BOOST_CHECK_EQUAL(
    slurp(log),
    "syncmesh-node: --leasing expects true or false, got \"nope\"\n");
  child_process q{{SYNCMESH_NODE_BIN, "--foo"}, log};
  BOOST_CHECK_EQUAL(q.wait(5s), 2);
  BOOST_CHECK_EQUAL(slurp(log),
                    "syncmesh-node: unknown option --foo (see --help)\n");
}

BOOST_AUTO_TEST_CASE(peer_tls_binds_the_node_id_to_the_certificate_at_start) {
  scratch_dir dir;
  syncmesh::test::test_ca ca;
  auto write = [&](const std::string& name, const std::string& text) {
    syncmesh::test::test_ca::write(dir.path + "/" + name, text);
    return dir.path + "/" + name;
  };
  auto pair = ca.issue(std::string{"\xaa\x01", 2});
  auto cert = write("n.pem", pair.cert);
  auto key = write("n.key", pair.key);
  auto ca_pem = write("ca.pem", ca.cert_pem());
  std::vector<std::string> tls{"--tls-cert=" + cert, "--tls-key=" + key,
                               "--tls-ca=" + ca_pem, "--http="};
  // An empty data dir takes the certificate's ID and keeps it.
  {
    auto args = tls;
    args.push_back("--data-dir=" + dir.path + "/d1");
    running_node n{dir.path, args};
    BOOST_CHECK_EQUAL(n.id, "aa01");
    n.proc->signal(SIGTERM);
    BOOST_CHECK_EQUAL(n.proc->wait(5s), 0);
    BOOST_CHECK_EQUAL(slurp(dir.path + "/d1/node-id"), "aa01\n");
  }
  auto exits_2_with
    = [&](std::vector<std::string> args, const std::string& needle) {
        auto log = dir.path + "/fail.log";
        args.insert(args.begin(), SYNCMESH_NODE_BIN);
        child_process p{args, log};
        BOOST_CHECK_EQUAL(p.wait(10s), 2);
        auto text = slurp(log);
        BOOST_CHECK_MESSAGE(text.find(needle) != std::string::npos, text);
        BOOST_CHECK_EQUAL(std::count(text.begin(), text.end(), '\n'), 1);
      };
  // A data dir holding another ID: the node does not start.
  std::filesystem::create_directories(dir.path + "/d2");
  write("d2/node-id", "bbbb\n");
  auto args = tls;
  args.push_back("--data-dir=" + dir.path + "/d2");
  exits_2_with(args, "holds node ID bbbb but the TLS certificate names aa01");
  // A certificate without a node ID, and files that are not PEM.
  auto anon = ca.issue("");
  exits_2_with({"--tls-cert=" + write("anon.pem", anon.cert),
                "--tls-key=" + write("anon.key", anon.key),
                "--tls-ca=" + ca_pem, "--http="},
               "names no node");
  exits_2_with({"--tls-cert=" + write("junk.pem", "junk"), "--tls-key=" + key,
                "--tls-ca=" + ca_pem, "--http="},
               "--tls-cert: " + dir.path + "/junk.pem: not a PEM certificate");
}

BOOST_AUTO_TEST_CASE(a_lease_conflict_says_when_in_iso_8601) {
  scratch_dir dir;
  running_node a{dir.path, {"--http=127.0.0.1:0"}};
  running_node b{dir.path, {"--http=127.0.0.1:0", "--peers=" + a.listen}};
  BOOST_REQUIRE_EQUAL(a.client().Put("/v1/kv/owned", "a", "text/plain")->status,
                      204);
  BOOST_REQUIRE(eventually([&] {
    auto res = b.client().Get("/v1/kv/owned");
    return res && res->status == 200;
  }));
  auto conflict = b.client().Put("/v1/kv/owned", "b", "text/plain");
  BOOST_REQUIRE(conflict);
  BOOST_CHECK_EQUAL(conflict->status, 409);
  auto body = json::parse(conflict->body);
  BOOST_CHECK_EQUAL(body["owner"], a.id);
  BOOST_CHECK(body["expires_at"].is_number_unsigned());
  // The same instant for people, beside the machine field.
  static const std::regex iso{R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$)"};
  auto at_iso = body.value("expires_at_iso", "");
  BOOST_CHECK_MESSAGE(std::regex_match(at_iso, iso), at_iso);
  // The default lease is an hour: "in 59 min" (or "in 1 h" on a fast
  // machine that answers within the same second).
  static const std::regex readable{
    R"(until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in (59 min|1 h)\))"};
  auto message = body["message"].get<std::string>();
  BOOST_CHECK_MESSAGE(std::regex_search(message, readable), message);
  BOOST_CHECK(message.find("since the epoch") == std::string::npos);
  // The CLI shows the same line.
  std::string out;
  std::string err;
  BOOST_CHECK_EQUAL(
    run_cli("--node=" + b.http + " set owned b", dir.path, out, err), 1);
  BOOST_CHECK_MESSAGE(std::regex_search(err, readable), err);
  BOOST_CHECK(err.find(a.id) != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cli_export_import)

BOOST_AUTO_TEST_CASE(export_prints_every_item_as_one_json_line) {
  scratch_dir dir;
  running_node a{dir.path, {"--http=127.0.0.1:0"}};
  fill(a);
  std::string out;
  std::string err;
  // A token is sent as a header; this node has no tokens and ignores it.
  BOOST_REQUIRE_EQUAL(
    run_cli("--node=http://" + a.http + " --token=t0k3n export", dir.path, out,
            err),
    0);
  auto lines = ndjson(out);
  BOOST_REQUIRE_EQUAL(lines.size(), 1203u);
  BOOST_CHECK(err.find("exported 1203 items") != std::string::npos);
  std::set<std::string> keys;
  for (const auto& item : lines) {
    BOOST_CHECK(item.contains("value"));
    BOOST_CHECK_EQUAL(item["owner"], a.id);
    BOOST_CHECK(item["time"].is_number_unsigned());
    BOOST_CHECK(item["lease_end"].is_number_unsigned());
    keys.insert(item.contains("key")
                  ? item["key"].get<std::string>()
                  : "b64:" + item["key_base64"].get<std::string>());
  }
  BOOST_CHECK_EQUAL(keys.size(), 1203u);
  BOOST_CHECK(keys.count("bulk/10000") == 1 && keys.count("bulk/11199") == 1);
  // The API's item form: a key that is not UTF-8 keeps key_base64; bytes and
  // structured values keep their JSON forms.
  BOOST_CHECK(keys.count("b64://4=") == 1);
  for (const auto& item : lines) {
    if (item.value("key", "") == "doc")
      BOOST_CHECK_EQUAL(item["value"]["b"]["c"], true);
    if (item.value("key", "") == "raw")
      BOOST_CHECK_EQUAL(item["value"]["$base64"], "AP8Q");
  }
  // --prefix limits it; SYNCMESH_TOKEN works like --token.
  BOOST_REQUIRE_EQUAL(
    run_cli("--node=" + a.http + " export --prefix=do", dir.path, out, err), 0);
  BOOST_CHECK_EQUAL(ndjson(out).size(), 1u);
  BOOST_REQUIRE_EQUAL(
    run_cli("--node=" + a.http + " export --prefix=zzz", dir.path, out, err),
    0);
  BOOST_CHECK_EQUAL(out, "");
  ::setenv("SYNCMESH_TOKEN", "t0k3n", 1);
  auto rc
    = run_cli("--node=" + a.http + " export --prefix=raw", dir.path, out, err);
  ::unsetenv("SYNCMESH_TOKEN");
  BOOST_CHECK_EQUAL(rc, 0);
  BOOST_CHECK_EQUAL(ndjson(out).size(), 1u);
}

BOOST_AUTO_TEST_CASE(import_refuses_bad_lines_before_sending_them) {
  scratch_dir dir;
  running_node a{dir.path, {"--http=127.0.0.1:0"}};
  std::string out;
  std::string err;
  std::ofstream{dir.path + "/bad.ndjson"} << "\n{\"key\":\"ok\",\"value\":1}\n"
                                             "{\"key\":7,\"value\":1}\n";
  BOOST_CHECK_EQUAL(run_cli("--node=" + a.http + " --batch=10 import "
                              + dir.path + "/bad.ndjson",
                            dir.path, out, err),
                    1);
  BOOST_CHECK_MESSAGE(
    err.find("bad.ndjson line 3: needs \"key\"") != std::string::npos, err);
  std::ofstream{dir.path + "/bad2.ndjson"} << "not json\n";
  BOOST_CHECK_EQUAL(
    run_cli("--node=" + a.http + " import " + dir.path + "/bad2.ndjson",
            dir.path, out, err),
    1);
  BOOST_CHECK_MESSAGE(
    err.find("line 1: not a JSON object") != std::string::npos, err);
  // Nothing of either file reached the node.
  BOOST_CHECK_EQUAL(a.client().Get("/v1/kv/ok")->status, 404);
  BOOST_CHECK_EQUAL(
    run_cli("--node=" + a.http + " --batch=0 import", dir.path, out, err), 2);
}

// Needs the batch endpoint (POST /v1/kv, application/x-ndjson), which another
// part of issue 14 builds: until it lands this test FAILS with the CLI's
// "failed (404): this node has no batch endpoint" line. It is not skipped.
BOOST_AUTO_TEST_CASE(import_loads_what_export_wrote_into_another_node) {
  scratch_dir dir;
  running_node a{dir.path, {"--http=127.0.0.1:0"}};
  running_node b{dir.path, {"--http=127.0.0.1:0"}}; // not a's peer
  fill(a);
  std::string out;
  std::string err;
  auto dump = dir.path + "/dump.ndjson";
  BOOST_REQUIRE_EQUAL(
    std::system((std::string{SYNCMESH_CLI_BIN} + " --node=" + a.http
                 + " export > " + dump + " 2> /dev/null")
                  .c_str()),
    0);
  auto rc = run_cli("--node=" + b.http + " --batch=500 import " + dump,
                    dir.path, out, err);
  BOOST_REQUIRE_MESSAGE(rc == 0, "import failed: " << err);
  BOOST_CHECK_MESSAGE(
    err.find("imported 1203 lines in 3 batches") != std::string::npos, err);
  // Deletes, from stdin ("-").
  std::ofstream{dir.path + "/del.ndjson"} << R"({"key":"doc","delete":true})"
                                          << "\n";
  rc = run_cli("--node=" + b.http + " import - < " + dir.path + "/del.ndjson",
               dir.path, out, err);
  BOOST_REQUIRE_MESSAGE(rc == 0, "import of a delete failed: " << err);
  // b holds a's items (owned by b now), minus the deleted one.
  BOOST_REQUIRE_EQUAL(
    run_cli("--node=" + b.http + " export", dir.path, out, err), 0);
  auto lines = ndjson(out);
  BOOST_CHECK_EQUAL(lines.size(), 1202u);
  for (const auto& item : lines)
    BOOST_CHECK_EQUAL(item["owner"], b.id);
  BOOST_CHECK_EQUAL(b.client().Get("/v1/kv/bulk%2F10007")->body, "v7");
  BOOST_CHECK_EQUAL(b.client().Get("/v1/kv/raw")->body,
                    std::string("\x00\xff\x10", 3));
  BOOST_CHECK_EQUAL(b.client().Get("/v1/kv/%FF%FE")->body, "odd");
  BOOST_CHECK_EQUAL(b.client().Get("/v1/kv/doc")->status, 404);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cli_watch)

// A `watch` that falls behind the node's event window is ended by the node
// with an `overflow` event: the CLI prints it and exits 3 with a line that
// says events were lost, instead of ending as if the stream simply closed.
// The CLI is made slow by not reading its stdout: once the pipe is full it
// stops reading its socket, and the node's window (256 KiB) passes it by.
BOOST_AUTO_TEST_CASE(
  a_watch_that_falls_behind_exits_3_saying_events_were_lost) {
  scratch_dir dir;
  running_node a{dir.path,
                 {"--http=127.0.0.1:0", "--http-watch-window=256KiB"}};
  child_process watch{{SYNCMESH_CLI_BIN, "--node=" + a.http, "watch"},
                      dir.path + "/watch.err"};
  BOOST_REQUIRE(syncmesh::test::eventually([&] {
    auto res = a.client().Get("/metrics");
    return res && res->status == 200
           && res->body.find("syncmesh_watch_streams_open 1")
                != std::string::npos;
  }));
  std::string big(32 * 1024, 'x');
  auto cli = a.client();
  // 16 MiB of events: far beyond the pipe, the socket buffers and the
  // window together.
  for (int i = 0; i < 512; ++i)
    BOOST_REQUIRE_EQUAL(
      cli.Put("/v1/kv/w" + std::to_string(i % 16), big, "text/plain")->status,
      204);
  // Read what the CLI printed until the overflow event's data line. One
  // blank line separates events; two empty reads in a row mean the pipe
  // ended (or stayed silent for a second): then the CLI must have exited.
  bool overflow_seen = false;
  int rc = -1;
  int empty_reads = 0;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto line = watch.read_line(1s);
    empty_reads = line.empty() ? empty_reads + 1 : 0;
    if (line == "event: overflow")
      overflow_seen = true;
    if (overflow_seen && line.rfind("data: ", 0) == 0)
      break;
    if (empty_reads >= 2 && (rc = watch.wait(5ms)) != -1)
      break;
  }
  BOOST_CHECK(overflow_seen);
  if (rc == -1)
    rc = watch.wait(20s);
  BOOST_CHECK_EQUAL(rc, 3);
  auto err = slurp(dir.path + "/watch.err");
  BOOST_CHECK_MESSAGE(err.find("events were lost") != std::string::npos, err);
}

BOOST_AUTO_TEST_SUITE_END()
