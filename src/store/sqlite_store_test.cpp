#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "store/store.h"

namespace store {
namespace {

using namespace std::chrono_literals;

// Collects watch events and lets a test wait for them.
class Recorder {
 public:
  WatchCallback Callback() {
    return [this](const std::vector<Event>& batch) {
      std::lock_guard<std::mutex> lock(mu_);
      Revision prev = events_.empty() ? 0 : events_.back().kv.mod_revision;
      for (const Event& e : batch) {
        if (e.kv.mod_revision < prev) out_of_order_ = true;
        prev = e.kv.mod_revision;
        events_.push_back(e);
      }
      ++batches_;
      cv_.notify_all();
    };
  }
  // Waits until at least n events arrived; returns all of them.
  std::vector<Event> WaitFor(size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return events_.size() >= n; });
    return events_;
  }
  std::vector<Event> Events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  bool out_of_order() {
    std::lock_guard<std::mutex> lock(mu_);
    return out_of_order_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  int batches_ = 0;
  bool out_of_order_ = false;
};

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/stratus-store-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  void Reopen(std::chrono::milliseconds sweep = 500ms) {
    store_.reset();
    SqliteOptions o;
    o.path = dir_ + "/db/store.db";
    o.clock = &clock_;
    o.lease_sweep_interval = sweep;
    auto s = OpenSqliteStore(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  Revision MustPut(const std::string& k, const std::string& v, LeaseId lease = 0) {
    auto r = store_->Put(k, v, lease);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : -1;
  }
  std::optional<KeyValue> MustGet(const std::string& k) {
    auto r = store_->Get(k);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }
  std::vector<std::string> Keys(const KeyRange& range, const RangeOptions& opts = {}) {
    auto r = store_->Range(range, opts);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::vector<std::string> keys;
    if (r.ok())
      for (auto& kv : r->kvs) keys.push_back(kv.key);
    return keys;
  }

  std::string dir_;
  base::ManualClock clock_{base::SystemTime(std::chrono::seconds(1'700'000'000))};
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, RevisionsVersionsAndCreateModRevisions) {
  EXPECT_EQ(store_->CurrentRevision(), 0);
  EXPECT_FALSE(MustGet("a").has_value());

  EXPECT_EQ(MustPut("a", "1"), 1);
  EXPECT_EQ(MustPut("b", "1"), 2);
  EXPECT_EQ(MustPut("a", "2"), 3);
  auto a = MustGet("a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->value, "2");
  EXPECT_EQ(a->create_revision, 1);
  EXPECT_EQ(a->mod_revision, 3);
  EXPECT_EQ(a->version, 2);
  EXPECT_EQ(a->lease, 0);
  EXPECT_EQ(store_->CurrentRevision(), 3);

  // Deleting a missing key changes nothing, so no revision.
  auto d = store_->Delete(KeyRange::Exact("missing"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, 0);
  EXPECT_EQ(store_->CurrentRevision(), 3);

  d = store_->Delete(KeyRange::Exact("a"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, 1);
  EXPECT_EQ(store_->CurrentRevision(), 4);
  EXPECT_FALSE(MustGet("a").has_value());

  // Re-creating starts a new life: new create revision, version 1.
  EXPECT_EQ(MustPut("a", "3"), 5);
  a = MustGet("a");
  EXPECT_EQ(a->create_revision, 5);
  EXPECT_EQ(a->version, 1);

  // Empty keys and values: the key is refused, the value is fine.
  EXPECT_EQ(store_->Put("", "x").status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(MustPut("empty", ""), 6);
  EXPECT_EQ(MustGet("empty")->value, "");
}

TEST_F(SqliteStoreTest, RangePrefixLimitPagingAndCount) {
  for (const char* k : {"/a/1", "/a/2", "/a/3", "/a/4", "/a/5", "/a0", "/b/1", "/"}) MustPut(k, k);
  EXPECT_EQ(Keys(KeyRange::Prefix("/a/")),
            (std::vector<std::string>{"/a/1", "/a/2", "/a/3", "/a/4", "/a/5"}));
  EXPECT_EQ(Keys(KeyRange::Exact("/a/3")), (std::vector<std::string>{"/a/3"}));
  EXPECT_TRUE(Keys(KeyRange::Exact("/a/")).empty());
  EXPECT_EQ(Keys(KeyRange::Prefix("")).size(), 8u);

  // Paging with limit + start_after.
  std::vector<std::string> seen;
  std::string after;
  for (int pages = 0; pages < 10; ++pages) {
    RangeOptions o;
    o.limit = 2;
    o.start_after = after;
    auto r = store_->Range(KeyRange::Prefix("/a/"), o);
    ASSERT_TRUE(r.ok());
    for (auto& kv : r->kvs) seen.push_back(kv.key);
    EXPECT_EQ(r->revision, 8);
    if (!r->more) break;
    EXPECT_EQ(r->kvs.size(), 2u);
    after = r->kvs.back().key;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"/a/1", "/a/2", "/a/3", "/a/4", "/a/5"}));

  RangeOptions o;
  o.limit = 2;
  auto r = store_->Range(KeyRange::Prefix("/a/"), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->count, 5);
  EXPECT_TRUE(r->more);
  EXPECT_EQ(r->kvs[0].value, "/a/1");

  o = {};
  o.count_only = true;
  r = store_->Range(KeyRange::Prefix("/a/"), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->count, 5);
  EXPECT_TRUE(r->kvs.empty());

  o = {};
  o.keys_only = true;
  r = store_->Range(KeyRange::Prefix("/b/"), o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].key, "/b/1");
  EXPECT_EQ(r->kvs[0].value, "");
  EXPECT_EQ(r->kvs[0].mod_revision, 7);

  o = {};
  o.start_after = "/a/5";
  EXPECT_TRUE(Keys(KeyRange::Exact("/a/3"), o).empty());
  EXPECT_EQ(store_->Range(KeyRange::Prefix("/"), {.limit = -1}).status().code(),
            base::Code::kInvalidArgument);
}

TEST_F(SqliteStoreTest, PrefixRangesAreCorrectForAnyBytes) {
  const std::string ff = "\xff";
  const std::string nul(1, '\0');
  std::vector<std::string> keys = {
      "p" + ff,  "p" + ff + ff,   "p" + ff + "a",    "q", ff, ff + ff, ff + nul,
      "p" + nul, "p" + nul + nul, "o" + ff + ff + ff};
  for (auto& k : keys) MustPut(k, "v");
  EXPECT_EQ(Keys(KeyRange::Prefix("p" + ff)),
            (std::vector<std::string>{"p" + ff, "p" + ff + "a", "p" + ff + ff}));
  EXPECT_EQ(Keys(KeyRange::Prefix(ff)), (std::vector<std::string>{ff, ff + nul, ff + ff}));
  EXPECT_EQ(Keys(KeyRange::Prefix(ff + ff)), (std::vector<std::string>{ff + ff}));
  EXPECT_EQ(Keys(KeyRange::Prefix("p" + nul)),
            (std::vector<std::string>{"p" + nul, "p" + nul + nul}));
  EXPECT_EQ(Keys(KeyRange::Prefix("o")), (std::vector<std::string>{"o" + ff + ff + ff}));
  EXPECT_EQ(Keys(KeyRange::Prefix("")).size(), keys.size());
  EXPECT_EQ(Keys(KeyRange::Exact("p" + nul)), (std::vector<std::string>{"p" + nul}));
  // Deleting by a prefix with high bytes removes exactly that prefix.
  auto d = store_->Delete(KeyRange::Prefix(ff));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, 3);
  EXPECT_EQ(Keys(KeyRange::Prefix("")).size(), keys.size() - 3);
}

TEST_F(SqliteStoreTest, TxnComparesChooseTheBranch) {
  MustPut("k", "v1");  // rev 1
  MustPut("k", "v2");  // rev 2, version 2, create 1

  struct Case {
    Compare cmp;
    bool want;
  };
  using T = Compare::Target;
  using O = Compare::Op;
  std::vector<Case> cases = {
      {{"k", T::kVersion, O::kEqual, 2, {}}, true},
      {{"k", T::kVersion, O::kNotEqual, 2, {}}, false},
      {{"k", T::kVersion, O::kGreater, 1, {}}, true},
      {{"k", T::kVersion, O::kLess, 2, {}}, false},
      {{"k", T::kCreateRevision, O::kEqual, 1, {}}, true},
      {{"k", T::kModRevision, O::kEqual, 2, {}}, true},
      {{"k", T::kModRevision, O::kLess, 2, {}}, false},
      {{"k", T::kValue, O::kEqual, 0, "v2"}, true},
      {{"k", T::kValue, O::kLess, 0, "v3"}, true},
      {{"k", T::kValue, O::kGreater, 0, "v3"}, false},
      {{"k", T::kValue, O::kNotEqual, 0, "v2"}, false},
      // A missing key has version/create/mod 0 and an empty value.
      {Compare::KeyMissing("nope"), true},
      {Compare::KeyExists("nope"), false},
      {{"nope", T::kModRevision, O::kEqual, 0, {}}, true},
      {{"nope", T::kCreateRevision, O::kGreater, 0, {}}, false},
      {Compare::ValueIs("nope", ""), true},
      {Compare::ValueIs("nope", "x"), false},
      {Compare::KeyExists("k"), true},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    Revision before = store_->CurrentRevision();
    Txn txn;
    txn.compares.push_back(cases[i].cmp);
    txn.success.push_back(Op::Put("branch", "success"));
    txn.failure.push_back(Op::Get(KeyRange::Exact("k")));
    auto r = store_->Commit(txn);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->succeeded, cases[i].want);
    ASSERT_EQ(r->results.size(), 1u);
    if (cases[i].want) {
      EXPECT_EQ(r->revision, before + 1);
    } else {
      // The failure branch only read: no new revision, and the read is returned.
      EXPECT_EQ(r->revision, before);
      ASSERT_EQ(r->results[0].kvs.size(), 1u);
      EXPECT_EQ(r->results[0].kvs[0].value, "v2");
    }
  }

  // All compares must hold.
  Txn txn;
  txn.compares = {Compare::KeyExists("k"), Compare::KeyExists("nope")};
  txn.success.push_back(Op::Put("x", "1"));
  txn.failure.push_back(Op::Put("y", "1"));
  auto r = store_->Commit(txn);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded);
  EXPECT_FALSE(MustGet("x").has_value());
  EXPECT_TRUE(MustGet("y").has_value());
}

TEST_F(SqliteStoreTest, TxnIsOneRevisionAndAtomic) {
  MustPut("/t/old", "o");  // rev 1
  Txn txn;
  txn.success = {Op::Put("/t/a", "1"), Op::Put("/t/b", "2"), Op::Delete(KeyRange::Exact("/t/old")),
                 Op::Get(KeyRange::Prefix("/t/"))};
  auto r = store_->Commit(txn);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->succeeded);
  EXPECT_EQ(r->revision, 2);
  ASSERT_EQ(r->results.size(), 4u);
  EXPECT_EQ(r->results[2].deleted, 1);
  ASSERT_EQ(r->results[2].kvs.size(), 1u);
  EXPECT_EQ(r->results[2].kvs[0].value, "o");  // the previous value
  // Later ops see earlier ones.
  ASSERT_EQ(r->results[3].kvs.size(), 2u);
  EXPECT_EQ(r->results[3].kvs[0].key, "/t/a");
  EXPECT_EQ(MustGet("/t/a")->mod_revision, 2);
  EXPECT_EQ(MustGet("/t/b")->mod_revision, 2);

  // A failing op (unknown lease) rolls back the ops before it; the revision stays.
  Txn bad;
  bad.success = {Op::Put("/t/a", "changed"), Op::Delete(KeyRange::Prefix("/t/")),
                 Op::Put("/t/c", "3", /*lease=*/12345)};
  auto br = store_->Commit(bad);
  ASSERT_FALSE(br.ok());
  EXPECT_EQ(br.status().code(), base::Code::kNotFound);
  EXPECT_NE(br.status().message().find("/t/c"), std::string::npos) << br.status().message();
  EXPECT_EQ(store_->CurrentRevision(), 2);
  EXPECT_EQ(MustGet("/t/a")->value, "1");
  EXPECT_TRUE(MustGet("/t/b").has_value());
  EXPECT_FALSE(MustGet("/t/c").has_value());

  // An empty txn, or one that changes nothing, leaves the revision alone.
  auto er = store_->Commit({});
  ASSERT_TRUE(er.ok());
  EXPECT_TRUE(er->succeeded);
  EXPECT_EQ(er->revision, 2);
  EXPECT_EQ(MustPut("/t/z", "z"), 3);
}

TEST_F(SqliteStoreTest, WatchReplaysHistoryThenDeliversLive) {
  MustPut("/w/a", "1");                                       // 1
  MustPut("/other", "x");                                     // 2
  MustPut("/w/b", "2");                                       // 3
  ASSERT_TRUE(store_->Delete(KeyRange::Exact("/w/a")).ok());  // 4

  Recorder rec;
  auto w = store_->WatchPrefix("/w/", 2, rec.Callback());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  auto events = rec.WaitFor(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, Event::Type::kPut);
  EXPECT_EQ(events[0].kv.key, "/w/b");
  EXPECT_EQ(events[0].kv.value, "2");
  EXPECT_EQ(events[0].kv.mod_revision, 3);
  EXPECT_EQ(events[0].kv.version, 1);
  EXPECT_EQ(events[1].type, Event::Type::kDelete);
  EXPECT_EQ(events[1].kv.key, "/w/a");
  EXPECT_EQ(events[1].kv.mod_revision, 4);

  // Live: a txn touching two watched keys and one unwatched arrives as one revision.
  Txn txn;
  txn.success = {Op::Put("/w/c", "3"), Op::Put("/x", "no"), Op::Put("/w/b", "4")};
  ASSERT_TRUE(store_->Commit(txn).ok());  // 5
  MustPut("/w/d", "5");                   // 6
  events = rec.WaitFor(5);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[2].kv.key, "/w/c");
  EXPECT_EQ(events[3].kv.key, "/w/b");
  EXPECT_EQ(events[3].kv.mod_revision, 5);
  EXPECT_EQ(events[3].kv.create_revision, 3);
  EXPECT_EQ(events[3].kv.version, 2);
  EXPECT_EQ(events[4].kv.key, "/w/d");
  EXPECT_EQ(events[4].kv.mod_revision, 6);
  EXPECT_FALSE(rec.out_of_order());

  // From 0 means "from now on"; a prefix of "" sees everything.
  Recorder all;
  auto w2 = store_->WatchPrefix("", 0, all.Callback());
  ASSERT_TRUE(w2.ok());
  MustPut("/zzz", "1");  // 7
  events = all.WaitFor(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.mod_revision, 7);
  EXPECT_EQ(rec.Events().size(), 5u);
}

TEST_F(SqliteStoreTest, WatchFromLongAgoCatchesUpInOrder) {
  // More revisions than one history window, while writes keep coming.
  for (int i = 0; i < 700; ++i) MustPut("/h/" + std::to_string(i % 7), std::to_string(i));
  Recorder rec;
  auto w = store_->WatchPrefix("/h/", 1, rec.Callback());
  ASSERT_TRUE(w.ok());
  for (int i = 700; i < 800; ++i) MustPut("/h/" + std::to_string(i % 7), std::to_string(i));
  auto events = rec.WaitFor(800, 20s);
  ASSERT_EQ(events.size(), 800u);
  for (int i = 0; i < 800; ++i) {
    EXPECT_EQ(events[i].kv.mod_revision, i + 1);
    EXPECT_EQ(events[i].kv.value, std::to_string(i));
  }
  EXPECT_FALSE(rec.out_of_order());
}

TEST_F(SqliteStoreTest, DestroyingTheWatchStopsDelivery) {
  std::atomic<int> calls{0};
  std::atomic<bool> in_callback{false};
  std::atomic<bool> release{false};
  auto w = store_->WatchPrefix("/c/", 0, [&](const std::vector<Event>&) {
    in_callback = true;
    while (!release) std::this_thread::sleep_for(1ms);
    ++calls;
    in_callback = false;
  });
  ASSERT_TRUE(w.ok());
  MustPut("/c/1", "x");
  while (!in_callback) std::this_thread::sleep_for(1ms);

  // The destructor waits for the running callback to return.
  std::atomic<bool> destroyed{false};
  std::thread t([&] {
    w->reset();
    destroyed = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(destroyed);
  release = true;
  t.join();
  EXPECT_TRUE(destroyed);
  EXPECT_FALSE(in_callback);
  int after = calls;
  MustPut("/c/2", "y");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(calls, after);
}

TEST_F(SqliteStoreTest, WatchMayBeDestroyedInsideItsCallback) {
  std::unique_ptr<Watch> handle;
  std::mutex mu;
  std::atomic<int> calls{0};
  auto w = store_->WatchPrefix("/s/", 0, [&](const std::vector<Event>&) {
    ++calls;
    std::lock_guard<std::mutex> lock(mu);
    handle.reset();  // must not deadlock
  });
  ASSERT_TRUE(w.ok());
  {
    std::lock_guard<std::mutex> lock(mu);
    handle = std::move(w).value();
  }
  MustPut("/s/1", "x");
  for (int i = 0; i < 500 && calls == 0; ++i) std::this_thread::sleep_for(2ms);
  EXPECT_EQ(calls, 1);
  MustPut("/s/2", "x");
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(calls, 1);

  // A callback may also write to the store.
  Recorder rec;
  auto writer = store_->WatchPrefix("/in/", 0, [&](const std::vector<Event>& b) {
    for (auto& e : b)
      if (e.type == Event::Type::kPut)
        store_->Put("/out/" + e.kv.key.substr(4), "y").status().IgnoreError();
  });
  auto out = store_->WatchPrefix("/out/", 0, rec.Callback());
  ASSERT_TRUE(writer.ok() && out.ok());
  MustPut("/in/k", "x");
  auto events = rec.WaitFor(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.key, "/out/k");
}

TEST_F(SqliteStoreTest, CompactionRefusesOlderWatches) {
  for (int i = 0; i < 10; ++i) MustPut("/k", std::to_string(i));
  EXPECT_EQ(store_->Compact(100).code(), base::Code::kInvalidArgument);
  ASSERT_TRUE(store_->Compact(6).ok());
  ASSERT_TRUE(store_->Compact(3).ok());  // already compacted past: nothing to do

  Recorder rec;
  auto old = store_->WatchPrefix("/", 5, rec.Callback());
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.status().code(), base::Code::kFailedPrecondition);

  auto w = store_->WatchPrefix("/", 6, rec.Callback());
  ASSERT_TRUE(w.ok());
  auto events = rec.WaitFor(5);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].kv.mod_revision, 6);
  EXPECT_EQ(events[0].kv.value, "5");
  // Current state is untouched by compaction.
  EXPECT_EQ(MustGet("/k")->version, 10);

