#pragma once

// How the node's CAF errors become syncmesh exceptions: one mapping for the
// blocking sync_socket and the HTTP API, so both give the same texts.
// Internal: public headers do not include it.

#include <cstddef>
#include <string>

#include <caf/fwd.hpp>

namespace syncmesh {

/// The string in position `i` of an error's context, or "".
std::string context_string(const caf::error& err, size_t i);

/// Throws the exception sync_socket throws for `err` (key_error,
/// lease_error, type_error, value_error or error).
[[noreturn]] void throw_node_error(caf::actor_system& sys,
                                   const caf::error& err);

} // namespace syncmesh
