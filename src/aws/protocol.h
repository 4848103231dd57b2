// Wire shapes of errors and authentication failures for each AWS protocol.
#pragma once

#include <string>
#include <string_view>

#include "auth/sigv4.h"
#include "aws/error.h"
#include "aws/service.h"
#include "http/message.h"

namespace aws {

// Renders `error` in `protocol`'s shape, with the request id headers AWS sends.
// `xmlns` is the Query service's XML namespace (ignored by the other protocols).
http::Response RenderError(Protocol protocol, const Error& error, std::string_view request_id,
                           std::string_view xmlns = {});

// The AWS error a client gets for a failed SigV4 check, per protocol family.
Error AuthFailureError(Protocol protocol, const auth::AuthFailure& failure);

// An unknown operation or service.
Error UnknownOperationError(Protocol protocol, std::string_view operation);

// Adds x-amzn-RequestId / x-amz-request-id (and Date) to a successful response.
void AddRequestIdHeaders(http::Response& response, Protocol protocol, std::string_view request_id);

}  // namespace aws
