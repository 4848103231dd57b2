#include "sandbox/pool.h"

namespace sandbox {

base::Result<std::unique_ptr<Pool>> Pool::Create(PoolOptions options) {
  if (options.size == 0) return base::InvalidArgument("sandbox pool: size must be at least 1");
  std::unique_ptr<Pool> pool(new Pool(std::move(options)));
  pool->refill_ = std::thread([p = pool.get()] { p->RefillLoop(); });
  return pool;
}

Pool::~Pool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (refill_.joinable()) refill_.join();
  std::deque<std::unique_ptr<Sandbox>> idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle.swap(idle_);
  }
  idle.clear();  // destroys them
}

void Pool::RefillLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || idle_.size() < options_.size; });
    if (stop_) return;
    lock.unlock();
    auto sb = Sandbox::Create(options_.spec);
    lock.lock();
    if (!sb.ok()) {
      last_error_ = sb.status();
      // Back off so that a broken spec does not spin; stop still wakes us.
      cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stop_; });
      continue;
    }
    if (stop_) {
      lock.unlock();
      sb->reset();
      return;
    }
    idle_.push_back(std::move(sb).value());
    cv_.notify_all();
  }
}

std::unique_ptr<Sandbox> Pool::TryClaim() {
  std::unique_ptr<Sandbox> sb;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.empty()) return nullptr;
    sb = std::move(idle_.front());
    idle_.pop_front();
  }
  cv_.notify_all();
  return sb;
}

base::Result<std::unique_ptr<Sandbox>> Pool::Claim() {
  if (auto sb = TryClaim()) return sb;
  return Sandbox::Create(options_.spec);
}

size_t Pool::idle() const {
  std::lock_guard<std::mutex> lock(mu_);
  return idle_.size();
}

bool Pool::WaitForIdle(size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return idle_.size() >= n; });
}

base::Status Pool::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

}  // namespace sandbox
