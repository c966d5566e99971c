// Feeds arbitrary bytes, in arbitrary splits, through everything a peer
// link does with input before the handshake matters: the frame decoder, the
// envelope parser, and the validation of write batches and values.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "actors/router_state.hpp"
#include "messages/frame_codec.hpp"
#include "messages/value_proto.hpp"
#include "syncmesh/pb/wire.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace syncmesh;
  constexpr size_t max_frame = 64 * 1024;
  if (size == 0)
    return 0;
  // The first byte picks the read size, so the fuzzer explores splits.
  size_t chunk = 1 + data[0] % 64;
  frame_decoder decoder{max_frame};
  std::string payload;
  for (size_t off = 1; off < size; off += chunk) {
    auto n = std::min(chunk, size - off);
    decoder.feed(
      std::string_view{reinterpret_cast<const char*>(data) + off, n});
    for (;;) {
      auto status = decoder.next(payload);
      if (status == frame_status::too_large)
        return 0; // the link says goodbye here
      if (status == frame_status::need_more)
        break;
      if (payload.size() > max_frame)
        std::abort();
      pb::Envelope env;
      if (!parse_envelope(payload, env).empty())
        return 0; // the link says goodbye here
      pb::WriteBatch batch;
      if (envelope_builder::decode_writes(env, batch).empty()) {
        validate_remote_batch(batch, write_limits{1024, 16 * 1024});
        // The quick check must accept exactly what the conversion accepts.
        for (const auto& rec : batch.records()) {
          if (!rec.has_value())
            continue;
          value out;
          if (validate(rec.value()).empty()
              != from_proto(rec.value(), out).empty())
            std::abort();
        }
      }
    }
    // Never more than one frame plus one read is buffered.
    if (decoder.buffered() > max_frame + 4 + chunk)
      std::abort();
  }
  return 0;
}
