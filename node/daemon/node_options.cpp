#include "node/daemon/node_options.hpp"

// Why CLI11 reads the command line, and not CAF's config or our own code:
// CAF 0.17's option parser takes a boolean only as a bare flag (so
// `--leasing=false` and `--http=` exited with a raw parser_error), knows no
// `--no-` negation and types every option itself, which rules out "2s" or
// "64KiB". Pre-parsing argv before CAF would have meant writing a tokenizer
// and still leaving the INI file to CAF's strict syntax. CLI11 (Debian:
// libcli11-dev, header-only, maintained) brings the tokenizer, `--no-NAME`
// flags, `--name value` and `--name=value`, and an INI reader with
// command-line-wins merging. We hand it no types: it returns the text of each
// option, and the conversions below turn that text into values or into one
// line naming the option, so every spelling has the same rules on the command
// line and in the file, and every message is ours.

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <set>
#include <sstream>

#include <CLI/CLI.hpp>

namespace syncmesh {

namespace {

using std::chrono::milliseconds;

/// One option of syncmesh-node: its name, how it reads a value, how it shows
/// one.
struct option_spec {
  /// Without the leading dashes, as in the INI file.
  std::string name;
  /// What the value looks like in --help ("DURATION", "native|py2p").
  std::string hint;
  /// One line for --help.
  std::string help;
  /// Booleans: `--name`, `--name=false`, `--no-name`.
  bool is_flag = false;
  /// What a valid value looks like, for the error line.
  std::string expects;
  /// Stores a value; false when the text is not one.
  std::function<bool(node_options&, const std::string&)> set;
  /// The value as it would be typed.
  std::function<std::string(const node_options&)> show;
};

template <class T>
using field = T& (*)(node_options&);

/// Reads a field of a copy: the accessors take a mutable reference.
template <class T>
T read_field(const node_options& opts, field<T> get) {
  auto copy = opts;
  return get(copy);
}

option_spec text(std::string name, std::string help, field<std::string> get) {
  return {std::move(name),
          "TEXT",
          std::move(help),
          false,
          "text",
          [get](node_options& o, const std::string& raw) {
            get(o) = raw;
            return true;
          },
          [get](const node_options& o) {
            return read_field(o, get);
          }};
}

option_spec boolean(std::string name, std::string help, field<bool> get) {
  return {std::move(name),
          "BOOL",
          std::move(help),
          true,
          "true or false",
          [get](node_options& o, const std::string& raw) {
            return parse_bool(raw, get(o));
          },
          [get](const node_options& o) {
            return std::string{read_field(o, get) ? "true" : "false"};
          }};
}

option_spec duration(std::string name, std::string help,
                     field<milliseconds> get) {
  return {std::move(name),
          "DURATION",
          std::move(help),
          false,
          "a duration like 1500ms, 30s, 5m or 1h",
          [get](node_options& o, const std::string& raw) {
            return parse_duration(raw, get(o));
          },
          [get](const node_options& o) {
            return format_duration(read_field(o, get));
          }};
}

option_spec bytes(std::string name, std::string help, field<size_t> get) {
  return {std::move(name),
          "BYTES",
          std::move(help),
          false,
          "a size in bytes like 65536, 64KiB or 4MiB",
          [get](node_options& o, const std::string& raw) {
            return parse_size(raw, get(o));
          },
          [get](const node_options& o) {
            return format_size(read_field(o, get));
          }};
}

/// Reads a whole number without sign or unit into `out`.
bool parse_count(const std::string& raw, uint64_t max, uint64_t& out) {
  if (raw.empty() || raw.size() > 19
      || !std::all_of(raw.begin(), raw.end(),
                      [](unsigned char c) { return std::isdigit(c); }))
    return false;
  out = std::stoull(raw);
  return out <= max;
}

option_spec count(std::string name, std::string help, field<size_t> get) {
  return {std::move(name),
          "N",
          std::move(help),
          false,
          "a whole number",
          [get](node_options& o, const std::string& raw) {
            uint64_t n = 0;
            if (!parse_count(raw, std::numeric_limits<size_t>::max(), n))
              return false;
            get(o) = static_cast<size_t>(n);
            return true;
          },
          [get](const node_options& o) {
            return std::to_string(read_field(o, get));
          }};
}

/// An option that takes one of a few words.
template <class T>
option_spec choice(std::string name, std::string help, field<T> get,
                   std::vector<std::pair<std::string, T>> words) {
  std::string hint;
  std::string expects;
  for (size_t i = 0; i < words.size(); ++i) {
    hint += (i > 0 ? "|" : "") + words[i].first;
    expects += (i == 0                 ? ""
                : i + 1 < words.size() ? ", "
                                       : " or ")
               + words[i].first;
  }
  return {std::move(name),
          hint,
          std::move(help),
          false,
          expects,
          [get, words](node_options& o, const std::string& raw) {
            for (const auto& [word, val] : words)
              if (raw == word) {
                get(o) = val;
                return true;
              }
            return false;
          },
          [get, words](const node_options& o) {
            auto val = read_field(o, get);
            for (const auto& [word, v] : words)
              if (v == val)
                return word;
            return std::string{"?"};
          }};
}

/// Splits "a, b,,c" into {"a", "b", "c"}: commas separate, blanks around
/// an item are dropped, empty items are skipped.
std::vector<std::string> split_list(const std::string& raw) {
  std::vector<std::string> out;
  std::stringstream in{raw};
  std::string item;
  while (std::getline(in, item, ',')) {
    auto first = item.find_first_not_of(" \t");
    if (first == std::string::npos)
      continue;
    out.push_back(item.substr(first, item.find_last_not_of(" \t") - first + 1));
  }
  return out;
}

std::string join_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& x : items)
    out += (out.empty() ? "" : ",") + x;
  return out;
}

