// The status page's server side without a server: the history ring buffer
// (deltas, counter resets, lag per interval, its bound under a flood of
// samples), the embedded files with their headers, and the JSON of
// /v1/history and /v1/mesh.

#define BOOST_TEST_MODULE status_page_tests
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "actors/announced_links.hpp"
#include "node/daemon/status_history.hpp"
#include "node/daemon/status_page.hpp"
#include "syncmesh/pb/requests.pb.h"

using namespace syncmesh;
using json = nlohmann::json;

namespace {

std::string header_of(const http::response& res, std::string_view name) {
  for (const auto& [k, v] : res.headers)
    if (k == name)
      return v;
  return {};
}

status_counters counters(uint64_t local, uint64_t remote, uint64_t keys) {
  status_counters c;
  c.local_applied = local;
  c.remote_applied = remote;
  c.live_keys = keys;
  c.delay_bounds = {0.001, 0.01, 0.1, 1.0};
  c.delay_counts = {0, 0, 0, 0, 0};
  return c;
}

} // namespace

BOOST_AUTO_TEST_SUITE(history)

BOOST_AUTO_TEST_CASE(first_record_only_remembers_then_deltas) {
  status_history h{10};
  h.record(1000, counters(5, 7, 3));
  BOOST_TEST(h.samples().empty());
  auto c = counters(15, 10, 4);
  c.bytes_in = 100;
  c.bytes_out = 50;
  c.tombstones = 2;
  h.record(2000, c);
  auto s = h.samples();
  BOOST_REQUIRE_EQUAL(s.size(), 1u);
  BOOST_TEST(s[0].time_ms == 2000u);
  BOOST_TEST(s[0].local_writes == 10u);
  BOOST_TEST(s[0].remote_writes == 3u);
  BOOST_TEST(s[0].bytes_in == 100u);
  BOOST_TEST(s[0].bytes_out == 50u);
  BOOST_TEST(s[0].live_keys == 4u);
  BOOST_TEST(s[0].tombstones == 2u);
  BOOST_TEST(s[0].lag_avg_s == 0.0);
}

BOOST_AUTO_TEST_CASE(a_counter_that_goes_backwards_counts_from_zero) {
  status_history h{10};
  h.record(1000, counters(100, 100, 0));
  h.record(2000, counters(4, 120, 0));
  auto s = h.samples();
  BOOST_REQUIRE_EQUAL(s.size(), 1u);
  BOOST_TEST(s[0].local_writes == 4u);
  BOOST_TEST(s[0].remote_writes == 20u);
}

