#include "node/daemon/http_api.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/backup_checkpoints.hpp"
#include "actors/facade.hpp"
#include "actors/lease_conflicts.hpp"
#include "actors/log.hpp"
#include "messages/time_text.hpp"
#include "messages/value_proto.hpp"
#include "messages/version.hpp"
#include "node/daemon/backup_stream.hpp"
#include "node/daemon/json_value.hpp"
#include "node/daemon/metrics.hpp"
#include "node/daemon/node_bridge.hpp"
#include "node/daemon/node_options.hpp"
#include "node/daemon/status_page.hpp"
#include "node/daemon/watch_hub.hpp"
#include "node/node_errors.hpp"
#include "syncmesh/facade.hpp"
#include "syncmesh/sync_socket.hpp"

namespace syncmesh {

namespace {

using http::role;
using nlohmann::json;

uint64_t to_ms(uint64_t us) {
  return us / 1000;
}

http::response json_response(int status, const json& body) {
  http::response res;
  res.status = status;
  res.content_type = "application/json";
  res.body = body.dump();
  return res;
}

http::response no_content() {
  http::response res;
  res.status = 204;
  return res;
}

// -- errors: the node's CAF errors as HTTP answers
// ------------------------------

/// Maps what the node refused to an HTTP status and a JSON error (409
/// lease with owner and expiry, 404, 422, 413/400, 503).
http::response exception_response(std::exception_ptr ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const lease_error& e) {
    json body{{"error", "lease"},
              {"owner", e.owner().to_hex()},
              {"expires_at", to_ms(e.lease_end_us())},
              {"expires_at_iso", iso8601_utc(e.lease_end_us())},
              {"message", e.what()}};
    return json_response(409, body);
  } catch (const key_error& e) {
    return http::json_error(404, "not_found", e.what());
  } catch (const type_error& e) {
    return http::json_error(422, "type", e.what());
  } catch (const value_error& e) {
    auto status = e.code() == errc::value_too_large ? 413 : 400;
    return http::json_error(status, to_string(e.code()), e.what());
  } catch (const unconfirmed_error& e) {
    // The write stands here; fewer nodes than required were known to hold
    // it when the timeout passed: accepted, not (yet) confirmed.
    return json_response(202, json{{"error", "unconfirmed"},
                                   {"confirmed", e.confirmed()},
                                   {"required", e.required()},
                                   {"cluster_size", e.cluster_size()},
                                   {"message", e.what()}});
  } catch (const syncmesh::error& e) {
    return http::json_error(503, to_string(e.code()), e.what());
  } catch (const std::exception& e) {
    return http::json_error(500, "internal", e.what());
  }
}

/// The HTTP answer to an error the node returned. A lease refusal names
/// every leased key (a batch is refused whole because of any of them): in
/// "keys" ({"key": text} or {"key_base64": ...} entries) and in
/// "conflicts", each with its owner, lease end (ms and ISO 8601) and how
/// far away that is ("in 59 min"). The top-level owner/expires_at describe
/// the first.
http::response error_response(caf::actor_system& sys, const caf::error& err) {
  try {
    throw_node_error(sys, err);
  } catch (...) {
    auto res = exception_response(std::current_exception());
    if (code_of(err) == errc::lease_held) {
      auto body = json::parse(res.body, nullptr, false);
      auto keys = json::array();
      auto conflicts = json::array();
      auto now = wall_clock_us();
      for (const auto& c : lease_conflicts_of(err)) {
        json named;
        put_key(named, c.key);
        keys.push_back(named);
        named["owner"] = c.owner.to_hex();
        named["expires_at"] = to_ms(c.lease_end_us);
        named["expires_at_iso"] = iso8601_utc(c.lease_end_us);
        named["in"] = relative_time(c.lease_end_us, now);
        conflicts.push_back(std::move(named));
      }
      body["keys"] = std::move(keys);
      body["conflicts"] = std::move(conflicts);
      res.body = body.dump();
    }
    return res;
  }
}

// -- request helpers
// ------------------------------------------------------------

void put_meta_headers(http::response& res, const pb::EntryMeta& meta) {
  res.headers.emplace_back("X-Syncmesh-Owner", to_hex(meta.owner()));
  res.headers.emplace_back("X-Syncmesh-Time",
                           std::to_string(to_ms(meta.time_us())));
  res.headers.emplace_back("X-Syncmesh-Lease-End",
                           std::to_string(to_ms(meta.lease_end_us())));
}

/// A value the node sent (it checked the depth against its own limit).
bool value_of(const pb::Value& x, value& out, std::string& err) {
  err = from_proto(x, out, max_value_depth_ceiling);
  return err.empty();
}

/// The answer to GET /v1/kv/<key>: the value as its own content type
/// (bytes, text, or JSON for lists and maps) with the metadata headers.
http::response get_response(const pb::GetReply& got) {
  if (!got.found())
    return http::json_error(404, "not_found", "no such key");
  value v;
  std::string err;
  if (!value_of(got.value(), v, err))
    return http::json_error(500, "internal", err);
  http::response res;
  put_meta_headers(res, got.meta());
  if (v.is_bytes()) {
    res.body = v.as_bytes();
    res.content_type = "application/octet-stream";
  } else if (v.is_text()) {
    res.body = v.as_text();
    res.content_type = "text/plain; charset=utf-8";
  } else {
    res.body = to_json(v).dump();
    res.content_type = "application/json";
  }
  return res;
}

json item_json(const pb::Item& x) {
  json obj;
  put_key(obj, x.key());
  value v;
  std::string err;
  obj["value"] = value_of(x.value(), v, err) ? to_json(v) : json(nullptr);
  obj["owner"] = to_hex(x.meta().owner());
  obj["time"] = to_ms(x.meta().time_us());
  obj["lease_end"] = to_ms(x.meta().lease_end_us());
  return obj;
}

/// A flush latency histogram as JSON: the bucket bounds (µs), the samples
/// per bucket (the last one above every bound), their count and sum.
json latency_json(const pb::LatencyHistogram& h) {
  return json{
    {"bounds_us",
     json(std::vector<uint64_t>(h.bounds_us().begin(), h.bounds_us().end()))},
    {"counts",
     json(std::vector<uint64_t>(h.counts().begin(), h.counts().end()))},
    {"count", h.count()},
    {"sum_us", h.sum_us()}};
}

/// The storage block of /v1/status: where and how the node keeps its
/// entries, what it wrote, what the engine wrote (write amplification:
/// the engine's bytes over the store's), and the engine's memory.
json storage_json(const pb::StorageStats& s) {
  if (s.data_dir().empty())
    return json{{"durable", false}};
  auto engine_written = s.engine_wal_bytes() + s.engine_flush_bytes()
                        + s.engine_compaction_bytes();
  // Before the first write there is nothing to amplify.
  json amplification = nullptr;
  if (s.bytes_written() > 0)
    amplification = static_cast<double>(engine_written)
                    / static_cast<double>(s.bytes_written());
  return json{
    {"durable", true},
    {"data_dir", s.data_dir()},
    {"durability", s.durability()},
    {"entries_loaded", s.entries_loaded()},
    {"load_ms", s.load_ms()},
    {"writes", s.writes()},
    {"syncs", s.syncs()},
    {"bytes_written", s.bytes_written()},
    {"disk_bytes", s.disk_bytes()},
    {"file_bytes", s.file_bytes()},
    {"compactions", s.compactions()},
    {"write_amplification", amplification},
    {"engine", json{{"wal_bytes", s.engine_wal_bytes()},
                    {"flush_bytes", s.engine_flush_bytes()},
                    {"compaction_bytes", s.engine_compaction_bytes()},
                    {"written_bytes", engine_written},
                    {"stall_us", s.engine_stall_us()},
                    {"memtable_bytes", s.memtable_bytes()},
                    {"block_cache_bytes", s.block_cache_bytes()},
                    {"table_reader_bytes", s.table_reader_bytes()},
                    {"memory_bytes", s.memtable_bytes() + s.block_cache_bytes()
                                       + s.table_reader_bytes()}}},
    {"write_latency", latency_json(s.write_latency())},
    {"sync_latency", latency_json(s.sync_latency())}};
}

/// Parses a JSON body after checking its nesting without recursion:
/// `max_depth` counts every bracket level (the value's own levels plus the
/// route's wrapper levels). Returns an explanation on failure.
std::string parse_json(std::string_view text, size_t max_depth, json& out) {
  if (json_nested_deeper_than(text, max_depth))
    return "JSON nested deeper than " + std::to_string(max_depth) + " levels";
  out = json::parse(text.begin(), text.end(), nullptr, false);
  if (out.is_discarded())
    return "body is not JSON";
  return {};
}

/// The value a PUT body stands for: text for text/*, parsed JSON for
/// application/json, raw bytes otherwise. Returns an explanation on error.
std::string body_value(const http::request& req, value& out, size_t max_depth) {
  auto type = req.header("content-type");
  if (type.rfind("text/", 0) == 0) {
    if (!is_utf8(req.body))
      return "text body is not UTF-8";
    out = value(req.body);
    return {};
  }
  if (type.rfind("application/json", 0) == 0) {
    json parsed;
    // A value's depth counts its containers; "$base64" objects add one.
    if (auto err = parse_json(req.body, max_depth + 1, parsed); !err.empty())
      return err;
    return from_json(parsed, out, static_cast<int>(max_depth));
  }
  out = value::from_bytes(req.body);
  return {};
}

/// The write concern of `?confirm=majority|all|N[&timeout=2s]` on a write:
/// nullopt without `confirm`; an explanation in `error` (for a 400) when a
/// parameter is malformed or out of range. The timeout must stay below the
/// node's request timeout (the bridge's own deadline) and within
/// max_confirm_timeout.
std::optional<pb::WriteConcern>
parse_confirm(const http::request& req, const config& cfg, std::string& error) {
  if (!req.has_param("confirm")) {
    if (req.has_param("timeout"))
      error = "timeout is only for confirmed writes (add confirm=majority, "
              "all or a number of nodes)";
    return std::nullopt;
  }
  auto text = std::string{req.param("confirm")};
  pb::WriteConcern c;
  if (text == "majority") {
    c.set_kind(pb::WriteConcern::MAJORITY);
  } else if (text == "all") {
    c.set_kind(pb::WriteConcern::ALL);
  } else if (!text.empty() && text.size() <= 6
             && text.find_first_not_of("0123456789") == std::string::npos
             && std::stoul(text) >= 1 && std::stoul(text) <= 100000) {
    c.set_kind(pb::WriteConcern::NODES);
    c.set_nodes(static_cast<uint32_t>(std::stoul(text)));
  } else {
    error = "confirm must be majority, all or a number of nodes (1..100000)";
    return std::nullopt;
  }
  auto limit = std::min(cfg.max_confirm_timeout,
                        cfg.request_timeout - std::chrono::milliseconds(1));
  auto timeout = cfg.confirm_timeout;
  if (req.has_param("timeout")) {
    auto t = std::string{req.param("timeout")};
    if (t.size() > 16 || !parse_duration(t, timeout) || timeout.count() <= 0) {
      error = "timeout must be a positive duration such as 1500ms, 2s or 1m";
      return std::nullopt;
    }
  }
  if (timeout > limit) {
    error = "timeout must be at most " + format_duration(limit)
            + " (below the node's request timeout and max confirm timeout)";
    return std::nullopt;
  }
  c.set_timeout_ms(static_cast<uint64_t>(timeout.count()));
  return c;
}

/// The answer to a confirmed write: 200 with how many nodes held it.
http::response confirmed_response(const pb::ConfirmedWriteReply& r,
                                  std::optional<uint64_t> applied = {}) {
  json body{{"confirmed", r.confirmed()},
            {"required", r.required()},
            {"cluster_size", r.cluster_size()}};
  if (applied)
    body["applied"] = *applied;
  return json_response(200, body);
}

size_t parse_limit(const http::request& req, size_t fallback) {
  if (!req.has_param("limit"))
    return fallback;
  auto text = std::string{req.param("limit")};
  if (text.empty() || text.size() > 9
      || text.find_first_not_of("0123456789") != std::string::npos)
    return 0;
  return std::stoul(text);
}

/// One entry of a batch write (a JSON list item or an NDJSON line):
/// {"key": K | "key_b64"/"key_base64": B64, "value": V} or {..., "delete":
/// true}. Returns an explanation on error.
std::string batch_entry(const json& x, pb::UpdateRequest& into,
                        size_t max_depth) {
  if (!x.is_object())
    return "each entry must be a JSON object";
  std::string key;
  if (auto it = x.find("key"); it != x.end()) {
    if (!it->is_string())
      return "\"key\" must be a string";
    key = it->get<std::string>();
  } else if (auto b
             = x.contains("key_b64") ? x.find("key_b64") : x.find("key_base64");
             b != x.end()) {
    if (!b->is_string() || !base64_decode(b->get<std::string>(), key))
      return "\"key_b64\" must be base64";
  } else {
    return "an entry needs \"key\" or \"key_b64\"";
  }
  if (auto d = x.find("delete"); d != x.end()) {
    if (!d->is_boolean() || !d->get<bool>() || x.contains("value"))
      return "\"delete\" must be true and come without \"value\"";
    into.add_deletes(std::move(key));
    return {};
  }
  auto v = x.find("value");
  if (v == x.end())
    return "an entry needs \"value\" or \"delete\": true";
  value val;
  if (auto err = from_json(*v, val, static_cast<int>(max_depth)); !err.empty())
    return err;
  auto* item = into.add_items();
  item->set_key(std::move(key));
  to_proto(val, item->mutable_value());
  return {};
}

// -- routes
// ---------------------------------------------------------------------

/// What a request asks for, once its method and path matched.
enum class route_id {
  healthz,
  readyz,
  status,
  peers,
  kv_list,
  kv_batch,
  kv_no_key,
  kv_get,
  kv_put,
  kv_delete,
  kv_delta,
  messages,
  watch,
  metrics,
  page,
  history,
  mesh,
  backup,
};

/// One route: method, path (exact, or a /v1/kv/KEY form) and the role it
/// needs.
struct route {
  std::string_view method;
  std::string_view path;
  route_id id;
  role needs;
};

/// Path forms with a key: "/v1/kv/{key}" and "/v1/kv/{key}/delta".
constexpr std::string_view key_path = "/v1/kv/{key}";
constexpr std::string_view delta_path = "/v1/kv/{key}/delta";

/// The route table (README's API table says the same). Reads need `read`,
/// writes need `write`; /healthz and /readyz need nothing (the server's
/// open paths let them through without a token), /metrics needs `read`.
/// A backup needs `admin`: it is every key at once, and it holds disk
/// while it streams.
constexpr route routes[] = {
  {"GET", "/healthz", route_id::healthz, role::none},
  {"GET", "/readyz", route_id::readyz, role::none},
  {"GET", "/v1/status", route_id::status, role::read},
  {"GET", "/v1/peers", route_id::peers, role::read},
  {"GET", "/v1/kv", route_id::kv_list, role::read},
  {"POST", "/v1/kv", route_id::kv_batch, role::write},
  {"GET", key_path, route_id::kv_get, role::read},
  {"PUT", key_path, route_id::kv_put, role::write},
  {"DELETE", key_path, route_id::kv_delete, role::write},
  {"POST", delta_path, route_id::kv_delta, role::write},
  {"POST", "/v1/messages", route_id::messages, role::write},
  {"GET", "/v1/watch", route_id::watch, role::read},
  {"GET", "/metrics", route_id::metrics, role::read},
  // The status page: its files need no token (it asks for one on 401).
  {"GET", "/", route_id::page, role::none},
  {"GET", "/index.html", route_id::page, role::none},
  {"GET", "/app.js", route_id::page, role::none},
  {"GET", "/style.css", route_id::page, role::none},
  {"GET", "/v1/history", route_id::history, role::read},
  {"GET", "/v1/mesh", route_id::mesh, role::read},
  {"GET", "/v1/backup", route_id::backup, role::admin},
};

/// The result of routing a request.
struct routed {
  /// 0 when a route matched; else 404 or 405.
  int status = 0;
  const route* r = nullptr;
  /// The key of /v1/kv/{key} routes.
  std::string key;
  /// The methods the path allows (for 405's Allow).
  std::string allow;
};

routed route_of(std::string_view method, std::string_view path) {
  routed out;
  constexpr std::string_view kv_prefix = "/v1/kv/";
  std::string_view form = path;
  std::string_view key;
  bool delta_form = false;
  if (path.substr(0, kv_prefix.size()) == kv_prefix) {
    key = path.substr(kv_prefix.size());
    if (key.empty()) {
      // Every method on /v1/kv/ is a request for the empty key.
      static constexpr route no_key{"", "/v1/kv/", route_id::kv_no_key,
                                    role::none};
      out.r = &no_key;
      return out;
    }
    constexpr std::string_view suffix = "/delta";
    delta_form = key.size() > suffix.size()
                 && key.substr(key.size() - suffix.size()) == suffix;
    form = key_path;
  }
  auto try_form = [&](std::string_view f, std::string_view k) {
    for (const auto& r : routes) {
      if (r.path != f)
        continue;
      if (r.method == method) {
        out.r = &r;
        out.key = std::string{k};
        return true;
      }
      if (out.allow.find(r.method) == std::string::npos)
        out.allow += (out.allow.empty() ? "" : ", ") + std::string{r.method};
    }
    return false;
  };
  // POST /v1/kv/K/delta is a delta on K; any other method on that path is
  // about the key "K/delta".
  if (delta_form && method == "POST"
      && try_form(delta_path, key.substr(0, key.size() - 6)))
    return out;
  if (try_form(form, key))
    return out;
  out.status = out.allow.empty() ? 404 : 405;
  return out;
}

// -- watch events: the node's events, formatted once for every watcher
// --------

/// A watch stream's answer, which may have to wait for the node's event
/// feed (watch_hub::open): sent when both the answer is ready and the feed
/// is on; when the node could not switch it on, a 503 replaces a stream
/// (whose hub slot is released as the stream is dropped).
class deferred_answer {
public:
  explicit deferred_answer(http::responder respond)
      : respond_(std::move(respond)) {}

