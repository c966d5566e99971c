#include "syncmesh/scheduler_settings.hpp"

#include <cstddef>

#include <caf/actor_system_config.hpp>

namespace syncmesh {

void apply_node_scheduler_settings(caf::actor_system_config& cfg) {
  // No moderate polling: after the aggressive spin, straight to the
  // condition variable (CAF 0.17's relaxed mode).
  cfg.set("work-stealing.moderate-poll-attempts", std::size_t{0});
}

} // namespace syncmesh
