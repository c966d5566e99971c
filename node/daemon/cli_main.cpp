// syncmesh: a command-line client of a node's HTTP API, for people.

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "node/daemon/json_value.hpp"

namespace {

using nlohmann::json;

constexpr const char* usage
  = R"(usage: syncmesh [--node=HOST:PORT] COMMAND [ARGS]

Talks to the HTTP API of a syncmesh node (default 127.0.0.1:7441).

commands:
  get KEY                print the value (text as is, others as JSON)
  set KEY VALUE          store VALUE as text (--json: parse VALUE as JSON,
                         --bytes: store it as raw bytes)
  del KEY                delete KEY
  keys [--prefix=P]      list keys
  items [--prefix=P]     list keys, values, owners
  delta KEY JSON         merge a JSON object into the map at KEY
  peers                  list connected peers
  status                 show the node's status
  watch [--prefix=P]     print update/delete/message events as they happen
  send [--to=ID] [--whisper] PACKET...
                         send a message (packets as text) to the mesh, to
                         one node, or to direct peers only
)";

[[noreturn]] void die(const std::string& msg, int code = 1) {
  std::cerr << "syncmesh: " << msg << "\n";
  std::exit(code);
}

/// Percent-encodes a key for a URL path segment.
std::string encode_key(const std::string& key) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : key) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/// Exits with the server's message unless the status is 2xx.
void check(const httplib::Result& res, const std::string& what) {
  if (!res)
    die("cannot reach the node for " + what + ": "
        + httplib::to_string(res.error()));
  if (res->status >= 200 && res->status < 300)
    return;
  auto body = json::parse(res->body, nullptr, false);
  std::string msg = body.is_object() && body.contains("message")
                      ? body["message"].get<std::string>()
                      : res->body;
  if (body.is_object() && body.value("error", "") == "lease")
    msg += " (owner " + body.value("owner", "?") + ", until "
           + std::to_string(body.value("expires_at", uint64_t{0})) + " ms)";
  die(what + " failed (" + std::to_string(res->status) + "): " + msg);
}

std::string show_key(const json& item) {
  if (item.contains("key"))
    return item["key"].get<std::string>();
  return "base64:" + item["key_base64"].get<std::string>();
}

std::string show_value(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

/// Pages through /v1/kv with the continuation cursor.
std::vector<json> list_items(httplib::Client& cli, const std::string& prefix) {
  std::vector<json> result;
  std::string cursor;
  for (;;) {
    httplib::Params params{{"prefix", prefix}, {"limit", "1000"}};
    if (!cursor.empty())
      params.emplace("cursor", cursor);
    auto res = cli.Get("/v1/kv", params, httplib::Headers{});
    check(res, "listing");
    auto body = json::parse(res->body);
    for (auto& item : body["items"])
      result.push_back(item);
    if (!body.contains("cursor"))
      return result;
    cursor = body["cursor"].get<std::string>();
  }
}

} // namespace

int main(int argc, char** argv) {
  std::string node = "127.0.0.1:7441";
  std::string prefix;
  bool as_json = false;
  bool as_bytes = false;
  std::string to;
  bool whisper = false;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--node=", 0) == 0)
      node = arg.substr(7);
    else if (arg.rfind("--prefix=", 0) == 0)
      prefix = arg.substr(9);
    else if (arg.rfind("--to=", 0) == 0)
      to = arg.substr(5);
    else if (arg == "--whisper")
      whisper = true;
    else if (arg == "--json")
      as_json = true;
    else if (arg == "--bytes")
      as_bytes = true;
    else if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    } else if (arg.rfind("--", 0) == 0)
      die("unknown option " + arg + "\n" + usage, 2);
    else
      args.push_back(arg);
  }
  if (args.empty())
    die(std::string{"no command given\n"} + usage, 2);
  auto colon = node.rfind(':');
  if (colon == std::string::npos)
    die("--node must be HOST:PORT", 2);
  httplib::Client cli{node.substr(0, colon), std::stoi(node.substr(colon + 1))};
  cli.set_connection_timeout(5);
  const auto& cmd = args[0];
  auto need = [&](size_t n) {
    if (args.size() != n + 1)
      die(cmd + " takes " + std::to_string(n) + " argument(s)\n" + usage, 2);
  };
  if (cmd == "get") {
    need(1);
    auto res = cli.Get("/v1/kv/" + encode_key(args[1]));
    check(res, "get");
    std::cout << res->body;
    if (res->get_header_value("Content-Type").rfind("text/", 0) == 0
        || res->get_header_value("Content-Type") == "application/json")
      std::cout << "\n";
  } else if (cmd == "set") {
    need(2);
    auto type = as_json    ? "application/json"
                : as_bytes ? "application/octet-stream"
                           : "text/plain; charset=utf-8";
    auto res = cli.Put("/v1/kv/" + encode_key(args[1]), args[2], type);
    check(res, "set");
  } else if (cmd == "del") {
    need(1);
    check(cli.Delete("/v1/kv/" + encode_key(args[1])), "del");
  } else if (cmd == "delta") {
    need(2);
    check(cli.Post("/v1/kv/" + encode_key(args[1]) + "/delta", args[2],
                   "application/json"),
          "delta");
  } else if (cmd == "keys") {
    need(0);
    for (auto& item : list_items(cli, prefix))
      std::cout << show_key(item) << "\n";
  } else if (cmd == "items") {
    need(0);
    for (auto& item : list_items(cli, prefix))
      std::cout << show_key(item) << "\t" << show_value(item["value"]) << "\t"
                << item["owner"].get<std::string>().substr(0, 12) << "\n";
  } else if (cmd == "send") {
    if (args.size() < 2)
      die(std::string{"send takes at least one packet\n"} + usage, 2);
    json body{
      {"packets", std::vector<std::string>(args.begin() + 1, args.end())}};
    if (!to.empty())
      body["to"] = to;
    if (whisper)
      body["whisper"] = true;
    auto res = cli.Post("/v1/messages", body.dump(), "application/json");
    check(res, "send");
    std::cout << json::parse(res->body)["id"].get<std::string>() << "\n";
  } else if (cmd == "peers") {
    need(0);
    auto res = cli.Get("/v1/peers");
    check(res, "peers");
    auto body = json::parse(res->body);
    for (auto& p : body["peers"])
      std::cout << p["node_id"].get<std::string>().substr(0, 12) << "\t"
                << p["address"].get<std::string>() << "\t"
                << p["direction"].get<std::string>() << "\t"
                << p["rtt_us"].get<uint64_t>() << " us\n";
  } else if (cmd == "status") {
    need(0);
    auto res = cli.Get("/v1/status");
    check(res, "status");
    auto body = json::parse(res->body);
    for (auto& [k, v] : body.items())
      std::cout << k << ": " << show_value(v) << "\n";
  } else if (cmd == "watch") {
    need(0);
    cli.set_read_timeout(3600);
    auto res
      = cli.Get("/v1/watch?prefix=" + encode_key(prefix),
                [](const char* data, size_t len) {
                  std::cout.write(data, static_cast<std::streamsize>(len));
                  std::cout.flush();
                  return true;
                });
    check(res, "watch");
  } else {
    die("unknown command " + cmd + "\n" + usage, 2);
  }
  return 0;
}
