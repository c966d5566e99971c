#include "messages/backup_file.hpp"

#include <algorithm>
#include <istream>

#include <xxhash.h>

namespace syncmesh {

namespace {

XXH64_state_t* state_of(void* p) {
  return static_cast<XXH64_state_t*>(p);
}

/// A fresh XXH64 state (seed 0); throws std::bad_alloc like new.
void* new_hash() {
  auto* st = XXH64_createState();
  if (st == nullptr)
    throw std::bad_alloc{};
  XXH64_reset(st, 0);
  return st;
}

void put_u32(std::string& out, uint32_t x) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
}

void put_u64(std::string& out, uint64_t x) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
}

uint64_t get_le(const std::string& bytes) {
  uint64_t x = 0;
  for (size_t i = bytes.size(); i-- > 0;)
    x = (x << 8) | static_cast<unsigned char>(bytes[i]);
  return x;
}

/// "0x" and two hex digits of `c`.
std::string hex_byte(char c) {
  constexpr char digits[] = "0123456789abcdef";
  auto u = static_cast<unsigned char>(c);
  return std::string{"0x"} + digits[u >> 4] + digits[u & 0xf];
}

/// The largest piece read_exact grows its buffer by: a length field that
/// lies costs at most this much beyond the bytes really there.
constexpr size_t read_step = 1024 * 1024;

} // namespace

// -- writer -------------------------------------------------------------------

backup_writer::backup_writer(const backup_header& header, backup_limits limits)
    : limits_(limits), hash_(new_hash()) {
  if (header.node_id.empty() || header.node_id.size() > limits_.max_node_id)
    throw backup_error("backup: a node ID of "
                       + std::to_string(header.node_id.size())
                       + " bytes cannot be written (1 to "
                       + std::to_string(limits_.max_node_id) + ")");
  std::string head{backup_file::magic};
  put_u32(head, backup_file::format_version);
  put_u32(head, header.disk_format);
  put_u32(head, static_cast<uint32_t>(header.node_id.size()));
  head += header.node_id;
  put_u64(head, header.created_us);
  put_u64(head, header.clock_mark_us);
  emit(head);
}

backup_writer::~backup_writer() {
  XXH64_freeState(state_of(hash_));
}

void backup_writer::emit(std::string_view bytes) {
  XXH64_update(state_of(hash_), bytes.data(), bytes.size());
  out_.append(bytes.data(), bytes.size());
  bytes_ += bytes.size();
}

void backup_writer::add(std::string_view key, std::string_view record) {
  if (finished_)
    throw backup_error("backup: an entry after the trailer");
  if (key.empty() || key.size() > limits_.max_key)
    throw backup_error("backup: a key of " + std::to_string(key.size())
                       + " bytes cannot be written (1 to "
                       + std::to_string(limits_.max_key) + ")");
  if (record.size() > limits_.max_record)
    throw backup_error("backup: the record of a key of "
                       + std::to_string(key.size()) + " bytes has "
                       + std::to_string(record.size())
                       + " bytes, over the file's limit of "
                       + std::to_string(limits_.max_record));
  std::string head;
  head.push_back(backup_file::entry_tag);
  put_u32(head, static_cast<uint32_t>(key.size()));
  put_u32(head, static_cast<uint32_t>(record.size()));
  emit(head);
  emit(key);
  emit(record);
  ++count_;
}

void backup_writer::finish() {
  if (finished_)
    return;
  std::string tail;
  tail.push_back(backup_file::trailer_tag);
  put_u64(tail, count_);
  emit(tail);
  std::string sum;
  put_u64(sum, XXH64_digest(state_of(hash_)));
  out_ += sum; // the checksum does not cover itself
  bytes_ += sum.size();
  finished_ = true;
}

std::string backup_writer::take() {
  std::string out;
  out.swap(out_);
  return out;
}

// -- reader -------------------------------------------------------------------

