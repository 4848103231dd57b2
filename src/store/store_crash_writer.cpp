// store_crash_writer DB TAG: commits transactions to the store at DB until killed, and
// prints "<i> <revision>" for each one once Commit has returned (the acknowledgement).
//
// Transaction i (i = 0, 1, ...) under /crash/TAG/ puts <i>/a, <i>/b (a few KiB, so one
// commit spans several pages) and <i>/c, sets "last" to i guarded by a compare on last's
// mod revision, and, when i is a positive multiple of 5, deletes the keys of i - 5. The
// store's content is therefore a function of "last" alone; store_crash_test checks it.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

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

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: store_crash_writer DB TAG\n");
    return 2;
  }
  std::string tag = argv[2];
  auto opened = store::OpenSqliteStore({.path = argv[1]});
  if (!opened.ok()) return Fail("open", opened.status());
  store::Store& st = **opened;

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
    std::string line = v + " " + std::to_string(r->revision) + "\n";
    if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return 1;
    }
  }
}
