#include "services/lambda/api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/strings.h"
#include "services/lambda/test_fixture.h"

namespace lambda {
namespace {

using nlohmann::json;
using testing::HandlerZip;
using testing::kRole;
using testing::MakeZip;

class Recorder : public aws::Authorizer {
 public:
  std::optional<aws::Error> Authorize(
      const aws::Call&, std::string_view action, std::string_view resource,
      const std::map<std::string, std::vector<std::string>>&) override {
    seen = std::string(action) + " " + std::string(resource);
    return std::nullopt;
  }
  std::string seen;
};

class ApiTest : public testing::LambdaTest {
 protected:
  void SetUp() override {
    LambdaTest::SetUp();
    svc_ = MakeLambdaService(*lambda_);
  }
  http::Response Do(const std::string& method, const std::string& target, const json& body = {}) {
    http::Request r;
    r.method = method;
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    if (!body.is_null()) r.body = body.dump();
    aws::Call call;
    call.request_id = "rid";
    call.authorizer = &authz_;
    http::Response out;
    svc_->Handle(call, std::move(r), [&](http::Response x) { out = std::move(x); });
    return out;
  }
  static json Body(const http::Response& r) { return json::parse(r.body, nullptr, false); }
  static std::string Type(const http::Response& r) {
    const std::string* t = r.Find("x-amzn-ErrorType");
    return t ? *t : "";
  }
  json CreateBody(const std::string& name) {
    return json{{"FunctionName", name},
                {"Runtime", "python3.12"},
                {"Role", kRole},
                {"Handler", "index.handler"},
                {"Code", {{"ZipFile", base::Base64Encode(HandlerZip())}}}};
  }

  Recorder authz_;
  std::unique_ptr<aws::Service> svc_;
};

TEST_F(ApiTest, CreateAndGetShapes) {
  auto r = Do("POST", "/2015-03-31/functions", CreateBody("fn"));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(authz_.seen, "lambda:CreateFunction arn:aws:lambda:us-east-1:000000000000:function:fn");
  json c = Body(r);
  EXPECT_EQ(c["FunctionArn"], "arn:aws:lambda:us-east-1:000000000000:function:fn");
  // As AWS's: Pending until the code is ready (the invoker's preparer makes it Active;
  // there is none here).
  EXPECT_EQ(c["State"], "Pending");
  EXPECT_EQ(c["StateReason"], "The function is being created.");
  EXPECT_EQ(c["StateReasonCode"], "Creating");
  EXPECT_FALSE(c.contains("LastUpdateStatus"));
  EXPECT_EQ(c["PackageType"], "Zip");
  EXPECT_EQ(c["Architectures"], json::array({"x86_64"}));
  EXPECT_EQ(c["EphemeralStorage"]["Size"], 512);
  EXPECT_EQ(c["Version"], "$LATEST");

  r = Do("GET",
         "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Afn");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["Configuration"]["FunctionName"], "fn");
  EXPECT_EQ(Body(r)["Code"]["RepositoryType"], "S3");
  EXPECT_EQ(authz_.seen, "lambda:GetFunction arn:aws:lambda:us-east-1:000000000000:function:fn");

  r = Do("POST", "/2015-03-31/functions", CreateBody("fn"));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Type(r), "ResourceConflictException");
  EXPECT_EQ(Body(r)["Message"], "Function already exist: fn");

  r = Do("GET", "/2015-03-31/functions/nope/configuration?Qualifier=3");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Body(r)["Message"],
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope:3");
  EXPECT_EQ(authz_.seen,
            "lambda:GetFunctionConfiguration "
            "arn:aws:lambda:us-east-1:000000000000:function:nope:3");
}

