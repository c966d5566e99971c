// The daemon, its HTTP API and the CLI, as real processes on 127.0.0.1.

#define BOOST_TEST_MODULE syncmesh_daemon
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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

#include "support/caf_setup.hpp"
#include "support/daemon_process.hpp"
#include "support/eventually.hpp"
#include "support/process.hpp"
#include "support/scratch_dir.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using syncmesh::test::child_process;
using syncmesh::test::eventually;
using syncmesh::test::scratch_dir;

namespace {

/// One syncmesh-node process (API on, info log, quick timers).
struct node_process : syncmesh::test::daemon_process {
  node_process(const std::string& dir, const std::vector<std::string>& extra)
      : daemon_process(dir, syncmesh::test::quick_daemon_args(
                              {"--http=127.0.0.1:0", "--log-level=info",
                               "--anti-entropy-interval=300ms"},
                              extra)) {}

  /// SIGTERM; returns the exit code, checking it came within a second.
  int stop() {
    auto start = std::chrono::steady_clock::now();
    proc->signal(SIGTERM);
    auto rc = proc->wait(5s);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
    BOOST_CHECK_MESSAGE(took < 1s, "stopping took " << took.count() << " ms");
    return rc;
  }
};

/// True when the node's /metrics has a line containing `text`.
bool metrics_show(const node_process& n, const std::string& text) {
  auto m = n.client().Get("/metrics");
  return m && m->status == 200 && m->body.find(text) != std::string::npos;
}

/// The metrics line of a node with one open watch stream.
const std::string watching_one = "syncmesh_state{what=\"watchers\"} 1";

json body_json(const httplib::Result& res) {
  BOOST_REQUIRE(res);
  auto parsed = json::parse(res->body, nullptr, false);
  BOOST_REQUIRE_MESSAGE(!parsed.is_discarded(), "not JSON: " << res->body);
  return parsed;
}

/// Runs the CLI; returns its exit code and collects stdout and stderr.
int cli(const node_process& d, const std::string& args, std::string& out,
        std::string& err, const std::string& dir) {
  auto out_path = dir + "/cli.out";
  auto err_path = dir + "/cli.err";
  auto cmd = std::string{SYNCMESH_CLI_BIN} + " --node=" + d.http + " " + args
             + " > " + out_path + " 2> " + err_path;
  auto rc = std::system(cmd.c_str());
  auto slurp = [](const std::string& path) {
    std::ifstream in{path};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  out = slurp(out_path);
  err = slurp(err_path);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

struct two_nodes {
  scratch_dir scratch;
  const std::string& dir = scratch.path;
  node_process a{dir, {}};
  node_process b{dir, {"--peers=" + a.listen}};

  /// Both ends know the link: b dialled a (b is ready once it has its
  /// configured peer), and a registered b, which happens a little later.
  two_nodes() {
    BOOST_REQUIRE(eventually([&] { return b.status_of("/readyz") == 200; }));
    BOOST_REQUIRE(eventually([&] { return a.peer_count() == 1; }));
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(http_api, two_nodes)

BOOST_AUTO_TEST_CASE(values_round_trip_with_their_metadata) {
  auto cli = a.client();
  auto put = cli.Put("/v1/kv/greeting", "hello", "text/plain");
  BOOST_REQUIRE(put);
  BOOST_CHECK_EQUAL(put->status, 204);
  auto got = cli.Get("/v1/kv/greeting");
  BOOST_REQUIRE(got);
  BOOST_CHECK_EQUAL(got->status, 200);
  BOOST_CHECK_EQUAL(got->body, "hello");
  BOOST_CHECK_EQUAL(got->get_header_value("Content-Type"),
                    "text/plain; charset=utf-8");
  BOOST_CHECK_EQUAL(got->get_header_value("X-Syncmesh-Owner"), a.id);
  auto time_ms = std::stoull(got->get_header_value("X-Syncmesh-Time"));
  auto end_ms = std::stoull(got->get_header_value("X-Syncmesh-Lease-End"));
  BOOST_CHECK_EQUAL(end_ms - time_ms, 3'600'000u);
  // Raw bytes and JSON values.
  std::string raw("\x00\xff\x10", 3);
  BOOST_CHECK_EQUAL(
    cli.Put("/v1/kv/raw", raw, "application/octet-stream")->status, 204);
  got = cli.Get("/v1/kv/raw");
  BOOST_CHECK_EQUAL(got->body, raw);
  BOOST_CHECK_EQUAL(got->get_header_value("Content-Type"),
                    "application/octet-stream");
  BOOST_CHECK_EQUAL(
    cli.Put("/v1/kv/doc", R"({"a":[1,2],"b":{"c":true}})", "application/json")
      ->status,
    204);
  auto doc = body_json(cli.Get("/v1/kv/doc"));
  BOOST_CHECK_EQUAL(doc["a"][1], 2);
  BOOST_CHECK_EQUAL(doc["b"]["c"], true);
  // Percent-encoded keys are decoded: "a b/c" is one key.
  BOOST_CHECK_EQUAL(cli.Put("/v1/kv/a%20b%2Fc", "x", "text/plain")->status,
                    204);
  BOOST_CHECK_EQUAL(cli.Get("/v1/kv/a%20b%2Fc")->body, "x");
  // Replicated to the other node.
  BOOST_CHECK(eventually([&] {
    auto res = b.client().Get("/v1/kv/greeting");
    return res && res->status == 200 && res->body == "hello";
  }));
}

BOOST_AUTO_TEST_CASE(every_error_status) {
  auto ca = a.client();
  auto cb = b.client();
  // 404 for absent keys, on read and delete.
  BOOST_CHECK_EQUAL(ca.Get("/v1/kv/missing")->status, 404);
  BOOST_CHECK_EQUAL(ca.Delete("/v1/kv/missing")->status, 404);
  // 400 for bad keys.
  BOOST_CHECK_EQUAL(ca.Put("/v1/kv/", "v", "text/plain")->status, 400);
  BOOST_CHECK_EQUAL(
    ca.Put("/v1/kv/" + std::string(5000, 'k'), "v", "text/plain")->status, 400);
  // 413 over the size limit.
  BOOST_CHECK_EQUAL(
    ca.Put("/v1/kv/big", std::string(2 * 1024 * 1024, 'v'), "text/plain")
      ->status,
    413);
  // 409 with the owner when another node holds the lease.
  BOOST_REQUIRE_EQUAL(ca.Put("/v1/kv/owned", "a", "text/plain")->status, 204);
  BOOST_REQUIRE(eventually([&] { return b.status_of("/v1/kv/owned") == 200; }));
  auto conflict = cb.Put("/v1/kv/owned", "b", "text/plain");
  BOOST_CHECK_EQUAL(conflict->status, 409);
  auto err = body_json(conflict);
  BOOST_CHECK_EQUAL(err["error"], "lease");
  BOOST_CHECK_EQUAL(err["owner"], a.id);
  BOOST_CHECK(err["expires_at"].get<uint64_t>() > 0);
  BOOST_CHECK_EQUAL(cb.Delete("/v1/kv/owned")->status, 409);
  BOOST_CHECK_EQUAL(
    cb.Post("/v1/kv/owned/delta", R"({"x":1})", "application/json")->status,
    409);
  // Deltas: 400 on non-JSON, 422 on a non-map value, 204 when merged.
  BOOST_CHECK_EQUAL(
    ca.Post("/v1/kv/m/delta", "not json", "application/json")->status, 400);
  BOOST_CHECK_EQUAL(
    ca.Post("/v1/kv/m/delta", "[1,2]", "application/json")->status, 400);
  BOOST_CHECK_EQUAL(
    ca.Post("/v1/kv/owned/delta", R"({"x":1})", "application/json")->status,
    422);
  BOOST_CHECK_EQUAL(
    ca.Post("/v1/kv/m/delta", R"({"x":1})", "application/json")->status, 204);
  BOOST_CHECK_EQUAL(
    ca.Post("/v1/kv/m/delta", R"({"y":2})", "application/json")->status, 204);
  auto merged = body_json(ca.Get("/v1/kv/m"));
  BOOST_CHECK_EQUAL(merged["x"], 1);
  BOOST_CHECK_EQUAL(merged["y"], 2);
  // A malformed listing request, a non-UTF-8 text body.
  BOOST_CHECK_EQUAL(ca.Get("/v1/kv?limit=abc")->status, 400);
  BOOST_CHECK_EQUAL(ca.Put("/v1/kv/t", "\xff\xfe", "text/plain")->status, 400);
  // Every error body is JSON with a message.
  auto missing = body_json(ca.Get("/v1/kv/missing"));
  BOOST_CHECK(missing.contains("message"));
  // Deleting works and then the key is gone.
  BOOST_CHECK_EQUAL(ca.Delete("/v1/kv/m")->status, 204);
  BOOST_CHECK_EQUAL(ca.Get("/v1/kv/m")->status, 404);
}

BOOST_AUTO_TEST_CASE(listing_pages_with_a_cursor) {
  auto cli = a.client();
  for (int i = 0; i < 25; ++i)
    cli.Put("/v1/kv/p" + std::to_string(100 + i), "v", "text/plain");
  cli.Put("/v1/kv/other", "v", "text/plain");
  cli.Put("/v1/kv/%FF%FE", "v", "text/plain");
  std::vector<std::string> keys;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    httplib::Params params{{"prefix", "p"}, {"limit", "10"}};
    if (!cursor.empty())
      params.emplace("cursor", cursor);
    auto body = body_json(cli.Get("/v1/kv", params, httplib::Headers{}));
    for (auto& item : body["items"]) {
      keys.push_back(item["key"]);
      BOOST_CHECK_EQUAL(item["owner"], a.id);
      BOOST_CHECK(item["time"].get<uint64_t>() > 0);
    }
    if (!body.contains("cursor"))
      break;
    cursor = body["cursor"];
  }
  BOOST_REQUIRE_EQUAL(keys.size(), 25u);
  BOOST_CHECK_EQUAL(keys.front(), "p100");
  BOOST_CHECK_EQUAL(keys.back(), "p124");
  // A key that is not UTF-8 comes back base64 with a marker.
  auto all = body_json(cli.Get("/v1/kv"));
  bool found = false;
  for (auto& item : all["items"])
    if (item.contains("key_base64") && item["key_base64"] == "//4=")
      found = true;
  BOOST_CHECK(found);
}

BOOST_AUTO_TEST_CASE(status_peers_health_and_metrics) {
  auto cli = a.client();
  // a learns of b's inbound link after b is ready; wait for it.
  BOOST_REQUIRE(eventually([&] { return a.peer_count() == 1; }));
  auto status = body_json(cli.Get("/v1/status"));
  BOOST_CHECK_EQUAL(status["node_id"], a.id);
  BOOST_CHECK_EQUAL(status["listen"], a.listen);
  BOOST_CHECK_EQUAL(status["leasing"], true);
  BOOST_CHECK(status["protocol_id"].get<std::string>().find("syncmesh ") == 0);
  BOOST_CHECK_EQUAL(status["peers"], 1);
  BOOST_CHECK(status.contains("uptime_s") && status.contains("keys"));
  auto peers = body_json(cli.Get("/v1/peers"))["peers"];
  BOOST_REQUIRE_EQUAL(peers.size(), 1u);
  BOOST_CHECK_EQUAL(peers[0]["node_id"], b.id);
  BOOST_CHECK_EQUAL(peers[0]["direction"], "in");
  BOOST_CHECK_EQUAL(cli.Get("/healthz")->status, 200);
  BOOST_CHECK_EQUAL(cli.Get("/readyz")->status, 200);
  cli.Put("/v1/kv/m1", "v", "text/plain");
  BOOST_REQUIRE(eventually([&] { return b.status_of("/v1/kv/m1") == 200; }));
  // Links report their traffic with each heartbeat.
  BOOST_CHECK(eventually([&] {
    auto m = b.client().Get("/metrics");
    return m
           && m->body.find("syncmesh_link_messages_total{direction=\"in\","
                           "kind=\"hello\"} 1")
                != std::string::npos
           && m->body.find("syncmesh_link_bytes_total{direction=\"out\","
                           "kind=\"ping\"}")
                != std::string::npos;
  }));
  auto metrics = b.client().Get("/metrics");
  BOOST_REQUIRE(metrics);
  BOOST_CHECK_EQUAL(metrics->status, 200);
  for (auto name :
       {"syncmesh_writes_total{origin=\"remote\"} 1",
        "syncmesh_propagation_delay_seconds_count 1",
        "syncmesh_state{what=\"peers\"} 1", "syncmesh_flood_frames_total"})
    BOOST_CHECK_MESSAGE(metrics->body.find(name) != std::string::npos,
                        "metrics lack " << name);
}

BOOST_AUTO_TEST_CASE(watch_streams_events_and_ends_at_shutdown) {
  std::atomic<bool> got_update{false};
  std::atomic<bool> got_delete{false};
  std::atomic<bool> stream_ended{false};
  std::string seen;
  std::mutex mtx;
  std::thread watcher{[&] {
    auto cli = b.client();
    cli.set_read_timeout(30);
    cli.Get("/v1/watch?prefix=w", [&](const char* data, size_t len) {
      std::lock_guard<std::mutex> guard{mtx};
      seen.append(data, len);
      got_update = seen.find("event: update") != std::string::npos
                   && seen.find("\"key\":\"w1\"") != std::string::npos;
      got_delete = seen.find("event: delete") != std::string::npos;
      return true;
    });
    stream_ended = true;
  }};
  // The stream is open once the watcher count shows it.
  BOOST_REQUIRE(eventually([&] { return metrics_show(b, watching_one); }));
  auto ca = a.client();
  ca.Put("/v1/kv/x-not-watched", "v", "text/plain");
  ca.Put("/v1/kv/w1", "v", "text/plain");
  ca.Delete("/v1/kv/w1");
  BOOST_CHECK(eventually([&] { return got_update && got_delete; }));
  {
    std::lock_guard<std::mutex> guard{mtx};
    BOOST_CHECK(seen.find("x-not-watched") == std::string::npos);
  }
  BOOST_CHECK_EQUAL(b.stop(), 0);
  BOOST_CHECK(eventually([&] { return stream_ended.load(); }, 5s));
  watcher.join();
}

BOOST_AUTO_TEST_CASE(watch_streams_are_capped) {
  // Eight streams (the cap set by --http-max-watchers) stay open; the
  // ninth is refused with 503.
  node_process capped{dir, {"--http-max-watchers=8"}};
  std::atomic<bool> stop{false};
  std::vector<std::thread> streams;
  for (int i = 0; i < 8; ++i)
    streams.emplace_back([&] {
      auto cli = capped.client();
      cli.Get("/v1/watch", [&](const char*, size_t) { return !stop.load(); });
    });
  BOOST_REQUIRE(eventually([&] {
    return metrics_show(capped, "syncmesh_state{what=\"watchers\"} 8");
  }));
  auto refused = capped.client().Get("/v1/watch");
  BOOST_REQUIRE(refused);
  BOOST_CHECK_EQUAL(refused->status, 503);
  BOOST_CHECK_EQUAL(refused->get_header_value("Retry-After"), "5");
  BOOST_CHECK_EQUAL(body_json(refused)["error"], "overloaded");
  // Ordinary requests still get served while every stream is open.
  BOOST_CHECK_EQUAL(capped.client().Get("/healthz")->status, 200);
  stop = true;
  // Each client checks `stop` when data arrives: one write reaches all.
  capped.client().Put("/v1/kv/wake", "v", "text/plain");
  for (auto& t : streams)
    t.join();
  BOOST_CHECK(eventually([&] {
    return metrics_show(capped, "syncmesh_state{what=\"watchers\"} 0");
  }));
}

BOOST_AUTO_TEST_CASE(messages_are_posted_and_watched) {
  std::atomic<bool> got{false};
  std::atomic<bool> got_direct{false};
  std::string seen;
  std::mutex mtx;
  std::thread watcher{[&] {
    auto cli = b.client();
    cli.Get("/v1/watch?prefix=none", [&](const char* data, size_t len) {
      std::lock_guard<std::mutex> guard{mtx};
      seen.append(data, len);
      got = seen.find("event: message") != std::string::npos
            && seen.find("\"hello\"") != std::string::npos;
      got_direct = seen.find("\"for-b\"") != std::string::npos;
      return !(got && got_direct);
    });
  }};
  BOOST_REQUIRE(eventually([&] { return metrics_show(b, watching_one); }));
  auto ca = a.client();
  auto sent = ca.Post("/v1/messages", R"(["hello", 42])", "application/json");
  BOOST_REQUIRE(sent);
  BOOST_CHECK_EQUAL(sent->status, 202);
  BOOST_CHECK(body_json(sent)["id"].is_string());
  BOOST_CHECK_EQUAL(ca.Post("/v1/messages",
                            json{{"packets", {"for-b"}}, {"to", b.id}}.dump(),
                            "application/json")
                      ->status,
                    202);
  BOOST_CHECK(eventually([&] { return got && got_direct; }));
  watcher.join();
  // Malformed requests.
  BOOST_CHECK_EQUAL(ca.Post("/v1/messages", "nope", "application/json")->status,
                    400);
  BOOST_CHECK_EQUAL(
    ca.Post("/v1/messages", R"({"packets":[1],"to":"xyz"})", "application/json")
      ->status,
    400);
  // The CLI sends too.
  std::string out;
  std::string err;
  BOOST_CHECK_EQUAL(cli(a, "send --to=" + b.id + " ping", out, err, dir), 0);
  BOOST_CHECK(!out.empty());
}

BOOST_AUTO_TEST_CASE(the_cli_reads_writes_and_reports_errors) {
  std::string out;
  std::string err;
  BOOST_CHECK_EQUAL(cli(a, "set color blue", out, err, dir), 0);
  BOOST_CHECK_EQUAL(cli(a, "get color", out, err, dir), 0);
  BOOST_CHECK_EQUAL(out, "blue\n");
  BOOST_CHECK_EQUAL(cli(a, "delta shape '{\"sides\":4}'", out, err, dir), 0);
  BOOST_CHECK_EQUAL(cli(a, "get shape", out, err, dir), 0);
  BOOST_CHECK_EQUAL(out, "{\"sides\":4}\n");
  BOOST_CHECK_EQUAL(cli(a, "keys", out, err, dir), 0);
  BOOST_CHECK_EQUAL(out, "color\nshape\n");
  BOOST_CHECK_EQUAL(cli(a, "items", out, err, dir), 0);
  BOOST_CHECK(out.find("color\tblue\t" + a.id.substr(0, 12))
              != std::string::npos);
  BOOST_CHECK_EQUAL(cli(a, "status", out, err, dir), 0);
  BOOST_CHECK(out.find("node_id: " + a.id) != std::string::npos);
  BOOST_CHECK_EQUAL(cli(a, "peers", out, err, dir), 0);
  BOOST_CHECK(out.find(b.id.substr(0, 12)) != std::string::npos);
  // Errors: non-zero exit and the server's message.
  BOOST_CHECK_NE(cli(a, "get missing", out, err, dir), 0);
  BOOST_CHECK(err.find("404") != std::string::npos);
  BOOST_REQUIRE(eventually([&] { return b.status_of("/v1/kv/color") == 200; }));
  BOOST_CHECK_NE(cli(b, "set color red", out, err, dir), 0);
  BOOST_CHECK(err.find("409") != std::string::npos);
  BOOST_CHECK(err.find(a.id) != std::string::npos);
  BOOST_CHECK_NE(cli(a, "frobnicate", out, err, dir), 0);
  BOOST_CHECK(err.find("unknown command") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

/// Two running nodes of a mesh configured for three (--cluster-size=3):
/// majority (2) can be reached, all (3) cannot.
struct two_of_three {
  scratch_dir scratch;
  const std::string& dir = scratch.path;
  node_process a{dir, {"--cluster-size=3"}};
  node_process b{dir, {"--peers=" + a.listen, "--cluster-size=3"}};

  two_of_three() {
    BOOST_REQUIRE(eventually([&] { return b.status_of("/readyz") == 200; }));
    BOOST_REQUIRE(eventually([&] { return a.peer_count() == 1; }));
  }
};

BOOST_FIXTURE_TEST_SUITE(confirmed_writes, two_of_three)

BOOST_AUTO_TEST_CASE(http_confirm_parameters) {
  auto c = a.client();
  // Majority of 3 is 2: both running nodes.
  auto res = c.Put("/v1/kv/k1?confirm=majority&timeout=5s", "v", "text/plain");
  BOOST_REQUIRE(res);
  BOOST_CHECK_EQUAL(res->status, 200);
  auto body = body_json(res);
  BOOST_CHECK_EQUAL(body["required"], 2);
  BOOST_CHECK_EQUAL(body["cluster_size"], 3);
  BOOST_CHECK(body["confirmed"].get<int>() >= 2);
  // Node b holds it when the answer comes (it said so).
  BOOST_CHECK_EQUAL(b.status_of("/v1/kv/k1"), 200);
  // All of 3 cannot be met: 202 with the counts, the write standing.
  res = c.Put("/v1/kv/k2?confirm=all&timeout=400ms", "v", "text/plain");
  BOOST_REQUIRE(res);
  BOOST_CHECK_EQUAL(res->status, 202);
  body = body_json(res);
  BOOST_CHECK_EQUAL(body["error"], "unconfirmed");
  BOOST_CHECK_EQUAL(body["confirmed"], 2);
  BOOST_CHECK_EQUAL(body["required"], 3);
  BOOST_CHECK_EQUAL(a.status_of("/v1/kv/k2"), 200);
  BOOST_REQUIRE(eventually([&] { return b.status_of("/v1/kv/k2") == 200; }));
  // Delta, delete and a JSON batch take it too.
  res = c.Post("/v1/kv/m/delta?confirm=2", R"({"x":1})", "application/json");
  BOOST_REQUIRE(res);
  BOOST_CHECK_EQUAL(res->status, 200);
  res = c.Post("/v1/kv?confirm=majority",
               R"([{"key":"b1","value":1},{"key":"b2","value":2}])",
               "application/json");
  BOOST_REQUIRE(res);
  BOOST_CHECK_EQUAL(res->status, 200);
  BOOST_CHECK_EQUAL(body_json(res)["applied"], 2);
  res = c.Delete("/v1/kv/k1?confirm=majority");
  BOOST_REQUIRE(res);
  BOOST_CHECK_EQUAL(res->status, 200);
  BOOST_CHECK_EQUAL(b.status_of("/v1/kv/k1"), 404);
  // Another node's key: 409 whatever the concern.
  res = b.client().Put("/v1/kv/k2?confirm=majority", "w", "text/plain");
  BOOST_REQUIRE(res);
  BOOST_CHECK_EQUAL(res->status, 409);
  // Bad parameters: 400 with a reason, nothing written.
  for (const char* q :
       {"confirm=most", "confirm=0", "confirm=9999999",
        "confirm=majority&timeout=soon", "confirm=majority&timeout=0s",
        "confirm=majority&timeout=1h", "timeout=2s", "confirm=4"}) {
    res = c.Put(std::string{"/v1/kv/bad?"} + q, "v", "text/plain");
    BOOST_REQUIRE(res);
    BOOST_CHECK_MESSAGE(res->status == 400, q << " gave " << res->status);
  }
  BOOST_CHECK_EQUAL(a.status_of("/v1/kv/bad"), 404);
  res = c.Post("/v1/kv?confirm=all", "{\"key\":\"n\",\"value\":1}\n",
               "application/x-ndjson");
  BOOST_REQUIRE(res);
  BOOST_CHECK_EQUAL(res->status, 400);
}

BOOST_AUTO_TEST_CASE(cli_confirm) {
  std::string out;
  std::string err;
  BOOST_CHECK_EQUAL(cli(a,
                        "set --confirm=majority --confirm-timeout=5s c1 blue",
                        out, err, dir),
                    0);
  BOOST_CHECK(out.find("confirmed by") != std::string::npos);
  BOOST_CHECK(out.find("of 2 required") != std::string::npos);
  BOOST_CHECK_EQUAL(b.status_of("/v1/kv/c1"), 200);
  // Unconfirmed: exit code 3, the write standing.
  BOOST_CHECK_EQUAL(
    cli(a, "set --confirm=all --confirm-timeout=300ms c2 red", out, err, dir),
    3);
  BOOST_CHECK(err.find("unconfirmed") != std::string::npos);
  BOOST_CHECK_EQUAL(a.status_of("/v1/kv/c2"), 200);
  BOOST_CHECK_EQUAL(cli(a, "del --confirm=2 c1", out, err, dir), 0);
  BOOST_CHECK_EQUAL(
    cli(a, "delta --confirm=majority shape '{\"s\":1}'", out, err, dir), 0);
  // Bad values are refused before anything is sent.
  BOOST_CHECK_EQUAL(cli(a, "set --confirm=most c3 x", out, err, dir), 2);
  BOOST_CHECK_EQUAL(
    cli(a, "set --confirm=all --confirm-timeout=soon c3 x", out, err, dir), 2);
  BOOST_CHECK_EQUAL(cli(a, "set --confirm-timeout=1s c3 x", out, err, dir), 2);
  BOOST_CHECK_EQUAL(cli(a, "get --confirm=all c2", out, err, dir), 2);
  BOOST_CHECK_EQUAL(a.status_of("/v1/kv/c3"), 404);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lifecycle)

BOOST_AUTO_TEST_CASE(sigterm_says_goodbye_and_exits_zero_within_a_second) {
  scratch_dir scratch;
  const auto& dir = scratch.path;
  node_process a{dir, {}};
  node_process b{dir, {"--peers=" + a.listen}};
  BOOST_REQUIRE(eventually([&] { return a.peer_count() == 1; }));
  BOOST_CHECK_EQUAL(b.stop(), 0);
  // The peer heard the goodbye: it closed the link for "shutdown", not for
  // a heartbeat timeout (a deadline shorter than the timeout would say the
  // same on an idle machine, but not under load).
  BOOST_REQUIRE(eventually([&] { return a.peer_count() == 0; }));
  BOOST_CHECK(
    metrics_show(a, "syncmesh_link_closes_total{reason=\"shutdown\"} 1"));
  BOOST_CHECK(!metrics_show(a, "reason=\"heartbeat timeout\""));
  BOOST_CHECK_EQUAL(a.stop(), 0);
}

BOOST_AUTO_TEST_CASE(a_data_dir_keeps_the_identity) {
  scratch_dir scratch;
  const auto& dir = scratch.path;
  std::string first_id;
  {
    node_process a{dir, {"--data-dir=" + dir + "/data"}};
    first_id = a.id;
    BOOST_CHECK_EQUAL(a.stop(), 0);
  }
  node_process again{dir, {"--data-dir=" + dir + "/data"}};
  BOOST_CHECK_EQUAL(again.id, first_id);
  node_process fresh{dir, {}};
  BOOST_CHECK_NE(fresh.id, first_id);
}

/// Keys under `prefix` that `n` holds (one page of up to 1,000).
size_t keys_held(const node_process& n, const std::string& prefix) {
  auto res = n.client().Get("/v1/kv?limit=1000&prefix=" + prefix);
  if (!res || res->status != 200)
    return 0;
  auto parsed = json::parse(res->body, nullptr, false);
  return parsed.is_object() && parsed["items"].is_array()
           ? parsed["items"].size()
           : 0;
}

BOOST_AUTO_TEST_CASE(a_whole_cluster_killed_at_once_comes_back_with_every_key) {
  // Issue 15's first finding: kill -9 of every node used to lose every key.
  scratch_dir scratch;
  const auto& dir = scratch.path;
  auto data = [&](const char* name) {
    return std::vector<std::string>{"--data-dir=" + dir + "/" + name,
                                    "--durability=always"};
  };
  std::vector<std::string> ids;
  {
    node_process a{dir, data("a")};
    auto with_peer = [&](const char* name) {
      auto args = data(name);
      args.push_back("--peers=" + a.listen);
      return args;
    };
    node_process b{dir, with_peer("b")};
    node_process c{dir, with_peer("c")};
    BOOST_REQUIRE(eventually([&] { return a.peer_count() == 2; }));
    auto ca = a.client();
    auto cb = b.client();
    for (int i = 0; i < 40; ++i) {
      auto k = std::to_string(i);
      BOOST_REQUIRE_EQUAL(
        ca.Put("/v1/kv/dur-a" + k, "x" + k, "text/plain")->status, 204);
      BOOST_REQUIRE_EQUAL(
        cb.Put("/v1/kv/dur-b" + k, "y" + k, "text/plain")->status, 204);
    }
    BOOST_CHECK(ca.Delete("/v1/kv/dur-a0")->status == 204);
    for (auto* n : {&a, &b, &c})
      BOOST_REQUIRE(eventually([&] { return keys_held(*n, "dur-") == 79; }));
    ids = {a.id, b.id, c.id};
    for (auto* n : {&a, &b, &c})
      n->proc->signal(SIGKILL);
    for (auto* n : {&a, &b, &c})
      n->proc->wait(5s);
  }
  // Each comes back alone (no peers): what it holds is what it stored.
  std::vector<std::string> names{"a", "b", "c"};
  for (size_t i = 0; i < names.size(); ++i) {
    BOOST_TEST_CONTEXT("node " << names[i]) {
      node_process again{dir, data(names[i].c_str())};
      BOOST_CHECK_EQUAL(again.id, ids[i]);
      BOOST_CHECK_EQUAL(keys_held(again, "dur-a"), 39u);
      BOOST_CHECK_EQUAL(keys_held(again, "dur-b"), 40u);
      BOOST_CHECK_EQUAL(again.status_of("/v1/kv/dur-a0"), 404);
      auto got = again.client().Get("/v1/kv/dur-b7");
      BOOST_REQUIRE(got);
      BOOST_CHECK_EQUAL(got->body, "y7");
      // The lease survived with the entry: the owner's ID is B's.
      BOOST_CHECK_EQUAL(got->get_header_value("X-Syncmesh-Owner"), ids[1]);
      // Status and metrics say where the data lives and what was loaded
      // (79 live keys and the tombstone of dur-a0).
      auto status = body_json(again.client().Get("/v1/status"));
      BOOST_CHECK_EQUAL(status["storage"]["durable"], true);
      BOOST_CHECK_EQUAL(status["storage"]["durability"], "always");
      BOOST_CHECK(
        metrics_show(again, "syncmesh_storage{what=\"loaded_entries\"} 80"));
    }
  }
}

/// The value of the first /metrics line of `n` that starts with `series`
/// (name and labels, exactly); -1 when there is none.
double metric_value(const node_process& n, const std::string& series) {
  auto m = n.client().Get("/metrics");
  if (!m || m->status != 200)
    return -1;
  std::istringstream in{m->body};
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, series.size() + 1, series + " ") == 0)
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
  return -1;
}

BOOST_AUTO_TEST_CASE(storage_status_and_metrics_show_the_engine_at_work) {
  scratch_dir scratch;
  const auto& dir = scratch.path;
  node_process a{dir, {"--data-dir=" + dir + "/data", "--durability=always"}};
  auto cli = a.client();
  for (int i = 0; i < 20; ++i)
    BOOST_REQUIRE_EQUAL(cli
                          .Put("/v1/kv/obs" + std::to_string(i),
                               std::string(64, 'v'), "text/plain")
                          ->status,
                        204);
  auto st = body_json(cli.Get("/v1/status"))["storage"];
  BOOST_TEST_MESSAGE("storage: " << st.dump());
  BOOST_CHECK_EQUAL(st["durable"], true);
  // Every PUT was acknowledged after its group's write and fsync.
  auto writes = st["writes"].get<uint64_t>();
  auto syncs = st["syncs"].get<uint64_t>();
  BOOST_CHECK_GE(writes, 1u);
  BOOST_CHECK_GE(syncs, 1u);
  BOOST_CHECK_GE(st["bytes_written"].get<uint64_t>(), 20u * 64);
  BOOST_CHECK_EQUAL(st["write_latency"]["count"].get<uint64_t>(), writes);
  BOOST_CHECK_EQUAL(st["sync_latency"]["count"].get<uint64_t>(), syncs);
  BOOST_CHECK_GT(st["sync_latency"]["sum_us"].get<uint64_t>(), 0u);
  BOOST_CHECK_EQUAL(st["sync_latency"]["counts"].size(),
                    st["sync_latency"]["bounds_us"].size() + 1);
  // The engine wrote at least what it was handed (its log), and says so.
  const auto& engine = st["engine"];
  BOOST_CHECK_GE(engine["wal_bytes"].get<uint64_t>(),
                 st["bytes_written"].get<uint64_t>());
  BOOST_CHECK_GE(st["write_amplification"].get<double>(), 1.0);
  BOOST_CHECK_GT(engine["memtable_bytes"].get<uint64_t>(), 0u);
  BOOST_CHECK_GE(engine["memory_bytes"].get<uint64_t>(),
                 engine["memtable_bytes"].get<uint64_t>());
  BOOST_CHECK_GT(st["file_bytes"].get<uint64_t>(), 0u);
  // The same in /metrics: the fsync histogram, the engine's bytes and
  // memory, the ratio.
  BOOST_CHECK_GE(
    metric_value(a, "syncmesh_storage_flush_seconds_count{op=\"sync\"}"),
    static_cast<double>(syncs));
  BOOST_CHECK_GE(metric_value(a, "syncmesh_storage_flush_seconds_bucket{"
                                 "op=\"write\",le=\"+Inf\"}"),
                 static_cast<double>(writes));
  BOOST_CHECK_GT(
    metric_value(a, "syncmesh_storage_flush_seconds_sum{op=\"sync\"}"), 0);
  BOOST_CHECK_GT(metric_value(a, "syncmesh_storage_total{kind=\"wal_bytes\"}"),
                 0);
  BOOST_CHECK_GE(
    metric_value(a, "syncmesh_storage{what=\"write_amplification\"}"), 1.0);
  BOOST_CHECK_GT(
    metric_value(a, "syncmesh_storage{what=\"engine_memory_bytes\"}"), 0);
  BOOST_CHECK_GT(metric_value(a, "syncmesh_storage{what=\"file_bytes\"}"), 0);
}

BOOST_AUTO_TEST_CASE(a_data_dir_of_another_format_is_refused_with_one_line) {
  scratch_dir scratch;
  const auto& dir = scratch.path;
  {
    node_process a{dir, {"--data-dir=" + dir + "/data"}};
    BOOST_CHECK_EQUAL(a.stop(), 0);
  }
  // Not a syncmesh dir under entries/: something else's files.
  std::filesystem::remove_all(dir + "/data/entries");
  std::filesystem::create_directories(dir + "/data/entries");
  {
    std::ofstream junk{dir + "/data/entries/CURRENT"};
    junk << "not a manifest\n";
  }
  child_process p{
    {SYNCMESH_NODE_BIN, "--port=0", "--http=", "--data-dir=" + dir + "/data"},
    dir + "/refused.log"};
  BOOST_CHECK_EQUAL(p.wait(10s), 2);
  std::ifstream in{dir + "/refused.log"};
  std::string line;
  std::getline(in, line);
  BOOST_CHECK_MESSAGE(line.rfind("syncmesh-node: ", 0) == 0, line);
  BOOST_CHECK_MESSAGE(line.find(dir + "/data/entries") != std::string::npos,
                      line);
}

BOOST_AUTO_TEST_CASE(readyz_waits_for_configured_peers) {
  scratch_dir scratch;
  const auto& dir = scratch.path;
  node_process lonely{dir, {"--peers=127.0.0.1:1"}};
  BOOST_CHECK_EQUAL(lonely.status_of("/readyz"), 503);
  BOOST_CHECK_EQUAL(lonely.status_of("/healthz"), 200);
}

BOOST_AUTO_TEST_CASE(bad_options_exit_nonzero_with_one_line) {
  scratch_dir scratch;
  const auto& dir = scratch.path;
  for (auto bad :
       {"--bogus=1", "--port=abc", "--lease-duration=soon", "--http=nonsense",
        "--log-level=loud", "--anti-entropy-method=fast"}) {
    BOOST_TEST_CONTEXT(bad) {
      child_process p{{SYNCMESH_NODE_BIN, bad}, dir + "/bad.log"};
      BOOST_CHECK_EQUAL(p.wait(5s), 2);
      std::ifstream in{dir + "/bad.log"};
      std::string line;
      std::getline(in, line);
      BOOST_CHECK(line.rfind("syncmesh-node: ", 0) == 0);
      BOOST_CHECK(!std::getline(in, line));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

// -- one node ID type (issue 17)
// -----------------------------------------------

BOOST_AUTO_TEST_SUITE(node_ids)

// An in-process sync_socket and a syncmesh-node name each other: the IDs the
// C++ API gives (sync_socket::id(), peer_info::id, entry_meta::owner) are
// the ones the HTTP API and the CLI print, as to_hex() prints them.
BOOST_AUTO_TEST_CASE(sync_socket_ids_are_the_hex_the_http_api_and_cli_print) {
  scratch_dir scratch;
  const auto& dir = scratch.path;
  node_process node{dir, {}};
  syncmesh::test::threaded_config cfg;
  caf::actor_system sys{cfg};
  syncmesh::sync_socket sock{sys};
  auto colon = node.listen.rfind(':');
  BOOST_REQUIRE(colon != std::string::npos);
  auto peer = sock.connect(
    node.listen.substr(0, colon),
    static_cast<uint16_t>(std::stoi(node.listen.substr(colon + 1))));
  // The node as the socket names it, and as the node prints itself.
  auto status = body_json(node.client().Get("/v1/status"));
  BOOST_CHECK_EQUAL(status["node_id"], peer.id.to_hex());
  BOOST_CHECK_EQUAL(node.id, peer.id.to_hex()); // its ready line
  auto parsed
    = syncmesh::node_id::from_hex(status["node_id"].get<std::string>());
  BOOST_REQUIRE(parsed.has_value());
  BOOST_CHECK_EQUAL(*parsed, peer.id);
  // The socket as the node names it.
  auto mine = sock.id().to_hex();
  BOOST_REQUIRE(eventually([&] {
    auto peers = body_json(node.client().Get("/v1/peers"))["peers"];
    return peers.size() == 1 && peers[0]["node_id"] == mine;
  }));
  std::string out;
  std::string err;
  BOOST_CHECK_EQUAL(cli(node, "peers", out, err, dir), 0);
  BOOST_CHECK_MESSAGE(out.find(mine.substr(0, 12)) != std::string::npos, out);
  // An entry's owner: entry_meta::owner on the socket, the owner header and
  // the CLI's items on the node.
  sock["written-by-the-socket"] = "x";
  BOOST_CHECK_EQUAL(sock.get_item("written-by-the-socket")->meta.owner,
                    sock.id());
  BOOST_REQUIRE(eventually(
    [&] { return node.status_of("/v1/kv/written-by-the-socket") == 200; }));
  auto got = node.client().Get("/v1/kv/written-by-the-socket");
  BOOST_REQUIRE(got);
  BOOST_CHECK_EQUAL(got->get_header_value("X-Syncmesh-Owner"), mine);
  BOOST_CHECK_EQUAL(cli(node, "items", out, err, dir), 0);
  BOOST_CHECK_MESSAGE(
    out.find("written-by-the-socket\tx\t" + mine.substr(0, 12))
      != std::string::npos,
    out);
  sock.close();
}

BOOST_AUTO_TEST_SUITE_END()
