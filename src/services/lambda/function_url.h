// lambda::FunctionUrls — the data plane of function URLs (CreateFunctionUrlConfig).
//
// A request to http://<url id>.lambda-url.<region>.<host>/<path> (or, for clients that cannot
// set the Host header, /_stratus/lambda-url/<url id>/<path> on the edge) becomes an API
// Gateway payload 2.0 event; the function's answer becomes the HTTP response: an object with
// "statusCode" gives the status, headers, cookies and (base64) body; any other JSON is a 200
// with that JSON (a JSON string: its text) as the body. Authorization as AWS's:
//   AuthType NONE     the function's resource policy must allow lambda:InvokeFunctionUrl to
//                     "*" (AddPermission ... --function-url-auth-type NONE);
//   AuthType AWS_IAM  the request must be SigV4-signed (the edge verifies it) by a caller
//                     whose identity policies, or the function's resource policy, allow
//                     lambda:InvokeFunctionUrl.
// Otherwise 403 {"Message": "Forbidden. ..."} as AWS answers. CORS preflights (OPTIONS) are
// answered from the URL's Cors configuration without invoking the function.
#pragma once

#include <optional>
#include <string>

#include "aws/service.h"
#include "http/message.h"
#include "services/lambda/invoker.h"
#include "services/lambda/lambda.h"

namespace lambda {

class FunctionUrls {
 public:
  FunctionUrls(Lambda& lambda, Invoker& invoker) : lambda_(lambda), invoker_(invoker) {}

  // The URL id a request is for (from Host or the /_stratus/lambda-url/ path), or nullopt
  // when the request is not for a function URL.
  static std::optional<std::string> UrlId(const http::Request& req);

  // `call` carries the verified caller when `signed_request` (SigV4 checked by the edge).
  void Handle(const aws::Call& call, bool signed_request, http::Request&& req,
              http::Responder respond);

 private:
  Lambda& lambda_;
  Invoker& invoker_;
};

}  // namespace lambda
