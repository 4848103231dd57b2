// Logs benchmark.
//
//   logs_bench [--dir DIR] [--seconds S] [--threads 1,8]
//
// Writer: N threads each call Append with one 100-byte line at a time (each thread its own
// stream, as sandboxes do), as fast as they can, for S seconds; then Flush. Reports the lines
// made durable per second (the producers outrun the store, so the rest are dropped at the
// queue limit, and counted), the mean and p99 cost of one Append call (it only queues), and
// how many store keys and revisions that took.
// PutLogEvents: one thread, 100 events per call, reports calls/s and events/s (every call
// is a durable commit).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "services/logs/logs.h"
#include "store/store.h"

namespace {

using Clock = std::chrono::steady_clock;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Env {
  std::string dir;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<logs::Logs> logs;
};

bool Open(const std::string& base, const std::string& name, Env* env) {
  env->dir = base + "/logs_bench_" + name + "_" + std::to_string(::getpid());
  std::filesystem::remove_all(env->dir);
  store::SqliteOptions so;
  so.path = env->dir + "/store.db";
  auto st = store::OpenSqliteStore(so);
  if (!st.ok()) {
    std::fprintf(stderr, "open store: %s\n", st.status().ToString().c_str());
    return false;
  }
  env->store = std::move(st).value();
  logs::Options o;
  o.retention_sweep_interval = std::chrono::milliseconds(0);
  auto l = logs::OpenLogs(env->store.get(), o);
  if (!l.ok()) return false;
  env->logs = std::move(l).value();
  return true;
}

void Close(Env* env) {
  env->logs.reset();
  env->store.reset();
  std::filesystem::remove_all(env->dir);
}

void WriterCase(const std::string& base, int threads, int seconds) {
  Env env;
  if (!Open(base, "writer", &env)) return;
  std::atomic<int64_t> lines{0};
  std::vector<std::vector<double>> costs(threads);
  auto stop = Clock::now() + std::chrono::seconds(seconds);
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      std::string stream = "2026/11/23/[$LATEST]" + std::to_string(t);
      std::string line(100, 'x');
      int64_t n = 0;
      while (Clock::now() < stop) {
        auto a = Clock::now();
        env.logs->Append("/aws/lambda/bench", stream, {{NowMs(), line}});
        auto b = Clock::now();
        if (n % 64 == 0)
          costs[t].push_back(std::chrono::duration<double, std::nano>(b - a).count());
        ++n;
      }
      lines += n;
    });
  for (auto& t : ts) t.join();
  auto flushed = env.logs->Flush();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  for (auto& c : costs) all.insert(all.end(), c.begin(), c.end());
  std::sort(all.begin(), all.end());
  double mean = 0;
  for (double c : all) mean += c;
  mean /= std::max<size_t>(1, all.size());
  auto keys = env.store->Range(store::KeyRange::Prefix("/logs/events/"), {.count_only = true});
  int64_t stored = lines.load() - env.logs->dropped_events();
  std::printf(
      "| writer  | %7d | %9.0f stored lines/s | Append mean %6.0f ns, p99 %7.0f ns | %lld batch "
      "keys, "
      "%lld revisions, dropped %lld%s |\n",
      threads, static_cast<double>(stored) / secs, mean,
      all.empty() ? 0.0 : all[all.size() * 99 / 100],
      static_cast<long long>(keys.ok() ? keys->count : -1),
      static_cast<long long>(env.store->CurrentRevision()),
      static_cast<long long>(env.logs->dropped_events()),
      flushed.ok() ? "" : (" FLUSH FAILED: " + flushed.ToString()).c_str());
  Close(&env);
}

void PutCase(const std::string& base, int seconds) {
  Env env;
  if (!Open(base, "put", &env)) return;
  if (!env.logs->CreateLogGroup("g", {}).ok() || !env.logs->CreateLogStream("g", "s").ok()) return;
  auto stop = Clock::now() + std::chrono::seconds(seconds);
  auto t0 = Clock::now();
  int64_t calls = 0;
  std::vector<double> lat;
  while (Clock::now() < stop) {
    std::vector<logs::Event> events(100, logs::Event{NowMs(), std::string(100, 'y')});
    auto a = Clock::now();
    auto r = env.logs->PutLogEvents("g", "s", events);
    lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
    if (!r.ok()) {
      std::fprintf(stderr, "PutLogEvents: %s\n", r.status().ToString().c_str());
      break;
    }
    ++calls;
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::sort(lat.begin(), lat.end());
  std::printf("| put     | %7d | %9.0f calls/s | %.0f events/s, p50 %.2f ms, p99 %.2f ms |\n", 1,
              static_cast<double>(calls) / secs, static_cast<double>(calls) * 100 / secs,
              lat.empty() ? 0 : lat[lat.size() / 2] / 1000,
              lat.empty() ? 0 : lat[lat.size() * 99 / 100] / 1000);
  Close(&env);
}

// Reads: one stream of 200,000 events in 200 batches; the cost of paging through it with
// GetLogEvents and of one FilterLogEvents for the newest second (what `stratus logs
// --follow` asks every second).
void ReadCase(const std::string& base) {
  Env env;
  if (!Open(base, "read", &env)) return;
  if (!env.logs->CreateLogGroup("g", {}).ok() || !env.logs->CreateLogStream("g", "s").ok()) return;
  int64_t t0ms = NowMs() - 3600 * 1000;
  for (int b = 0; b < 200; ++b) {
    std::vector<logs::Event> events;
    for (int i = 0; i < 1000; ++i) events.push_back({t0ms + b * 1000 + i, std::string(100, 'r')});
    if (!env.logs->PutLogEvents("g", "s", events).ok()) return;
  }
  auto a = Clock::now();
  logs::GetEventsRequest req;
  req.group = "g";
  req.stream = "s";
  req.start_from_head = true;
  int pages = 0;
  size_t events = 0;
  for (;;) {
    auto r = env.logs->GetLogEvents(req);
    if (!r.ok()) return;
    ++pages;
    events += r->events.size();
    if (r->next_forward_token == req.next_token) break;
    req.next_token = r->next_forward_token;
  }
  double get_ms = std::chrono::duration<double, std::milli>(Clock::now() - a).count();
  logs::FilterEventsRequest f;
  f.group = "g";
  f.start_time = t0ms + 199 * 1000;
  a = Clock::now();
  auto r = env.logs->FilterLogEvents(f);
  double filter_ms = std::chrono::duration<double, std::milli>(Clock::now() - a).count();
  std::printf(
      "| read    | %7d | %9.0f events/s | GetLogEvents: %zu events in %d pages, %.0f ms; "
      "FilterLogEvents of the newest batch: %.1f ms (%zu events) |\n",
      1, static_cast<double>(events) / (get_ms / 1000), events, pages, get_ms, filter_ms,
      r.ok() ? r->items.size() : 0);
  Close(&env);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp";
  int seconds = 3;
  std::vector<int> threads = {1, 8};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--dir") dir = argv[i + 1];
    if (a == "--seconds") seconds = std::atoi(argv[i + 1]);
    if (a == "--threads") {
      threads.clear();
      std::string list = argv[i + 1];
      size_t p = 0;
      while (p < list.size()) {
        size_t c = list.find(',', p);
        threads.push_back(std::atoi(list.substr(p, c - p).c_str()));
        p = c == std::string::npos ? list.size() : c + 1;
      }
    }
  }
  std::printf("| case    | threads | throughput | details |\n|---|---:|---:|---|\n");
  for (int t : threads) WriterCase(dir, t, seconds);
  PutCase(dir, seconds);
  ReadCase(dir);
  return 0;
}