  // Compaction survives a reopen.
  w->reset();
  Reopen();
  EXPECT_EQ(store_->WatchPrefix("/", 5, rec.Callback()).status().code(),
            base::Code::kFailedPrecondition);
  EXPECT_TRUE(store_->WatchPrefix("/", 6, rec.Callback()).ok());
}

TEST_F(SqliteStoreTest, LeasesExpireWithTheClock) {
  Reopen(10ms);
  auto lease = store_->GrantLease(10s);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_GT(*lease, 0);
  MustPut("/l/a", "1", *lease);
  MustPut("/l/b", "2", *lease);
  MustPut("/l/free", "3");
  EXPECT_EQ(MustGet("/l/a")->lease, *lease);
  Revision before = store_->CurrentRevision();

  Recorder rec;
  auto w = store_->WatchPrefix("/l/", 0, rec.Callback());
  ASSERT_TRUE(w.ok());

  clock_.Advance(9s);
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(MustGet("/l/a").has_value());
  ASSERT_TRUE(store_->KeepAlive(*lease).ok());  // deadline now +10s from here
  clock_.Advance(9s);
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(MustGet("/l/a").has_value());

  clock_.Advance(2s);
  auto events = rec.WaitFor(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, Event::Type::kDelete);
  EXPECT_EQ(events[1].type, Event::Type::kDelete);
  // Both keys went in one revision.
  EXPECT_EQ(events[0].kv.mod_revision, before + 1);
  EXPECT_EQ(events[1].kv.mod_revision, before + 1);
  EXPECT_FALSE(MustGet("/l/a").has_value());
  EXPECT_FALSE(MustGet("/l/b").has_value());
  EXPECT_TRUE(MustGet("/l/free").has_value());
  EXPECT_EQ(store_->KeepAlive(*lease).code(), base::Code::kNotFound);
  EXPECT_EQ(store_->Put("/l/c", "x", *lease).status().code(), base::Code::kNotFound);
}

