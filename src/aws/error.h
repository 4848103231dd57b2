// aws::Error — an error as an AWS client sees it: HTTP status, error code, message.
// Services produce these at their API edge; the protocol adapters (query.h, json.h,
// rest-xml later) turn them into each protocol's own wire shape.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace aws {

struct Error {
  int status = 400;
  std::string code;     // "NoSuchEntity", "ResourceNotFoundException", ...
  std::string message;  // AWS's wording where AWS has one
  bool sender = true;   // Query protocol <Type>: Sender (client's fault) or Receiver
  // Extra top-level fields some protocols carry (S3 <Key>, <BucketName>, ...).
  std::vector<std::pair<std::string, std::string>> extra;
};

inline Error MakeError(int status, std::string code, std::string message) {
  return Error{status, std::move(code), std::move(message), status < 500, {}};
}

// Outcome<T>: a T or an aws::Error. The service-edge counterpart of base::Result.
template <typename T>
class [[nodiscard]] Outcome {
 public:
  Outcome(T value) : v_(std::move(value)) {}      // NOLINT
  Outcome(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace aws
