// `syncmesh backup` and `syncmesh restore` against real syncmesh-node
// processes on 127.0.0.1 (issue 15): a backup taken under concurrent writes
// holds every write acknowledged before it started; a node started from the
// restored dir serves them as the same node and keeps writing its own keys;
// --new-id makes another member; damaged files and non-empty dirs are
// refused with one line and exit code 2; a node without a data dir says
// why it cannot; a client that leaves mid-stream leaves no copy behind.
// Part of daemon_tests (its module is defined in daemon_tests.cpp).

#include <boost/test/unit_test.hpp>

#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "messages/backup_file.hpp"
#include "messages/version.hpp"
#include "support/daemon_process.hpp"
#include "support/eventually.hpp"
#include "support/scratch_dir.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using syncmesh::test::eventually;
using syncmesh::test::scratch_dir;
using syncmesh::test::slurp;
namespace fs = std::filesystem;

namespace {

/// A syncmesh-node with its API on 127.0.0.1 (port from the OS) and quick
/// timers, plus `extra`.
struct backup_node : syncmesh::test::daemon_process {
  backup_node(const std::string& dir, const std::vector<std::string>& extra)
      : daemon_process(dir,
                       syncmesh::test::quick_daemon_args(
                         {"--http=127.0.0.1:0", "--log-level=info"}, extra)) {}

  /// SIGTERM and the exit code (5 s at most).
  int stop() {
    proc->signal(SIGTERM);
    return proc->wait(5s);
  }
};

/// What one run of the CLI did.
struct cli_run {
  int code = -1;
  std::string out;
  std::string err;
};

/// Runs `syncmesh ARGS` (a shell word list) with output to files in `dir`.
cli_run run_cli(const std::string& args, const std::string& dir) {
  static int counter = 0;
  auto base = dir + "/cli" + std::to_string(counter++);
  auto cmd = std::string{SYNCMESH_CLI_BIN} + " " + args + " > " + base
             + ".out 2> " + base + ".err";
  auto rc = std::system(cmd.c_str());
  cli_run r;
  r.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = slurp(base + ".out");
  r.err = slurp(base + ".err");
  return r;
}

/// The number of lines of `text`.
size_t lines_of(const std::string& text) {
  size_t n = 0;
  for (char c : text)
    n += c == '\n';
  return n;
}

/// The keys in the backup file at `path` (read whole, so checked whole).
std::set<std::string> keys_in(const std::string& path,
                              syncmesh::backup_header* header = nullptr) {
  std::ifstream in{path, std::ios::binary};
  syncmesh::backup_reader reader{in};
  if (header != nullptr)
    *header = reader.header();
  std::set<std::string> keys;
  std::string key;
  std::string record;
  while (reader.next(key, record))
    keys.insert(key);
  return keys;
}

/// The checkpoints left in a data dir.
size_t checkpoints_in(const std::string& data_dir) {
  std::error_code ec;
  auto parent = data_dir + "/checkpoints";
  if (!fs::exists(parent, ec))
    return 0;
  size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator{parent, ec})
    ++n;
  return n;
}

/// Writes keys "w<t>-<i>" from `threads` threads until `stop`; every key
/// whose PUT was acknowledged is added to `acked` (under `mtx`).
struct writers {
  std::atomic<bool> stop{false};
  std::mutex mtx;
  std::set<std::string> acked;
  std::vector<std::thread> threads;

  writers(const backup_node& node, int n) {
    for (int t = 0; t < n; ++t)
      threads.emplace_back([this, &node, t] {
        auto cli = node.client();
        for (int i = 0; !stop.load() && i < 1'000'000; ++i) {
          auto key = "w" + std::to_string(t) + "-" + std::to_string(i);
          auto res = cli.Put("/v1/kv/" + key, "value " + key, "text/plain");
          if (res && res->status == 204) {
            std::lock_guard<std::mutex> guard{mtx};
            acked.insert(key);
          }
        }
      });
  }

  /// The keys acknowledged so far.
  std::set<std::string> snapshot() {
    std::lock_guard<std::mutex> guard{mtx};
    return acked;
  }

