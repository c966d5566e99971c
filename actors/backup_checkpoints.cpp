#include "actors/backup_checkpoints.hpp"

#include <filesystem>
#include <system_error>

#include "actors/entry_storage.hpp"

namespace syncmesh {

namespace fs = std::filesystem;

backup_checkpoints::backup_checkpoints(std::string data_dir)
    : parent_(parent_of(data_dir)) {}

std::string backup_checkpoints::parent_of(const std::string& data_dir) {
  return data_dir + "/checkpoints";
}

std::string backup_checkpoints::make_path(uint64_t now_us) {
  if (parent_.empty())
    throw storage_error("storage: a backup needs a data dir");
  std::error_code ec;
  fs::create_directories(parent_, ec);
  if (ec)
    throw storage_error("storage: cannot create " + parent_ + ": "
                        + ec.message());
  // The time orders them for a person; the counter keeps two copies made
  // in one microsecond (or after a clock step back) apart.
  for (;;) {
    auto path
      = parent_ + "/" + std::to_string(now_us) + "-" + std::to_string(next_++);
    if (!fs::exists(path, ec))
      return path;
  }
}

size_t backup_checkpoints::remove_all() const {
  std::error_code ec;
  if (parent_.empty() || !fs::exists(parent_, ec))
    return 0;
  size_t n = 0;
  for (const auto& entry : fs::directory_iterator{parent_, ec}) {
    std::error_code ignored;
    fs::remove_all(entry.path(), ignored);
    ++n;
  }
  return n;
}

bool backup_checkpoints::is_checkpoint(const std::string& data_dir,
                                       const std::string& dir) {
  if (data_dir.empty())
    return false;
  auto parent = fs::path{parent_of(data_dir)}.lexically_normal();
  auto path = fs::path{dir}.lexically_normal();
  return path.has_filename() && path.parent_path() == parent
         && path.filename() != "." && path.filename() != "..";
}

} // namespace syncmesh
