#include "node/daemon/http_server.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdio>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "actors/tls_identity.hpp"
#include "messages/hex_text.hpp"
#include "node/daemon/http_auth.hpp"

namespace syncmesh::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

/// Refusal causes, indexing the counters and the log limiter.
enum class cause : size_t {
  header_too_large,
  body_too_large,
  url_too_long,
  bad_framing,
  timeout,
  overloaded,
  unauthorized,
  forbidden,
  bad_host,
  bad_origin,
  connections,
  tls,
  count_
};

constexpr size_t cause_count = static_cast<size_t>(cause::count_);

const char* cause_name(cause c) {
  static constexpr const char* names[]
    = {"header_too_large", "body_too_large", "url_too_long", "bad_framing",
       "timeout",          "overloaded",     "unauthorized", "forbidden",
       "bad_host",         "bad_origin",     "connections",  "tls"};
  return names[static_cast<size_t>(c)];
}

/// At most one log line per cause per interval, saying how many were
/// left out: a flood of bad requests must not become a flood of lines.
class refusal_log {
public:
  static constexpr auto interval = std::chrono::seconds{10};

  void note(cause c, const std::string& text,
            const std::function<void(const std::string&)>& sink) {
    auto now = std::chrono::steady_clock::now();
    size_t skipped = 0;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      auto& slot = slots_[static_cast<size_t>(c)];
      if (slot.printed && now - slot.last < interval) {
        ++slot.skipped;
        return;
      }
      slot.printed = true;
      slot.last = now;
      skipped = std::exchange(slot.skipped, 0);
    }
    auto line = std::string{"http: "} + cause_name(c) + ": " + text;
    if (skipped > 0)
      line += " (" + std::to_string(skipped) + " more like it not logged)";
    if (sink)
      sink(line);
    else
      std::fprintf(stderr, "%s\n", line.c_str());
  }

private:
  struct slot {
    bool printed = false;
    std::chrono::steady_clock::time_point last;
    size_t skipped = 0;
  };
  std::mutex mutex_;
  std::array<slot, cause_count> slots_{};
};

std::string lower(std::string_view text) {
  std::string out{text};
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

/// Percent-decodes `text` ('+' as space when `plus_is_space`); false on a
/// broken escape.
bool percent_decode(std::string_view text, bool plus_is_space,
                    std::string& out) {
  out.clear();
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size())
        return false;
      int hi = hex_digit(text[i + 1]);
      int lo = hex_digit(text[i + 2]);
      if (hi < 0 || lo < 0)
        return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return true;
}

/// Splits an origin-form target into a decoded path and query; false when
/// it is not origin-form or an escape is broken.
bool parse_target(std::string_view target, request& req) {
  if (target.empty() || target.front() != '/')
    return false;
  auto mark = target.find('?');
  if (!percent_decode(target.substr(0, mark), false, req.path))
    return false;
  if (mark == std::string_view::npos)
    return true;
  auto query = target.substr(mark + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    auto part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{}
                                          : query.substr(amp + 1);
    if (part.empty())
      continue;
    auto eq = part.find('=');
    std::string key;
    std::string value;
    if (!percent_decode(part.substr(0, eq), true, key))
      return false;
    if (eq != std::string_view::npos
        && !percent_decode(part.substr(eq + 1), true, value))
      return false;
    req.query.emplace_back(std::move(key), std::move(value));
  }
  return true;
}

/// Beast 1.74 uses boost::string_view.
std::string_view sv(beast::string_view text) {
  return {text.data(), text.size()};
}

bool has_crlf(std::string_view text) {
  return text.find_first_of("\r\n") != std::string_view::npos;
}

} // namespace

// -- the shared state ---------------------------------------------------------

class session_base;

struct http_server::impl : std::enable_shared_from_this<impl> {
  impl(server_options opts, http_dispatch disp)
      : options(std::move(opts)), dispatch(std::move(disp)) {}

  server_options options;
  http_dispatch dispatch;
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
    work;
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> accept_retry;
  std::unique_ptr<asio::ssl::context> tls;
  std::optional<token_table> tokens;
  host_policy hosts;
  std::vector<std::thread> threads;
  std::mutex sessions_mutex;
  std::unordered_map<session_base*, std::weak_ptr<session_base>> sessions;
  std::atomic<bool> stopping{false};
  std::mutex lifecycle_mutex;
  bool started = false;
  bool stopped = false;
  refusal_log refusals;

  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> connections_refused{0};
  std::atomic<uint64_t> tls_handshake_failures{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> in_flight{0};
  std::array<std::atomic<uint64_t>, cause_count> refused{};
  std::atomic<uint64_t> request_bytes_held{0};
  std::atomic<uint64_t> bytes_read{0};

  /// Counts and (rate-limited) logs one refusal.
  void note(cause c, const std::string& remote, const std::string& text) {
    refused[static_cast<size_t>(c)].fetch_add(1, std::memory_order_relaxed);
    refusals.note(c, remote + ": " + text, options.log);
  }

  void log(const std::string& text) {
    if (options.log)
      options.log("http: " + text);
    else
      std::fprintf(stderr, "http: %s\n", text.c_str());
  }

  void do_accept();
  void on_accepted(tcp::socket socket);
};

/// What `stop` needs of a connection, whatever its stream type.
class session_base : public std::enable_shared_from_this<session_base> {
public:
  virtual ~session_base() = default;
  /// Closes the connection (posted onto its strand by `stop`).
  virtual void shutdown_now() = 0;
  /// Hands a response to the connection (from any thread).
  virtual void post_response(response res) = 0;
};

namespace {

/// Shared by the copies of one request's responder: answers exactly once,
/// and answers 500 if every copy was dropped without answering (a handler
/// bug must not leave a connection hanging and an in-flight slot taken).
struct reply_slot {
  std::shared_ptr<http_server::impl> server;
  std::shared_ptr<session_base> session;
  std::atomic<bool> answered{false};

