// Uses syncmesh the way a CAF application would after find_package.
#include <iostream>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

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
  if (sock["greeting"] != "hello" || !sock.at("map").contains("seven")
      || sock.size() != 2) {
    std::cerr << "consumer: unexpected contents\n";
    return 1;
  }
  // Values written like py2p's Python literals (issue 17).
  sock.set("list", {1, 2, 3});
  sock["vector"] = std::vector<int>{4, 5};
  sock["sorted"] = std::map<std::string, int>{{"a", 1}};
  sock["nested"] = {{"user", {{"name", "ada"}, {"langs", {"c++", "py"}}}}};
  sock["raw"] = syncmesh::bytes{0x00, 0xff};
  const auto& greeting = sock.at("greeting").as_text();
  syncmesh::value list = sock["list"];
  if (greeting != "hello" || list != syncmesh::value{1, 2, 3}
      || sock["vector"].as_list().size() != 2
      || sock.at("sorted") != syncmesh::value{{"a", 1}}
      || !sock["raw"].is_bytes()) {
    std::cerr << "consumer: a value form did not store what it says\n";
    return 1;
  }
  // One node ID type, hashable, printed as hex.
  std::unordered_set<syncmesh::node_id> ids{sock.id()};
  if (sock.get_item("list")->meta.owner != sock.id()
      || syncmesh::node_id::from_hex(sock.id().to_hex()) != sock.id()
      || ids.count(sock.id()) != 1) {
    std::cerr << "consumer: node IDs disagree\n";
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
