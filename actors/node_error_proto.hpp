#pragma once

// A node error (a CAF error of category "syncmesh") as protobuf data and
// back: for replies that carry one error per item (SetManyReply), where a
// CAF response can carry only one error for the whole request.

#include <caf/fwd.hpp>

#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

/// Writes `err` into `out`: its code and its context (text, uint64_t and
/// uint32_t values, the types node errors are made of; any other value is
/// written as its rendering). An error of another category becomes
/// errc::malformed with the error's rendering as its text.
void to_proto(const caf::error& err, pb::NodeError& out);

/// The CAF error `x` describes (the inverse of to_proto).
caf::error from_proto(const pb::NodeError& x);

} // namespace syncmesh