  void answer(response res) {
    if (answered.exchange(true))
      return;
    server->in_flight.fetch_sub(1, std::memory_order_relaxed);
    // After stop the threads are gone: a queued answer would only keep the
    // connection (and through it the server's state) alive.
    if (!server->stopping.load())
      session->post_response(std::move(res));
  }

  ~reply_slot() {
    if (!answered.load())
      answer(json_error(500, "internal",
                        "the request was dropped without an answer"));
  }
};

} // namespace

// -- one connection -----------------------------------------------------------

/// One connection over `Stream` (a TCP socket, or TLS over one): reads a
/// request, answers it, reads the next; never more than one request at a
/// time, so pipelined requests are answered in order.
template <class Stream>
class session final : public session_base {
public:
  using self_ptr = std::shared_ptr<session>;

  template <class... StreamArgs>
  session(std::shared_ptr<http_server::impl> server, std::string remote,
          bool secure, StreamArgs&&... stream_args)
      : server_(std::move(server)),
        stream_(std::forward<StreamArgs>(stream_args)...),
        exec_(stream_.get_executor()), timer_(exec_),
        buffer_(server_->options.max_header_bytes + 1024),
        remote_(std::move(remote)), secure_(secure) {}

  void start() {
    if constexpr (is_tls) {
      arm(deadline::header, server_->options.header_timeout);
      stream_.async_handshake(
        asio::ssl::stream_base::server,
        [self = self()](const error_code& ec) { self->on_handshake(ec); });
    } else {
      read_next();
    }
  }

  void shutdown_now() override {
    asio::post(exec_, [self = self()] { self->close(); });
  }

  void post_response(response res) override {
    asio::post(exec_, [self = self(), res = std::move(res)]() mutable {
      self->on_response(std::move(res));
    });
  }

  /// The piecewise reader handed to the API.
  class piece_reader final : public body_reader {
  public:
    explicit piece_reader(self_ptr owner) : owner_(std::move(owner)) {}
    void read(got_fn got) override {
      asio::post(owner_->exec_, [owner = owner_, got = std::move(got)] {
        owner->read_piece(got);
      });
    }

  private:
    self_ptr owner_;
  };

private:
  static constexpr bool is_tls = !std::is_same<Stream, tcp::socket>::value;

  enum class deadline { none, idle, header, body, write, linger };

  self_ptr self() {
    return std::static_pointer_cast<session>(shared_from_this());
  }

  tcp::socket& socket() { return beast::get_lowest_layer(stream_); }

  const server_options& opts() const { return server_->options; }

  // -- deadlines --

  void arm(deadline kind, std::chrono::milliseconds after) {
    armed_ = kind;
    timed_out_ = false;
    timer_.expires_after(after);
    timer_.async_wait([self = self(), gen = ++timer_gen_](error_code ec) {
      if (ec || gen != self->timer_gen_ || self->closed_)
        return;
      self->on_deadline();
    });
  }

  void disarm() {
    ++timer_gen_;
    armed_ = deadline::none;
    timer_.cancel();
  }

  void on_deadline() {
    timed_out_ = true;
    switch (armed_) {
      case deadline::idle:
      case deadline::linger:
        close();
        break;
      case deadline::write:
        server_->note(cause::timeout, remote_,
                      "a response was not read within the write timeout");
        close();
        break;
      case deadline::header:
      case deadline::body: {
        // The pending read completes with operation_aborted and answers.
        error_code ignored;
        socket().cancel(ignored);
        break;
      }
      case deadline::none:
        break;
    }
    armed_ = deadline::none;
  }

  // -- accounting --

  /// Records the bytes this connection holds for requests now.
  void set_held(uint64_t bytes) {
    server_->request_bytes_held.fetch_add(bytes - held_,
                                          std::memory_order_relaxed);
    held_ = bytes;
  }

  /// Adds what the parser consumed, plus what waits in the buffer, to the
  /// bytes read from this client.
  void count_read(size_t consumed) {
    uint64_t total = consumed_ + consumed + buffer_.size();
    consumed_ += consumed;
    if (total > reported_read_) {
      server_->bytes_read.fetch_add(total - reported_read_,
                                    std::memory_order_relaxed);
      reported_read_ = total;
    }
  }

  // -- TLS --

  void on_handshake(const error_code& ec) {
    if (closed_)
      return;
    disarm();
    if (ec) {
      server_->tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
      server_->refusals.note(
        cause::tls, remote_ + ": TLS handshake failed: " + ec.message(),
        opts().log);
      close();
      return;
    }
    read_next();
  }

  // -- reading a request --

