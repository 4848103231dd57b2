// The IAM policy engine: parse a policy document once into plain types, then evaluate it
// against requests as often as needed.
//
// Pure functions over immutable values: a parsed Policy may be shared by any number of threads
// evaluating concurrently. Nothing throws. Hostile documents are rejected at parse time (size,
// nesting) and evaluation cost is bounded by the sizes of the policy and the request
// (wildcard matching is O(pattern * text), never exponential).
//
// Evaluation order (identity policies): an explicit Deny in any matching statement wins, then
// any matching Allow, else implicit deny. See src/auth/README.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/principal.h"
#include "base/status.h"

namespace auth {

enum class Effect { kAllow, kDeny };

// A Principal or NotPrincipal element.
struct PrincipalSpec {
  bool any = false;                    // "*" or {"AWS": "*"}
  std::vector<std::string> aws;        // account ids, arn:aws:iam::ACCT:root, user/role ARNs, ...
  std::vector<std::string> service;    // "lambda.amazonaws.com"
  std::vector<std::string> federated;  // identity provider names / ARNs
  std::vector<std::string> canonical_user;  // accepted, never matches
};

enum class ConditionOp {
  kStringEquals,
  kStringNotEquals,
  kStringEqualsIgnoreCase,
  kStringNotEqualsIgnoreCase,
  kStringLike,
  kStringNotLike,
  kNumericEquals,
  kNumericNotEquals,
  kNumericLessThan,
  kNumericLessThanEquals,
  kNumericGreaterThan,
  kNumericGreaterThanEquals,
  kDateEquals,
  kDateNotEquals,
  kDateLessThan,
  kDateLessThanEquals,
  kDateGreaterThan,
  kDateGreaterThanEquals,
  kBool,
  kIpAddress,
  kNotIpAddress,
  kArnEquals,
  kArnLike,
  kArnNotEquals,
  kArnNotLike,
  kNull,
};

enum class SetQualifier { kNone, kForAnyValue, kForAllValues };

// A policy value: the text as written, plus whether it contains policy variables (only
// substituted in Version 2012-10-17 documents).
struct PolicyValue {
  std::string text;
  bool has_variables = false;
};

// One (operator, key) pair of a Condition block, e.g. "StringLike": {"s3:prefix": [...]}.
struct Condition {
  ConditionOp op = ConditionOp::kStringEquals;
  SetQualifier set = SetQualifier::kNone;
  bool if_exists = false;
  std::string key;  // lower-case, e.g. "aws:sourceip"
  std::vector<PolicyValue> values;
};

struct Statement {
  std::string sid;
  Effect effect = Effect::kAllow;
  bool not_action = false;           // the list came from NotAction
  std::vector<std::string> actions;  // "iam:Get*", "*"
  bool has_resource = false;         // Resource or NotResource present
  bool not_resource = false;
  std::vector<PolicyValue> resources;
  std::optional<PrincipalSpec> principal;  // Principal or NotPrincipal
  bool not_principal = false;
  std::vector<Condition> conditions;  // all must hold
};

struct Policy {
  std::string version;  // "2012-10-17", "2008-10-17" or empty
  std::string id;
  std::vector<Statement> statements;
};

// What the document is for, which changes what IAM requires of it.
enum class PolicyKind {
  kAny,       // accept both shapes (Principal optional, Resource optional)
  kIdentity,  // user/group/role/managed policies: no Principal, Resource required
  kResource,  // trust / resource policies: Principal or NotPrincipal required
};

// Parses a policy document (JSON text). InvalidArgument, with a message suitable for IAM's
// MalformedPolicyDocument, when the document is malformed: bad JSON ("Syntax errors in
// policy."), top-level keys other than Version/Id/Statement, a statement without Effect or with
// an Effect other than Allow/Deny, without Action/NotAction, an unknown condition operator,
// a document over 128 KiB or nested absurdly deep, ...
// Statement may be an object or an array; Action/NotAction, Resource/NotResource and the
// Principal values may be a string or an array; Principal may be "*" or an object with AWS,
// Service, Federated and CanonicalUser members.
base::Result<Policy> ParsePolicy(std::string_view json_text, PolicyKind kind = PolicyKind::kAny);

struct AuthzRequest {
  std::string action;    // "iam:CreateUser"; matched case-insensitively
  std::string resource;  // ARN or "*"; matched case-sensitively
  // Condition keys with lower-case names, e.g. "aws:username", "aws:sourceip",
  // "aws:currenttime", "aws:epochtime", "aws:securetransport", "aws:principalarn",
  // "aws:principalaccount", "aws:principaltype", "aws:requestedregion", "aws:userid", and
  // service keys such as "iam:policyarn". Multi-valued keys list every value.
  // Resource policies also read "aws:principalservicename" (a calling service, matched by
  // Principal {"Service": ...}) and "aws:federatedprovider" (matched by {"Federated": ...}).
  std::map<std::string, std::vector<std::string>> context;
  // The caller, for Principal/NotPrincipal in resource policies. Null: anonymous (or a service
  // identified only by aws:principalservicename).
  const Principal* principal = nullptr;
};

enum class Decision { kAllow, kExplicitDeny, kImplicitDeny };

// Identity policies: explicit Deny beats Allow beats implicit deny. Principal elements are
// ignored here. Null entries in `policies` are skipped.
Decision Evaluate(const std::vector<const Policy*>& policies, const AuthzRequest& req);

// A resource-based policy (e.g. a role's trust policy): a statement applies only when it also
// matches req.principal through Principal/NotPrincipal:
//   "*" / {"AWS": "*"}        anyone
//   "123456789012" or arn:aws:iam::123456789012:root
//                             any principal of that account
//   a user ARN / assumed-role session ARN
//                             exactly that principal
//   a role ARN                sessions of that role (arn:aws:sts::ACCT:assumed-role/Name/...)
//   {"Service": "x.amazonaws.com"}   context "aws:principalservicename" contains it
//   {"Federated": "..."}             context "aws:federatedprovider" contains it
// A statement without Principal/NotPrincipal never applies. A statement without Resource
// matches any resource (trust policies have none).
Decision EvaluateResourcePolicy(const Policy& policy, const AuthzRequest& req);

// True if `principal` (and the service/federated keys of `context`) matches `spec`.
// Exposed for tests and for services that check principals outside a full evaluation.
bool PrincipalMatches(const PrincipalSpec& spec, const Principal* principal,
                      const std::map<std::string, std::vector<std::string>>& context);

}  // namespace auth