  void join() {
    stop = true;
    for (auto& t : threads)
      t.join();
    threads.clear();
  }

  ~writers() {
    if (!threads.empty())
      join();
  }
};

/// A small backup file of a node with a data dir (node ID in `id`).
std::string small_backup(const std::string& dir, std::string& id) {
  auto data = dir + "/small-data";
  backup_node node{dir, {"--data-dir=" + data}};
  id = node.id;
  auto cli = node.client();
  for (int i = 0; i < 20; ++i)
    BOOST_REQUIRE_EQUAL(
      cli.Put("/v1/kv/k" + std::to_string(i), "v", "text/plain")->status, 204);
  auto file = dir + "/small.backup";
  auto r = run_cli("--node=" + node.http + " backup " + file, dir);
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  return file;
}

/// A copy of the backup file `from` at `to` whose header says it was made
/// at `created_us`.
void redate(const std::string& from, const std::string& to,
            uint64_t created_us) {
  std::ifstream in{from, std::ios::binary};
  syncmesh::backup_reader reader{in};
  auto header = reader.header();
  header.created_us = created_us;
  syncmesh::backup_writer writer{header};
  std::string key;
  std::string record;
  while (reader.next(key, record))
    writer.add(key, record);
  writer.finish();
  std::ofstream{to, std::ios::binary} << writer.take();
}

} // namespace

BOOST_AUTO_TEST_SUITE(backup_and_restore)

BOOST_AUTO_TEST_CASE(a_backup_under_writes_restores_as_the_same_node) {
  scratch_dir dir;
  auto data = dir.path + "/data";
  auto file = dir.path + "/node.backup";
  std::set<std::string> before;
  std::string id;
  {
    backup_node node{dir.path, {"--data-dir=" + data}};
    id = node.id;
    writers w{node, 3};
    BOOST_REQUIRE(eventually([&] { return w.snapshot().size() >= 300; }));
    // Every write acknowledged before the backup starts must be in it;
    // the writers go on during the backup.
    before = w.snapshot();
    auto r = run_cli("--node=" + node.http + " backup " + file, dir.path);
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    w.join();
    BOOST_TEST(r.out.find("backed up ") == 0, r.out);
    BOOST_TEST(r.out.find(id) != std::string::npos, r.out);
    BOOST_TEST(!fs::exists(file + ".tmp"));
    syncmesh::backup_header header;
    auto keys = keys_in(file, &header);
    BOOST_TEST(syncmesh::to_hex(header.node_id) == id);
    size_t missing = 0;
    for (const auto& k : before)
      missing += keys.count(k) == 0;
    BOOST_TEST(missing == 0u, missing << " of " << before.size()
                                      << " acknowledged writes are missing");
    BOOST_TEST(r.out.find(std::to_string(keys.size()) + " keys")
                 != std::string::npos,
               r.out);
    // The copy it streamed from is gone once the stream ended.
    BOOST_TEST(eventually([&] { return checkpoints_in(data) == 0; }));
    BOOST_TEST(node.stop() == 0);
  }
  // The lost disk replaced: a new dir from the backup.
  auto restored = dir.path + "/restored";
  auto restore_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  auto r = run_cli("restore " + file + " --data-dir=" + restored, dir.path);
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  BOOST_TEST(r.out.find("as node " + id + " (the backed-up ID)")
               != std::string::npos,
             r.out);
  // Restoring again into it is refused: it holds data now.
  auto again = run_cli("restore " + file + " --data-dir=" + restored, dir.path);
  BOOST_TEST(again.code == 2);
  BOOST_TEST(lines_of(again.err) == 1u, again.err);
  BOOST_TEST(again.err.find("already holds data") != std::string::npos,
             again.err);
  // A copy left by a node that stopped mid-backup goes at the next start.
  fs::create_directories(restored + "/checkpoints/1-0");
  std::ofstream{restored + "/checkpoints/1-0/MANIFEST"} << "stale";
  backup_node back{dir.path, {"--data-dir=" + restored}};
  BOOST_TEST(back.id == id);
  BOOST_TEST(checkpoints_in(restored) == 0u);
  auto cli = back.client();
  for (const auto& k : before) {
    auto got = cli.Get("/v1/kv/" + k);
    BOOST_REQUIRE_MESSAGE(got && got->status == 200, "key " << k);
    BOOST_REQUIRE_EQUAL(got->body, "value " + k);
    BOOST_REQUIRE_EQUAL(got->get_header_value("X-Syncmesh-Owner"), id);
  }
  // Its own keys stay its own: it renews their leases.
  auto key = *before.begin();
  BOOST_TEST(cli.Put("/v1/kv/" + key, "renewed", "text/plain")->status == 204);
  auto renewed = cli.Get("/v1/kv/" + key);
  BOOST_REQUIRE(renewed);
  BOOST_TEST(renewed->body == "renewed");
  // Its clock started 2 x 500 ms + 1 s past the restore: it cannot stamp
  // a version the lost node may have published after the backup.
  BOOST_TEST(std::stoll(renewed->get_header_value("X-Syncmesh-Time"))
             >= restore_ms + 2000);
  BOOST_TEST(back.stop() == 0);
}