  void read_next() {
    if (closed_)
      return;
    header_.emplace();
    header_->header_limit(static_cast<uint32_t>(
      std::min<size_t>(opts().max_header_bytes, UINT32_MAX)));
    // The declared length is checked by us (so a bulk route can have its
    // own limit); the body parsers get theirs before reading. Not
    // boost::none: Beast 1.74 compares a Content-Length with an empty
    // optional as "over the limit".
    header_->body_limit(std::numeric_limits<uint64_t>::max());
    if (buffer_.size() == 0)
      buffer_.shrink_to_fit(); // an idle connection holds no buffer
    set_held(buffer_.capacity());
    if (!first_request_ && buffer_.size() == 0 && !is_tls) {
      // Between requests the idle timeout applies; the header deadline
      // starts with the first byte of the next request.
      arm(deadline::idle, opts().idle_timeout);
      socket().async_wait(tcp::socket::wait_read,
                          [self = self()](const error_code& ec) {
                            if (self->closed_)
                              return;
                            if (ec) {
                              self->close();
                              return;
                            }
                            self->read_header();
                          });
      return;
    }
    read_header();
  }

  void read_header() {
    // A TLS connection cannot see "first byte" below the TLS layer, so its
    // keep-alive wait and header share the idle timeout.
    arm(deadline::header, !first_request_ && is_tls ? opts().idle_timeout
                                                    : opts().header_timeout);
    bhttp::async_read_header(
      stream_, buffer_, *header_,
      [self = self()](error_code ec, size_t n) { self->on_header(ec, n); });
  }

  /// 414 when the request line alone passes the URL limit, else 431.
  void refuse_oversized_header() {
    // Beast parses the request line and each complete field as they
    // arrive and the read consumes them from `buffer_`: once the request
    // line is parsed (the target is set), the buffer holds a later field,
    // and only the parsed target may be measured.
    size_t line_size = 0;
    if (header_ && !header_->get().target().empty()) {
      line_size = header_->get().target().size();
    } else {
      auto data = static_cast<const char*>(buffer_.data().data());
      std::string_view seen{data, buffer_.size()};
      auto line_end = seen.find("\r\n");
      line_size = line_end == std::string_view::npos ? seen.size() : line_end;
    }
    if (line_size > opts().max_url) {
      refuse(414, cause::url_too_long, "url_too_long",
             "the request target is longer than "
               + std::to_string(opts().max_url) + " bytes",
             true);
      return;
    }
    refuse(431, cause::header_too_large, "header_too_large",
           "the request header is larger than "
             + std::to_string(opts().max_header_bytes) + " bytes",
           true);
  }

  void on_header(error_code ec, size_t consumed) {
    if (closed_)
      return;
    count_read(consumed);
    if (ec) {
      disarm();
      if (ec == asio::error::operation_aborted && timed_out_) {
        if (buffer_.size() > 0 && !is_tls)
          refuse(408, cause::timeout, "timeout",
                 "the request header did not arrive within "
                   + std::to_string(opts().header_timeout.count()) + " ms",
                 true);
        else {
          server_->note(cause::timeout, remote_,
                        buffer_.size() > 0
                          ? "header deadline passed"
                          : "no request within the header deadline");
          close();
        }
        return;
      }
      if (ec == bhttp::error::header_limit
          || ec == bhttp::error::buffer_overflow) {
        refuse_oversized_header();
        return;
      }
      if (ec == bhttp::error::end_of_stream || ec == asio::error::eof
          || ec == asio::error::connection_reset
          || ec == asio::error::operation_aborted
          || ec == asio::ssl::error::stream_truncated) {
        close();
        return;
      }
      refuse(400, cause::bad_framing, "bad_request",
             "malformed request: " + ec.message(), true);
      return;
    }
    disarm();
    admit();
  }

