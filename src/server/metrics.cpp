#include "server/metrics.h"

#include <cstdio>

namespace server {

namespace {
std::string Label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}
std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
}  // namespace

void Metrics::RequestFinished(const std::string& service, const std::string& operation, int status,
                              std::chrono::nanoseconds latency) {
  --in_flight_;
  double secs = std::chrono::duration<double>(latency).count();
  std::lock_guard lock(mu_);
  ++requests_[{service, operation, status}];
  Histogram& h = latency_[service];
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (secs <= kBuckets[i]) ++h.buckets[i];
  ++h.count;
  h.sum += secs;
}

void Metrics::StoreOp(const char* op) {
  std::lock_guard lock(mu_);
  ++store_ops_[op];
}

std::string Metrics::Render(const std::map<std::string, double>& gauges) const {
  std::string out;
  out += "# HELP stratus_requests_total API requests by service, operation and HTTP status.\n";
  out += "# TYPE stratus_requests_total counter\n";
  std::lock_guard lock(mu_);
  for (const auto& [key, n] : requests_) {
    const auto& [svc, op, status] = key;
    out += "stratus_requests_total{service=\"" + Label(svc) + "\",operation=\"" + Label(op) +
           "\",status=\"" + std::to_string(status) + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP stratus_request_duration_seconds API request latency by service.\n";
  out += "# TYPE stratus_request_duration_seconds histogram\n";
  for (const auto& [svc, h] : latency_) {
    for (size_t i = 0; i < kBuckets.size(); ++i)
      out += "stratus_request_duration_seconds_bucket{service=\"" + Label(svc) + "\",le=\"" +
             Num(kBuckets[i]) + "\"} " + std::to_string(h.buckets[i]) + "\n";
    out += "stratus_request_duration_seconds_bucket{service=\"" + Label(svc) + "\",le=\"+Inf\"} " +
           std::to_string(h.count) + "\n";
    out +=
        "stratus_request_duration_seconds_sum{service=\"" + Label(svc) + "\"} " + Num(h.sum) + "\n";
    out += "stratus_request_duration_seconds_count{service=\"" + Label(svc) + "\"} " +
           std::to_string(h.count) + "\n";
  }
  out += "# HELP stratus_requests_in_flight API requests being handled now.\n";
  out += "# TYPE stratus_requests_in_flight gauge\n";
  out += "stratus_requests_in_flight " + std::to_string(in_flight_.load()) + "\n";
  out += "# HELP stratus_store_operations_total Store operations by kind.\n";
  out += "# TYPE stratus_store_operations_total counter\n";
  for (const auto& [op, n] : store_ops_)
    out += "stratus_store_operations_total{op=\"" + Label(op) + "\"} " + std::to_string(n) + "\n";
  for (const auto& [name, v] : gauges) {
    out += "# TYPE " + name + " gauge\n";
    out += name + " " + Num(v) + "\n";
  }
  return out;
}

}  // namespace server
