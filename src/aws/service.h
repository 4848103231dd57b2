// The contract between the edge (server/) and an AWS-compatible service.
//
// The edge authenticates a request (SigV4), works out which service and protocol it is
// for, fills in a Call and hands both to the service. The service decodes the request
// into plain types, authorizes each action through Call::Authorize, acts, and answers
// in its protocol's shape (helpers in query.h / json.h). Services never see SigV4.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/policy.h"
#include "auth/principal.h"
#include "aws/error.h"
#include "base/time.h"
#include "http/message.h"

namespace aws {

enum class Protocol { kQuery, kJson, kRestJson, kRestXml };

class Authorizer;

// Everything about one API call that is not its payload. Owned by the edge; valid until
// the call's response is sent.
struct Call {
  std::string request_id;
  std::string service;    // signing name: "iam", "sts", "lambda", ...
  std::string operation;  // set by the service once decoded ("CreateUser"), for metrics/logs
  Protocol protocol = Protocol::kQuery;
  auth::Principal principal;
  std::string access_key_id;
  std::string account_id;  // the account the request acts in (principal's account)
  std::string region;      // from the credential scope
  std::string remote_ip;
  bool secure = false;
  base::SystemTime now;
  Authorizer* authorizer = nullptr;  // nullptr = allow everything (tests, dev mode)
  // An unsigned request (S3 only): no principal; only resource policies can allow it.
  bool anonymous = false;
  // For header-signed requests with a STREAMING-* (aws-chunked) payload: what the chunk
  // signatures chain from. Unset otherwise (and in dev mode without valid signatures).
  struct ChunkSigning {
    std::string key;  // the SigV4 signing key
    std::string seed_signature, amz_date, scope;
  };
  std::optional<ChunkSigning> chunk_signing;

  // Checks that the caller may perform `action` ("iam:CreateUser") on `resource` (an ARN
  // or "*"). Returns the AccessDenied error to send back when not.
  std::optional<Error> Authorize(
      std::string_view action, std::string_view resource,
      const std::map<std::string, std::vector<std::string>>& extra_context = {}) const;
  // The same with a resource-based policy in the decision (an S3 bucket policy; null =
  // none): an explicit deny in either policy denies; otherwise an allow in either allows.
  std::optional<Error> AuthorizeWith(
      const auth::Policy* resource_policy, std::string_view action, std::string_view resource,
      const std::map<std::string, std::vector<std::string>>& extra_context = {}) const;
};

// Decides whether a call may perform an action. Implemented in server/ over IAM.
// Thread-safe.
class Authorizer {
 public:
  virtual ~Authorizer() = default;
  virtual std::optional<Error> Authorize(
      const Call& call, std::string_view action, std::string_view resource,
      const std::map<std::string, std::vector<std::string>>& extra_context) = 0;
  // Identity policies and `resource_policy` together (see Call::AuthorizeWith). The default
  // ignores the resource policy.
  virtual std::optional<Error> AuthorizeWith(
      const Call& call, const auth::Policy& resource_policy, std::string_view action,
      std::string_view resource,
      const std::map<std::string, std::vector<std::string>>& extra_context) {
    (void)resource_policy;
    return Authorize(call, action, resource, extra_context);
  }
};

// One AWS service behind the edge. Thread-safe: Handle runs concurrently on I/O threads
// and must not block on slow work (hand it to the service's own threads instead).
class Service {
 public:
  virtual ~Service() = default;
  virtual std::string_view signing_name() const = 0;  // "iam"
  virtual Protocol protocol() const = 0;
  // The XML namespace of the service's error documents (Query protocol), else empty.
  virtual std::string_view xml_namespace() const { return {}; }
  // Answers through `respond`, exactly once, possibly later from another thread.
  virtual void Handle(Call& call, http::Request&& request, http::Responder respond) = 0;
};

// The AccessDenied message AWS uses: "User: ARN is not authorized to perform: ACTION on
// resource: RESOURCE".
std::string AccessDeniedMessage(const Call& call, std::string_view action,
                                std::string_view resource, bool explicit_deny);

}  // namespace aws
