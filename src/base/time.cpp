#include "base/time.h"

#include <cstdio>
#include <ctime>

namespace base {

namespace {
class RealClock : public Clock {
 public:
  SystemTime Now() const override { return std::chrono::system_clock::now(); }
  std::chrono::steady_clock::time_point Steady() const override {
    return std::chrono::steady_clock::now();
  }
};

std::tm ToTm(SystemTime t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}

std::optional<SystemTime> FromFields(int y, int mo, int d, int h, int mi, int s) {
  // system_clock counts nanoseconds in 64 bits: about 1678..2262. Stay well inside.
  if (y < 1900 || y > 2200) return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 ||
      s > 60)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  std::time_t tt = timegm(&tm);
  if (tt == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(tt);
}

bool AllDigits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}
int Num(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}
}  // namespace

Clock& SystemClock() {
  static RealClock clock;
  return clock;
}

ManualClock::ManualClock(SystemTime start)
    : start_(start), steady_start_(std::chrono::steady_clock::now()) {}
SystemTime ManualClock::Now() const {
  return start_ + std::chrono::duration_cast<SystemTime::duration>(
                      std::chrono::nanoseconds(offset_ns_.load()));
}
std::chrono::steady_clock::time_point ManualClock::Steady() const {
  return steady_start_ + std::chrono::nanoseconds(offset_ns_.load());
}
void ManualClock::Advance(std::chrono::nanoseconds d) { offset_ns_ += d.count(); }

std::string FormatAmzDate(SystemTime t) {
  std::tm tm = ToTm(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::optional<SystemTime> ParseAmzDate(std::string_view s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  if (!AllDigits(s.substr(0, 8)) || !AllDigits(s.substr(9, 6))) return std::nullopt;
  return FromFields(Num(s.substr(0, 4)), Num(s.substr(4, 2)), Num(s.substr(6, 2)),
                    Num(s.substr(9, 2)), Num(s.substr(11, 2)), Num(s.substr(13, 2)));
}

std::string FormatIso8601(SystemTime t, bool millis) {
  std::tm tm = ToTm(t);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf);
  if (millis) {
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms));
    out += frac;
  }
  out += 'Z';
  return out;
}

std::optional<SystemTime> ParseIso8601(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fff...](Z|+00:00)
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
      s[13] != ':' || s[16] != ':')
    return std::nullopt;
  if (!AllDigits(s.substr(0, 4)) || !AllDigits(s.substr(5, 2)) || !AllDigits(s.substr(8, 2)) ||
      !AllDigits(s.substr(11, 2)) || !AllDigits(s.substr(14, 2)) || !AllDigits(s.substr(17, 2)))
    return std::nullopt;
  auto base = FromFields(Num(s.substr(0, 4)), Num(s.substr(5, 2)), Num(s.substr(8, 2)),
                         Num(s.substr(11, 2)), Num(s.substr(14, 2)), Num(s.substr(17, 2)));
  if (!base) return std::nullopt;
  std::string_view rest = s.substr(19);
  std::chrono::nanoseconds frac{0};
  if (!rest.empty() && rest[0] == '.') {
    size_t i = 1;
    int64_t scale = 100000000;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
      frac += std::chrono::nanoseconds((rest[i] - '0') * scale);
      scale /= 10;
      ++i;
    }
    rest = rest.substr(i);
  }
  if (rest == "Z" || rest == "z" || rest == "+00:00") {
    return *base + std::chrono::duration_cast<SystemTime::duration>(frac);
  }
  return std::nullopt;
}

std::string FormatHttpDate(SystemTime t) {
  std::tm tm = ToTm(t);
  char buf[40];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

double EpochSeconds(SystemTime t) { return static_cast<double>(EpochMillis(t)) / 1000.0; }
int64_t EpochMillis(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace base