  /// The answer is ready.
  void ready(http::response res) {
    std::unique_lock<std::mutex> guard{mtx_};
    if (!fed_) {
      res_ = std::move(res);
      return;
    }
    guard.unlock();
    send(std::move(res), *fed_);
  }

  /// The feed is on (true) or could not be switched on (false).
  void fed(bool ok) {
    std::unique_lock<std::mutex> guard{mtx_};
    fed_ = ok;
    if (!res_)
      return;
    auto res = std::move(*res_);
    res_.reset();
    guard.unlock();
    send(std::move(res), ok);
  }

private:
  void send(http::response res, bool ok) {
    if (!ok && res.stream)
      res = http::json_error(503, "closed",
                             "the node did not take the watch subscription");
    respond_(std::move(res));
  }

  http::responder respond_;
  std::mutex mtx_;
  std::optional<bool> fed_;
  std::optional<http::response> res_;
};

/// Publishes one event of the node's subscription to the watch streams.
/// The JSON is built only when the hub keeps events (someone watches, or
/// did within the resume grace): formatting for nobody cost a relay ~3 %.
void publish_event(watch_hub& hub, const pb::Event& ev) {
  switch (ev.kind_case()) {
    case pb::Event::kUpdate:
    case pb::Event::kDeleted:
    case pb::Event::kLeaseLost:
    case pb::Event::kMessage:
      break;
    default:
      return; // peer up/down: not watch events
  }
  if (!hub.wanted())
    return;
  switch (ev.kind_case()) {
    case pb::Event::kUpdate: {
      const auto& u = ev.update();
      json data;
      put_key(data, u.key());
      value v;
      std::string err;
      data["value"] = value_of(u.value(), v, err) ? to_json(v) : json(nullptr);
      data["owner"] = to_hex(u.meta().owner());
      data["time"] = to_ms(u.meta().time_us());
      hub.publish(u.key(), "update", data.dump());
      break;
    }
    case pb::Event::kDeleted: {
      json data;
      put_key(data, ev.deleted().key());
      hub.publish(ev.deleted().key(), "delete", data.dump());
      break;
    }
    case pb::Event::kLeaseLost: {
      json data;
      put_key(data, ev.lease_lost().key());
      data["new_owner"] = to_hex(ev.lease_lost().new_owner());
      hub.publish(ev.lease_lost().key(), "lease_lost", data.dump());
      break;
    }
    case pb::Event::kMessage: {
      const auto& m = ev.message().message();
      auto packets = json::array();
      for (const auto& p : m.packets()) {
        value v;
        std::string err;
        packets.push_back(value_of(p, v, err) ? to_json(v) : json(nullptr));
      }
      json data{{"id", to_hex(m.message_id())}, {"sender", to_hex(m.sender())},
                {"time", to_ms(m.time_us())},   {"packets", packets},
                {"direct", !m.to().empty()},    {"whisper", m.whisper()}};
      hub.publish_all("message", data.dump());
      break;
    }
    default:
      break;
  }
}

} // namespace

