// AWS Signature Version 4: verifying incoming requests (Authorization header or presigned
// query) and signing outgoing ones (our own clients, benchmarks and tests).
//
// Everything here is a pure function of its arguments: thread-safe and reentrant. No HTTP
// library: the caller describes the request with an HttpRequestView whose strings must outlive
// the call. Nothing throws; hostile input yields an AuthFailure, never a crash.
//
// Wire details that real clients depend on (and that the tests pin with AWS's published suite
// and botocore-signed requests) are listed in src/auth/README.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "auth/principal.h"
#include "base/time.h"

namespace auth {

struct Header {  // as received, any case
  std::string name;
  std::string value;
};

struct HttpRequestView {
  std::string_view method;     // "GET"
  std::string_view raw_path;   // exactly as on the request line, still percent-encoded, no query
  std::string_view raw_query;  // after '?', still encoded, may be empty
  const std::vector<Header>* headers = nullptr;  // all headers; duplicate names allowed
  std::string_view body;
};

enum class AuthError {
  kMissingAuthentication,  // no Authorization header and no X-Amz-Signature query
  kIncompleteSignature,    // malformed Authorization / credential scope / missing X-Amz-Date or
                           // signed header 'host' / both header and query auth
  kUnsupportedAlgorithm,   // not AWS4-HMAC-SHA256 (e.g. SigV2, SigV4a)
  kUnknownAccessKey,
  kInactiveAccessKey,
  kSignatureMismatch,
  kRequestTimeSkewed,  // X-Amz-Date more than max_skew from now
  kPresignExpired,     // presigned URL past X-Amz-Date + X-Amz-Expires ("Request has expired")
  kInvalidToken,       // temporary credential without / with a wrong X-Amz-Security-Token, or a
                       // token sent with a long-term key
  kExpiredToken,       // temporary credential past its expiration
  kCredentialLookupFailed,  // CredentialProvider::Lookup failed with something other than
                            // NotFound; a server-side problem (500/503), not the caller's fault
};

struct AuthFailure {
  AuthError error;
  std::string message;  // AWS's own wording where there is one
  // Set for kSignatureMismatch only: what we computed, so S3-style errors can return them
  // (<CanonicalRequest>, <StringToSign>) and client authors can debug. Contains no secret.
  std::string canonical_request;
  std::string string_to_sign;
};

// From the Authorization header or the presigned query.
struct ParsedSignature {
  std::string access_key_id;
  std::string date;  // YYYYMMDD from the credential scope
  std::string region, service, signature;
  std::string amz_date;                     // X-Amz-Date (or the Date header, reformatted)
  std::vector<std::string> signed_headers;  // lower-case, in the order listed
  std::string session_token;                // X-Amz-Security-Token header or query param
  bool presigned = false;
  int64_t expires_seconds = 0;  // presigned only
};

// Parses without verifying: kMissingAuthentication, kIncompleteSignature or
// kUnsupportedAlgorithm. Checks the shape of the credential scope (date/region/service/
// aws4_request), that its date equals the X-Amz-Date date, and that 'host' is signed.
std::variant<ParsedSignature, AuthFailure> ParseSignature(const HttpRequestView& req);

struct VerifyOptions {
  std::chrono::seconds max_skew{900};
  // S3: the canonical URI is the path as sent (single encoding, no normalization). Others:
  // remove dot segments and empty segments and encode the (already encoded) path again, as
  // botocore does.
  bool s3_path_encoding = false;
  // When x-amz-content-sha256 holds a hex digest, check it against `body`. Turn off only when
  // the body is streamed and the caller checks the digest itself as the bytes arrive.
  bool verify_payload_hash = true;
  // S3's rule for header-signed requests: every x-amz-* header present must be signed
  // (AccessDenied "There were headers present in the request which were not signed").
  bool require_signed_amz_headers = false;
};

struct VerifiedRequest {
  ParsedSignature sig;
  Credential credential;
};

// Full verification: parse, look up the key, check it is active, check the session token and
// its expiry, the clock skew (header auth) or validity window (presigned), recompute the
// signature and compare in constant time.
// Payload hash: the x-amz-content-sha256 header when present (including "UNSIGNED-PAYLOAD";
// "STREAMING-..." values are taken as the literal hash), else "UNSIGNED-PAYLOAD" for presigned
// S3 requests, else the hex sha256 of the body.
std::variant<VerifiedRequest, AuthFailure> Verify(const HttpRequestView& req,
                                                  CredentialProvider& creds,
                                                  const base::Clock& clock,
                                                  const VerifyOptions& opts = {});

// ---- Building blocks, exposed for tests and for our own signing client ----

// The canonical request. `signed_headers` are lower-case names in the order to emit them.
// With drop_signature_param, X-Amz-Signature is left out of the canonical query (presigned).
// A '+' in the query is read as a space, as form encoding (and botocore's GET params) use it.
std::string CanonicalRequest(const HttpRequestView& req,
                             const std::vector<std::string>& signed_headers,
                             std::string_view payload_hash, bool s3_path_encoding,
                             bool drop_signature_param);
std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);
// The raw 32-byte derived key: HMAC chain over "AWS4"+secret, date, region, service,
// "aws4_request".
std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service);

// Signs `req` the way botocore does and returns the Authorization header value. The caller
// has already added Host, X-Amz-Date (== amz_date) and, for temporary credentials,
// X-Amz-Security-Token; every header except Authorization, User-Agent, Expect,
// Transfer-Encoding and X-Amzn-Trace-Id is signed. service == "s3" selects S3 path encoding.
std::string SignAuthorizationHeader(const HttpRequestView& req, std::string_view access_key_id,
                                    std::string_view secret, std::string_view region,
                                    std::string_view service, std::string_view amz_date,
                                    std::string_view payload_hash);

// Presigns `req` (botocore's SigV4QueryAuth): returns the full raw query to send, i.e. the
// request's own query followed by the X-Amz-* parameters and X-Amz-Signature. Headers of `req`
// (at least Host) are signed as in SignAuthorizationHeader. The payload is UNSIGNED-PAYLOAD for
// S3 and the sha256 of the body otherwise.
std::string PresignQuery(const HttpRequestView& req, std::string_view access_key_id,
                         std::string_view secret, std::string_view session_token,
                         std::string_view region, std::string_view service,
                         std::string_view amz_date, int64_t expires_seconds);

}  // namespace auth
