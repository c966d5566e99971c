// clang-format off
// expect-error: use of deleted function .*syncmesh::value::find
// A pointer into a temporary value would dangle at the semicolon.
#include <syncmesh/value.hpp>

syncmesh::value fetch();

void trap() {
  const syncmesh::value* field = fetch().find("a");
  (void)field;
}