// -- the API
// --------------------------------------------------------------------

struct http_api::impl : std::enable_shared_from_this<impl> {
  impl(sync_socket& sock, http_options opts)
      : sock(sock), opts(std::move(opts)),
        started(std::chrono::steady_clock::now()),
        hub(std::make_shared<watch_hub>(this->opts.watch, std::string{},
                                        this->opts.server.log)),
        metrics(std::make_unique<node_metrics>()),
        sys(sock.handle()->home_system()),
        max_depth(sock.settings().max_value_depth) {}

  sync_socket& sock;
  http_options opts;
  std::chrono::steady_clock::time_point started;
  std::shared_ptr<watch_hub> hub;
  std::unique_ptr<node_metrics> metrics;
  caf::actor_system& sys;
  size_t max_depth;
  std::unique_ptr<node_bridge> bridge;
  /// Reads keys for GET on the server's thread (actors/store_reader.hpp).
  std::shared_ptr<store_reader> reader;
  std::unique_ptr<http::http_server> server;
  /// Receives the node's events (subscribed to the facade) and publishes
  /// them to `hub` on a CAF worker: no thread of its own.
  caf::actor events;
  /// The status page's history, filled once a second by `sampler`.
  status_history history;
  std::thread sampler;
  std::mutex sampler_mtx;
  std::condition_variable sampler_cv;
  bool sampler_stop = false;
  /// GET /v1/backup: one at a time (each holds a copy's disk while it
  /// streams). Guards the three below.
  std::mutex backup_mtx;
  /// A backup is being made or streamed.
  bool backup_busy = false;
  /// The API is stopping: no backup starts any more.
  bool backup_stopping = false;
  /// The last backup stream (joined before the next starts, and at stop).
  std::shared_ptr<backup_stream> backup_running;

  /// Records the node's counters into `history` once a second until stopped.
  void run_sampler() {
    std::unique_lock<std::mutex> guard{sampler_mtx};
    while (!sampler_stop) {
      guard.unlock();
      // Keep-alives for idle watch streams ride on this once-a-second
      // loop: no thread of their own.
      hub->heartbeat(std::chrono::steady_clock::now());
      try {
        auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
        history.record(static_cast<uint64_t>(now), counters_of(sock.stats()));
      } catch (const std::exception&) {
        // The node is stopping or busy: this second has no sample.
      }
      guard.lock();
      sampler_cv.wait_for(guard, std::chrono::seconds(1),
                          [this] { return sampler_stop; });
    }
  }

