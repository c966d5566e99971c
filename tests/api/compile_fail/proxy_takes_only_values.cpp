// clang-format off
// expect-error: no match for .operator=.
// sock["k"] = x compiles only for what is a value.
#include <syncmesh/sync_socket.hpp>

struct widget {};

void trap(syncmesh::sync_socket& sock) {
  sock["k"] = widget{};
}
