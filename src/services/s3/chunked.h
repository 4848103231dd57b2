// aws-chunked request bodies (x-amz-content-sha256: STREAMING-…): the chunk framing SDKs use
// to sign uploads chunk by chunk or to send checksums as trailers.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/service.h"
#include "base/status.h"

namespace s3 {

struct ChunkedBody {
  std::string data;
  std::vector<std::pair<std::string, std::string>> trailers;  // lower-case names
};

// Decodes `body` framed as `mode` (the x-amz-content-sha256 value):
//   STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: every chunk signature is checked against
//     `signing` (the chain from the request's seed signature), and so is the trailer's;
//   STREAMING-UNSIGNED-PAYLOAD-TRAILER: chunks unsigned, trailers carry checksums.
// `signing` may be null only in dev mode (signatures then go unchecked).
// Errors as "Code: message": SignatureDoesNotMatch, IncompleteBody, InvalidRequest,
// NotImplemented (the ECDSA variants).
base::Result<ChunkedBody> DecodeAwsChunked(std::string_view body, std::string_view mode,
                                           const aws::Call::ChunkSigning* signing);

// Frames `data` as `mode` would (for tests and our own client): chunks of `chunk_size`,
// signed when `signing` is given, then `trailers`.
std::string EncodeAwsChunked(std::string_view data, size_t chunk_size,
                             const aws::Call::ChunkSigning* signing,
                             const std::vector<std::pair<std::string, std::string>>& trailers);

}  // namespace s3