  /// The HTTP front's counters in Prometheus text format: the server's
  /// refusals by cause, connections and requests, and how many GETs the
  /// bridge batched.
  std::string front_metrics() const {
    auto st = server->stats();
    std::string out;
    auto line
      = [&](const char* name, const char* help, const char* type, uint64_t v) {
          out += std::string{"# HELP syncmesh_http_"} + name + " " + help + "\n"
                 + "# TYPE syncmesh_http_" + name + " " + type + "\n"
                 + "syncmesh_http_" + name + " " + std::to_string(v) + "\n";
        };
    line("connections_open", "Open HTTP connections", "gauge",
         st.connections_open);
    line("connections_accepted_total", "HTTP connections accepted", "counter",
         st.connections_accepted);
    line("connections_refused_total",
         "HTTP connections closed at once (connection limit)", "counter",
         st.connections_refused);
    line("requests_total", "HTTP requests dispatched to the API", "counter",
         st.requests);
    line("in_flight", "HTTP requests waiting for the node", "gauge",
         st.in_flight);
    out += "# HELP syncmesh_http_refused_total HTTP requests refused, by "
           "cause\n# TYPE syncmesh_http_refused_total counter\n";
    auto refused = [&](const char* cause, uint64_t v) {
      out += std::string{"syncmesh_http_refused_total{cause=\""} + cause
             + "\"} " + std::to_string(v) + "\n";
    };
    refused("header_too_large", st.header_too_large);
    refused("body_too_large", st.body_too_large);
    refused("url_too_long", st.url_too_long);
    refused("bad_framing", st.bad_framing);
    refused("timeout", st.timeout);
    refused("overloaded", st.overloaded);
    refused("unauthorized", st.unauthorized);
    refused("forbidden", st.forbidden);
    refused("bad_host", st.bad_host);
    refused("bad_origin", st.bad_origin);
    line("request_bytes_held", "Bytes held in HTTP request buffers", "gauge",
         st.request_bytes_held);
    auto w = hub->stats();
    auto wline
      = [&](const char* name, const char* help, const char* type, uint64_t v) {
          out += std::string{"# HELP syncmesh_watch_"} + name + " " + help
                 + "\n# TYPE syncmesh_watch_" + name + " " + type + "\n"
                 + "syncmesh_watch_" + name + " " + std::to_string(v) + "\n";
        };
    wline("streams_open", "Open /v1/watch streams", "gauge", w.watchers);
    wline("events_published_total", "Events put into the watch window",
          "counter", w.published);
    wline("events_skipped_total",
          "Events not kept: nobody watched within the resume grace", "counter",
          w.skipped);
    wline("overflows_total",
          "Watch streams ended with an overflow event (events lost)", "counter",
          w.overflows);
    wline("resumes_total", "Watch streams resumed after an event id", "counter",
          w.resumes);
    wline("compacted_total",
          "Resumes answered 410 (id too old or from another run)", "counter",
          w.compacted);
    wline("refused_total", "Watch streams refused at the cap (503)", "counter",
          w.refused);
    wline("keepalives_total", "Keep-alive comments sent on idle streams",
          "counter", w.keepalives);
    wline("window_bytes", "Bytes held by the watch event window", "gauge",
          w.window_bytes);
    wline("window_events", "Events held by the watch event window", "gauge",
          w.window_events);
    wline("window_limit_bytes", "The watch event window's byte bound", "gauge",
          w.window_limit);
    wline("feed_on",
          "1 while the node builds events for the watch streams (off while "
          "nobody watches)",
          "gauge", w.feed_on);
    wline("feed_offs_total",
          "Times the node confirmed its event feed off (nobody watched)",
          "counter", w.feed_offs);
    line("direct_reads_total",
         "GETs read from the store's table on the server's thread", "counter",
         reader->reads());
    line("batched_puts_total", "PUTs sent to the node inside one update",
         "counter", bridge->batched_sets());
    line("batch_retries_total",
         "Batched updates refused and sent again one PUT at a time", "counter",
         bridge->batch_retries());
    return out;
  }

  /// The answer for a node error.
  http::response fail(const caf::error& err) {
    return error_response(sys, err);
  }

  void handle(http::request&& req, http::responder respond);
  void handle_pieces(http::request&& req, std::shared_ptr<http::body_reader>,
                     http::responder respond);
  void dispatch(const routed& rt, http::request&& req, http::responder respond);
  void watch(http::request&& req, http::responder respond);
  void backup(http::responder respond);
  void stream_backup(pb::BackupReply copy, http::responder respond);
  void send_message(http::request&& req, http::responder respond);
  void write_batch(pb::UpdateRequest req, http::responder respond,
                   std::optional<pb::WriteConcern> concern = std::nullopt);
  void confirmed_call(pb::ConfirmedWriteRequest req, http::responder respond,
                      std::optional<uint64_t> applied = std::nullopt);
};

namespace {

/// Refuses a request that did not reach a route (404/405) or whose role is
/// too low (403); true when it did.
bool admitted(http::http_server& server, const routed& rt,
              const http::request& req, const http::responder& respond) {
  if (rt.status == 404) {
    respond(http::json_error(404, "not_found", "no route for " + req.path));
    return false;
  }
  if (rt.status == 405) {
    auto res = http::json_error(405, "method_not_allowed",
                                req.method + " is not allowed on " + req.path
                                  + " (allowed: " + rt.allow + ")");
    res.headers.emplace_back("Allow", rt.allow);
    respond(std::move(res));
    return false;
  }
  if (req.granted < rt.r->needs) {
    auto text = req.method + " " + req.path + " needs the "
                + std::string{http::to_string(rt.r->needs)}
                + " role; the token grants "
                + std::string{http::to_string(req.granted)};
    server.note_forbidden(req.remote, text);
    respond(http::json_error(403, "forbidden", text));
    return false;
  }
  return true;
}

} // namespace

void http_api::impl::handle(http::request&& req, http::responder respond) {
  auto rt = route_of(req.method, req.path);
  if (!admitted(*server, rt, req, respond))
    return;
  dispatch(rt, std::move(req), std::move(respond));
}

