#include "services/s3/chunked.h"

#include "base/crypto.h"
#include "base/strings.h"

namespace s3 {

namespace {

const std::string kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string ChunkSignature(const aws::Call::ChunkSigning& s, const std::string& prev,
                           std::string_view chunk) {
  std::string sts = "AWS4-HMAC-SHA256-PAYLOAD\n" + s.amz_date + "\n" + s.scope + "\n" + prev +
                    "\n" + kEmptySha256 + "\n" + base::Sha256Hex(chunk);
  return base::HexEncode(base::HmacSha256(s.key, sts));
}

std::string TrailerSignature(const aws::Call::ChunkSigning& s, const std::string& prev,
                             const std::string& canonical_trailers) {
  std::string sts = "AWS4-HMAC-SHA256-TRAILER\n" + s.amz_date + "\n" + s.scope + "\n" + prev +
                    "\n" + base::Sha256Hex(canonical_trailers);
  return base::HexEncode(base::HmacSha256(s.key, sts));
}

base::Status Incomplete() {
  return base::InvalidArgument(
      "IncompleteBody: The request body terminated unexpectedly");
}
base::Status BadSignature() {
  return base::PermissionDenied(
      "SignatureDoesNotMatch: The request signature we calculated does not match the "
      "signature you provided. Check your key and signing method.");
}

// Reads a line ending in CRLF starting at *pos.
bool ReadLine(std::string_view body, size_t* pos, std::string_view* line) {
  size_t end = body.find("\r\n", *pos);
  if (end == std::string_view::npos) return false;
  *line = body.substr(*pos, end - *pos);
  *pos = end + 2;
  return true;
}

}  // namespace

base::Result<ChunkedBody> DecodeAwsChunked(std::string_view body, std::string_view mode,
                                           const aws::Call::ChunkSigning* signing) {
  bool signed_chunks = mode == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" ||
                       mode == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
  bool trailer = mode == "STREAMING-UNSIGNED-PAYLOAD-TRAILER" ||
                 mode == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
  if (!signed_chunks && !trailer)
    return base::Unimplemented("NotImplemented: x-amz-content-sha256 " + std::string(mode) +
                               " is not supported");
  ChunkedBody out;
  std::string prev = signing ? signing->seed_signature : "";
  size_t pos = 0;
  for (;;) {
    std::string_view line;
    if (!ReadLine(body, &pos, &line)) return Incomplete();
    std::string_view size_hex = line.substr(0, line.find(';'));
    std::string sig;
    size_t at = line.find(";chunk-signature=");
    if (at != std::string_view::npos) sig = std::string(line.substr(at + 17));
    if (size_hex.empty() || size_hex.size() > 15 ||
        size_hex.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos)
      return base::InvalidArgument("InvalidRequest: malformed aws-chunked chunk header");
    uint64_t size = std::stoull(std::string(size_hex), nullptr, 16);
    if (size > body.size() - pos) return Incomplete();
    std::string_view chunk = body.substr(pos, size);
    pos += size;
    if (signed_chunks && signing) {
      if (sig.size() != 64 || !base::ConstantTimeEquals(sig, ChunkSignature(*signing, prev, chunk)))
        return BadSignature();
      prev = sig;
    } else if (signed_chunks && sig.empty()) {
      return base::InvalidArgument("InvalidRequest: aws-chunked chunk without a signature");
    }
    if (size == 0) break;
    out.data.append(chunk);
    if (body.substr(pos, 2) != "\r\n") return Incomplete();
    pos += 2;
  }
  // After the last chunk: CRLF, or trailers then CRLF.
  std::string canonical;
  std::string trailer_sig;
  for (;;) {
    std::string_view line;
    if (!ReadLine(body, &pos, &line)) {
      if (pos == body.size()) break;  // no final empty line: accepted
      return Incomplete();
    }
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      return base::InvalidArgument("InvalidRequest: malformed aws-chunked trailer");
    std::string name = base::ToLower(base::Trim(line.substr(0, colon)));
    std::string value(base::Trim(line.substr(colon + 1)));
    if (name == "x-amz-trailer-signature") {
      trailer_sig = value;
      continue;
    }
    if (!trailer) return base::InvalidArgument("InvalidRequest: unexpected aws-chunked trailer");
    canonical += name + ":" + value + "\n";
    out.trailers.emplace_back(std::move(name), std::move(value));
  }
  if (pos != body.size())
    return base::InvalidArgument("InvalidRequest: data after the aws-chunked body");
  if (signed_chunks && trailer && signing) {
    if (trailer_sig.size() != 64 ||
        !base::ConstantTimeEquals(trailer_sig, TrailerSignature(*signing, prev, canonical)))
      return BadSignature();
  }
  return out;
}

std::string EncodeAwsChunked(std::string_view data, size_t chunk_size,
                             const aws::Call::ChunkSigning* signing,
                             const std::vector<std::pair<std::string, std::string>>& trailers) {
  std::string out;
  std::string prev = signing ? signing->seed_signature : "";
  char hex[24];
  auto emit = [&](std::string_view chunk) {
    snprintf(hex, sizeof hex, "%zx", chunk.size());
    out += hex;
    if (signing) {
      prev = ChunkSignature(*signing, prev, chunk);
      out += ";chunk-signature=" + prev;
    }
    out += "\r\n";
    out.append(chunk);
    if (!chunk.empty()) out += "\r\n";
  };
  for (size_t i = 0; i < data.size(); i += chunk_size) emit(data.substr(i, chunk_size));
  emit({});
  if (trailers.empty()) {
    out += "\r\n";
    return out;
  }
  std::string canonical;
  for (const auto& [n, v] : trailers) {
    out += n + ":" + v + "\r\n";
    canonical += n + ":" + v + "\n";
  }
  if (signing) out += "x-amz-trailer-signature:" + TrailerSignature(*signing, prev, canonical) + "\r\n";
  out += "\r\n";
  return out;
}

}  // namespace s3
