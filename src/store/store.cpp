#include "store/store.h"

#include <utility>

namespace store {

base::Result<Revision> Store::Put(const std::string& key, const std::string& value, LeaseId lease) {
  Txn txn;
  txn.success.push_back(Op::Put(key, value, lease));
  ASSIGN_OR_RETURN(TxnResult r, Commit(txn));
  return r.revision;
}

base::Result<int64_t> Store::Delete(const KeyRange& range) {
  Txn txn;
  txn.success.push_back(Op::Delete(range));
  ASSIGN_OR_RETURN(TxnResult r, Commit(txn));
  return r.results.empty() ? 0 : r.results[0].deleted;
}

}  // namespace store
