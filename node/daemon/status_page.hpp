#pragma once

// The live status page at "/": static files embedded in the binary (a CMake
// step turns node/daemon/web/* into byte arrays, see
// cmake/syncmesh_embed.cmake) and the two JSON views the page needs beyond
// the API: GET /v1/history (the samples of a status_history) and GET
// /v1/mesh (this node, its peers and the peers each of them told us
// about). The handlers are plain functions returning an http::response; the
// API's route table calls them (the static files need no token, the JSON
// views need `read` like /v1/status).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "node/daemon/http_exchange.hpp"
#include "node/daemon/status_history.hpp"

namespace syncmesh {

namespace pb {
class NodeStats;
class NodeInfo;
class PeerList;
} // namespace pb

/// One file of the page as embedded at build time.
struct embedded_file {
  /// The request path it answers ("/app.js"); "/index.html" also answers "/".
  std::string_view path;
  /// Its bytes.
  std::string_view content;
  /// A strong ETag (quoted SHA-256 prefix of the content, from the build).
  std::string_view etag;
};

/// The embedded files (generated at build time).
const std::vector<embedded_file>& embedded_files();

/// The page's file for `path` ("/", "/index.html", "/app.js", "/style.css"),
/// with its content type, ETag, `Cache-Control: no-cache` and a strict
/// Content-Security-Policy (default-src 'self'); nullopt for any other
/// path. When `if_none_match` equals the ETag, a 304 without body.
std::optional<http::response> static_file(std::string_view path,
                                          std::string_view if_none_match = {});

/// True when `path` is one of the page's files (for the server's open
/// paths: the page loads without a token and asks for one on 401).
bool is_static_path(std::string_view path);

/// The counters `status_history::record` needs, read from the node's stats.
status_counters counters_of(const pb::NodeStats& stats);

/// GET /v1/history[?since=MS]: {"interval_ms", "capacity", "samples":
/// [{"t", "local_writes", "remote_writes", "bytes_in", "bytes_out", "keys",
/// "tombstones", "lag_avg_s", "lag_max_s"}...]}, oldest first; 400 when
/// `since` is not a number.
http::response history_response(const status_history& history,
                                const http::request& req,
                                uint64_t interval_ms = 1000);

/// One node of the mesh graph.
struct mesh_node {
  /// Node ID as hex.
  std::string id;
  /// "host:port" where it listens (empty when unknown).
  std::string address;
};

/// A link of the mesh graph.
struct mesh_link {
  /// The two node IDs (hex).
  std::string a;
  std::string b;
  /// True for this node's own links; false for links peers announced.
  bool direct = false;
  /// When an announced link was last heard, ms since the Unix epoch.
  uint64_t heard_ms = 0;
};

/// What the node knows of the mesh: itself, its links, and the links its
/// peers announced (peer exchange); links are undirected.
struct mesh_view {
  /// This node (first) and every node it knows of.
  std::vector<mesh_node> nodes;
  /// Links, each once.
  std::vector<mesh_link> links;
};

/// The mesh as this node sees it: itself, its peers (a direct link to
/// each) and the links in `peers.announced_links()`. Nodes and links
/// appear once (a direct link wins over the same link announced).
mesh_view mesh_of(const pb::NodeInfo& self, const pb::PeerList& peers);

/// GET /v1/mesh: {"self", "nodes": [{"id", "address"}], "links": [{"a",
/// "b", "direct", "heard"}]} ("heard": ms, announced links only).
http::response mesh_response(const mesh_view& mesh);

} // namespace syncmesh
