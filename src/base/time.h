// Time: a Clock interface (so the store, auth and controllers run deterministically in
// tests) and the timestamp formats AWS uses.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace base {

using SystemTime = std::chrono::system_clock::time_point;

// Thread-safe. The real clock is SystemClock(); tests use ManualClock.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual SystemTime Now() const = 0;
  // Monotonic time for timeouts and latency; never jumps.
  virtual std::chrono::steady_clock::time_point Steady() const = 0;
};

Clock& SystemClock();

// A clock that moves only when told to. Thread-safe.
class ManualClock : public Clock {
 public:
  explicit ManualClock(SystemTime start);
  SystemTime Now() const override;
  std::chrono::steady_clock::time_point Steady() const override;
  void Advance(std::chrono::nanoseconds d);

 private:
  std::atomic<int64_t> offset_ns_{0};
  SystemTime start_;
  std::chrono::steady_clock::time_point steady_start_;
};

// "20150830T123600Z" (SigV4's X-Amz-Date).
std::string FormatAmzDate(SystemTime t);
std::optional<SystemTime> ParseAmzDate(std::string_view s);
// "2015-08-30T12:36:00Z" (IAM/STS XML timestamps). With millis: "...00.000Z".
std::string FormatIso8601(SystemTime t, bool millis = false);
std::optional<SystemTime> ParseIso8601(std::string_view s);
// RFC 1123 "Sun, 30 Aug 2015 12:36:00 GMT" (HTTP Date headers).
std::string FormatHttpDate(SystemTime t);
// Seconds since the epoch as a double with millisecond precision (JSON protocols).
double EpochSeconds(SystemTime t);
int64_t EpochMillis(SystemTime t);

}  // namespace base
