// Feeds arbitrary anti-entropy digests (every stage: SUMMARY, KEYS, SKETCH,
// OFFERS, WANT) to a peer's outbox over a store of 3,000 keys, with each
// reconciliation method, and drains what it queues: hostile digests must
// neither crash it nor make it queue without bound.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "actors/anti_entropy.hpp"
#include "actors/store_state.hpp"
#include "syncmesh/config.hpp"
#include "syncmesh/pb/wire.pb.h"
#include "tests/support/remote_writes.hpp"

namespace {

const syncmesh::store_state& store() {
  static const auto* st = [] {
    auto* s = new syncmesh::store_state;
    for (int i = 0; i < 3000; ++i) {
      std::string err;
      auto writer = i % 3 == 0 ? "node-a" : "node-b";
      s->apply(syncmesh::test::set_record(
                 "key" + std::to_string(i), syncmesh::value{int64_t{i}},
                 syncmesh::test::remote_version(writer, 0, 0, 1000 + i, 0)),
               false, err);
    }
    return s;
  }();
  return *st;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace syncmesh;
  if (size == 0)
    return 0;
  pb::Digest digest;
  if (!digest.ParseFromArray(data + 1, static_cast<int>(size - 1)))
    return 0; // the link says goodbye here
  constexpr ae_method methods[]
    = {ae_method::automatic, ae_method::sketch, ae_method::key_lists};
  constexpr size_t window = 16 * 1024;
  ae_limits limits;
  limits.budget_bytes = 512 * 1024;
  limits.max_frame_bytes = 1024 * 1024;
  ae_outbox box{1, window, methods[data[0] % 3], limits};
  box.answer(digest, store());
  pb::Envelope env;
  size_t frames = 0;
  while (box.next(store(), env)) {
    // A window holds whole buckets or one sketch, never more than a frame,
    // whatever the digest said.
    if (env.ByteSizeLong() > limits.max_frame_bytes)
      std::abort();
    // Whatever the digest asked for, the outbox holds at most its budget
    // (plus the records of the one entry being sent).
    if (box.queued_bytes() > limits.budget_bytes + 64 * 1024)
      std::abort();
    if (++frames > 10000)
      std::abort();
    box.acknowledge(1);
    env.Clear();
  }
  return 0;
}
