// The backup file format (messages/backup_file.hpp): round trips, and every
// way a file can be wrong (truncated anywhere, any byte flipped, an unknown
// version, hostile lengths, bytes after the end) refused with a clear
// error, never a partial read that looks whole (issue 15).
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "messages/backup_file.hpp"

using namespace syncmesh;

namespace {

using entries = std::vector<std::pair<std::string, std::string>>;

backup_header sample_header() {
  backup_header h;
  h.disk_format = 1;
  h.node_id = std::string{"\x01node\x00id\xff", 9};
  h.created_us = 1'700'000'000'123'456;
  h.clock_mark_us = 1'700'000'000'999'999;
  return h;
}

/// A whole file of `items` under `h`, taken in pieces as a stream would.
std::string file_of(const backup_header& h, const entries& items) {
  backup_writer w{h};
  std::string out = w.take();
  for (const auto& [k, r] : items) {
    w.add(k, r);
    if (w.pending() > 100)
      out += w.take();
  }
  w.finish();
  out += w.take();
  BOOST_TEST(w.bytes() == out.size());
  BOOST_TEST(w.count() == items.size());
  return out;
}

/// Every entry of `bytes`, after its header; throws backup_error.
entries read_all(const std::string& bytes, backup_header* header = nullptr,
                 backup_limits limits = {}) {
  std::istringstream in{bytes};
  backup_reader r{in, limits};
  if (header != nullptr)
    *header = r.header();
  entries out;
  std::string k;
  std::string v;
  while (r.next(k, v))
    out.emplace_back(k, v);
  BOOST_TEST(r.count() == out.size());
  BOOST_TEST(r.offset() == bytes.size());
  // Once the trailer was checked, next() stays false.
  BOOST_TEST(!r.next(k, v));
  return out;
}

/// The backup_error `bytes` raise when read, or "" when they read whole.
std::string error_of(const std::string& bytes, backup_limits limits = {}) {
  try {
    read_all(bytes, nullptr, limits);
  } catch (const backup_error& e) {
    return e.what();
  }
  return {};
}

entries sample_entries() {
  return {{"a", "record of a"},
          {std::string{"bin\0key", 7}, std::string{"\0\x01\x02", 3}},
          {"empty-record", ""},
          {"k/2", std::string(300, 'x')}};
}

void put_u32_at(std::string& bytes, size_t at, uint32_t x) {
  for (int i = 0; i < 4; ++i)
    bytes[at + i] = static_cast<char>((x >> (8 * i)) & 0xff);
}

/// Where the first entry's key length sits in a file of sample_header().
size_t first_key_length_at() {
  return 8 + 4 + 4 + 4 + sample_header().node_id.size() + 8 + 8 + 1;
}

} // namespace

BOOST_AUTO_TEST_SUITE(backup_file_tests)

BOOST_AUTO_TEST_CASE(a_file_reads_back_as_written) {
  auto items = sample_entries();
  auto bytes = file_of(sample_header(), items);
  BOOST_TEST(bytes.substr(0, 8) == std::string(backup_file::magic));
  backup_header h;
  auto got = read_all(bytes, &h);
  BOOST_TEST((got == items));
  auto want = sample_header();
  BOOST_TEST(h.disk_format == want.disk_format);
  BOOST_TEST(h.node_id == want.node_id);
  BOOST_TEST(h.created_us == want.created_us);
  BOOST_TEST(h.clock_mark_us == want.clock_mark_us);
}

BOOST_AUTO_TEST_CASE(an_empty_dictionary_and_a_large_record_round_trip) {
  BOOST_TEST(read_all(file_of(sample_header(), {})).empty());
  // Larger than the reader's growth step (1 MiB): read in pieces.
  entries big{{"big", std::string(3 * 1024 * 1024 + 17, '\x7f')}};
  BOOST_TEST((read_all(file_of(sample_header(), big)) == big));
}