/// A comma-separated list whose every item passes `valid`.
option_spec list(std::string name, std::string hint, std::string help,
                 std::string expects, field<std::vector<std::string>> get,
                 std::function<bool(const std::string&)> valid) {
  return {std::move(name),
          std::move(hint),
          std::move(help),
          false,
          std::move(expects),
          [get, valid](node_options& o, const std::string& raw) {
            auto items = split_list(raw);
            for (const auto& x : items)
              if (!valid(x))
                return false;
            get(o) = std::move(items);
            return true;
          },
          [get](const node_options& o) {
            return join_list(read_field(o, get));
          }};
}

/// A DNS name or IP literal as it may appear in a Host header (without
/// the port): letters, digits, '-', '.', and for IPv6 ':' (brackets off).
bool valid_host_name(const std::string& name) {
  if (name.empty() || name.size() > 253)
    return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '.' || c == ':';
  });
}

/// A browser origin: "http://" or "https://", a host, an optional port,
/// nothing after (an Origin header never has a path or a trailing slash,
/// so such an entry could never match and is a typo).
bool valid_origin(const std::string& origin) {
  std::string rest;
  if (origin.rfind("http://", 0) == 0)
    rest = origin.substr(7);
  else if (origin.rfind("https://", 0) == 0)
    rest = origin.substr(8);
  else
    return false;
  if (rest.empty() || rest.find('/') != std::string::npos)
    return false;
  std::string host = rest;
  uint16_t port = 0;
  bool bracketed = rest.front() == '[';
  bool has_port = bracketed ? rest.find("]:") != std::string::npos
                            : rest.find(':') != std::string::npos;
  if (has_port && !parse_host_port(rest, host, port))
    return false;
  if (!has_port && bracketed) {
    if (rest.size() < 3 || rest.back() != ']')
      return false;
    host = rest.substr(1, rest.size() - 2);
  }
  return valid_host_name(host);
}

/// The endpoints --http-open may open, as typed and as paths.
const std::vector<std::pair<std::string, std::string>>& openable() {
  static const std::vector<std::pair<std::string, std::string>> words{
    {"healthz", "/healthz"}, {"readyz", "/readyz"}, {"metrics", "/metrics"}};
  return words;
}

/// A duration option that must be more than zero (a zero deadline would
/// cut every request).
option_spec positive_duration(std::string name, std::string help,
                              field<milliseconds> get) {
  auto spec = duration(std::move(name), std::move(help), get);
  spec.expects = "a duration above zero like 1500ms, 30s, 5m or 1h";
  spec.set = [get](node_options& o, const std::string& raw) {
    milliseconds d{};
    if (!parse_duration(raw, d) || d.count() <= 0)
      return false;
    get(o) = d;
    return true;
  };
  return spec;
}

/// A size or count option with a floor (and a ceiling): a limit of 0 would
/// refuse everything.
template <class T>
option_spec bounded(option_spec spec, field<T> get, uint64_t min, uint64_t max,
                    std::string expects) {
  auto parse = spec.set;
  spec.expects = std::move(expects);
  spec.set = [parse, get, min, max](node_options& o, const std::string& raw) {
    auto copy = o;
    if (!parse(copy, raw))
      return false;
    auto n = static_cast<uint64_t>(get(copy));
    if (n < min || n > max)
      return false;
    get(o) = get(copy);
    return true;
  };
  return spec;
}

