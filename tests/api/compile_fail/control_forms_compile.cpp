// clang-format off
// expect: compiles
// The forms that must compile, with the same headers and flags as the traps.
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <syncmesh/node_id.hpp>
#include <syncmesh/sync_socket.hpp>

void forms(syncmesh::sync_socket& sock) {
  sock.set("list", {1, 2, 3});
  sock.set("map", {{"a", 1}, {"b", 2}});
  sock["vector"] = std::vector<int>{1, 2};
  sock["sorted"] = std::map<std::string, int>{{"a", 1}};
  sock["hashed"] = std::unordered_map<std::string, double>{{"a", 1.5}};
  sock["pairs"] = std::vector<std::pair<std::string, int>>{{"a", 1}};
  sock["nested"] = {{"user", {{"name", "ada"}, {"langs", {"c++", "py"}}}}};
  sock["raw"] = syncmesh::bytes::from("\x01\x02");
  sock["copy"] = sock["raw"];
  const auto& text = sock.at("greeting").as_text();
  std::string again = sock["greeting"].as_text();
  syncmesh::value whole = sock["map"];
  std::string key = "a";
  const syncmesh::value* field = whole.find(key);
  syncmesh::node_id me = sock.id();
  auto parsed = syncmesh::node_id::from_hex(me.to_hex());
  (void)text, (void) again, (void) field, (void) parsed;
}
