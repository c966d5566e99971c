#pragma once

// A write refused for leased keys travels from the dict store to the
// facade's callers as a CAF error. Its context keeps the old shape for the
// first conflict (key, owner hex, lease end µs) so every reader of a single
// refusal works unchanged, and adds every conflict of a batch as a
// std::vector<std::string> of (key, owner hex, lease end µs in decimal)
// triples: CAF 0.17 knows that type (@strvec), so no new message type and
// no .proto change is needed. Encoding and decoding live here together.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/message.hpp>

#include "syncmesh/caf_types.hpp"
#include "syncmesh/errors.hpp"

namespace syncmesh {

/// The `lease_held` error naming every conflict of `all` (not empty).
inline caf::error lease_refusal(const std::vector<lease_conflict>& all) {
  std::vector<std::string> flat;
  flat.reserve(all.size() * 3);
  for (const auto& c : all) {
    flat.push_back(c.key);
    flat.push_back(c.owner.to_hex());
    flat.push_back(std::to_string(c.lease_end_us));
  }
  const auto& first = all.front();
  return make_error(errc::lease_held, first.key, first.owner.to_hex(),
                    first.lease_end_us, std::move(flat));
}

/// The owner an error's context names in hex (empty when it is not hex).
inline node_id owner_of(const std::string& hex) {
  return node_id::from_hex(hex).value_or(node_id{});
}

/// Every conflict a `lease_held` error names: all of a batch refusal, or
/// the one of a single-key refusal; empty for any other error.
inline std::vector<lease_conflict> lease_conflicts_of(const caf::error& err) {
  std::vector<lease_conflict> out;
  if (code_of(err) != errc::lease_held)
    return out;
  const auto& ctx = err.context();
  if (ctx.size() > 3 && ctx.match_element<std::vector<std::string>>(3)) {
    const auto& flat = ctx.get_as<std::vector<std::string>>(3);
    for (size_t i = 0; i + 2 < flat.size(); i += 3)
      out.push_back(
        lease_conflict{flat[i], owner_of(flat[i + 1]),
                       std::strtoull(flat[i + 2].c_str(), nullptr, 10)});
    if (!out.empty())
      return out;
  }
  lease_conflict one;
  if (ctx.size() > 0 && ctx.match_element<std::string>(0))
    one.key = ctx.get_as<std::string>(0);
  if (ctx.size() > 1 && ctx.match_element<std::string>(1))
    one.owner = owner_of(ctx.get_as<std::string>(1));
  if (ctx.size() > 2 && ctx.match_element<uint64_t>(2))
    one.lease_end_us = ctx.get_as<uint64_t>(2);
  out.push_back(std::move(one));
  return out;
}

} // namespace syncmesh
