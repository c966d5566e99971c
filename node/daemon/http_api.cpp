#include "node/daemon/http_api.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "messages/time_text.hpp"
#include "messages/version.hpp"
#include "node/daemon/json_value.hpp"
#include "node/daemon/metrics.hpp"
#include "node/daemon/watch_hub.hpp"
#include "syncmesh/sync_socket.hpp"

namespace syncmesh {

namespace {

using nlohmann::json;

uint64_t to_ms(uint64_t us) {
  return us / 1000;
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& kind,
                const std::string& message) {
  send_json(res, status, json{{"error", kind}, {"message", message}});
}

/// Maps what the node threw to an HTTP status and a JSON error.
void send_exception(httplib::Response& res, std::exception_ptr ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const lease_error& e) {
    send_json(res, 409,
              json{{"error", "lease"},
                   {"owner", e.owner()},
                   {"expires_at", to_ms(e.lease_end_us())},
                   {"expires_at_iso", iso8601_utc(e.lease_end_us())},
                   {"message", e.what()}});
  } catch (const key_error& e) {
    send_error(res, 404, "not_found", e.what());
  } catch (const type_error& e) {
    send_error(res, 422, "type", e.what());
  } catch (const value_error& e) {
    auto status = e.code() == errc::value_too_large ? 413 : 400;
    send_error(res, status, to_string(e.code()), e.what());
  } catch (const syncmesh::error& e) {
    send_error(res, 503, to_string(e.code()), e.what());
  } catch (const std::exception& e) {
    send_error(res, 500, "internal", e.what());
  }
}

/// Runs `f`, turning exceptions into JSON errors.
template <class F>
void guarded(httplib::Response& res, F&& f) {
  try {
    f();
  } catch (...) {
    send_exception(res, std::current_exception());
  }
}

void put_meta_headers(httplib::Response& res, const entry_meta& meta) {
  res.set_header("X-Syncmesh-Owner", to_hex(meta.owner));
  res.set_header("X-Syncmesh-Time", std::to_string(to_ms(meta.time_us)));
  res.set_header("X-Syncmesh-Lease-End",
                 std::to_string(to_ms(meta.lease_end_us)));
}

json item_json(const item& x) {
  json obj;
  put_key(obj, x.key);
  obj["value"] = to_json(x.val);
  obj["owner"] = to_hex(x.meta.owner);
  obj["time"] = to_ms(x.meta.time_us);
  obj["lease_end"] = to_ms(x.meta.lease_end_us);
  return obj;
}

/// The value a PUT body stands for: text for text/*, parsed JSON for
/// application/json, raw bytes otherwise. Returns an explanation on error.
std::string body_value(const httplib::Request& req, value& out, int max_depth) {
  auto type = req.get_header_value("Content-Type");
  if (type.rfind("text/", 0) == 0) {
    if (!is_utf8(req.body))
      return "text body is not UTF-8";
    out = value{req.body};
    return {};
  }
  if (type.rfind("application/json", 0) == 0) {
    auto parsed = json::parse(req.body, nullptr, false);
    if (parsed.is_discarded())
      return "body is not JSON";
    return from_json(parsed, out, max_depth);
  }
  out = value::from_bytes(req.body);
  return {};
}

size_t parse_limit(const httplib::Request& req, size_t fallback) {
  if (!req.has_param("limit"))
    return fallback;
  auto text = req.get_param_value("limit");
  if (text.empty() || text.size() > 9
      || text.find_first_not_of("0123456789") != std::string::npos)
    return 0;
  return std::stoul(text);
}

} // namespace

