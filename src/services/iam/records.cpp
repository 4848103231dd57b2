#include "services/iam/records.h"

#include <nlohmann/json.hpp>

#include "auth/policy.h"
#include "base/crypto.h"
#include "base/ids.h"
#include "base/strings.h"

namespace iam {

namespace {
constexpr std::string_view kMalformedMarker = "MalformedPolicyDocument: ";
}  // namespace

base::Status MalformedPolicy(std::string_view message) {
  return base::InvalidArgument(std::string(kMalformedMarker) + std::string(message));
}

bool IsMalformedPolicy(const base::Status& status) {
  return status.code() == base::Code::kInvalidArgument &&
         status.message().rfind(kMalformedMarker, 0) == 0;
}

std::string PolicyErrorMessage(const base::Status& status) {
  if (IsMalformedPolicy(status)) return status.message().substr(kMalformedMarker.size());
  return status.message();
}

const PolicyVersion* ManagedPolicy::DefaultVersion() const {
  for (const auto& v : versions)
    if (v.id == default_version) return &v;
  return nullptr;
}

namespace internal {

using nlohmann::json;

std::string UserKey(std::string_view name) {
  return std::string(kUsersPrefix) + base::ToLower(name);
}
std::string RoleKey(std::string_view name) {
  return std::string(kRolesPrefix) + base::ToLower(name);
}
std::string PolicyKey(std::string_view name) {
  return std::string(kPoliciesPrefix) + base::ToLower(name);
}
std::string AccessKeyIndexKey(std::string_view key_id) {
  return std::string(kKeysPrefix) + std::string(key_id);
}
std::string SessionKey(std::string_view key_id) {
  return std::string(kSessionsPrefix) + std::string(key_id);
}

namespace {

int64_t ToMillis(base::SystemTime t) { return base::EpochMillis(t); }
base::SystemTime FromMillis(int64_t ms) {
  return base::SystemTime(
      std::chrono::duration_cast<base::SystemTime::duration>(std::chrono::milliseconds(ms)));
}

json TagsJson(const std::vector<Tag>& tags) {
  json a = json::array();
  for (const auto& t : tags) a.push_back(json::array({t.key, t.value}));
  return a;
}
std::vector<Tag> TagsFrom(const json& j) {
  std::vector<Tag> out;
  if (!j.is_array()) return out;
  for (const auto& t : j) out.push_back({t.at(0).get<std::string>(), t.at(1).get<std::string>()});
  return out;
}
json InlineJson(const std::vector<InlinePolicy>& ps) {
  json a = json::array();
  for (const auto& p : ps) a.push_back({{"name", p.name}, {"doc", p.document}});
  return a;
}
std::vector<InlinePolicy> InlineFrom(const json& j) {
  std::vector<InlinePolicy> out;
  if (!j.is_array()) return out;
  for (const auto& p : j)
    out.push_back({p.at("name").get<std::string>(), p.at("doc").get<std::string>()});
  return out;
}
std::vector<std::string> StringsFrom(const json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& s : j) out.push_back(s.get<std::string>());
  return out;
}

// Runs `fn` over parsed JSON; any nlohmann exception becomes Corruption.
template <typename Fn>
base::Status DecodeWith(std::string_view text, std::string_view what, Fn fn) {
  try {
    json j = json::parse(text);
    fn(j);
    return base::Status::Ok();
  } catch (const std::exception& e) {
    return base::Corruption("decode " + std::string(what) + " record: " + e.what());
  }
}

}  // namespace

std::string Encode(const User& u) {
  json keys = json::array();
  for (const auto& k : u.keys)
    keys.push_back({{"id", k.id},
                    {"secret", k.secret},
                    {"active", k.active},
                    {"created", ToMillis(k.create_date)}});
  json j = {{"name", u.name},
            {"id", u.id},
            {"path", u.path},
            {"arn", u.arn},
            {"created", ToMillis(u.create_date)},
            {"tags", TagsJson(u.tags)},
            {"keys", keys},
            {"attached", u.attached},
            {"inline", InlineJson(u.inline_policies)}};
  return j.dump();
}

base::Status Decode(std::string_view text, User* u) {
  return DecodeWith(text, "user", [&](const json& j) {
    u->name = j.at("name").get<std::string>();
    u->id = j.at("id").get<std::string>();
    u->path = j.at("path").get<std::string>();
    u->arn = j.at("arn").get<std::string>();
    u->create_date = FromMillis(j.at("created").get<int64_t>());
    u->tags = TagsFrom(j.value("tags", json::array()));
    u->keys.clear();
    for (const auto& k : j.value("keys", json::array()))
      u->keys.push_back({k.at("id").get<std::string>(), k.at("secret").get<std::string>(),
                         k.at("active").get<bool>(), FromMillis(k.at("created").get<int64_t>())});
    u->attached = StringsFrom(j.value("attached", json::array()));
    u->inline_policies = InlineFrom(j.value("inline", json::array()));
  });
}

std::string Encode(const Role& r) {
  json j = {{"name", r.name},
            {"id", r.id},
            {"path", r.path},
            {"arn", r.arn},
            {"description", r.description},
            {"trust", r.trust_policy},
            {"max_session", r.max_session_duration},
            {"created", ToMillis(r.create_date)},
            {"tags", TagsJson(r.tags)},
            {"attached", r.attached},
            {"inline", InlineJson(r.inline_policies)}};
  return j.dump();
}

base::Status Decode(std::string_view text, Role* r) {
  return DecodeWith(text, "role", [&](const json& j) {
    r->name = j.at("name").get<std::string>();
    r->id = j.at("id").get<std::string>();
    r->path = j.at("path").get<std::string>();
    r->arn = j.at("arn").get<std::string>();
    r->description = j.value("description", "");
    r->trust_policy = j.at("trust").get<std::string>();
    r->max_session_duration = j.value("max_session", int64_t{3600});
    r->create_date = FromMillis(j.at("created").get<int64_t>());
    r->tags = TagsFrom(j.value("tags", json::array()));
    r->attached = StringsFrom(j.value("attached", json::array()));
    r->inline_policies = InlineFrom(j.value("inline", json::array()));
  });
}

std::string Encode(const ManagedPolicy& p) {
  json versions = json::array();
  for (const auto& v : p.versions)
    versions.push_back({{"id", v.id}, {"doc", v.document}, {"created", ToMillis(v.create_date)}});
  json j = {{"name", p.name},
            {"id", p.id},
            {"path", p.path},
            {"arn", p.arn},
            {"description", p.description},
            {"default", p.default_version},
            {"created", ToMillis(p.create_date)},
            {"updated", ToMillis(p.update_date)},
            {"attachments", p.attachment_count},
            {"next_version", p.next_version},
            {"versions", versions},
            {"tags", TagsJson(p.tags)}};
  return j.dump();
}

base::Status Decode(std::string_view text, ManagedPolicy* p) {
  return DecodeWith(text, "policy", [&](const json& j) {
    p->name = j.at("name").get<std::string>();
    p->id = j.at("id").get<std::string>();
    p->path = j.at("path").get<std::string>();
    p->arn = j.at("arn").get<std::string>();
    p->description = j.value("description", "");
    p->default_version = j.at("default").get<std::string>();
    p->create_date = FromMillis(j.at("created").get<int64_t>());
    p->update_date = FromMillis(j.at("updated").get<int64_t>());
    p->attachment_count = j.value("attachments", int64_t{0});
    p->next_version = j.value("next_version", int64_t{2});
    p->versions.clear();
    for (const auto& v : j.at("versions"))
      p->versions.push_back({v.at("id").get<std::string>(), v.at("doc").get<std::string>(),
                             FromMillis(v.at("created").get<int64_t>())});
    p->tags = TagsFrom(j.value("tags", json::array()));
  });
}

std::string Encode(const Session& s) {
  json j = {{"kind", static_cast<int>(s.kind)},
            {"akid", s.access_key_id},
            {"secret", s.secret},
            {"token", s.token},
            {"expires", ToMillis(s.expiration)},
            {"account", s.account_id},
            {"role_name", s.role_name},
            {"role_arn", s.role_arn},
            {"role_id", s.role_id},
            {"session_name", s.session_name},
            {"policy", s.policy},
            {"source", s.source_identity_arn}};
  return j.dump();
}

base::Status Decode(std::string_view text, Session* s) {
  return DecodeWith(text, "session", [&](const json& j) {
    int kind = j.at("kind").get<int>();
    if (kind < 0 || kind > 2) throw std::runtime_error("bad session kind");
    s->kind = static_cast<Session::Kind>(kind);
    s->access_key_id = j.at("akid").get<std::string>();
    s->secret = j.at("secret").get<std::string>();
    s->token = j.at("token").get<std::string>();
    s->expiration = FromMillis(j.at("expires").get<int64_t>());
    s->account_id = j.at("account").get<std::string>();
    s->role_name = j.value("role_name", "");
    s->role_arn = j.value("role_arn", "");
    s->role_id = j.value("role_id", "");
    s->session_name = j.value("session_name", "");
    s->policy = j.value("policy", "");
    s->source_identity_arn = j.value("source", "");
  });
}

std::string NewUniqueId(std::string_view prefix) {
  return std::string(prefix) + base::RandomString(17, base::kUpperAlnum);
}
std::string NewAccessKeyId(std::string_view prefix) {
  return std::string(prefix) + base::RandomString(16, base::kUpperAlnum);
}
std::string NewSecretKey() {
  return base::RandomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
}
std::string NewSessionToken() {
  // Shaped like AWS's (base64, a few hundred characters); only its equality matters.
  return "IQoJb3JpZ2luX2VjE" + base::Base64Encode(base::RandomBytes(240));
}

namespace {
std::string Violation(std::string_view value, std::string_view field, std::string_view what) {
  return "1 validation error detected: Value '" + std::string(value) + "' at '" +
         std::string(field) + "' failed to satisfy constraint: " + std::string(what);
}
bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '+' || c == '=' || c == ',' || c == '.' || c == '@' || c == '-';
}
}  // namespace

