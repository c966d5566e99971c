// Feeds arbitrary bytes, in arbitrary splits, through what a py2p link does
// with input: the frame decoder, decompression with the sender's methods
// (bounded by the frame size), the checksum, the msgpack decoder, the
// classification of messages, and the translation of stores into write
// records, which must then be valid syncmesh values. The second byte picks
// the compression list the "peer" advertised, so zlib and gzip paths run.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "actors/py2p_link_state.hpp"
#include "actors/router_state.hpp"
#include "messages/py2p_codec.hpp"
#include "messages/value_proto.hpp"
#include "syncmesh/pb/entry.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace syncmesh;
  constexpr size_t max_frame = 64 * 1024;
  if (size < 2)
    return 0;
  size_t chunk = 1 + data[0] % 64;
  py2p_link_settings cfg{"FuzzSelf", py2p::protocol_id("sync", true),
                         "127.0.0.1", 4444, max_frame};
  py2p_session session{cfg};
  // A handshake from the fuzzed peer first sets its compression list.
  std::vector<pb::Value> hs = py2p::handshake_payload(
    "FuzzPeer", cfg.protocol_id, "127.0.0.1", 5555,
    data[1] % 3 == 0 ? std::vector<uint8_t>{}
    : data[1] % 3 == 1
      ? std::vector<uint8_t>{py2p::method::zlib}
      : std::vector<uint8_t>{py2p::method::gzip, py2p::method::zlib});
  auto hello
    = py2p::make_raw(py2p::build(py2p::flag::whisper, "FuzzPeer", 1, hs));
  std::vector<py2p_inbound> out;
  if (!session.feed(py2p::frame(hello, {}, max_frame), out).empty())
    std::abort(); // our own handshake must always be accepted
  for (size_t off = 2; off < size; off += chunk) {
    auto n = std::min(chunk, size - off);
    out.clear();
    auto err = session.feed(
      std::string_view{reinterpret_cast<const char*>(data) + off, n}, out);
    for (auto& in : out) {
      if (in.raw.id != py2p::sha256(in.raw.msgpack))
        std::abort(); // only checked messages get through
      if (in.what != py2p_inbound::kind::write)
        continue;
      pb::WriteRecord rec;
      if (!to_write_record(in.store, in.msg.sender, in.msg.time, rec).empty())
        continue;
      pb::WriteBatch batch;
      *batch.add_records() = rec;
      validate_remote_batch(batch, write_limits{1024, 16 * 1024});
      if (rec.has_value()) {
        value v;
        if (!from_proto(rec.value(), v).empty())
          std::abort(); // decoded msgpack is always a valid value
      }
    }
    if (!err.empty())
      return 0; // the link closes here
  }
  return 0;
}
