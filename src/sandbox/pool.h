// sandbox::Pool — pre-created sandboxes, so that a cold start does not pay for building a box.
//
// A Pool keeps up to `size` sandboxes of one SandboxSpec ready: namespaces made, cgroup
// created with limits, root filesystem mounted, init waiting for commands. Claim() hands
// one over in microseconds (a pop under a mutex) and wakes the background thread that
// builds a replacement. What differs per claim — the code at /var/task, further mounts —
// is given afterwards with Sandbox::MountInto(), which places a mount made on the host into
// the sandbox's mount namespace.
//
// Threading: all methods are thread-safe. The claimed sandbox belongs to the caller.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "base/status.h"
#include "sandbox/sandbox.h"

namespace sandbox {

struct PoolOptions {
  SandboxSpec spec;
  size_t size = 4;  // sandboxes kept ready
};

class Pool {
 public:
  // Starts the refill thread; returns at once (the pool fills in the background).
  static base::Result<std::unique_ptr<Pool>> Create(PoolOptions options);
  // Stops the refill thread and destroys the idle sandboxes.
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // A ready sandbox: from the pool when one is idle, otherwise built now (a fresh create).
  base::Result<std::unique_ptr<Sandbox>> Claim();
  // Like Claim, but never builds: nullptr when the pool is empty.
  std::unique_ptr<Sandbox> TryClaim();

  size_t idle() const;
  // Blocks until `n` sandboxes are idle or the timeout passes; false on timeout.
  bool WaitForIdle(size_t n, std::chrono::milliseconds timeout);
  // The last error the refill thread met (OK when none).
  base::Status last_error() const;

 private:
  explicit Pool(PoolOptions options) : options_(std::move(options)) {}
  void RefillLoop();

  PoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Sandbox>> idle_;
  bool stop_ = false;
  base::Status last_error_;
  std::thread refill_;
};

}  // namespace sandbox