base::Status ValidateName(std::string_view value, std::string_view field, size_t max_len) {
  if (value.empty())
    return base::InvalidArgument(
        Violation(value, field, "Member must have length greater than or equal to 1"));
  if (value.size() > max_len)
    return base::InvalidArgument(Violation(
        value, field, "Member must have length less than or equal to " + std::to_string(max_len)));
  for (char c : value)
    if (!IsNameChar(c))
      return base::InvalidArgument(
          Violation(value, field, "Member must satisfy regular expression pattern: [\\w+=,.@-]+"));
  return base::Status::Ok();
}

base::Status ValidatePath(std::string_view value, std::string_view field) {
  bool ok = !value.empty() && value.size() <= 512 && value.front() == '/' && value.back() == '/';
  for (char c : value)
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7F) ok = false;
  if (ok) return base::Status::Ok();
  if (value.size() > 512)
    return base::InvalidArgument(
        Violation(value, field, "Member must have length less than or equal to 512"));
  return base::InvalidArgument(Violation(value, field,
                                         "Member must satisfy regular expression pattern: "
                                         "(\\u002F)|(\\u002F[\\u0021-\\u007F]+\\u002F)"));
}

base::Status ValidateTags(const std::vector<Tag>& tags) {
  if (tags.size() > kMaxTags)
    return base::ResourceExhausted("The number of tags has reached the maximum limit.");
  for (const auto& t : tags) {
    if (t.key.empty() || t.key.size() > 128)
      return base::InvalidArgument(
          Violation(t.key, "tags.member.key",
                    t.key.empty() ? "Member must have length greater than or equal to 1"
                                  : "Member must have length less than or equal to 128"));
    if (t.value.size() > 256)
      return base::InvalidArgument(Violation(t.value, "tags.member.value",
                                             "Member must have length less than or equal to 256"));
  }
  return base::Status::Ok();
}

