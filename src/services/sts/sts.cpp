#include "services/sts/sts.h"

#include <string>

#include "auth/policy.h"
#include "aws/query.h"
#include "aws/xml.h"
#include "base/strings.h"
#include "services/iam/access.h"
#include "services/iam/records.h"

namespace sts {

namespace {

using aws::Call;
using aws::Outcome;
using aws::QueryParams;
using aws::XmlWriter;

constexpr std::string_view kXmlns = "https://sts.amazonaws.com/doc/2011-06-15/";
constexpr int64_t kMaxRoleDuration = 43200;
constexpr int64_t kChainedMaxDuration = 3600;
constexpr size_t kMaxSessionPolicySize = 2048;

aws::Error Validation(std::string message) {
  return aws::MakeError(400, "ValidationError", std::move(message));
}

std::string Violation(std::string_view value, std::string_view field, std::string_view what) {
  return "1 validation error detected: Value '" + std::string(value) + "' at '" +
         std::string(field) + "' failed to satisfy constraint: " + std::string(what);
}

aws::Error Internal(const base::Status& s) {
  return aws::MakeError(500, "InternalFailure", "STS failed: " + s.message());
}

// The message STS uses for every AssumeRole refusal (unknown role, trust says no, ...).
aws::Error AssumeDenied(const Call& call, std::string_view role_arn) {
  return aws::MakeError(
      403, "AccessDenied",
      "User: " + call.principal.arn +
          " is not authorized to perform: sts:AssumeRole on resource: " + std::string(role_arn));
}

// RoleArn as STS validates it: six ':'-separated parts, non-empty partition, service and
// resource. "X is invalid" otherwise.
Outcome<std::string> RoleArnParam(const QueryParams& p) {
  auto arn = p.Required("RoleArn");
  if (!arn.ok()) return arn.error();
  if (arn.value().size() < 20 || arn.value().size() > 2048 || !iam::internal::ParseArn(arn.value()))
    return Validation(arn.value() + " is invalid");
  return arn;
}

bool SessionNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '+' || c == '=' || c == ',' || c == '.' || c == '@' || c == '-';
}

Outcome<std::string> SessionNameParam(const QueryParams& p) {
  auto name = p.Required("RoleSessionName");
  if (!name.ok()) return name.error();
  const std::string& n = name.value();
  for (char c : n)
    if (!SessionNameChar(c))
      return Validation(Violation(n, "roleSessionName",
                                  "Member must satisfy regular expression pattern: [\\w+=,.@-]*"));
  if (n.size() < 2)
    return Validation(
        Violation(n, "roleSessionName", "Member must have length greater than or equal to 2"));
  if (n.size() > 64)
    return Validation(
        Violation(n, "roleSessionName", "Member must have length less than or equal to 64"));
  return name;
}

// DurationSeconds within [kMinDuration, max_allowed]; `fallback` when absent.
Outcome<int64_t> DurationParam(const QueryParams& p, int64_t min_allowed, int64_t fallback,
                               int64_t max_allowed) {
  const std::string* v = p.Find("DurationSeconds");
  if (v == nullptr) return fallback;
  auto n = base::ParseInt(*v);
  if (!n) return Validation(Violation(*v, "durationSeconds", "Member must be an integer"));
  if (*n < min_allowed)
    return Validation(Violation(
        *v, "durationSeconds",
        "Member must have value greater than or equal to " + std::to_string(min_allowed)));
  if (*n > max_allowed)
    return Validation(
        Violation(*v, "durationSeconds",
                  "Member must have value less than or equal to " + std::to_string(max_allowed)));
  return *n;
}

void CredentialsXml(XmlWriter& w, const iam::Session& s) {
  w.Open("Credentials")
      .Element("AccessKeyId", s.access_key_id)
      .Element("SecretAccessKey", s.secret)
      .Element("SessionToken", s.token)
      .Element("Expiration", base::FormatIso8601(s.expiration))
      .Close();
}

// A rough stand-in for AWS's packed (compressed) size, as a percentage of the limit.
int64_t PackedPolicySize(std::string_view policy) {
  size_t n = 0;
  for (char c : policy)
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') ++n;
  return static_cast<int64_t>((n * 100 + kMaxSessionPolicySize * 4 - 1) /
                              (kMaxSessionPolicySize * 4));
}

// The role an ARN names in this account, or nullopt (STS answers AccessDenied then).
std::optional<iam::Role> FindRole(iam::Iam& iam, std::string_view role_arn, base::Status* error) {
  auto arn = iam::internal::ParseArn(role_arn);
  if (!arn || arn->service != "iam" || arn->account != iam.account_id() ||
      arn->resource.rfind("role/", 0) != 0)
    return std::nullopt;
  std::string name = arn->resource.substr(arn->resource.rfind('/') + 1);
  auto role = iam.GetRole(name);
  if (!role.ok()) {
    if (role.status().code() != base::Code::kNotFound) *error = role.status();
    return std::nullopt;
  }
  if (role->arn != role_arn) return std::nullopt;
  return std::move(role).value();
}

class StsApi {
 public:
  explicit StsApi(iam::Iam& iam) : iam_(iam) {}
  std::unique_ptr<aws::QueryService> Build();