TEST_F(SqliteStoreTest, RevokeAndKeepAlive) {
  EXPECT_EQ(store_->GrantLease(0s).status().code(), base::Code::kInvalidArgument);
  auto l1 = store_->GrantLease(60s);
  auto l2 = store_->GrantLease(60s);
  ASSERT_TRUE(l1.ok() && l2.ok());
  EXPECT_NE(*l1, *l2);
  EXPECT_EQ(store_->CurrentRevision(), 0);  // granting is not a revision

  MustPut("/r/a", "1", *l1);
  MustPut("/r/b", "1", *l2);
  MustPut("/r/a2", "1", *l1);
  MustPut("/r/a2", "2");  // a put without the lease detaches the key
  EXPECT_EQ(MustGet("/r/a2")->lease, 0);
  Revision before = store_->CurrentRevision();
  ASSERT_TRUE(store_->RevokeLease(*l1).ok());
  EXPECT_EQ(store_->CurrentRevision(), before + 1);
  EXPECT_FALSE(MustGet("/r/a").has_value());
  EXPECT_TRUE(MustGet("/r/a2").has_value());
  EXPECT_TRUE(MustGet("/r/b").has_value());
  EXPECT_EQ(store_->RevokeLease(*l1).code(), base::Code::kNotFound);
  EXPECT_EQ(store_->KeepAlive(*l1).code(), base::Code::kNotFound);
  EXPECT_TRUE(store_->KeepAlive(*l2).ok());

  // A lease with no keys revokes without a revision.
  auto l3 = store_->GrantLease(5s);
  ASSERT_TRUE(l3.ok());
  before = store_->CurrentRevision();
  ASSERT_TRUE(store_->RevokeLease(*l3).ok());
  EXPECT_EQ(store_->CurrentRevision(), before);

  // KeepAlive on a lease past its deadline that the sweeper has not reached yet fails,
  // and its keys go at once.
  auto l4 = store_->GrantLease(1s);
  ASSERT_TRUE(l4.ok());
  MustPut("/r/l4", "x", *l4);
  clock_.Advance(2s);
  EXPECT_EQ(store_->KeepAlive(*l4).code(), base::Code::kNotFound);
  EXPECT_FALSE(MustGet("/r/l4").has_value());
}

