// The AWS Query protocol (IAM, STS, ...): form-encoded `Action=...&Version=...` requests,
// XML responses `<XResponse><XResult>…</XResult><ResponseMetadata>…`.
//
// A QueryService is a table of operations. Each operation names the IAM action it
// needs and how to find the resource it acts on; the table authorizes before the
// handler runs, so no handler can forget to.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aws/error.h"
#include "aws/service.h"

namespace aws {

// The decoded form parameters of one request.
class QueryParams {
 public:
  QueryParams() = default;
  explicit QueryParams(std::map<std::string, std::string> values) : values_(std::move(values)) {}
  // Parses the URL query and, for form POSTs, the body. Error (400 MalformedQueryString)
  // on a malformed escape.
  static Outcome<QueryParams> FromRequest(const http::Request& request);

  const std::string* Find(std::string_view name) const;
  std::string Get(std::string_view name, std::string_view fallback = {}) const;
  bool Has(std::string_view name) const { return Find(name) != nullptr; }
  // "Name.member.1", "Name.member.2", … in order (stops at the first gap).
  std::vector<std::string> List(std::string_view name) const;
  // "Tags.member.N.Key" / ".Value" pairs.
  std::vector<std::pair<std::string, std::string>> KeyValueList(std::string_view name,
                                                                std::string_view key_field,
                                                                std::string_view value_field) const;
  const std::map<std::string, std::string>& values() const { return values_; }

  // Validation helpers returning AWS's ValidationError wording.
  // A required parameter: "1 validation error detected: Value null at 'userName' failed to
  // satisfy constraint: Member must not be null".
  Outcome<std::string> Required(std::string_view name) const;

 private:
  std::map<std::string, std::string> values_;
};

struct QueryOperation {
  std::string name;    // "CreateUser"
  std::string action;  // "iam:CreateUser"
  // The resource ARN the action applies to, computed from the parameters (may fail
  // validation first). Empty function = "*".
  std::function<Outcome<std::string>(const QueryParams&, const Call&)> resource;
  // Runs the operation; returns the inner XML of <NameResult> (may be empty).
  std::function<Outcome<std::string>(const QueryParams&, Call&)> handler;
};

class QueryService : public Service {
 public:
  // `xmlns` e.g. "https://iam.amazonaws.com/doc/2010-05-08/".
  QueryService(std::string signing_name, std::string xmlns, std::string version);

  void Add(QueryOperation op);

  std::string_view signing_name() const override { return signing_name_; }
  Protocol protocol() const override { return Protocol::kQuery; }
  std::string_view xml_namespace() const override { return xmlns_; }
  void Handle(Call& call, http::Request&& request, http::Responder respond) override;
  const std::string& xmlns() const { return xmlns_; }

 private:
  http::Response Respond(const Call& call, std::string_view op, std::string_view result_xml) const;

  std::string signing_name_;
  std::string xmlns_;
  std::string version_;
  std::map<std::string, QueryOperation, std::less<>> ops_;
};

}  // namespace aws
