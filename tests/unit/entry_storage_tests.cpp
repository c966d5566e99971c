// The durable storage of entries (actors/entry_storage.hpp) on RocksDB
// (actors/rocksdb_storage.hpp): round trips across reopening, meta, the
// disk format and node ID checks at open, batch atomicity and damaged files
// in a copy of the data dir (issue 15).
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <rocksdb/db.h>

#include "actors/rocksdb_storage.hpp"
#include "tests/support/scratch_dir.hpp"
#include "tests/unit/stored_contents.hpp"

using namespace syncmesh;
using syncmesh::test::scratch_dir;
namespace fs = std::filesystem;

namespace {

using contents = syncmesh::test::stored_contents;
using syncmesh::test::load_contents;

/// The error message of `fn`, or nullopt when it does not throw
/// storage_error (anything else escapes and fails the test).
template <class F>
std::optional<std::string> storage_error_of(F&& fn) {
  try {
    fn();
  } catch (const storage_error& e) {
    return std::string{e.what()};
  }
  return std::nullopt;
}

/// The files of the engine in `dir` whose names end in `suffix` (or start
/// with it for MANIFEST/CURRENT), largest first.
std::vector<fs::path> files_like(const std::string& dir,
                                 const std::string& pattern) {
  std::vector<fs::path> out;
  for (auto& e : fs::directory_iterator(dir)) {
    auto name = e.path().filename().string();
    bool match
      = name.size() >= pattern.size()
        && (name.compare(name.size() - pattern.size(), pattern.size(), pattern)
              == 0
            || name.rfind(pattern, 0) == 0);
    if (match && e.is_regular_file() && e.file_size() > 0)
      out.push_back(e.path());
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) {
    return fs::file_size(a) > fs::file_size(b);
  });
  return out;
}

/// A copy of the data dir `from` at `to` (the damage goes to the copy).
void copy_dir(const std::string& from, const std::string& to) {
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive);
}

/// Inverts `count` bytes of `file` from `offset`.
void flip_bytes(const fs::path& file, std::uintmax_t offset,
                std::size_t count) {
  std::fstream f{file, std::ios::in | std::ios::out | std::ios::binary};
  BOOST_REQUIRE(f);
  for (std::size_t i = 0; i < count; ++i) {
    f.seekg(static_cast<std::streamoff>(offset + i));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(offset + i));
    c = static_cast<char>(~c);
    f.write(&c, 1);
  }
  BOOST_REQUIRE(f);
}

/// The record of entry `i` in round `round`, ~120 bytes like a real one.
std::string record_of(int i, int round) {
  return "record " + std::to_string(i) + " round " + std::to_string(round)
         + std::string(100, static_cast<char>('a' + (i + round) % 26));
}

/// Makes `dir` a data dir of node-a holding the entry k = v, with `format`
/// as its disk format mark (as a build of that format would have left it).
void make_dir_marked(const std::string& dir, const std::string& format) {
  rocksdb_storage store;
  store.open(dir, "node-a");
  storage_batch batch;
  batch.put("k", "v");
  store.write(batch, true);
  store.put_meta(entry_storage::meta_format, format, true);
  store.close();
}

} // namespace

BOOST_AUTO_TEST_SUITE(entry_storage_tests)

