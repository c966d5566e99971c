#pragma once

// Runs syncmesh programs as child processes for tests: start, read the ready
// line with a deadline, signal, and wait with a deadline.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace syncmesh::test {

/// A child process with its stdout on a pipe and stderr in a file.
class child_process {
public:
  /// Starts `argv[0]` with `argv`; stderr goes to `stderr_path`.
  child_process(const std::vector<std::string>& argv,
                const std::string& stderr_path) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    auto rc
      = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    out_ = out[0];
    if (rc != 0)
      throw std::runtime_error("cannot start " + argv[0]);
  }

  ~child_process() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (out_ >= 0)
      ::close(out_);
  }

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// Reads stdout until a full line arrives or `limit` passes.
  std::string read_line(std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        auto line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return {};
      pollfd pfd{out_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0)
        return {};
      char buf[512];
      auto n = ::read(out_, buf, sizeof(buf));
      if (n <= 0)
        return {};
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }

  /// Sends a signal.
  void signal(int sig) { ::kill(pid_, sig); }

  /// The child's process ID (for /proc readings).
  pid_t pid() const noexcept { return pid_; }

  /// Waits for the exit for at most `limit`; returns the exit code, or -1
  /// when it did not exit in time (or died from a signal).
  int wait(std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      auto rc = ::waitpid(pid_, &status, WNOHANG);
      if (rc == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      pollfd none{-1, 0, 0};
      ::poll(&none, 0, 5); // a short pause between polls of waitpid
    }
    return -1;
  }

private:
  pid_t pid_ = -1;
  int out_ = -1;
  bool exited_ = false;
  std::string buffer_;
};

} // namespace syncmesh::test
