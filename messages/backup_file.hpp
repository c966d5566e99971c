#pragma once

// The backup file of a node's data dir (issue 15, `syncmesh backup` and
// `syncmesh restore`): one self-describing file that a node streams from a
// consistent copy of its storage and that `syncmesh restore` turns into a
// data dir again. Plain classes, no CAF, no engine: tested directly.
//
// Layout (integers little-endian, lengths before the bytes they count):
//
//   magic          8 bytes  89 53 4D 42 0D 0A 1A 0A ("\x89SMB\r\n\x1a\n")
//   format         u32      backup_file::format_version (this layout)
//   disk format    u32      the storage's format of the records
//                           (entry_storage::format_version)
//   node ID        u32 n + n bytes (raw ID, at most max_node_id_size)
//   created        u64      wall clock µs when the copy was made
//   clock mark     u64      the node's clock mark then (µs)
//   entries        repeated: 'E' (1 byte), u32 key length, u32 record
//                  length, the key, the record (the storage's bytes as is)
//   trailer        'Z' (1 byte), u64 entry count, u64 XXH64 (seed 0) of
//                  every byte before it, from the magic through the count
//
// Nothing may follow the trailer. The magic's high byte and line endings
// catch a file mangled as text; the version comes right after it, so a
// later layout can change everything behind it and an older build still
// names the version it cannot read. The checksum covers the whole file, so
// any flipped byte or missing tail is an error, never a silent partial
// restore.

#include <cstdint>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <string_view>

namespace syncmesh {

/// Why a backup file cannot be read (truncated, corrupted, another format)
/// or an entry cannot be written: one line that says what to do.
class backup_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// What a backup file says about itself, ahead of its entries.
struct backup_header {
  /// The storage's disk format of the records (entry_storage's).
  uint32_t disk_format = 0;
  /// The ID of the node that made the backup (raw bytes).
  std::string node_id;
  /// When the consistent copy was made (wall clock µs).
  uint64_t created_us = 0;
  /// The node's clock mark when the copy was made (µs): the higher of its
  /// clock's high-water mark and the clock reserved on disk. A restored
  /// node's clock starts above it (and above every stamp in the file).
  uint64_t clock_mark_us = 0;
};

/// Bounds a reader checks every length against before it allocates, and a
/// writer refuses to exceed (so every file written can be read back).
struct backup_limits {
  /// Largest key (bytes).
  uint32_t max_key = 1024 * 1024;
  /// Largest record: one key's whole entry (bytes).
  uint32_t max_record = 256 * 1024 * 1024;
  /// Largest node ID (bytes; the wire's max_node_id_size).
  uint32_t max_node_id = 128;
};

/// The constants of the file layout (see the file comment).
struct backup_file {
  /// The layout this build writes and the only one it reads. Raise it for
  /// any change of the layout after the version field.
  static constexpr uint32_t format_version = 1;
  /// The first bytes of every backup file.
  static constexpr std::string_view magic{"\x89SMB\r\n\x1a\n", 8};
  /// The tag before each entry.
  static constexpr char entry_tag = 'E';
  /// The tag before the trailer.
  static constexpr char trailer_tag = 'Z';
};

/// Encodes a backup file a piece at a time: the caller takes the bytes
/// produced so far whenever it likes (a bounded buffer for a stream).
class backup_writer {
public:
  /// Starts a file with `header`. Throws backup_error when the node ID is
  /// over `limits`.
  explicit backup_writer(const backup_header& header,
                         backup_limits limits = {});

  ~backup_writer();
  backup_writer(const backup_writer&) = delete;
  backup_writer& operator=(const backup_writer&) = delete;

  /// Appends one entry. Throws backup_error when the key or record is over
  /// the limits or empty key, or after finish().
  void add(std::string_view key, std::string_view record);

  /// Appends the trailer (count and checksum); nothing may follow.
  void finish();

  /// The bytes produced since the last take (moved out).
  std::string take();

  /// Bytes produced and not yet taken.
  size_t pending() const noexcept { return out_.size(); }

  /// Entries added so far.
  uint64_t count() const noexcept { return count_; }

  /// Bytes produced so far, taken or not (the file's size once finished).
  uint64_t bytes() const noexcept { return bytes_; }

private:
  /// Appends `bytes` to the output and the checksum.
  void emit(std::string_view bytes);

  backup_limits limits_;
  std::string out_;
  uint64_t count_ = 0;
  uint64_t bytes_ = 0;
  bool finished_ = false;
  /// The running XXH64 state (opaque: xxhash.h stays out of this header).
  void* hash_ = nullptr;
};

/// Decodes a backup file from a stream, checking as it goes: the header on
/// construction, each length against the limits before reading its bytes,
/// and the trailer's count and checksum (and the end of the stream) when
/// the entries end. Every problem is a backup_error naming it and the byte
/// offset where it was found.
class backup_reader {
public:
  /// Reads and checks the header of `in` (which must outlive the reader).
  /// Throws backup_error for a file that is not a backup, another layout
  /// version (named in the message), or a truncated or oversized header.
  explicit backup_reader(std::istream& in, backup_limits limits = {});

  ~backup_reader();
  backup_reader(const backup_reader&) = delete;
  backup_reader& operator=(const backup_reader&) = delete;

  /// The file's header.
  const backup_header& header() const noexcept { return header_; }

  /// Reads the next entry into `key` and `record`; returns false once the
  /// trailer was read and checked (then the whole file is proven intact).
  /// Throws backup_error on truncation, corruption or a bad trailer.
  bool next(std::string& key, std::string& record);

  /// Entries read so far.
  uint64_t count() const noexcept { return count_; }

  /// Bytes read so far.
  uint64_t offset() const noexcept { return offset_; }

private:
  /// Reads exactly `n` bytes into `out` (growing it as the bytes arrive,
  /// so a lying length cannot make it allocate more than the file holds);
  /// `what` names the part for the truncation error.
  void read_exact(std::string& out, size_t n, const char* what);
  uint32_t read_u32(const char* what);
  uint64_t read_u64(const char* what);
  [[noreturn]] void fail(const std::string& why) const;

  std::istream& in_;
  backup_limits limits_;
  backup_header header_;
  uint64_t count_ = 0;
  uint64_t offset_ = 0;
  bool done_ = false;
  std::string scratch_;
  void* hash_ = nullptr;
};

} // namespace syncmesh
