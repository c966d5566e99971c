// Nodes inside the bench process and the asynchronous facade writer.

#include <deque>
#include <future>
#include <mutex>
#include <stdexcept>

#include <caf/all.hpp>

#include "bench/bench.hpp"
#include "messages/value_proto.hpp"
#include "support/caf_setup.hpp"
#include "syncmesh/scheduler_settings.hpp"
#include "syncmesh/sync_socket.hpp"

namespace syncmesh::bench {

namespace {

using namespace std::chrono_literals;

/// The text of an update event's value ("" for other kinds: the bench only
/// writes text).
std::string_view event_text(const pb::Event& ev) {
  const auto& v = ev.update().value();
  return v.kind_case() == pb::Value::kText ? std::string_view{v.text()}
                                           : std::string_view{};
}

/// Receives a node's events on its own thread and passes matching updates
/// on; answers `get_atom` once everything before it was handled, so
/// unwatch() can wait out events already queued.
caf::behavior watcher(caf::event_based_actor*, std::string prefix,
                      arrival_fn fn) {
  return {
    [=](const pb::Event& ev) {
      if (!ev.has_update())
        return;
      auto at = now_us();
      const auto& key = ev.update().key();
      if (key.compare(0, prefix.size(), prefix) == 0)
        fn(key, event_text(ev), at);
    },
    [](caf::get_atom) { return true; },
  };
}

/// A node in the bench's actor system, through its sync_socket.
class inproc_node : public bench_node {
public:
  inproc_node(caf::actor_system& sys, std::string name, const config& cfg)
      : sys_(sys), name_(std::move(name)), sock_(sys, cfg) {}

  ~inproc_node() override { unwatch(); }

  std::string label() const override { return name_ + " (bench process)"; }

  bool in_process() const override { return true; }

  std::string address() const override {
    return "127.0.0.1:" + std::to_string(sock_.port());
  }

  uint64_t keys() override { return sock_.size(); }

  node_counters counters() override {
    auto s = sock_.stats();
    node_counters c;
    c.keys = s.store().live_keys();
    c.deliveries = s.router().deliveries();
    for (const auto& [kind, n] : s.router().traffic().bytes_out())
      c.wire_bytes_out += n;
    c.flood_frames = s.router().frames_out();
    c.flood_bytes = s.router().bytes_out();
    c.ae_repaired = s.store().ae_entries_repaired();
    c.peers = s.router().peers();
    const auto& d = s.store().storage();
    c.storage_writes = d.writes();
    c.storage_syncs = d.syncs();
    c.storage_bytes = d.bytes_written();
    c.engine_written = d.engine_wal_bytes() + d.engine_flush_bytes()
                       + d.engine_compaction_bytes();
    c.engine_memory
      = d.memtable_bytes() + d.block_cache_bytes() + d.table_reader_bytes();
    c.engine_stall_us = d.engine_stall_us();
    c.sync_us = d.sync_latency().sum_us();
    return c;
  }

  node_usage usage() override { return process_usage(0); }

  void set(const std::string& key, const std::string& text) override {
    sock_.set(key, value{text});
  }

  bool get(const std::string& key, std::string& text) override {
    auto v = sock_.get(key);
    if (!v)
      return false;
    text = v->is_text() ? v->as_text() : std::string{};
    return true;
  }

  void watch(const std::string& prefix, arrival_fn fn) override {
    unwatch();
    // Detached: arrivals are stamped on a thread of their own, not behind
    // the scheduler's queue.
    watcher_ = sys_.spawn<caf::detached>(watcher, prefix, std::move(fn));
    caf::scoped_actor self{sys_};
    self->request(sock_.handle(), 10s, subscribe_atom::value, watcher_)
      .receive([](bool) {},
               [](caf::error&) {
                 throw std::runtime_error("cannot subscribe to events");
               });
  }

