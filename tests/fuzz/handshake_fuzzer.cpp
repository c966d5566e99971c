// Parses arbitrary bytes as an envelope and runs the handshake check on any
// hello; a hello that passes must survive an encode/decode round trip.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "actors/peer_link_state.hpp"
#include "messages/frame_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace syncmesh;
  pb::Envelope env;
  std::string_view bytes{reinterpret_cast<const char*>(data), size};
  if (!parse_envelope(bytes, env).empty() || !env.has_hello())
    return 0;
  const std::string protocol = "syncmesh subnet= leasing=1";
  const hello_terms terms; // this build's versions, default limits
  auto verdict = check_hello(env.hello(), protocol, "fuzz-node", terms);
  if (!verdict.ok()) {
    if (verdict.detail.empty())
      std::abort(); // every refusal explains itself
    make_goodbye(verdict.reason, verdict.detail);
    return 0;
  }
  if (env.hello().protocol_id() != protocol || env.hello().node_id().empty()
      || env.hello().node_id() == "fuzz-node"
      || env.hello().max_value_size() != terms.max_value_size
      || env.hello().max_value_depth() != terms.max_value_depth
      || verdict.version < terms.min_version
      || verdict.version > terms.max_version
      || verdict.version < env.hello().min_version()
      || verdict.version > env.hello().max_version())
    std::abort(); // accepted only on equal limits and a common version
  auto hello
    = make_hello(env.hello().node_id(), protocol, env.hello().listen_host(),
                 static_cast<uint16_t>(env.hello().listen_port()), terms);
  std::string frame;
  if (!append_frame(frame, hello, 1 << 20))
    return 0;
  frame_decoder decoder{1 << 20};
  decoder.feed(frame);
  std::string payload;
  pb::Envelope again;
  if (decoder.next(payload) != frame_status::ok
      || !parse_envelope(payload, again).empty()
      || again.hello().node_id() != env.hello().node_id()
      || !check_hello(again.hello(), protocol, "fuzz-node", terms).ok())
    std::abort();
  return 0;
}
