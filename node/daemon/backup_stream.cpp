#include "node/daemon/backup_stream.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <system_error>

#include "actors/checkpoint_reader.hpp"
#include "messages/backup_file.hpp"

namespace syncmesh {

backup_stream::backup_stream(pb::BackupReply copy, options opts)
    : copy_(std::move(copy)), opts_(opts) {}

std::shared_ptr<backup_stream> backup_stream::start(pb::BackupReply copy,
                                                    options opts,
                                                    ready_fn ready,
                                                    done_fn done) {
  auto stream = std::make_shared<backup_stream>(std::move(copy), opts);
  // The thread keeps the stream alive until it is done with it.
  stream->thread_ = std::thread{
    [stream, ready = std::move(ready), done = std::move(done)]() mutable {
      stream->produce(std::move(ready), std::move(done));
    }};
  return stream;
}

backup_stream::~backup_stream() {
  cancel();
  if (!thread_.joinable())
    return;
  // The producing thread may hold the last reference: it cannot join
  // itself, and it is past its last use of the stream anyway.
  if (thread_.get_id() == std::this_thread::get_id())
    thread_.detach();
  else
    thread_.join();
}

void backup_stream::join() {
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
    thread_.join();
}

void backup_stream::produce(ready_fn ready, done_fn done) {
  // A backup is background work: on a small machine, reading and encoding
  // the copy must not take the CPU from the threads that serve writes
  // (Linux nices threads one by one). Best effort.
  [[maybe_unused]] auto niced
    = ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
  std::optional<backup_writer> writer;
  std::string error;
  bool complete = false;
  {
    std::optional<checkpoint_reader> reader;
    try {
      backup_header maker;
      maker.disk_format = copy_.disk_format();
      maker.node_id = copy_.node_id();
      maker.created_us = copy_.created_us();
      maker.clock_mark_us = copy_.clock_mark_us();
      reader.emplace(copy_.checkpoint_dir(), std::move(maker));
      copy_.set_clock_mark_us(reader->header().clock_mark_us);
      writer.emplace(reader->header());
    } catch (const std::exception& e) {
      error = e.what();
      writer.reset();
    }
    if (writer) {
      ready(shared_from_this(), {});
      try {
        complete = reader->write_file(
          *writer, opts_.chunk_bytes,
          [this](std::string bytes) { return push(std::move(bytes)); });
      } catch (const std::exception& e) {
        // The response has started: the client gets a file without its
        // trailer, which every reader refuses as truncated.
        error = e.what();
      }
    }
    finish();
  } // the copy is closed here, before it is removed
  std::error_code ignored;
  std::filesystem::remove_all(copy_.checkpoint_dir(), ignored);
  if (!writer)
    ready(nullptr,
          error.empty() ? std::string{"the copy cannot be read"} : error);
  if (done)
    done(writer ? writer->count() : 0, writer ? writer->bytes() : 0, complete,
         error);
}

bool backup_stream::push(std::string chunk) {
  deliver_fn deliver;
  {
    std::unique_lock<std::mutex> guard{mtx_};
    room_.wait(guard, [this] {
      return cancelled_ || chunks_.size() < opts_.max_chunks;
    });
    if (cancelled_)
      return false;
    if (!waiting_) {
      chunks_.push_back(std::move(chunk));
      return true;
    }
    // The server asked already: hand it over without queueing.
    deliver = std::move(waiting_);
    waiting_ = nullptr;
  }
  deliver(std::move(chunk), false);
  return true;
}

void backup_stream::finish() {
  deliver_fn deliver;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    finished_ = true;
    if (waiting_ && chunks_.empty()) {
      deliver = std::move(waiting_);
      waiting_ = nullptr;
    }
  }
  if (deliver)
    deliver({}, true);
}

void backup_stream::next(deliver_fn deliver) {
  std::string chunk;
  bool last = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (cancelled_)
      return;
    if (!chunks_.empty()) {
      chunk = std::move(chunks_.front());
      chunks_.pop_front();
      last = finished_ && chunks_.empty();
      room_.notify_one();
    } else if (finished_) {
      last = true;
    } else {
      waiting_ = std::move(deliver);
      return;
    }
  }
  deliver(std::move(chunk), last);
}

void backup_stream::cancel() {
  std::lock_guard<std::mutex> guard{mtx_};
  cancelled_ = true;
  waiting_ = nullptr;
  chunks_.clear();
  room_.notify_all();
}

} // namespace syncmesh
