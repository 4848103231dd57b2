// Prometheus metrics for the edge: requests by service/operation/status, a latency
// histogram, requests in flight, store operations. Thread-safe; cheap on the hot path.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace server {

class Metrics {
 public:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1.0,  5.0};

  void RequestStarted() { ++in_flight_; }
  void RequestFinished(const std::string& service, const std::string& operation, int status,
                       std::chrono::nanoseconds latency);
  void StoreOp(const char* op);

  // Extra gauges the caller supplies at render time (connections, ...).
  std::string Render(const std::map<std::string, double>& gauges) const;

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  std::atomic<int64_t> in_flight_{0};
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;  // by service
  std::map<std::string, uint64_t> store_ops_;
};

}  // namespace server