BOOST_AUTO_TEST_CASE(a_new_id_makes_another_member_without_the_leases) {
  scratch_dir dir;
  std::string id;
  auto file = small_backup(dir.path, id);
  auto restored = dir.path + "/restored";
  auto r = run_cli("restore " + file + " --new-id --max-clock-offset=250ms "
                     + "--data-dir=" + restored,
                   dir.path);
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  BOOST_TEST(r.out.find("(a new ID)") != std::string::npos, r.out);
  backup_node node{dir.path, {"--data-dir=" + restored}};
  BOOST_TEST(node.id != id);
  auto cli = node.client();
  auto got = cli.Get("/v1/kv/k3");
  BOOST_REQUIRE(got);
  BOOST_TEST(got->status == 200);
  BOOST_TEST(got->get_header_value("X-Syncmesh-Owner") == id);
  // The leases are the old ID's: another node may not take them early.
  BOOST_TEST(cli.Put("/v1/kv/k3", "mine", "text/plain")->status == 409);
  BOOST_TEST(cli.Put("/v1/kv/fresh", "mine", "text/plain")->status == 204);
}

BOOST_AUTO_TEST_CASE(a_backup_older_than_the_horizon_rejoins_empty) {
  scratch_dir dir;
  std::string id;
  auto file = small_backup(dir.path, id);
  // Taken two days ago: its peers may have purged deletes it never saw.
  auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  auto old = dir.path + "/old.backup";
  redate(file, old, static_cast<uint64_t>(now_us) - 48ull * 3600 * 1'000'000);
  auto stale = dir.path + "/stale";
  BOOST_REQUIRE_EQUAL(
    run_cli("restore " + old + " --data-dir=" + stale, dir.path).code, 0);
  {
    backup_node node{dir.path, {"--data-dir=" + stale}};
    BOOST_TEST(node.id == id);
    BOOST_TEST(node.client().Get("/v1/kv/k3")->status == 404);
    BOOST_TEST(slurp(node.log).find("rejoining empty") != std::string::npos);
  }
  // The whole cluster restored after a long outage: told to keep it.
  auto kept = dir.path + "/kept";
  BOOST_REQUIRE_EQUAL(
    run_cli("restore " + old + " --data-dir=" + kept, dir.path).code, 0);
  backup_node node{dir.path, {"--data-dir=" + kept, "--keep-stale-data"}};
  BOOST_TEST(node.client().Get("/v1/kv/k3")->status == 200);
}