/// Every option of syncmesh-node, in the order --help lists them.
const std::vector<option_spec>& option_specs() {
  static const std::vector<option_spec> specs = [] {
    std::vector<option_spec> s;
    s.push_back(text(
      "host", "interface to bind for peers",
      [](node_options & o) -> auto& { return o.node.host; }));
    s.push_back({"port", "PORT", "TCP port for peers (0: the OS picks)", false,
                 "a port number from 0 to 65535",
                 [](node_options& o, const std::string& raw) {
                   uint64_t n = 0;
                   if (!parse_count(raw, 65535, n))
                     return false;
                   o.node.port = static_cast<uint16_t>(n);
                   return true;
                 },
                 [](const node_options& o) {
                   return std::to_string(o.node.port);
                 }});
    s.push_back(
      {"peers", "HOST:PORT,...", "seeds to dial, redialled with backoff", false,
       "a list like host:port,host:port",
       [](node_options& o, const std::string& raw) {
         o.node.peers.clear();
         std::stringstream in{raw};
         std::string peer;
         while (std::getline(in, peer, ',')) {
           // "a:1, b:2" reads as two peers, as a person means it.
           auto first = peer.find_first_not_of(" \t");
           if (first == std::string::npos)
             continue;
           peer = peer.substr(first, peer.find_last_not_of(" \t") - first + 1);
           std::string host;
           uint16_t port = 0;
           if (!parse_host_port(peer, host, port))
             return false;
           o.node.peers.push_back(peer);
         }
         return true;
       },
       [](const node_options& o) {
         std::string out;
         for (const auto& p : o.node.peers)
           out += (out.empty() ? "" : ",") + p;
         return out;
       }});
    s.push_back(text(
      "subnet", "only peers of the same subnet talk",
      [](node_options & o) -> auto& { return o.node.subnet; }));
    s.push_back(boolean(
      "leasing", "leases on (true) or newest write wins",
      [](node_options & o) -> auto& { return o.node.leasing; }));
    s.push_back(choice<wire_kind>(
      "wire", "peer dialect (py2p: py2p/js2p 0.7.870)",
      [](node_options & o) -> auto& { return o.node.wire; },
      {{"native", wire_kind::native}, {"py2p", wire_kind::py2p}}));
    s.push_back(boolean(
      "py2p-allow-delete",
      "py2p mode: allow deletes (nil stores crash js2p "
      "peers)",
      [](node_options & o) -> auto& { return o.node.py2p_allow_delete; }));
    s.push_back(duration(
      "lease-duration", "lease length",
      [](node_options & o) -> auto& { return o.node.lease_duration; }));
    s.push_back(duration(
      "max-lease-duration", "longest lease any record may hold, mesh-wide",
      [](node_options & o) -> auto& { return o.node.max_lease_duration; }));
    s.push_back(duration(
      "max-clock-offset",
      "largest clock offset between nodes (peers beyond it are refused; a "
      "node beyond it from most peers refuses writes; the lease margin)",
      [](node_options & o) -> auto& { return o.node.max_clock_offset; }));
    s.push_back(count(
      "max-peers", "outgoing connections to aim for",
      [](node_options & o) -> auto& { return o.node.max_peers; }));
    s.push_back(count(
      "max-inbound", "most inbound connections",
      [](node_options & o) -> auto& { return o.node.max_inbound; }));
    s.push_back({"http", "HOST:PORT",
                 "HTTP API address (port 0: the OS picks; empty: off)", false,
                 "HOST:PORT, or nothing to turn the API off",
                 [](node_options& o, const std::string& raw) {
                   if (raw.empty()) {
                     o.http.clear();
                     o.http_host.clear();
                     o.http_port = 0;
                     return true;
                   }
                   if (!parse_host_port(raw, o.http_host, o.http_port, true))
                     return false;
                   o.http = raw;
                   return true;
                 },
                 [](const node_options& o) {
                   return o.http;
                 }});
    s.push_back(text(
      "http-token-file", "HTTP API tokens, one '<role> <token>' a line",
      [](node_options & o) -> auto& { return o.http_token_file; }));
    auto file = [](std::string name, std::string help, field<std::string> get) {
      auto spec = text(std::move(name), std::move(help), get);
      spec.hint = "FILE";
      return spec;
    };
    s.push_back(file(
      "tls-cert",
      "peer mutual TLS: this node's PEM certificate chain, naming its ID in "
      "a URI SAN urn:syncmesh:node:<hex> (with --tls-key, --tls-ca)",
      [](node_options & o) -> auto& { return o.node.tls.cert_file; }));
    s.push_back(file(
      "tls-key", "peer mutual TLS: the certificate's PEM private key",
      [](node_options & o) -> auto& { return o.node.tls.key_file; }));
    s.push_back(file(
      "tls-ca",
      "peer mutual TLS: PEM bundle of the cluster CA; peers must present a "
      "certificate it signed",
      [](node_options & o) -> auto& { return o.node.tls.ca_file; }));
    s.push_back(file(
      "http-cert", "HTTPS for the API: PEM certificate chain (with --http-key)",
      [](node_options & o) -> auto& { return o.http_server.tls_cert_file; }));
    s.push_back(file(
      "http-key", "HTTPS for the API: PEM private key (with --http-cert)",
      [](node_options & o) -> auto& { return o.http_server.tls_key_file; }));
    s.push_back(list(
      "http-allowed-hosts", "NAME,...",
      "Host names accepted besides localhost, the API's address and the "
      "hostname (DNS rebinding guard)",
      "a list of host names like api.example.com,node1",
      [](node_options & o) -> auto& { return o.http_server.allowed_hosts; },
      valid_host_name));
    s.push_back(list(
      "http-allowed-origins", "ORIGIN,...",
      "browser origins allowed to write besides the API's own",
      "a list of origins like https://dash.example.com,http://host:8080",
      [](node_options & o) -> auto& { return o.http_server.allowed_origins; },
      valid_origin));
    s.push_back(
      {"http-open", "healthz,readyz,metrics",
       "endpoints answered without a token when --http-token-file is set "
       "(empty or none: all need one)",
       false, "a list of healthz, readyz and metrics, or none",
       [](node_options& o, const std::string& raw) {
         std::vector<std::string> paths;
         for (const auto& word : split_list(raw)) {
           if (word == "none" && split_list(raw).size() == 1)
             break;
           auto it
             = std::find_if(openable().begin(), openable().end(),
                            [&](const auto& w) { return w.first == word; });
           if (it == openable().end())
             return false;
           if (std::find(paths.begin(), paths.end(), it->second) == paths.end())
             paths.push_back(it->second);
         }
         o.http_server.open_paths = std::move(paths);
         return true;
       },
       [](const node_options& o) {
         std::vector<std::string> words;
         for (const auto& path : o.http_server.open_paths)
           for (const auto& [word, p] : openable())
             if (p == path)
               words.push_back(word);
         return words.empty() ? std::string{"none"} : join_list(words);
       }});
    s.push_back(bounded<size_t>(
      bytes(
        "http-max-header-bytes", "largest request header (431 above)",
        [](node_options & o) -> auto& {
          return o.http_server.max_header_bytes;
        }),
      [](node_options & o) -> auto& { return o.http_server.max_header_bytes; },
      1024, 64u << 20, "a size from 1KiB to 64MiB like 16KiB"));
    s.push_back(bounded<size_t>(
      count(
        "http-max-header-fields", "most header fields (431 above)",
        [](node_options & o) -> auto& {
          return o.http_server.max_header_fields;
        }),
      [](node_options & o) -> auto& { return o.http_server.max_header_fields; },
      1, 100'000, "a whole number from 1 to 100000"));
    s.push_back(bounded<size_t>(
      bytes(
        "http-max-url", "longest request target (414 above)",
        [](node_options & o) -> auto& { return o.http_server.max_url; }),
      [](node_options & o) -> auto& { return o.http_server.max_url; }, 16,
      64u << 20, "a size from 16 bytes to 64MiB like 8KiB"));
    s.push_back({"http-max-body", "BYTES",
                 "largest request body read whole (413 above; 0: twice "
                 "--max-value-size plus 4KiB; NDJSON loads stream)",
                 false, "a size in bytes like 65536, 64KiB or 4MiB",
                 [](node_options& o, const std::string& raw) {
                   size_t n = 0;
                   if (!parse_size(raw, n))
                     return false;
                   o.http_server.max_body = n;
                   return true;
                 },
                 [](const node_options& o) {
                   return format_size(
                     static_cast<size_t>(o.http_server.max_body));
                 }});
    s.push_back(bounded<size_t>(
      bytes(
        "http-body-piece",
        "read buffer of a streamed (NDJSON) body, per request",
        [](node_options & o) -> auto& { return o.http_server.body_piece; }),
      [](node_options & o) -> auto& { return o.http_server.body_piece; }, 1,
      16u << 20, "a size from 1 byte to 16MiB like 64KiB"));
    s.push_back(
      {"http-read-timeout", "DURATION",
       "deadline for a request's header, and for its body (408 after)", false,
       "a duration above zero like 1500ms, 30s, 5m or 1h",
       [](node_options& o, const std::string& raw) {
         milliseconds d{};
         if (!parse_duration(raw, d) || d.count() <= 0)
           return false;
         o.http_server.header_timeout = d;
         o.http_server.body_timeout = d;
         return true;
       },
       [](const node_options& o) {
         return format_duration(o.http_server.header_timeout);
       }});
    s.push_back(positive_duration(
      "http-idle-timeout", "closes a keep-alive connection idle this long",
      [](node_options & o) -> auto& { return o.http_server.idle_timeout; }));
    s.push_back(positive_duration(
      "http-write-timeout",
      "closes a connection whose client stops reading a response",
      [](node_options & o) -> auto& { return o.http_server.write_timeout; }));
    s.push_back(bounded<size_t>(
      count(
        "http-max-connections",
        "most open API connections (more are closed at once)",
        [](node_options & o) -> auto& {
          return o.http_server.max_connections;
        }),
      [](node_options & o) -> auto& { return o.http_server.max_connections; },
      1, 10'000'000, "a whole number from 1 to 10000000"));
    s.push_back(bounded<size_t>(
      count(
        "http-max-in-flight",
        "most requests waiting for the node (503 + Retry-After above)",
        [](node_options & o) -> auto& { return o.http_server.max_in_flight; }),
      [](node_options & o) -> auto& { return o.http_server.max_in_flight; }, 1,
      10'000'000, "a whole number from 1 to 10000000"));
    s.push_back(count(
      "http-max-watchers", "most open /v1/watch streams (503 beyond)",
      [](node_options & o) -> auto& { return o.http_max_watchers; }));
    s.push_back(bytes(
      "http-watch-window",
      "recent watch events kept for slow watchers and resumes",
      [](node_options & o) -> auto& { return o.http_watch_window; }));
    s.push_back(text(
      "data-dir",
      "keeps the node ID, clock and every entry across runs (RocksDB)",
      [](node_options & o) -> auto& { return o.data_dir; }));
    s.push_back(choice<durability_mode>(
      "durability",
      "with --data-dir: always (ack after fsync), batch (fsync every "
      "--durability-interval), none (the OS flushes)",
      [](node_options & o) -> auto& { return o.node.durability; },
      {{"always", durability_mode::always},
       {"batch", durability_mode::batch},
       {"none", durability_mode::none}}));
    s.push_back(duration(
      "durability-interval", "longest wait for an fsync with batch",
      [](node_options & o) -> auto& { return o.node.durability_interval; }));
    s.push_back(boolean(
      "keep-stale-data",
      "load a --data-dir last alive longer ago than --tombstone-horizon "
      "(only when every node was down as long)",
      [](node_options & o) -> auto& { return o.node.keep_stale_data; }));
    s.push_back(
      choice<log_level>("log-level", "verbosity of stderr",
                        [](node_options & o) -> auto& { return o.level; },
                        {{"quiet", log_level::quiet},
                         {"error", log_level::error},
                         {"warning", log_level::warning},
                         {"info", log_level::info},
                         {"debug", log_level::debug}}));
    s.push_back(duration(
      "heartbeat-interval", "pings on every link",
      [](node_options & o) -> auto& { return o.node.heartbeat_interval; }));
    s.push_back(duration(
      "peer-timeout", "drop silent peers after",
      [](node_options & o) -> auto& { return o.node.peer_timeout; }));
    s.push_back(duration(
      "anti-entropy-interval", "repair rounds with one peer at a time",
      [](node_options & o) -> auto& { return o.node.anti_entropy_interval; }));
    s.push_back(choice<ae_method>(
      "anti-entropy-method", "how differing buckets are compared",
      [](node_options & o) -> auto& { return o.node.anti_entropy_method; },
      {{"auto", ae_method::automatic},
       {"sketch", ae_method::sketch},
       {"keys", ae_method::key_lists}}));
    s.push_back(duration(
      "redial-max", "longest redial backoff",
      [](node_options & o) -> auto& { return o.node.redial_max; }));
    s.push_back(duration(
      "tombstone-horizon", "how long deletes are remembered",
      [](node_options & o) -> auto& { return o.node.tombstone_horizon; }));
    s.push_back(bytes(
      "max-value-size", "largest value",
      [](node_options & o) -> auto& { return o.node.max_value_size; }));
    s.push_back(count(
      "max-value-depth",
      "deepest nesting of lists and maps in a value "
      "(mesh-wide)",
      [](node_options & o) -> auto& { return o.node.max_value_depth; }));
    s.push_back(count(
      "expected-keys", "keys to size the tables for (avoids rehash pauses)",
      [](node_options & o) -> auto& { return o.node.expected_keys; }));
    s.push_back(count(
      "cluster-size",
      "the configured membership confirmed writes count (majority = n/2+1, "
      "all = n); 0: the seeds + 1 when --peers is given, else majority and "
      "all are refused",
      [](node_options & o) -> auto& { return o.node.cluster_size; }));
    s.push_back(duration(
      "confirm-timeout",
      "how long a confirmed write waits when it names no timeout",
      [](node_options & o) -> auto& { return o.node.confirm_timeout; }));
    s.push_back(count(
      "max-pending-confirms",
      "most confirmed writes waiting for other nodes at once (503 beyond)",
      [](node_options & o) -> auto& { return o.node.max_pending_confirms; }));
    s.push_back(count(
      "max-confirm-waits",
      "most confirmation queries of other nodes held until their writes "
      "arrive (the oldest dropped beyond)",
      [](node_options & o) -> auto& { return o.node.max_confirm_waits; }));
    s.push_back(bytes(
      "max-handshake-frame", "largest frame before a peer's hello is accepted",
      [](node_options & o) -> auto& { return o.node.max_handshake_frame; }));
    s.push_back(bytes(
      "max-pending-handshake-bytes",
      "most bytes held for all unfinished handshakes",
      [](node_options & o) -> auto& {
        return o.node.max_pending_handshake_bytes;
      }));
    s.push_back(bytes(
      "ingress-window",
      "most bytes of a peer's writes not yet applied before "
      "its link stops reading",
      [](node_options & o) -> auto& { return o.node.ingress_window; }));
    s.push_back(bytes(
      "max-ae-outbox-bytes",
      "most bytes of anti-entropy traffic queued for one peer",
      [](node_options & o) -> auto& { return o.node.max_ae_outbox_bytes; }));
    s.push_back(duration(
      "duplicate-probe-timeout",
      "how long a connected peer may take to answer a "
      "probe when another connection claims its ID",
      [](node_options & o) -> auto& {
        return o.node.duplicate_probe_timeout;
      }));
    return s;
  }();
  return specs;
}

/// CLI11's INI reader, adapted to the files CAF used to read: keys live in
/// a [global] section (or before any section); a key we do not know, in any
/// section, is collected in `unknown` instead of being ignored silently.
class global_ini : public CLI::ConfigINI {
public:
  global_ini(std::set<std::string> known,
             std::shared_ptr<std::vector<std::string>> unknown)
      : known_(std::move(known)), unknown_(std::move(unknown)) {
    // No arrays: CLI11 would split an unquoted "a:1,b:2" or "my mesh" into
    // several values. A control character nobody types turns that off, so
    // every value is one string, quoted or not.
    arrayBounds('\x01', '\x01');
    arrayDelimiter('\x01');
  }

  std::vector<CLI::ConfigItem> from_config(std::istream& in) const override {
    std::vector<CLI::ConfigItem> out;
    for (auto& item : CLI::ConfigINI::from_config(in)) {
      // "++" and "--" mark where sections open and close.
      if (item.name == "++" || item.name == "--")
        continue;
      if (!item.parents.empty()
          && item.parents != std::vector<std::string>{"global"}) {
        std::string dotted;
        for (const auto& p : item.parents)
          dotted += p + ".";
        item.name = dotted + item.name;
      }
      item.parents.clear();
      if (known_.count(item.name) == 0) {
        unknown_->push_back(item.name);
        continue;
      }
      out.push_back(std::move(item));
    }
    return out;
  }

private:
  std::set<std::string> known_;
  std::shared_ptr<std::vector<std::string>> unknown_;
};

/// Every option with its value as it would be typed in the INI file.
std::string dump_ini(const node_options& opts) {
  std::string out = "[global]\n";
  for (const auto& spec : option_specs()) {
    auto val = spec.show(opts);
    bool quote = spec.hint == "TEXT" || spec.hint == "FILE"
                 || spec.hint == "HOST:PORT" || spec.hint == "DURATION"
                 || spec.hint.find(',') != std::string::npos || val.empty();
    out += spec.name + "=" + (quote ? "\"" + val + "\"" : val) + "\n";
  }
  return out;
}

/// Fits the derived limits to the options, like the library expects them.
void derive_limits(config& cfg) {
  // A frame must carry the largest value with its key and envelope.
  if (cfg.max_frame_size < cfg.max_value_size + cfg.max_key_size + 1024)
    cfg.max_frame_size = cfg.max_value_size + cfg.max_key_size + 1024;
  if (cfg.max_send_queue < cfg.max_frame_size * 4)
    cfg.max_send_queue = cfg.max_frame_size * 4;
  if (cfg.ingress_window < cfg.max_frame_size)
    cfg.ingress_window = cfg.max_frame_size;
}

/// The HTTP options that must fit together; "" when they do. Whether the
/// files can be read is checked when the API starts (one line, exit 2).
std::string check_http(const node_options& opts) {
  const auto& srv = opts.http_server;
  if (srv.tls_cert_file.empty() != srv.tls_key_file.empty())
    return srv.tls_cert_file.empty()
             ? "--http-key needs --http-cert (HTTPS needs both)"
             : "--http-cert needs --http-key (HTTPS needs both)";
  return {};
}

/// The peer TLS options: all three or none, each file readable, and not
/// with wire mode py2p; "" when they fit. (Whether the files hold what
/// they should is checked when the node starts: one line, exit 2.)
std::string check_tls(const node_options& opts) {
  const auto& tls = opts.node.tls;
  if (!tls.enabled())
    return {};
  if (tls.cert_file.empty() || tls.key_file.empty() || tls.ca_file.empty())
    return "--tls-cert, --tls-key and --tls-ca go together (peer TLS needs "
           "all three)";
  if (opts.node.wire == wire_kind::py2p)
    return "--tls-cert: peer TLS is not available with --wire=py2p (py2p "
           "and js2p speak no TLS)";
  for (auto [flag, path] : {std::pair{"--tls-cert", &tls.cert_file},
                            std::pair{"--tls-key", &tls.key_file},
                            std::pair{"--tls-ca", &tls.ca_file}}) {
    std::FILE* file = std::fopen(path->c_str(), "rb");
    if (!file)
      return std::string{flag} + ": cannot read " + *path + ": "
             + std::strerror(errno);
    std::fclose(file);
  }
  return {};
}

std::string lower(std::string text) {
  for (auto& c : text)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

} // namespace

bool parse_bool(const std::string& text, bool& out) {
  auto t = lower(text);
  if (t == "true" || t == "yes" || t == "on" || t == "1") {
    out = true;
    return true;
  }
  if (t == "false" || t == "no" || t == "off" || t == "0") {
    out = false;
    return true;
  }
  return false;
}

bool parse_duration(const std::string& text, milliseconds& out) {
  size_t pos = 0;
  while (pos < text.size()
         && std::isdigit(static_cast<unsigned char>(text[pos])))
    ++pos;
  // 12 digits of hours still fit milliseconds in 64 bits.
  if (pos == 0 || pos > 12)
    return false;
  auto n = std::stoll(text.substr(0, pos));
  auto unit = text.substr(pos);
  if (unit == "ms")
    out = milliseconds{n};
  else if (unit.empty() || unit == "s")
    out = std::chrono::seconds{n};
  else if (unit == "m" || unit == "min")
    out = std::chrono::minutes{n};
  else if (unit == "h")
    out = std::chrono::hours{n};
  else
    return false;
  return true;
}

std::string format_duration(milliseconds d) {
  auto ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0)
    return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0)
    return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

bool parse_size(const std::string& text, size_t& out) {
  size_t pos = 0;
  while (pos < text.size()
         && std::isdigit(static_cast<unsigned char>(text[pos])))
    ++pos;
  if (pos == 0 || pos > 19)
    return false;
  uint64_t n = std::stoull(text.substr(0, pos));
  auto unit = lower(text.substr(pos));
  unsigned shift = 0;
  if (unit == "kib")
    shift = 10;
  else if (unit == "mib")
    shift = 20;
  else if (unit == "gib")
    shift = 30;
  else if (!unit.empty() && unit != "b")
    return false; // "64K" or "64KB": 1000 or 1024? We do not guess.
  if (n > (std::numeric_limits<size_t>::max() >> shift))
    return false;
  out = static_cast<size_t>(n << shift);
  return true;
}

std::string format_size(size_t bytes) {
  if (bytes != 0 && bytes % (size_t{1} << 30) == 0)
    return std::to_string(bytes >> 30) + "GiB";
  if (bytes != 0 && bytes % (size_t{1} << 20) == 0)
    return std::to_string(bytes >> 20) + "MiB";
  if (bytes != 0 && bytes % (size_t{1} << 10) == 0)
    return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes);
}