  /// The checks between header and body, in the order documented in the
  /// header file; dispatches or refuses.
  void admit() {
    auto& head = header_->get();
    request req;
    req.remote = remote_;
    req.secure = secure_;
    req.method = std::string{sv(head.method_string())};
    head_request_ = head.method() == bhttp::verb::head;
    keep_alive_ = head.keep_alive();
    size_t fields = 0;
    size_t content_lengths = 0;
    size_t transfer_encodings = 0;
    bool te_is_chunked = false;
    for (const auto& field : head) {
      ++fields;
      auto name = lower(sv(field.name_string()));
      auto value = trim(sv(field.value()));
      if (name == "content-length")
        ++content_lengths;
      if (name == "transfer-encoding") {
        ++transfer_encodings;
        te_is_chunked = lower(value) == "chunked";
      }
      if (fields <= opts().max_header_fields)
        req.headers.emplace_back(std::move(name), std::string{value});
    }
    if (fields > opts().max_header_fields) {
      refuse(431, cause::header_too_large, "header_too_large",
             "more than " + std::to_string(opts().max_header_fields)
               + " header fields",
             true);
      return;
    }
    if (head.target().size() > opts().max_url) {
      refuse(414, cause::url_too_long, "url_too_long",
             "the request target is longer than "
               + std::to_string(opts().max_url) + " bytes",
             true);
      return;
    }
    if (head.version() != 11 && head.version() != 10) {
      refuse(400, cause::bad_framing, "bad_request",
             "only HTTP/1.0 and HTTP/1.1 are served", true);
      return;
    }
    // RFC 9112 section 6: a message with two lengths, an encoding we do not
    // implement, or both a length and an encoding could be read differently
    // by a proxy in front of us (request smuggling): refuse and close.
    if (content_lengths > 1) {
      refuse(400, cause::bad_framing, "bad_framing",
             "more than one Content-Length field", true);
      return;
    }
    if (transfer_encodings > 1 || (transfer_encodings == 1 && !te_is_chunked)) {
      refuse(400, cause::bad_framing, "bad_framing",
             "Transfer-Encoding other than exactly \"chunked\"", true);
      return;
    }
    if (transfer_encodings == 1 && content_lengths == 1) {
      refuse(400, cause::bad_framing, "bad_framing",
             "both Transfer-Encoding and Content-Length", true);
      return;
    }
    if (transfer_encodings == 1 && head.version() == 10) {
      refuse(400, cause::bad_framing, "bad_framing",
             "Transfer-Encoding in an HTTP/1.0 request", true);
      return;
    }
    bool has_body = !header_->is_done();
    bool must_close = has_body; // its body stays unread if we refuse now
    if (!parse_target(sv(head.target()), req)) {
      refuse(400, cause::bad_framing, "bad_request",
             "the request target is not a path with a well-formed query", true);
      return;
    }
    auto host = req.header("host");
    if (!req.has_header("host")) {
      if (head.version() == 11) {
        refuse(400, cause::bad_host, "bad_host",
               "an HTTP/1.1 request needs a Host field", must_close);
        return;
      }
    } else if (!server_->hosts.allows(host)) {
      refuse(421, cause::bad_host, "misdirected",
             "this server does not answer for host \""
               + std::string{host.substr(0, 256)}
               + "\" (see --http-allowed-hosts)",
             must_close);
      return;
    }
    if (!origin_allows(req.method, req.header("origin"), host, secure_,
                       opts().allowed_origins)) {
      refuse(403, cause::bad_origin, "forbidden_origin",
             "writes from origin \""
               + std::string{req.header("origin").substr(0, 256)}
               + "\" are not allowed (see --http-allowed-origins)",
             must_close);
      return;
    }
    if (!authorize(req, must_close))
      return;
    bool pieces = server_->dispatch.reads_in_pieces && server_->dispatch.pieces
                  && server_->dispatch.reads_in_pieces(req.method, req.path);
    uint64_t limit = pieces ? opts().max_piecewise_body : opts().max_body;
    if (auto length = header_->content_length();
        length && limit != 0 && *length > limit) {
      refuse(413, cause::body_too_large, "body_too_large",
             "the body is larger than " + std::to_string(limit) + " bytes",
             true);
      return;
    }
    request_ = std::move(req);
    if (has_body && lower(request_.header("expect")) == "100-continue") {
      static const std::string continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
      arm(deadline::write, opts().write_timeout);
      asio::async_write(stream_, asio::buffer(continue_line),
                        [self = self(), pieces](error_code ec, size_t) {
                          if (self->closed_)
                            return;
                          self->disarm();
                          if (ec) {
                            self->close();
                            return;
                          }
                          self->read_body(pieces);
                        });
      return;
    }
    read_body(pieces);
  }

  /// Fills `req.granted`; false after refusing with 401.
  bool authorize(request& req, bool must_close) {
    if (!server_->tokens) {
      req.granted = role::admin;
      return true;
    }
    auto token = bearer_token(req.header("authorization"));
    auto granted = server_->tokens->lookup(token);
    bool open = false;
    for (const auto& path : opts().open_paths)
      open = open || path == req.path;
    if (granted) {
      req.granted = *granted;
      return true;
    }
    if (open) {
      // An open path is readable by anyone: /metrics needs `read`, and
      // opening it (--http-open=metrics) means exactly that. Paths match
      // exactly, so this grants nothing elsewhere.
      req.granted = role::read;
      return true;
    }
    response res = json_error(
      401, "unauthorized",
      token.empty() ? "this request needs `Authorization: Bearer <token>`"
                    : "unknown token");
    res.headers.emplace_back("WWW-Authenticate", "Bearer");
    res.close = must_close;
    server_->note(cause::unauthorized, remote_,
                  token.empty() ? "no token" : "unknown token");
    write_response(std::move(res));
    return false;
  }

  void read_body(bool pieces) {
    if (pieces) {
      piece_parser_.emplace(std::move(*header_));
      header_.reset();
      auto limit = opts().max_piecewise_body;
      piece_parser_->body_limit(
        limit == 0 ? std::numeric_limits<uint64_t>::max() : limit);
      body_done_ = piece_parser_->is_done();
      piece_buf_.resize(std::max<size_t>(opts().body_piece, 1));
      set_held(buffer_.capacity() + piece_buf_.size());
      dispatch_pieces();
      return;
    }
    body_.emplace(std::move(*header_));
    header_.reset();
    body_->body_limit(opts().max_body);
    if (body_->is_done()) {
      on_body({}, 0);
      return;
    }
    arm(deadline::body, opts().body_timeout);
    bhttp::async_read(
      stream_, buffer_, *body_,
      [self = self()](error_code ec, size_t n) { self->on_body(ec, n); });
  }

