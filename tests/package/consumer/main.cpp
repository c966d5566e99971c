// Uses syncmesh the way a CAF application would after find_package.
#include <iostream>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <syncmesh/sync_socket.hpp>

int main() {
  caf::actor_system_config cfg;
  syncmesh::configure(cfg);
  caf::actor_system sys{cfg};
  syncmesh::sync_socket sock{sys};
  sock["greeting"] = "hello";
  sock.apply_delta("map", {{"seven", 7}});
  if (sock["greeting"] != "hello" || sock.at("map").find("seven") == nullptr
      || sock.size() != 2) {
    std::cerr << "consumer: unexpected contents\n";
    return 1;
  }
  try {
    sock.at("missing");
    std::cerr << "consumer: at() did not throw\n";
    return 1;
  } catch (const syncmesh::key_error&) {
  }
  sock.close();
  std::cout << "consumer: ok (node " << sock.id()
            << ") __cplusplus=" << __cplusplus << "\n";
  return 0;
}
