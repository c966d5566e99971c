#pragma once

// An application's code, written against syncmesh's main API: leader
// election on one key of the replicated dictionary. A node leads while it
// holds the key's lease and a majority of the cluster has confirmed its
// latest claim; it renews on every tick and steps down when a renewal is
// not confirmed or it hears that it lost the lease. The test next to it
// (leader_lease_test.cpp) runs it on a simulated cluster.

#include <chrono>
#include <memory>
#include <string>

#include <syncmesh/sync_socket.hpp>

namespace example {

/// Leader election on a syncmesh key; see the top of this file.
class leader_lease {
public:
  /// How the election runs.
  struct options {
    /// The key whose lease is the leadership.
    std::string key = "leader";
    /// How long a claim may wait for its confirmations.
    std::chrono::milliseconds confirm_timeout{1000};
    /// Claims must be confirmed by a majority. Off is the deliberately
    /// broken variant: a node cut off from the others still claims and
    /// renews on its own, so two nodes can lead at once.
    bool require_majority = true;
  };

  /// Takes part in the election through `sock`, which must outlive it.
  leader_lease(syncmesh::sync_socket& sock, options opts)
      : sock_(sock), opts_(std::move(opts)),
        leading_(std::make_shared<bool>(false)) {
    // Another node's claim won (a concurrent claim, or ours expired while
    // we were cut off): step down at once. The flag is shared so that a
    // callback still queued after this object is gone writes nowhere
    // harmful.
    auto leading = leading_;
    auto key = opts_.key;
    sock_.on_lease_lost(
      [leading, key](const std::string& k, const syncmesh::node_id&) {
        if (k == key)
          *leading = false;
      });
  }

  /// One round, to be called periodically (well inside the lease
  /// duration): claims the key, which renews it when this node holds it
  /// and takes it over once another node's lease has ended; leads when the
  /// claim stands as required, steps down otherwise.
  void tick() { *leading_ = claim(); }

  /// True while this node believes it leads.
  bool is_leader() const { return *leading_; }

  /// Gives up the leadership so that another node can take over at once.
  void release() {
    if (!*leading_)
      return;
    *leading_ = false;
    try {
      sock_.erase(opts_.key);
    } catch (const syncmesh::error&) {
      // Gone or closed: the lease ends on its own.
    }
  }

private:
  /// Writes this node's claim; true when it stands as required.
  bool claim() {
    auto me = sock_.id().to_hex();
    try {
      if (opts_.require_majority)
        sock_.set(opts_.key, me,
                  syncmesh::confirm::majority(opts_.confirm_timeout));
      else
        sock_.set(opts_.key, me);
      return true;
    } catch (const syncmesh::lease_error&) {
      return false; // another node holds it
    } catch (const syncmesh::unconfirmed_error&) {
      return false; // no majority heard us in time: we may be cut off
    } catch (const syncmesh::error&) {
      return false; // closed, timed out: not leading
    }
  }

  syncmesh::sync_socket& sock_;
  options opts_;
  std::shared_ptr<bool> leading_;
};

} // namespace example
