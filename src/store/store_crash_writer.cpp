// store_crash_writer DB TAG [THREADS]: commits transactions to the store at DB until killed,
// from THREADS (default 1) concurrent writers, and prints "<t> <i> <revision>" for each one
// once Commit has returned (the acknowledgement). Writer t works under the tag TAG-t (TAG
// itself when there is one writer), so the writers' commits are independent but share
// group commits.
//
// Transaction i (i = 0, 1, ...) under /crash/TAG/ puts <i>/a, <i>/b (a few KiB, so one
// commit spans several pages) and <i>/c, sets "last" to i guarded by a compare on last's
// mod revision, and, when i is a positive multiple of 5, deletes the keys of i - 5. The
// store's content is therefore a function of "last" alone; store_crash_test checks it.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace {

std::string ItemPrefix(const std::string& tag, int64_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "/crash/%s/%08lld/", tag.c_str(), static_cast<long long>(i));
  return buf;
}

int Fail(const std::string& what, const base::Status& st) {
  std::fprintf(stderr, "store_crash_writer: %s: %s\n", what.c_str(), st.ToString().c_str());
  return 1;
}

// Writes under `tag` until killed or an error; returns the exit status.
int WriteLoop(store::Store& st, int thread, const std::string& tag) {
  std::string last_key = "/crash/" + tag + "/last";
  auto last = st.Get(last_key);
  if (!last.ok()) return Fail("get last", last.status());
  store::Revision last_mod = last->has_value() ? (*last)->mod_revision : 0;
  int64_t i = last->has_value() ? std::atoll((*last)->value.c_str()) + 1 : 0;

  for (;; ++i) {
    std::string p = ItemPrefix(tag, i);
    std::string v = std::to_string(i);
    store::Txn txn;
    txn.compares.push_back(store::Compare::ModRevisionIs(last_key, last_mod));
    txn.success.push_back(store::Op::Put(p + "a", v));
    txn.success.push_back(store::Op::Put(p + "b", v + std::string(3000, 'x')));
    txn.success.push_back(store::Op::Put(p + "c", v));
    txn.success.push_back(store::Op::Put(last_key, v));
    if (i > 0 && i % 5 == 0) {
      txn.success.push_back(store::Op::Delete(store::KeyRange::Prefix(ItemPrefix(tag, i - 5))));
    }
    auto r = st.Commit(txn);
    if (!r.ok()) return Fail("commit " + v, r.status());
    if (!r->succeeded) {
      std::fprintf(stderr, "store_crash_writer: compare on %s failed at %lld\n", last_key.c_str(),
                   static_cast<long long>(i));
      return 1;
    }
    last_mod = r->revision;
    // One write(2) per line: a kill leaves at most one partial line, never a mixed one.
    std::string line = std::to_string(thread) + " " + v + " " + std::to_string(r->revision) + "\n";
    if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return 1;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: store_crash_writer DB TAG [THREADS]\n");
    return 2;
  }
  std::string tag = argv[2];
  int threads = argc == 4 ? std::atoi(argv[3]) : 1;
  if (threads < 1) threads = 1;
  auto opened = store::OpenSqliteStore({.path = argv[1]});
  if (!opened.ok()) return Fail("open", opened.status());
  store::Store& st = **opened;
  if (threads == 1) return WriteLoop(st, 0, tag);

  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&st, t, &tag] {
      // A writer that fails ends the process: the test sees it exit on its own.
      int rc = WriteLoop(st, t, tag + "-" + std::to_string(t));
      std::_Exit(rc == 0 ? 1 : rc);
    });
  }
  for (auto& t : ts) t.join();
  return 1;
}