  /// Maps a body read error to its refusal; true when it refused/closed.
  bool refuse_body_error(const error_code& ec) {
    if (ec == asio::error::operation_aborted && timed_out_) {
      refuse(408, cause::timeout, "timeout",
             "the request body did not arrive within "
               + std::to_string(opts().body_timeout.count()) + " ms",
             true);
    } else if (ec == bhttp::error::body_limit) {
      refuse(413, cause::body_too_large, "body_too_large",
             "the body is larger than the limit", true);
    } else if (ec == bhttp::error::end_of_stream || ec == asio::error::eof
               || ec == asio::error::connection_reset
               || ec == asio::error::operation_aborted) {
      close();
    } else {
      refuse(400, cause::bad_framing, "bad_request",
             "malformed body: " + ec.message(), true);
    }
    return true;
  }

  void on_body(error_code ec, size_t consumed) {
    if (closed_)
      return;
    count_read(consumed);
    disarm();
    if (ec) {
      set_held(buffer_.capacity() + body_->get().body().capacity());
      body_.reset();
      refuse_body_error(ec);
      return;
    }
    request_.body = std::move(body_->get().body());
    body_.reset();
    body_done_ = true;
    set_held(buffer_.capacity());
    if (!enter_flight())
      return;
    auto slot = make_slot();
    responder answer = [slot](response res) {
      slot->answer(std::move(res));
    };
    auto& whole = server_->dispatch.whole;
    if (!whole) {
      answer(json_error(404, "not_found", "no handler"));
      return;
    }
    whole(std::move(request_), std::move(answer));
  }

  void dispatch_pieces() {
    if (!enter_flight())
      return;
    auto slot = make_slot();
    responder answer = [slot](response res) {
      slot->answer(std::move(res));
    };
    auto reader = std::make_shared<piece_reader>(self());
    server_->dispatch.pieces(std::move(request_), std::move(reader),
                             std::move(answer));
  }

  /// Takes an in-flight slot, or refuses with 503 (never queues).
  bool enter_flight() {
    auto before = server_->in_flight.fetch_add(1, std::memory_order_relaxed);
    if (before >= opts().max_in_flight) {
      server_->in_flight.fetch_sub(1, std::memory_order_relaxed);
      response res = json_error(503, "overloaded",
                                "the node is answering "
                                  + std::to_string(opts().max_in_flight)
                                  + " requests already; retry shortly");
      res.headers.emplace_back("Retry-After", "1");
      res.close = !body_done_;
      server_->note(cause::overloaded, remote_, "max_in_flight reached");
      write_response(std::move(res));
      return false;
    }
    server_->requests.fetch_add(1, std::memory_order_relaxed);
    awaiting_answer_ = true;
    return true;
  }

  std::shared_ptr<reply_slot> make_slot() {
    auto slot = std::make_shared<reply_slot>();
    slot->server = server_;
    slot->session = shared_from_this();
    return slot;
  }

  void read_piece(const body_reader::got_fn& got) {
    if (closed_ || !piece_parser_) {
      got({}, false, "the connection is closed");
      return;
    }
    if (body_done_) {
      got({}, true, {});
      return;
    }
    auto& body = piece_parser_->get().body();
    body.data = piece_buf_.data();
    body.size = piece_buf_.size();
    body.more = true;
    arm(deadline::body, opts().body_timeout);
    piece_read_pending_ = true;
    bhttp::async_read(
      stream_, buffer_, *piece_parser_,
      [self = self(), got](error_code ec, size_t consumed) {
        self->piece_read_pending_ = false;
        if (self->closed_) {
          got({}, false, "the connection is closed");
          return;
        }
        self->count_read(consumed);
        self->disarm();
        if (ec == bhttp::error::need_buffer)
          ec = {};
        if (ec) {
          std::string why
            = ec == bhttp::error::body_limit
                ? "body_too_large"
                : (ec == asio::error::operation_aborted && self->timed_out_
                     ? "timeout"
                     : "bad_body: " + ec.message());
          if (ec == bhttp::error::body_limit)
            self->server_->note(cause::body_too_large, self->remote_,
                                "piecewise body over the limit");
          else if (self->timed_out_)
            self->server_->note(cause::timeout, self->remote_,
                                "piecewise body deadline passed");
          self->body_failed_ = true;
          got({}, false, why);
          return;
        }
        auto& b = self->piece_parser_->get().body();
        size_t filled = self->piece_buf_.size() - b.size;
        self->body_done_ = self->piece_parser_->is_done();
        got(std::string_view{self->piece_buf_.data(), filled}, self->body_done_,
            {});
      });
  }

  // -- answering --

  /// Counts, logs and answers a refusal.
  void refuse(int status, cause c, std::string_view kind,
              const std::string& message, bool close_after) {
    server_->note(c, remote_, message);
    response res = json_error(status, kind, message);
    res.close = close_after;
    write_response(std::move(res));
  }

  void on_response(response res) {
    if (closed_)
      return;
    awaiting_answer_ = false;
    if (piece_parser_ && (!body_done_ || body_failed_))
      res.close = true; // the rest of the body is still on the wire
    if (res.stream) {
      start_stream(std::move(res));
      return;
    }
    write_response(std::move(res));
  }