TEST_F(SqliteStoreTest, EverythingSurvivesReopen) {
  auto lease = store_->GrantLease(30s);
  ASSERT_TRUE(lease.ok());
  MustPut("/p/a", "1");
  MustPut("/p/a", "2");
  MustPut("/p/leased", "x", *lease);
  ASSERT_TRUE(store_->Delete(KeyRange::Exact("/p/a")).ok());
  MustPut("/p/a", "3");  // rev 5
  Reopen(10ms);

  EXPECT_EQ(store_->CurrentRevision(), 5);
  auto a = MustGet("/p/a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->value, "3");
  EXPECT_EQ(a->create_revision, 5);
  EXPECT_EQ(a->version, 1);
  EXPECT_EQ(MustPut("/p/b", "1"), 6);

  // History is replayable after a restart.
  Recorder rec;
  auto w = store_->WatchPrefix("/p/", 1, rec.Callback());
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(rec.WaitFor(6).size(), 6u);

  // The lease and its absolute deadline survived: still alive before it, gone after.
  EXPECT_EQ(MustGet("/p/leased")->lease, *lease);
  auto l2 = store_->GrantLease(30s);
  ASSERT_TRUE(l2.ok());
  EXPECT_NE(*l2, *lease);  // ids are not reused
  clock_.Advance(29s);
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(MustGet("/p/leased").has_value());
  clock_.Advance(2s);
  for (int i = 0; i < 500 && MustGet("/p/leased").has_value(); ++i)
    std::this_thread::sleep_for(2ms);
  EXPECT_FALSE(MustGet("/p/leased").has_value());
}

TEST_F(SqliteStoreTest, SecondOpenOfTheSameFileIsRefused) {
  SqliteOptions o;
  o.path = dir_ + "/db/store.db";
  auto second = OpenSqliteStore(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), base::Code::kUnavailable) << second.status().ToString();
}

