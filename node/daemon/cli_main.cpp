// syncmesh: a command-line client of a node's HTTP API, for people; and
// `syncmesh restore`, which turns a backup into a data dir offline.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "actors/backup_restore.hpp"
#include "actors/entry_storage.hpp"
#include "messages/backup_file.hpp"
#include "messages/time_text.hpp"
#include "messages/version.hpp"
#include "node/daemon/json_value.hpp"

namespace {

using nlohmann::json;
using syncmesh::format_time_until;
using syncmesh::wall_clock_us;

constexpr const char* usage
  = R"(usage: syncmesh [--node=ADDRESS] [--token=T] COMMAND [ARGS]

Talks to the HTTP API of a syncmesh node. ADDRESS is HOST:PORT or a URL,
http://HOST:PORT or https://HOST:PORT (default 127.0.0.1:7441). --token (or
the environment variable SYNCMESH_TOKEN) is sent as "Authorization: Bearer".

commands:
  get KEY                print the value (text as is, others as JSON)
  set KEY VALUE          store VALUE as text (--json: parse VALUE as JSON,
                         --bytes: store it as raw bytes)
  del KEY                delete KEY
                         set, del and delta take --confirm=majority|all|N
                         [--confirm-timeout=2s]: return once that many nodes
                         of the configured membership hold the write (exit
                         code 3 when the timeout passed first: the write
                         stands but is unconfirmed; 1 with a lease error
                         when a claim that beats it was found)
  keys [--prefix=P]      list keys
  items [--prefix=P]     list keys, values, owners
  delta KEY JSON         merge a JSON object into the map at KEY
  peers                  list connected peers
  status                 show the node's status
  watch [--prefix=P]     print update/delete/message events as they happen
  send [--to=ID] [--whisper] PACKET...
                         send a message (packets as text) to the mesh, to
                         one node, or to direct peers only
  export [--prefix=P]    print every item as one JSON object per line
                         (NDJSON, the API's item form: key or key_base64,
                         value, owner, time, lease_end)
  import [FILE|-]        read NDJSON lines (from FILE or stdin): {"key": K,
                         "value": V} sets, {"key": K, "delete": true}
                         deletes; sent in batches of --batch=N lines (default
                         1000), each applied all or nothing; export's output
                         is valid input (owner and times are dropped)
  backup FILE            save a consistent snapshot of the node's data dir
                         (every key, tombstones, versions and leases; every
                         write acknowledged before it started) to FILE while
                         the node runs; needs the admin role and a node with
                         --data-dir; written to FILE.tmp, synced, renamed
  restore FILE --data-dir=DIR [--new-id] [--max-clock-offset=DUR]
                         offline, no node needed: make DIR (absent or empty)
                         a data dir holding FILE's entries, so that
                         `syncmesh-node --data-dir=DIR` starts from it; it
                         keeps the backed-up node ID (a lost disk replaced)
                         unless --new-id gives it a fresh one (a new member
                         seeded with the data); its clock starts 2 x DUR +
                         1 s past now (DUR: the mesh's --max-clock-offset,
                         default 500ms) so it never reuses a version the
                         lost node may have published after the backup.
                         A damaged, truncated or newer-format FILE, or a DIR
                         holding data, is refused with exit code 2
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
void check(const httplib::Result& res, const std::string& what);
bool parse_duration(const std::string& text, std::chrono::microseconds& out);

/// The query string of a confirmed write ("" without --confirm). Checked
/// here as the node checks it, so a typo fails before anything is sent.
std::string confirm_query(const std::string& confirm,
                          const std::string& timeout) {
  if (confirm.empty()) {
    if (!timeout.empty())
      die("--confirm-timeout needs --confirm=majority|all|N", 2);
    return {};
  }
  bool number = confirm.size() <= 6
                && confirm.find_first_not_of("0123456789") == std::string::npos
                && std::stoul(confirm) >= 1;
  if (confirm != "majority" && confirm != "all" && !number)
    die("--confirm expects majority, all or a number of nodes, got \"" + confirm
          + "\"",
        2);
  std::string q = "?confirm=" + confirm;
  if (!timeout.empty()) {
    std::chrono::microseconds us{0};
    if (!parse_duration(timeout, us) || us.count() < 1000)
      die("--confirm-timeout expects a duration such as 1500ms or 2s, got \""
            + timeout + "\"",
          2);
    q += "&timeout="
         + std::to_string(
           std::chrono::duration_cast<std::chrono::milliseconds>(us).count())
         + "ms";
  }
  return q;
}