BOOST_AUTO_TEST_CASE(damaged_files_are_refused_with_one_line_and_exit_2) {
  scratch_dir dir;
  std::string id;
  auto file = small_backup(dir.path, id);
  auto bytes = slurp(file);
  auto refused = [&](const std::string& content, const std::string& why) {
    auto bad = dir.path + "/bad.backup";
    std::ofstream{bad, std::ios::binary | std::ios::trunc} << content;
    auto target = dir.path + "/target";
    auto r = run_cli("restore " + bad + " --data-dir=" + target, dir.path);
    BOOST_TEST(r.code == 2, why << ": " << r.err);
    BOOST_TEST(lines_of(r.err) == 1u, r.err);
    BOOST_TEST(r.err.find(why) != std::string::npos, r.err);
    BOOST_TEST(!fs::exists(target));
  };
  refused(bytes.substr(0, bytes.size() - 9), "truncated");
  auto flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x20;
  refused(flipped, "corrupted");
  auto newer = bytes;
  newer[8] = 7; // the format version, little-endian
  refused(newer, "backup format version 7");
  refused("not a backup\n", "not a syncmesh backup");
  // No --data-dir: a usage error, also exit 2.
  auto r = run_cli("restore " + file, dir.path);
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find("--data-dir") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(a_node_without_a_data_dir_says_a_backup_needs_one) {
  scratch_dir dir;
  backup_node node{dir.path, {}};
  auto file = dir.path + "/x.backup";
  auto r = run_cli("--node=" + node.http + " backup " + file, dir.path);
  BOOST_TEST(r.code == 1);
  BOOST_TEST(lines_of(r.err) == 1u, r.err);
  BOOST_TEST(r.err.find("needs a data dir") != std::string::npos, r.err);
  BOOST_TEST(!fs::exists(file));
  BOOST_TEST(!fs::exists(file + ".tmp"));
}

BOOST_AUTO_TEST_CASE(a_backup_needs_the_admin_role) {
  scratch_dir dir;
  auto tokens = dir.path + "/tokens";
  std::ofstream{tokens} << "write writer-token-0123456789\n"
                        << "admin admin-token-01234567890\n";
  fs::permissions(tokens, fs::perms::owner_read | fs::perms::owner_write);
  backup_node node{
    dir.path,
    {"--data-dir=" + dir.path + "/data", "--http-token-file=" + tokens}};
  auto file = dir.path + "/x.backup";
  auto r = run_cli("--node=" + node.http
                     + " --token=writer-token-0123456789 backup " + file,
                   dir.path);
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err.find("(403)") != std::string::npos, r.err);
  BOOST_TEST(!fs::exists(file + ".tmp"));
  r = run_cli("--node=" + node.http + " --token=admin-token-01234567890 backup "
                + file,
              dir.path);
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(keys_in(file).empty());
}

BOOST_AUTO_TEST_CASE(a_client_that_leaves_mid_stream_leaves_no_copy) {
  scratch_dir dir;
  auto data = dir.path + "/data";
  backup_node node{dir.path, {"--data-dir=" + data}};
  auto cli = node.client();
  // 12 MB: more than the stream's buffer and the sockets' together, so
  // the node is still reading its copy when the client leaves (the log
  // line below says so: a copy read to its end would say "streamed").
  std::string value(1'000'000, 'v');
  for (int i = 0; i < 12; ++i) {
    auto res = cli.Put("/v1/kv/big" + std::to_string(i), value,
                       "application/octet-stream");
    BOOST_REQUIRE(res && res->status == 204);
  }
  size_t got = 0;
  auto res = cli.Get("/v1/backup", [&](const char*, size_t len) {
    got += len;
    return got < 100'000; // then hang up
  });
  BOOST_TEST(!res); // cancelled by us
  BOOST_TEST(got >= 100'000u);
  BOOST_TEST(eventually([&] { return checkpoints_in(data) == 0; }));
  BOOST_TEST(eventually([&] {
    return slurp(node.log).find("(the client went away)") != std::string::npos;
  }));
  // The next backup is not refused as one already running.
  auto file = dir.path + "/whole.backup";
  auto r = run_cli("--node=" + node.http + " backup " + file, dir.path);
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(keys_in(file).size() == 12u);
  BOOST_TEST(eventually([&] { return checkpoints_in(data) == 0; }));
}

BOOST_AUTO_TEST_SUITE_END()