 private:
  Outcome<std::string> GetCallerIdentity(const QueryParams& p, Call& call);
  Outcome<std::string> AssumeRole(const QueryParams& p, Call& call);
  Outcome<std::string> GetSessionToken(const QueryParams& p, Call& call);
  Outcome<std::string> GetAccessKeyInfo(const QueryParams& p, Call& call);

  int64_t MinDuration() const { return iam_.options().min_session_duration.count(); }

  iam::Iam& iam_;
};

Outcome<std::string> StsApi::GetCallerIdentity(const QueryParams&, Call& call) {
  const auth::Principal& pr = call.principal;
  std::string account = pr.account_id.empty() ? iam_.account_id() : pr.account_id;
  XmlWriter w;
  w.Element("Arn", pr.arn.empty() ? "arn:aws:iam::" + account + ":root" : pr.arn)
      .Element("UserId", pr.user_id.empty() ? account : pr.user_id)
      .Element("Account", account);
  return w.Finish();
}

Outcome<std::string> StsApi::AssumeRole(const QueryParams& p, Call& call) {
  auto role_arn = RoleArnParam(p);
  if (!role_arn.ok()) return role_arn.error();
  auto session_name = SessionNameParam(p);
  if (!session_name.ok()) return session_name.error();
  bool chained = call.principal.type == auth::PrincipalType::kAssumedRole;
  auto duration = DurationParam(p, MinDuration(), 3600, kMaxRoleDuration);
  if (!duration.ok()) return duration.error();

  std::string policy = p.Get("Policy");
  if (p.Has("Policy")) {
    if (policy.size() > kMaxSessionPolicySize)
      return Validation(
          Violation(policy, "policy", "Member must have length less than or equal to 2048"));
    base::Status valid =
        iam::internal::ValidatePolicyDocument(policy, iam::internal::DocumentKind::kSession);
    if (!valid.ok())
      return aws::MakeError(400, "MalformedPolicyDocument", iam::PolicyErrorMessage(valid));
  }

  base::Status lookup_error;
  auto role = FindRole(iam_, role_arn.value(), &lookup_error);
  if (!lookup_error.ok()) return Internal(lookup_error);
  if (!role) return AssumeDenied(call, role_arn.value());

  // The role's trust policy must name the caller (identity policies were checked by the
  // operation table before we got here).
  auto trust = auth::ParsePolicy(role->trust_policy, auth::PolicyKind::kResource);
  if (!trust.ok()) return AssumeDenied(call, role_arn.value());
  auth::AuthzRequest request;
  request.action = "sts:AssumeRole";
  request.resource = role->arn;
  request.context = iam::IamAuthorizer::ConditionContext(call, {});
  request.principal = &call.principal;
  if (auth::EvaluateResourcePolicy(*trust, request) != auth::Decision::kAllow)
    return AssumeDenied(call, role_arn.value());

  if (duration.value() > role->max_session_duration)
    return Validation(
        "The requested DurationSeconds exceeds the MaxSessionDuration set for "
        "this role.");
  if (chained && duration.value() > kChainedMaxDuration)
    return Validation(
        "The requested DurationSeconds exceeds the 1 hour session limit for roles "
        "assumed by role chaining.");

  iam::Session s;
  s.kind = iam::Session::Kind::kRole;
  s.account_id = iam_.account_id();
  s.role_name = role->name;
  s.role_arn = role->arn;
  s.role_id = role->id;
  s.session_name = session_name.value();
  s.policy = policy;
  s.source_identity_arn = call.principal.arn;
  auto created = iam_.CreateSession(std::move(s), std::chrono::seconds(duration.value()));
  if (!created.ok()) return Internal(created.status());

  XmlWriter w;
  CredentialsXml(w, *created);
  w.Open("AssumedRoleUser")
      .Element("AssumedRoleId", created->role_id + ":" + created->session_name)
      .Element("Arn", "arn:aws:sts::" + created->account_id + ":assumed-role/" +
                          created->role_name + "/" + created->session_name)
      .Close();
  if (!policy.empty()) w.Element("PackedPolicySize", std::to_string(PackedPolicySize(policy)));
  return w.Finish();
}

Outcome<std::string> StsApi::GetSessionToken(const QueryParams& p, Call& call) {
  const auth::Principal& pr = call.principal;
  if (pr.type == auth::PrincipalType::kAssumedRole || call.access_key_id.rfind("ASIA", 0) == 0)
    return aws::MakeError(403, "AccessDenied",
                          "Cannot call GetSessionToken with session credentials");
  bool root = pr.type == auth::PrincipalType::kRoot;
  // Root sessions last at most an hour; users' up to 36 hours (12 by default).
  auto duration = DurationParam(p, MinDuration(), root ? 3600 : 43200, root ? 3600 : 129600);
  if (!duration.ok()) return duration.error();
  iam::Session s;
  s.kind = root ? iam::Session::Kind::kRoot : iam::Session::Kind::kUser;
  s.account_id = pr.account_id.empty() ? iam_.account_id() : pr.account_id;
  s.role_name = pr.name;
  s.role_arn = pr.arn;
  s.role_id = pr.user_id;
  s.source_identity_arn = pr.arn;
  auto created = iam_.CreateSession(std::move(s), std::chrono::seconds(duration.value()));
  if (!created.ok()) return Internal(created.status());
  XmlWriter w;
  CredentialsXml(w, *created);
  return w.Finish();
}

Outcome<std::string> StsApi::GetAccessKeyInfo(const QueryParams& p, Call&) {
  auto key = p.Required("AccessKeyId");
  if (!key.ok()) return key.error();
  const std::string& k = key.value();
  if (k.size() < 16 || k.size() > 128)
    return Validation(Violation(k, "accessKeyId",
                                k.size() < 16
                                    ? "Member must have length greater than or equal to 16"
                                    : "Member must have length less than or equal to 128"));
  // Every key this server issues belongs to its one account.
  XmlWriter w;
  w.Element("Account", iam_.account_id());
  return w.Finish();
}

std::unique_ptr<aws::QueryService> StsApi::Build() {
  auto s = std::make_unique<aws::QueryService>("sts", std::string(kXmlns), "2011-06-15");
  s->Add({"GetCallerIdentity", "sts:GetCallerIdentity", {}, [this](const QueryParams& p, Call& c) {
            return GetCallerIdentity(p, c);
          }});
  s->Add({"AssumeRole", "sts:AssumeRole",
          [](const QueryParams& p, const Call&) { return RoleArnParam(p); },
          [this](const QueryParams& p, Call& c) { return AssumeRole(p, c); }});
  s->Add({"GetSessionToken", "sts:GetSessionToken", {}, [this](const QueryParams& p, Call& c) {
            return GetSessionToken(p, c);
          }});
  s->Add({"GetAccessKeyInfo", "sts:GetAccessKeyInfo", {}, [this](const QueryParams& p, Call& c) {
            return GetAccessKeyInfo(p, c);
          }});
  return s;
}

class StsService : public aws::Service {
 public:
  explicit StsService(iam::Iam& iam) : api_(std::make_unique<StsApi>(iam)), query_(api_->Build()) {}
  std::string_view signing_name() const override { return "sts"; }
  aws::Protocol protocol() const override { return aws::Protocol::kQuery; }
  void Handle(Call& call, http::Request&& request, http::Responder respond) override {
    query_->Handle(call, std::move(request), std::move(respond));
  }

