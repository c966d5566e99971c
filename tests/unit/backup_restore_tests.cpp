// Backups on the storage interface (issue 15): a checkpoint is a consistent
// copy that later writes do not reach, the copy read as a backup file
// (actors/checkpoint_reader.hpp), and the file restored into a data dir
// (actors/backup_restore.hpp) with the identity and clock rules; what a
// restore refuses, and that a refused restore leaves nothing behind.
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "actors/backup_checkpoints.hpp"
#include "actors/backup_restore.hpp"
#include "actors/checkpoint_reader.hpp"
#include "actors/rocksdb_storage.hpp"
#include "messages/py2p_codec.hpp"
#include "messages/version.hpp"
#include "tests/support/scratch_dir.hpp"
#include "tests/unit/stored_contents.hpp"

using namespace syncmesh;
using syncmesh::test::scratch_dir;
namespace fs = std::filesystem;

namespace {

using contents = syncmesh::test::stored_contents;
using syncmesh::test::load_contents;

/// Writes `n` entries "key/i" with records naming `round` into `store`.
contents fill(entry_storage& store, int n, const std::string& round) {
  contents written;
  storage_batch batch;
  for (int i = 0; i < n; ++i) {
    auto key = "key/" + std::to_string(i);
    auto record = round + " " + std::to_string(i) + std::string(50, 'r');
    batch.put(key, record);
    written[key] = record;
  }
  batch.put_meta(entry_storage::meta_clock, "5000000");
  store.write(batch, false);
  return written;
}

/// The backup file of the checkpoint in `dir` (made by `node`), written to
/// `file`; returns the header it carries.
backup_header backup_of(const std::string& dir, const std::string& node,
                        const std::string& file, uint64_t mark = 1000) {
  backup_header maker;
  maker.disk_format = entry_storage::format_version;
  maker.node_id = node;
  maker.created_us = 1'700'000'000'000'000;
  maker.clock_mark_us = mark;
  checkpoint_reader reader{dir, maker};
  backup_writer writer{reader.header()};
  std::ofstream out{file, std::ios::binary};
  // Small chunks: the sink is called many times, as a stream's would be.
  BOOST_REQUIRE(reader.write_file(writer, 256, [&](std::string bytes) {
    out << bytes;
    return true;
  }));
  BOOST_REQUIRE(out.good());
  return reader.header();
}

/// A data dir of node "node-a" with 300 entries, checkpointed into
/// `copy`; returns what the copy holds.
contents node_with_copy(const std::string& data, const std::string& copy) {
  rocksdb_storage store;
  store.open(data, "node-a");
  auto written = fill(store, 300, "first");
  store.checkpoint(copy);
  // Later writes (and removals) do not reach the copy.
  fill(store, 500, "second");
  storage_batch gone;
  gone.erase("key/1");
  store.write(gone, true);
  return written;
}

std::string slurp(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

} // namespace

BOOST_AUTO_TEST_SUITE(backup_restore_tests)

BOOST_AUTO_TEST_CASE(a_checkpoint_holds_what_was_written_before_it_only) {
  scratch_dir tmp;
  auto copy = tmp.path + "/copy";
  auto written = node_with_copy(tmp.path + "/data", copy);
  rocksdb_storage read;
  read.open_read_only(copy);
  BOOST_TEST((load_contents(read) == written));
  BOOST_TEST(read.get_meta(entry_storage::meta_node_id).value_or("")
             == "node-a");
  BOOST_TEST(read.get_meta(entry_storage::meta_clock).value_or("")
             == "5000000");
  // Read only: a write is an error, not a change of the copy.
  storage_batch batch;
  batch.put("x", "y");
  BOOST_CHECK_THROW(read.write(batch, false), storage_error);
  read.close();
  // A checkpoint never lands on an existing dir.
  rocksdb_storage store;
  store.open(tmp.path + "/data", "node-a");
  BOOST_CHECK_THROW(store.checkpoint(copy), storage_error);
  // Reading an empty or foreign dir read-only is refused.
  fs::create_directories(tmp.path + "/nothing");
  BOOST_CHECK_THROW(read.open_read_only(tmp.path + "/nothing"), storage_error);
}

BOOST_AUTO_TEST_CASE(a_backup_restores_into_a_dir_a_node_opens_as_itself) {
  scratch_dir tmp;
  auto copy = tmp.path + "/copy";
  auto written = node_with_copy(tmp.path + "/data", copy);
  auto file = tmp.path + "/node.backup";
  auto header = backup_of(copy, "node-a", file);
  // The copy's stored mark (5 s) beats the maker's (1 ms).
  BOOST_TEST(header.clock_mark_us == 5'000'000u);
  restore_options opts;
  opts.now_us = 2'000'000'000'000'000;
  opts.max_clock_offset = std::chrono::milliseconds(250);
  auto restored = tmp.path + "/restored/dir";
  auto r = backup_restore::restore(file, restored, opts);
  BOOST_TEST(r.node_id == "node-a");
  BOOST_TEST(r.entries == written.size());
  BOOST_TEST(r.clock_mark_us == opts.now_us + 500'000 + 1'000'000);
  BOOST_TEST(slurp(restored + "/node-id") == to_hex("node-a") + "\n");
  BOOST_TEST(!fs::exists(restored + "/node-id.tmp"));
  rocksdb_storage store;
  // Opened as the node would: its own ID, the disk format checked.
  store.open(restored + "/entries", "node-a");
  BOOST_TEST((load_contents(store) == written));
  BOOST_TEST(store.get_meta(entry_storage::meta_clock).value_or("")
             == std::to_string(r.clock_mark_us));
  BOOST_TEST(store.get_meta(entry_storage::meta_last_alive).value_or("")
             == std::to_string(header.created_us));
  store.close();
  BOOST_CHECK_THROW(store.open(restored + "/entries", "node-b"), storage_error);
}

BOOST_AUTO_TEST_CASE(
  the_clock_mark_covers_what_the_lost_node_may_have_stamped) {
  using std::chrono::milliseconds;
  // Restored soon after the backup: past now by 2 offsets and a second.
  BOOST_TEST(backup_restore::clock_mark(10, 1'000'000, milliseconds(500))
             == 3'000'000u);
  // A backup whose mark is ahead of that (a clock reserved far ahead, or a
  // restore on a machine whose clock is behind) keeps its mark.
  BOOST_TEST(backup_restore::clock_mark(9'000'000, 1'000'000, milliseconds(500))
             == 9'000'000u);
  BOOST_TEST(backup_restore::clock_mark(0, 0, milliseconds(0)) == 1'000'000u);
}

BOOST_AUTO_TEST_CASE(a_new_id_is_fresh_and_of_the_same_kind) {
  scratch_dir tmp;
  auto copy = tmp.path + "/copy";
  node_with_copy(tmp.path + "/data", copy);
  auto file = tmp.path + "/node.backup";
  backup_of(copy, "node-a", file);
  restore_options opts;
  opts.new_id = true;
  auto a = backup_restore::restore(file, tmp.path + "/a", opts);
  auto b = backup_restore::restore(file, tmp.path + "/b", opts);
  BOOST_TEST(a.node_id != "node-a");
  BOOST_TEST(a.node_id != b.node_id);
  BOOST_TEST(a.node_id.size() == 15u);
  BOOST_TEST(a.header.node_id == "node-a");
  rocksdb_storage store;
  store.open(tmp.path + "/a/entries", a.node_id);
  BOOST_TEST(load_contents(store).size() == 300u);
  BOOST_TEST(slurp(tmp.path + "/a/node-id") == to_hex(a.node_id) + "\n");
  // A py2p mesh's node IDs are base58 text: the new one is too.
  auto py2p_id = py2p::random_node_id("x");
  {
    rocksdb_storage src;
    src.open(tmp.path + "/py2p", py2p_id);
    fill(src, 3, "p");
    src.checkpoint(tmp.path + "/py2p-copy");
  }
  backup_of(tmp.path + "/py2p-copy", py2p_id, tmp.path + "/py2p.backup");
  auto p
    = backup_restore::restore(tmp.path + "/py2p.backup", tmp.path + "/p", opts);
  BOOST_TEST(p.node_id != py2p_id);
  BOOST_TEST(py2p::is_base58_id(p.node_id));
}

BOOST_AUTO_TEST_CASE(a_restore_refuses_a_dir_that_holds_data) {
  scratch_dir tmp;
  auto copy = tmp.path + "/copy";
  node_with_copy(tmp.path + "/data", copy);
  auto file = tmp.path + "/node.backup";
  backup_of(copy, "node-a", file);
  auto err
    = error_of([&] { backup_restore::restore(file, tmp.path + "/data", {}); });
  BOOST_TEST(err.find("already holds data") != std::string::npos, err);
  // Even a stray file counts; the dir is left as it was.
  fs::create_directories(tmp.path + "/other");
  std::ofstream{tmp.path + "/other/notes.txt"} << "mine";
  BOOST_CHECK_THROW(backup_restore::restore(file, tmp.path + "/other", {}),
                    storage_error);
  BOOST_TEST(slurp(tmp.path + "/other/notes.txt") == "mine");
  BOOST_TEST(!fs::exists(tmp.path + "/other/entries"));
  // An empty dir (a fresh volume) is fine.
  fs::create_directories(tmp.path + "/empty");
  BOOST_TEST(backup_restore::restore(file, tmp.path + "/empty", {}).entries
             == 300u);
}

BOOST_AUTO_TEST_CASE(a_damaged_backup_is_refused_and_leaves_nothing) {
  scratch_dir tmp;
  auto copy = tmp.path + "/copy";
  node_with_copy(tmp.path + "/data", copy);
  auto file = tmp.path + "/node.backup";
  backup_of(copy, "node-a", file);
  auto bytes = slurp(file);
  auto attempt = [&](const std::string& content) {
    auto bad = tmp.path + "/bad.backup";
    std::ofstream{bad, std::ios::binary | std::ios::trunc} << content;
    auto target = tmp.path + "/target";
    auto err = error_of([&] { backup_restore::restore(bad, target, {}); });
    BOOST_TEST(!fs::exists(target));
    return err;
  };
  auto truncated = attempt(bytes.substr(0, bytes.size() / 2));
  BOOST_TEST(truncated.find("truncated") != std::string::npos, truncated);
  BOOST_TEST(truncated.find("bad.backup") != std::string::npos, truncated);
  auto flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x04;
  BOOST_TEST(!attempt(flipped).empty());
  // A newer disk format inside a valid file: named, with what to do.
  backup_header maker;
  maker.disk_format = entry_storage::format_version + 1;
  maker.node_id = "node-a";
  backup_writer w{maker};
  w.add("k", "v");
  w.finish();
  auto newer = attempt(w.take());
  BOOST_TEST(newer.find("disk format "
                        + std::to_string(entry_storage::format_version + 1))
               != std::string::npos,
             newer);
  BOOST_TEST(newer.find("newer syncmesh") != std::string::npos, newer);
  auto missing = error_of([&] {
    backup_restore::restore(tmp.path + "/absent.backup", tmp.path + "/t", {});
  });
  BOOST_TEST(missing.find("cannot open") != std::string::npos, missing);
}

BOOST_AUTO_TEST_CASE(a_copy_of_another_node_is_not_read_as_ours) {
  scratch_dir tmp;
  auto copy = tmp.path + "/copy";
  node_with_copy(tmp.path + "/data", copy);
  backup_header maker;
  maker.disk_format = entry_storage::format_version;
  maker.node_id = "node-b";
  BOOST_CHECK_THROW((checkpoint_reader{copy, maker}), storage_error);
}

BOOST_AUTO_TEST_CASE(a_checkpoint_reader_stops_when_nobody_reads) {
  scratch_dir tmp;
  auto copy = tmp.path + "/copy";
  node_with_copy(tmp.path + "/data", copy);
  backup_header maker;
  maker.disk_format = entry_storage::format_version;
  maker.node_id = "node-a";
  checkpoint_reader reader{copy, maker};
  backup_writer writer{reader.header()};
  int calls = 0;
  BOOST_TEST(
    !reader.write_file(writer, 64, [&](std::string) { return ++calls < 3; }));
  BOOST_TEST(calls == 3);
  BOOST_TEST(writer.count() < 300u);
}

BOOST_AUTO_TEST_CASE(checkpoint_dirs_live_in_the_data_dir_and_go_at_start) {
  scratch_dir tmp;
  auto data = tmp.path + "/data";
  backup_checkpoints dirs{data};
  auto a = dirs.make_path(42);
  auto b = dirs.make_path(42);
  BOOST_TEST(a != b);
  BOOST_TEST(!fs::exists(a));
  BOOST_TEST(fs::is_directory(fs::path{a}.parent_path()));
  BOOST_TEST(backup_checkpoints::is_checkpoint(data, a));
  BOOST_TEST(backup_checkpoints::is_checkpoint(data + "/", b));
  BOOST_TEST(!backup_checkpoints::is_checkpoint(data, data));
  BOOST_TEST(!backup_checkpoints::is_checkpoint(data, data + "/entries"));
  BOOST_TEST(
    !backup_checkpoints::is_checkpoint(data, data + "/checkpoints/../entries"));
  BOOST_TEST(!backup_checkpoints::is_checkpoint("", a));
  fs::create_directories(a);
  std::ofstream{a + "/f"} << "x";
  fs::create_directories(b);
  BOOST_TEST(dirs.remove_all() == 2u);
  BOOST_TEST(!fs::exists(a));
  BOOST_TEST(fs::exists(data));
  BOOST_TEST(backup_checkpoints{}.remove_all() == 0u);
  BOOST_CHECK_THROW(backup_checkpoints{}.make_path(1), storage_error);
}

BOOST_AUTO_TEST_SUITE_END()
