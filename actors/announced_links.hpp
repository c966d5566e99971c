#pragma once

// Links between other nodes that peers announced through peer exchange
// (`<origin>` said "I am linked to X"), kept for views of the mesh (the
// status page's graph). Announcements come from peers, so this is hostile
// input: node IDs of another size than ours are ignored and the table holds
// at most `max_links` links; beyond that the link heard longest ago is
// forgotten and counted. A link is never confirmed or expired: the view is
// "as far as peer exchange shows it" and says when each link was heard.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace syncmesh {

/// A bounded table of announced node-to-node links (see file comment).
class announced_links {
public:
  /// The two node IDs of a link, the smaller first.
  using link = std::pair<std::string, std::string>;

  /// Holds at most `max_links` links (at least 1); IDs must have `id_size`
  /// bytes (the size of this node's own ID).
  announced_links(size_t max_links, size_t id_size)
      : max_links_(max_links == 0 ? 1 : max_links), id_size_(id_size) {}

  /// Notes that `a` and `b` are linked, heard at `now_us` (µs since the Unix
  /// epoch). Returns false when the announcement was ignored (an ID of the
  /// wrong size, or a loop). May forget the link heard longest ago to stay
  /// within `max_links`.
  bool add(std::string a, std::string b, uint64_t now_us) {
    if (a.size() != id_size_ || b.size() != id_size_ || a == b)
      return false;
    if (b < a)
      std::swap(a, b);
    link key{std::move(a), std::move(b)};
    if (auto i = heard_.find(key); i != heard_.end()) {
      i->second = now_us;
      return true;
    }
    if (heard_.size() >= max_links_) {
      auto oldest = heard_.begin();
      for (auto i = heard_.begin(); i != heard_.end(); ++i)
        if (i->second < oldest->second)
          oldest = i;
      heard_.erase(oldest);
      ++evicted_;
    }
    heard_.emplace(std::move(key), now_us);
    return true;
  }

  /// The links with the time (µs since the Unix epoch) each was last heard.
  const std::map<link, uint64_t>& links() const noexcept { return heard_; }

  /// Links forgotten to stay within `max_links`.
  uint64_t evicted() const noexcept { return evicted_; }

  /// The most links held.
  size_t max_links() const noexcept { return max_links_; }

private:
  size_t max_links_;
  size_t id_size_;
  std::map<link, uint64_t> heard_;
  uint64_t evicted_ = 0;
};

} // namespace syncmesh