http_api::http_api(sync_socket& sock, http_options opts)
    : sock_(sock), opts_(opts), started_(std::chrono::steady_clock::now()),
      server_(std::make_unique<httplib::Server>()),
      hub_(std::make_shared<watch_hub>(opts.max_watchers, opts.watch_queue)),
      metrics_(std::make_unique<node_metrics>()) {
  // One pool for everything: watchers (each holds a thread while open) plus
  // workers, so open watch streams can never starve ordinary requests.
  auto threads = opts_.max_watchers + opts_.worker_threads;
  server_->new_task_queue = [threads] {
    return new httplib::ThreadPool(threads);
  };
  server_->set_payload_max_length(sock_.settings().max_value_size + 1024);
  // Without it a reply's header and body (and each SSE chunk) wait out the
  // client's delayed ACK: 40 ms per request on Linux (Nagle).
  server_->set_tcp_nodelay(true);
  install_routes();
  std::weak_ptr<watch_hub> hub = hub_;
  sock_.on_update(
    [hub](const std::string& key, const value& val, const entry_meta& meta) {
      // Formatting JSON for nobody cost a relay ~3 % of its time.
      if (auto h = hub.lock(); h && h->size() > 0) {
        json ev;
        put_key(ev, key);
        ev["value"] = to_json(val);
        ev["owner"] = to_hex(meta.owner);
        ev["time"] = to_ms(meta.time_us);
        h->publish(key, "update", ev.dump());
      }
    });
  sock_.on_delete([hub](const std::string& key) {
    if (auto h = hub.lock(); h && h->size() > 0) {
      json ev;
      put_key(ev, key);
      h->publish(key, "delete", ev.dump());
    }
  });
  sock_.on_message([hub](const message& m) {
    if (auto h = hub.lock(); h && h->size() > 0) {
      auto packets = json::array();
      for (const auto& p : m.packets)
        packets.push_back(to_json(p));
      json ev{{"id", to_hex(m.id)},       {"sender", to_hex(m.sender)},
              {"time", to_ms(m.time_us)}, {"packets", packets},
              {"direct", m.direct},       {"whisper", m.whisper}};
      h->publish_all("message", ev.dump());
    }
  });
  sock_.on_lease_lost([hub](const std::string& key, const std::string& owner) {
    if (auto h = hub.lock(); h && h->size() > 0) {
      json ev;
      put_key(ev, key);
      ev["new_owner"] = to_hex(owner);
      h->publish(key, "lease_lost", ev.dump());
    }
  });
}

http_api::~http_api() {
  stop();
}

uint16_t http_api::start(const std::string& host, uint16_t port,
                         std::string& error) {
  int bound = port == 0 ? server_->bind_to_any_port(host)
                        : (server_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    error = "cannot bind the HTTP API to " + host + ":" + std::to_string(port);
    return 0;
  }
  thread_ = std::thread{[this] {
    server_->listen_after_bind();
  }};
  // httplib's stop() is a no-op until the listen loop runs: wait for it, so
  // a stop right after start (a quick SIGTERM) cannot be lost.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server_->is_running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  return static_cast<uint16_t>(bound);
}

void http_api::stop() {
  hub_->close();
  if (server_)
    server_->stop();
  if (thread_.joinable())
    thread_.join();
}