void http_api::impl::dispatch(const routed& rt, http::request&& req,
                              http::responder respond) {
  auto self = shared_from_this();
  switch (rt.r->id) {
    case route_id::healthz:
      respond(json_response(200, json{{"status", "alive"}}));
      return;
    case route_id::readyz: {
      bool listening = sock.port() != 0 || !sock.settings().listen;
      bool expects = opts.expects_peers;
      bridge->call<pb::PeerList>(
        pb::PeersRequest{},
        [self, respond, listening, expects](caf::expected<pb::PeerList> x) {
          if (!x) {
            respond(self->fail(x.error()));
            return;
          }
          bool peered = !expects || x->peers_size() > 0;
          respond(
            json_response(listening && peered ? 200 : 503,
                          json{{"listening", listening}, {"peered", peered}}));
        });
      return;
    }
    case route_id::status:
      bridge->call<pb::NodeInfo>(
        pb::InfoRequest{}, [self, respond](caf::expected<pb::NodeInfo> x) {
          if (!x) {
            respond(self->fail(x.error()));
            return;
          }
          auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now() - self->started)
                          .count();
          // Clock discipline: the fence and every measured peer's offset.
          auto clocks = json::array();
          for (const auto& c : x->clocks())
            clocks.push_back(json{{"node_id", to_hex(c.node_id())},
                                  {"offset_us", c.offset_us()},
                                  {"uncertainty_us", c.uncertainty_us()},
                                  {"beyond", c.beyond()},
                                  {"refused_us", c.refused_us()},
                                  {"measured_at", to_ms(c.measured_us())}});
          respond(json_response(
            200,
            json{{"node_id", to_hex(x->node_id())},
                 {"listen",
                  x->listen_host() + ":" + std::to_string(x->listen_port())},
                 {"protocol_id", x->protocol_id()},
                 {"leasing", x->leasing()},
                 {"keys", x->key_count()},
                 {"peers", x->peer_count()},
                 {"uptime_s", uptime},
                 {"clock", json{{"fenced", x->clock_fenced()},
                                {"max_offset_us", x->max_clock_offset_us()},
                                {"peers", std::move(clocks)}}},
                 {"storage", storage_json(x->storage())}}));
        });
      return;
    case route_id::peers:
      bridge->call<pb::PeerList>(
        pb::PeersRequest{}, [self, respond](caf::expected<pb::PeerList> x) {
          if (!x) {
            respond(self->fail(x.error()));
            return;
          }
          auto list = json::array();
          for (const auto& p : x->peers())
            list.push_back(
              json{{"node_id", to_hex(p.node_id())},
                   {"address", p.host() + ":" + std::to_string(p.port())},
                   {"direction", p.outbound() ? "out" : "in"},
                   {"rtt_us", p.rtt_us()},
                   {"connected_since", to_ms(p.connected_since_us())}});
          respond(json_response(200, json{{"peers", list}}));
        });
      return;
    case route_id::kv_list: {
      auto limit = parse_limit(req, 1000);
      if (limit == 0 || limit > 10000) {
        respond(http::json_error(400, "bad_request", "limit must be 1..10000"));
        return;
      }
      std::string after;
      if (req.has_param("cursor")
          && !base64_decode(std::string{req.param("cursor")}, after)) {
        respond(http::json_error(400, "bad_request", "cursor is not base64"));
        return;
      }
      pb::SnapshotRequest snap;
      snap.set_prefix(std::string{req.param("prefix")});
      snap.set_limit(static_cast<uint32_t>(limit));
      snap.set_start_after(after);
      bridge->call<pb::Snapshot>(
        std::move(snap), [self, respond, limit](caf::expected<pb::Snapshot> x) {
          if (!x) {
            respond(self->fail(x.error()));
            return;
          }
          auto list = json::array();
          for (const auto& item : x->items())
            list.push_back(item_json(item));
          json body{{"items", list}};
          if (static_cast<size_t>(x->items_size()) == limit)
            body["cursor"] = base64_encode(x->items().rbegin()->key());
          respond(json_response(200, body));
        });
      return;
    }
    case route_id::kv_batch:
      // Routed to handle_pieces (the body is read by the API).
      respond(http::json_error(500, "internal", "batch without a reader"));
      return;
    case route_id::kv_no_key:
      respond(http::json_error(400, "invalid_key", "key is empty"));
      return;
    case route_id::kv_get: {
      // Read on this thread from the store's table (actors/store_reader.hpp):
      // no hop into the actor system and back.
      if (auto err = check_key(sock.settings(), rt.key)) {
        respond(fail(err));
        return;
      }
      pb::GetReply got;
      if (!reader->get(rt.key, got)) {
        respond(http::json_error(503, "unavailable", "the node is stopping"));
        return;
      }
      respond(get_response(got));
      return;
    }
    case route_id::kv_put: {
      std::string bad;
      auto concern = parse_confirm(req, sock.settings(), bad);
      if (!bad.empty()) {
        respond(http::json_error(400, "bad_request", bad));
        return;
      }
      value v;
      if (auto err = body_value(req, v, max_depth); !err.empty()) {
        respond(http::json_error(400, "bad_request", err));
        return;
      }
      pb::Value val;
      to_proto(v, &val);
      if (concern) {
        // Not batched with other PUTs: it waits for its confirmation.
        pb::ConfirmedWriteRequest cw;
        cw.mutable_set()->set_key(rt.key);
        *cw.mutable_set()->mutable_value() = std::move(val);
        *cw.mutable_concern() = *concern;
        confirmed_call(std::move(cw), respond);
        return;
      }
      bridge->set(rt.key, std::move(val), [self, respond](caf::error err) {
        respond(!err ? no_content() : self->fail(err));
      });
      return;
    }
    case route_id::kv_delete: {
      std::string bad;
      auto concern = parse_confirm(req, sock.settings(), bad);
      if (!bad.empty()) {
        respond(http::json_error(400, "bad_request", bad));
        return;
      }
      pb::DeleteRequest del;
      del.set_key(rt.key);
      if (concern) {
        pb::ConfirmedWriteRequest cw;
        *cw.mutable_erase() = std::move(del);
        *cw.mutable_concern() = *concern;
        confirmed_call(std::move(cw), respond);
        return;
      }
      bridge->call<pb::DeleteReply>(
        std::move(del), [self, respond](caf::expected<pb::DeleteReply> x) {
          respond(x ? no_content() : self->fail(x.error()));
        });
      return;
    }
    case route_id::kv_delta: {
      std::string bad;
      auto concern = parse_confirm(req, sock.settings(), bad);
      if (!bad.empty()) {
        respond(http::json_error(400, "bad_request", bad));
        return;
      }
      json parsed;
      if (auto err = parse_json(req.body, max_depth + 1, parsed);
          !err.empty() || !parsed.is_object()) {
        respond(
          http::json_error(400, "bad_request",
                           err.empty() ? "body must be a JSON object" : err));
        return;
      }
      value fields;
      if (auto err = from_json(parsed, fields, static_cast<int>(max_depth));
          !err.empty() || !fields.is_map()) {
        respond(
          http::json_error(400, "bad_request",
                           err.empty() ? "body must be a JSON object" : err));
        return;
      }
      pb::DeltaRequest delta;
      delta.set_key(rt.key);
      to_proto(fields.as_map(), delta.mutable_fields());
      if (concern) {
        pb::ConfirmedWriteRequest cw;
        *cw.mutable_delta() = std::move(delta);
        *cw.mutable_concern() = *concern;
        confirmed_call(std::move(cw), respond);
        return;
      }
      bridge->call<pb::WriteAck>(
        std::move(delta), [self, respond](caf::expected<pb::WriteAck> x) {
          respond(x ? no_content() : self->fail(x.error()));
        });
      return;
    }
    case route_id::messages:
      send_message(std::move(req), std::move(respond));
      return;
    case route_id::watch:
      watch(std::move(req), std::move(respond));
      return;
    case route_id::metrics:
      bridge->call<pb::NodeStats>(
        pb::StatsRequest{}, [self, respond](caf::expected<pb::NodeStats> x) {
          if (!x) {
            respond(self->fail(x.error()));
            return;
          }
          // The clock offsets per peer come with the node's info.
          auto stats = std::make_shared<pb::NodeStats>(std::move(*x));
          self->bridge->call<pb::NodeInfo>(
            pb::InfoRequest{},
            [self, respond, stats](caf::expected<pb::NodeInfo> info) {
              if (!info) {
                respond(self->fail(info.error()));
                return;
              }
              // Only the bridge actor scrapes: one at a time.
              http::response res;
              res.content_type = "text/plain; version=0.0.4";
              res.body
                = self->metrics->scrape(*stats, self->hub->size(), *info);
              res.body += self->front_metrics();
              respond(std::move(res));
            });
        });
      return;
    case route_id::page: {
      auto res = static_file(req.path, req.header("if-none-match"));
      respond(res ? std::move(*res)
                  : http::json_error(404, "not_found", "no such file"));
      return;
    }
    case route_id::history:
      respond(history_response(history, req));
      return;
    case route_id::backup:
      backup(std::move(respond));
      return;
    case route_id::mesh:
      bridge->call<pb::NodeInfo>(
        pb::InfoRequest{}, [self, respond](caf::expected<pb::NodeInfo> info) {
          if (!info) {
            respond(self->fail(info.error()));
            return;
          }
          self->bridge->call<pb::PeerList>(
            pb::PeersRequest{}, [self, respond, me = std::move(*info)](
                                  caf::expected<pb::PeerList> peers) {
              if (!peers) {
                respond(self->fail(peers.error()));
                return;
              }
              respond(mesh_response(mesh_of(me, *peers)));
            });
        });
      return;
  }
}