backup_reader::backup_reader(std::istream& in, backup_limits limits)
    : in_(in), limits_(limits), hash_(new_hash()) {
  std::string magic;
  // A short or empty file is "not a backup" rather than "truncated": it
  // never got as far as saying what it is.
  magic.resize(backup_file::magic.size());
  in_.read(magic.data(), static_cast<std::streamsize>(magic.size()));
  auto got = static_cast<size_t>(in_.gcount());
  if (got < magic.size() || magic != backup_file::magic)
    throw backup_error("not a syncmesh backup file (its first bytes are not "
                       "the backup magic)");
  XXH64_update(state_of(hash_), magic.data(), magic.size());
  offset_ = magic.size();
  auto version = read_u32("the format version");
  if (version != backup_file::format_version)
    fail("backup format version " + std::to_string(version)
         + "; this build reads version "
         + std::to_string(backup_file::format_version)
         + (version > backup_file::format_version
              ? " (written by a newer syncmesh: restore with that version)"
              : " (not a version any syncmesh wrote: the file is "
                "corrupted)"));
  header_.disk_format = read_u32("the disk format");
  auto id_size = read_u32("the node ID's length");
  if (id_size == 0 || id_size > limits_.max_node_id)
    fail("a node ID of " + std::to_string(id_size) + " bytes (1 to "
         + std::to_string(limits_.max_node_id)
         + " allowed): the file is corrupted");
  read_exact(header_.node_id, id_size, "the node ID");
  header_.created_us = read_u64("the creation time");
  header_.clock_mark_us = read_u64("the clock mark");
}

backup_reader::~backup_reader() {
  XXH64_freeState(state_of(hash_));
}

void backup_reader::fail(const std::string& why) const {
  throw backup_error(why + " (at byte " + std::to_string(offset_) + ")");
}

void backup_reader::read_exact(std::string& out, size_t n, const char* what) {
  out.clear();
  while (out.size() < n) {
    auto step = std::min(read_step, n - out.size());
    auto old = out.size();
    out.resize(old + step);
    in_.read(out.data() + old, static_cast<std::streamsize>(step));
    auto got = static_cast<size_t>(in_.gcount());
    XXH64_update(state_of(hash_), out.data() + old, got);
    offset_ += got;
    if (got < step)
      fail(std::string{"the file ends inside "} + what + " (after "
           + std::to_string(count_)
           + " complete entries): it is truncated, an incomplete backup");
  }
}

uint32_t backup_reader::read_u32(const char* what) {
  read_exact(scratch_, 4, what);
  return static_cast<uint32_t>(get_le(scratch_));
}

uint64_t backup_reader::read_u64(const char* what) {
  read_exact(scratch_, 8, what);
  return get_le(scratch_);
}

bool backup_reader::next(std::string& key, std::string& record) {
  if (done_)
    return false;
  char tag = 0;
  in_.read(&tag, 1);
  if (in_.gcount() < 1)
    fail("the file ends after " + std::to_string(count_)
         + " entries without its trailer: it is truncated, an incomplete "
           "backup");
  XXH64_update(state_of(hash_), &tag, 1);
  ++offset_;
  if (tag == backup_file::trailer_tag) {
    auto count = read_u64("the trailer");
    auto sum = XXH64_digest(state_of(hash_));
    // The checksum itself is not hashed: read it past the hash.
    std::string stored(8, '\0');
    in_.read(stored.data(), 8);
    if (in_.gcount() < 8)
      fail("the file ends inside the trailer's checksum: it is truncated");
    offset_ += 8;
    if (get_le(stored) != sum)
      fail("the checksum does not match: the file is corrupted");
    if (count != count_)
      fail("the trailer counts " + std::to_string(count) + " entries but "
           + std::to_string(count_) + " were read: the file is corrupted");
    if (in_.peek() != std::char_traits<char>::eof())
      fail("bytes follow the trailer: the file is corrupted or two files "
           "were joined");
    done_ = true;
    return false;
  }
  if (tag != backup_file::entry_tag)
    fail("an unknown item tag " + hex_byte(tag) + " after "
         + std::to_string(count_) + " entries: the file is corrupted");
  auto key_size = read_u32("an entry's key length");
  auto record_size = read_u32("an entry's record length");
  if (key_size == 0 || key_size > limits_.max_key)
    fail("entry " + std::to_string(count_ + 1) + " declares a key of "
         + std::to_string(key_size) + " bytes (1 to "
         + std::to_string(limits_.max_key)
         + " allowed): the file is corrupted");
  if (record_size > limits_.max_record)
    fail("entry " + std::to_string(count_ + 1) + " declares a record of "
         + std::to_string(record_size) + " bytes (at most "
         + std::to_string(limits_.max_record)
         + " allowed): the file is corrupted");
  read_exact(key, key_size, "an entry's key");
  read_exact(record, record_size, "an entry's record");
  ++count_;
  return true;
}

} // namespace syncmesh