void http_api::install_routes() {
  auto& srv = *server_;
  srv.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, json{{"status", "alive"}});
  });
  srv.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    guarded(res, [&] {
      bool listening = sock_.port() != 0 || !sock_.settings().listen;
      bool peered = !opts_.expects_peers || !sock_.peers().empty();
      json body{{"listening", listening}, {"peered", peered}};
      send_json(res, listening && peered ? 200 : 503, body);
    });
  });
  srv.Get("/v1/status",
          [this](const httplib::Request&, httplib::Response& res) {
            guarded(res, [&] {
              auto info = sock_.info();
              auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::steady_clock::now() - started_)
                              .count();
              send_json(res, 200,
                        json{{"node_id", to_hex(info.node_id())},
                             {"listen", info.listen_host() + ":"
                                          + std::to_string(info.listen_port())},
                             {"protocol_id", info.protocol_id()},
                             {"leasing", info.leasing()},
                             {"keys", info.key_count()},
                             {"peers", info.peer_count()},
                             {"uptime_s", uptime}});
            });
          });
  srv.Get("/v1/peers", [this](const httplib::Request&, httplib::Response& res) {
    guarded(res, [&] {
      auto list = json::array();
      for (const auto& p : sock_.peers())
        list.push_back(json{{"node_id", p.id_hex()},
                            {"address", p.host + ":" + std::to_string(p.port)},
                            {"direction", p.outbound ? "out" : "in"},
                            {"rtt_us", p.rtt.count()},
                            {"connected_since", to_ms(p.connected_since_us)}});
      send_json(res, 200, json{{"peers", list}});
    });
  });
  srv.Get(
    "/v1/kv", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] {
        auto limit = parse_limit(req, 1000);
        if (limit == 0 || limit > 10000) {
          send_error(res, 400, "bad_request", "limit must be 1..10000");
          return;
        }
        std::string after;
        if (req.has_param("cursor")
            && !base64_decode(req.get_param_value("cursor"), after)) {
          send_error(res, 400, "bad_request", "cursor is not base64");
          return;
        }
        auto items = sock_.items(req.get_param_value("prefix"), limit, after);
        auto list = json::array();
        for (const auto& x : items)
          list.push_back(item_json(x));
        json body{{"items", list}};
        if (items.size() == limit)
          body["cursor"] = base64_encode(items.back().key);
        send_json(res, 200, body);
      });
    });
  srv.Get("/v1/kv/", [](const httplib::Request&, httplib::Response& res) {
    send_error(res, 400, "invalid_key", "key is empty");
  });
  srv.Put("/v1/kv/", [](const httplib::Request&, httplib::Response& res) {
    send_error(res, 400, "invalid_key", "key is empty");
  });
  srv.Get(R"(/v1/kv/(.+))",
          [this](const httplib::Request& req, httplib::Response& res) {
            guarded(res, [&] {
              auto found = sock_.get_item(req.matches[1].str());
              if (!found) {
                send_error(res, 404, "not_found", "no such key");
                return;
              }
              put_meta_headers(res, found->meta);
              const auto& v = found->val;
              if (v.is_bytes())
                res.set_content(v.as_bytes(), "application/octet-stream");
              else if (v.is_text())
                res.set_content(v.as_text(), "text/plain; charset=utf-8");
              else
                res.set_content(to_json(v).dump(), "application/json");
            });
          });
  srv.Put(R"(/v1/kv/(.+))",
          [this](const httplib::Request& req, httplib::Response& res) {
            guarded(res, [&] {
              value v;
              if (auto err = body_value(
                    req, v, static_cast<int>(sock_.settings().max_value_depth));
                  !err.empty()) {
                send_error(res, 400, "bad_request", err);
                return;
              }
              sock_.set(req.matches[1].str(), std::move(v));
              res.status = 204;
            });
          });
  srv.Delete(R"(/v1/kv/(.+))",
             [this](const httplib::Request& req, httplib::Response& res) {
               guarded(res, [&] {
                 sock_.erase(req.matches[1].str());
                 res.status = 204;
               });
             });
  srv.Post(R"(/v1/kv/(.+)/delta)", [this](const httplib::Request& req,
                                          httplib::Response& res) {
    guarded(res, [&] {
      auto parsed = json::parse(req.body, nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object()) {
        send_error(res, 400, "bad_request", "body must be a JSON object");
        return;
      }
      value fields;
      if (auto err = from_json(
            parsed, fields, static_cast<int>(sock_.settings().max_value_depth));
          !err.empty() || !fields.is_map()) {
        send_error(res, 400, "bad_request",
                   err.empty() ? "body must be a JSON object" : err);
        return;
      }
      sock_.apply_delta(req.matches[1].str(), fields.as_map());
      res.status = 204;
    });
  });
  srv.Post("/v1/messages", [this](const httplib::Request& req,
                                  httplib::Response& res) {
    guarded(res, [&] {
      auto body = json::parse(req.body, nullptr, false);
      if (body.is_array())
        body = json{{"packets", body}};
      if (body.is_discarded() || !body.is_object() || !body.contains("packets")
          || !body["packets"].is_array()) {
        send_error(res, 400, "bad_request",
                   "body must be a JSON list of packets or "
                   "{\"packets\": [...], \"to\": id, \"whisper\": bool}");
        return;
      }
      std::vector<value> packets;
      for (const auto& p : body["packets"]) {
        value v;
        if (auto err = from_json(
              p, v, static_cast<int>(sock_.settings().max_value_depth));
            !err.empty()) {
          send_error(res, 400, "bad_request", err);
          return;
        }
        packets.push_back(std::move(v));
      }
      send_options opts;
      if (body.contains("to")) {
        if (!body["to"].is_string()
            || !from_hex(body["to"].get<std::string>(), opts.to)) {
          send_error(res, 400, "bad_request", "\"to\" must be a hex node ID");
          return;
        }
      }
      opts.whisper = body.value("whisper", false);
      auto id = sock_.send(std::move(packets), opts);
      send_json(res, 202, json{{"id", to_hex(id)}});
    });
  });
  srv.Get("/v1/watch",
          [this](const httplib::Request& req, httplib::Response& res) {
            auto w = hub_->join(req.get_param_value("prefix"));
            if (!w) {
              send_error(res, 503, "overloaded",
                         "at most " + std::to_string(opts_.max_watchers)
                           + " watch streams");
              return;
            }
            auto hub = hub_;
            res.set_header("Cache-Control", "no-cache");
            res.set_chunked_content_provider(
              "text/event-stream",
              [hub, w](size_t, httplib::DataSink& sink) {
                std::string out;
                bool open = hub->wait(w, std::chrono::seconds(1), out);
                if (out.empty())
                  out = ": keep-alive\n\n"; // also detects a vanished client
                if (!sink.write(out.data(), out.size()))
                  return false;
                if (!open) {
                  sink.done();
                  return false;
                }
                return true;
              },
              [hub, w](bool) { hub->leave(w); });
          });
  srv.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    guarded(res, [&] {
      res.set_content(metrics_->scrape(sock_.stats(), hub_->size()),
                      "text/plain; version=0.0.4");
    });
  });
  srv.set_exception_handler(
    [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      send_exception(res, ep);
    });
}

} // namespace syncmesh
