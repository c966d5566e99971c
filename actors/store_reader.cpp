#include "actors/store_reader.hpp"

#include "actors/store_state.hpp"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

namespace {

/// Shared lock on a pthread rwlock for one scope.
class shared_hold {
public:
  explicit shared_hold(pthread_rwlock_t& lock) noexcept : lock_(lock) {
    pthread_rwlock_rdlock(&lock_);
  }
  ~shared_hold() { pthread_rwlock_unlock(&lock_); }
  shared_hold(const shared_hold&) = delete;
  shared_hold& operator=(const shared_hold&) = delete;

private:
  pthread_rwlock_t& lock_;
};

} // namespace

store_reader::store_reader() {
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  // glibc's default prefers readers, which lets overlapping readers keep the
  // store waiting; writers first keeps the store's pace whatever reads.
  pthread_rwlockattr_setkind_np(&attr,
                                PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&lock_, &attr);
  pthread_rwlockattr_destroy(&attr);
}

store_reader::~store_reader() {
  pthread_rwlock_destroy(&lock_);
}

bool store_reader::get(std::string_view key, pb::GetReply& out) const {
  shared_hold hold{lock_};
  if (store_ == nullptr)
    return false;
  store_->read_into(key, out);
  reads_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

uint64_t store_reader::reads() const noexcept {
  return reads_.load(std::memory_order_relaxed);
}

void store_reader::lock() noexcept {
  pthread_rwlock_wrlock(&lock_);
}

void store_reader::unlock() noexcept {
  pthread_rwlock_unlock(&lock_);
}

} // namespace syncmesh