base::Status ValidatePolicyDocument(std::string_view document, DocumentKind kind) {
  // IAM words a JSON syntax error differently from other problems.
  if (!json::accept(document)) return MalformedPolicy("This policy contains invalid Json");
  auth::PolicyKind pk =
      kind == DocumentKind::kTrust ? auth::PolicyKind::kResource : auth::PolicyKind::kIdentity;
  auto parsed = auth::ParsePolicy(document, pk);
  if (!parsed.ok()) return MalformedPolicy(parsed.status().message());
  return base::Status::Ok();
}

std::optional<Arn> ParseArn(std::string_view text) {
  auto parts = base::Split(text, ':');
  if (parts.size() < 6 || parts[0] != "arn") return std::nullopt;
  Arn a;
  a.partition = std::string(parts[1]);
  a.service = std::string(parts[2]);
  a.region = std::string(parts[3]);
  a.account = std::string(parts[4]);
  // The resource may itself contain ':'.
  size_t pos = 0;
  for (int i = 0; i < 5; ++i) pos = text.find(':', pos) + 1;
  a.resource = std::string(text.substr(pos));
  if (a.partition.empty() || a.service.empty() || a.resource.empty()) return std::nullopt;
  return a;
}

namespace {

ManagedPolicy Builtin(std::string name, std::string path, std::string description,
                      std::string document) {
  ManagedPolicy p;
  p.name = std::move(name);
  p.path = std::move(path);
  p.arn = "arn:aws:iam::aws:policy" + p.path + p.name;
  // Stable ids, so repeated calls agree.
  std::string digest = base::Sha256(p.arn);
  p.id = "ANPA";
  for (size_t i = 0; i < 17; ++i)
    p.id += base::kUpperAlnum[static_cast<unsigned char>(digest[i]) % base::kUpperAlnum.size()];
  p.description = std::move(description);
  p.create_date = base::ParseIso8601("2015-02-06T18:39:46Z").value_or(base::SystemTime{});
  p.update_date = p.create_date;
  p.aws_managed = true;
  p.versions.push_back({"v1", std::move(document), p.create_date});
  return p;
}

}  // namespace

