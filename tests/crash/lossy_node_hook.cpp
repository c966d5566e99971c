// Linked only into syncmesh-node-lossy (tests/CMakeLists.txt): before main
// runs, every data dir the node opens goes through unsynced_loss_fs, so a
// SIGKILL loses what was not fsynced. syncmesh-node itself is built from
// the same node_main.cpp without this file and uses the real file system.

#include "crash/unsynced_loss_fs.hpp"

namespace {

/// Installs the layer during static initialization (before main).
const bool installed = [] {
  syncmesh::test::install_unsynced_loss_fs();
  return true;
}();

} // namespace
