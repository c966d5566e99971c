// clang-format off
// expect-error: could not convert.*to .syncmesh::bytes.
// Text never becomes bytes implicitly: bytes::from("text") says so.
#include <syncmesh/value.hpp>

void store(syncmesh::bytes raw);

void trap() {
  store("text");
}