 private:
  std::unique_ptr<StsApi> api_;
  std::unique_ptr<aws::QueryService> query_;
};

}  // namespace

std::unique_ptr<aws::Service> MakeStsService(iam::Iam& iam) {
  return std::make_unique<StsService>(iam);
}

base::Result<iam::Session> AssumeRoleForService(iam::Iam& iam, std::string_view role_arn,
                                                std::string_view service_principal,
                                                std::string_view session_name,
                                                std::chrono::seconds duration) {
  base::Status lookup_error;
  auto role = FindRole(iam, role_arn, &lookup_error);
  if (!lookup_error.ok()) return lookup_error;
  if (!role)
    return base::NotFound("The role with ARN " + std::string(role_arn) + " cannot be found.");
  auto trust = auth::ParsePolicy(role->trust_policy, auth::PolicyKind::kResource);
  if (!trust.ok())
    return base::PermissionDenied("the trust policy of " + role->arn + " is invalid");
  auth::AuthzRequest request;
  request.action = "sts:AssumeRole";
  request.resource = role->arn;
  request.context["aws:principalservicename"] = {std::string(service_principal)};
  if (auth::EvaluateResourcePolicy(*trust, request) != auth::Decision::kAllow)
    return base::PermissionDenied(std::string(service_principal) + " is not trusted by " +
                                  role->arn);
  iam::Session s;
  s.kind = iam::Session::Kind::kRole;
  s.account_id = iam.account_id();
  s.role_name = role->name;
  s.role_arn = role->arn;
  s.role_id = role->id;
  s.session_name = std::string(session_name);
  s.source_identity_arn = std::string(service_principal);
  return iam.CreateSession(std::move(s), duration);
}

}  // namespace sts
