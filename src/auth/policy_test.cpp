#include "auth/policy.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

namespace auth {
namespace {

using Ctx = std::map<std::string, std::vector<std::string>>;

constexpr Decision kAllow = Decision::kAllow;
constexpr Decision kDeny = Decision::kExplicitDeny;
constexpr Decision kNone = Decision::kImplicitDeny;

std::string Name(Decision d) {
  switch (d) {
    case Decision::kAllow:
      return "Allow";
    case Decision::kExplicitDeny:
      return "ExplicitDeny";
    case Decision::kImplicitDeny:
      return "ImplicitDeny";
  }
  return "?";
}

// A one-statement identity policy document.
std::string Doc(const std::string& statement, const std::string& version = "2012-10-17") {
  return R"({"Version": ")" + version + R"(", "Statement": [)" + statement + "]}";
}

struct Case {
  std::string name;
  std::vector<std::string> policies;
  std::string action;
  std::string resource;
  Ctx context;
  Decision want;
};

void RunIdentityCases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<Policy> parsed;
    for (const std::string& text : c.policies) {
      auto p = ParsePolicy(text, PolicyKind::kIdentity);
      ASSERT_TRUE(p.ok()) << p.status().ToString() << "\n" << text;
      parsed.push_back(*p);
    }
    std::vector<const Policy*> ptrs;
    for (const Policy& p : parsed) ptrs.push_back(&p);
    AuthzRequest req{c.action, c.resource, c.context, nullptr};
    EXPECT_EQ(Name(Evaluate(ptrs, req)), Name(c.want));
  }
}

// ---------------------------------------------------------------------------------------------
// Actions, resources, effects.