  template <class Message>
  void fill_head(Message& msg, const response& res, bool keep_alive) {
    msg.result(static_cast<unsigned>(res.status));
    msg.version(11);
    if (!res.content_type.empty() && !has_crlf(res.content_type))
      msg.set(bhttp::field::content_type, res.content_type);
    for (const auto& [name, value] : res.headers)
      if (!has_crlf(name) && !has_crlf(value) && !name.empty())
        msg.insert(name, value);
    msg.keep_alive(keep_alive);
  }

  void write_response(response res) {
    bool keep_alive = keep_alive_ && !res.close
                      && !server_->stopping.load(std::memory_order_relaxed);
    auto done = [self = self(), keep_alive](error_code ec, size_t) {
      self->on_written(ec, keep_alive);
    };
    arm(deadline::write, opts().write_timeout);
    if (head_request_) {
      auto msg = std::make_shared<bhttp::response<bhttp::empty_body>>();
      fill_head(*msg, res, keep_alive);
      msg->content_length(res.body.size());
      bhttp::async_write(stream_, *msg,
                         [msg, done](error_code ec, size_t n) { done(ec, n); });
      return;
    }
    auto msg = std::make_shared<bhttp::response<bhttp::string_body>>();
    fill_head(*msg, res, keep_alive);
    msg->body() = std::move(res.body);
    msg->prepare_payload();
    bhttp::async_write(stream_, *msg,
                       [msg, done](error_code ec, size_t n) { done(ec, n); });
  }

  void on_written(error_code ec, bool keep_alive) {
    if (closed_)
      return;
    disarm();
    if (ec) {
      close();
      return;
    }
    if (piece_read_pending_) {
      // The API answered while its reader still waits for a piece: that
      // read owns the parser and the socket's read side, so no lingering.
      close();
      return;
    }
    piece_parser_.reset();
    piece_buf_ = std::string{};
    first_request_ = false;
    if (!keep_alive) {
      linger_close();
      return;
    }
    read_next();
  }

