// Test fixture shared by the IAM and STS tests: a real SQLite store in a temporary
// directory, IAM over it with a manual clock, and helpers to drive a Query service the way
// the edge does (form POST + Call).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "aws/service.h"
#include "aws/xml.h"
#include "base/strings.h"
#include "base/time.h"
#include "services/iam/access.h"
#include "services/iam/iam.h"
#include "store/store.h"

namespace iam::testing {

inline constexpr const char* kAccount = "123456789012";

class IamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/iam_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    store::SqliteOptions so;
    so.path = dir_ + "/store.db";
    so.clock = &clock_;
    so.lease_sweep_interval = std::chrono::milliseconds(20);
    auto st = store::OpenSqliteStore(so);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store_ = std::move(st).value();
    Options io;
    io.account_id = kAccount;
    io.clock = &clock_;
    auto opened = OpenIam(store_.get(), io);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    iam_ = std::move(opened).value();
    service_ = MakeIamService(*iam_);
  }

  void TearDown() override {
    service_.reset();
    iam_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  static auth::Principal Root() {
    auth::Principal p;
    p.type = auth::PrincipalType::kRoot;
    p.account_id = kAccount;
    p.arn = std::string("arn:aws:iam::") + kAccount + ":root";
    p.user_id = kAccount;
    return p;
  }

  // A Call as the edge builds it, for `principal` (authorized by IAM's own authorizer).
  aws::Call MakeCall(const auth::Principal& principal, std::string access_key_id = "") {
    aws::Call call;
    call.request_id = "req-1";
    call.principal = principal;
    call.access_key_id = std::move(access_key_id);
    call.account_id = kAccount;
    call.region = "us-east-1";
    call.remote_ip = "127.0.0.1";
    call.now = clock_.Now();
    call.authorizer = &Authorizer(*iam_);
    return call;
  }

  // POSTs `form` ("Action=CreateUser&UserName=bob", values already URL-encoded) to `svc`.
  http::Response Post(aws::Service& svc, const std::string& form, aws::Call call) {
    http::Request r;
    r.method = "POST";
    r.path = "/";
    r.headers.push_back({"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"});
    r.body = form;
    http::Response out;
    out.status = -1;
    svc.Handle(call, std::move(r), [&](http::Response resp) { out = std::move(resp); });
    return out;
  }
  http::Response CallIam(const std::string& form) {
    return Post(*service_, form, MakeCall(Root()));
  }

  static std::string Enc(std::string_view s) { return base::UriEncode(s); }

  // The text of the first <tag>…</tag> in `xml` ("" if absent).
  static std::string Tag(const std::string& xml, const std::string& tag) {
    size_t b = xml.find("<" + tag + ">");
    if (b == std::string::npos) return "";
    b += tag.size() + 2;
    size_t e = xml.find("</" + tag + ">", b);
    return e == std::string::npos ? "" : xml.substr(b, e - b);
  }

  base::ManualClock clock_{base::ParseIso8601("2026-11-23T20:00:00Z").value()};
  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<iam::Iam> iam_;
  std::unique_ptr<aws::Service> service_;
};

// Asserts an AWS Query error response.
#define EXPECT_AWS_ERROR(resp, http_status, code, message)                                      \
  do {                                                                                          \
    EXPECT_EQ((resp).status, http_status) << (resp).body;                                       \
    EXPECT_EQ(::iam::testing::IamTest::Tag((resp).body, "Code"), code) << (resp).body;          \
    EXPECT_EQ(::iam::testing::IamTest::Tag((resp).body, "Message"), ::aws::XmlEscape(message)); \
  } while (0)

}  // namespace iam::testing
