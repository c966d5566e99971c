// clang-format off
// expect-error: cannot convert .syncmesh::value::owned_field. to .const syncmesh::value\*.
// A pointer into a temporary value would dangle at the semicolon: find on a
// temporary returns an owned_field (a copy), which is no pointer.
#include <syncmesh/value.hpp>

syncmesh::value fetch();

void trap() {
  const syncmesh::value* field = fetch().find("a");
  (void)field;
}
