#pragma once

// A raw TCP client for tests that play a misbehaving peer.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace syncmesh::test {

/// A port nothing listens on right now (bound once by the OS, then freed).
inline uint16_t unused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// A blocking TCP connection to 127.0.0.1:port.
class raw_peer {
public:
  /// Connects; throws std::runtime_error on failure.
  explicit raw_peer(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      throw std::runtime_error("raw_peer: connect failed");
  }

  ~raw_peer() { close(); }

  raw_peer(const raw_peer&) = delete;
  raw_peer& operator=(const raw_peer&) = delete;

  /// Sends all of `bytes` (ignores errors: the node may have closed).
  void send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      auto n
        = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0)
        return;
      off += static_cast<size_t>(n);
    }
  }

  /// Reads until the node closes the connection or `limit` passes; returns
  /// what arrived and sets `closed`.
  std::string read_until_closed(std::chrono::milliseconds limit, bool& closed) {
    std::string result;
    closed = false;
    auto deadline = std::chrono::steady_clock::now() + limit;
    char buf[4096];
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return result;
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0)
        return result;
      auto n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        closed = true;
        return result;
      }
      result.append(buf, static_cast<size_t>(n));
    }
  }

  /// Waits up to `limit` for bytes and returns what one read got (empty
  /// on timeout); sets `closed` when the node closed the connection.
  std::string read_some(std::chrono::milliseconds limit, bool& closed) {
    closed = false;
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(limit.count())) <= 0)
      return {};
    char buf[16384];
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      closed = true;
      return {};
    }
    return std::string(buf, static_cast<size_t>(n));
  }

  /// Closes the connection.
  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

private:
  int fd_ = -1;
};

} // namespace syncmesh::test
