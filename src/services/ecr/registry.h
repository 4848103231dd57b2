// ecr::Registry — the OCI Distribution API on /v2/ (pull, push, chunked and streamed
// uploads, cross-repository mounts, tags, referrers, catalog, deletes) over ecr::Ecr.
//
// Authentication: the edge verifies SigV4 when the request carries it (Call::access_key_id
// set); otherwise `Authorization: Basic base64(AWS:<token>)` with a token from
// GetAuthorizationToken; otherwise the caller is anonymous, which may only pull from
// repositories whose policy allows Principal "*" (see README). Each action is authorized
// as its ECR IAM action on the repository ARN through Call::Authorize.
//
// Large bodies: OpenBodySink() is the http::ServerOptions::stream_body hook; it streams
// blob upload bodies straight into the upload's BlobWriter. Blob GETs are sent with
// sendfile(2). Thread-safe.
#pragma once

#include <memory>

#include "aws/service.h"
#include "http/message.h"
#include "services/ecr/ecr.h"

namespace ecr {

class Registry {
 public:
  explicit Registry(Ecr& ecr) : ecr_(ecr) {}

  // Whether the edge should hand this path to the registry ("/v2", "/v2/...").
  static bool Owns(std::string_view path);

  void Handle(aws::Call& call, http::Request&& request, http::Responder respond);

  // For http::ServerOptions::stream_body: a sink for blob upload bodies (PATCH/PUT on an
  // upload session that the same credentials started, POST with ?digest=), else null.
  std::shared_ptr<http::BodySink> OpenBodySink(const http::Request& head);

 private:
  Ecr& ecr_;
};

}  // namespace ecr
