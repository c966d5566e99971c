#pragma once

// The options of syncmesh-node as a person types them: on the command line
// or in an INI file, turned into a validated syncmesh::config or into one
// line that says what is wrong. No actor system is involved, so every
// spelling is tested directly (tests/daemon/node_options_tests.cpp).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "actors/log.hpp"
#include "node/daemon/http_server.hpp"
#include "syncmesh/config.hpp"

namespace syncmesh {

/// Everything syncmesh-node was told to do, already checked.
struct node_options {
  /// The daemon's defaults: the library's, but peers on the well-known port,
  /// and the API's body limit derived from the value size.
  node_options() {
    node.port = 7440;
    http_server.max_body = 0;
  }

  /// The node's library configuration.
  config node;
  /// The HTTP API's address as typed ("": off) and its parts.
  std::string http = "127.0.0.1:7441";
  /// Host part of `http`.
  std::string http_host = "127.0.0.1";
  /// Port part of `http` (0: the OS picks).
  uint16_t http_port = 7441;
  /// Bearer tokens of the HTTP API ("": none, every client is admin).
  std::string http_token_file;
  /// The HTTP front's TLS files, limits, accepted Host names, allowed
  /// origins and open paths, as the API's server gets them (`max_body` 0:
  /// derived from --max-value-size; `token_file` is `http_token_file`).
  http::server_options http_server;
  /// Most /v1/watch streams open at once (503 beyond).
  size_t http_max_watchers = 10'000;
  /// Bytes of recent watch events kept for slow watchers and resumes.
  size_t http_watch_window = 8 * 1024 * 1024;
  /// Directory for the node ID and the clock's high-water mark ("": none).
  std::string data_dir;
  /// Verbosity of the log lines on stderr.
  log_level level = log_level::info;
  /// The INI file the options were read from ("": none).
  std::string config_file;
};

/// What syncmesh-node should do after reading its arguments.
enum class node_action {
  /// Run the node with the options.
  run,
  /// Print `text` (the option list) on stdout and exit 0.
  help,
  /// Print `text` (the effective options as INI) on stdout and exit 0.
  dump_config,
  /// Print "syncmesh-node: " + `text` on stderr and exit 2.
  fail,
};

/// The outcome of reading the arguments.
struct node_options_result {
  /// What to do.
  node_action action = node_action::run;
  /// The options (meaningful for run and dump_config).
  node_options options;
  /// The help text, the INI dump, or the one-line error (no program name).
  std::string text;
};

/// Reads argv (and the INI file named by --config-file; the command line
/// wins over the file), converts every value and validates the result.
node_options_result parse_node_options(int argc, const char* const* argv);

/// The option list printed by --help: every option with its default.
std::string node_options_help();

/// Reads "1500ms", "2s", "5m", "1h" or plain seconds ("30"); false for
/// anything else, negative numbers and more than 12 digits.
bool parse_duration(const std::string& text, std::chrono::milliseconds& out);

/// Writes a duration in the largest unit that divides it ("1h", "1500ms").
std::string format_duration(std::chrono::milliseconds d);

/// Reads a size: plain bytes ("65536") or with a binary unit ("64KiB",
/// "4MiB", "1GiB"); false for anything else or on overflow.
bool parse_size(const std::string& text, size_t& out);

/// Writes a size in the largest binary unit that divides it ("1MiB", "100").
std::string format_size(size_t bytes);

/// Reads true/false (also yes/no, on/off, 1/0, any case).
bool parse_bool(const std::string& text, bool& out);

} // namespace syncmesh
