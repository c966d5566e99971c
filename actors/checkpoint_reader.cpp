#include "actors/checkpoint_reader.hpp"

#include <algorithm>
#include <charconv>

namespace syncmesh {

namespace {

/// Unwinds the copy's iteration once the sink stops taking bytes.
struct sink_stopped {};

} // namespace

checkpoint_reader::checkpoint_reader(const std::string& dir,
                                     backup_header maker)
    : header_(std::move(maker)) {
  storage_.open_read_only(dir);
  if (header_.disk_format != entry_storage::format_version)
    throw storage_error("storage: a copy of disk format "
                        + std::to_string(header_.disk_format)
                        + " was asked for; this build reads format "
                        + std::to_string(entry_storage::format_version));
  auto owner = storage_.get_meta(entry_storage::meta_node_id);
  if (owner.value_or("") != header_.node_id)
    throw storage_error("storage: the copy in " + dir
                        + " belongs to another node");
  if (auto mark = storage_.get_meta(entry_storage::meta_clock)) {
    uint64_t stored = 0;
    std::from_chars(mark->data(), mark->data() + mark->size(), stored);
    header_.clock_mark_us = std::max(header_.clock_mark_us, stored);
  }
}

bool checkpoint_reader::write_file(
  backup_writer& writer, size_t chunk_bytes,
  const std::function<bool(std::string bytes)>& sink) {
  try {
    storage_.for_each([&](std::string_view key, std::string_view record) {
      writer.add(key, record);
      if (writer.pending() >= chunk_bytes && !sink(writer.take()))
        throw sink_stopped{};
    });
  } catch (const sink_stopped&) {
    return false;
  }
  writer.finish();
  return sink(writer.take());
}

} // namespace syncmesh