TEST_F(SqliteStoreTest, ConcurrentCompareAndSwapLosesNoIncrement) {
  constexpr int kThreads = 4;
  constexpr int kIncrements = 25;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int done = 0; done < kIncrements;) {
        auto cur = store_->Get("/counter");
        if (!cur.ok()) {
          ++errors;
          return;
        }
        int64_t n = cur->has_value() ? std::atoll((*cur)->value.c_str()) : 0;
        Revision mod = cur->has_value() ? (*cur)->mod_revision : 0;
        Txn txn;
        txn.compares.push_back(Compare::ModRevisionIs("/counter", mod));
        txn.success.push_back(Op::Put("/counter", std::to_string(n + 1)));
        auto r = store_->Commit(txn);
        if (!r.ok()) {
          ++errors;
          return;
        }
        if (r->succeeded) ++done;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(MustGet("/counter")->value, std::to_string(kThreads * kIncrements));
  EXPECT_EQ(MustGet("/counter")->version, kThreads * kIncrements);
}

// Group commit: many writers doing compare-and-swap increments on a few counters lose none,
// and every successful increment has its own revision.
TEST_F(SqliteStoreTest, ManyConcurrentCompareAndSwapWritersLoseNothing) {
  constexpr int kThreads = 16;
  constexpr int kIncrements = 40;
  constexpr int kCounters = 3;
  Revision base = store_->CurrentRevision();
  std::mutex mu;
  std::vector<Revision> revisions;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string key = "/counter/" + std::to_string(t % kCounters);
      for (int done = 0; done < kIncrements;) {
        auto cur = store_->Get(key);
        if (!cur.ok()) {
          ++errors;
          return;
        }
        int64_t n = cur->has_value() ? std::atoll((*cur)->value.c_str()) : 0;
        Txn txn;
        txn.compares.push_back(
            Compare::ModRevisionIs(key, cur->has_value() ? (*cur)->mod_revision : 0));
        txn.success.push_back(Op::Put(key, std::to_string(n + 1)));
        auto r = store_->Commit(txn);
        if (!r.ok()) {
          ++errors;
          return;
        }
        if (!r->succeeded) continue;
        ++done;
        std::lock_guard<std::mutex> lock(mu);
        revisions.push_back(r->revision);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors, 0);
  int64_t total = 0;
  for (int c = 0; c < kCounters; ++c) {
    auto kv = MustGet("/counter/" + std::to_string(c));
    ASSERT_TRUE(kv.has_value());
    EXPECT_EQ(std::to_string(kv->version), kv->value);
    total += kv->version;
  }
  EXPECT_EQ(total, kThreads * kIncrements);
  // Failed compares bump nothing: the successful ones are exactly base+1 .. base+N.
  std::sort(revisions.begin(), revisions.end());
  ASSERT_EQ(revisions.size(), static_cast<size_t>(kThreads * kIncrements));
  for (size_t i = 0; i < revisions.size(); ++i) {
    EXPECT_EQ(revisions[i], base + 1 + static_cast<Revision>(i));
  }
  EXPECT_EQ(store_->CurrentRevision(), base + kThreads * kIncrements);
}