/// Reports the answer to a confirmed write: 200 confirmed (a line on
/// stdout), 202 unconfirmed (exit code 3), anything else as check() does.
void check_confirmed(const httplib::Result& res, const std::string& what) {
  if (res && res->status == 202) {
    auto body = json::parse(res->body, nullptr, false);
    std::string msg
      = body.is_object() ? body.value("message", res->body) : res->body;
    die(what + " unconfirmed (202): " + msg, 3);
  }
  check(res, what);
  auto body = json::parse(res->body, nullptr, false);
  if (body.is_object() && body.contains("confirmed"))
    std::cout << "confirmed by " << body["confirmed"] << " of "
              << body["required"] << " required nodes (cluster size "
              << body["cluster_size"] << ")\n";
}

void check(const httplib::Result& res, const std::string& what) {
  if (!res)
    die("cannot reach the node for " + what + ": "
        + httplib::to_string(res.error()));
  if (res->status >= 200 && res->status < 300)
    return;
  auto body = json::parse(res->body, nullptr, false);
  std::string msg = body.is_object() && body.contains("message")
                        && body["message"].is_string()
                      ? body["message"].get<std::string>()
                      : res->body;
  if (msg.empty())
    msg = "(the node sent no message)";
  // A node's message names the owner and the lease end already; an older
  // node's said "µs since the epoch": add the readable form then.
  if (body.is_object() && body.value("error", "") == "lease"
      && msg.find(" (in ") == std::string::npos
      && msg.find(" ago)") == std::string::npos
      && body["expires_at"].is_number_unsigned())
    msg += " (owner " + body.value("owner", "?") + ", until "
           + format_time_until(body["expires_at"].get<uint64_t>() * 1000,
                               wall_clock_us())
           + ")";
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

/// Pages through /v1/kv with the continuation cursor, handing each item to
/// `on_item` as its page arrives (an export of many keys is never held
/// whole).
template <class OnItem>
void for_each_item(httplib::Client& cli, const std::string& prefix,
                   OnItem&& on_item) {
  std::string cursor;
  for (;;) {
    httplib::Params params{{"prefix", prefix}, {"limit", "1000"}};
    if (!cursor.empty())
      params.emplace("cursor", cursor);
    auto res = cli.Get("/v1/kv", params, httplib::Headers{});
    check(res, "listing");
    auto body = json::parse(res->body, nullptr, false);
    if (!body.is_object() || !body.contains("items")
        || !body["items"].is_array())
      die("listing failed: the node's answer is not a list of items");
    for (auto& item : body["items"])
      on_item(item);
    if (!body.contains("cursor"))
      return;
    cursor = body["cursor"].get<std::string>();
  }
}

/// Checks one NDJSON line of an import and returns it in the batch
/// endpoint's form: the key (or key_base64) and the value, or the key and
/// "delete": true. Fields export adds (owner, time, lease_end) are dropped:
/// the importing node stamps its own. Explains the problem in `err`.
json import_line(const std::string& line, std::string& err) {
  auto in = json::parse(line, nullptr, false);
  if (in.is_discarded() || !in.is_object()) {
    err = "not a JSON object";
    return {};
  }
  json out = json::object();
  if (in.contains("key") && in["key"].is_string())
    out["key"] = in["key"];
  else if (in.contains("key_base64") && in["key_base64"].is_string())
    out["key_base64"] = in["key_base64"];
  else {
    err = "needs \"key\" (text) or \"key_base64\"";
    return {};
  }
  auto del = in.find("delete");
  if (del != in.end() && del->is_boolean() && del->get<bool>()) {
    out["delete"] = true;
  } else if (in.contains("value")) {
    out["value"] = in["value"];
  } else {
    err = "needs \"value\" or \"delete\": true";
    return {};
  }
  return out;
}

/// Reads NDJSON lines and POSTs them to /v1/kv in batches of `batch_lines`
/// lines (or about 1 MiB); stops at the first bad line or refused batch.
/// Batches before it stay applied; the message says how far it got.
void import_lines(httplib::Client& cli, std::istream& in, size_t batch_lines,
                  const std::string& source) {
  constexpr size_t batch_bytes = 1024 * 1024;
  std::string body;
  size_t in_batch = 0;
  size_t first_line = 0; // of the batch being built
  size_t line_no = 0;
  uint64_t applied = 0;
  size_t batches = 0;
  auto flush = [&] {
    if (in_batch == 0)
      return;
    auto res = cli.Post("/v1/kv", body, "application/x-ndjson");
    auto where = source + " lines " + std::to_string(first_line) + "-"
                 + std::to_string(line_no) + " (" + std::to_string(applied)
                 + " applied before)";
    if (res && res->status == 404)
      die("import of " + where
          + " failed (404): this node has no batch endpoint (POST /v1/kv "
            "with application/x-ndjson); it needs a newer syncmesh-node");
    check(res, "import of " + where);
    auto reply = json::parse(res->body, nullptr, false);
    if (!reply.is_object() || !reply.contains("applied")
        || !reply["applied"].is_number_unsigned())
      die("import of " + where + ": the node's answer lacks \"applied\": "
          + res->body.substr(0, 200));
    applied += reply["applied"].get<uint64_t>();
    ++batches;
    body.clear();
    in_batch = 0;
  };
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos)
      continue;
    std::string err;
    auto item = import_line(line, err);
    if (!err.empty())
      die(source + " line " + std::to_string(line_no) + ": " + err + " ("
          + std::to_string(applied) + " lines applied before it)");
    if (in_batch == 0)
      first_line = line_no;
    body += item.dump() + "\n";
    if (++in_batch >= batch_lines || body.size() >= batch_bytes)
      flush();
  }
  if (in.bad())
    die("cannot read " + source);
  flush();
  std::cerr << "syncmesh: imported " << applied << " lines in " << batches
            << " batch" << (batches == 1 ? "" : "es") << "\n";
}

