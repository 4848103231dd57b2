// The embedded Store: one SQLite database in WAL mode with synchronous=FULL, so COMMIT
// returns only after the WAL is fsynced. See README.md for the schema and the design.
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/fs.h"
#include "base/status.h"
#include "store/store.h"
#include "store/watch_hub.h"

namespace store {

namespace {

using base::Result;
using base::Status;

constexpr int64_t kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (
  key        BLOB PRIMARY KEY,
  value      BLOB NOT NULL,
  create_rev INTEGER NOT NULL,
  mod_rev    INTEGER NOT NULL,
  version    INTEGER NOT NULL,
  lease      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_by_lease ON kv(lease) WHERE lease != 0;
CREATE TABLE IF NOT EXISTS history (
  revision   INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  type       INTEGER NOT NULL,
  key        BLOB NOT NULL,
  value      BLOB,
  create_rev INTEGER NOT NULL,
  version    INTEGER NOT NULL,
  lease      INTEGER NOT NULL,
  PRIMARY KEY (revision, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
  id          INTEGER PRIMARY KEY,
  ttl_seconds INTEGER NOT NULL,
  deadline_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_by_deadline ON leases(deadline_ms);
)sql";

constexpr int kEventPut = 0;
constexpr int kEventDelete = 1;

Status SqliteStatus(sqlite3* db, int rc, std::string_view what) {
  std::string m(what);
  m += ": ";
  m += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return base::Unavailable(std::move(m));
    case SQLITE_FULL:
      return base::ResourceExhausted(std::move(m));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return base::Corruption(std::move(m));
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return base::Status(base::Code::kIo, std::move(m));
    case SQLITE_TOOBIG:
      return base::InvalidArgument(std::move(m));
    default:
      return base::Internal(std::move(m));
  }
}

// The smallest key greater than every key with prefix `p`; nullopt when there is none
// ("" or all 0xff bytes: the range runs to the end of the key space).
std::optional<std::string> PrefixEnd(std::string_view p) {
  std::string end(p);
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last != 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::nullopt;
}

int64_t ToEpochMs(base::SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// A prepared statement, finalized on destruction. Move-only.
class Statement {
 public:
  Statement() = default;
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(Statement&& o) noexcept : stmt_(std::exchange(o.stmt_, nullptr)) {}
  Statement& operator=(Statement&& o) noexcept {
    std::swap(stmt_, o.stmt_);
    return *this;
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Status Prepare(sqlite3* db, std::string_view sql) {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
    int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) return SqliteStatus(db, rc, "prepare \"" + std::string(sql) + "\"");
    return Status::Ok();
  }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// One execution of a cached statement: binds, steps, reads columns, and resets the
// statement when it goes out of scope (so it keeps no read snapshot and no bindings).
class Exec {
 public:
  explicit Exec(const Statement& s) : s_(s.get()), db_(sqlite3_db_handle(s_)) {}
  ~Exec() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Exec(const Exec&) = delete;
  Exec& operator=(const Exec&) = delete;

  Exec& Bytes(int i, std::string_view v) {
    // A null pointer would bind NULL, not an empty blob.
    static const char kEmpty = 0;
    const char* data = v.data() != nullptr ? v.data() : &kEmpty;
    Check(sqlite3_bind_blob64(s_, i, data, v.size(), SQLITE_STATIC));
    return *this;
  }
  Exec& Int(int i, int64_t v) {
    Check(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  Exec& Text(int i, std::string_view v) {
    Check(sqlite3_bind_text64(s_, i, v.data() != nullptr ? v.data() : "", v.size(), SQLITE_STATIC,
                              SQLITE_UTF8));
    return *this;
  }

  // true: a row is ready; false: done.
  Result<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return SqliteStatus(db_, bind_rc_, "bind");
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteStatus(db_, rc, "step");
  }
  // Runs a statement that returns no rows (or ignores them).
  Status Run() {
    Result<bool> r = Step();
    return r.ok() ? Status::Ok() : r.status();
  }

  int64_t ColInt(int i) const { return sqlite3_column_int64(s_, i); }
  std::string ColBytes(int i) const {
    const void* p = sqlite3_column_blob(s_, i);
    int n = sqlite3_column_bytes(s_, i);
    if (p == nullptr || n <= 0) return {};
    return std::string(static_cast<const char*>(p), static_cast<size_t>(n));
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }
  sqlite3_stmt* s_;
  sqlite3* db_;
  int bind_rc_ = SQLITE_OK;
};

// Columns of kv rows as selected below: key, value, create_rev, mod_rev, version, lease.
KeyValue ReadKv(const Exec& e, bool keys_only) {
  KeyValue kv;
  kv.key = e.ColBytes(0);
  if (!keys_only) kv.value = e.ColBytes(1);
  kv.create_revision = e.ColInt(2);
  kv.mod_revision = e.ColInt(3);
  kv.version = e.ColInt(4);
  kv.lease = e.ColInt(5);
  return kv;
}

bool CompareHolds(const Compare& c, const KeyValue& kv) {
  int cmp;
  if (c.target == Compare::Target::kValue) {
    int r = kv.value.compare(c.value);
    cmp = r < 0 ? -1 : (r > 0 ? 1 : 0);
  } else {
    int64_t have = c.target == Compare::Target::kVersion          ? kv.version
                   : c.target == Compare::Target::kCreateRevision ? kv.create_revision
                                                                  : kv.mod_revision;
    cmp = have < c.number ? -1 : (have > c.number ? 1 : 0);
  }
  switch (c.op) {
    case Compare::Op::kEqual:
      return cmp == 0;
    case Compare::Op::kNotEqual:
      return cmp != 0;
    case Compare::Op::kLess:
      return cmp < 0;
    case Compare::Op::kGreater:
      return cmp > 0;
  }
  return false;
}

std::string Quote(std::string_view key) {
  // Keys are bytes; keep messages printable and bounded.
  std::string out = "\"";
  for (char ch : key.substr(0, 200)) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += ch;
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  if (key.size() > 200) out += "...";
  out += '"';
  return out;
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const SqliteOptions& options)
      : path_(options.path),
        clock_(options.clock != nullptr ? options.clock : &base::SystemClock()),
        sweep_interval_(options.lease_sweep_interval),
        before_commit_for_test_(options.before_commit_for_test) {}

  ~SqliteStore() override {
    {
      std::lock_guard<std::mutex> lock(sweep_mu_);
      stopping_ = true;
    }
    sweep_cv_.notify_all();
    if (sweeper_.joinable()) sweeper_.join();
    if (hub_) hub_->Stop();
    // Statements must be finalized before the connection closes.
    stmts_ = {};
    if (db_ != nullptr) sqlite3_close(db_);
  }

  Status Open();

  Revision CurrentRevision() override { return revision_.load(); }

  Result<std::optional<KeyValue>> Get(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    Result<std::optional<KeyValue>> r = GetLocked(key);
    if (!r.ok()) return r.status().WithContext("get " + Quote(key));
    return r;
  }

  Result<RangeResult> Range(const KeyRange& range, const RangeOptions& opts) override {
    if (opts.limit < 0) return base::InvalidArgument("range " + Quote(range.key) + ": limit < 0");
    std::lock_guard<std::mutex> lock(mu_);
    RangeResult out;
    Status st = RangeLocked(range, opts, &out);
    if (!st.ok()) return st.WithContext("range " + Quote(range.key));
    out.revision = revision_.load();
    return out;
  }

  Result<TxnResult> Commit(const Txn& txn) override;

  Result<std::unique_ptr<Watch>> WatchPrefix(const std::string& prefix, Revision from_revision,
                                             WatchCallback callback) override {
    if (from_revision < 0 || !callback) {
      return base::InvalidArgument("watch " + Quote(prefix) +
                                   ": negative revision or empty callback");
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (from_revision != 0 && from_revision < compact_revision_) {
      return base::FailedPrecondition(
          "watch " + Quote(prefix) + " from revision " + std::to_string(from_revision) +
          ": compacted (history starts at " + std::to_string(compact_revision_) + ")");
    }
    Revision next = from_revision == 0 ? revision_.load() + 1 : from_revision;
    return hub_->Add(prefix, next, std::move(callback));
  }

  Result<LeaseId> GrantLease(std::chrono::seconds ttl) override;
  Status KeepAlive(LeaseId lease) override;
  Status RevokeLease(LeaseId lease) override;
  Status Compact(Revision revision) override;

 private:
  // What one write transaction produces: the revision it would create and its events.
  struct Batch {
    Revision revision = 0;
    int64_t seq = 0;
    std::vector<Event> events;
  };

  // One caller of Commit waiting in the group-commit queue (see CommitGroup).
  struct Writer {
    const Txn* txn = nullptr;
    Status status;
    TxnResult result;
    bool done = false;           // guarded by queue_mu_
    std::condition_variable cv;  // signalled when done, or when this writer becomes leader
  };

  struct Statements {
    Statement begin, commit, rollback;
    Statement savepoint, release, rollback_to;
    Statement get_meta, set_meta;
    Statement get_kv, put_kv, del_kv;
    Statement range_bounded, range_open, count_bounded, count_open;
    Statement kv_by_lease;
    Statement add_history, read_history, compact_history;
    Statement get_lease, add_lease, set_lease_deadline, del_lease, expired_leases;
  };

  Status PrepareStatements();
  Result<int64_t> GetMeta(std::string_view name, int64_t dflt);
  Status SetMeta(std::string_view name, int64_t value);

  Result<std::optional<KeyValue>> GetLocked(std::string_view key);
  Status RangeLocked(const KeyRange& range, const RangeOptions& opts, RangeResult* out);

  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT. If it recorded events, they become one
  // new revision (persisted, then published to watches). Any failure rolls everything back.
  template <typename Body>
  Status WriteTxn(Body&& body);
  void RollbackQuietly();

  Status ApplyPut(Batch* batch, const std::string& key, const std::string& value, LeaseId lease);
  Status ApplyDelete(Batch* batch, const KeyRange& range, OpResult* result);
  Status RecordHistory(Batch* batch, int type, const KeyValue& kv);
  Status RevokeLocked(Batch* batch, LeaseId lease);

  // Applies one txn (compares, then a branch) at revision batch->revision. No transaction
  // control: the caller owns BEGIN/SAVEPOINT. mu_ held.
  Status ApplyTxn(Batch* batch, const Txn& txn, TxnResult* result);
  // Runs the writers [0, n) of `group` in order, each under its own SAVEPOINT, inside one
  // BEGIN IMMEDIATE ... COMMIT (one fsync); then publishes and fills every writer's outcome.
  // mu_ held.
  void CommitGroup(const std::vector<Writer*>& group);

  Status ReadHistory(Revision from, Revision to, std::vector<RevisionEvents>* out);
  void SweepLoop();
  Status SweepExpired();

  const std::string path_;
  base::Clock* const clock_;
  const std::chrono::milliseconds sweep_interval_;
  const std::function<Status()> before_commit_for_test_;

  std::mutex mu_;  // guards the connection, the statements and everything below
  sqlite3* db_ = nullptr;
  Statements stmts_;
  std::atomic<Revision> revision_{0};
  Revision compact_revision_ = 0;
  LeaseId next_lease_ = 1;

  std::shared_ptr<WatchHub> hub_;

  // Group commit: Commit callers queue here; the one at the front is the leader and commits
  // everything queued (up to kMaxGroup) in one SQLite transaction. Lock order: mu_, queue_mu_.
  static constexpr size_t kMaxGroup = 256;
  std::mutex queue_mu_;
  std::deque<Writer*> queue_;

  std::mutex sweep_mu_;
  std::condition_variable sweep_cv_;
  bool stopping_ = false;
  std::thread sweeper_;
};

Status SqliteStore::Open() {
  std::string dir = base::DirName(path_);
  if (dir != "." && dir != "/") RETURN_IF_ERROR(base::MakeDirs(dir, 0700));
  int rc =
      sqlite3_open_v2(path_.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "open store " + path_);
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, 2000);

  // EXCLUSIVE: this process owns the file for as long as the store is open; the cached
  // revision below would go stale if another writer shared it. It must precede WAL so
  // SQLite never needs the -shm file.
  const char* pragmas[] = {
      "PRAGMA locking_mode=EXCLUSIVE",
      "PRAGMA journal_mode=WAL",
      "PRAGMA synchronous=FULL",
      "PRAGMA foreign_keys=OFF",
  };
  for (const char* p : pragmas) {
    char* err = nullptr;
    rc = sqlite3_exec(db_, p, nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "open store " + path_ + ": " + p);
  }
  {
    // journal_mode reports the mode it ended up in; anything but WAL is a failure.
    Statement s;
    RETURN_IF_ERROR(s.Prepare(db_, "PRAGMA journal_mode"));
    Exec e(s);
    ASSIGN_OR_RETURN(bool row, e.Step());
    if (!row || e.ColBytes(0) != "wal") {
      return base::FailedPrecondition("open store " + path_ + ": could not enable WAL");
    }
  }

  // Taking the write lock now (held until close in EXCLUSIVE mode) makes a second opener
  // fail here instead of at its first write.
  char* err = nullptr;
  rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, &err);
  sqlite3_free(err);
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
    return base::Unavailable("open store " + path_ + ": in use by another store or process");
  }
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "open store " + path_ + ": begin");
  rc = sqlite3_exec(db_, kSchema, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) {
    RollbackQuietly();
    return SqliteStatus(db_, rc, "open store " + path_ + ": create schema");
  }
  Status st = PrepareStatements();
  Result<int64_t> schema = st.ok() ? GetMeta("schema_version", 0) : Result<int64_t>(st);
  if (schema.ok() && *schema > kSchemaVersion) {
    st = base::FailedPrecondition("open store " + path_ + ": schema version " +
                                  std::to_string(*schema) + " is newer than this binary's " +
                                  std::to_string(kSchemaVersion));
  } else if (!schema.ok()) {
    st = schema.status();
  }
  if (st.ok()) st = SetMeta("schema_version", kSchemaVersion);
  Result<int64_t> rev = st.ok() ? GetMeta("revision", 0) : Result<int64_t>(st);
  Result<int64_t> compacted = rev.ok() ? GetMeta("compact_revision", 0) : rev;
  Result<int64_t> next_lease = compacted.ok() ? GetMeta("next_lease", 1) : compacted;
  if (!next_lease.ok()) {
    RollbackQuietly();
    return next_lease.status().WithContext("open store " + path_);
  }
  rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) {
    RollbackQuietly();
    return SqliteStatus(db_, rc, "open store " + path_ + ": commit");
  }
  revision_ = *rev;
  compact_revision_ = *compacted;
  next_lease_ = *next_lease;

