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
  // A fault schedule of the installed kit: faults for 20 virtual seconds,
  // all healed at the end.
  syncmesh::testing::fault_schedule chaos;
  chaos.span = 20s;
  auto summary = mesh.run_faults(chaos);
  if (summary.faults.empty() || summary.still_active != 0
      || !mesh.await_convergence(2min)) {
    std::cerr << "kit_test: the fault schedule did not run or heal\n";
    return 1;
  }
  std::cout << "kit_test: ok (node " << first << ")\n";
  return 0;
}