std::string node_options_help() {
  node_options defaults;
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& spec : option_specs()) {
    auto left
      = "--" + spec.name
        + (spec.is_flag ? "[=BOOL], --no-" + spec.name : "=" + spec.hint);
    auto def = spec.show(defaults);
    rows.emplace_back(
      left, spec.help + " (default: " + (def.empty() ? "\"\"" : def) + ")");
  }
  rows.emplace_back("--config-file=FILE",
                    "read options from an INI file (name=value lines, in "
                    "[global] or before any section); the command line wins");
  rows.emplace_back("--dump-config",
                    "print the options in effect as an INI file and exit");
  rows.emplace_back("-h, --help", "print this list and exit");
  // Longer option names get their text on the next line.
  constexpr size_t width = 34;
  std::string out
    = "usage: syncmesh-node [OPTIONS]\n\n"
      "Runs one node of a syncmesh mesh and its HTTP API.\n"
      "Values: booleans true|false (--leasing, --leasing=false, "
      "--no-leasing);\n"
      "durations 1500ms, 2s, 5m, 1h (a plain number is seconds); sizes in "
      "bytes,\nor 64KiB, 4MiB, 1GiB.\n\noptions:\n";
  for (const auto& [left, right] : rows) {
    out += "  " + left;
    if (left.size() + 2 > width)
      out += "\n" + std::string(width + 2, ' ');
    else
      out += std::string(width - left.size(), ' ');
    out += right + "\n";
  }
  return out;
}