  hub_ = std::make_shared<WatchHub>(
      [this](Revision from, Revision to, std::vector<RevisionEvents>* out) {
        return ReadHistory(from, to, out);
      },
      revision_.load());
  hub_->Start();
  sweeper_ = std::thread([this] { SweepLoop(); });
  return Status::Ok();
}

Status SqliteStore::PrepareStatements() {
  struct {
    Statement* stmt;
    const char* sql;
  } all[] = {
      {&stmts_.begin, "BEGIN IMMEDIATE"},
      {&stmts_.commit, "COMMIT"},
      {&stmts_.rollback, "ROLLBACK"},
      {&stmts_.savepoint, "SAVEPOINT txn"},
      {&stmts_.release, "RELEASE txn"},
      {&stmts_.rollback_to, "ROLLBACK TO txn"},
      {&stmts_.get_meta, "SELECT value FROM meta WHERE name = ?1"},
      {&stmts_.set_meta, "INSERT OR REPLACE INTO meta(name, value) VALUES (?1, ?2)"},
      {&stmts_.get_kv,
       "SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key = ?1"},
      {&stmts_.put_kv,
       "INSERT OR REPLACE INTO kv(key, value, create_rev, mod_rev, version, lease) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
      {&stmts_.del_kv, "DELETE FROM kv WHERE key = ?1"},
      {&stmts_.range_bounded,
       "SELECT key, value, create_rev, mod_rev, version, lease FROM kv "
       "WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3"},
      {&stmts_.range_open,
       "SELECT key, value, create_rev, mod_rev, version, lease FROM kv "
       "WHERE key >= ?1 ORDER BY key LIMIT ?3"},
      {&stmts_.count_bounded, "SELECT count(*) FROM kv WHERE key >= ?1 AND key < ?2"},
      {&stmts_.count_open, "SELECT count(*) FROM kv WHERE key >= ?1"},
      {&stmts_.kv_by_lease,
       "SELECT key, value, create_rev, mod_rev, version, lease FROM kv "
       "WHERE lease = ?1 ORDER BY key"},
      {&stmts_.add_history,
       "INSERT INTO history(revision, seq, type, key, value, create_rev, version, lease) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
      {&stmts_.read_history,
       "SELECT revision, type, key, value, create_rev, version, lease FROM history "
       "WHERE revision >= ?1 AND revision <= ?2 ORDER BY revision, seq"},
      {&stmts_.compact_history, "DELETE FROM history WHERE revision < ?1"},
      {&stmts_.get_lease, "SELECT ttl_seconds, deadline_ms FROM leases WHERE id = ?1"},
      {&stmts_.add_lease, "INSERT INTO leases(id, ttl_seconds, deadline_ms) VALUES (?1, ?2, ?3)"},
      {&stmts_.set_lease_deadline, "UPDATE leases SET deadline_ms = ?2 WHERE id = ?1"},
      {&stmts_.del_lease, "DELETE FROM leases WHERE id = ?1"},
      {&stmts_.expired_leases, "SELECT id FROM leases WHERE deadline_ms <= ?1 ORDER BY id"},
  };
  for (auto& s : all) RETURN_IF_ERROR(s.stmt->Prepare(db_, s.sql));
  return Status::Ok();
}

Result<int64_t> SqliteStore::GetMeta(std::string_view name, int64_t dflt) {
  Exec e(stmts_.get_meta);
  e.Text(1, name);
  ASSIGN_OR_RETURN(bool row, e.Step());
  return row ? e.ColInt(0) : dflt;
}

Status SqliteStore::SetMeta(std::string_view name, int64_t value) {
  Exec e(stmts_.set_meta);
  e.Text(1, name).Int(2, value);
  return e.Run();
}

Result<std::optional<KeyValue>> SqliteStore::GetLocked(std::string_view key) {
  Exec e(stmts_.get_kv);
  e.Bytes(1, key);
  ASSIGN_OR_RETURN(bool row, e.Step());
  if (!row) return std::optional<KeyValue>();
  return std::optional<KeyValue>(ReadKv(e, false));
}

Status SqliteStore::RangeLocked(const KeyRange& range, const RangeOptions& opts, RangeResult* out) {
  out->kvs.clear();
  out->count = 0;
  out->more = false;
  if (!range.prefix) {
    if (!opts.start_after.empty() && range.key <= opts.start_after) return Status::Ok();
    ASSIGN_OR_RETURN(std::optional<KeyValue> kv, GetLocked(range.key));
    if (!kv) return Status::Ok();
    out->count = 1;
    if (opts.count_only) return Status::Ok();
    if (opts.keys_only) kv->value.clear();
    out->kvs.push_back(std::move(*kv));
    return Status::Ok();
  }

  // [lower, upper): the prefix's keys, minus those <= start_after.
  std::string lower = range.key;
  if (!opts.start_after.empty()) {
    std::string after = opts.start_after;
    after.push_back('\0');  // the smallest key > start_after
    if (after > lower) lower = std::move(after);
  }
  std::optional<std::string> upper = PrefixEnd(range.key);
  if (upper && lower >= *upper) return Status::Ok();

  {
    Exec e(upper ? stmts_.count_bounded : stmts_.count_open);
    e.Bytes(1, lower);
    if (upper) e.Bytes(2, *upper);
    ASSIGN_OR_RETURN(bool row, e.Step());
    out->count = row ? e.ColInt(0) : 0;
  }
  if (opts.count_only || out->count == 0) return Status::Ok();

  Exec e(upper ? stmts_.range_bounded : stmts_.range_open);
  e.Bytes(1, lower);
  if (upper) e.Bytes(2, *upper);
  e.Int(3, opts.limit > 0 ? opts.limit : -1);
  for (;;) {
    ASSIGN_OR_RETURN(bool row, e.Step());
    if (!row) break;
    out->kvs.push_back(ReadKv(e, opts.keys_only));
  }
  out->more = out->count > static_cast<int64_t>(out->kvs.size());
  return Status::Ok();
}

void SqliteStore::RollbackQuietly() {
  // Some errors (I/O, disk full) roll the transaction back by themselves.
  if (sqlite3_get_autocommit(db_)) return;
  char* err = nullptr;
  int rc = sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) spdlog::error("store {}: rollback failed: {}", path_, sqlite3_errmsg(db_));
}

template <typename Body>
Status SqliteStore::WriteTxn(Body&& body) {
  {
    Exec e(stmts_.begin);
    RETURN_IF_ERROR(e.Run());
  }
  Batch batch;
  batch.revision = revision_.load() + 1;
  Status st = body(&batch);
  if (st.ok() && !batch.events.empty()) st = SetMeta("revision", batch.revision);
  if (st.ok()) {
    Exec e(stmts_.commit);
    st = e.Run();
  }
  if (!st.ok()) {
    RollbackQuietly();
    return st;
  }
  if (!batch.events.empty()) {
    revision_.store(batch.revision);
    hub_->Publish(batch.revision, std::move(batch.events));
  }
  return Status::Ok();
}

Status SqliteStore::RecordHistory(Batch* batch, int type, const KeyValue& kv) {
  Exec e(stmts_.add_history);
  e.Int(1, batch->revision).Int(2, batch->seq++).Int(3, type).Bytes(4, kv.key);
  if (type == kEventPut) e.Bytes(5, kv.value);
  e.Int(6, kv.create_revision).Int(7, kv.version).Int(8, kv.lease);
  RETURN_IF_ERROR(e.Run());
  Event ev;
  ev.type = type == kEventPut ? Event::Type::kPut : Event::Type::kDelete;
  ev.kv = kv;
  batch->events.push_back(std::move(ev));
  return Status::Ok();
}

Status SqliteStore::ApplyPut(Batch* batch, const std::string& key, const std::string& value,
                             LeaseId lease) {
  if (lease != 0) {
    Exec e(stmts_.get_lease);
    e.Int(1, lease);
    ASSIGN_OR_RETURN(bool row, e.Step());
    if (!row) return base::NotFound("lease " + std::to_string(lease) + " not found");
  }
  ASSIGN_OR_RETURN(std::optional<KeyValue> prev, GetLocked(key));
  KeyValue kv;
  kv.key = key;
  kv.value = value;
  kv.create_revision = prev ? prev->create_revision : batch->revision;
  kv.mod_revision = batch->revision;
  kv.version = prev ? prev->version + 1 : 1;
  kv.lease = lease;
  {
    Exec e(stmts_.put_kv);
    e.Bytes(1, kv.key).Bytes(2, kv.value).Int(3, kv.create_revision).Int(4, kv.mod_revision);
    e.Int(5, kv.version).Int(6, kv.lease);
    RETURN_IF_ERROR(e.Run());
  }
  return RecordHistory(batch, kEventPut, kv);
}

Status SqliteStore::ApplyDelete(Batch* batch, const KeyRange& range, OpResult* result) {
  RangeResult victims;
  RETURN_IF_ERROR(RangeLocked(range, {}, &victims));
  for (KeyValue& prev : victims.kvs) {
    {
      Exec e(stmts_.del_kv);
      e.Bytes(1, prev.key);
      RETURN_IF_ERROR(e.Run());
    }
    KeyValue tomb;
    tomb.key = prev.key;
    tomb.mod_revision = batch->revision;
    RETURN_IF_ERROR(RecordHistory(batch, kEventDelete, tomb));
    result->kvs.push_back(std::move(prev));
    ++result->deleted;
  }
  return Status::Ok();
}

Result<TxnResult> SqliteStore::Commit(const Txn& txn) {
  for (const auto* ops : {&txn.success, &txn.failure}) {
    for (const Op& op : *ops) {
      if (op.type == Op::Type::kPut && op.range.key.empty()) {
        return base::InvalidArgument("txn: put with an empty key");
      }
      if (op.type == Op::Type::kPut && op.lease < 0) {
        return base::InvalidArgument("txn: put " + Quote(op.range.key) + ": negative lease");
      }
    }
  }

  // Group commit (LevelDB's writer queue): queue up; wait until a leader has committed this
  // txn, or until it is at the front and so the leader itself. A lone writer is the leader
  // at once, so nothing waits for company.
  Writer w;
  w.txn = &txn;
  {
    std::unique_lock<std::mutex> q(queue_mu_);
    queue_.push_back(&w);
    w.cv.wait(q, [&] { return w.done || queue_.front() == &w; });
    if (w.done) {
      if (!w.status.ok()) return w.status;
      return std::move(w.result);
    }
  }

  std::vector<Writer*> group;
  {
    // Take the group only once the connection is ours: whoever queued while the previous
    // group (or a lease or compaction write) held mu_ joins this one.
    std::lock_guard<std::mutex> lock(mu_);
    {
      std::lock_guard<std::mutex> q(queue_mu_);
      size_t n = std::min(queue_.size(), kMaxGroup);
      group.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    }
    CommitGroup(group);
  }

  std::lock_guard<std::mutex> q(queue_mu_);
  for (Writer* member : group) {
    // The group is the front of the queue: only the leader pops, and it pushed first.
    queue_.pop_front();
    if (member != &w) {
      member->done = true;
      member->cv.notify_one();
    }
  }
  if (!queue_.empty()) queue_.front()->cv.notify_one();  // the next leader
  if (!w.status.ok()) return w.status;
  return std::move(w.result);
}

Status SqliteStore::ApplyTxn(Batch* batch, const Txn& txn, TxnResult* result) {
  result->succeeded = true;
  for (const Compare& c : txn.compares) {
    Result<std::optional<KeyValue>> kv = GetLocked(c.key);
    if (!kv.ok()) return kv.status().WithContext("txn: compare " + Quote(c.key));
    if (!CompareHolds(c, kv->value_or(KeyValue{}))) {
      result->succeeded = false;
      break;
    }
  }
  const std::vector<Op>& ops = result->succeeded ? txn.success : txn.failure;
  result->results.resize(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    OpResult& out = result->results[i];
    switch (op.type) {
      case Op::Type::kPut: {
        Status s = ApplyPut(batch, op.range.key, op.value, op.lease);
        if (!s.ok()) return s.WithContext("txn: put " + Quote(op.range.key));
        break;
      }
      case Op::Type::kDelete: {
        Status s = ApplyDelete(batch, op.range, &out);
        if (!s.ok()) return s.WithContext("txn: delete " + Quote(op.range.key));
        break;
      }
      case Op::Type::kGet: {
        RangeResult r;
        Status s = RangeLocked(op.range, {}, &r);
        if (!s.ok()) return s.WithContext("txn: get " + Quote(op.range.key));
        out.kvs = std::move(r.kvs);
        break;
      }
    }
  }
  return Status::Ok();
}

void SqliteStore::CommitGroup(const std::vector<Writer*>& group) {
  // Fails every writer that has not failed on its own; nothing of the group is kept.
  auto fail_all = [&](const Status& st) {
    RollbackQuietly();
    for (Writer* w : group) {
      if (w->status.ok()) w->status = st;
    }
  };
  {
    Exec e(stmts_.begin);
    Status st = e.Run();
    if (!st.ok()) return fail_all(st.WithContext("txn: begin"));
  }
  // Each writer's revision and events, published only after COMMIT; revision_ and the hub
  // are untouched until then, so a failed COMMIT leaves nothing in memory to undo.
  std::vector<Batch> batches(group.size());
  Revision rev = revision_.load();
  for (size_t i = 0; i < group.size(); ++i) {
    Writer* w = group[i];
    Batch& batch = batches[i];
    batch.revision = rev + 1;
    {
      Exec e(stmts_.savepoint);
      Status st = e.Run();
      if (!st.ok()) return fail_all(st.WithContext("txn: savepoint"));
    }
    Status st = ApplyTxn(&batch, *w->txn, &w->result);
    if (st.ok()) {
      Exec e(stmts_.release);
      st = e.Run();
      if (!st.ok()) return fail_all(st.WithContext("txn: release savepoint"));
      if (!batch.events.empty()) rev = batch.revision;
      w->result.revision = rev;
      continue;
    }
    // This txn alone fails: undo its writes and go on with the rest of the group.
    w->status = st;
    w->result = {};
    batch.events.clear();
    if (sqlite3_get_autocommit(db_)) {
      // Some errors (I/O, disk full) roll back the whole transaction, earlier txns too.
      return fail_all(st);
    }
    Exec undo(stmts_.rollback_to);
    Status u = undo.Run();
    if (u.ok()) {
      Exec e(stmts_.release);
      u = e.Run();
    }
    if (!u.ok()) return fail_all(u.WithContext("txn: roll back to savepoint"));
  }
  if (rev != revision_.load()) {
    Status st = SetMeta("revision", rev);
    if (!st.ok()) return fail_all(st.WithContext("txn: set revision"));
  }
  {
    Status st = before_commit_for_test_ ? before_commit_for_test_() : Status::Ok();
    if (st.ok()) {
      Exec e(stmts_.commit);
      st = e.Run();
    }
    if (!st.ok()) return fail_all(st.WithContext("txn: commit"));
  }
  // Durable: now make it visible, in revision order.
  for (Batch& batch : batches) {
    if (batch.events.empty()) continue;
    revision_.store(batch.revision);
    hub_->Publish(batch.revision, std::move(batch.events));
  }
}

Result<LeaseId> SqliteStore::GrantLease(std::chrono::seconds ttl) {
  if (ttl.count() <= 0) return base::InvalidArgument("grant lease: ttl must be positive");
  std::lock_guard<std::mutex> lock(mu_);
  LeaseId id = next_lease_;
  int64_t deadline = ToEpochMs(clock_->Now()) + ttl.count() * 1000;
  Status st = WriteTxn([&](Batch*) -> Status {
    Exec e(stmts_.add_lease);
    e.Int(1, id).Int(2, ttl.count()).Int(3, deadline);
    RETURN_IF_ERROR(e.Run());
    return SetMeta("next_lease", id + 1);
  });
  if (!st.ok()) return st.WithContext("grant lease");
  next_lease_ = id + 1;
  return id;
}

Status SqliteStore::KeepAlive(LeaseId lease) {
  std::string what = "keep alive lease " + std::to_string(lease);
  std::lock_guard<std::mutex> lock(mu_);
  int64_t ttl = 0;
  int64_t deadline = 0;
  {
    Exec e(stmts_.get_lease);
    e.Int(1, lease);
    Result<bool> row = e.Step();
    if (!row.ok()) return row.status().WithContext(what);
    if (!*row) return base::NotFound(what + ": not found");
    ttl = e.ColInt(0);
    deadline = e.ColInt(1);
  }
  int64_t now = ToEpochMs(clock_->Now());
  if (deadline <= now) {
    // Expired but not swept yet: finish the job now, so the caller never sees its keys.
    Status st = WriteTxn([&](Batch* batch) { return RevokeLocked(batch, lease); });
    if (!st.ok()) return st.WithContext(what);
    return base::NotFound(what + ": expired");
  }
  Exec e(stmts_.set_lease_deadline);
  e.Int(1, lease).Int(2, now + ttl * 1000);
  Status st = e.Run();
  return st.ok() ? st : st.WithContext(what);
}

Status SqliteStore::RevokeLocked(Batch* batch, LeaseId lease) {
  std::vector<std::string> keys;
  {
    Exec e(stmts_.kv_by_lease);
    e.Int(1, lease);
    for (;;) {
      ASSIGN_OR_RETURN(bool row, e.Step());
      if (!row) break;
      keys.push_back(e.ColBytes(0));
    }
  }
  for (const std::string& key : keys) {
    OpResult ignored;
    RETURN_IF_ERROR(ApplyDelete(batch, KeyRange::Exact(key), &ignored));
  }
  Exec e(stmts_.del_lease);
  e.Int(1, lease);
  return e.Run();
}

Status SqliteStore::RevokeLease(LeaseId lease) {
  std::string what = "revoke lease " + std::to_string(lease);
  std::lock_guard<std::mutex> lock(mu_);
  Status st = WriteTxn([&](Batch* batch) -> Status {
    {
      Exec e(stmts_.get_lease);
      e.Int(1, lease);
      ASSIGN_OR_RETURN(bool row, e.Step());
      if (!row) return base::NotFound("not found");
    }
    return RevokeLocked(batch, lease);
  });
  return st.ok() ? st : st.WithContext(what);
}

Status SqliteStore::Compact(Revision revision) {
  std::string what = "compact to revision " + std::to_string(revision);
  std::lock_guard<std::mutex> lock(mu_);
  if (revision > revision_.load()) {
    return base::InvalidArgument(what + ": beyond the current revision " +
                                 std::to_string(revision_.load()));
  }
  if (revision <= compact_revision_) return Status::Ok();  // already done
  // Rows a running watch still needs stay until a later compaction; the watch cannot
  // lose events, and new watches are refused below `revision` all the same.
  Revision drop_below = std::min(revision, hub_->MinCursor());
  Status st = WriteTxn([&](Batch*) -> Status {
    Exec e(stmts_.compact_history);
    e.Int(1, drop_below);
    RETURN_IF_ERROR(e.Run());
    return SetMeta("compact_revision", revision);
  });
  if (!st.ok()) return st.WithContext(what);
  compact_revision_ = revision;
  return Status::Ok();
}

Status SqliteStore::ReadHistory(Revision from, Revision to, std::vector<RevisionEvents>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  Exec e(stmts_.read_history);
  e.Int(1, from).Int(2, to);
  for (;;) {
    ASSIGN_OR_RETURN(bool row, e.Step());
    if (!row) break;
    Revision rev = e.ColInt(0);
    if (out->empty() || out->back().revision != rev) out->push_back({rev, {}});
    Event ev;
    ev.type = e.ColInt(1) == kEventPut ? Event::Type::kPut : Event::Type::kDelete;
    ev.kv.key = e.ColBytes(2);
    ev.kv.value = e.ColBytes(3);
    ev.kv.create_revision = e.ColInt(4);
    ev.kv.mod_revision = rev;
    ev.kv.version = e.ColInt(5);
    ev.kv.lease = e.ColInt(6);
    out->back().events.push_back(std::move(ev));
  }
  return Status::Ok();
}

Status SqliteStore::SweepExpired() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<LeaseId> expired;
  {
    Exec e(stmts_.expired_leases);
    e.Int(1, ToEpochMs(clock_->Now()));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, e.Step());
      if (!row) break;
      expired.push_back(e.ColInt(0));
    }
  }
  // One revision per lease, as etcd does.
  for (LeaseId id : expired) {
    Status st = WriteTxn([&](Batch* batch) { return RevokeLocked(batch, id); });
    if (!st.ok()) return st.WithContext("expire lease " + std::to_string(id));
  }
  return Status::Ok();
}

void SqliteStore::SweepLoop() {
  std::unique_lock<std::mutex> lock(sweep_mu_);
  while (!stopping_) {
    sweep_cv_.wait_for(lock, sweep_interval_);
    if (stopping_) break;
    lock.unlock();
    Status st = SweepExpired();
    if (!st.ok()) spdlog::warn("store {}: lease sweep: {}", path_, st.ToString());
    lock.lock();
  }
}

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options) {
  if (options.path.empty()) return base::InvalidArgument("open store: empty path");
  if (options.lease_sweep_interval.count() <= 0) {
    return base::InvalidArgument("open store " + options.path + ": lease sweep interval <= 0");
  }
  auto s = std::make_unique<SqliteStore>(options);
  RETURN_IF_ERROR(s->Open());
  return std::unique_ptr<Store>(std::move(s));
}

}  // namespace store
