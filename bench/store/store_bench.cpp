// Store benchmark: durable Commit throughput and latency with N concurrent writers.
//
//   store_bench [--dir DIR] [--seconds S] [--threads 1,8,32]
//
// Each case opens a fresh SqliteStore (WAL, synchronous=FULL) in a new directory under DIR
// (default /tmp, i.e. the disk /tmp is on), runs N writer threads for S seconds, and prints
// one table row: committed txn/s, p50 and p99 Commit latency. Every writer loops over a
// small private key set; every fourth txn is a compare-and-swap on the key's mod revision
// (it always holds: each writer owns its keys), the rest are blind puts.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace {

using Clock = std::chrono::steady_clock;

struct WriterResult {
  std::vector<double> latencies_us;
  int64_t failed_compares = 0;
  std::string error;
};

void Writer(store::Store& st, int id, Clock::time_point stop, WriterResult* out) {
  constexpr int kKeys = 16;
  std::vector<store::Revision> mod(kKeys, 0);
  std::string value(100, 'v');
  for (int64_t i = 0; Clock::now() < stop; ++i) {
    int k = static_cast<int>(i % kKeys);
    std::string key = "/bench/w" + std::to_string(id) + "/k" + std::to_string(k);
    store::Txn txn;
    if (i % 4 == 3) txn.compares.push_back(store::Compare::ModRevisionIs(key, mod[k]));
    txn.success.push_back(store::Op::Put(key, value));
    auto t0 = Clock::now();
    auto r = st.Commit(txn);
    auto t1 = Clock::now();
    if (!r.ok()) {
      out->error = r.status().ToString();
      return;
    }
    if (!r->succeeded) ++out->failed_compares;
    mod[k] = r->revision;
    out->latencies_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[i];
}

bool RunCase(const std::string& dir, int threads, double seconds) {
  std::string tmpl = dir + "/stratus-store-bench-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    std::perror("mkdtemp");
    return false;
  }
  std::string work = buf.data();
  bool ok = true;
  {
    auto opened = store::OpenSqliteStore({.path = work + "/store.db"});
    if (!opened.ok()) {
      std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
      std::filesystem::remove_all(work);
      return false;
    }
    store::Store& st = **opened;
    std::vector<WriterResult> results(static_cast<size_t>(threads));
    std::vector<std::thread> ts;
    auto start = Clock::now();
    auto stop =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back(Writer, std::ref(st), t, stop, &results[static_cast<size_t>(t)]);
    }
    for (auto& t : ts) t.join();
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

    std::vector<double> all;
    int64_t failed = 0;
    for (const auto& r : results) {
      if (!r.error.empty()) {
        std::fprintf(stderr, "commit failed: %s\n", r.error.c_str());
        ok = false;
      }
      failed += r.failed_compares;
      all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
    }
    std::sort(all.begin(), all.end());
    std::printf("%8d %10zu %10.0f %10.2f %10.2f %10.2f %s\n", threads, all.size(),
                static_cast<double>(all.size()) / elapsed, Percentile(all, 0.50) / 1000,
                Percentile(all, 0.99) / 1000, all.empty() ? 0.0 : all.back() / 1000,
                failed == 0 ? "" : "(compare failures!)");
    std::fflush(stdout);
    if (failed != 0) ok = false;
  }
  std::filesystem::remove_all(work);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp";
  double seconds = 3;
  std::vector<int> threads = {1, 8, 32};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    std::string val = argv[i + 1];
    if (flag == "--dir") {
      dir = val;
    } else if (flag == "--seconds") {
      seconds = std::atof(val.c_str());
    } else if (flag == "--threads") {
      threads.clear();
      size_t pos = 0;
      while (pos <= val.size()) {
        size_t comma = val.find(',', pos);
        if (comma == std::string::npos) comma = val.size();
        threads.push_back(std::atoi(val.substr(pos, comma - pos).c_str()));
        pos = comma + 1;
      }
    } else {
      std::fprintf(stderr, "usage: store_bench [--dir DIR] [--seconds S] [--threads 1,8,32]\n");
      return 2;
    }
  }
  if ((argc - 1) % 2 != 0 || seconds <= 0) {
    std::fprintf(stderr, "usage: store_bench [--dir DIR] [--seconds S] [--threads 1,8,32]\n");
    return 2;
  }
  std::printf("%8s %10s %10s %10s %10s %10s\n", "writers", "commits", "txn/s", "p50 ms", "p99 ms",
              "max ms");
  bool ok = true;
  for (int t : threads) ok = RunCase(dir, t, seconds) && ok;
  return ok ? 0 : 1;
}