node_options_result parse_node_options(int argc, const char* const* argv) {
  node_options_result result;
  auto fail = [&](std::string line) {
    result.action = node_action::fail;
    result.text = std::move(line);
    return result;
  };
  const auto& specs = option_specs();
  CLI::App app{"one node of a syncmesh mesh", "syncmesh-node"};
  app.allow_extras(true); // reported below, in our words
  std::set<std::string> known;
  std::vector<CLI::Option*> handles;
  for (const auto& spec : specs) {
    known.insert(spec.name);
    if (spec.is_flag)
      known.insert("no-" + spec.name);
    CLI::Option* opt = nullptr;
    if (spec.is_flag) {
      opt = app.add_flag("--" + spec.name + ",!--no-" + spec.name, spec.help);
    } else {
      // 0..1 values: "--http=" and a bare "--http" arrive as "" (turned
      // into "off" or an error by the conversion, not by CLI11).
      opt = app.add_option("--" + spec.name, spec.help)->expected(0, 1);
    }
    opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    handles.push_back(opt);
  }
  auto* dump = app.add_flag("--dump-config", "print the options as INI");
  auto unknown = std::make_shared<std::vector<std::string>>();
  auto* config_opt = app.set_config("--config-file", "", "INI file");
  app.config_formatter(std::make_shared<global_ini>(known, unknown));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    result.action = node_action::help;
    result.text = node_options_help();
    return result;
  } catch (const CLI::FileError&) {
    auto file = config_opt->results().empty() ? std::string{}
                                              : config_opt->results().back();
    return fail("--config-file: cannot read \"" + file + "\"");
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    return fail(what + " (see --help)");
  }
  if (!config_opt->results().empty())
    result.options.config_file = config_opt->results().back();
  auto extras = app.remaining();
  if (!extras.empty()) {
    const auto& first = extras.front();
    if (first.rfind("-", 0) == 0)
      return fail("unknown option " + first.substr(0, first.find('='))
                  + " (see --help)");
    return fail("unexpected argument \"" + first
                + "\" (options are --name=value; see --help)");
  }
  if (!unknown->empty())
    return fail(result.options.config_file + ": unknown option \""
                + unknown->front() + "\" (see --help)");
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& results = handles[i]->results();
    if (handles[i]->count() == 0 && results.empty())
      continue;
    auto raw = results.empty() ? std::string{} : results.back();
    if (!specs[i].set(result.options, raw))
      return fail("--" + specs[i].name + " expects " + specs[i].expects
                  + ", got \"" + raw + "\"");
  }
  // py2p mode's value limit follows what py2p and js2p accept in practice,
  // unless the option (command line or INI file) says otherwise.
  if (result.options.node.wire == wire_kind::py2p) {
    auto given = [&](const std::string& name) {
      for (size_t i = 0; i < specs.size(); ++i)
        if (specs[i].name == name)
          return handles[i]->count() > 0 || !handles[i]->results().empty();
      return false;
    };
    if (!given("max-value-size"))
      result.options.node.max_value_size = py2p_max_value_size;
  }
  derive_limits(result.options.node);
  if (auto err = check_tls(result.options); !err.empty())
    return fail(err);
  if (auto err = result.options.node.validate(); !err.empty())
    return fail(err);
  if (auto err = check_http(result.options); !err.empty())
    return fail(err);
  if (dump->count() > 0) {
    result.action = node_action::dump_config;
    result.text = dump_ini(result.options);
  }
  return result;
}

} // namespace syncmesh
