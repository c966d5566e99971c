#include "messages/version.hpp"

#include "syncmesh/pb/entry.pb.h"

namespace syncmesh {

std::string to_hex(const std::string& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string result;
  result.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    result += digits[c >> 4];
    result += digits[c & 0x0f];
  }
  return result;
}

namespace {

template <class T>
int three_way(const T& x, const T& y) noexcept {
  return x < y ? -1 : (y < x ? 1 : 0);
}

} // namespace

int compare(const hlc_stamp& x, const hlc_stamp& y) noexcept {
  if (auto c = three_way(x.wall_us, y.wall_us))
    return c;
  if (auto c = three_way(x.counter, y.counter))
    return c;
  return three_way(x.node.compare(y.node), 0);
}

int compare(const version& x, const version& y) noexcept {
  if (auto c = three_way(x.epoch, y.epoch))
    return c;
  // Within an epoch the earlier claim wins, hence the reversed operands.
  if (auto c = three_way(y.claim_us, x.claim_us))
    return c;
  if (auto c = three_way(y.claimer.compare(x.claimer), 0))
    return c;
  return compare(x.stamp, y.stamp);
}

bool same_claim(const version& x, const version& y) noexcept {
  return x.epoch == y.epoch && x.claim_us == y.claim_us
         && x.claimer == y.claimer;
}

void to_proto(const hlc_stamp& x, pb::Hlc* out) {
  out->set_wall_us(x.wall_us);
  out->set_counter(x.counter);
  out->set_node(x.node);
}

void to_proto(const version& x, pb::Version* out) {
  out->set_epoch(x.epoch);
  out->set_claim_us(x.claim_us);
  out->set_claimer(x.claimer);
  to_proto(x.stamp, out->mutable_stamp());
  out->set_lease_end_us(x.lease_end_us);
}

std::string from_proto(const pb::Version& x, version& out) {
  if (!x.has_stamp())
    return "version has no stamp";
  if (x.stamp().node().empty())
    return "version stamp names no node";
  if (x.stamp().node().size() > max_node_id_size
      || x.claimer().size() > max_node_id_size)
    return "node ID in version exceeds " + std::to_string(max_node_id_size)
           + " bytes";
  if (x.stamp().wall_us() == 0)
    return "version stamp has no time";
  if (x.stamp().wall_us() > max_version_time_us
      || x.claim_us() > max_version_time_us)
    return "version time exceeds 2^62 µs";
  if (x.epoch() > max_epoch)
    return "version epoch " + std::to_string(x.epoch())
           + " leaves no room for later claims";
  out.epoch = x.epoch();
  out.claim_us = x.claim_us();
  out.claimer = x.claimer();
  out.stamp.wall_us = x.stamp().wall_us();
  out.stamp.counter = x.stamp().counter();
  out.stamp.node = x.stamp().node();
  out.lease_end_us = x.lease_end_us();
  return {};
}

hybrid_clock::hybrid_clock(raw_node_id self, wall_clock wall,
                           uint64_t max_skew_us)
    : wall_(std::move(wall)), max_skew_us_(max_skew_us) {
  last_.node = std::move(self);
}

hlc_stamp hybrid_clock::next() {
  auto now = wall_();
  if (now > last_.wall_us) {
    last_.wall_us = now;
    last_.counter = 0;
  } else if (last_.counter == UINT32_MAX) {
    ++last_.wall_us;
    last_.counter = 0;
  } else {
    ++last_.counter;
  }
  return last_;
}

bool hybrid_clock::acceptable(const hlc_stamp& remote) const {
  return remote.wall_us <= wall_() + max_skew_us_;
}

bool hybrid_clock::observe(const hlc_stamp& remote) {
  if (!acceptable(remote))
    return false;
  if (remote.wall_us > last_.wall_us
      || (remote.wall_us == last_.wall_us && remote.counter > last_.counter)) {
    last_.wall_us = remote.wall_us;
    last_.counter = remote.counter;
  }
  return true;
}

} // namespace syncmesh
