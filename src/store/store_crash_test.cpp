// Kills store_crash_writer with SIGKILL at random points and checks, after each kill, that
// every acknowledged transaction is in the store and that no transaction is half-applied.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "store/store.h"

#ifndef STORE_CRASH_WRITER
#error "STORE_CRASH_WRITER must name the store_crash_writer binary"
#endif

namespace store {
namespace {

struct Ack {
  int64_t i;
  Revision revision;
};

// Runs the writer on `db` with `tag` and `threads` concurrent writers, lets it work for about
// `run_for` (and until it has acknowledged at least one write), SIGKILLs it and returns what
// it acknowledged, by writer tag (`tag` for one writer, `tag`-t for writer t of several).
std::map<std::string, std::vector<Ack>> RunAndKill(const std::string& db, const std::string& tag,
                                                   std::chrono::milliseconds run_for,
                                                   int threads = 1) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe";
    return {};
  }
  std::string nthreads = std::to_string(threads);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    execl(STORE_CRASH_WRITER, STORE_CRASH_WRITER, db.c_str(), tag.c_str(), nthreads.c_str(),
          nullptr);
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  auto start = std::chrono::steady_clock::now();
  auto give_up = start + std::chrono::seconds(10);
  char buf[4096];
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    bool acked = out.find('\n') != std::string::npos;
    if ((acked && now >= start + run_for) || now >= give_up) break;
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, 5) > 0) {
      ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;  // the writer died on its own
      out.append(buf, static_cast<size_t>(n));
    }
  }
  kill(pid, SIGKILL);
  for (;;) {  // whatever it printed before dying was acknowledged too
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "writer exited by itself, status " << status;

  std::map<std::string, std::vector<Ack>> acks;
  out.resize(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);  // whole lines
  std::istringstream in(out);
  int t = 0;
  Ack a;
  while (in >> t >> a.i >> a.revision) {
    acks[threads == 1 ? tag : tag + "-" + std::to_string(t)].push_back(a);
  }
  return acks;
}

std::string ItemPrefix(const std::string& tag, int64_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "/crash/%s/%08lld/", tag.c_str(), static_cast<long long>(i));
  return buf;
}

// The writer's state is a function of "last": items 0..last exist, except multiples of 5
// that a later transaction (i + 5 <= last) deleted; a, b and c of an item share a revision.
void CheckRound(Store& st, const std::string& tag, const std::vector<Ack>& acks) {
  SCOPED_TRACE("round " + tag);
  auto last_kv = st.Get("/crash/" + tag + "/last");
  ASSERT_TRUE(last_kv.ok());
  ASSERT_TRUE(last_kv->has_value()) << "no transaction of this round survived";
  int64_t last = std::atoll((*last_kv)->value.c_str());

  auto all = st.Range(KeyRange::Prefix("/crash/" + tag + "/"));
  ASSERT_TRUE(all.ok());
  std::map<std::string, KeyValue> kvs;
  for (auto& kv : all->kvs) kvs[kv.key] = kv;

  int64_t expected_keys = 1;  // "last"
  for (int64_t i = 0; i <= last; ++i) {
    bool present = !(i % 5 == 0 && i + 5 <= last);
    std::string p = ItemPrefix(tag, i);
    auto a = kvs.find(p + "a"), b = kvs.find(p + "b"), c = kvs.find(p + "c");
    if (!present) {
      EXPECT_TRUE(a == kvs.end() && b == kvs.end() && c == kvs.end())
          << "item " << i << " should have been deleted by item " << i + 5;
      continue;
    }
    expected_keys += 3;
    ASSERT_TRUE(a != kvs.end() && b != kvs.end() && c != kvs.end())
        << "item " << i << " is torn or missing (last " << last << ")";
    EXPECT_EQ(a->second.mod_revision, b->second.mod_revision) << "item " << i;
    EXPECT_EQ(a->second.mod_revision, c->second.mod_revision) << "item " << i;
    EXPECT_EQ(a->second.value, std::to_string(i));
    EXPECT_EQ(b->second.value, std::to_string(i) + std::string(3000, 'x'));
  }
  EXPECT_EQ(static_cast<int64_t>(kvs.size()), expected_keys) << "keys beyond last " << last;

  for (const Ack& ack : acks) {
    ASSERT_LE(ack.i, last) << "acknowledged transaction " << ack.i << " was lost";
    EXPECT_LE(ack.revision, st.CurrentRevision());
    if (ack.i % 5 == 0 && ack.i + 5 <= last) continue;
    auto it = kvs.find(ItemPrefix(tag, ack.i) + "a");
    ASSERT_TRUE(it != kvs.end());
    EXPECT_EQ(it->second.mod_revision, ack.revision) << "item " << ack.i;
  }
}

// Kills the writer `rounds` times, each time after a random delay, and checks every round's
// writers after each restart.
void KillNineRounds(int rounds, int threads) {
  char tmpl[] = "/tmp/stratus-store-crash-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::string db = dir + "/store.db";

  unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> delay_ms(20, 400);

  std::map<std::string, std::vector<Ack>> acked;
  Revision max_acked = 0;
  for (int round = 0; round < rounds; ++round) {
    std::string tag = "r" + std::to_string(round);
    auto acks = RunAndKill(db, tag, std::chrono::milliseconds(delay_ms(rng)), threads);
    ASSERT_FALSE(acks.empty()) << "writer acknowledged nothing in round " << round;
    for (auto& [t, list] : acks) {
      for (const Ack& a : list) max_acked = std::max(max_acked, a.revision);
      acked[t] = std::move(list);
    }

    auto st = OpenSqliteStore({.path = db});
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_GE((*st)->CurrentRevision(), max_acked);
    for (const auto& [t, a] : acked) CheckRound(**st, t, a);
    if (::testing::Test::HasFatalFailure()) break;
    auto rev = (*st)->Put("/crash/probe", "x");
    ASSERT_TRUE(rev.ok());
    EXPECT_GT(*rev, max_acked) << "a revision was reused after the crash";
    max_acked = *rev;
  }
  std::system(("rm -rf " + dir).c_str());
}

TEST(StoreCrash, KillNineLosesNoAcknowledgedWrite) { KillNineRounds(8, 1); }

// Group commit: acknowledgements of writers that shared a COMMIT survive too.
TEST(StoreCrash, KillNineWithConcurrentWritersLosesNoAcknowledgedWrite) { KillNineRounds(6, 8); }

}  // namespace
}  // namespace store