BOOST_AUTO_TEST_CASE(put_erase_round_trip_across_reopen) {
  scratch_dir tmp;
  auto dir = tmp.path + "/store";
  contents expected;
  {
    rocksdb_storage store;
    store.open(dir, "node-a");
    BOOST_TEST(load_contents(store).empty());
    storage_batch batch;
    for (int i = 0; i < 2000; ++i) {
      auto key = "key/" + std::to_string(i);
      batch.put(key, record_of(i, 0));
      expected[key] = record_of(i, 0);
    }
    store.write(batch, false);
    batch.clear();
    BOOST_TEST(batch.empty());
    // Overwrites, removals (one of a key never stored) and odd bytes.
    for (int i = 0; i < 2000; i += 3) {
      auto key = "key/" + std::to_string(i);
      batch.erase(key);
      expected.erase(key);
    }
    for (int i = 1; i < 2000; i += 7) {
      auto key = "key/" + std::to_string(i);
      batch.put(key, record_of(i, 1));
      expected[key] = record_of(i, 1);
    }
    batch.erase("never/stored");
    std::string binary_key{"bin\0key\xff", 8};
    std::string binary_record{"\0\x01\x02", 3};
    batch.put(binary_key, binary_record);
    batch.put("empty", "");
    expected[binary_key] = binary_record;
    expected["empty"] = "";
    store.write(batch, true);
    BOOST_TEST((load_contents(store) == expected));
    store.close();
  }
  rocksdb_storage store;
  store.open(dir, "node-a");
  BOOST_TEST((load_contents(store) == expected));
  // Compaction keeps the same contents; removing everything and compacting
  // gives the disk back (the size estimate follows).
  store.compact();
  BOOST_TEST((load_contents(store) == expected));
  auto full = store.approximate_bytes();
  BOOST_TEST(full > 10000u);
  storage_batch batch;
  for (auto& [key, _] : expected)
    batch.erase(key);
  store.write(batch, false);
  store.compact();
  BOOST_TEST(load_contents(store).empty());
  // What is left is what an empty store holds (an empty write buffer's
  // arena) plus little: the removed records left the disk.
  scratch_dir empty_dir;
  rocksdb_storage empty;
  empty.open(empty_dir.path, "node-b");
  auto floor = empty.approximate_bytes();
  BOOST_TEST(store.approximate_bytes() < floor + full / 10,
             full << " bytes full, " << floor << " empty");
}

BOOST_AUTO_TEST_CASE(meta_values_survive_and_stay_apart_from_entries) {
  scratch_dir tmp;
  auto dir = tmp.path + "/store";
  {
    rocksdb_storage store;
    store.open(dir, "node-a");
    BOOST_TEST(store.get_meta(entry_storage::meta_format).value_or("")
               == std::to_string(entry_storage::format_version));
    BOOST_TEST(store.get_meta(entry_storage::meta_node_id).value_or("")
               == "node-a");
    BOOST_TEST(!store.get_meta(entry_storage::meta_clock).has_value());
    store.put_meta(entry_storage::meta_clock, "12345", true);
    storage_batch batch;
    batch.put("clock_hwm", "an entry, not the meta value");
    batch.put_meta("custom", "x");
    store.write(batch, false);
    store.sync();
    store.close();
  }
  rocksdb_storage store;
  store.open(dir, "node-a");
  BOOST_TEST(store.get_meta(entry_storage::meta_clock).value_or("") == "12345");
  BOOST_TEST(store.get_meta("custom").value_or("") == "x");
  auto all = load_contents(store);
  BOOST_TEST(all.size() == 1u);
  BOOST_TEST(all["clock_hwm"] == "an entry, not the meta value");
}

BOOST_AUTO_TEST_CASE(newer_or_unknown_format_is_refused) {
  scratch_dir tmp;
  auto dir = tmp.path + "/store";
  make_dir_marked(dir, std::to_string(entry_storage::format_version + 1));
  rocksdb_storage store;
  auto err = storage_error_of([&] { store.open(dir, "node-a"); });
  BOOST_REQUIRE(err.has_value());
  BOOST_TEST(err->find("disk format "
                       + std::to_string(entry_storage::format_version + 1))
               != std::string::npos,
             *err);
  BOOST_TEST(err->find("newer") != std::string::npos, *err);
  BOOST_TEST(err->find(dir) != std::string::npos, *err);
  // Refused means closed: nothing can be written into it.
  BOOST_CHECK_THROW(store.write(storage_batch{}, false), storage_error);
  BOOST_CHECK_THROW(store.get_meta("format"), storage_error);

  // A format that is no number at all.
  auto dir2 = tmp.path + "/store2";
  make_dir_marked(dir2, "1x");
  err = storage_error_of([&] { store.open(dir2, "node-a"); });
  BOOST_REQUIRE(err.has_value());
  BOOST_TEST(err->find("unknown disk format \"1x\"") != std::string::npos,
             *err);
}