  void unwatch() override {
    if (!watcher_)
      return;
    caf::scoped_actor self{sys_};
    self->request(sock_.handle(), 10s, unsubscribe_atom::value, watcher_)
      .receive([](bool) {}, [](caf::error&) {});
    self->request(watcher_, 10s, caf::get_atom::value)
      .receive([](bool) {}, [](caf::error&) {});
    caf::anon_send_exit(watcher_, caf::exit_reason::user_shutdown);
    watcher_ = nullptr;
  }

  std::unique_ptr<blocking_writer> writer() override {
    // The socket is safe to call from any thread; each call waits for the
    // node's reply.
    struct socket_writer : blocking_writer {
      explicit socket_writer(sync_socket& s) : sock(s) {}
      void set(const std::string& key, const std::string& text) override {
        sock.set(key, value{text});
      }
      sync_socket& sock;
    };
    return std::make_unique<socket_writer>(sock_);
  }

  /// The node's facade.
  facade_actor handle() const { return sock_.handle(); }

  /// The socket itself.
  sync_socket& socket() { return sock_; }

private:
  caf::actor_system& sys_;
  std::string name_;
  sync_socket sock_;
  caf::actor watcher_;
};

inproc_node& as_inproc(bench_node& node) {
  auto* p = dynamic_cast<inproc_node*>(&node);
  if (p == nullptr)
    throw std::logic_error(node.label() + " is not in the bench process");
  return *p;
}

/// Sends SetRequests from a scoped actor; replies come back to its mailbox.
class facade_writer : public async_writer {
public:
  facade_writer(caf::actor_system& sys, facade_actor facade, size_t window)
      : self_(sys), facade_(std::move(facade)), window_(window) {}

  void write(std::string key, std::string text) override {
    pb::SetRequest req;
    req.set_key(std::move(key));
    req.mutable_value()->set_text(std::move(text));
    self_->send(facade_, std::move(req));
    if (latencies_ != nullptr)
      sent_.push_back(now_us());
    ++pending_;
    while (pending_ >= window_)
      take_one(caf::infinite);
  }

  void poll() override {
    while (pending_ > 0 && take_one(0s)) {
      // take every reply already here
    }
  }

  bool drain(std::chrono::milliseconds limit) override {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (pending_ > 0) {
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= 0s
          || !take_one(
            std::chrono::duration_cast<std::chrono::milliseconds>(left)))
        return pending_ == 0;
    }
    return true;
  }

  uint64_t acked() const override { return acked_; }

  uint64_t failed() const override { return failed_; }

  void keep_latencies(std::vector<int64_t>* out) override {
    latencies_ = out;
    sent_.clear();
  }

private:
  /// A reply came: its latency, when kept, against the oldest write sent
  /// since keep_latencies (earlier writes' replies are not matched).
  void replied() {
    --pending_;
    if (latencies_ == nullptr || sent_.empty() || pending_ + 1 > sent_.size())
      return;
    latencies_->push_back(now_us() - sent_.front());
    sent_.pop_front();
  }

  /// Takes one reply, waiting at most `limit`; false when none came.
  template <class Duration>
  bool take_one(Duration limit) {
    bool got = false;
    self_->receive(
      [&](const pb::WriteAck&) {
        ++acked_;
        replied();
        got = true;
      },
      [&](caf::error&) {
        ++failed_;
        replied();
        got = true;
      },
      caf::after(limit) >> [] {});
    return got;
  }

  caf::scoped_actor self_;
  facade_actor facade_;
  size_t window_;
  size_t pending_ = 0;
  uint64_t acked_ = 0;
  uint64_t failed_ = 0;
  std::vector<int64_t>* latencies_ = nullptr;
  /// Send times of the writes whose replies have not come, oldest first.
  std::deque<int64_t> sent_;
};

/// Writes through sync_socket::set_async: what an application pipelining
/// writes calls (the socket combines the writes queued behind the batch in
/// flight into one request).
class socket_async_writer : public async_writer {
public:
  socket_async_writer(sync_socket& sock, size_t window)
      : sock_(sock), window_(window) {}