// A clock whose Now() blocks while the gate is closed. KeepAlive reads the clock while it
// holds the store's connection, so a closed gate makes Commit callers queue up behind it and
// then commit as one group.
class GateClock : public base::Clock {
 public:
  base::SystemTime Now() const override {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    --waiting_;
    return base::SystemTime(std::chrono::seconds(1'700'000'000));
  }
  std::chrono::steady_clock::time_point Steady() const override {
    return std::chrono::steady_clock::now();
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void WaitForBlocked() const {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return waiting_ > 0; });
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable int waiting_ = 0;
  bool open_ = true;
};

TEST_F(SqliteStoreTest, OneFailingTxnInAGroupFailsAloneAndRevisionsStayDense) {
  store_.reset();
  GateClock gate;
  SqliteOptions o;
  o.path = dir_ + "/db/store.db";
  o.clock = &gate;
  o.lease_sweep_interval = std::chrono::hours(1);  // the sweeper must not read the clock
  auto opened = OpenSqliteStore(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  store_ = std::move(opened).value();
  auto lease = store_->GrantLease(60s);
  ASSERT_TRUE(lease.ok());
  Revision base = store_->CurrentRevision();
  Recorder rec;
  auto watch = store_->WatchPrefix("/", base + 1, rec.Callback());
  ASSERT_TRUE(watch.ok());

  gate.Close();
  std::thread holder([&] { EXPECT_TRUE(store_->KeepAlive(*lease).ok()); });
  gate.WaitForBlocked();  // the connection is held: commits below queue up

  // Kind 0 fails halfway (its second put names an unknown lease); kind 1 is a
  // put-if-missing on /first, so only the first of them to commit takes effect and the rest
  // (which must see it) change nothing; kind 2 is a plain put.
  constexpr int kWriters = 24;
  std::vector<base::Result<TxnResult>> results(kWriters, base::Internal("not run"));
  std::vector<std::thread> writers;
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, i] {
      std::string p = "/g/" + std::to_string(i) + "/";
      Txn txn;
      switch (i % 3) {
        case 0:
          txn.success = {Op::Put(p + "a", "x"), Op::Put(p + "b", "x", 987654321)};
          break;
        case 1:
          txn.compares = {Compare::KeyMissing("/first")};
          txn.success = {Op::Put("/first", std::to_string(i))};
          txn.failure = {Op::Get(KeyRange::Exact("/first"))};
          break;
        default:
          txn.success = {Op::Put(p + "a", "x")};
          break;
      }
      results[static_cast<size_t>(i)] = store_->Commit(txn);
    });
  }
  std::this_thread::sleep_for(200ms);  // let them all queue
  gate.Open();
  holder.join();
  for (auto& t : writers) t.join();

