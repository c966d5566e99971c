// clang-format off
// expect-error: use of deleted function .syncmesh::value::value.T\*. \[with T = int\]
// A pointer other than const char* would silently be a bool (its null test).
#include <syncmesh/value.hpp>

void trap() {
  int x = 1;
  syncmesh::value v = &x;
  (void)v;
}