TEST(PolicyEvaluate, ActionsResourcesAndEffects) {
  const std::string allow_create =
      Doc(R"({"Effect": "Allow", "Action": "iam:CreateUser", "Resource": "*"})");
  const std::string allow_all = Doc(R"({"Effect": "Allow", "Action": "*", "Resource": "*"})");
  const std::string deny_delete =
      Doc(R"({"Effect": "Deny", "Action": "iam:DeleteUser", "Resource": "arn:aws:iam::*:user/*"})");
  const std::string user_bob = "arn:aws:iam::000000000000:user/bob";
  RunIdentityCases({
      {"exact action", {allow_create}, "iam:CreateUser", user_bob, {}, kAllow},
      {"action is case-insensitive", {allow_create}, "IAM:createuser", user_bob, {}, kAllow},
      {"other action", {allow_create}, "iam:DeleteUser", user_bob, {}, kNone},
      {"no policies", {}, "iam:CreateUser", user_bob, {}, kNone},
      {"trailing wildcard",
       {Doc(R"({"Effect": "Allow", "Action": "iam:Get*", "Resource": "*"})")},
       "iam:GetUserPolicy",
       user_bob,
       {},
       kAllow},
      {"trailing wildcard, other verb",
       {Doc(R"({"Effect": "Allow", "Action": "iam:Get*", "Resource": "*"})")},
       "iam:ListUsers",
       user_bob,
       {},
       kNone},
      {"single-character wildcard",
       {Doc(R"({"Effect": "Allow", "Action": "iam:?etUser", "Resource": "*"})")},
       "iam:GetUser",
       user_bob,
       {},
       kAllow},
      {"wildcard service",
       {Doc(R"({"Effect": "Allow", "Action": "*:List*", "Resource": "*"})")},
       "s3:ListBuckets",
       "*",
       {},
       kAllow},
      {"action list",
       {Doc(R"({"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "*"})")},
       "s3:PutObject",
       "arn:aws:s3:::b/k",
       {},
       kAllow},
      {"deny beats allow across policies",
       {allow_all, deny_delete},
       "iam:DeleteUser",
       user_bob,
       {},
       kDeny},
      {"deny beats allow, order does not matter",
       {deny_delete, allow_all},
       "iam:DeleteUser",
       user_bob,
       {},
       kDeny},
      {"deny that does not match leaves allow",
       {allow_all, deny_delete},
       "iam:CreateUser",
       user_bob,
       {},
       kAllow},
      {"deny on another resource",
       {allow_all, deny_delete},
       "iam:DeleteUser",
       "arn:aws:iam::000000000000:role/r",
       {},
       kAllow},
      {"deny alone is still a deny", {deny_delete}, "iam:DeleteUser", user_bob, {}, kDeny},
      {"statements in one policy",
       {R"({"Version": "2012-10-17", "Statement": [
            {"Sid": "All", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Sid": "NoDelete", "Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}]})"},
       "s3:DeleteBucket",
       "arn:aws:s3:::b",
       {},
       kDeny},
      {"statement as an object",
       {R"({"Version": "2012-10-17", "Statement":
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:*:*:q"}})"},
       "sqs:SendMessage",
       "arn:aws:sqs:us-east-1:000000000000:q",
       {},
       kAllow},
      {"NotAction allows everything else",
       {Doc(R"({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})")},
       "s3:GetObject",
       "arn:aws:s3:::b/k",
       {},
       kAllow},
      {"NotAction excludes the listed actions",
       {Doc(R"({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})")},
       "iam:GetUser",
       user_bob,
       {},
       kNone},
      {"Deny with NotAction: everything but the exception is denied",
       {allow_all, Doc(R"({"Effect": "Deny", "NotAction": ["iam:ChangePassword", "iam:GetUser"],
                "Resource": "*"})")},
       "s3:GetObject",
       "arn:aws:s3:::b/k",
       {},
       kDeny},
      {"Deny with NotAction: the exception stays allowed",
       {allow_all, Doc(R"({"Effect": "Deny", "NotAction": ["iam:ChangePassword", "iam:GetUser"],
                "Resource": "*"})")},
       "iam:ChangePassword",
       user_bob,
       {},
       kAllow},
      {"resource wildcard",
       {Doc(R"({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pub/*"})")},
       "s3:GetObject",
       "arn:aws:s3:::pub/a/b.txt",
       {},
       kAllow},
      {"resource is case-sensitive",
       {Doc(R"({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::Pub/*"})")},
       "s3:GetObject",
       "arn:aws:s3:::pub/a",
       {},
       kNone},
      {"resource ? wildcard",
       {Doc(
           R"({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/?.txt"})")},
       "s3:GetObject",
       "arn:aws:s3:::b/ab.txt",
       {},
       kNone},
      {"resource list",
       {Doc(R"({"Effect": "Allow", "Action": "s3:*",
                "Resource": ["arn:aws:s3:::x", "arn:aws:s3:::y/*"]})")},
       "s3:PutObject",
       "arn:aws:s3:::y/k",
       {},
       kAllow},
      {"NotResource allows the rest",
       {Doc(R"({"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"})")},
       "s3:GetObject",
       "arn:aws:s3:::public/k",
       {},
       kAllow},
      {"NotResource excludes",
       {Doc(R"({"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"})")},
       "s3:GetObject",
       "arn:aws:s3:::secret/k",
       {},
       kNone},
      {"Deny with NotResource",
       {allow_all, Doc(R"({"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::mine",
                "arn:aws:s3:::mine/*"]})")},
       "s3:GetObject",
       "arn:aws:s3:::theirs/k",
       {},
       kDeny},
      {"specific resource does not match *",
       {Doc(
           R"({"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "arn:aws:iam::*:user/*"})")},
       "iam:ListUsers",
       "*",
       {},
       kNone},
  });
}

// ---------------------------------------------------------------------------------------------
// Policy variables.

TEST(PolicyEvaluate, PolicyVariables) {
  const std::string own_user = Doc(
      R"({"Effect": "Allow", "Action": "iam:*AccessKey*", "Resource": "arn:aws:iam::*:user/${aws:username}"})");
  const std::string own_prefix = Doc(
      R"({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::home",
          "Condition": {"StringLike": {"s3:prefix": ["home/${aws:username}/*", "shared/*"]}}})");
  const Ctx alice = {{"aws:username", {"alice"}}};
  RunIdentityCases({
      {"substituted",
       {own_user},
       "iam:CreateAccessKey",
       "arn:aws:iam::1:user/alice",
       alice,
       kAllow},
      {"someone else", {own_user}, "iam:CreateAccessKey", "arn:aws:iam::1:user/bob", alice, kNone},
      {"variable without value matches nothing",
       {own_user},
       "iam:CreateAccessKey",
       "arn:aws:iam::1:user/alice",
       {},
       kNone},
      {"default value",
       {Doc(R"({"Effect": "Allow", "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::b/${aws:username, 'guest'}/*"})")},
       "s3:GetObject",
       "arn:aws:s3:::b/guest/x",
       {},
       kAllow},
      {"a value's '*' is literal, not a wildcard",
       {own_user},
       "iam:CreateAccessKey",
       "arn:aws:iam::1:user/bob",
       {{"aws:username", {"*"}}},
       kNone},
      {"${*} is a literal star",
       {Doc(R"({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${*}"})")},
       "s3:GetObject",
       "arn:aws:s3:::b/*",
       {},
       kAllow},
      {"${*} does not match other text",
       {Doc(R"({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${*}"})")},
       "s3:GetObject",
       "arn:aws:s3:::b/x",
       {},
       kNone},
      {"${$} and ${?}",
       {Doc(
           R"({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${$}${?}"})")},
       "s3:GetObject",
       "arn:aws:s3:::b/$?",
       {},
       kAllow},
      {"version 2008: variables are plain text",
       {Doc(
           R"({"Effect": "Allow", "Action": "iam:GetUser", "Resource": "arn:aws:iam::1:user/${aws:username}"})",
           "2008-10-17")},
       "iam:GetUser",
       "arn:aws:iam::1:user/alice",
       alice,
       kNone},
      {"version 2008: the literal text matches",
       {Doc(
           R"({"Effect": "Allow", "Action": "iam:GetUser", "Resource": "arn:aws:iam::1:user/${aws:username}"})",
           "2008-10-17")},
       "iam:GetUser",
       "arn:aws:iam::1:user/${aws:username}",
       alice,
       kAllow},
      {"variable in a condition value",
       {own_prefix},
       "s3:ListBucket",
       "arn:aws:s3:::home",
       {{"aws:username", {"alice"}}, {"s3:prefix", {"home/alice/docs"}}},
       kAllow},
      {"variable in a condition value, other user's prefix",
       {own_prefix},
       "s3:ListBucket",
       "arn:aws:s3:::home",
       {{"aws:username", {"alice"}}, {"s3:prefix", {"home/bob/docs"}}},
       kNone},
      {"other literal value still matches without the variable",
       {own_prefix},
       "s3:ListBucket",
       "arn:aws:s3:::home",
       {{"s3:prefix", {"shared/x"}}},
       kAllow},
  });
}

// ---------------------------------------------------------------------------------------------
// Conditions: one case list per operator family.

std::string Cond(const std::string& condition, const std::string& effect = "Allow") {
  return Doc(R"({"Effect": ")" + effect + R"(", "Action": "*", "Resource": "*", "Condition": )" +
             condition + "}");
}

TEST(PolicyConditions, StringOperators) {
  const std::string eq = Cond(R"({"StringEquals": {"aws:username": ["alice", "carol"]}})");
  const std::string ne = Cond(R"({"StringNotEquals": {"aws:username": ["alice", "carol"]}})");
  RunIdentityCases({
      {"StringEquals match", {eq}, "s3:GetObject", "*", {{"aws:username", {"alice"}}}, kAllow},
      {"StringEquals second value",
       {eq},
       "s3:GetObject",
       "*",
       {{"aws:username", {"carol"}}},
       kAllow},
      {"StringEquals is case-sensitive",
       {eq},
       "s3:GetObject",
       "*",
       {{"aws:username", {"Alice"}}},
       kNone},
      {"StringEquals no match", {eq}, "s3:GetObject", "*", {{"aws:username", {"bob"}}}, kNone},
      {"StringEquals missing key", {eq}, "s3:GetObject", "*", {}, kNone},
      {"StringNotEquals other", {ne}, "s3:GetObject", "*", {{"aws:username", {"bob"}}}, kAllow},
      {"StringNotEquals listed", {ne}, "s3:GetObject", "*", {{"aws:username", {"carol"}}}, kNone},
      {"StringNotEquals missing key holds", {ne}, "s3:GetObject", "*", {}, kAllow},
      {"StringEqualsIgnoreCase",
       {Cond(R"({"StringEqualsIgnoreCase": {"aws:username": "ALICE"}})")},
       "s3:GetObject",
       "*",
       {{"aws:username", {"alice"}}},
       kAllow},
      {"StringNotEqualsIgnoreCase",
       {Cond(R"({"StringNotEqualsIgnoreCase": {"aws:username": "ALICE"}})")},
       "s3:GetObject",
       "*",
       {{"aws:username", {"alice"}}},
       kNone},
      {"StringLike",
       {Cond(R"({"StringLike": {"s3:prefix": "logs/20??/*"}})")},
       "s3:ListBucket",
       "*",
       {{"s3:prefix", {"logs/2024/jan"}}},
       kAllow},
      {"StringLike no match",
       {Cond(R"({"StringLike": {"s3:prefix": "logs/20??/*"}})")},
       "s3:ListBucket",
       "*",
       {{"s3:prefix", {"logs/1999/jan"}}},
       kNone},
      {"StringNotLike",
       {Cond(R"({"StringNotLike": {"s3:prefix": ["secret/*", "private*"]}})")},
       "s3:ListBucket",
       "*",
       {{"s3:prefix", {"public/x"}}},
       kAllow},
      {"StringNotLike listed",
       {Cond(R"({"StringNotLike": {"s3:prefix": ["secret/*", "private*"]}})")},
       "s3:ListBucket",
       "*",
       {{"s3:prefix", {"private-stuff"}}},
       kNone},
      {"condition key names are case-insensitive",
       {Cond(R"({"StringEquals": {"AWS:UserName": "alice"}})")},
       "s3:GetObject",
       "*",
       {{"aws:username", {"alice"}}},
       kAllow},
      {"keys in one operator are AND-ed",
       {Cond(R"({"StringEquals": {"aws:username": "alice", "aws:requestedregion": "us-east-1"}})")},
       "s3:GetObject",
       "*",
       {{"aws:username", {"alice"}}, {"aws:requestedregion", {"us-east-1"}}},
       kAllow},
      {"keys in one operator are AND-ed, one fails",
       {Cond(R"({"StringEquals": {"aws:username": "alice", "aws:requestedregion": "us-east-1"}})")},
       "s3:GetObject",
       "*",
       {{"aws:username", {"alice"}}, {"aws:requestedregion", {"eu-west-1"}}},
       kNone},
      {"operators are AND-ed",
       {Cond(
           R"({"StringEquals": {"aws:username": "alice"}, "StringLike": {"aws:userid": "AIDA*"}})")},
       "s3:GetObject",
       "*",
       {{"aws:username", {"alice"}}, {"aws:userid", {"ROOT"}}},
       kNone},
      {"deny unless region (negated, missing key denies)",
       {Doc(R"({"Effect": "Allow", "Action": "*", "Resource": "*"})"),
        Cond(R"({"StringNotEquals": {"aws:requestedregion": ["us-east-1", "us-west-2"]}})",
             "Deny")},
       "ec2:RunInstances",
       "*",
       {},
       kDeny},
      {"deny unless region, allowed region",
       {Doc(R"({"Effect": "Allow", "Action": "*", "Resource": "*"})"),
        Cond(R"({"StringNotEquals": {"aws:requestedregion": ["us-east-1", "us-west-2"]}})",
             "Deny")},
       "ec2:RunInstances",
       "*",
       {{"aws:requestedregion", {"us-west-2"}}},
       kAllow},
  });
}

TEST(PolicyConditions, NumericOperators) {
  auto num = [](const std::string& op, const std::string& value) {
    return Cond(R"({")" + op + R"(": {"s3:max-keys": )" + value + "}}");
  };
  const Ctx five = {{"s3:max-keys", {"5"}}}, ten = {{"s3:max-keys", {"10"}}},
            junk = {{"s3:max-keys", {"ten"}}};
  RunIdentityCases({
      {"LessThan", {num("NumericLessThan", "10")}, "s3:ListBucket", "*", five, kAllow},
      {"LessThan equal", {num("NumericLessThan", "10")}, "s3:ListBucket", "*", ten, kNone},
      {"LessThanEquals",
       {num("NumericLessThanEquals", "\"10\"")},
       "s3:ListBucket",
       "*",
       ten,
       kAllow},
      {"GreaterThan", {num("NumericGreaterThan", "7")}, "s3:ListBucket", "*", ten, kAllow},
      {"GreaterThan fails", {num("NumericGreaterThan", "7")}, "s3:ListBucket", "*", five, kNone},
      {"GreaterThanEquals",
       {num("NumericGreaterThanEquals", "5")},
       "s3:ListBucket",
       "*",
       five,
       kAllow},
      {"Equals across forms",
       {num("NumericEquals", "\"10.0\"")},
       "s3:ListBucket",
       "*",
       ten,
       kAllow},
      {"Equals list", {num("NumericEquals", "[1, 5]")}, "s3:ListBucket", "*", five, kAllow},
      {"NotEquals", {num("NumericNotEquals", "5")}, "s3:ListBucket", "*", ten, kAllow},
      {"NotEquals equal", {num("NumericNotEquals", "5")}, "s3:ListBucket", "*", five, kNone},
      {"decimal",
       {num("NumericLessThan", "1.5")},
       "s3:ListBucket",
       "*",
       {{"s3:max-keys", {"1.25"}}},
       kAllow},
      {"non-numeric context value",
       {num("NumericLessThan", "10")},
       "s3:ListBucket",
       "*",
       junk,
       kNone},
      {"non-numeric context value, negated",
       {num("NumericNotEquals", "10")},
       "s3:ListBucket",
       "*",
       junk,
       kNone},
      {"missing key", {num("NumericLessThan", "10")}, "s3:ListBucket", "*", {}, kNone},
  });
}

TEST(PolicyConditions, DateOperators) {
  auto date = [](const std::string& op, const std::string& key, const std::string& value) {
    return Cond(R"({")" + op + R"(": {")" + key + R"(": ")" + value + R"("}})");
  };
  const Ctx now = {{"aws:currenttime", {"2024-05-01T12:00:00Z"}},
                   {"aws:epochtime", {"1714564800"}}};  // the same instant
  RunIdentityCases({
      {"LessThan",
       {date("DateLessThan", "aws:currenttime", "2030-01-01T00:00:00Z")},
       "s3:GetObject",
       "*",
       now,
       kAllow},
      {"LessThan past",
       {date("DateLessThan", "aws:currenttime", "2020-01-01T00:00:00Z")},
       "s3:GetObject",
       "*",
       now,
       kNone},
      {"GreaterThan",
       {date("DateGreaterThan", "aws:currenttime", "2024-05-01T11:59:59Z")},
       "s3:GetObject",
       "*",
       now,
       kAllow},
      {"GreaterThanEquals same instant",
       {date("DateGreaterThanEquals", "aws:currenttime", "2024-05-01T12:00:00Z")},
       "s3:GetObject",
       "*",
       now,
       kAllow},
      {"LessThanEquals",
       {date("DateLessThanEquals", "aws:currenttime", "2024-05-01T12:00:00.000Z")},
       "s3:GetObject",
       "*",
       now,
       kAllow},
      {"Equals epoch vs ISO",
       {date("DateEquals", "aws:currenttime", "1714564800")},
       "s3:GetObject",
       "*",
       now,
       kAllow},
      {"Equals ISO vs epoch context",
       {date("DateEquals", "aws:epochtime", "2024-05-01T12:00:00Z")},
       "s3:GetObject",
       "*",
       now,
       kAllow},
      {"offset",
       {date("DateEquals", "aws:currenttime", "2024-05-01T14:00:00+02:00")},
       "s3:GetObject",
       "*",
       now,
       kAllow},
      {"date only",
       {date("DateGreaterThan", "aws:currenttime", "2024-05-01")},
       "s3:GetObject",
       "*",
       now,
       kAllow},
      {"NotEquals",
       {date("DateNotEquals", "aws:currenttime", "2024-05-02")},
       "s3:GetObject",
       "*",
       now,
       kAllow},
      {"NotEquals same",
       {date("DateNotEquals", "aws:epochtime", "1714564800")},
       "s3:GetObject",
       "*",
       now,
       kNone},
      {"far-future sentinel",
       {date("DateLessThan", "aws:currenttime", "9999-12-31T23:59:59Z")},
       "s3:GetObject",
       "*",
       now,
       kAllow},
      {"minutes only",
       {date("DateLessThan", "aws:currenttime", "2024-05-01T12:01Z")},
       "s3:GetObject",
       "*",
       now,
       kAllow},
      {"NaN is not a date",
       {date("DateNotEquals", "aws:epochtime", "nan")},
       "s3:GetObject",
       "*",
       now,
       kNone},
      {"invalid context date",
       {date("DateLessThan", "aws:currenttime", "2030-01-01")},
       "s3:GetObject",
       "*",
       {{"aws:currenttime", {"soon"}}},
       kNone},
  });
}

TEST(PolicyConditions, BoolNullAndIfExists) {
  const std::string allow_all = Doc(R"({"Effect": "Allow", "Action": "*", "Resource": "*"})");
  const std::string deny_insecure = Cond(R"({"Bool": {"aws:securetransport": "false"}})", "Deny");
  RunIdentityCases({
      {"Bool true",
       {Cond(R"({"Bool": {"aws:securetransport": "true"}})")},
       "s3:GetObject",
       "*",
       {{"aws:securetransport", {"true"}}},
       kAllow},
      {"Bool JSON literal",
       {Cond(R"({"Bool": {"aws:securetransport": true}})")},
       "s3:GetObject",
       "*",
       {{"aws:securetransport", {"TRUE"}}},
       kAllow},
      {"Bool false",
       {Cond(R"({"Bool": {"aws:securetransport": "true"}})")},
       "s3:GetObject",
       "*",
       {{"aws:securetransport", {"false"}}},
       kNone},
      {"deny insecure",
       {allow_all, deny_insecure},
       "s3:GetObject",
       "*",
       {{"aws:securetransport", {"false"}}},
       kDeny},
      {"deny insecure, secure",
       {allow_all, deny_insecure},
       "s3:GetObject",
       "*",
       {{"aws:securetransport", {"true"}}},
       kAllow},
      {"deny insecure, key missing: Bool does not match",
       {allow_all, deny_insecure},
       "s3:GetObject",
       "*",
       {},
       kAllow},
      {"Null true, key missing",
       {Cond(R"({"Null": {"aws:tokenissuetime": "true"}})")},
       "s3:GetObject",
       "*",
       {},
       kAllow},
      {"Null true, key present",
       {Cond(R"({"Null": {"aws:tokenissuetime": "true"}})")},
       "s3:GetObject",
       "*",
       {{"aws:tokenissuetime", {"x"}}},
       kNone},
      {"Null false, key present",
       {Cond(R"({"Null": {"aws:tokenissuetime": "false"}})")},
       "s3:GetObject",
       "*",
       {{"aws:tokenissuetime", {"x"}}},
       kAllow},
      {"Null false, key missing",
       {Cond(R"({"Null": {"aws:tokenissuetime": false}})")},
       "s3:GetObject",
       "*",
       {},
       kNone},
      {"IfExists, missing",
       {Cond(R"({"StringEqualsIfExists": {"ec2:instancetype": "t3.micro"}})")},
       "ec2:RunInstances",
       "*",
       {},
       kAllow},
      {"IfExists, matching",
       {Cond(R"({"StringEqualsIfExists": {"ec2:instancetype": "t3.micro"}})")},
       "ec2:RunInstances",
       "*",
       {{"ec2:instancetype", {"t3.micro"}}},
       kAllow},
      {"IfExists, other",
       {Cond(R"({"StringEqualsIfExists": {"ec2:instancetype": "t3.micro"}})")},
       "ec2:RunInstances",
       "*",
       {{"ec2:instancetype", {"m5.24xlarge"}}},
       kNone},
      {"NumericLessThanIfExists, missing",
       {Cond(R"({"NumericLessThanIfExists": {"s3:max-keys": 10}})")},
       "s3:ListBucket",
       "*",
       {},
       kAllow},
      {"BoolIfExists deny, missing",
       {allow_all, Cond(R"({"BoolIfExists": {"aws:multifactorauthpresent": "false"}})", "Deny")},
       "iam:DeleteUser",
       "*",
       {},
       kDeny},
      {"BoolIfExists deny, MFA present",
       {allow_all, Cond(R"({"BoolIfExists": {"aws:multifactorauthpresent": "false"}})", "Deny")},
       "iam:DeleteUser",
       "*",
       {{"aws:multifactorauthpresent", {"true"}}},
       kAllow},
  });
}

TEST(PolicyConditions, IpAddress) {
  const std::string ip =
      Cond(R"({"IpAddress": {"aws:sourceip": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]}})");
  const std::string not_ip = Cond(R"({"NotIpAddress": {"aws:sourceip": "10.0.0.0/8"}})");
  RunIdentityCases({
      {"v4 in CIDR", {ip}, "s3:GetObject", "*", {{"aws:sourceip", {"10.1.2.3"}}}, kAllow},
      {"v4 outside", {ip}, "s3:GetObject", "*", {{"aws:sourceip", {"11.1.2.3"}}}, kNone},
      {"bare address", {ip}, "s3:GetObject", "*", {{"aws:sourceip", {"192.0.2.7"}}}, kAllow},
      {"bare address, neighbour",
       {ip},
       "s3:GetObject",
       "*",
       {{"aws:sourceip", {"192.0.2.8"}}},
       kNone},
      {"v6 in CIDR", {ip}, "s3:GetObject", "*", {{"aws:sourceip", {"2001:db8:ffff::1"}}}, kAllow},
      {"v6 outside", {ip}, "s3:GetObject", "*", {{"aws:sourceip", {"2001:db9::1"}}}, kNone},
      {"v4-mapped v6", {ip}, "s3:GetObject", "*", {{"aws:sourceip", {"::ffff:10.9.9.9"}}}, kAllow},
      {"not an address", {ip}, "s3:GetObject", "*", {{"aws:sourceip", {"localhost"}}}, kNone},
      {"odd prefix",
       {Cond(R"({"IpAddress": {"aws:sourceip": "203.0.113.0/25"}})")},
       "s3:GetObject",
       "*",
       {{"aws:sourceip", {"203.0.113.127"}}},
       kAllow},
      {"odd prefix, outside",
       {Cond(R"({"IpAddress": {"aws:sourceip": "203.0.113.0/25"}})")},
       "s3:GetObject",
       "*",
       {{"aws:sourceip", {"203.0.113.128"}}},
       kNone},
      {"/0 matches all v4",
       {Cond(R"({"IpAddress": {"aws:sourceip": "0.0.0.0/0"}})")},
       "s3:GetObject",
       "*",
       {{"aws:sourceip", {"8.8.8.8"}}},
       kAllow},
      {"NotIpAddress outside",
       {not_ip},
       "s3:GetObject",
       "*",
       {{"aws:sourceip", {"8.8.8.8"}}},
       kAllow},
      {"NotIpAddress inside",
       {not_ip},
       "s3:GetObject",
       "*",
       {{"aws:sourceip", {"10.0.0.1"}}},
       kNone},
      {"NotIpAddress garbage",
       {not_ip},
       "s3:GetObject",
       "*",
       {{"aws:sourceip", {"garbage"}}},
       kNone},
  });
}

TEST(PolicyConditions, ArnOperators) {
  const std::string like =
      Cond(R"({"ArnLike": {"aws:principalarn": "arn:aws:iam::*:role/admin-*"}})");
  RunIdentityCases({
      {"ArnLike",
       {like},
       "s3:GetObject",
       "*",
       {{"aws:principalarn", {"arn:aws:iam::123456789012:role/admin-ops"}}},
       kAllow},
      {"ArnLike other role",
       {like},
       "s3:GetObject",
       "*",
       {{"aws:principalarn", {"arn:aws:iam::123456789012:role/dev"}}},
       kNone},
      {"ArnLike wildcard does not span ARN parts",
       {Cond(R"({"ArnLike": {"aws:sourcearn": "arn:aws:iam::*:role/x"}})")},
       "s3:GetObject",
       "*",
       {{"aws:sourcearn", {"arn:aws:iam::1:2:role/x"}}},
       kNone},
      {"ArnEquals exact",
       {Cond(R"({"ArnEquals": {"iam:policyarn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}})")},
       "iam:AttachUserPolicy",
       "*",
       {{"iam:policyarn", {"arn:aws:iam::aws:policy/ReadOnlyAccess"}}},
       kAllow},
      {"ArnEquals is case-sensitive",
       {Cond(R"({"ArnEquals": {"iam:policyarn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}})")},
       "iam:AttachUserPolicy",
       "*",
       {{"iam:policyarn", {"arn:aws:iam::aws:policy/readonlyaccess"}}},
       kNone},
      {"ArnNotEquals",
       {Cond(
           R"({"ArnNotEquals": {"iam:policyarn": "arn:aws:iam::aws:policy/AdministratorAccess"}})")},
       "iam:AttachUserPolicy",
       "*",
       {{"iam:policyarn", {"arn:aws:iam::aws:policy/ReadOnlyAccess"}}},
       kAllow},
      {"ArnNotLike",
       {Cond(R"({"ArnNotLike": {"aws:sourcearn": "arn:aws:sns:*:*:internal-*"}})")},
       "sqs:SendMessage",
       "*",
       {{"aws:sourcearn", {"arn:aws:sns:us-east-1:1:internal-x"}}},
       kNone},
      {"ArnLike on a non-ARN falls back to plain matching",
       {Cond(R"({"ArnLike": {"aws:sourcearn": "arn:*"}})")},
       "sqs:SendMessage",
       "*",
       {{"aws:sourcearn", {"arn:aws:sns:us-east-1:1:t"}}},
       kAllow},
  });
}

TEST(PolicyConditions, SetOperators) {
  const std::string any = Cond(R"({"ForAnyValue:StringEquals": {"aws:tagkeys": ["env", "team"]}})");
  const std::string all =
      Cond(R"({"ForAllValues:StringEquals": {"aws:tagkeys": ["env", "team", "cost"]}})");
  const std::string all_like = Cond(R"({"ForAllValues:StringLike": {"aws:tagkeys": ["app-*"]}})");
  const std::string any_not = Cond(R"({"ForAnyValue:StringNotEquals": {"aws:tagkeys": "env"}})");
  RunIdentityCases({
      {"ForAnyValue one matches",
       {any},
       "ec2:CreateTags",
       "*",
       {{"aws:tagkeys", {"owner", "team"}}},
       kAllow},
      {"ForAnyValue none matches",
       {any},
       "ec2:CreateTags",
       "*",
       {{"aws:tagkeys", {"owner"}}},
       kNone},
      {"ForAnyValue missing key", {any}, "ec2:CreateTags", "*", {}, kNone},
      {"ForAnyValue empty key", {any}, "ec2:CreateTags", "*", {{"aws:tagkeys", {}}}, kNone},
      {"ForAllValues subset",
       {all},
       "ec2:CreateTags",
       "*",
       {{"aws:tagkeys", {"env", "cost"}}},
       kAllow},
      {"ForAllValues one outside",
       {all},
       "ec2:CreateTags",
       "*",
       {{"aws:tagkeys", {"env", "owner"}}},
       kNone},
      {"ForAllValues missing key holds", {all}, "ec2:CreateTags", "*", {}, kAllow},
      {"ForAllValues StringLike",
       {all_like},
       "ec2:CreateTags",
       "*",
       {{"aws:tagkeys", {"app-a", "app-b"}}},
       kAllow},
      {"ForAllValues StringLike one outside",
       {all_like},
       "ec2:CreateTags",
       "*",
       {{"aws:tagkeys", {"app-a", "db"}}},
       kNone},
      {"ForAnyValue negated: some value differs",
       {any_not},
       "ec2:CreateTags",
       "*",
       {{"aws:tagkeys", {"env", "x"}}},
       kAllow},
      {"ForAnyValue negated: all equal",
       {any_not},
       "ec2:CreateTags",
       "*",
       {{"aws:tagkeys", {"env"}}},
       kNone},
      {"ForAnyValue IfExists missing",
       {Cond(R"({"ForAnyValue:StringEqualsIfExists": {"aws:tagkeys": "env"}})")},
       "ec2:CreateTags",
       "*",
       {},
       kAllow},
      {"plain operator on a multi-valued key: any value",
       {Cond(R"({"StringEquals": {"aws:tagkeys": "env"}})")},
       "ec2:CreateTags",
       "*",
       {{"aws:tagkeys", {"x", "env"}}},
       kAllow},
  });
}

// ---------------------------------------------------------------------------------------------
// Malformed documents.

TEST(PolicyParse, MalformedDocumentsAreRejected) {
  struct Bad {
    std::string name;
    std::string text;
    PolicyKind kind;
    std::string message;  // expected substring
  };
  const std::string ok_statement = R"({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})";
  std::string deep(1000, '[');
  std::string huge = Doc(R"({"Sid": ")" + std::string(130 * 1024, 'a') +
                         R"(", "Effect": "Allow", "Action": "s3:*", "Resource": "*"})");
  const std::vector<Bad> cases = {
      {"not JSON", "this is not json", PolicyKind::kAny, "Syntax errors in policy."},
      {"empty", "", PolicyKind::kAny, "Syntax errors in policy."},
      {"trailing garbage", Doc(ok_statement) + " x", PolicyKind::kAny, "Syntax errors in policy."},
      {"array document", "[" + ok_statement + "]", PolicyKind::kAny, "Syntax errors in policy."},
      {"missing Statement", R"({"Version": "2012-10-17"})", PolicyKind::kAny,
       "Syntax errors in policy."},
      {"unknown top-level key", R"({"Version": "2012-10-17", "Statement": [], "Extra": 1})",
       PolicyKind::kAny, "Syntax errors in policy."},
      {"Statement is a string", R"({"Statement": "Allow"})", PolicyKind::kAny,
       "Syntax errors in policy."},
      {"Statement element not an object", R"({"Statement": [1]})", PolicyKind::kAny,
       "Syntax errors in policy."},
      {"bad Version", R"({"Version": "2020-01-01", "Statement": [)" + ok_statement + "]}",
       PolicyKind::kAny, "legacy parsing"},
      {"missing Effect", Doc(R"({"Action": "s3:*", "Resource": "*"})"), PolicyKind::kAny,
       "Missing required field Effect"},
      {"bad Effect", Doc(R"({"Effect": "Permit", "Action": "s3:*", "Resource": "*"})"),
       PolicyKind::kAny, "Invalid effect"},
      {"lower-case Effect", Doc(R"({"Effect": "allow", "Action": "s3:*", "Resource": "*"})"),
       PolicyKind::kAny, "Invalid effect"},
      {"Effect not a string", Doc(R"({"Effect": true, "Action": "s3:*", "Resource": "*"})"),
       PolicyKind::kAny, "Syntax errors"},
      {"unknown statement key", Doc(R"({"Effect": "Allow", "Actions": "s3:*", "Resource": "*"})"),
       PolicyKind::kAny, "Syntax errors"},
      {"no Action", Doc(R"({"Effect": "Allow", "Resource": "*"})"), PolicyKind::kAny,
       "must contain actions"},
      {"empty Action list", Doc(R"({"Effect": "Allow", "Action": [], "Resource": "*"})"),
       PolicyKind::kAny, "must contain actions"},
      {"Action and NotAction",
       Doc(R"({"Effect": "Allow", "Action": "s3:*", "NotAction": "iam:*", "Resource": "*"})"),
       PolicyKind::kAny, "Syntax errors"},
      {"Action without vendor",
       Doc(R"({"Effect": "Allow", "Action": "CreateUser", "Resource": "*"})"), PolicyKind::kAny,
       "prefaced by a vendor"},
      {"Action not a string", Doc(R"({"Effect": "Allow", "Action": [1], "Resource": "*"})"),
       PolicyKind::kAny, "Syntax errors"},
      {"Resource not an ARN", Doc(R"({"Effect": "Allow", "Action": "s3:*", "Resource": "bucket"})"),
       PolicyKind::kAny, "must be in ARN format"},
      {"Resource and NotResource",
       Doc(R"({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "NotResource": "*"})"),
       PolicyKind::kAny, "Syntax errors"},
      {"identity policy without Resource", Doc(R"({"Effect": "Allow", "Action": "s3:*"})"),
       PolicyKind::kIdentity, "must contain resources"},
      {"identity policy with Principal",
       Doc(R"({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"})"),
       PolicyKind::kIdentity, "should not specify a principal"},
      {"trust policy without Principal", Doc(R"({"Effect": "Allow", "Action": "sts:AssumeRole"})"),
       PolicyKind::kResource, "Missing required field Principal"},
      {"principal string not *",
       Doc(R"({"Effect": "Allow", "Principal": "bob", "Action": "sts:AssumeRole"})"),
       PolicyKind::kResource, "Invalid principal"},
      {"bad AWS principal",
       Doc(R"({"Effect": "Allow", "Principal": {"AWS": "bob"}, "Action": "sts:AssumeRole"})"),
       PolicyKind::kResource, "Invalid principal in policy: \"AWS\":\"bob\""},
      {"unknown principal type",
       Doc(R"({"Effect": "Allow", "Principal": {"Robot": "x"}, "Action": "sts:AssumeRole"})"),
       PolicyKind::kResource, "Invalid principal"},
      {"Principal and NotPrincipal",
       Doc(R"({"Effect": "Deny", "Principal": "*", "NotPrincipal": "*", "Action": "sts:AssumeRole"})"),
       PolicyKind::kResource, "Syntax errors"},
      {"unknown condition operator",
       Doc(R"({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEqualz": {"aws:username": "a"}}})"),
       PolicyKind::kAny, "Invalid Condition type : StringEqualz"},
      {"Null with IfExists",
       Doc(R"({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"NullIfExists": {"aws:username": "true"}}})"),
       PolicyKind::kAny, "Invalid Condition type"},
      {"condition value object",
       Doc(R"({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"aws:username": {"a": 1}}}})"),
       PolicyKind::kAny, "Syntax errors"},
      {"condition value null",
       Doc(R"({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"aws:username": null}}})"),
       PolicyKind::kAny, "Syntax errors"},
      {"condition block not an object",
       Doc(R"({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": "x"}})"),
       PolicyKind::kAny, "Syntax errors"},
      {"condition key without vendor",
       Doc(R"({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"username": "a"}}})"),
       PolicyKind::kAny, "prefaced by a vendor"},
      {"Bool value not boolean",
       Doc(R"({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:securetransport": "yes"}}})"),
       PolicyKind::kAny, "expected true or false"},
      {"duplicate Sid",
       R"({"Statement": [{"Sid": "A", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}, {"Sid": "A", "Effect": "Deny", "Action": "s3:*", "Resource": "*"}]})",
       PolicyKind::kAny, "must be unique"},
      {"Sid not a string",
       Doc(R"({"Sid": 1, "Effect": "Allow", "Action": "s3:*", "Resource": "*"})"), PolicyKind::kAny,
       "Syntax errors"},
      {"too deep", deep, PolicyKind::kAny, "Syntax errors"},
      {"too large", huge, PolicyKind::kAny, "maximum size"},
      {"invalid UTF-8",
       Doc(R"({"Sid": ")" + std::string("\xff\xfe") +
           R"(", "Effect": "Allow", "Action": "s3:*", "Resource": "*"})"),
       PolicyKind::kAny, "Syntax errors"},
  };
  for (const Bad& c : cases) {
    SCOPED_TRACE(c.name);
    auto p = ParsePolicy(c.text, c.kind);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), base::Code::kInvalidArgument);
    EXPECT_NE(p.status().message().find(c.message), std::string::npos) << p.status().message();
  }
}

TEST(PolicyParse, AcceptedShapes) {
  auto p = ParsePolicy(R"({
    "Version": "2012-10-17", "Id": "doc-1",
    "Statement": [
      {"Sid": "One", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
       "Condition": {"NumericLessThan": {"s3:max-keys": 10}, "ForAnyValue:StringLike": {"aws:TagKeys": ["a*", "b"]}}},
      {"Effect": "Deny", "NotAction": ["iam:*", "sts:*"], "NotResource": "*"}
    ]})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->version, "2012-10-17");
  EXPECT_EQ(p->id, "doc-1");
  ASSERT_EQ(p->statements.size(), 2u);
  EXPECT_EQ(p->statements[0].sid, "One");
  ASSERT_EQ(p->statements[0].conditions.size(), 2u);
  const Condition& like = p->statements[0].conditions[0].op == ConditionOp::kStringLike
                              ? p->statements[0].conditions[0]
                              : p->statements[0].conditions[1];
  EXPECT_EQ(like.set, SetQualifier::kForAnyValue);
  EXPECT_EQ(like.key, "aws:tagkeys");
  EXPECT_EQ(like.values.size(), 2u);
  EXPECT_TRUE(p->statements[1].not_action);
  EXPECT_TRUE(p->statements[1].not_resource);
  EXPECT_EQ(p->statements[1].effect, Effect::kDeny);

  // No Version, a single statement object, a Principal object with every member shape.
  auto trust = ParsePolicy(R"({"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole",
      "Principal": {"AWS": ["123456789012", "arn:aws:iam::123456789012:root"],
                    "Service": "lambda.amazonaws.com", "Federated": "cognito-identity.amazonaws.com",
                    "CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}}})",
                           PolicyKind::kResource);
  ASSERT_TRUE(trust.ok()) << trust.status().ToString();
  ASSERT_TRUE(trust->statements[0].principal.has_value());
  EXPECT_EQ(trust->statements[0].principal->aws.size(), 2u);
  EXPECT_EQ(trust->statements[0].principal->service,
            std::vector<std::string>{"lambda.amazonaws.com"});
  EXPECT_FALSE(trust->statements[0].has_resource);

  // Empty statement lists parse and grant nothing.
  auto empty = ParsePolicy(R"({"Version": "2012-10-17", "Statement": []})");
  ASSERT_TRUE(empty.ok());
  AuthzRequest req{"s3:GetObject", "*", {}, nullptr};
  EXPECT_EQ(Evaluate({&*empty}, req), Decision::kImplicitDeny);

  // Copies evaluate like the original.
  Policy copy = *p;
  AuthzRequest get{"s3:GetObject",
                   "arn:aws:s3:::b/k",
                   {{"s3:max-keys", {"1"}}, {"aws:tagkeys", {"abc"}}},
                   nullptr};
  // The Deny statement never applies: NotResource "*" excludes every resource.
  EXPECT_EQ(Evaluate({&copy}, get), Decision::kAllow);
  get.context["s3:max-keys"] = {"11"};
  EXPECT_EQ(Evaluate({&copy}, get), Decision::kImplicitDeny);
}

// ---------------------------------------------------------------------------------------------
// Trust (resource) policies: principal matching.

struct Principals {
  Principal alice, root, session, bob;
  Principals() {
    alice = {PrincipalType::kUser,
             "111111111111",
             "arn:aws:iam::111111111111:user/dev/alice",
             "AIDAALICEEXAMPLE00001",
             "alice",
             "",
             ""};
    root = {PrincipalType::kRoot,
            "111111111111",
            "arn:aws:iam::111111111111:root",
            "111111111111",
            "",
            "",
            ""};
    session = {PrincipalType::kAssumedRole,
               "111111111111",
               "arn:aws:sts::111111111111:assumed-role/Admin/sess",
               "AROAADMINEXAMPLE0001:sess",
               "Admin",
               "sess",
               "arn:aws:iam::111111111111:role/ops/Admin"};
    bob = {PrincipalType::kUser,
           "222222222222",
           "arn:aws:iam::222222222222:user/bob",
           "AIDABOBEXAMPLE0000001",
           "bob",
           "",
           ""};
  }
};

std::string Trust(const std::string& principal, const std::string& extra = "",
                  const std::string& effect = "Allow", const std::string& key = "Principal") {
  return R"({"Version": "2012-10-17", "Statement": [{"Effect": ")" + effect +
         R"(", "Action": "sts:AssumeRole", ")" + key + R"(": )" + principal + extra + "}]}";
}

TEST(PolicyTrust, PrincipalMatching) {
  const Principals p;
  struct TrustCase {
    std::string name;
    std::string policy;
    const Principal* who;
    Ctx context;
    Decision want;
    std::string action = "sts:AssumeRole";
  };
  const std::string by_account = Trust(R"({"AWS": "111111111111"})");
  const std::string by_root = Trust(R"({"AWS": "arn:aws:iam::111111111111:root"})");
  const std::string by_user = Trust(R"({"AWS": "arn:aws:iam::111111111111:user/dev/alice"})");
  const std::string by_role = Trust(R"({"AWS": "arn:aws:iam::111111111111:role/ops/Admin"})");
  const std::string by_session =
      Trust(R"({"AWS": "arn:aws:sts::111111111111:assumed-role/Admin/sess"})");
  const std::string anyone = Trust(R"("*")");
  const std::string lambda = Trust(R"({"Service": "lambda.amazonaws.com"})");
  const Ctx lambda_ctx = {{"aws:principalservicename", {"lambda.amazonaws.com"}}};
  const std::vector<TrustCase> cases = {
      {"account id: user", by_account, &p.alice, {}, kAllow},
      {"account id: root", by_account, &p.root, {}, kAllow},
      {"account id: session", by_account, &p.session, {}, kAllow},
      {"account id: other account", by_account, &p.bob, {}, kNone},
      {"account id: anonymous", by_account, nullptr, {}, kNone},
      {"root ARN: user of the account", by_root, &p.alice, {}, kAllow},
      {"root ARN: other account", by_root, &p.bob, {}, kNone},
      {"user ARN: that user", by_user, &p.alice, {}, kAllow},
      {"user ARN: root of the same account", by_user, &p.root, {}, kNone},
      {"user ARN: other user", by_user, &p.bob, {}, kNone},
      {"role ARN: a session of the role", by_role, &p.session, {}, kAllow},
      {"role ARN: a user", by_role, &p.alice, {}, kNone},
      {"session ARN: that session", by_session, &p.session, {}, kAllow},
      {"session ARN: a user", by_session, &p.alice, {}, kNone},
      {"unique id", Trust(R"({"AWS": "AIDAALICEEXAMPLE00001"})"), &p.alice, {}, kAllow},
      {"role unique id: its session",
       Trust(R"({"AWS": "AROAADMINEXAMPLE0001"})"),
       &p.session,
       {},
       kAllow},
      {"*: any principal", anyone, &p.bob, {}, kAllow},
      {"*: anonymous", anyone, nullptr, {}, kAllow},
      {"{AWS: *}", Trust(R"({"AWS": "*"})"), &p.bob, {}, kAllow},
      {"list of principals",
       Trust(R"({"AWS": ["arn:aws:iam::111111111111:user/dev/alice", "222222222222"]})"),
       &p.bob,
       {},
       kAllow},
      {"service principal", lambda, nullptr, lambda_ctx, kAllow},
      {"service principal: another service",
       lambda,
       nullptr,
       {{"aws:principalservicename", {"ecs-tasks.amazonaws.com"}}},
       kNone},
      {"service principal: a user", lambda, &p.alice, {}, kNone},
      {"action must match too", lambda, nullptr, lambda_ctx, kNone, "sts:TagSession"},
      {"federated",
       Trust(R"({"Federated": "cognito-identity.amazonaws.com"})"),
       nullptr,
       {{"aws:federatedprovider", {"cognito-identity.amazonaws.com"}}},
       kAllow},
      {"condition on the trust statement",
       Trust(R"({"AWS": "222222222222"})",
             R"(, "Condition": {"StringEquals": {"sts:externalid": "xyz"}})"),
       &p.bob,
       {{"sts:externalid", {"xyz"}}},
       kAllow},
      {"condition on the trust statement, wrong external id",
       Trust(R"({"AWS": "222222222222"})",
             R"(, "Condition": {"StringEquals": {"sts:externalid": "xyz"}})"),
       &p.bob,
       {{"sts:externalid", {"abc"}}},
       kNone},
      {"NotPrincipal deny: excluded principal",
       Trust(R"({"AWS": "arn:aws:iam::111111111111:user/dev/alice"})", "", "Deny", "NotPrincipal"),
       &p.alice,
       {},
       kNone},
      {"NotPrincipal deny: anyone else",
       Trust(R"({"AWS": "arn:aws:iam::111111111111:user/dev/alice"})", "", "Deny", "NotPrincipal"),
       &p.bob,
       {},
       kDeny},
  };
  for (const TrustCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto policy = ParsePolicy(c.policy, PolicyKind::kResource);
    ASSERT_TRUE(policy.ok()) << policy.status().ToString();
    AuthzRequest req{c.action, "arn:aws:iam::111111111111:role/ops/Admin", c.context, c.who};
    EXPECT_EQ(Name(EvaluateResourcePolicy(*policy, req)), Name(c.want));
  }
}

TEST(PolicyTrust, DenyStatementsAndStatementsWithoutPrincipal) {
  const Principals p;
  auto policy = ParsePolicy(R"({"Version": "2012-10-17", "Statement": [
      {"Effect": "Allow", "Principal": {"AWS": "111111111111"}, "Action": "sts:AssumeRole"},
      {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111111111111:user/dev/alice"},
       "Action": "sts:*"},
      {"Effect": "Allow", "Action": "sts:AssumeRole"}]})");
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  AuthzRequest req{"sts:AssumeRole", "*", {}, &p.alice};
  EXPECT_EQ(EvaluateResourcePolicy(*policy, req), Decision::kExplicitDeny);
  req.principal = &p.root;
  EXPECT_EQ(EvaluateResourcePolicy(*policy, req), Decision::kAllow);
  // The principal-less statement never applies in a resource policy.
  req.principal = &p.bob;
  EXPECT_EQ(EvaluateResourcePolicy(*policy, req), Decision::kImplicitDeny);
  // Identity evaluation ignores Principal altogether.
  EXPECT_EQ(Evaluate({&*policy}, req), Decision::kExplicitDeny);
}

// ---------------------------------------------------------------------------------------------
// Robustness.

TEST(PolicyRobustness, PathologicalWildcardsStayCheap) {
  std::string pattern;
  for (int i = 0; i < 1000; ++i) pattern += "*a";
  pattern += "*b";
  auto policy = ParsePolicy(
      Doc(R"({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::)" + pattern +
          R"(", "Condition": {"StringLike": {"s3:prefix": ")" + pattern + R"("}}})"));
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  AuthzRequest req{"s3:GetObject",
                   "arn:aws:s3:::" + std::string(4000, 'a'),
                   {{"s3:prefix", {std::string(4000, 'a')}}},
                   nullptr};
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Evaluate({&*policy}, req), Decision::kImplicitDeny);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(PolicyRobustness, ConcurrentEvaluationOfOnePolicy) {
  auto policy = ParsePolicy(Doc(
      R"({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::${aws:username}/*"})"));
  ASSERT_TRUE(policy.ok());
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        std::string user = "u" + std::to_string(t);
        AuthzRequest req{
            "s3:GetObject", "arn:aws:s3:::" + user + "/k", {{"aws:username", {user}}}, nullptr};
        if (Evaluate({&*policy}, req) != Decision::kAllow) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(PolicyRobustness, GarbageDocumentsNeverCrash) {
  const std::vector<std::string> fragments = {"{",
                                              "}",
                                              "[",
                                              "]",
                                              ",",
                                              ":",
                                              "\"Statement\"",
                                              "\"Effect\"",
                                              "\"Allow\"",
                                              "\"Action\"",
                                              "\"Resource\"",
                                              "\"*\"",
                                              "\"Condition\"",
                                              "\"StringLike\"",
                                              "\"aws:x\"",
                                              "1",
                                              "true",
                                              "null",
                                              "\"Principal\"",
                                              "\"AWS\"",
                                              "\"${aws:username}\"",
                                              "\"\\u0000\"",
                                              "\"\xff\"",
                                              " "};
  std::mt19937 rng(42);
  for (int i = 0; i < 3000; ++i) {
    std::string text;
    size_t n = rng() % 40;
    for (size_t j = 0; j < n; ++j) text += fragments[rng() % fragments.size()];
    auto p = ParsePolicy(text);
    if (p.ok()) {
      AuthzRequest req{"s3:GetObject", "arn:aws:s3:::b/k", {{"aws:x", {"v"}}}, nullptr};
      (void)Evaluate({&*p}, req);
      (void)EvaluateResourcePolicy(*p, req);
    }
  }
}

}  // namespace
}  // namespace auth
