// http::Client — a small blocking HTTP/1.1 client (plain TCP, no TLS) for our own tools:
// `stratus logs`, tests and benchmarks. One keep-alive connection, opened on first use and
// reopened once when the server closed it between requests.
//
// Threading: one Client per thread (not thread-safe). Errors are values: connection
// failures, timeouts and malformed responses are kIo / kDeadlineExceeded Statuses; any
// HTTP status (including 4xx/5xx) is a successful Response.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "http/message.h"

namespace http {

// "http://host:port/base" split up. Only the http scheme.
struct Url {
  std::string host;
  uint16_t port = 80;
  std::string path = "/";  // never empty
};
base::Result<Url> ParseUrl(const std::string& url);

struct ClientOptions {
  std::chrono::milliseconds timeout{30000};  // per read or write on the socket
  size_t max_body_bytes = 64 * 1024 * 1024;
};

class Client {
 public:
  Client(std::string host, uint16_t port, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `request` (method, target — or path and query when target is empty —, headers,
  // body). Host and Content-Length are added when missing.
  base::Result<Response> Send(const Request& request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace http