/// Writes all of `data` to `fd`; false on an error.
bool write_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    auto n = ::write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

/// The dir holding `path`, for an fsync after a rename into it.
std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

/// GET /v1/backup into `path`: streamed to `path`.tmp (never held whole),
/// fsynced, read back whole and checked (a file that is truncated or
/// damaged in transfer is refused here, not at restore time), then renamed
/// over `path` and the dir fsynced.
void backup_to(httplib::Client& cli, const std::string& path) {
  auto tmp = path + ".tmp";
  // Mode 0600: a backup holds every value of the dictionary.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    die("backup: cannot create " + tmp + ": " + std::strerror(errno));
  auto discard = [&] {
    ::close(fd);
    ::unlink(tmp.c_str());
  };
  int status = 0;
  std::string refusal;
  bool write_failed = false;
  int write_errno = 0;
  uint64_t received = 0;
  // The node sends as fast as its copy reads: a minute of silence is a
  // dead transfer.
  cli.set_read_timeout(60);
  auto res = cli.Get(
    "/v1/backup", httplib::Headers{},
    [&](const httplib::Response& r) {
      status = r.status;
      return true;
    },
    [&](const char* data, size_t len) {
      if (status != 200) {
        if (refusal.size() < 64 * 1024)
          refusal.append(data, std::min<size_t>(len, 64 * 1024));
        return true;
      }
      if (!write_all(fd, data, len)) {
        write_failed = true;
        write_errno = errno;
        return false;
      }
      received += len;
      return true;
    });
  if (write_failed) {
    discard();
    die("backup: cannot write " + tmp + ": " + std::strerror(write_errno));
  }
  if (!res) {
    discard();
    die("backup: the transfer failed after " + std::to_string(received)
        + " bytes: " + httplib::to_string(res.error()));
  }
  if (status != 200) {
    discard();
    res->body = refusal;
    if (status == 404)
      die("backup failed (404): this node has no GET /v1/backup; it needs a "
          "newer syncmesh-node");
    check(res, "backup");
  }
  if (::fsync(fd) != 0) {
    auto err = std::string{std::strerror(errno)};
    discard();
    die("backup: cannot sync " + tmp + ": " + err);
  }
  ::close(fd);
  uint64_t entries = 0;
  syncmesh::backup_header header;
  try {
    header = syncmesh::backup_restore::verify(tmp, entries);
  } catch (const std::exception& e) {
    ::unlink(tmp.c_str());
    die(std::string{"backup: the file the node sent is not whole: "}
        + e.what());
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    auto err = std::string{std::strerror(errno)};
    ::unlink(tmp.c_str());
    die("backup: cannot rename " + tmp + " to " + path + ": " + err);
  }
  int dir = ::open(dir_of(path).c_str(), O_RDONLY | O_CLOEXEC);
  if (dir < 0 || ::fsync(dir) != 0)
    die("backup: cannot sync the dir of " + path + ": " + std::strerror(errno));
  ::close(dir);
  std::cout << "backed up " << entries << " keys (tombstones included) of node "
            << syncmesh::to_hex(header.node_id) << ", " << received
            << " bytes, made " << syncmesh::iso8601_utc(header.created_us)
            << ", to " << path << std::endl;
}