  std::vector<Revision> bumped;
  int first_winners = 0;
  for (int i = 0; i < kWriters; ++i) {
    const auto& r = results[static_cast<size_t>(i)];
    std::string p = "/g/" + std::to_string(i) + "/";
    SCOPED_TRACE("writer " + std::to_string(i));
    if (i % 3 == 0) {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), base::Code::kNotFound) << r.status().ToString();
      EXPECT_FALSE(MustGet(p + "a").has_value()) << "a failed txn left a write behind";
      continue;
    }
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (i % 3 == 2) {
      auto kv = MustGet(p + "a");
      ASSERT_TRUE(kv.has_value());
      EXPECT_EQ(kv->mod_revision, r->revision);
      bumped.push_back(r->revision);
    } else if (r->succeeded) {
      ++first_winners;
      bumped.push_back(r->revision);
      EXPECT_EQ(MustGet("/first")->mod_revision, r->revision);
    } else {
      ASSERT_EQ(r->results.size(), 1u);
      ASSERT_EQ(r->results[0].kvs.size(), 1u) << "a later txn did not see /first";
      EXPECT_LE(r->results[0].kvs[0].mod_revision, r->revision);
    }
  }
  EXPECT_EQ(first_winners, 1);
  std::sort(bumped.begin(), bumped.end());
  for (size_t i = 0; i < bumped.size(); ++i) {
    EXPECT_EQ(bumped[i], base + 1 + static_cast<Revision>(i)) << "revisions not dense";
  }
  EXPECT_EQ(store_->CurrentRevision(), base + static_cast<Revision>(bumped.size()));
  // Watches see exactly those revisions, one put each, in order.
  auto events = rec.WaitFor(bumped.size());
  ASSERT_EQ(events.size(), bumped.size());
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].kv.mod_revision, bumped[i]);
  EXPECT_FALSE(rec.out_of_order());

  // All of it is durable.
  watch->reset();
  Reopen();
  EXPECT_EQ(store_->CurrentRevision(), base + static_cast<Revision>(bumped.size()));
  EXPECT_EQ(Keys(KeyRange::Prefix("/g/")).size(), static_cast<size_t>(kWriters / 3));
}