  /// Closes after a response that ends the connection. A plain socket is
  /// shut down for sending, then what the client still sends is read and
  /// dropped (bounded in time and bytes) so the kernel does not answer it
  /// with a reset that could destroy our response before the client read
  /// it.
  void linger_close() {
    if constexpr (is_tls) {
      close();
    } else {
      error_code ignored;
      socket().shutdown(tcp::socket::shutdown_send, ignored);
      linger_budget_ = std::max<uint64_t>(opts().max_body, 64 * 1024);
      arm(deadline::linger,
          std::min(opts().header_timeout, std::chrono::milliseconds{2'000}));
      set_held(buffer_.capacity());
      buffer_.consume(buffer_.size());
      drain_linger();
    }
  }

  void drain_linger() {
    socket().async_read_some(
      asio::buffer(drain_), [self = self()](error_code ec, size_t n) {
        if (self->closed_)
          return;
        self->server_->bytes_read.fetch_add(n, std::memory_order_relaxed);
        if (ec || n >= self->linger_budget_) {
          self->close();
          return;
        }
        self->linger_budget_ -= n;
        self->drain_linger();
      });
  }

  // -- streams --

  void start_stream(response res) {
    source_ = std::move(res.stream);
    stream_head_.emplace();
    fill_head(*stream_head_, res, false);
    stream_head_->chunked(true);
    stream_sr_.emplace(*stream_head_);
    arm(deadline::write, opts().write_timeout);
    bhttp::async_write_header(stream_, *stream_sr_,
                              [self = self()](error_code ec, size_t) {
                                if (self->closed_)
                                  return;
                                self->disarm();
                                if (ec) {
                                  self->close();
                                  return;
                                }
                                self->watch_for_close();
                                self->pull_chunk();
                              });
  }

  /// While streaming, a read notices the client leaving (EOF, reset) even
  /// when the source has nothing to send; what the client sends is
  /// dropped.
  void watch_for_close() {
    stream_.async_read_some(
      asio::buffer(drain_), [self = self()](error_code ec, size_t n) {
        if (self->closed_)
          return;
        self->server_->bytes_read.fetch_add(n, std::memory_order_relaxed);
        if (ec) {
          self->close();
          return;
        }
        self->watch_for_close();
      });
  }

  void pull_chunk() {
    auto gen = stream_gen_;
    source_->next([self = self(), gen](std::string chunk, bool last) {
      asio::post(self->exec_,
                 [self, gen, chunk = std::move(chunk), last]() mutable {
                   if (self->closed_ || gen != self->stream_gen_)
                     return;
                   self->on_chunk(std::move(chunk), last);
                 });
    });
  }

  void on_chunk(std::string chunk, bool last) {
    chunk_ = std::move(chunk);
    auto after = [self = self(), last](error_code ec, size_t) {
      if (self->closed_)
        return;
      self->disarm();
      if (ec) {
        self->close();
        return;
      }
      if (last) {
        self->finish_stream();
        return;
      }
      self->pull_chunk();
    };
    if (chunk_.empty()) {
      if (last)
        finish_stream();
      else
        pull_chunk();
      return;
    }
    arm(deadline::write, opts().write_timeout);
    asio::async_write(stream_, bhttp::make_chunk(asio::buffer(chunk_)),
                      std::move(after));
  }

  void finish_stream() {
    arm(deadline::write, opts().write_timeout);
    asio::async_write(stream_, bhttp::make_chunk_last(),
                      [self = self()](error_code, size_t) {
                        if (self->closed_)
                          return;
                        self->close();
                      });
  }

  // -- closing --

  void close() {
    if (closed_)
      return;
    closed_ = true;
    ++timer_gen_;
    timer_.cancel();
    ++stream_gen_;
    if (source_) {
      auto source = std::move(source_);
      source->cancel();
    }
    error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
    // The parsers and the buffer stay: an operation cancelled above may
    // still touch them when it completes. They go with the session.
    set_held(0);
    server_->connections_open.fetch_sub(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> guard{server_->sessions_mutex};
    server_->sessions.erase(this);
  }

  std::shared_ptr<http_server::impl> server_;
  Stream stream_;
  asio::any_io_executor exec_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::string remote_;
  bool secure_;

  bool closed_ = false;
  bool first_request_ = true;
  deadline armed_ = deadline::none;
  bool timed_out_ = false;
  uint64_t timer_gen_ = 0;
  uint64_t held_ = 0;
  uint64_t consumed_ = 0;
  uint64_t reported_read_ = 0;
  uint64_t linger_budget_ = 0;

  std::optional<bhttp::request_parser<bhttp::empty_body>> header_;
  std::optional<bhttp::request_parser<bhttp::string_body>> body_;
  std::optional<bhttp::request_parser<bhttp::buffer_body>> piece_parser_;
  std::string piece_buf_;
  request request_;
  bool head_request_ = false;
  bool keep_alive_ = true;
  bool body_done_ = true;
  bool body_failed_ = false;
  bool awaiting_answer_ = false;
  bool piece_read_pending_ = false;

  std::shared_ptr<chunk_source> source_;
  uint64_t stream_gen_ = 0;
  std::string chunk_;
  std::optional<bhttp::response<bhttp::empty_body>> stream_head_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> stream_sr_;
  std::array<char, 1024> drain_{};
};

// -- accepting ----------------------------------------------------------------

void http_server::impl::do_accept() {
  acceptor->async_accept(asio::make_strand(ioc), [self = shared_from_this()](
                                                   error_code ec,
                                                   tcp::socket socket) {
    if (self->stopping.load())
      return;
    if (ec) {
      if (ec == asio::error::operation_aborted)
        return;
      // Out of descriptors (EMFILE/ENFILE) and the like: the connection
      // waits in the backlog; retry shortly instead of spinning.
      self->connections_refused.fetch_add(1, std::memory_order_relaxed);
      self->refusals.note(cause::connections, "accept failed: " + ec.message(),
                          self->options.log);
      self->accept_retry->expires_after(std::chrono::milliseconds{50});
      self->accept_retry->async_wait([self](error_code wait_ec) {
        if (!wait_ec && !self->stopping.load())
          self->do_accept();
      });
      return;
    }
    self->on_accepted(std::move(socket));
    self->do_accept();
  });
}

void http_server::impl::on_accepted(tcp::socket socket) {
  if (connections_open.load() >= options.max_connections) {
    connections_refused.fetch_add(1, std::memory_order_relaxed);
    refusals.note(cause::connections,
                  std::to_string(options.max_connections)
                    + " connections open: a new one was closed at once",
                  options.log);
    error_code ignored;
    socket.close(ignored);
    return;
  }
  connections_open.fetch_add(1, std::memory_order_relaxed);
  connections_accepted.fetch_add(1, std::memory_order_relaxed);
  error_code ec;
  socket.set_option(tcp::no_delay{true}, ec);
  auto peer = socket.remote_endpoint(ec);
  std::string remote
    = ec ? std::string{"?"}
         : (peer.address().is_v6() ? "[" + peer.address().to_string() + "]"
                                   : peer.address().to_string())
             + ":" + std::to_string(peer.port());
  std::shared_ptr<session_base> conn;
  if (tls) {
    using tls_stream = asio::ssl::stream<tcp::socket>;
    auto s = std::make_shared<session<tls_stream>>(
      shared_from_this(), std::move(remote), true, std::move(socket), *tls);
    conn = s;
    {
      std::lock_guard<std::mutex> guard{sessions_mutex};
      sessions.emplace(conn.get(), conn);
    }
    s->start();
  } else {
    auto s = std::make_shared<session<tcp::socket>>(
      shared_from_this(), std::move(remote), false, std::move(socket));
    conn = s;
    {
      std::lock_guard<std::mutex> guard{sessions_mutex};
      sessions.emplace(conn.get(), conn);
    }
    s->start();
  }
}

// -- the server ---------------------------------------------------------------

http_server::http_server(server_options options, http_dispatch dispatch)
    : impl_(std::make_shared<impl>(std::move(options), std::move(dispatch))) {}

http_server::~http_server() {
  stop();
}

namespace {

/// Raises the soft descriptor limit to the hard one: each connection is a
/// descriptor, and the default soft limit (1,024) is far below
/// max_connections.
void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0
      && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

} // namespace

uint16_t http_server::start(const std::string& host, uint16_t port,
                            std::string& error) {
  auto& s = *impl_;
  std::lock_guard<std::mutex> guard{s.lifecycle_mutex};
  if (s.started) {
    error = "the HTTP server was started already";
    return 0;
  }
  auto& opts = s.options;
  if (opts.threads == 0)
    opts.threads = 1;
  if (!opts.token_file.empty()) {
    token_table tokens;
    if (!tokens.load_file(opts.token_file, error))
      return 0;
    s.tokens = std::move(tokens);
  }
  if (!opts.tls_cert_file.empty() || !opts.tls_key_file.empty()) {
    tls_identity_options tls_opts;
    tls_opts.cert_file = opts.tls_cert_file;
    tls_opts.key_file = opts.tls_key_file;
    tls_opts.tls13_only = opts.tls13_only;
    tls_opts.cert_flag = "--http-cert";
    tls_opts.key_flag = "--http-key";
    tls_identity identity;
    if (!identity.load(tls_opts, error))
      return 0;
    SSL_CTX* native = identity.make_server_context(error);
    if (!native)
      return 0;
    // asio::ssl::context takes ownership of the handle.
    s.tls = std::make_unique<asio::ssl::context>(native);
  }
  error_code ec;
  auto address
    = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) {
    error = "--http: \"" + host + "\" is not an IP address: " + ec.message();
    return 0;
  }
  s.hosts.add("localhost");
  s.hosts.add(host);
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) == 0 && name[0] != '\0')
    s.hosts.add(name);
  for (const auto& allowed : opts.allowed_hosts)
    s.hosts.add(allowed);
  raise_fd_limit();
  s.acceptor.emplace(asio::make_strand(s.ioc));
  tcp::endpoint endpoint{address, port};
  s.acceptor->open(endpoint.protocol(), ec);
  if (!ec)
    s.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec)
    s.acceptor->bind(endpoint, ec);
  if (!ec)
    s.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = "--http: cannot listen on " + host + ":" + std::to_string(port)
            + ": " + ec.message();
    s.acceptor.reset();
    return 0;
  }
  auto bound = s.acceptor->local_endpoint(ec).port();
  s.accept_retry.emplace(s.acceptor->get_executor());
  s.work.emplace(s.ioc.get_executor());
  s.started = true;
  s.do_accept();
  for (size_t i = 0; i < opts.threads; ++i)
    s.threads.emplace_back([&s] {
      for (;;) {
        try {
          s.ioc.run();
          return;
        } catch (const std::exception& e) {
          // A handler threw (the API's bug): log it, keep serving.
          s.log(std::string{"handler threw: "} + e.what());
        }
      }
    });
  return bound;
}