TEST_F(ApiTest, ValidationErrorsAsAws) {
  struct Case {
    std::string what;
    json patch;
    int status;
    std::string type;
    std::string message;
  };
  std::vector<Case> cases = {
      {"timeout",
       {{"Timeout", 901}},
       400,
       "ValidationException",
       "1 validation error detected: Value '901' at 'timeout' failed to satisfy constraint: "
       "Member must have value less than or equal to 900"},
      {"memory",
       {{"MemorySize", 64}},
       400,
       "ValidationException",
       "1 validation error detected: Value '64' at 'memorySize' failed to satisfy constraint: "
       "Member must have value greater than or equal to 128"},
      {"two",
       {{"MemorySize", 20000}, {"Timeout", 0}},
       400,
       "ValidationException",
       "2 validation errors detected: Value '0' at 'timeout' failed to satisfy constraint: "
       "Member must have value greater than or equal to 1; Value '20000' at 'memorySize' failed "
       "to satisfy constraint: Member must have value less than or equal to 10240"},
      {"storage",
       {{"EphemeralStorage", {{"Size", 511}}}},
       400,
       "ValidationException",
       "1 validation error detected: Value '511' at 'ephemeralStorage.size' failed to satisfy "
       "constraint: Member must have value greater than or equal to 512"},
      {"role",
       {{"Role", "r1"}},
       400,
       "ValidationException",
       "1 validation error detected: Value 'r1' at 'role' failed to satisfy constraint: Member "
       "must satisfy regular expression pattern: "
       "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"},
      {"runtime",
       {{"Runtime", "java8"}},
       400,
       "InvalidParameterValueException",
       "Value java8 at 'runtime' failed to satisfy constraint: Member must satisfy enum value "
       "set: [nodejs22.x, nodejs20.x, nodejs18.x, python3.13, python3.12, python3.11, "
       "python3.10, python3.9, provided.al2023, provided.al2, provided] or be a valid ARN"},
      {"corrupt",
       {{"Code", {{"ZipFile", base::Base64Encode("nope")}}}},
       400,
       "InvalidParameterValueException",
       "Could not unzip uploaded file. Please check your file, then try to upload again."},
      {"zip-slip",
       {{"Code", {{"ZipFile", base::Base64Encode(MakeZip({{"../../x", "y"}}))}}}},
       400,
       "InvalidParameterValueException",
       "Could not unzip uploaded file. Please check your file, then try to upload again."},
      {"reserved env",
       {{"Environment", {{"Variables", {{"AWS_REGION", "x"}}}}}},
       400,
       "InvalidParameterValueException",
       "Lambda was unable to configure your environment variables because the environment "
       "variables you have provided contains reserved keys that are currently not supported "
       "for modification. Reserved keys used in this request: AWS_REGION"},
      {"name", {{"FunctionName", "bad name"}}, 400, "ValidationException", ""},
      {"no handler",
       {{"Handler", nullptr}},
       400,
       "InvalidParameterValueException",
       "Runtime and Handler are mandatory parameters for functions created with deployment "
       "packages."},
      {"wrong type", {{"Timeout", "ten"}}, 400, "InvalidParameterValueException", ""},
  };
  for (const auto& c : cases) {
    json body = CreateBody("v");
    for (auto& [k, v] : c.patch.items()) body[k] = v;
    auto r = Do("POST", "/2015-03-31/functions", body);
    EXPECT_EQ(r.status, c.status) << c.what << ": " << r.body;
    EXPECT_EQ(Type(r), c.type) << c.what;
    if (!c.message.empty()) {
      EXPECT_EQ(Body(r)["Message"], c.message) << c.what;
    }
  }
  EXPECT_EQ(Do("GET", "/2015-03-31/functions/v").status, 404);
  // Not JSON at all.
  http::Request raw;
  raw.method = "POST";
  raw.path = "/2015-03-31/functions";
  raw.body = "{not json";
  aws::Call call;
  http::Response out;
  svc_->Handle(call, std::move(raw), [&](http::Response x) { out = std::move(x); });
  EXPECT_EQ(out.status, 400);
}

