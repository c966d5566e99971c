#include "node/daemon/watch_hub.hpp"

#include <algorithm>

namespace syncmesh {

std::shared_ptr<watch_hub::watcher> watch_hub::join(std::string prefix) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (closed_ || watchers_.size() >= max_watchers_)
    return nullptr;
  auto w = std::make_shared<watcher>();
  w->prefix = std::move(prefix);
  watchers_.push_back(w);
  return w;
}

void watch_hub::leave(const std::shared_ptr<watcher>& w) {
  std::lock_guard<std::mutex> guard{mtx_};
  watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), w),
                  watchers_.end());
}

void watch_hub::append(watcher& w, const std::string& event) {
  if (w.events.size() >= queue_limit_) {
    w.events.pop_front();
    ++w.dropped;
  }
  w.events.push_back(event);
}

void watch_hub::publish(const std::string& key, const std::string& event_name,
                        const std::string& json_data) {
  auto event = "event: " + event_name + "\ndata: " + json_data + "\n\n";
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& w : watchers_)
      if (key.compare(0, w->prefix.size(), w->prefix) == 0)
        append(*w, event);
  }
  cv_.notify_all();
}

void watch_hub::publish_all(const std::string& event_name,
                            const std::string& json_data) {
  auto event = "event: " + event_name + "\ndata: " + json_data + "\n\n";
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& w : watchers_)
      append(*w, event);
  }
  cv_.notify_all();
}

void watch_hub::close() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    closed_ = true;
  }
  cv_.notify_all();
}

size_t watch_hub::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return watchers_.size();
}

} // namespace syncmesh