const std::vector<ManagedPolicy>& AwsManagedPolicies() {
  static const std::vector<ManagedPolicy>* kPolicies = [] {
    auto* v = new std::vector<ManagedPolicy>;
    auto allow = [](std::string actions) {
      return R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":)" + actions +
             R"(,"Resource":"*"}]})";
    };
    v->push_back(Builtin("AdministratorAccess", "/",
                         "Provides full access to AWS services and resources.", allow(R"("*")")));
    v->push_back(Builtin(
        "PowerUserAccess", "/",
        "Provides full access to AWS services and resources, but does not allow management of "
        "Users and groups.",
        R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":["iam:*","organizations:*","account:*"],"Resource":"*"},{"Effect":"Allow","Action":["iam:CreateServiceLinkedRole","iam:DeleteServiceLinkedRole","iam:ListRoles","organizations:DescribeOrganization","account:ListRegions","account:GetAccountInformation"],"Resource":"*"}]})"));
    v->push_back(Builtin("ReadOnlyAccess", "/",
                         "Provides read-only access to AWS services and resources.",
                         allow(R"(["*:Describe*","*:Get*","*:List*","*:BatchGet*"])")));
    v->push_back(Builtin(
        "IAMFullAccess", "/", "Provides full access to IAM via the AWS Management Console.",
        allow(
            R"(["iam:*","organizations:DescribeAccount","organizations:DescribeOrganization","organizations:DescribeOrganizationalUnit","organizations:DescribePolicy","organizations:ListChildren","organizations:ListParents","organizations:ListPoliciesForTarget","organizations:ListRoots","organizations:ListPolicies","organizations:ListTargetsForPolicy"])")));
    v->push_back(Builtin(
        "IAMReadOnlyAccess", "/",
        "Provides read only access to IAM via the AWS Management Console.",
        allow(
            R"(["iam:GenerateCredentialReport","iam:GenerateServiceLastAccessedDetails","iam:Get*","iam:List*","iam:SimulateCustomPolicy","iam:SimulatePrincipalPolicy"])")));
    v->push_back(Builtin("AmazonS3FullAccess", "/",
                         "Provides full access to all buckets via the AWS Management Console.",
                         allow(R"(["s3:*","s3-object-lambda:*"])")));
    v->push_back(Builtin(
        "AmazonS3ReadOnlyAccess", "/",
        "Provides read only access to all buckets via the AWS Management Console.",
        allow(
            R"(["s3:Get*","s3:List*","s3:Describe*","s3-object-lambda:Get*","s3-object-lambda:List*"])")));
    v->push_back(Builtin("AmazonSQSFullAccess", "/",
                         "Provides full access to Amazon SQS via the AWS Management Console.",
                         allow(R"(["sqs:*"])")));
    v->push_back(Builtin(
        "AWSLambda_FullAccess", "/",
        "Grants full access to AWS Lambda service, AWS Lambda console features, and other related "
        "AWS services.",
        allow(
            R"(["lambda:*","logs:DescribeLogGroups","logs:DescribeLogStreams","logs:GetLogEvents","logs:FilterLogEvents","iam:GetRole","iam:ListRoles","iam:PassRole","states:DescribeStateMachine","states:ListStateMachines","sqs:ListQueues","s3:ListAllMyBuckets","s3:ListBucket","events:ListRules"])")));
    v->push_back(
        Builtin("AWSLambdaBasicExecutionRole", "/service-role/",
                "Provides write permissions to CloudWatch Logs.",
                allow(R"(["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"])")));
    v->push_back(Builtin(
        "AmazonECS_FullAccess", "/", "Provides administrative access to Amazon ECS resources.",
        allow(
            R"(["ecs:*","ecr:*","logs:*","elasticloadbalancing:*","iam:PassRole","iam:ListRoles"])")));
    v->push_back(Builtin("AmazonEC2ContainerRegistryFullAccess", "/",
                         "Provides administrative access to Amazon ECR resources",
                         allow(R"(["ecr:*"])")));
    v->push_back(Builtin(
        "AmazonEC2ContainerRegistryReadOnly", "/",
        "Provides read-only access to Amazon EC2 Container Registry repositories.",
        allow(
            R"(["ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:GetRepositoryPolicy","ecr:DescribeRepositories","ecr:ListImages","ecr:DescribeImages","ecr:BatchGetImage","ecr:GetLifecyclePolicy","ecr:GetLifecyclePolicyPreview","ecr:ListTagsForResource","ecr:DescribeImageScanFindings"])")));
    v->push_back(Builtin(
        "AmazonECSTaskExecutionRolePolicy", "/service-role/",
        "Provides access to other AWS service resources that are required to run Amazon ECS tasks",
        allow(
            R"(["ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:BatchGetImage","logs:CreateLogStream","logs:PutLogEvents"])")));
    v->push_back(Builtin("AWSStepFunctionsFullAccess", "/", "Access to all of AWS Step Functions",
                         allow(R"(["states:*","iam:ListRoles","iam:PassRole"])")));
    v->push_back(Builtin("CloudWatchLogsFullAccess", "/", "Provides full access to CloudWatch Logs",
                         allow(R"(["logs:*"])")));
    return v;
  }();
  return *kPolicies;
}

const ManagedPolicy* FindAwsManagedPolicy(std::string_view arn) {
  for (const auto& p : AwsManagedPolicies())
    if (p.arn == arn) return &p;
  return nullptr;
}

}  // namespace internal
}  // namespace iam
