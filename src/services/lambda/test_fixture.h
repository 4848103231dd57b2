// Test fixture for the Lambda tests: a real SQLite store and blob store in a temporary
// directory, Lambda over them with a manual clock.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "base/time.h"
#include "services/lambda/lambda.h"
#include "services/lambda/test_zip.h"
#include "store/blob_store.h"
#include "store/store.h"

namespace lambda::testing {

inline constexpr const char* kRole = "arn:aws:iam::000000000000:role/lambda-role";

class LambdaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lambda_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    store::SqliteOptions so;
    so.path = dir_ + "/store.db";
    so.clock = &clock_;
    auto st = store::OpenSqliteStore(so);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store_ = std::move(st).value();
    auto bs = store::OpenBlobStore(dir_ + "/blobs", store_.get());
    ASSERT_TRUE(bs.ok()) << bs.status().ToString();
    blobs_ = std::move(bs).value();
    options_.clock = &clock_;
    options_.max_unzipped_bytes = 1 << 20;  // keep zip bombs small in tests
    auto l = OpenLambda(store_.get(), blobs_.get(), options_);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    lambda_ = std::move(l).value();
  }
  void TearDown() override {
    lambda_.reset();
    blobs_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  CreateFunctionRequest Request(const std::string& name, std::string zip = HandlerZip()) {
    CreateFunctionRequest r;
    r.name = name;
    r.settings.runtime = "python3.12";
    r.settings.role = kRole;
    r.settings.handler = "index.handler";
    r.zip = std::move(zip);
    return r;
  }

  base::ManualClock clock_{base::SystemTime(std::chrono::seconds(1795464000))};
  std::string dir_;
  Options options_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::BlobStore> blobs_;
  std::unique_ptr<Lambda> lambda_;
};

}  // namespace lambda::testing
