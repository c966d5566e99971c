#pragma once

// What the HTTP server hands to the API and gets back: one request, one
// response, and the two streams (a streamed response body for watch
// streams, a body read in pieces for bulk loads). The server knows nothing
// of syncmesh; the API knows nothing of sockets. Everything here may cross
// threads: the server runs on its own I/O thread(s), the API answers from
// whatever thread the node's reply arrives on.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace syncmesh::http {

/// What a bearer token lets its holder do; each role includes those before
/// it. Without a token file every client is `admin` (the zero-config
/// loopback default).
enum class role : uint8_t { none, read, write, admin };

/// The lower-case name of `r` ("none", "read", "write", "admin").
std::string_view to_string(role r);

/// One parsed request. The body was read whole (never beyond the server's
/// body limit) unless the route reads it in pieces (see `body_reader`).
struct request {
  /// "GET", "PUT", ... as received (upper case).
  std::string method;
  /// The percent-decoded path, without the query ("/v1/kv/a b").
  std::string path;
  /// The query's parameters, percent-decoded, in order.
  std::vector<std::pair<std::string, std::string>> query;
  /// The header fields; names in lower case, values trimmed.
  std::vector<std::pair<std::string, std::string>> headers;
  /// The body (empty when the route reads it in pieces).
  std::string body;
  /// The client's address, "ip:port".
  std::string remote;
  /// What the client's token grants (admin without a token file).
  role granted = role::none;
  /// True when it came over TLS.
  bool secure = false;

  /// The first value of header `name` (lower case), empty when absent.
  std::string_view header(std::string_view name) const;
  /// True when header `name` (lower case) is present.
  bool has_header(std::string_view name) const;
  /// The first value of query parameter `name`, empty when absent.
  std::string_view param(std::string_view name) const;
  /// True when query parameter `name` is present.
  bool has_param(std::string_view name) const;
};

/// A response body produced a chunk at a time (Server-Sent Events). The
/// server asks for the next chunk only after the previous one reached the
/// socket, so a slow client holds back the source, which decides what to do
/// (queue within its own byte bound, or end the stream with an overflow
/// event) — the server never queues more than one chunk per stream.
class chunk_source {
public:
  virtual ~chunk_source() = default;

  /// Called with the next chunk (`last` false), or with `last` true (and
  /// an optional final chunk) to end the stream and close the connection.
  using deliver_fn = std::function<void(std::string chunk, bool last)>;

  /// Asks for the next chunk; the source calls `deliver` exactly once, from
  /// any thread, when it has one. Never called again before that.
  virtual void next(deliver_fn deliver) = 0;

  /// The connection ended (client gone, timeout, server stopping): forget
  /// the pending `deliver`, if any. Called once, from the server's thread.
  virtual void cancel() = 0;
};

/// A request body read in pieces (bulk loads), with back-pressure: the
/// server reads the next piece from the socket only when asked.
class body_reader {
public:
  virtual ~body_reader() = default;

  /// Called with the next piece (at most the server's piece size), with
  /// `end` true together with the last piece (which may be empty), or
  /// with a non-empty `error` ("body_too_large", "timeout", "bad_body: ...",
  /// "the connection is closed"): then answer and stop reading. Answering
  /// before `end` is allowed; the server then closes the connection.
  using got_fn
    = std::function<void(std::string_view piece, bool end, std::string_view error)>;

  /// Asks for the next piece; `got` is called exactly once, on the
  /// server's thread. Call again from `got` (or later) for more.
  virtual void read(got_fn got) = 0;
};

/// One response.
struct response {
  /// The status code.
  int status = 200;
  /// The body's media type (empty: no body, e.g. 204).
  std::string content_type;
  /// More header fields (e.g. Retry-After, X-Syncmesh-Owner).
  std::vector<std::pair<std::string, std::string>> headers;
  /// The body, unless `stream` is set.
  std::string body;
  /// When set, the body is streamed from it (chunked) and `body` ignored.
  std::shared_ptr<chunk_source> stream;
  /// Close the connection after this response.
  bool close = false;
};

/// Answers a request: call it exactly once, from any thread.
using responder = std::function<void(response)>;

/// Handles a request whose body was read whole.
using handler = std::function<void(request&&, responder)>;

/// Handles a request whose body the handler reads in pieces.
using piecewise_handler
  = std::function<void(request&&, std::shared_ptr<body_reader>, responder)>;

/// The JSON error every refusal carries: {"error": kind, "message": text}.
response json_error(int status, std::string_view kind, std::string_view message);

} // namespace syncmesh::http