/// A duration as --max-clock-offset takes it: a number with a unit (us, ms,
/// s), or a bare number of milliseconds. False when it is none.
bool parse_duration(const std::string& text, std::chrono::microseconds& out) {
  size_t digits = 0;
  while (digits < text.size()
         && std::isdigit(static_cast<unsigned char>(text[digits])))
    ++digits;
  if (digits == 0 || digits > 12)
    return false;
  auto n = std::stoull(text.substr(0, digits));
  auto unit = text.substr(digits);
  if (unit == "us")
    out = std::chrono::microseconds(n);
  else if (unit == "ms" || unit.empty())
    out = std::chrono::milliseconds(n);
  else if (unit == "s")
    out = std::chrono::seconds(n);
  else
    return false;
  return true;
}

/// `syncmesh restore`: offline, every refusal is one line and exit code 2.
void restore_from(const std::string& path, const std::string& data_dir,
                  const syncmesh::restore_options& opts) {
  syncmesh::restore_result r;
  try {
    r = syncmesh::backup_restore::restore(path, data_dir, opts);
  } catch (const std::exception& e) {
    die(std::string{"restore: "} + e.what(), 2);
  }
  std::cout << "restored " << r.entries << " keys (tombstones included) into "
            << data_dir << " as node " << syncmesh::to_hex(r.node_id)
            << (r.node_id == r.header.node_id ? " (the backed-up ID)"
                                              : " (a new ID)")
            << ", backup made " << syncmesh::iso8601_utc(r.header.created_us)
            << ", clock starts after " << syncmesh::iso8601_utc(r.clock_mark_us)
            << std::endl;
}

/// "HOST:PORT" or a URL as httplib wants it: with a scheme.
std::string node_url(const std::string& node) {
  if (node.rfind("http://", 0) == 0 || node.rfind("https://", 0) == 0)
    return node;
  auto colon = node.rfind(':');
  if (colon == std::string::npos || colon + 1 == node.size())
    die("--node must be HOST:PORT or http(s)://HOST:PORT, got \"" + node + "\"",
        2);
  return "http://" + node;
}

} // namespace

