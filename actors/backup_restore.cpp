#include "actors/backup_restore.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <system_error>

#include "actors/data_dir.hpp"
#include "actors/rocksdb_storage.hpp"
#include "messages/py2p_codec.hpp"
#include "messages/time_text.hpp"
#include "messages/version.hpp"

namespace syncmesh {

namespace fs = std::filesystem;

namespace {

/// An engine batch is written once it holds this many bytes or entries:
/// bounded memory for any size of backup, few engine writes.
constexpr size_t batch_bytes = 4 * 1024 * 1024;
constexpr size_t batch_entries = 10'000;

/// The backup file at `path`, open for reading; throws backup_error.
std::ifstream open_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    throw backup_error("cannot open " + path + ": " + std::strerror(errno));
  return in;
}

/// A fresh node ID of the kind `old` is: a py2p mesh's IDs are base58 text
/// (py2p::random_node_id), a native mesh's 15 random bytes (facade.cpp's
/// random_node_id, which lives with the actors).
std::string fresh_node_id(const std::string& old) {
  if (py2p::is_base58_id(old))
    return py2p::random_node_id("restore");
  std::random_device rd;
  std::string id(15, '\0');
  for (auto& c : id)
    c = static_cast<char>(rd() & 0xff);
  return id;
}

/// fsyncs the file or dir at `path`; throws storage_error.
void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    auto err = std::string{std::strerror(errno)};
    if (fd >= 0)
      ::close(fd);
    throw storage_error("storage: cannot sync " + path + ": " + err);
  }
  ::close(fd);
}

} // namespace

uint64_t
backup_restore::clock_mark(uint64_t backup_mark_us, uint64_t now_us,
                           std::chrono::microseconds max_clock_offset) {
  auto offset = static_cast<uint64_t>(
    std::max<int64_t>(0, static_cast<int64_t>(max_clock_offset.count())));
  return std::max(backup_mark_us, now_us + 2 * offset + 1'000'000);
}

backup_header backup_restore::verify(const std::string& path,
                                     uint64_t& entries) {
  auto in = open_file(path);
  try {
    backup_reader reader{in};
    std::string key;
    std::string record;
    while (reader.next(key, record)) {
    }
    if (in.bad())
      throw backup_error("a read failed");
    entries = reader.count();
    return reader.header();
  } catch (const backup_error& e) {
    throw backup_error(path + ": " + e.what());
  }
}

void backup_restore::check_empty(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec))
    return;
  if (!fs::is_directory(dir, ec))
    throw storage_error("storage: " + dir + " is not a directory");
  if (!fs::is_empty(dir, ec) || ec)
    throw storage_error(
      "storage: " + dir
      + " already holds data: a restore writes only into an empty or new "
        "dir (move that one away, or pick another --data-dir)");
}

restore_result backup_restore::restore(const std::string& path,
                                       const std::string& data_dir,
                                       const restore_options& opts) {
  restore_result result;
  // The dir first (cheap), then the whole file: a damaged or truncated
  // backup is refused before anything is written.
  check_empty(data_dir);
  uint64_t expected = 0;
  result.header = verify(path, expected);
  const auto& header = result.header;
  if (header.disk_format < entry_storage::oldest_upgradable_format
      || header.disk_format > entry_storage::format_version)
    throw backup_error(
      path + ": the backup holds disk format "
      + std::to_string(header.disk_format) + "; this build writes format "
      + std::to_string(entry_storage::format_version)
      + (header.disk_format > entry_storage::format_version
           ? " (made by a newer syncmesh: restore with that version)"
           : " (made by an older syncmesh: restore with that version, start "
             "the node, and let it upgrade the dir)"));
  check_empty(data_dir);
  std::error_code ec;
  bool created = !fs::exists(data_dir, ec);
  fs::create_directories(data_dir, ec);
  if (ec)
    throw storage_error("storage: cannot create " + data_dir + ": "
                        + ec.message());
  // Like a dir the node makes: entries and leases are nobody else's.
  if (created)
    fs::permissions(data_dir, fs::perms::owner_all, fs::perm_options::replace,
                    ec);
  result.node_id = opts.new_id ? fresh_node_id(header.node_id) : header.node_id;
  auto now = opts.now_us != 0 ? opts.now_us : wall_clock_us();
  result.clock_mark_us
    = clock_mark(header.clock_mark_us, now, opts.max_clock_offset);
  try {
    {
      rocksdb_storage storage;
      storage.open(data_dir + "/entries", result.node_id);
      auto in = open_file(path);
      storage_batch batch;
      std::string key;
      std::string record;
      uint64_t count = 0;
      try {
        backup_reader reader{in};
        for (; reader.next(key, record); ++count) {
          batch.put(key, record);
          if (batch.bytes() >= batch_bytes
              || batch.ops().size() >= batch_entries) {
            storage.write(batch, false);
            batch.clear();
          }
        }
      } catch (const backup_error& e) {
        throw backup_error(path + ": " + e.what());
      }
      if (count != expected)
        throw backup_error(path + ": the file changed while it was restored");
      batch.put_meta(entry_storage::meta_clock,
                     std::to_string(result.clock_mark_us));
      batch.put_meta(entry_storage::meta_last_alive,
                     std::to_string(header.created_us));
      storage.write(batch, true);
      // The node that starts from the dir finds it compacted: no flushes
      // and merges of the whole backup competing with its first load.
      storage.compact();
      storage.close();
      result.entries = count;
    }
    // Last, durably, as the node writes it (data_dir.hpp): a dir without
    // its node-id is not taken for a finished restore (a node starting on
    // it would get another ID and refuse the entries).
    write_node_id(data_dir, result.node_id);
    // A dir the restore made is durable in its parent too.
    if (created) {
      auto parent = fs::absolute(data_dir, ec).lexically_normal().parent_path();
      fsync_path(parent.empty() ? std::string{"/"} : parent.string());
    }
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(data_dir + "/entries", ignored);
    fs::remove(data_dir + "/node-id", ignored);
    fs::remove(data_dir + "/node-id.tmp", ignored);
    if (created)
      fs::remove(data_dir, ignored);
    throw;
  }
  return result;
}

} // namespace syncmesh