BOOST_AUTO_TEST_CASE(format_1_is_upgraded_in_place_and_keeps_its_entries) {
  scratch_dir tmp;
  auto dir = tmp.path + "/store";
  make_dir_marked(dir, "1");
  {
    // Read-only (a copy being inspected) leaves the mark alone.
    rocksdb_storage copy;
    copy.open_read_only(dir);
    BOOST_TEST(copy.get_meta(entry_storage::meta_format).value_or("") == "1");
  }
  rocksdb_storage store;
  store.open(dir, "node-a");
  BOOST_TEST(store.get_meta(entry_storage::meta_format).value_or("")
             == std::to_string(entry_storage::format_version));
  auto all = load_contents(store);
  BOOST_TEST(all.size() == 1u);
  BOOST_TEST(all["k"] == "v");
  store.close();
  // Format 0 was never written: below the oldest upgradable one, refused.
  make_dir_marked(dir, "0");
  auto err = storage_error_of([&] { store.open(dir, "node-a"); });
  BOOST_REQUIRE(err.has_value());
  BOOST_TEST(err->find("older format") != std::string::npos, *err);
}

BOOST_AUTO_TEST_CASE(database_without_a_format_is_refused) {
  scratch_dir tmp;
  auto dir = tmp.path + "/store";
  {
    // A RocksDB database some other program wrote: data, no format meta.
    rocksdb::Options opts;
    opts.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    BOOST_REQUIRE(rocksdb::DB::Open(opts, dir, &raw).ok());
    std::unique_ptr<rocksdb::DB> db{raw};
    BOOST_REQUIRE(db->Put(rocksdb::WriteOptions{}, "user/1", "x").ok());
    BOOST_REQUIRE(db->Close().ok());
  }
  rocksdb_storage store;
  auto err = storage_error_of([&] { store.open(dir, "node-a"); });
  BOOST_REQUIRE(err.has_value());
  BOOST_TEST(err->find("without a disk format version") != std::string::npos,
             *err);
}

BOOST_AUTO_TEST_CASE(data_dir_of_another_node_is_refused) {
  scratch_dir tmp;
  auto dir = tmp.path + "/store";
  {
    rocksdb_storage store;
    store.open(dir, "node-a");
    storage_batch batch;
    batch.put("k", "v");
    store.write(batch, true);
    store.close();
  }
  rocksdb_storage store;
  auto err = storage_error_of([&] { store.open(dir, "node-b"); });
  BOOST_REQUIRE(err.has_value());
  BOOST_TEST(err->find("belongs to node node-a") != std::string::npos, *err);
  BOOST_TEST(
    !storage_error_of([&] { store.open(dir, "node-b"); }).value_or("").empty());
  // The refusal changed nothing: its owner still opens it, data intact.
  store.open(dir, "node-a");
  BOOST_TEST(load_contents(store).at("k") == "v");
  BOOST_CHECK_THROW(store.open(dir, ""), storage_error);
}

// Each batch overwrites the same keys and the clock meta with its own
// number; the WAL cut anywhere in its last part must give back whole
// batches only, a prefix of those written, and lose only the torn tail.
BOOST_AUTO_TEST_CASE(batches_are_all_or_nothing_after_a_torn_log) {
  scratch_dir tmp;
  auto dir = tmp.path + "/store";
  constexpr int batches = 40;
  constexpr int keys = 20;
  {
    rocksdb_storage store;
    store.open(dir, "node-a");
    for (int b = 1; b <= batches; ++b) {
      storage_batch batch;
      for (int k = 0; k < keys; ++k)
        batch.put("key/" + std::to_string(k), record_of(k, b));
      batch.put_meta(entry_storage::meta_clock, std::to_string(b));
      store.write(batch, true);
    }
    store.close();
  }
  auto logs = files_like(dir, ".log");
  BOOST_REQUIRE_EQUAL(logs.size(), 1u);
  auto log_name = logs.front().filename();
  auto log_size = fs::file_size(logs.front());
  // One batch is ~20 * 140 bytes: cut points across the last five.
  int lost_somewhere = 0;
  for (std::uintmax_t cut = 1; cut < 5 * keys * 140; cut += 397) {
    auto copy = tmp.path + "/copy";
    copy_dir(dir, copy);
    fs::resize_file(fs::path{copy} / log_name, log_size - cut);
    rocksdb_storage store;
    store.open(copy, "node-a");
    auto clock = std::stoi(store.get_meta(entry_storage::meta_clock).value());
    BOOST_TEST(clock < batches, "cut " << cut);
    BOOST_TEST(clock >= batches - 6, "cut " << cut);
    contents whole_batch;
    for (int k = 0; k < keys; ++k)
      whole_batch["key/" + std::to_string(k)] = record_of(k, clock);
    BOOST_TEST((load_contents(store) == whole_batch), "cut " << cut);
    lost_somewhere += clock < batches;
    store.close();
  }
  BOOST_TEST(lost_somewhere > 0);
}

