// Plain HTTP request/response types, independent of Beast, so that everything above
// http/ (routing, AWS protocols, services) compiles without Beast's heavy headers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/fs.h"
#include "base/status.h"

namespace http {

struct Header {
  std::string name;
  std::string value;
};

// Finds the first header named `name` (case-insensitive); nullptr if absent.
const std::string* FindHeader(const std::vector<Header>& headers, std::string_view name);

// Where a streamed request body goes (see ServerOptions::stream_body). Write is called on
// the connection's I/O thread, piece by piece in order, and may block briefly (a local
// file write). After a Write error no more pieces are delivered; the rest of the body is
// read and dropped, and the handler still runs, so it can report the error.
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual base::Status Write(std::string_view data) = 0;
};

struct Request {
  std::string method;  // "GET", upper-case as received
  std::string target;  // the raw request-target: path and query, still percent-encoded
  std::string path;    // raw path part of target (percent-encoded)
  std::string query;   // raw query part after '?' (percent-encoded), may be empty
  std::vector<Header> headers;
  std::string body;
  // Set when the body was streamed into a sink instead of `body` (which is then empty):
  // the sink the server obtained from ServerOptions::stream_body, and the bytes it got.
  std::shared_ptr<BodySink> body_sink;
  uint64_t streamed_bytes = 0;
  std::string remote_ip;  // peer address, for aws:SourceIp
  bool secure = false;    // arrived over TLS

  const std::string* Find(std::string_view name) const { return FindHeader(headers, name); }
};

struct Response {
  int status = 200;
  std::vector<Header> headers;
  std::string body;
  // Zero-copy alternative to `body`: when body_file is set, the server sends
  // [body_file_offset, body_file_offset + body_file_length) of that file with sendfile(2)
  // and ignores `body`. Content-Length is set from body_file_length.
  std::shared_ptr<base::UniqueFd> body_file;
  uint64_t body_file_offset = 0;
  uint64_t body_file_length = 0;
  // For a HEAD request: the Content-Length to announce (the body is never sent).
  // -1 = the size of `body` / body_file_length.
  int64_t head_content_length = -1;

  // Replaces any header of that name.
  void Set(std::string_view name, std::string value);
  const std::string* Find(std::string_view name) const { return FindHeader(headers, name); }
};

// Delivers the response for one request. Must be called exactly once, from any thread.
using Responder = std::function<void(Response)>;
// Handles one request. May respond before returning or later from another thread.
// Must not throw.
using Handler = std::function<void(Request&& request, Responder respond)>;

// Canonical reason phrase for a status code ("Not Found").
std::string_view StatusText(int status);

}  // namespace http
