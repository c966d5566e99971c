// An application's test that uses the installed test kit.
#include <iostream>

#include <syncmesh/testing.hpp>

int main() {
  using namespace std::chrono_literals;
  syncmesh::testing::cluster_options opts;
  opts.nodes = 2;
  syncmesh::testing::cluster mesh{opts};
  mesh.connect(0, 1);
  mesh.advance(1s);
  syncmesh::pb::SetRequest set;
  set.set_key("k");
  set.mutable_value()->set_text("v");
  mesh.ask<syncmesh::pb::WriteAck>(0, set);
  if (!mesh.await_convergence(10s)) {
    std::cerr << "kit_test: no convergence\n";
    return 1;
  }
  // The kit names nodes with the same node_id type as sync_socket.
  syncmesh::node_id first = mesh.id(0);
  if (first == mesh.id(1) || first.to_hex().empty()) {
    std::cerr << "kit_test: node IDs are not distinct\n";
    return 1;
  }
  std::cout << "kit_test: ok (node " << first << ")\n";
  return 0;
}
