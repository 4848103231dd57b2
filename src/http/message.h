// Plain HTTP request/response types, independent of Beast, so that everything above
// http/ (routing, AWS protocols, services) compiles without Beast's heavy headers.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace http {

struct Header {
  std::string name;
  std::string value;
};

// Finds the first header named `name` (case-insensitive); nullptr if absent.
const std::string* FindHeader(const std::vector<Header>& headers, std::string_view name);

struct Request {
  std::string method;  // "GET", upper-case as received
  std::string target;  // the raw request-target: path and query, still percent-encoded
  std::string path;    // raw path part of target (percent-encoded)
  std::string query;   // raw query part after '?' (percent-encoded), may be empty
  std::vector<Header> headers;
  std::string body;
  std::string remote_ip;  // peer address, for aws:SourceIp
  bool secure = false;    // arrived over TLS

  const std::string* Find(std::string_view name) const { return FindHeader(headers, name); }
};

struct Response {
  int status = 200;
  std::vector<Header> headers;
  std::string body;

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