BOOST_AUTO_TEST_CASE(lag_is_per_interval_mean_and_highest_bucket) {
  status_history h{10};
  auto a = counters(0, 0, 0);
  a.delay_sum = 10.0; // old, large delays must not leak into the interval
  a.delay_count = 5;
  a.delay_counts = {0, 0, 0, 0, 5};
  h.record(1000, a);
  auto b = a;
  b.delay_sum += 0.004 + 0.05;
  b.delay_count += 2;
  b.delay_counts[1] += 1; // ≤ 10 ms
  b.delay_counts[2] += 1; // ≤ 100 ms
  h.record(2000, b);
  auto c = b;
  c.delay_sum += 3.0;
  c.delay_count += 1;
  c.delay_counts[4] += 1; // beyond the last bound
  h.record(3000, c);
  h.record(4000, c); // nothing applied: no lag figure
  auto s = h.samples();
  BOOST_REQUIRE_EQUAL(s.size(), 3u);
  BOOST_TEST(s[0].lag_avg_s == 0.027, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(s[0].lag_max_s == 0.1);
  BOOST_TEST(s[1].lag_avg_s == 3.0, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(s[1].lag_max_s == 3.0);
  BOOST_TEST(s[2].lag_avg_s == 0.0);
  BOOST_TEST(s[2].lag_max_s == 0.0);
}

// Attack on the bound: a sampler gone wild (or a week of uptime) records
// far more samples than the window holds; the history keeps `capacity`,
// the newest ones, counts the rest, and still records honestly afterwards.
BOOST_AUTO_TEST_CASE(bounded_under_a_flood_of_samples) {
  constexpr size_t capacity = 300;
  status_history h{capacity};
  uint64_t t = 0;
  for (uint64_t i = 0; i < 100'000; ++i)
    h.record(t += 1000, counters(i, 0, i));
  auto s = h.samples();
  BOOST_REQUIRE_EQUAL(s.size(), capacity);
  BOOST_TEST(h.evicted() == 100'000u - 1 - capacity);
  // Oldest first, contiguous, ending at the newest.
  for (size_t i = 1; i < s.size(); ++i)
    BOOST_TEST(s[i].time_ms == s[i - 1].time_ms + 1000);
  BOOST_TEST(s.back().time_ms == t);
  BOOST_TEST(s.back().live_keys == 99'999u);
  // Memory held: the ring never grows beyond its capacity.
  BOOST_TEST(s.capacity() * sizeof(status_sample)
             <= capacity * sizeof(status_sample) * 2);
  // Honest use afterwards: the next interval is exact.
  h.record(t + 1000, counters(100'009, 0, 1));
  auto after = h.samples(t);
  BOOST_REQUIRE_EQUAL(after.size(), 1u);
  BOOST_TEST(after[0].local_writes == 10u);
  BOOST_TEST(h.samples().size() == capacity);
}

BOOST_AUTO_TEST_CASE(since_filters_older_samples) {
  status_history h{5};
  for (uint64_t t = 1000; t <= 8000; t += 1000)
    h.record(t, counters(t, 0, 0));
  BOOST_TEST(h.samples().size() == 5u);
  auto s = h.samples(6000);
  BOOST_REQUIRE_EQUAL(s.size(), 2u);
  BOOST_TEST(s[0].time_ms == 7000u);
}

BOOST_AUTO_TEST_CASE(counters_of_node_stats) {
  pb::NodeStats st;
  st.mutable_store()->set_local_applied(3);
  st.mutable_store()->set_remote_applied(4);
  st.mutable_store()->set_live_keys(5);
  st.mutable_store()->set_delay_sum(1.5);
  st.mutable_store()->set_delay_count(2);
  st.mutable_store()->add_delay_bounds(0.1);
  st.mutable_store()->add_delay_counts(1);
  st.mutable_store()->add_delay_counts(1);
  st.mutable_lease()->set_tombstones(6);
  auto& traffic = *st.mutable_router()->mutable_traffic();
  (*traffic.mutable_bytes_in())["flood"] = 10;
  (*traffic.mutable_bytes_in())["anti_entropy"] = 5;
  (*traffic.mutable_bytes_out())["flood"] = 7;
  auto c = counters_of(st);
  BOOST_TEST(c.local_applied == 3u);
  BOOST_TEST(c.remote_applied == 4u);
  BOOST_TEST(c.live_keys == 5u);
  BOOST_TEST(c.tombstones == 6u);
  BOOST_TEST(c.bytes_in == 15u);
  BOOST_TEST(c.bytes_out == 7u);
  BOOST_TEST(c.delay_count == 2u);
  BOOST_TEST(c.delay_counts.size() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(page)

BOOST_AUTO_TEST_CASE(serves_the_embedded_files_with_strict_headers) {
  for (auto path : {"/", "/index.html", "/app.js", "/style.css"}) {
    BOOST_TEST_CONTEXT(path) {
      auto res = static_file(path);
      BOOST_REQUIRE(res);
      BOOST_TEST(res->status == 200);
      BOOST_TEST(!res->body.empty());
      BOOST_TEST(header_of(*res, "Cache-Control") == "no-cache");
      BOOST_TEST(
        header_of(*res, "Content-Security-Policy").find("default-src 'self'")
        == 0u);
      BOOST_TEST(header_of(*res, "ETag").size() > 2u);
      BOOST_TEST(is_static_path(path));
    }
  }
  BOOST_TEST(static_file("/")->content_type == "text/html; charset=utf-8");
  BOOST_TEST(static_file("/")->body == static_file("/index.html")->body);
  BOOST_TEST(static_file("/app.js")->content_type
             == "text/javascript; charset=utf-8");
  BOOST_TEST(static_file("/style.css")->content_type
             == "text/css; charset=utf-8");
  BOOST_TEST(static_file("/index.html")->body.find("<script src=\"/app.js\"")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(unknown_paths_and_traversal_are_not_files) {
  for (auto path : {"/v1/status", "/../CMakeLists.txt", "/app.js/", "/APP.JS",
                    "//app.js", "", "/index.html%00", "/web/app.js"}) {
    BOOST_TEST_CONTEXT(path) {
      BOOST_TEST(!static_file(path));
      BOOST_TEST(!is_static_path(path));
    }
  }
}

BOOST_AUTO_TEST_CASE(matching_etag_answers_304_without_body) {
  auto full = static_file("/app.js");
  auto etag = header_of(*full, "ETag");
  auto res = static_file("/app.js", etag);
  BOOST_TEST(res->status == 304);
  BOOST_TEST(res->body.empty());
  BOOST_TEST(header_of(*res, "ETag") == etag);
  BOOST_TEST(static_file("/app.js", "\"other\"")->status == 200);
  // Different files have different tags.
  BOOST_TEST(header_of(*static_file("/style.css"), "ETag") != etag);
}

BOOST_AUTO_TEST_CASE(history_json) {
  status_history h{10};
  h.record(1000, counters(0, 0, 0));
  h.record(2000, counters(3, 1, 2));
  h.record(3000, counters(4, 1, 2));
  http::request req;
  auto res = history_response(h, req);
  BOOST_TEST(res.status == 200);
  BOOST_TEST(res.content_type == "application/json");
  auto body = json::parse(res.body);
  BOOST_TEST(body["interval_ms"] == 1000);
  BOOST_TEST(body["capacity"] == 10);
  BOOST_REQUIRE_EQUAL(body["samples"].size(), 2u);
  BOOST_TEST(body["samples"][0]["t"] == 2000);
  BOOST_TEST(body["samples"][0]["local_writes"] == 3);
  BOOST_TEST(body["samples"][0]["keys"] == 2);
  req.query.emplace_back("since", "2000");
  body = json::parse(history_response(h, req).body);
  BOOST_REQUIRE_EQUAL(body["samples"].size(), 1u);
  BOOST_TEST(body["samples"][0]["t"] == 3000);
  for (auto bad : {"x", "-1", "", "1e3", "99999999999999999999999"}) {
    http::request b;
    b.query.emplace_back("since", bad);
    BOOST_TEST_CONTEXT(bad) {
      BOOST_TEST(history_response(h, b).status == 400);
    }
  }
}

BOOST_AUTO_TEST_CASE(mesh_json) {
  pb::NodeInfo self;
  self.set_node_id(std::string{"\x01", 1});
  self.set_listen_host("127.0.0.1");
  self.set_listen_port(4000);
  pb::PeerList peers;
  auto* p = peers.add_peers();
  p->set_node_id(std::string{"\x0a", 1});
  p->set_host("127.0.0.1");
  p->set_port(4001);
  p = peers.add_peers();
  p->set_node_id(std::string{"\x0b", 1});
  p->set_host("127.0.0.1");
  p->set_port(4002);
  // Announced: 0a-0b, 0a-01 (also direct: shown once, as direct), 0a-0c.
  auto announce = [&](char a, char b) {
    auto* l = peers.add_announced_links();
    l->set_a(std::string{a});
    l->set_b(std::string{b});
    l->set_heard_us(5'000'000);
  };
  announce('\x0a', '\x0b');
  announce('\x0a', '\x01');
  announce('\x0a', '\x0c');
  auto mesh = mesh_of(self, peers);
  BOOST_REQUIRE_EQUAL(mesh.nodes.size(), 4u);
  BOOST_TEST(mesh.nodes[0].id == "01");
  BOOST_TEST(mesh.nodes[0].address == "127.0.0.1:4000");
  BOOST_TEST(mesh.nodes[1].address == "127.0.0.1:4001");
  BOOST_TEST(mesh.nodes[3].address == "");
  BOOST_REQUIRE_EQUAL(mesh.links.size(), 4u);
  BOOST_TEST(mesh.links[0].direct);
  BOOST_TEST(mesh.links[1].direct);
  BOOST_TEST(!mesh.links[2].direct);
  BOOST_TEST(mesh.links[2].heard_ms == 5000u);
  auto body = json::parse(mesh_response(mesh).body);
  BOOST_TEST(body["self"] == "01");
  BOOST_TEST(body["nodes"].size() == 4u);
  BOOST_TEST(body["links"].size() == 4u);
  BOOST_TEST(body["links"][0]["direct"] == true);
  BOOST_TEST(body["links"][0].count("heard") == 0u);
  BOOST_TEST(body["links"][3]["heard"] == 5000);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(announced)

BOOST_AUTO_TEST_CASE(links_are_undirected_and_refreshed) {
  announced_links t{8, 2};
  BOOST_TEST(t.add("ab", "cd", 10));
  BOOST_TEST(t.add("cd", "ab", 20)); // the same link, heard again
  BOOST_REQUIRE_EQUAL(t.links().size(), 1u);
  BOOST_TEST(t.links().begin()->first.first == "ab");
  BOOST_TEST(t.links().begin()->second == 20u);
}

BOOST_AUTO_TEST_CASE(ids_of_another_size_and_loops_are_ignored) {
  announced_links t{8, 2};
  BOOST_TEST(!t.add("ab", "ab", 1));
  BOOST_TEST(!t.add("abc", "cd", 1));
  BOOST_TEST(!t.add("ab", std::string(1'000'000, 'x'), 1));
  BOOST_TEST(!t.add("", "cd", 1));
  BOOST_TEST(t.links().empty());
}

// Attack: a peer announces far more links than the table holds (100,000
// distinct ones). The table keeps max_links, forgets the oldest and counts
// them; bytes held stay within max_links entries; an honest announcement
// afterwards is kept.
BOOST_AUTO_TEST_CASE(bounded_under_a_flood_of_announcements) {
  constexpr size_t max_links = 64;
  constexpr size_t id_size = 8;
  announced_links t{max_links, id_size};
  auto id = [](uint64_t n) {
    std::string s(id_size, '\0');
    for (size_t i = 0; i < id_size; ++i)
      s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return s;
  };
  for (uint64_t n = 1; n <= 100'000; ++n)
    BOOST_TEST_REQUIRE(t.add(id(0), id(n), n));
  BOOST_TEST(t.links().size() == max_links);
  BOOST_TEST(t.evicted() == 100'000u - max_links);
  size_t held = 0;
  for (const auto& [link, heard] : t.links()) {
    held += link.first.size() + link.second.size();
    BOOST_TEST(heard > 100'000u - max_links); // only the newest survive
  }
  BOOST_TEST(held <= max_links * 2 * id_size);
  // Honest use afterwards.
  BOOST_TEST(t.add(id(7), id(8), 200'000));
  BOOST_TEST(t.links().count({id(7), id(8)}) == 1u);
  BOOST_TEST(t.links().size() == max_links);
}

BOOST_AUTO_TEST_SUITE_END()
