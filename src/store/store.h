// store::Store — the state of Stratus, with etcd's semantics (DESIGN §3).
//
// A flat, ordered key space of byte strings. Every successful write bumps one global
// revision; each key remembers the revision that created it, the one that last changed
// it, and how many times it changed. Reads are linearizable. Writes are acknowledged
// only once durable (the SQLite backend fsyncs before Txn returns). Watches deliver
// every change under a prefix, in revision order, starting from any revision still
// in history. Leases expire keys attached to them after a TTL unless kept alive.
//
// Two backends implement this interface so that they are interchangeable: SQLite for
// one machine (OpenSqliteStore), etcd v3 for clusters (later).
//
// Threading: every method is safe to call from any thread. Watch callbacks run on a
// store-owned thread, one at a time per watch, in revision order; a callback must not
// block for long. It may call the store, and may destroy its own (or another) Watch
// handle: from inside a callback the destructor does not wait. From any other thread the
// destructor waits for a running callback of that watch to return, so do not hold a lock
// there that the callback takes. Never destroy the Store from inside a callback.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/time.h"

namespace store {

using Revision = int64_t;
using LeaseId = int64_t;  // 0 = no lease

struct KeyValue {
  std::string key;
  std::string value;
  Revision create_revision = 0;
  Revision mod_revision = 0;
  int64_t version = 0;  // 1 on create, +1 per change
  LeaseId lease = 0;
};

// Which keys a read or delete covers: exactly `key`, or every key with prefix `key`.
struct KeyRange {
  std::string key;
  bool prefix = false;
  static KeyRange Exact(std::string k) { return {std::move(k), false}; }
  static KeyRange Prefix(std::string p) { return {std::move(p), true}; }
};

struct RangeOptions {
  int64_t limit = 0;       // 0 = no limit
  bool keys_only = false;  // values left empty
  bool count_only = false;
  std::string start_after;  // for paging: only keys > start_after
};

struct RangeResult {
  std::vector<KeyValue> kvs;  // in key order
  int64_t count = 0;          // how many keys match in total (ignores limit, honours start_after)
  bool more = false;          // limit cut the result
  Revision revision = 0;      // store revision the read saw
};

// A comparison on one key, evaluated atomically at the start of a Txn.
// A key that does not exist has create/mod revision 0, version 0 and an empty value.
struct Compare {
  enum class Target { kVersion, kCreateRevision, kModRevision, kValue };
  enum class Op { kEqual, kNotEqual, kLess, kGreater };
  std::string key;
  Target target = Target::kModRevision;
  Op op = Op::kEqual;
  int64_t number = 0;  // for kVersion / kCreateRevision / kModRevision
  std::string value;   // for kValue

  // Helpers for the common cases.
  static Compare KeyMissing(std::string k) {
    return {std::move(k), Target::kVersion, Op::kEqual, 0, {}};
  }
  static Compare KeyExists(std::string k) {
    return {std::move(k), Target::kVersion, Op::kGreater, 0, {}};
  }
  static Compare ModRevisionIs(std::string k, Revision r) {
    return {std::move(k), Target::kModRevision, Op::kEqual, r, {}};
  }
  static Compare ValueIs(std::string k, std::string v) {
    return {std::move(k), Target::kValue, Op::kEqual, 0, std::move(v)};
  }
};

struct Op {
  enum class Type { kPut, kDelete, kGet };
  Type type = Type::kPut;
  KeyRange range;  // kPut uses range.key only
  std::string value;
  LeaseId lease = 0;

  static Op Put(std::string k, std::string v, LeaseId lease = 0) {
    return {Type::kPut, KeyRange::Exact(std::move(k)), std::move(v), lease};
  }
  static Op Delete(KeyRange r) { return {Type::kDelete, std::move(r), {}, 0}; }
  static Op Get(KeyRange r) { return {Type::kGet, std::move(r), {}, 0}; }
};

// If every compare holds, apply `success`, else apply `failure`; atomically, as one revision
// (a txn that changes nothing does not bump the revision). Ops apply in order and each sees
// the ones before it (a key may appear twice). If any op fails (e.g. a put with an unknown
// lease: NotFound) nothing is applied.
struct Txn {
  std::vector<Compare> compares;
  std::vector<Op> success;
  std::vector<Op> failure;
};

struct OpResult {
  std::vector<KeyValue> kvs;  // kGet: the keys read; kDelete: the keys deleted (prev values)
  int64_t deleted = 0;
};

struct TxnResult {
  bool succeeded = false;
  Revision revision = 0;          // store revision after the txn
  std::vector<OpResult> results;  // one per op of the branch taken
};

struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for kDelete: key and mod_revision (the deleting revision) only
};

class Watch {
 public:
  virtual ~Watch() = default;  // stops delivery; after it returns no callback is running
};

// Called with a batch of events (all of one or more revisions, in order). Returning is the ack.
using WatchCallback = std::function<void(const std::vector<Event>&)>;

class Store {
 public:
  virtual ~Store() = default;

  // Current revision (0 for an empty, never-written store).
  virtual Revision CurrentRevision() = 0;

  virtual base::Result<std::optional<KeyValue>> Get(const std::string& key) = 0;
  virtual base::Result<RangeResult> Range(const KeyRange& range, const RangeOptions& opts = {}) = 0;
  virtual base::Result<TxnResult> Commit(const Txn& txn) = 0;

  // Conveniences over Commit. Put returns the new revision; Delete the number deleted.
  virtual base::Result<Revision> Put(const std::string& key, const std::string& value,
                                     LeaseId lease = 0);
  virtual base::Result<int64_t> Delete(const KeyRange& range);

  // Delivers every change under `prefix` with revision >= from_revision (0 = from now on),
  // then live changes. FailedPrecondition when from_revision was compacted away.
  virtual base::Result<std::unique_ptr<Watch>> WatchPrefix(const std::string& prefix,
                                                           Revision from_revision,
                                                           WatchCallback callback) = 0;

  // Leases: keys put with a lease are deleted (as a normal revision, seen by watches) when
  // the lease expires or is revoked.
  virtual base::Result<LeaseId> GrantLease(std::chrono::seconds ttl) = 0;
  // Resets the lease's deadline to now + ttl. NotFound if it already expired.
  virtual base::Status KeepAlive(LeaseId lease) = 0;
  virtual base::Status RevokeLease(LeaseId lease) = 0;

  // Drops history before `revision` (watches can no longer start earlier). InvalidArgument
  // beyond the current revision; a revision at or below an earlier compaction is a no-op.
  virtual base::Status Compact(Revision revision) = 0;
};

struct SqliteOptions {
  std::string path;              // database file; created with its directory if missing
  base::Clock* clock = nullptr;  // nullptr = base::SystemClock()
  // How often expired leases are swept. Tests may set it low.
  std::chrono::milliseconds lease_sweep_interval{500};
  // Tests only: called (holding the store's lock) just before a group of Commit txns is
  // committed; an error fails the group exactly as a failed SQLite COMMIT would.
  std::function<base::Status()> before_commit_for_test;
};

// Opens (creating if needed) the embedded store. WAL mode, synchronous=FULL.
base::Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options);

}  // namespace store
