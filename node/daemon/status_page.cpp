#include "node/daemon/status_page.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include <nlohmann/json.hpp>

#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

namespace {

using json = nlohmann::json;

/// The page may load only its own files and talk only to its own origin:
/// no inline script or style, no frames, no form posts elsewhere.
constexpr std::string_view page_csp
  = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' "
    "data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'";

std::string_view content_type_of(std::string_view path) {
  auto ends_with = [&](std::string_view suffix) {
    return path.size() >= suffix.size()
           && path.substr(path.size() - suffix.size()) == suffix;
  };
  if (ends_with(".html"))
    return "text/html; charset=utf-8";
  if (ends_with(".js"))
    return "text/javascript; charset=utf-8";
  if (ends_with(".css"))
    return "text/css; charset=utf-8";
  if (ends_with(".svg"))
    return "image/svg+xml";
  return "application/octet-stream";
}

const embedded_file* find_file(std::string_view path) {
  if (path == "/")
    path = "/index.html";
  for (const auto& f : embedded_files())
    if (f.path == path)
      return &f;
  return nullptr;
}

std::string hex_of(const std::string& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0xf];
  }
  return out;
}

http::response json_ok(const json& body) {
  http::response res;
  res.content_type = "application/json";
  res.headers.emplace_back("Cache-Control", "no-store");
  res.body = body.dump();
  return res;
}

} // namespace

std::optional<http::response> static_file(std::string_view path,
                                          std::string_view if_none_match) {
  const auto* f = find_file(path);
  if (f == nullptr)
    return std::nullopt;
  http::response res;
  res.headers.emplace_back("ETag", std::string{f->etag});
  // no-cache: the browser revalidates (cheap 304) so a new binary's page
  // is never mixed with an old script.
  res.headers.emplace_back("Cache-Control", "no-cache");
  res.headers.emplace_back("Content-Security-Policy", std::string{page_csp});
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  res.headers.emplace_back("Referrer-Policy", "no-referrer");
  if (!if_none_match.empty() && if_none_match == f->etag) {
    res.status = 304;
    return res;
  }
  res.content_type = std::string{content_type_of(f->path)};
  res.body = std::string{f->content};
  return res;
}

bool is_static_path(std::string_view path) {
  return find_file(path) != nullptr;
}

status_counters counters_of(const pb::NodeStats& stats) {
  status_counters c;
  const auto& store = stats.store();
  c.local_applied = store.local_applied();
  c.remote_applied = store.remote_applied();
  c.live_keys = store.live_keys();
  c.tombstones = stats.lease().tombstones();
  for (const auto& [kind, bytes] : stats.router().traffic().bytes_in())
    c.bytes_in += bytes;
  for (const auto& [kind, bytes] : stats.router().traffic().bytes_out())
    c.bytes_out += bytes;
  c.delay_sum = store.delay_sum();
  c.delay_count = store.delay_count();
  c.delay_bounds.assign(store.delay_bounds().begin(),
                        store.delay_bounds().end());
  c.delay_counts.assign(store.delay_counts().begin(),
                        store.delay_counts().end());
  return c;
}

http::response history_response(const status_history& history,
                                const http::request& req,
                                uint64_t interval_ms) {
  uint64_t since = 0;
  if (req.has_param("since")) {
    auto text = req.param("since");
    auto [end, err]
      = std::from_chars(text.data(), text.data() + text.size(), since);
    if (err != std::errc{} || end != text.data() + text.size())
      return http::json_error(400, "bad_request",
                              "since must be ms since the Unix epoch");
  }
  auto list = json::array();
  for (const auto& s : history.samples(since))
    list.push_back(json{{"t", s.time_ms},
                        {"local_writes", s.local_writes},
                        {"remote_writes", s.remote_writes},
                        {"bytes_in", s.bytes_in},
                        {"bytes_out", s.bytes_out},
                        {"keys", s.live_keys},
                        {"tombstones", s.tombstones},
                        {"lag_avg_s", s.lag_avg_s},
                        {"lag_max_s", s.lag_max_s}});
  return json_ok(json{{"interval_ms", interval_ms},
                      {"capacity", history.capacity()},
                      {"samples", std::move(list)}});
}

mesh_view mesh_of(const pb::NodeInfo& self, const pb::PeerList& peers) {
  mesh_view out;
  std::set<std::string> seen;
  std::set<std::pair<std::string, std::string>> linked;
  auto add_node = [&](const std::string& id, std::string address) {
    if (seen.insert(id).second)
      out.nodes.push_back(mesh_node{id, std::move(address)});
  };
  auto add_link
    = [&](std::string a, std::string b, bool direct, uint64_t heard_ms) {
        if (a == b)
          return;
        if (b < a)
          std::swap(a, b);
        if (linked.emplace(a, b).second)
          out.links.push_back(mesh_link{std::move(a), std::move(b), direct,
                                        direct ? 0 : heard_ms});
      };
  auto address_of = [](const std::string& host, uint32_t port) {
    return port == 0 ? std::string{} : host + ":" + std::to_string(port);
  };
  auto me = hex_of(self.node_id());
  add_node(me, address_of(self.listen_host(), self.listen_port()));
  for (const auto& p : peers.peers()) {
    auto id = hex_of(p.node_id());
    add_node(id, address_of(p.host(), p.port()));
    add_link(me, id, true, 0);
  }
  for (const auto& l : peers.announced_links()) {
    auto a = hex_of(l.a());
    auto b = hex_of(l.b());
    add_node(a, {});
    add_node(b, {});
    add_link(std::move(a), std::move(b), false, l.heard_us() / 1000);
  }
  return out;
}

http::response mesh_response(const mesh_view& mesh) {
  auto nodes = json::array();
  for (const auto& n : mesh.nodes)
    nodes.push_back(json{{"id", n.id}, {"address", n.address}});
  auto links = json::array();
  for (const auto& l : mesh.links) {
    json link{{"a", l.a}, {"b", l.b}, {"direct", l.direct}};
    if (!l.direct)
      link["heard"] = l.heard_ms;
    links.push_back(std::move(link));
  }
  return json_ok(json{{"self", mesh.nodes.empty() ? "" : mesh.nodes.front().id},
                      {"nodes", std::move(nodes)},
                      {"links", std::move(links)}});
}

} // namespace syncmesh
