#include "store/watch_hub.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>

namespace store {

namespace {
// How many revisions a lagging watch reads from history at a time.
constexpr Revision kHistoryWindow = 256;
// Bounds on the in-memory run of recent revisions; older ones are read from history.
constexpr size_t kMaxLiveRevisions = 4096;
constexpr size_t kMaxLiveBytes = 64u << 20;

size_t ApproxBytes(const std::vector<Event>& events) {
  size_t n = 0;
  for (const Event& e : events) n += e.kv.key.size() + e.kv.value.size() + sizeof(Event);
  return n;
}
}  // namespace

class WatchHub::Handle final : public Watch {
 public:
  Handle(std::shared_ptr<WatchHub> hub, std::shared_ptr<WatchState> state)
      : hub_(std::move(hub)), state_(std::move(state)) {}
  ~Handle() override { hub_->Remove(state_.get()); }

 private:
  std::shared_ptr<WatchHub> hub_;
  std::shared_ptr<WatchState> state_;
};

WatchHub::WatchHub(HistoryReader reader, Revision head) : reader_(std::move(reader)), head_(head) {}

WatchHub::~WatchHub() { Stop(); }

void WatchHub::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  thread_ = std::thread([this] { Run(); });
  thread_id_ = thread_.get_id();
}

void WatchHub::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  thread_id_ = {};
  reader_ = nullptr;
  live_.clear();
  live_bytes_ = 0;
}

void WatchHub::Publish(Revision rev, std::vector<Event> events) {
  std::lock_guard<std::mutex> lock(mu_);
  head_ = rev;
  if (watches_.empty() || stop_) {
    // Nobody to deliver to; a later watch starting in the past reads history instead.
    live_.clear();
    live_bytes_ = 0;
    return;
  }
  live_bytes_ += ApproxBytes(events);
  live_.push_back({rev, std::move(events)});
  TrimLive();
  work_cv_.notify_all();
}

std::unique_ptr<Watch> WatchHub::Add(std::string prefix, Revision next_revision,
                                     WatchCallback callback) {
  auto state = std::make_shared<WatchState>();
  state->prefix = std::move(prefix);
  state->callback = std::move(callback);
  state->next = next_revision;
  {
    std::lock_guard<std::mutex> lock(mu_);
    watches_.push_back(state);
  }
  work_cv_.notify_all();
  return std::make_unique<Handle>(shared_from_this(), std::move(state));
}

Revision WatchHub::MinCursor() {
  std::lock_guard<std::mutex> lock(mu_);
  Revision min = std::numeric_limits<Revision>::max();
  for (const auto& w : watches_) min = std::min(min, w->next);
  return min;
}

void WatchHub::Remove(WatchState* w) {
  std::unique_lock<std::mutex> lock(mu_);
  w->cancelled = true;
  std::erase_if(watches_, [w](const std::shared_ptr<WatchState>& p) { return p.get() == w; });
  // On the dispatcher thread (the handle destroyed from inside a callback) the running
  // callback is the caller itself, or another watch's whose callback cannot be running:
  // waiting would deadlock, and nothing needs waiting for.
  if (std::this_thread::get_id() != thread_id_) {
    idle_cv_.wait(lock, [&] { return running_ != w; });
  }
  TrimLive();
}

bool WatchHub::Matches(const std::string& prefix, const std::string& key) {
  return key.size() >= prefix.size() && key.compare(0, prefix.size(), prefix) == 0;
}

void WatchHub::TrimLive() {
  if (watches_.empty()) {
    live_.clear();
    live_bytes_ = 0;
    return;
  }
  Revision min_next = std::numeric_limits<Revision>::max();
  for (const auto& w : watches_) min_next = std::min(min_next, w->next);
  while (!live_.empty() && (live_.front().revision < min_next || live_.size() > kMaxLiveRevisions ||
                            live_bytes_ > kMaxLiveBytes)) {
    live_bytes_ -= std::min(live_bytes_, ApproxBytes(live_.front().events));
    live_.pop_front();
  }
}

void WatchHub::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    bool progressed = false;
    bool failed = false;
    std::vector<std::shared_ptr<WatchState>> snapshot = watches_;
    for (const auto& w : snapshot) {
      if (stop_) break;
      if (w->cancelled || w->next > head_) continue;
      std::vector<Event> batch;
      Revision next;
      if (!live_.empty() && w->next >= live_.front().revision) {
        // live_ is contiguous, so the cursor indexes it directly.
        for (size_t i = static_cast<size_t>(w->next - live_.front().revision); i < live_.size();
             ++i) {
          for (const Event& e : live_[i].events) {
            if (Matches(w->prefix, e.kv.key)) batch.push_back(e);
          }
        }
        next = head_ + 1;
      } else {
        Revision from = w->next;
        Revision to = std::min(head_, from + kHistoryWindow - 1);
        HistoryReader reader = reader_;
        lock.unlock();
        std::vector<RevisionEvents> revisions;
        base::Status st =
            reader ? reader(from, to, &revisions) : base::Unavailable("watch: store is closing");
        lock.lock();
        if (!st.ok()) {
          spdlog::warn("store watch: reading history [{}, {}]: {}", from, to, st.ToString());
          failed = true;
          break;
        }
        for (RevisionEvents& r : revisions) {
          for (Event& e : r.events) {
            if (Matches(w->prefix, e.kv.key)) batch.push_back(std::move(e));
          }
        }
        next = to + 1;
      }
      if (w->cancelled) continue;
      w->next = next;
      progressed = true;
      if (batch.empty()) continue;
      running_ = w.get();
      lock.unlock();
      w->callback(batch);
      lock.lock();
      running_ = nullptr;
      idle_cv_.notify_all();
    }
    TrimLive();
    if (failed) {
      // History is unreadable for now (I/O trouble); retry without spinning.
      work_cv_.wait_for(lock, std::chrono::milliseconds(100));
    } else if (!progressed) {
      work_cv_.wait(lock);
    }
  }
}

}  // namespace store
