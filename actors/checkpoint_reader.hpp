#pragma once

// Reads a consistent copy of a node's storage (entry_storage::checkpoint) as
// a backup file (messages/backup_file.hpp), for GET /v1/backup. A plain
// class on the storage interface, no CAF, no threads: the HTTP side runs it
// on a thread of its own and decides where the bytes go.

#include <cstddef>
#include <functional>
#include <string>

#include "actors/rocksdb_storage.hpp"
#include "messages/backup_file.hpp"

namespace syncmesh {

/// One checkpoint opened read-only, encoded as a backup file.
class checkpoint_reader {
public:
  /// Opens the copy in `dir` read-only. `maker` is what the node that made
  /// it says (node ID, creation time, clock mark, disk format). Throws
  /// storage_error when the copy cannot be read, has another disk format,
  /// or belongs to another node.
  checkpoint_reader(const std::string& dir, backup_header maker);

  /// The backup file's header: the maker's, with the clock mark raised to
  /// the mark stored in the copy (which covers a clock reserved ahead).
  const backup_header& header() const noexcept { return header_; }

  /// Encodes every entry of the copy into `writer` in key order and ends
  /// the file, handing `sink` the bytes whenever the writer holds
  /// `chunk_bytes` or more, and the rest (with the trailer) at the end.
  /// Returns false as soon as `sink` does (nobody reads any more). Throws
  /// storage_error (a damaged copy) or backup_error.
  bool write_file(backup_writer& writer, size_t chunk_bytes,
                  const std::function<bool(std::string bytes)>& sink);

private:
  rocksdb_storage storage_;
  backup_header header_;
};

} // namespace syncmesh