int main(int argc, char** argv) {
  std::string node = "127.0.0.1:7441";
  std::string prefix;
  bool as_json = false;
  bool as_bytes = false;
  std::string to;
  bool whisper = false;
  std::string token;
  if (const char* env = std::getenv("SYNCMESH_TOKEN"))
    token = env;
  size_t batch_lines = 1000;
  std::string data_dir;
  std::string confirm;
  std::string confirm_timeout;
  syncmesh::restore_options restore_opts;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--node=", 0) == 0)
      node = arg.substr(7);
    else if (arg.rfind("--prefix=", 0) == 0)
      prefix = arg.substr(9);
    else if (arg.rfind("--to=", 0) == 0)
      to = arg.substr(5);
    else if (arg.rfind("--token=", 0) == 0)
      token = arg.substr(8);
    else if (arg.rfind("--confirm=", 0) == 0)
      confirm = arg.substr(10);
    else if (arg.rfind("--confirm-timeout=", 0) == 0)
      confirm_timeout = arg.substr(18);
    else if (arg.rfind("--batch=", 0) == 0) {
      auto text = arg.substr(8);
      if (text.empty() || text.size() > 9
          || text.find_first_not_of("0123456789") != std::string::npos
          || std::stoul(text) == 0)
        die("--batch expects a number of lines from 1, got \"" + text + "\"",
            2);
      batch_lines = std::stoul(text);
    } else if (arg.rfind("--data-dir=", 0) == 0) {
      data_dir = arg.substr(11);
      if (data_dir.empty())
        die("--data-dir needs a directory", 2);
    } else if (arg.rfind("--max-clock-offset=", 0) == 0) {
      if (!parse_duration(arg.substr(19), restore_opts.max_clock_offset))
        die("--max-clock-offset expects a duration such as 500ms or 2s, got \""
              + arg.substr(19) + "\"",
            2);
    } else if (arg == "--new-id")
      restore_opts.new_id = true;
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
  httplib::Client cli{node_url(node)};
  if (!cli.is_valid())
    die("--node: cannot use \"" + node + "\"", 2);
  cli.set_connection_timeout(5);
  if (!token.empty())
    cli.set_bearer_token_auth(token);
  const auto& cmd = args[0];
  auto confirmed = confirm_query(confirm, confirm_timeout);
  if (!confirmed.empty() && cmd != "set" && cmd != "del" && cmd != "delta")
    die("--confirm is for set, del and delta", 2);
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
    auto res
      = cli.Put("/v1/kv/" + encode_key(args[1]) + confirmed, args[2], type);
    check_confirmed(res, "set");
  } else if (cmd == "del") {
    need(1);
    check_confirmed(cli.Delete("/v1/kv/" + encode_key(args[1]) + confirmed),
                    "del");
  } else if (cmd == "delta") {
    need(2);
    check_confirmed(
      cli.Post("/v1/kv/" + encode_key(args[1]) + "/delta" + confirmed, args[2],
               "application/json"),
      "delta");
  } else if (cmd == "keys") {
    need(0);
    for_each_item(cli, prefix, [](const json& item) {
      std::cout << show_key(item) << "\n";
    });
  } else if (cmd == "items") {
    need(0);
    for_each_item(cli, prefix, [](const json& item) {
      std::cout << show_key(item) << "\t" << show_value(item["value"]) << "\t"
                << item["owner"].get<std::string>().substr(0, 12) << "\n";
    });
  } else if (cmd == "export") {
    need(0);
    size_t n = 0;
    for_each_item(cli, prefix, [&](const json& item) {
      std::cout << item.dump() << "\n";
      ++n;
    });
    std::cout.flush();
    if (!std::cout)
      die("export: cannot write to stdout");
    std::cerr << "syncmesh: exported " << n
              << (n == 1 ? " item\n" : " items\n");
  } else if (cmd == "import") {
    if (args.size() > 2)
      die(std::string{"import takes at most one FILE\n"} + usage, 2);
    auto path = args.size() == 2 ? args[1] : std::string{"-"};
    if (path == "-") {
      import_lines(cli, std::cin, batch_lines, "stdin");
    } else {
      std::ifstream file{path};
      if (!file)
        die("import: cannot open " + path);
      import_lines(cli, file, batch_lines, path);
    }
  } else if (cmd == "backup") {
    need(1);
    backup_to(cli, args[1]);
  } else if (cmd == "restore") {
    need(1);
    if (data_dir.empty())
      die(std::string{"restore needs --data-dir=DIR\n"} + usage, 2);
    restore_from(args[1], data_dir, restore_opts);
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
    // The node ends a stream that fell behind its event window with an
    // `overflow` event: events were lost, so say it and fail rather than
    // end as if the stream had simply closed.
    std::string tail;
    bool overflowed = false;
    auto res
      = cli.Get("/v1/watch?prefix=" + encode_key(prefix),
                [&](const char* data, size_t len) {
                  std::cout.write(data, static_cast<std::streamsize>(len));
                  std::cout.flush();
                  tail.append(data, len);
                  if (tail.find("event: overflow\n") != std::string::npos)
                    overflowed = true;
                  // Keep only what a marker split across reads needs.
                  if (tail.size() > 64)
                    tail.erase(0, tail.size() - 64);
                  return true;
                });
    if (overflowed)
      die("watch: the node dropped this stream because it fell behind (events "
          "were lost); list the keys again and start a new watch",
          3);
    check(res, "watch");
  } else {
    die("unknown command " + cmd + "\n" + usage, 2);
  }
  return 0;
}