/// GET /v1/backup: the store makes a consistent copy (milliseconds, in its
/// sequencing), then a backup_stream reads it on a thread of its own and
/// streams the backup file (see backup_stream.hpp). The I/O thread only
/// queues the call.
void http_api::impl::backup(http::responder respond) {
  std::shared_ptr<backup_stream> previous;
  {
    std::lock_guard<std::mutex> guard{backup_mtx};
    if (backup_stopping) {
      respond(http::json_error(503, "closed", "the node is stopping"));
      return;
    }
    if (backup_busy) {
      auto res = http::json_error(503, "backup_in_progress",
                                  "a backup is being streamed already; one "
                                  "runs at a time: retry when it ends");
      res.headers.emplace_back("Retry-After", "5");
      respond(std::move(res));
      return;
    }
    backup_busy = true;
    previous = std::move(backup_running);
  }
  auto self = shared_from_this();
  bridge->call<pb::BackupReply>(
    pb::BackupRequest{},
    [self, respond, previous](caf::expected<pb::BackupReply> x) {
      // The previous stream said it was done: its thread is at its end.
      if (previous)
        previous->join();
      if (!x) {
        {
          std::lock_guard<std::mutex> guard{self->backup_mtx};
          self->backup_busy = false;
        }
        respond(self->fail(x.error()));
        return;
      }
      self->stream_backup(std::move(*x), respond);
    });
}

void http_api::impl::stream_backup(pb::BackupReply copy,
                                   http::responder respond) {
  const auto& data_dir = sock.settings().data_dir;
  std::lock_guard<std::mutex> guard{backup_mtx};
  // The dir is removed when the stream ends: make sure it is a copy.
  if (!backup_checkpoints::is_checkpoint(data_dir, copy.checkpoint_dir())
      || backup_stopping) {
    if (backup_checkpoints::is_checkpoint(data_dir, copy.checkpoint_dir())) {
      std::error_code ignored;
      std::filesystem::remove_all(copy.checkpoint_dir(), ignored);
    }
    backup_busy = false;
    respond(backup_stopping
              ? http::json_error(503, "closed", "the node is stopping")
              : http::json_error(500, "internal",
                                 "the node made its copy outside "
                                   + backup_checkpoints::parent_of(data_dir)));
    return;
  }
  auto id = sock.id().raw();
  auto started = std::chrono::steady_clock::now();
  std::weak_ptr<impl> weak = shared_from_this();
  auto ready
    = [respond](std::shared_ptr<backup_stream> stream, std::string error) {
        if (!stream) {
          respond(http::json_error(503, "storage", "backup: " + error));
          return;
        }
        const auto& c = stream->copy();
        auto id_hex = to_hex(c.node_id());
        http::response res;
        res.status = 200;
        res.content_type = "application/octet-stream";
        res.headers.emplace_back(
          "Content-Disposition",
          "attachment; filename=\"syncmesh-" + id_hex.substr(0, 12) + "-"
            + std::to_string(to_ms(c.created_us())) + ".backup\"");
        res.headers.emplace_back("Cache-Control", "no-store");
        res.headers.emplace_back("X-Syncmesh-Node-Id", id_hex);
        res.headers.emplace_back("X-Syncmesh-Backup-Entries",
                                 std::to_string(c.entries()));
        res.headers.emplace_back("X-Syncmesh-Backup-Created",
                                 std::to_string(to_ms(c.created_us())));
        res.stream = std::move(stream);
        respond(std::move(res));
      };
  auto done = [weak, id, started](uint64_t entries, uint64_t bytes,
                                  bool complete, const std::string& error) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - started)
                .count();
    log_line(complete ? log_level::info : log_level::warning, id,
             "backup: " + std::string{complete ? "streamed" : "ended early at"}
               + " " + std::to_string(entries) + " entries, "
               + std::to_string(bytes) + " bytes in " + std::to_string(ms)
               + " ms"
               + (complete        ? ""
                  : error.empty() ? " (the client went away)"
                                  : " (" + error + ")"));
    if (auto self = weak.lock()) {
      std::lock_guard<std::mutex> guard{self->backup_mtx};
      self->backup_busy = false;
    }
  };
  backup_running
    = backup_stream::start(std::move(copy), backup_stream::options{},
                           std::move(ready), std::move(done));
}

void http_api::impl::send_message(http::request&& req,
                                  http::responder respond) {
  json body;
  // {"packets": [V...]} wraps a value in two levels.
  auto err = parse_json(req.body, max_depth + 3, body);
  if (!err.empty() && err != "body is not JSON") {
    respond(http::json_error(400, "bad_request", err));
    return;
  }
  if (body.is_array())
    body = json{{"packets", body}};
  if (body.is_discarded() || !body.is_object() || !body.contains("packets")
      || !body["packets"].is_array()) {
    respond(http::json_error(400, "bad_request",
                             "body must be a JSON list of packets or "
                             "{\"packets\": [...], \"to\": id, \"whisper\": "
                             "bool}"));
    return;
  }
  pb::SendRequest send;
  for (const auto& p : body["packets"]) {
    value v;
    if (auto e = from_json(p, v, static_cast<int>(max_depth)); !e.empty()) {
      respond(http::json_error(400, "bad_request", e));
      return;
    }
    to_proto(v, send.add_packets());
  }
  if (body.contains("to")) {
    std::string to;
    // from_hex takes any node ID length, py2p's 65-66 characters included.
    if (!body["to"].is_string()
        || !from_hex(body["to"].get<std::string>(), to)) {
      respond(
        http::json_error(400, "bad_request", "\"to\" must be a hex node ID"));
      return;
    }
    send.set_to(to);
  }
  if (body.contains("whisper") && !body["whisper"].is_boolean()) {
    respond(http::json_error(400, "bad_request", "\"whisper\" must be a bool"));
    return;
  }
  send.set_whisper(body.value("whisper", false));
  auto self = shared_from_this();
  bridge->call<pb::SendReply>(
    std::move(send), [self, respond](caf::expected<pb::SendReply> x) {
      if (!x) {
        respond(self->fail(x.error()));
        return;
      }
      respond(json_response(202, json{{"id", to_hex(x->message_id())}}));
    });
}

void http_api::impl::watch(http::request&& req, http::responder respond) {
  std::string prefix{req.param("prefix")};
  if (prefix.size() > sock.settings().max_key_size) {
    respond(http::json_error(400, "bad_request",
                             "the prefix is longer than the key size limit"));
    return;
  }
  // `?since=` wins over the header: a script names its resume point
  // explicitly, a browser's EventSource sends Last-Event-ID on its own.
  auto last_id
    = req.has_param("since") ? req.param("since") : req.header("last-event-id");
  // With the feed off, open() switches it on and the answer waits for the
  // node (on_fed): whichever of the two comes second sends it.
  auto answer = std::make_shared<deferred_answer>(std::move(respond));
  auto opened
    = hub->open(prefix, last_id, [answer](bool fed) { answer->fed(fed); });
  if (!opened.feed_pending)
    answer->fed(true);
  respond = [answer](http::response res) {
    answer->ready(std::move(res));
  };
  using status = watch_hub::open_status;
  switch (opened.status) {
    case status::ok:
      break;
    case status::full: {
      auto res
        = http::json_error(503, "overloaded",
                           "at most " + std::to_string(opts.watch.max_watchers)
                             + " watch streams are open (--http-max-watchers)");
      res.headers.emplace_back("Retry-After", "5");
      respond(std::move(res));
      return;
    }
    case status::closed:
      respond(http::json_error(503, "closed", "the node is stopping"));
      return;
    case status::compacted:
    case status::foreign: {
      // Like etcd's compacted revision: the events after that id are gone
      // (or it is from another run of this node); the client must read the
      // current state and watch from now on.
      auto why = opened.status == status::foreign
                   ? "the event id is from another run of this node"
                   : "the events after that id are no longer kept";
      json body{{"error", "compacted"},
                {"message", std::string{why}
                              + ": re-list (GET /v1/kv?prefix=) and start a "
                                "new watch without an id"},
                {"id", std::string{last_id}},
                {"newest", opened.newest}};
      respond(json_response(410, body));
      return;
    }
    case status::malformed:
      respond(http::json_error(400, "bad_request",
                               "not an event id of this node: \""
                                 + std::string{last_id.substr(0, 80)} + "\""));
      return;
  }
  http::response res;
  res.content_type = "text/event-stream";
  res.headers.emplace_back("Cache-Control", "no-cache");
  res.headers.emplace_back("X-Accel-Buffering", "no");
  res.stream = std::move(opened.stream);
  respond(std::move(res));
}