TEST_F(ApiTest, LifecycleThroughTheWire) {
  ASSERT_EQ(Do("POST", "/2015-03-31/functions", CreateBody("fn")).status, 201);
  auto r = Do("PUT", "/2015-03-31/functions/fn/configuration",
              {{"Timeout", 60}, {"Environment", {{"Variables", {{"K", "V"}}}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["Timeout"], 60);
  EXPECT_EQ(Body(r)["Environment"]["Variables"]["K"], "V");
  r = Do("PUT", "/2015-03-31/functions/fn/configuration",
         {{"Timeout", 61}, {"RevisionId", "00000000-0000-0000-0000-000000000000"}});
  EXPECT_EQ(r.status, 412);
  EXPECT_EQ(Type(r), "PreconditionFailedException");

  r = Do("POST", "/2015-03-31/functions/fn/versions", json::object());
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Body(r)["Version"], "1");
  EXPECT_EQ(Body(r)["FunctionArn"], "arn:aws:lambda:us-east-1:000000000000:function:fn:1");

  r = Do("POST", "/2015-03-31/functions/fn/aliases", {{"Name", "prod"}, {"FunctionVersion", "1"}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Body(r)["AliasArn"], "arn:aws:lambda:us-east-1:000000000000:function:fn:prod");
  r = Do("POST", "/2015-03-31/functions/fn/aliases", {{"Name", "123"}, {"FunctionVersion", "1"}});
  EXPECT_EQ(Type(r), "ValidationException");
  r = Do("GET", "/2015-03-31/functions/fn/aliases/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Body(r)["Message"],
            "Cannot find alias arn: arn:aws:lambda:us-east-1:000000000000:function:fn:nope");
  r = Do("GET", "/2015-03-31/functions/fn:prod/configuration");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["Version"], "1");
  r = Do("GET", "/2015-03-31/functions/fn:prod/configuration?Qualifier=1");
  EXPECT_EQ(Type(r), "InvalidParameterValueException");

  r = Do("PUT", "/2017-10-31/functions/fn/concurrency", {{"ReservedConcurrentExecutions", 5}});
  ASSERT_EQ(r.status, 200) << r.body;
  r = Do("GET", "/2019-09-30/functions/fn/concurrency");
  EXPECT_EQ(Body(r)["ReservedConcurrentExecutions"], 5);
  r = Do("GET", "/2016-08-19/account-settings/");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["AccountLimit"]["UnreservedConcurrentExecutions"], 995);

  std::string arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Afn";
  EXPECT_EQ(Do("POST", "/2017-03-31/tags/" + arn, {{"Tags", {{"a", "1"}, {"b", "2"}}}}).status,
            204);
  EXPECT_EQ(Do("DELETE", "/2017-03-31/tags/" + arn + "?tagKeys=a").status, 204);
  r = Do("GET", "/2017-03-31/tags/" + arn);
  EXPECT_EQ(Body(r)["Tags"], (json{{"b", "2"}}));
  r = Do("GET", "/2017-03-31/tags/" + arn + "%3A1");
  EXPECT_EQ(Type(r), "InvalidParameterValueException");

  r = Do("GET", "/2015-03-31/functions/?MaxItems=0");
  EXPECT_EQ(Type(r), "ValidationException");
  r = Do("GET", "/2015-03-31/functions/");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["Functions"].size(), 1u);

  EXPECT_EQ(Do("DELETE", "/2015-03-31/functions/fn/aliases/prod").status, 204);
  EXPECT_EQ(Do("DELETE", "/2015-03-31/functions/fn?Qualifier=1").status, 204);
  EXPECT_EQ(Do("DELETE", "/2015-03-31/functions/fn").status, 204);
  EXPECT_EQ(Do("DELETE", "/2015-03-31/functions/fn").status, 404);
}

TEST_F(ApiTest, HostileInputNeverCrashes) {
  const char* paths[] = {"/2015-03-31/functions/%00",
                         "/2015-03-31/functions/a:b:c:d:e:f:g:h:i",
                         "/2015-03-31/functions/arn:aws:lambda:eu-west-1:000000000000:function:x",
                         "/2015-03-31/functions/a/aliases/%2F",
                         "/2015-03-31/functions/%FF%FE",
                         "/2015-03-31/functions/x/aliases/%C3%28"};
  for (const char* p : paths) {
    auto r = Do("GET", p);
    EXPECT_GE(r.status, 400) << p;
  }
  for (const char* body : {"[]", "null", "1", "\"x\"", "{\"Code\":1}", "{\"FunctionName\":5}"}) {
    http::Request raw;
    raw.method = "POST";
    raw.path = "/2015-03-31/functions";
    raw.body = body;
    aws::Call call;
    http::Response out;
    svc_->Handle(call, std::move(raw), [&](http::Response x) { out = std::move(x); });
    EXPECT_EQ(out.status, 400) << body;
  }
}

}  // namespace
}  // namespace lambda