TEST_F(SqliteStoreTest, AFailedGroupCommitFailsEveryTxnAndChangesNothing) {
  store_.reset();
  GateClock gate;
  std::atomic<bool> fail_commit{false};
  SqliteOptions o;
  o.path = dir_ + "/db/store.db";
  o.clock = &gate;
  o.lease_sweep_interval = std::chrono::hours(1);
  o.before_commit_for_test = [&]() -> base::Status {
    if (fail_commit) return base::Status(base::Code::kIo, "injected");
    return base::Status::Ok();
  };
  auto opened = OpenSqliteStore(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  store_ = std::move(opened).value();
  auto lease = store_->GrantLease(60s);
  ASSERT_TRUE(lease.ok());
  MustPut("/before", "x");
  Revision base = store_->CurrentRevision();
  Recorder rec;
  auto watch = store_->WatchPrefix("/", base + 1, rec.Callback());
  ASSERT_TRUE(watch.ok());

  fail_commit = true;
  gate.Close();
  std::thread holder([&] { EXPECT_TRUE(store_->KeepAlive(*lease).ok()); });
  gate.WaitForBlocked();
  constexpr int kWriters = 8;
  std::vector<base::Status> statuses(kWriters);
  std::vector<std::thread> writers;
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, i] {
      auto r = store_->Put("/g/" + std::to_string(i), "x");
      statuses[static_cast<size_t>(i)] = r.ok() ? base::Status::Ok() : r.status();
    });
  }
  std::this_thread::sleep_for(200ms);
  gate.Open();
  holder.join();
  for (auto& t : writers) t.join();
  for (const auto& st : statuses) EXPECT_EQ(st.code(), base::Code::kIo) << st.ToString();
  EXPECT_EQ(store_->CurrentRevision(), base);
  EXPECT_TRUE(Keys(KeyRange::Prefix("/g/")).empty());

  // The next write takes the revision the failed group did not keep, and is the first event.
  fail_commit = false;
  EXPECT_EQ(MustPut("/after", "y"), base + 1);
  auto events = rec.WaitFor(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.key, "/after");
  EXPECT_EQ(events[0].kv.mod_revision, base + 1);
  watch->reset();
  Reopen();
  EXPECT_EQ(store_->CurrentRevision(), base + 1);
  EXPECT_TRUE(Keys(KeyRange::Prefix("/g/")).empty());
}

}  // namespace
}  // namespace store