// Flipped bytes in each of the engine's files (in a copy): a clear
// storage_error at open or load, or, where the file is not needed to read
// the data, exactly the data written; never a crash or wrong data.
BOOST_AUTO_TEST_CASE(corrupted_files_give_an_error_never_wrong_data) {
  scratch_dir tmp;
  auto dir = tmp.path + "/store";
  contents expected;
  {
    rocksdb_storage store;
    store.open(dir, "node-a");
    storage_batch batch;
    for (int i = 0; i < 5000; ++i) {
      auto key = "key/" + std::to_string(i);
      batch.put(key, record_of(i, 0));
      expected[key] = record_of(i, 0);
    }
    store.write(batch, false);
    store.compact(); // into a table file
    batch.clear();
    for (int i = 0; i < 50; ++i) {
      auto key = "late/" + std::to_string(i);
      batch.put(key, record_of(i, 2));
      expected[key] = record_of(i, 2);
    }
    store.write(batch, true); // stays in the log
    store.close();
  }
  int errors = 0;
  for (auto pattern : {".sst", ".log", "MANIFEST", "CURRENT"}) {
    auto files = files_like(dir, pattern);
    BOOST_REQUIRE_MESSAGE(!files.empty(), "no " << pattern << " file");
    auto name = files.front().filename();
    auto size = fs::file_size(files.front());
    auto copy = tmp.path + "/copy";
    copy_dir(dir, copy);
    flip_bytes(fs::path{copy} / name, size / 2, std::min<std::size_t>(8, size));
    rocksdb_storage store;
    std::optional<contents> got;
    auto err = storage_error_of([&] {
      store.open(copy, "node-a");
      got = load_contents(store);
    });
    if (err) {
      ++errors;
      BOOST_TEST(err->find("failed") != std::string::npos, *err);
      BOOST_TEST_MESSAGE(pattern << ": " << *err);
    } else {
      BOOST_TEST((*got == expected), pattern << " damaged: wrong data");
    }
  }
  // The table and the log carry checksums: damage there must be reported.
  BOOST_TEST(errors >= 2);
}

BOOST_AUTO_TEST_CASE(truncated_table_file_is_an_error) {
  scratch_dir tmp;
  auto dir = tmp.path + "/store";
  {
    rocksdb_storage store;
    store.open(dir, "node-a");
    storage_batch batch;
    for (int i = 0; i < 3000; ++i)
      batch.put("key/" + std::to_string(i), record_of(i, 0));
    store.write(batch, false);
    store.compact();
    store.close();
  }
  auto tables = files_like(dir, ".sst");
  BOOST_REQUIRE(!tables.empty());
  auto copy = tmp.path + "/copy";
  copy_dir(dir, copy);
  auto table = fs::path{copy} / tables.front().filename();
  fs::resize_file(table, fs::file_size(table) / 2);
  rocksdb_storage store;
  auto err = storage_error_of([&] {
    store.open(copy, "node-a");
    load_contents(store);
  });
  BOOST_REQUIRE(err.has_value());
  BOOST_TEST(err->find("Corruption") != std::string::npos, *err);
}

BOOST_AUTO_TEST_SUITE_END()
