#include "aws/protocol.h"

#include <nlohmann/json.hpp>

#include "aws/xml.h"
#include "base/time.h"

namespace aws {

namespace {
constexpr std::string_view kSigMismatch =
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details.";
constexpr std::string_view kS3SigMismatch =
    "The request signature we calculated does not match the signature you provided. Check "
    "your key and signing method.";
constexpr std::string_view kInvalidToken = "The security token included in the request is invalid.";
constexpr std::string_view kExpiredToken = "The security token included in the request is expired";

bool IsJson(Protocol p) { return p == Protocol::kJson || p == Protocol::kRestJson; }
}  // namespace

void AddRequestIdHeaders(http::Response& r, Protocol protocol, std::string_view request_id) {
  if (protocol == Protocol::kRestXml) {
    r.Set("x-amz-request-id", std::string(request_id));
    r.Set("x-amz-id-2", std::string(request_id));
  } else {
    r.Set("x-amzn-RequestId", std::string(request_id));
  }
  r.Set("Date", base::FormatHttpDate(base::SystemClock().Now()));
}

http::Response RenderError(Protocol protocol, const Error& e, std::string_view request_id,
                           std::string_view xmlns) {
  http::Response r;
  r.status = e.status;
  switch (protocol) {
    case Protocol::kQuery: {
      XmlWriter w;
      w.Open("ErrorResponse", xmlns)
          .Open("Error")
          .Element("Type", e.sender ? "Sender" : "Receiver")
          .Element("Code", e.code)
          .Element("Message", e.message)
          .Close()
          .Element("RequestId", request_id);
      r.body = w.Finish();
      r.Set("Content-Type", "text/xml");
      break;
    }
    case Protocol::kRestXml: {
      XmlWriter w;
      w.Declaration().Open("Error").Element("Code", e.code).Element("Message", e.message);
      for (const auto& [k, v] : e.extra) w.Element(k, v);
      w.Element("RequestId", request_id).Element("HostId", request_id);
      r.body = w.Finish();
      r.Set("Content-Type", "application/xml");
      break;
    }
    case Protocol::kJson: {
      nlohmann::json j = {{"__type", e.code}, {"message", e.message}};
      r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      r.Set("Content-Type", "application/x-amz-json-1.1");
      r.Set("x-amzn-ErrorType", e.code);
      break;
    }
    case Protocol::kRestJson: {
      nlohmann::json j = {{"Type", e.sender ? "User" : "Service"}, {"Message", e.message}};
      for (const auto& [k, v] : e.extra) j[k] = v;  // e.g. Lambda's throttle "Reason"
      r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      r.Set("Content-Type", "application/json");
      r.Set("x-amzn-ErrorType", e.code);
      break;
    }
  }
  AddRequestIdHeaders(r, protocol, request_id);
  return r;
}

Error AuthFailureError(Protocol protocol, const auth::AuthFailure& f) {
  using auth::AuthError;
  const std::string& m = f.message;
  // A server-side failure while looking up the key: not the caller's fault, retryable.
  const Error lookup_failed{503,
                            protocol == Protocol::kRestXml ? "ServiceUnavailable"
                            : IsJson(protocol)             ? "ServiceException"
                                                           : "ServiceUnavailable",
                            "Service is unable to handle request.",
                            false,
                            {}};
  if (protocol == Protocol::kRestXml) {
    switch (f.error) {
      case AuthError::kMissingAuthentication:
        return MakeError(403, "AccessDenied", "Access Denied");
      case AuthError::kIncompleteSignature:
      case AuthError::kUnsupportedAlgorithm:
        return MakeError(400, "AuthorizationHeaderMalformed", m);
      case AuthError::kUnknownAccessKey:
      case AuthError::kInactiveAccessKey:
        return MakeError(403, "InvalidAccessKeyId",
                         "The AWS Access Key Id you provided does not exist in our records.");
      case AuthError::kSignatureMismatch:
        return MakeError(403, "SignatureDoesNotMatch", std::string(kS3SigMismatch));
      case AuthError::kRequestTimeSkewed:
        return MakeError(403, "RequestTimeTooSkewed",
                         "The difference between the request time and the current time is too "
                         "large.");
      case AuthError::kPresignExpired:
        return MakeError(403, "AccessDenied", "Request has expired");
      case AuthError::kInvalidToken:
        return MakeError(400, "InvalidToken",
                         "The provided token is malformed or otherwise invalid.");
      case AuthError::kExpiredToken:
        return MakeError(400, "ExpiredToken", "The provided token has expired.");
      case AuthError::kCredentialLookupFailed:
        return lookup_failed;
    }
  }
  if (IsJson(protocol)) {
    switch (f.error) {
      case AuthError::kMissingAuthentication:
        return MakeError(403, "MissingAuthenticationTokenException",
                         "Missing Authentication Token");
      case AuthError::kIncompleteSignature:
      case AuthError::kUnsupportedAlgorithm:
        return MakeError(400, "IncompleteSignatureException", m);
      case AuthError::kUnknownAccessKey:
      case AuthError::kInactiveAccessKey:
      case AuthError::kInvalidToken:
        return MakeError(403, "UnrecognizedClientException", std::string(kInvalidToken));
      case AuthError::kSignatureMismatch:
        return MakeError(403, "InvalidSignatureException", std::string(kSigMismatch));
      case AuthError::kRequestTimeSkewed:
      case AuthError::kPresignExpired:
        return MakeError(403, "InvalidSignatureException", m);
      case AuthError::kExpiredToken:
        return MakeError(403, "ExpiredTokenException", std::string(kExpiredToken));
      case AuthError::kCredentialLookupFailed:
        return lookup_failed;
    }
  }
  // Query protocol (IAM, STS, ...).
  switch (f.error) {
    case AuthError::kMissingAuthentication:
      return MakeError(403, "MissingAuthenticationToken",
                       "Request is missing Authentication Token");
    case AuthError::kIncompleteSignature:
    case AuthError::kUnsupportedAlgorithm:
      return MakeError(400, "IncompleteSignature", m);
    case AuthError::kUnknownAccessKey:
    case AuthError::kInactiveAccessKey:
    case AuthError::kInvalidToken:
      return MakeError(403, "InvalidClientTokenId", std::string(kInvalidToken));
    case AuthError::kSignatureMismatch:
      return MakeError(403, "SignatureDoesNotMatch", std::string(kSigMismatch));
    case AuthError::kRequestTimeSkewed:
      return MakeError(403, "SignatureDoesNotMatch", m);
    case AuthError::kPresignExpired:
      return MakeError(403, "AccessDenied", m);
    case AuthError::kExpiredToken:
      return MakeError(403, "ExpiredToken", std::string(kExpiredToken));
    case AuthError::kCredentialLookupFailed:
      return lookup_failed;
  }
  return MakeError(403, "AccessDenied", m);
}

Error UnknownOperationError(Protocol protocol, std::string_view operation) {
  switch (protocol) {
    case Protocol::kQuery:
      return MakeError(
          400, "InvalidAction",
          "Could not find operation " + std::string(operation) + " for version 2010-05-08");
    case Protocol::kJson:
      return MakeError(400, "UnknownOperationException",
                       "Unknown operation " + std::string(operation));
    case Protocol::kRestJson:
      return MakeError(404, "UnknownOperationException",
                       "Unknown operation " + std::string(operation));
    case Protocol::kRestXml:
      return MakeError(405, "MethodNotAllowed",
                       "The specified method is not allowed against this resource.");
  }
  return MakeError(400, "InvalidAction", "Unknown operation");
}

}  // namespace aws