void http_server::stop() {
  auto& s = *impl_;
  std::lock_guard<std::mutex> guard{s.lifecycle_mutex};
  if (!s.started || s.stopped)
    return;
  s.stopped = true;
  s.stopping = true;
  asio::post(s.acceptor->get_executor(), [keep = impl_] {
    error_code ignored;
    keep->acceptor->close(ignored);
    keep->accept_retry->cancel();
  });
  std::vector<std::shared_ptr<session_base>> open;
  {
    std::lock_guard<std::mutex> sessions_guard{s.sessions_mutex};
    for (auto& [raw, weak] : s.sessions)
      if (auto conn = weak.lock())
        open.push_back(std::move(conn));
  }
  for (auto& conn : open)
    conn->shutdown_now();
  open.clear();
  // Closing is asynchronous (each connection on its strand): wait for it,
  // boundedly, before stopping the threads.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  while (s.connections_open.load() > 0
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  s.work.reset();
  s.ioc.stop();
  for (auto& thread : s.threads)
    thread.join();
  s.threads.clear();
  // Handlers still queued hold connections, which hold this state:
  // destroy them now rather than leak the cycle.
  s.ioc.restart();
  s.ioc.poll();
}

server_stats http_server::stats() const {
  auto& s = *impl_;
  auto get = [](const std::atomic<uint64_t>& v) {
    return v.load(std::memory_order_relaxed);
  };
  auto refused = [&s](cause c) {
    return s.refused[static_cast<size_t>(c)].load(std::memory_order_relaxed);
  };
  server_stats out;
  out.connections_open = get(s.connections_open);
  out.connections_accepted = get(s.connections_accepted);
  out.connections_refused = get(s.connections_refused);
  out.tls_handshake_failures = get(s.tls_handshake_failures);
  out.requests = get(s.requests);
  out.in_flight = get(s.in_flight);
  out.header_too_large = refused(cause::header_too_large);
  out.body_too_large = refused(cause::body_too_large);
  out.url_too_long = refused(cause::url_too_long);
  out.bad_framing = refused(cause::bad_framing);
  out.timeout = refused(cause::timeout);
  out.overloaded = refused(cause::overloaded);
  out.unauthorized = refused(cause::unauthorized);
  out.forbidden = refused(cause::forbidden);
  out.bad_host = refused(cause::bad_host);
  out.bad_origin = refused(cause::bad_origin);
  out.request_bytes_held = get(s.request_bytes_held);
  out.bytes_read = get(s.bytes_read);
  return out;
}

void http_server::note_forbidden(const std::string& remote,
                                 const std::string& text) {
  impl_->note(cause::forbidden, remote, text);
}

bool http_server::secure() const {
  return impl_->tls != nullptr;
}

} // namespace syncmesh::http
