// A store::Store decorator that counts operations into Metrics.
#pragma once

#include <memory>

#include "server/metrics.h"
#include "store/store.h"

namespace server {

class MeteredStore : public store::Store {
 public:
  MeteredStore(std::unique_ptr<store::Store> inner, Metrics* metrics)
      : inner_(std::move(inner)), metrics_(metrics) {}

  store::Revision CurrentRevision() override { return inner_->CurrentRevision(); }
  base::Result<std::optional<store::KeyValue>> Get(const std::string& key) override {
    metrics_->StoreOp("get");
    return inner_->Get(key);
  }
  base::Result<store::RangeResult> Range(const store::KeyRange& range,
                                         const store::RangeOptions& opts) override {
    metrics_->StoreOp("range");
    return inner_->Range(range, opts);
  }
  base::Result<store::TxnResult> Commit(const store::Txn& txn) override {
    metrics_->StoreOp("txn");
    return inner_->Commit(txn);
  }
  base::Result<std::unique_ptr<store::Watch>> WatchPrefix(const std::string& prefix,
                                                          store::Revision from,
                                                          store::WatchCallback cb) override {
    metrics_->StoreOp("watch");
    return inner_->WatchPrefix(prefix, from, std::move(cb));
  }
  base::Result<store::LeaseId> GrantLease(std::chrono::seconds ttl) override {
    metrics_->StoreOp("lease_grant");
    return inner_->GrantLease(ttl);
  }
  base::Status KeepAlive(store::LeaseId lease) override {
    metrics_->StoreOp("lease_keepalive");
    return inner_->KeepAlive(lease);
  }
  base::Status RevokeLease(store::LeaseId lease) override {
    metrics_->StoreOp("lease_revoke");
    return inner_->RevokeLease(lease);
  }
  base::Status Compact(store::Revision revision) override {
    metrics_->StoreOp("compact");
    return inner_->Compact(revision);
  }

 private:
  std::unique_ptr<store::Store> inner_;
  Metrics* metrics_;
};

}  // namespace server