void http_api::impl::confirmed_call(pb::ConfirmedWriteRequest req,
                                    http::responder respond,
                                    std::optional<uint64_t> applied) {
  auto self = shared_from_this();
  bridge->call<pb::ConfirmedWriteReply>(
    std::move(req),
    [self, respond, applied](caf::expected<pb::ConfirmedWriteReply> x) {
      if (x) {
        respond(confirmed_response(*x, applied));
        return;
      }
      auto res = self->fail(x.error());
      if (applied && res.status == 202) {
        // The batch was applied here and stands.
        auto body = json::parse(res.body, nullptr, false);
        if (body.is_object()) {
          body["applied"] = *applied;
          res.body = body.dump();
        }
      }
      respond(std::move(res));
    });
}

void http_api::impl::write_batch(pb::UpdateRequest req, http::responder respond,
                                 std::optional<pb::WriteConcern> concern) {
  auto n = static_cast<uint64_t>(req.items_size() + req.deletes_size());
  auto self = shared_from_this();
  if (concern) {
    pb::ConfirmedWriteRequest cw;
    *cw.mutable_update() = std::move(req);
    *cw.mutable_concern() = *concern;
    confirmed_call(std::move(cw), respond, n);
    return;
  }
  bridge->call<pb::WriteAck>(
    std::move(req), [self, respond, n](caf::expected<pb::WriteAck> x) {
      if (!x) {
        respond(self->fail(x.error()));
        return;
      }
      respond(json_response(200, json{{"applied", n}}));
    });
}

namespace {

/// The HTTP status for a body_reader's error.
http::response reader_error(std::string_view error) {
  if (error == "body_too_large")
    return http::json_error(413, "body_too_large", "the body is too large");
  if (error == "timeout")
    return http::json_error(408, "timeout", "the body came too slowly");
  return http::json_error(400, "bad_request", error);
}

/// Adds fields to a JSON error body.
http::response with_progress(http::response res, uint64_t applied,
                             uint64_t line) {
  auto body = json::parse(res.body, nullptr, false);
  if (!body.is_object())
    body = json::object();
  body["applied"] = applied;
  if (line > 0)
    body["line"] = line;
  res.body = body.dump();
  res.content_type = "application/json";
  return res;
}

/// A `POST /v1/kv` body read whole (JSON list), within `limit` bytes.
class json_batch_read : public std::enable_shared_from_this<json_batch_read> {
public:
  json_batch_read(std::shared_ptr<http::body_reader> reader, uint64_t limit,
                  std::function<void(std::string)> done,
                  http::responder respond)
      : reader_(std::move(reader)), limit_(limit), done_(std::move(done)),
        respond_(std::move(respond)) {}

  void read() {
    auto me = shared_from_this();
    reader_->read([me](std::string_view piece, bool end, std::string_view err) {
      if (!err.empty()) {
        me->respond_(reader_error(err));
        return;
      }
      if (me->body_.size() + piece.size() > me->limit_) {
        me->respond_(http::json_error(
          413, "body_too_large",
          "a JSON batch is at most " + std::to_string(me->limit_)
            + " bytes; send bulk loads as application/x-ndjson"));
        return;
      }
      me->body_.append(piece);
      if (end)
        me->done_(std::move(me->body_));
      else
        me->read();
    });
  }

private:
  std::shared_ptr<http::body_reader> reader_;
  uint64_t limit_;
  std::string body_;
  std::function<void(std::string)> done_;
  http::responder respond_;
};

} // namespace

/// An NDJSON bulk load: lines parsed as pieces arrive, sent to the node in
/// all-or-nothing batches of up to `ndjson_batch_lines` lines; the next
/// piece is read only once the previous batch is applied (back-pressure).
/// Holds at most one piece, one unfinished line and one batch.
class ndjson_load : public std::enable_shared_from_this<ndjson_load> {
public:
  ndjson_load(std::shared_ptr<http_api::impl> api,
              std::shared_ptr<http::body_reader> reader,
              http::responder respond)
      : api_(std::move(api)), reader_(std::move(reader)),
        respond_(std::move(respond)) {
    const auto& cfg = api_->sock.settings();
    // base64 of the largest value, plus the key and the JSON around it.
    max_line_ = cfg.max_value_size * 2 + cfg.max_key_size * 2 + 4096;
    max_batch_bytes_ = cfg.max_frame_size / 2;
    max_lines_ = std::max<size_t>(1, api_->opts.ndjson_batch_lines);
  }

  void read_more() {
    auto me = shared_from_this();
    reader_->read([me](std::string_view piece, bool end, std::string_view err) {
      if (!err.empty()) {
        me->respond_(with_progress(reader_error(err), me->applied_, 0));
        return;
      }
      me->buf_.append(piece);
      me->ended_ = end;
      me->process();
    });
  }

private:
  /// Parses the complete lines held; sends a batch when full, else reads
  /// on (or finishes at the end of the body).
  void process() {
    for (;;) {
      auto nl = buf_.find('\n', consumed_);
      if (nl == std::string::npos) {
        if (!ended_ || consumed_ == buf_.size())
          break;
        nl = buf_.size(); // the last line has no newline
      }
      std::string_view line{buf_.data() + consumed_, nl - consumed_};
      consumed_ = std::min(nl + 1, buf_.size());
      ++line_no_;
      if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
      if (line.find_first_not_of(" \t") == std::string_view::npos)
        continue;
      if (auto err = add_line(line); !err.empty()) {
        respond_(with_progress(
          http::json_error(400, "bad_request",
                           "line " + std::to_string(line_no_) + ": " + err),
          applied_, line_no_));
        return;
      }
      if (lines_ >= max_lines_ || batch_bytes_ >= max_batch_bytes_) {
        send();
        return;
      }
    }
    buf_.erase(0, consumed_);
    consumed_ = 0;
    if (buf_.size() > max_line_) {
      respond_(with_progress(
        http::json_error(413, "line_too_large",
                         "line " + std::to_string(line_no_ + 1)
                           + " is longer than " + std::to_string(max_line_)
                           + " bytes"),
        applied_, line_no_ + 1));
      return;
    }
    if (!ended_) {
      read_more();
      return;
    }
    if (lines_ > 0) {
      send();
      return;
    }
    respond_(json_response(200, json{{"applied", applied_}}));
  }

  std::string add_line(std::string_view line) {
    if (lines_ == 0)
      first_line_ = line_no_;
    json parsed;
    if (auto err = parse_json(line, api_->max_depth + 3, parsed); !err.empty())
      return err;
    if (auto err = batch_entry(parsed, batch_, api_->max_depth); !err.empty())
      return err;
    ++lines_;
    batch_bytes_ += line.size();
    return {};
  }

  void send() {
    auto me = shared_from_this();
    pb::UpdateRequest req;
    req.Swap(&batch_);
    auto n = lines_;
    lines_ = 0;
    batch_bytes_ = 0;
    api_->bridge->call<pb::WriteAck>(
      std::move(req), [me, n](caf::expected<pb::WriteAck> x) {
        if (!x) {
          me->respond_(with_progress(me->api_->fail(x.error()), me->applied_,
                                     me->first_line_));
          return;
        }
        me->applied_ += n;
        me->process();
      });
  }