BOOST_AUTO_TEST_CASE(every_truncation_is_refused) {
  auto bytes = file_of(sample_header(), sample_entries());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto err = error_of(bytes.substr(0, n));
    BOOST_TEST_INFO("kept " << n << " of " << bytes.size() << " bytes");
    BOOST_TEST(!err.empty());
    if (n >= 8)
      BOOST_TEST(err.find("truncated") != std::string::npos);
    else
      BOOST_TEST(err.find("not a syncmesh backup") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(every_flipped_byte_is_refused) {
  auto bytes = file_of(sample_header(), sample_entries());
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      auto bad = bytes;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      BOOST_TEST_INFO("byte " << i << " ^ " << int{mask});
      BOOST_TEST(!error_of(bad).empty());
    }
  }
  // The checksum is what catches a flip inside a record.
  auto bad = bytes;
  bad[bytes.size() - 40] ^= 0x10;
  BOOST_TEST(error_of(bad).find("checksum") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_unknown_version_is_named) {
  auto bytes = file_of(sample_header(), sample_entries());
  auto newer = bytes;
  put_u32_at(newer, 8, 2);
  auto err = error_of(newer);
  BOOST_TEST(err.find("backup format version 2") != std::string::npos, err);
  BOOST_TEST(err.find("this build reads version 1") != std::string::npos, err);
  BOOST_TEST(err.find("newer syncmesh") != std::string::npos, err);
  auto zero = bytes;
  put_u32_at(zero, 8, 0);
  BOOST_TEST(error_of(zero).find("version 0") != std::string::npos);
  // Not a backup at all: said as such, not as a version.
  BOOST_TEST(error_of("{\"key\": \"value\"}\n").find("not a syncmesh backup")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(hostile_lengths_are_refused_before_allocating) {
  auto bytes = file_of(sample_header(), sample_entries());
  auto at = first_key_length_at();
  // A key length of 4 GiB: refused against the limit, nothing read.
  auto huge_key = bytes;
  put_u32_at(huge_key, at, 0xffffffffu);
  auto err = error_of(huge_key);
  BOOST_TEST(
    err.find("declares a key of 4294967295 bytes") != std::string::npos, err);
  auto empty_key = bytes;
  put_u32_at(empty_key, at, 0);
  BOOST_TEST(error_of(empty_key).find("key of 0 bytes") != std::string::npos);
  auto huge_record = bytes;
  put_u32_at(huge_record, at + 4, 0xfffffff0u);
  BOOST_TEST(error_of(huge_record).find("declares a record of")
             != std::string::npos);
  // Within the limits but longer than the file: truncated, not a read of
  // gigabytes.
  backup_limits roomy;
  roomy.max_record = 0xffffffffu;
  BOOST_TEST(error_of(huge_record, roomy).find("truncated")
             != std::string::npos);
  // A node ID longer than any node's.
  auto huge_id = bytes;
  put_u32_at(huge_id, 16, 1u << 30);
  BOOST_TEST(error_of(huge_id).find("node ID of") != std::string::npos);
  // Tighter limits of a reader apply to honest files too.
  backup_limits tight;
  tight.max_record = 100;
  BOOST_TEST(error_of(bytes, tight).find("at most 100") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bytes_after_the_trailer_are_refused) {
  auto bytes = file_of(sample_header(), sample_entries());
  BOOST_TEST(error_of(bytes + "x").find("follow the trailer")
             != std::string::npos);
  // Two backups joined: the same.
  BOOST_TEST(!error_of(bytes + bytes).empty());
}

BOOST_AUTO_TEST_CASE(the_writer_refuses_what_no_reader_would_take) {
  auto h = sample_header();
  h.node_id.clear();
  BOOST_CHECK_THROW(backup_writer{h}, backup_error);
  backup_limits tight;
  tight.max_key = 4;
  tight.max_record = 8;
  backup_writer w{sample_header(), tight};
  BOOST_CHECK_THROW(w.add("", "x"), backup_error);
  BOOST_CHECK_THROW(w.add("12345", "x"), backup_error);
  BOOST_CHECK_THROW(w.add("k", "123456789"), backup_error);
  w.add("k", "12345678");
  w.finish();
  BOOST_CHECK_THROW(w.add("k2", "x"), backup_error);
  BOOST_TEST(w.count() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