  void write(std::string key, std::string text) override {
    in_flight_.push_back(
      pending{sock_.set_async(std::move(key), value{std::move(text)}),
              latencies_ != nullptr ? now_us() : 0});
    while (in_flight_.size() >= window_)
      take_front();
  }

  void poll() override {
    while (!in_flight_.empty()
           && in_flight_.front().done.wait_for(0s) == std::future_status::ready)
      take_front();
  }

  bool drain(std::chrono::milliseconds limit) override {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!in_flight_.empty()) {
      if (in_flight_.front().done.wait_until(deadline)
          != std::future_status::ready)
        return false;
      take_front();
    }
    return true;
  }

  uint64_t acked() const override { return acked_; }

  uint64_t failed() const override { return failed_; }

  void keep_latencies(std::vector<int64_t>* out) override { latencies_ = out; }

private:
  struct pending {
    std::future<void> done;
    /// When it was issued (0: before keep_latencies).
    int64_t sent_us;
  };

  /// Waits for the oldest write; its latency, when kept.
  void take_front() {
    auto& front = in_flight_.front();
    try {
      front.done.get();
      ++acked_;
    } catch (const std::exception&) {
      ++failed_;
    }
    if (latencies_ != nullptr && front.sent_us != 0)
      latencies_->push_back(now_us() - front.sent_us);
    in_flight_.pop_front();
  }

  sync_socket& sock_;
  size_t window_;
  std::deque<pending> in_flight_;
  uint64_t acked_ = 0;
  uint64_t failed_ = 0;
  std::vector<int64_t>* latencies_ = nullptr;
};

} // namespace

/// The actor system (two scheduler threads), with the scheduler settings
/// syncmesh-node uses, as an application that follows README would.
struct bench_runtime::impl {
  struct config : test::threaded_config {
    config() { apply_node_scheduler_settings(*this); }
  };
  config cfg;
  caf::actor_system sys{cfg};
};

bench_runtime::bench_runtime() : impl_(std::make_unique<impl>()) {}

bench_runtime::~bench_runtime() = default;

std::unique_ptr<bench_node> bench_runtime::spawn(const std::string& name,
                                                 const node_options& opts) {
  config cfg;
  cfg.leasing = opts.leasing;
  cfg.max_peers = opts.max_peers;
  cfg.expected_keys = opts.expected_keys;
  // One repair round when a link comes up, no periodic rounds that would
  // add digest work to the throughput figures (daemons run the same way).
  cfg.anti_entropy_interval = std::chrono::hours(1);
  cfg.heartbeat_interval = heartbeat_interval;
  cfg.tls.cert_file = opts.tls_cert;
  cfg.tls.key_file = opts.tls_key;
  cfg.tls.ca_file = opts.tls_ca;
  cfg.data_dir = opts.data_dir;
  if (opts.durability == "always")
    cfg.durability = durability_mode::always;
  else if (opts.durability == "none")
    cfg.durability = durability_mode::none;
  return std::make_unique<inproc_node>(impl_->sys, name, cfg);
}

std::unique_ptr<async_writer>
bench_runtime::writer(bench_node& node, size_t window, bool through_socket) {
  if (window == 0)
    window = 1;
  if (through_socket)
    return std::make_unique<socket_async_writer>(as_inproc(node).socket(),
                                                 window);
  return std::make_unique<facade_writer>(impl_->sys, as_inproc(node).handle(),
                                         window);
}

void bench_runtime::connect(bench_node& from, bench_node& to) {
  auto addr = to.address();
  auto colon = addr.rfind(':');
  as_inproc(from).socket().connect(
    addr.substr(0, colon),
    static_cast<uint16_t>(std::stoi(addr.substr(colon + 1))));
}

void bench_runtime::disconnect_all(bench_node& from) {
  auto& sock = as_inproc(from).socket();
  for (const auto& p : sock.peers())
    sock.disconnect(p.id);
}

} // namespace syncmesh::bench
