// The ceiling of this machine for the HTTP benchmark (issue 14): a keep-alive
// HTTP/1.1 server on Boost.Beast that does nothing per request. GET answers
// 200 with a fixed 64-byte body, anything else (PUT, POST) answers 204 once
// its body has been read. One io_context thread, like a node's front would
// have, so tests/bench/http_bench.sh can print syncmesh's and etcd's rates as
// a fraction of what the same wrk settings get out of an empty server in the
// same run. Only Boost headers: no CAF, no syncmesh code.
//
// Usage: syncmesh-http-ceiling [PORT] (0 or nothing: the OS picks). Prints
// "http-ceiling ready port=N" on stdout once it listens; runs until killed.

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

/// The GET answer: 64 bytes, the value size of the benchmark.
const std::string fixed_body(64, 'x');

/// One keep-alive connection: read a request, answer it, repeat until the
/// client closes or sends `Connection: close`.
class session : public std::enable_shared_from_this<session> {
public:
  /// Takes over an accepted socket.
  explicit session(tcp::socket sock) : stream_(std::move(sock)) {}

  /// Starts the read/answer loop.
  void run() { read_next(); }

private:
  void read_next() {
    request_ = {};
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (!ec)
                         self->answer();
                     });
  }

  void answer() {
    response_ = {};
    response_.version(request_.version());
    response_.keep_alive(request_.keep_alive());
    if (request_.method() == http::verb::get) {
      response_.result(http::status::ok);
      response_.set(http::field::content_type, "application/octet-stream");
      response_.body() = fixed_body;
    } else {
      response_.result(http::status::no_content);
    }
    response_.prepare_payload();
    http::async_write(
      stream_, response_,
      [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec || !self->response_.keep_alive())
          return; // the socket closes with the session
        self->read_next();
      });
  }

  tcp::socket stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

/// Accepts connections forever, each into its own session.
void accept_next(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](beast::error_code ec, tcp::socket sock) {
    if (!ec) {
      // Without it every answer waits out the client's delayed ACK.
      sock.set_option(tcp::no_delay{true});
      std::make_shared<session>(std::move(sock))->run();
    }
    accept_next(acceptor);
  });
}

} // namespace

int main(int argc, char** argv) {
  auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 0);
  asio::io_context io{1};
  tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), port}};
  std::cout << "http-ceiling ready port=" << acceptor.local_endpoint().port()
            << std::endl;
  accept_next(acceptor);
  io.run();
}