  std::shared_ptr<http_api::impl> api_;
  std::shared_ptr<http::body_reader> reader_;
  http::responder respond_;
  size_t max_line_ = 0;
  size_t max_batch_bytes_ = 0;
  size_t max_lines_ = 0;
  std::string buf_;
  size_t consumed_ = 0;
  bool ended_ = false;
  uint64_t line_no_ = 0;
  uint64_t first_line_ = 0;
  uint64_t applied_ = 0;
  pb::UpdateRequest batch_;
  size_t lines_ = 0;
  size_t batch_bytes_ = 0;
};

void http_api::impl::handle_pieces(http::request&& req,
                                   std::shared_ptr<http::body_reader> reader,
                                   http::responder respond) {
  auto rt = route_of(req.method, req.path);
  if (!admitted(*server, rt, req, respond))
    return;
  std::string bad;
  auto concern = parse_confirm(req, sock.settings(), bad);
  if (!bad.empty()) {
    respond(http::json_error(400, "bad_request", bad));
    return;
  }
  auto type = req.header("content-type");
  if (type.rfind("application/x-ndjson", 0) == 0) {
    if (concern) {
      respond(http::json_error(400, "bad_request",
                               "confirm is for JSON batches, not NDJSON bulk "
                               "loads (send the load, then a confirmed "
                               "batch, or confirm in batches)"));
      return;
    }
    std::make_shared<ndjson_load>(shared_from_this(), std::move(reader),
                                  std::move(respond))
      ->read_more();
    return;
  }
  if (type.rfind("application/json", 0) != 0) {
    respond(http::json_error(415, "unsupported_media_type",
                             "POST /v1/kv takes application/json (a list of "
                             "entries) or application/x-ndjson"));
    return;
  }
  auto limit = opts.max_batch_body != 0 ? opts.max_batch_body
                                        : sock.settings().max_frame_size;
  auto self = shared_from_this();
  auto on_body = [self, respond, concern](std::string body) {
    json list;
    // [ {"value": V} ]: two levels around each value.
    if (auto err = parse_json(body, self->max_depth + 3, list); !err.empty()) {
      respond(http::json_error(400, "bad_request", err));
      return;
    }
    if (!list.is_array()) {
      respond(http::json_error(400, "bad_request",
                               "body must be a JSON list of {\"key\": K, "
                               "\"value\": V} or {\"key\": K, \"delete\": "
                               "true}"));
      return;
    }
    if (list.size() > self->opts.max_batch_entries) {
      respond(http::json_error(413, "too_many_entries",
                               "a batch has at most "
                                 + std::to_string(self->opts.max_batch_entries)
                                 + " entries"));
      return;
    }
    pb::UpdateRequest batch;
    size_t index = 0;
    for (const auto& x : list) {
      ++index;
      if (auto err = batch_entry(x, batch, self->max_depth); !err.empty()) {
        respond(http::json_error(
          400, "bad_request", "entry " + std::to_string(index) + ": " + err));
        return;
      }
    }
    if (batch.items_size() + batch.deletes_size() == 0) {
      respond(json_response(200, json{{"applied", 0}}));
      return;
    }
    self->write_batch(std::move(batch), respond, concern);
  };
  std::make_shared<json_batch_read>(std::move(reader), limit,
                                    std::move(on_body), std::move(respond))
    ->read();
}

http_api::http_api(sync_socket& sock, http_options opts)
    : impl_(std::make_shared<impl>(sock, std::move(opts))) {
  auto& st = *impl_;
  auto timeout = caf::duration{sock.settings().request_timeout};
  st.bridge = std::make_unique<node_bridge>(sock.handle(),
                                            sock.settings().request_timeout);
  st.reader = internals(sock).reader;
  auto sopts = st.opts.server;
  for (auto path : {"/", "/index.html", "/app.js", "/style.css"})
    sopts.open_paths.emplace_back(path);
  // A PUT body is a value (JSON text of bytes: base64, 4/3) plus slack.
  if (sopts.max_body == 0)
    sopts.max_body = sock.settings().max_value_size * 2 + 4096;
  std::weak_ptr<impl> weak = impl_;
  http::http_dispatch dispatch;
  dispatch.whole = [weak](http::request&& req, http::responder respond) {
    if (auto self = weak.lock())
      self->handle(std::move(req), std::move(respond));
    else
      respond(http::json_error(503, "closed", "the node is stopping"));
  };
  dispatch.pieces
    = [weak](http::request&& req, std::shared_ptr<http::body_reader> reader,
             http::responder respond) {
        if (auto self = weak.lock())
          self->handle_pieces(std::move(req), std::move(reader),
                              std::move(respond));
        else
          respond(http::json_error(503, "closed", "the node is stopping"));
      };
  dispatch.reads_in_pieces
    = [](std::string_view method, std::string_view path) {
        return method == "POST" && path == "/v1/kv";
      };
  st.server = std::make_unique<http::http_server>(std::move(sopts),
                                                  std::move(dispatch));
  // The node's events straight from its facade: the sync_socket's
  // callback queue drops its oldest events when full, which a watch must
  // never do silently. The actor's work per event is bounded (format once,
  // append to the window, wake the waiting streams).
  std::weak_ptr<watch_hub> hub = st.hub;
  st.events = st.sys.spawn([hub](caf::event_based_actor*) -> caf::behavior {
    return {
      [hub](const pb::Event& ev) {
        if (auto h = hub.lock())
          publish_event(*h, ev);
      },
    };
  });
  caf::scoped_actor self{st.sys};
  bool subscribed = false;
  self->request(sock.handle(), timeout, subscribe_atom::value, st.events)
    .receive([&](bool) { subscribed = true; }, [](caf::error&) {});
  if (!subscribed) {
    caf::anon_send_exit(st.events, caf::exit_reason::user_shutdown);
    throw error(errc::closed, "the node did not take the watch subscription");
  }
  // From now on the hub switches the subscription off while nobody
  // watches and on when a stream opens, through the bridge so that the
  // switches reach the facade in the order the hub decided them. The hub
  // stops calling it at close(), before the bridge stops.
  st.hub->set_feed([bridge = st.bridge.get(), events = st.events](
                     bool on, std::function<void(bool)> done) {
    bridge->subscribe(events, on,
                      [done = std::move(done)](caf::expected<bool> x) {
                        if (done)
                          done(static_cast<bool>(x));
                      });
  });
}

http_api::~http_api() {
  stop();
}

uint16_t http_api::start(const std::string& host, uint16_t port,
                         std::string& error) {
  auto port_bound = impl_->server->start(host, port, error);
  if (port_bound != 0 && !impl_->sampler.joinable()) {
    auto* st = impl_.get();
    impl_->sampler = std::thread{[st] {
      st->run_sampler();
    }};
  }
  return port_bound;
}

void http_api::stop() {
  auto& st = *impl_;
  {
    std::lock_guard<std::mutex> guard{st.sampler_mtx};
    st.sampler_stop = true;
  }
  st.sampler_cv.notify_all();
  if (st.sampler.joinable())
    st.sampler.join();
  st.hub->close();
  if (st.server)
    st.server->stop();
  // A backup that is streaming ends with its connection; one whose answer
  // had not reached the server yet is ended here. Its copy is removed.
  std::shared_ptr<backup_stream> backup;
  {
    std::lock_guard<std::mutex> guard{st.backup_mtx};
    st.backup_stopping = true;
    backup = std::move(st.backup_running);
  }
  if (backup) {
    backup->cancel();
    backup->join();
  }
  if (st.events) {
    caf::anon_send_exit(st.events, caf::exit_reason::user_shutdown);
    st.events = nullptr;
  }
  // The bridge actor holds callbacks that keep impl alive: end it.
  if (st.bridge)
    st.bridge->stop();
}

http::server_stats http_api::server_stats() const {
  return impl_->server->stats();
}

syncmesh::watch_stats http_api::watch_stats() const {
  return impl_->hub->stats();
}

} // namespace syncmesh
