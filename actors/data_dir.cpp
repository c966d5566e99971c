#include "actors/data_dir.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "actors/rocksdb_storage.hpp"
#include "messages/hex_text.hpp"
#include "messages/version.hpp"
#include "syncmesh/clock.hpp"
#include "syncmesh/errors.hpp"

namespace syncmesh {

namespace {

[[noreturn]] void fail(const std::string& why) {
  throw value_error(errc::invalid_config, "invalid syncmesh config: " + why);
}

std::system_error io_error(const std::string& what, const std::string& path) {
  return std::system_error{errno, std::generic_category(), what + " " + path};
}

/// fsync of a file or dir opened read-only (Linux syncs either way).
void sync_path(const std::string& path, bool dir) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
  if (fd < 0)
    throw io_error("cannot open", path);
  int rc = ::fsync(fd);
  auto saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0)
    throw io_error("cannot fsync", path);
}

std::string read_text(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return {};
  std::stringstream text;
  text << in.rdbuf();
  auto s = text.str();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.pop_back();
  return s;
}

uint64_t parse_u64(std::string_view text) {
  uint64_t x = 0;
  std::from_chars(text.data(), text.data() + text.size(), x);
  return x;
}

/// `entries.stale-20261206T101500Z` (UTC), with a counter when taken.
std::string set_aside_name(const std::string& dir, uint64_t now_us) {
  std::time_t secs = static_cast<std::time_t>(now_us / 1'000'000);
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &utc);
  auto base = dir + "/entries.stale-" + stamp;
  auto name = base;
  for (int i = 1; std::filesystem::exists(name); ++i)
    name = base + "-" + std::to_string(i);
  return name;
}

} // namespace

void write_file_durably(const std::string& path, std::string_view content) {
  auto tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    throw io_error("cannot create", tmp);
  size_t done = 0;
  while (done < content.size()) {
    auto n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      auto saved = errno;
      ::close(fd);
      errno = saved;
      throw io_error("cannot write", tmp);
    }
    done += static_cast<size_t>(n);
  }
  // The content must be on disk before the rename makes it the file, or a
  // power cut could leave the new name on an empty file.
  if (::fsync(fd) != 0) {
    auto saved = errno;
    ::close(fd);
    errno = saved;
    throw io_error("cannot fsync", tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw io_error("cannot rename to", path);
  // The rename is an entry of the dir: durable once the dir is synced.
  auto parent = std::filesystem::path{path}.parent_path().string();
  sync_path(parent.empty() ? "." : parent, true);
}

std::string read_node_id(const std::string& dir) {
  auto hex = read_text(dir + "/node-id");
  std::string id;
  if (!hex.empty() && !from_hex(hex, id, max_node_id_size))
    fail(dir + "/node-id does not hold a hex node ID");
  return id;
}

void write_node_id(const std::string& dir, const std::string& id) {
  try {
    write_file_durably(dir + "/node-id", to_hex(id) + "\n");
  } catch (const std::system_error& e) {
    fail(std::string{"data dir "} + e.what());
  }
}

bool older_than_horizon(uint64_t last_alive_us, uint64_t now_us,
                        uint64_t horizon_us, uint64_t max_clock_offset_us) {
  // A peer purges a tombstone once its own clock is a horizon past the
  // delete; the delete came after this data was last alive, and the peer's
  // clock may run ahead of ours by the offset bound.
  auto limit
    = horizon_us > max_clock_offset_us ? horizon_us - max_clock_offset_us : 0;
  return now_us > last_alive_us && now_us - last_alive_us > limit;
}

uint64_t clock_reservation_us(const config& cfg) {
  auto offset = static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::microseconds>(cfg.max_clock_offset)
      .count());
  return std::max<uint64_t>(offset / 2, 10'000);
}

std::pair<std::string, std::shared_ptr<durable_start>>
open_data_dir(const config& cfg, const std::string& tls_id,
              const std::string& fresh_id) {
  const auto& dir = cfg.data_dir;
  std::error_code ec;
  bool created = !std::filesystem::exists(dir, ec);
  std::filesystem::create_directories(dir, ec);
  if (ec)
    fail("cannot create data dir " + dir + ": " + ec.message());
  if (created) {
    // Entries and leases are nobody else's business; and the new dir's own
    // entry in its parent survives a power cut too.
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, ec);
    try {
      auto parent = std::filesystem::absolute(dir).parent_path().string();
      sync_path(parent, true);
    } catch (const std::system_error& e) {
      fail(std::string{"data dir "} + e.what());
    }
  }
  auto kept = read_node_id(dir);
  if (!kept.empty() && !cfg.node_id.empty() && kept != cfg.node_id.raw())
    fail("data dir " + dir + " belongs to node " + to_hex(kept)
         + ", not to the configured node_id " + cfg.node_id.to_hex());
  if (!kept.empty() && !tls_id.empty() && tls_id != kept)
    fail(dir + "/node-id holds node ID " + to_hex(kept)
         + " but the TLS certificate names " + to_hex(tls_id)
         + ": a node keeps its ID across certificates (issue a certificate "
           "for this ID, or use another data dir)");
  auto id = !cfg.node_id.empty() ? cfg.node_id.raw()
            : !kept.empty()      ? kept
            : !tls_id.empty()    ? tls_id
                                 : fresh_id;
  if (kept.empty())
    write_node_id(dir, id);

  auto started = std::chrono::steady_clock::now();
  auto clock = cfg.clock ? cfg.clock : system_wall_clock();
  auto result = std::make_shared<durable_start>();
  try {
    auto storage = std::make_shared<rocksdb_storage>();
    storage->open(dir + "/entries", id);
    auto last_alive = storage->get_meta(entry_storage::meta_last_alive);
    auto now = clock();
    auto horizon = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(
        cfg.tombstone_horizon)
        .count());
    auto offset = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(
        cfg.max_clock_offset)
        .count());
    if (last_alive && !cfg.keep_stale_data
        && older_than_horizon(parse_u64(*last_alive), now, horizon, offset)) {
      // Its peers may have forgotten deletes this data never saw: set it
      // aside (never destroy an operator's data) and rejoin empty. The clock
      // reservation still counts: stamps made before stay unrepeatable.
      auto mark = storage->get_meta(entry_storage::meta_clock);
      storage->close();
      result->set_aside = set_aside_name(dir, now);
      std::filesystem::rename(dir + "/entries", result->set_aside);
      storage = std::make_shared<rocksdb_storage>();
      storage->open(dir + "/entries", id);
      if (mark)
        storage->put_meta(entry_storage::meta_clock, *mark, true);
    }
    storage->put_meta(entry_storage::meta_last_alive, std::to_string(now),
                      true);
    result->persistence = std::make_shared<store_persistence>(
      storage, cfg.durability, clock_reservation_us(cfg));
    result->store.reserve(cfg.expected_keys);
    auto loaded = result->persistence->load(result->store);
    result->clock_floor_us = loaded.clock_floor_us;
    result->entries = loaded.entries;
  } catch (const storage_error& e) {
    fail(e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    fail("data dir " + dir + ": " + e.what());
  }
  // Dirs written before the entries existed kept the clock in `hlc`.
  if (auto old_mark = read_text(dir + "/hlc"); !old_mark.empty())
    result->clock_floor_us
      = std::max(result->clock_floor_us, parse_u64(old_mark));
  result->load_ms = static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started)
      .count());
  return {id, result};
}

} // namespace syncmesh
