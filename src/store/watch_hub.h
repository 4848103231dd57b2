// store::WatchHub — internal to store/: fans committed revisions out to watches.
//
// One dispatcher thread serves every watch of a store, so callbacks never run concurrently
// (in particular never concurrently for one watch) and each watch sees revisions in order.
// Each watch has a cursor, the next revision it wants. Recent revisions are kept in memory
// (`live`, a contiguous run ending at the head); a watch whose cursor is older than that
// run (a watch started from the past, or one that fell behind) reads history through the
// HistoryReader in bounded windows until it reaches the live run.
//
// Threading: Publish is called by the store, in revision order, while the store holds its
// write lock (so no revision is published twice or skipped). Add as well, so a new watch's
// cursor is consistent with the published head. Everything else is internal. The hub is
// shared with the Watch handles it hands out, so a handle may outlive the store.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace store {

struct RevisionEvents {
  Revision revision = 0;
  std::vector<Event> events;  // every event of the revision, in commit order
};

class WatchHub : public std::enable_shared_from_this<WatchHub> {
 public:
  // Appends the events of revisions [from, to] (all keys) to `out`, in order. Called on
  // the dispatcher thread, without any hub lock held.
  using HistoryReader =
      std::function<base::Status(Revision from, Revision to, std::vector<RevisionEvents>* out)>;

  WatchHub(HistoryReader reader, Revision head);
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // Starts the dispatcher thread.
  void Start();
  // Stops and joins the dispatcher; afterwards no callback runs and the reader is never
  // called again. Must not be called from a watch callback.
  void Stop();

  // Records revision `rev` (== head + 1) as durable. Caller holds the store's write lock.
  void Publish(Revision rev, std::vector<Event> events);

  // Registers a watch whose first wanted revision is `next_revision`. Caller holds the
  // store's write lock.
  std::unique_ptr<Watch> Add(std::string prefix, Revision next_revision, WatchCallback callback);

  // The smallest cursor of any watch, or INT64_MAX when there is none. History at or after
  // it must be kept (compaction never strands a running watch).
  Revision MinCursor();

 private:
  struct WatchState {
    std::string prefix;
    WatchCallback callback;
    Revision next = 0;
    bool cancelled = false;
  };
  class Handle;

  void Run();
  void Remove(WatchState* w);
  void TrimLive();  // mu_ held
  static bool Matches(const std::string& prefix, const std::string& key);

  std::mutex mu_;
  std::condition_variable work_cv_;  // new revision, new watch, stop
  std::condition_variable idle_cv_;  // a callback returned
  HistoryReader reader_;
  Revision head_;
  std::deque<RevisionEvents> live_;  // empty, or exactly the revisions (head_-size, head_]
  size_t live_bytes_ = 0;
  std::vector<std::shared_ptr<WatchState>> watches_;
  WatchState* running_ = nullptr;  // whose callback runs now
  bool stop_ = false;
  std::thread thread_;
  std::thread::id thread_id_;
};

}  // namespace store
