// The IAM Query API: decodes form parameters, calls iam::Iam, answers in IAM's XML.
// Every operation names its IAM action and resource ARN so QueryService authorizes it
// before the handler runs.
#include <algorithm>
#include <limits>
#include <optional>

#include "aws/query.h"
#include "aws/xml.h"
#include "base/strings.h"
#include "services/iam/iam.h"
#include "services/iam/records.h"

namespace iam {

namespace {

using aws::Call;
using aws::Outcome;
using aws::QueryOperation;
using aws::QueryParams;
using aws::XmlWriter;

constexpr std::string_view kXmlns = "https://iam.amazonaws.com/doc/2010-05-08/";

aws::Error ToError(const base::Status& s) {
  if (IsMalformedPolicy(s))
    return aws::MakeError(400, "MalformedPolicyDocument", PolicyErrorMessage(s));
  switch (s.code()) {
    case base::Code::kInvalidArgument:
      return aws::MakeError(400, "ValidationError", s.message());
    case base::Code::kNotFound:
      return aws::MakeError(404, "NoSuchEntity", s.message());
    case base::Code::kAlreadyExists:
      return aws::MakeError(409, "EntityAlreadyExists", s.message());
    case base::Code::kFailedPrecondition:
      return aws::MakeError(409, "DeleteConflict", s.message());
    case base::Code::kResourceExhausted:
      return aws::MakeError(409, "LimitExceeded", s.message());
    case base::Code::kAborted:
      return aws::MakeError(409, "ConcurrentModification", s.message());
    case base::Code::kPermissionDenied:
      return aws::MakeError(403, "AccessDenied", s.message());
    default:
      return aws::MakeError(500, "ServiceFailure",
                            "The request processing has failed because of an unknown error, "
                            "exception or failure.");
  }
}

#define IAM_TRY(expr)                   \
  do {                                  \
    ::base::Status _st = (expr);        \
    if (!_st.ok()) return ToError(_st); \
  } while (0)

#define IAM_ASSIGN(lhs, expr) IAM_ASSIGN_IMPL(STRATUS_CONCAT(_r_, __LINE__), lhs, expr)
#define IAM_ASSIGN_IMPL(tmp, lhs, expr)        \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return ToError(tmp.status()); \
  lhs = std::move(tmp).value()

#define IAM_REQUIRE(var, params, name)         \
  auto var##_or = (params).Required(name);     \
  if (!var##_or.ok()) return var##_or.error(); \
  const std::string var = var##_or.value()

std::string Date(base::SystemTime t) { return base::FormatIso8601(t); }
std::string Bool(bool b) { return b ? "true" : "false"; }
// IAM returns policy documents URL-encoded.
std::string EncodeDocument(std::string_view doc) { return base::UriEncode(doc); }

void TagsXml(XmlWriter& w, const std::vector<Tag>& tags, bool always = false) {
  if (tags.empty() && !always) return;
  w.Open("Tags");
  for (const auto& t : tags)
    w.Open("member").Element("Key", t.key).Element("Value", t.value).Close();
  w.Close();
}

std::vector<Tag> TagsParam(const QueryParams& p) {
  std::vector<Tag> tags;
  for (auto& [k, v] : p.KeyValueList("Tags", "Key", "Value")) tags.push_back({k, v});
  return tags;
}

void UserXml(XmlWriter& w, const User& u, bool with_tags, std::string_view tag = "User") {
  w.Open(tag)
      .Element("Path", u.path)
      .Element("UserName", u.name)
      .Element("UserId", u.id)
      .Element("Arn", u.arn)
      .Element("CreateDate", Date(u.create_date));
  if (with_tags) TagsXml(w, u.tags);
  w.Close();
}

enum class RoleView { kCreate, kGet, kList };
void RoleXml(XmlWriter& w, const Role& r, RoleView view, std::string_view tag = "Role") {
  w.Open(tag)
      .Element("Path", r.path)
      .Element("RoleName", r.name)
      .Element("RoleId", r.id)
      .Element("Arn", r.arn)
      .Element("CreateDate", Date(r.create_date))
      .Element("AssumeRolePolicyDocument", EncodeDocument(r.trust_policy));
  if (!r.description.empty()) w.Element("Description", r.description);
  if (view != RoleView::kCreate)
    w.Element("MaxSessionDuration", std::to_string(r.max_session_duration));
  if (view == RoleView::kGet) w.Open("RoleLastUsed").Close();
  if (view != RoleView::kList) TagsXml(w, r.tags);
  w.Close();
}

void PolicyXml(XmlWriter& w, const ManagedPolicy& p, bool full, std::string_view tag = "Policy") {
  w.Open(tag)
      .Element("PolicyName", p.name)
      .Element("PolicyId", p.id)
      .Element("Arn", p.arn)
      .Element("Path", p.path)
      .Element("DefaultVersionId", p.default_version)
      .Element("AttachmentCount", std::to_string(p.attachment_count))
      .Element("PermissionsBoundaryUsageCount", "0")
      .Element("IsAttachable", "true");
  if (full && !p.description.empty()) w.Element("Description", p.description);
  w.Element("CreateDate", Date(p.create_date)).Element("UpdateDate", Date(p.update_date));
  if (full) TagsXml(w, p.tags);
  w.Close();
}

void VersionXml(XmlWriter& w, const PolicyVersion& v, bool is_default, bool with_document,
                std::string_view tag = "PolicyVersion") {
  w.Open(tag);
  if (with_document) w.Element("Document", EncodeDocument(v.document));
  w.Element("VersionId", v.id)
      .Element("IsDefaultVersion", Bool(is_default))
      .Element("CreateDate", Date(v.create_date));
  w.Close();
}

void TruncationXml(XmlWriter& w, bool truncated, const std::string& marker) {
  w.Element("IsTruncated", Bool(truncated));
  if (truncated) w.Element("Marker", marker);
}

// Marker / MaxItems, validated as IAM does.
Outcome<PageRequest> PageParams(const QueryParams& p) {
  PageRequest page;
  page.marker = p.Get("Marker");
  if (const std::string* max = p.Find("MaxItems")) {
    auto n = base::ParseInt(*max);
    if (!n || *n < 1 || *n > 1000)
      return aws::MakeError(
          400, "ValidationError",
          "1 validation error detected: Value '" + *max +
              "' at 'maxItems' failed to satisfy constraint: Member must have value " +
              (n && *n > 1000 ? "less than or equal to 1000" : "greater than or equal to 1"));
    page.max_items = *n;
  }
  return page;
}

// Pages a small in-memory list whose items are keyed by `key(item)`.
template <typename T, typename KeyFn>
Page<T> SliceList(std::vector<T> items, const PageRequest& page, KeyFn key) {
  Page<T> out;
  for (auto& item : items) {
    std::string k = key(item);
    if (!page.marker.empty() && k <= page.marker) continue;
    if (static_cast<int64_t>(out.items.size()) == page.max_items) {
      out.truncated = true;
      break;
    }
    out.next_marker = k;
    out.items.push_back(std::move(item));
  }
  if (!out.truncated) out.next_marker.clear();
  return out;
}

Outcome<bool> BoolParam(const QueryParams& p, std::string_view name, bool fallback) {
  const std::string* v = p.Find(name);
  if (v == nullptr) return fallback;
  if (base::EqualsIgnoreCase(*v, "true")) return true;
  if (base::EqualsIgnoreCase(*v, "false")) return false;
  return aws::MakeError(400, "ValidationError",
                        "1 validation error detected: Value '" + *v + "' at '" +
                            base::ToLower(name.substr(0, 1)) + std::string(name.substr(1)) +
                            "' failed to satisfy constraint: Member must be a boolean");
}

aws::Error NonUserCaller() {
  return aws::MakeError(400, "ValidationError",
                        "Must specify userName when calling with non-User credentials");
}

class IamApi {
 public:
  explicit IamApi(Iam& iam) : iam_(iam) {}

  std::unique_ptr<aws::QueryService> Build();

 private:
  // The user an operation applies to: UserName, or the calling user when omitted.
  Outcome<std::string> TargetUser(const QueryParams& p, const Call& call) const {
    if (const std::string* name = p.Find("UserName")) return *name;
    if (call.principal.type == auth::PrincipalType::kUser) return call.principal.name;
    return NonUserCaller();
  }

  // Resource ARNs: the real path when the entity exists, else the Path parameter or "/".
  std::string UserResource(const std::string& name, const QueryParams& p) const {
    auto u = iam_.GetUser(name);
    if (u.ok()) return u->arn;
    return iam_.UserArn(p.Get("Path", "/"), name);
  }
  std::string RoleResource(const std::string& name, const QueryParams& p) const {
    auto r = iam_.GetRole(name);
    if (r.ok()) return r->arn;
    return iam_.RoleArn(p.Get("Path", "/"), name);
  }

  auto UserArnFn() {
    return [this](const QueryParams& p, const Call& call) -> Outcome<std::string> {
      if (!p.Has("UserName") && call.principal.type != auth::PrincipalType::kUser) {
        // GetUser on oneself as root/role: the caller's own ARN.
        return call.principal.arn.empty() ? std::string("*") : call.principal.arn;
      }
      auto name = TargetUser(p, call);
      if (!name.ok()) return name.error();
      return UserResource(name.value(), p);
    };
  }
  auto RequiredUserArnFn() {
    return [this](const QueryParams& p, const Call&) -> Outcome<std::string> {
      IAM_REQUIRE(name, p, "UserName");
      return UserResource(name, p);
    };
  }
  auto RoleArnFn() {
    return [this](const QueryParams& p, const Call&) -> Outcome<std::string> {
      IAM_REQUIRE(name, p, "RoleName");
      return RoleResource(name, p);
    };
  }
  static auto PolicyArnFn() {
    return [](const QueryParams& p, const Call&) -> Outcome<std::string> {
      IAM_REQUIRE(arn, p, "PolicyArn");
      return arn;
    };
  }

  void AddUsers(aws::QueryService& s);
  void AddAccessKeys(aws::QueryService& s);
  void AddRoles(aws::QueryService& s);
  void AddPolicies(aws::QueryService& s);
  void AddAttachments(aws::QueryService& s, Iam::Entity entity);
  void AddExtras(aws::QueryService& s);

  Iam& iam_;
};

void IamApi::AddUsers(aws::QueryService& s) {
  s.Add({"CreateUser", "iam:CreateUser",
         [this](const QueryParams& p, const Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "UserName");
           return iam_.UserArn(p.Get("Path", "/"), name);
         },
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "UserName");
           IAM_ASSIGN(User u, iam_.CreateUser(name, p.Get("Path", "/"), TagsParam(p)));
           XmlWriter w;
           UserXml(w, u, true);
           return w.Finish();
         }});

  s.Add({"GetUser", "iam:GetUser", UserArnFn(),
         [this](const QueryParams& p, Call& call) -> Outcome<std::string> {
           XmlWriter w;
           if (!p.Has("UserName") && call.principal.type == auth::PrincipalType::kRoot) {
             // The root user, as AWS answers it: no name or path.
             w.Open("User")
                 .Element("UserId", call.principal.account_id.empty() ? iam_.account_id()
                                                                      : call.principal.account_id)
                 .Element("Arn", call.principal.arn)
                 .Element("CreateDate", Date(iam_.account_created()))
                 .Close();
             return w.Finish();
           }
           auto name = TargetUser(p, call);
           if (!name.ok()) return name.error();
           IAM_ASSIGN(User u, iam_.GetUser(name.value()));
           UserXml(w, u, true);
           return w.Finish();
         }});

  s.Add({"ListUsers",
         "iam:ListUsers",
         {},
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           auto page = PageParams(p);
           if (!page.ok()) return page.error();
           IAM_ASSIGN(Page<User> users, iam_.ListUsers(p.Get("PathPrefix"), page.value()));
           XmlWriter w;
           w.Open("Users");
           for (const auto& u : users.items) UserXml(w, u, false, "member");
           w.Close();
           TruncationXml(w, users.truncated, users.next_marker);
           return w.Finish();
         }});

  s.Add({"DeleteUser", "iam:DeleteUser", RequiredUserArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "UserName");
           IAM_TRY(iam_.DeleteUser(name));
           return std::string();
         }});

  s.Add({"UpdateUser", "iam:UpdateUser", RequiredUserArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "UserName");
           IAM_TRY(iam_.UpdateUser(name, p.Get("NewUserName"), p.Get("NewPath")));
           return std::string();
         }});

  s.Add({"TagUser", "iam:TagUser", RequiredUserArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "UserName");
           IAM_TRY(iam_.TagUser(name, TagsParam(p)));
           return std::string();
         }});

  s.Add({"UntagUser", "iam:UntagUser", RequiredUserArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "UserName");
           IAM_TRY(iam_.UntagUser(name, p.List("TagKeys")));
           return std::string();
         }});

  s.Add({"ListUserTags", "iam:ListUserTags", RequiredUserArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "UserName");
           auto page = PageParams(p);
           if (!page.ok()) return page.error();
           IAM_ASSIGN(User u, iam_.GetUser(name));
           auto tags = SliceList(u.tags, page.value(), [](const Tag& t) { return t.key; });
           XmlWriter w;
           TagsXml(w, tags.items, true);
           TruncationXml(w, tags.truncated, tags.next_marker);
           return w.Finish();
         }});
}

void IamApi::AddAccessKeys(aws::QueryService& s) {
  s.Add({"CreateAccessKey", "iam:CreateAccessKey", UserArnFn(),
         [this](const QueryParams& p, Call& call) -> Outcome<std::string> {
           auto name = TargetUser(p, call);
           if (!name.ok()) return name.error();
           IAM_ASSIGN(User u, iam_.GetUser(name.value()));
           IAM_ASSIGN(AccessKey k, iam_.CreateAccessKey(u.name));
           XmlWriter w;
           w.Open("AccessKey")
               .Element("UserName", u.name)
               .Element("AccessKeyId", k.id)
               .Element("Status", "Active")
               .Element("SecretAccessKey", k.secret)
               .Element("CreateDate", Date(k.create_date))
               .Close();
           return w.Finish();
         }});

  s.Add({"ListAccessKeys", "iam:ListAccessKeys", UserArnFn(),
         [this](const QueryParams& p, Call& call) -> Outcome<std::string> {
           auto name = TargetUser(p, call);
           if (!name.ok()) return name.error();
           auto page = PageParams(p);
           if (!page.ok()) return page.error();
           IAM_ASSIGN(User u, iam_.GetUser(name.value()));
           auto keys = SliceList(u.keys, page.value(), [](const AccessKey& k) { return k.id; });
           XmlWriter w;
           w.Open("AccessKeyMetadata");
           for (const auto& k : keys.items)
             w.Open("member")
                 .Element("UserName", u.name)
                 .Element("AccessKeyId", k.id)
                 .Element("Status", k.active ? "Active" : "Inactive")
                 .Element("CreateDate", Date(k.create_date))
                 .Close();
           w.Close();
           TruncationXml(w, keys.truncated, keys.next_marker);
           return w.Finish();
         }});

  s.Add({"DeleteAccessKey", "iam:DeleteAccessKey", UserArnFn(),
         [this](const QueryParams& p, Call& call) -> Outcome<std::string> {
           IAM_REQUIRE(key_id, p, "AccessKeyId");
           auto name = TargetUser(p, call);
           if (!name.ok()) return name.error();
           IAM_TRY(iam_.DeleteAccessKey(name.value(), key_id));
           return std::string();
         }});

  s.Add({"UpdateAccessKey", "iam:UpdateAccessKey", UserArnFn(),
         [this](const QueryParams& p, Call& call) -> Outcome<std::string> {
           IAM_REQUIRE(key_id, p, "AccessKeyId");
           IAM_REQUIRE(status, p, "Status");
           if (status != "Active" && status != "Inactive")
             return aws::MakeError(400, "ValidationError",
                                   "1 validation error detected: Value '" + status +
                                       "' at 'status' failed to satisfy constraint: Member must "
                                       "satisfy enum value set: [Active, Inactive]");
           auto name = TargetUser(p, call);
           if (!name.ok()) return name.error();
           IAM_TRY(iam_.UpdateAccessKey(name.value(), key_id, status == "Active"));
           return std::string();
         }});

  s.Add({"GetAccessKeyLastUsed",
         "iam:GetAccessKeyLastUsed",
         {},
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(key_id, p, "AccessKeyId");
           IAM_ASSIGN(User u, iam_.UserForAccessKey(key_id));
           XmlWriter w;
           w.Element("UserName", u.name)
               .Open("AccessKeyLastUsed")
               .Element("ServiceName", "N/A")
               .Element("Region", "N/A")
               .Close();
           return w.Finish();
         }});
}

void IamApi::AddRoles(aws::QueryService& s) {
  s.Add({"CreateRole", "iam:CreateRole",
         [this](const QueryParams& p, const Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "RoleName");
           return iam_.RoleArn(p.Get("Path", "/"), name);
         },
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "RoleName");
           IAM_REQUIRE(trust, p, "AssumeRolePolicyDocument");
           int64_t max = 0;
           if (const std::string* v = p.Find("MaxSessionDuration")) {
             auto n = base::ParseInt(*v);
             if (!n)
               return aws::MakeError(400, "ValidationError",
                                     "1 validation error detected: Value '" + *v +
                                         "' at 'maxSessionDuration' failed to satisfy "
                                         "constraint: Member must have value greater than or "
                                         "equal to 3600");
             max = *n;
           }
           IAM_ASSIGN(Role r, iam_.CreateRole(name, p.Get("Path", "/"), trust, p.Get("Description"),
                                              max, TagsParam(p)));
           XmlWriter w;
           RoleXml(w, r, RoleView::kCreate);
           return w.Finish();
         }});

  s.Add({"GetRole", "iam:GetRole", RoleArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "RoleName");
           IAM_ASSIGN(Role r, iam_.GetRole(name));
           XmlWriter w;
           RoleXml(w, r, RoleView::kGet);
           return w.Finish();
         }});

  s.Add({"ListRoles",
         "iam:ListRoles",
         {},
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           auto page = PageParams(p);
           if (!page.ok()) return page.error();
           IAM_ASSIGN(Page<Role> roles, iam_.ListRoles(p.Get("PathPrefix"), page.value()));
           XmlWriter w;
           w.Open("Roles");
           for (const auto& r : roles.items) RoleXml(w, r, RoleView::kList, "member");
           w.Close();
           TruncationXml(w, roles.truncated, roles.next_marker);
           return w.Finish();
         }});

  s.Add({"DeleteRole", "iam:DeleteRole", RoleArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "RoleName");
           IAM_TRY(iam_.DeleteRole(name));
           return std::string();
         }});

  s.Add({"UpdateAssumeRolePolicy", "iam:UpdateAssumeRolePolicy", RoleArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "RoleName");
           IAM_REQUIRE(doc, p, "PolicyDocument");
           IAM_TRY(iam_.UpdateAssumeRolePolicy(name, doc));
           return std::string();
         }});

  s.Add({"UpdateRole", "iam:UpdateRole", RoleArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "RoleName");
           std::optional<std::string> description;
           if (p.Has("Description")) description = p.Get("Description");
           int64_t max = 0;
           if (const std::string* v = p.Find("MaxSessionDuration"))
             max = base::ParseInt(*v).value_or(-1);
           IAM_TRY(iam_.UpdateRole(name, description, max));
           return std::string();
         }});

  s.Add({"TagRole", "iam:TagRole", RoleArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "RoleName");
           IAM_TRY(iam_.TagRole(name, TagsParam(p)));
           return std::string();
         }});

  s.Add({"UntagRole", "iam:UntagRole", RoleArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "RoleName");
           IAM_TRY(iam_.UntagRole(name, p.List("TagKeys")));
           return std::string();
         }});

  s.Add({"ListRoleTags", "iam:ListRoleTags", RoleArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "RoleName");
           auto page = PageParams(p);
           if (!page.ok()) return page.error();
           IAM_ASSIGN(Role r, iam_.GetRole(name));
           auto tags = SliceList(r.tags, page.value(), [](const Tag& t) { return t.key; });
           XmlWriter w;
           TagsXml(w, tags.items, true);
           TruncationXml(w, tags.truncated, tags.next_marker);
           return w.Finish();
         }});
}

void IamApi::AddPolicies(aws::QueryService& s) {
  s.Add({"CreatePolicy", "iam:CreatePolicy",
         [this](const QueryParams& p, const Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "PolicyName");
           return "arn:aws:iam::" + iam_.account_id() + ":policy" + p.Get("Path", "/") + name;
         },
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "PolicyName");
           IAM_REQUIRE(doc, p, "PolicyDocument");
           IAM_ASSIGN(ManagedPolicy mp, iam_.CreatePolicy(name, p.Get("Path", "/"), doc,
                                                          p.Get("Description"), TagsParam(p)));
           XmlWriter w;
           PolicyXml(w, mp, false);
           return w.Finish();
         }});

  s.Add({"GetPolicy", "iam:GetPolicy", PolicyArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(arn, p, "PolicyArn");
           IAM_ASSIGN(ManagedPolicy mp, iam_.GetPolicy(arn));
           XmlWriter w;
           PolicyXml(w, mp, true);
           return w.Finish();
         }});

  s.Add({"ListPolicies",
         "iam:ListPolicies",
         {},
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           auto page = PageParams(p);
           if (!page.ok()) return page.error();
           std::string scope_name = p.Get("Scope", "All");
           Iam::Scope scope;
           if (scope_name == "All")
             scope = Iam::Scope::kAll;
           else if (scope_name == "AWS")
             scope = Iam::Scope::kAws;
           else if (scope_name == "Local")
             scope = Iam::Scope::kLocal;
           else
             return aws::MakeError(400, "ValidationError",
                                   "1 validation error detected: Value '" + scope_name +
                                       "' at 'scope' failed to satisfy constraint: Member must "
                                       "satisfy enum value set: [All, AWS, Local]");
           auto only_attached = BoolParam(p, "OnlyAttached", false);
           if (!only_attached.ok()) return only_attached.error();
           IAM_ASSIGN(
               Page<ManagedPolicy> policies,
               iam_.ListPolicies(scope, only_attached.value(), p.Get("PathPrefix"), page.value()));
           XmlWriter w;
           w.Open("Policies");
           for (const auto& mp : policies.items) PolicyXml(w, mp, false, "member");
           w.Close();
           TruncationXml(w, policies.truncated, policies.next_marker);
           return w.Finish();
         }});

  s.Add({"DeletePolicy", "iam:DeletePolicy", PolicyArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(arn, p, "PolicyArn");
           IAM_TRY(iam_.DeletePolicy(arn));
           return std::string();
         }});

  s.Add({"CreatePolicyVersion", "iam:CreatePolicyVersion", PolicyArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(arn, p, "PolicyArn");
           IAM_REQUIRE(doc, p, "PolicyDocument");
           auto set_default = BoolParam(p, "SetAsDefault", false);
           if (!set_default.ok()) return set_default.error();
           IAM_ASSIGN(PolicyVersion v, iam_.CreatePolicyVersion(arn, doc, set_default.value()));
           XmlWriter w;
           VersionXml(w, v, set_default.value(), false);
           return w.Finish();
         }});

  s.Add({"GetPolicyVersion", "iam:GetPolicyVersion", PolicyArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(arn, p, "PolicyArn");
           IAM_REQUIRE(version, p, "VersionId");
           IAM_ASSIGN(ManagedPolicy mp, iam_.GetPolicy(arn));
           IAM_ASSIGN(PolicyVersion v, iam_.GetPolicyVersion(arn, version));
           XmlWriter w;
           VersionXml(w, v, v.id == mp.default_version, true);
           return w.Finish();
         }});

  s.Add({"ListPolicyVersions", "iam:ListPolicyVersions", PolicyArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(arn, p, "PolicyArn");
           auto page = PageParams(p);
           if (!page.ok()) return page.error();
           IAM_ASSIGN(ManagedPolicy mp, iam_.GetPolicy(arn));
           // Newest first, as IAM lists them; the marker is the last version id shown.
           std::vector<PolicyVersion> versions(mp.versions.rbegin(), mp.versions.rend());
           Page<PolicyVersion> out;
           bool skipping = !page.value().marker.empty();
           for (auto& v : versions) {
             if (skipping) {
               if (v.id == page.value().marker) skipping = false;
               continue;
             }
             if (static_cast<int64_t>(out.items.size()) == page.value().max_items) {
               out.truncated = true;
               break;
             }
             out.next_marker = v.id;
             out.items.push_back(std::move(v));
           }
           XmlWriter w;
           w.Open("Versions");
           for (const auto& v : out.items)
             VersionXml(w, v, v.id == mp.default_version, false, "member");
           w.Close();
           TruncationXml(w, out.truncated, out.next_marker);
           return w.Finish();
         }});

  s.Add({"DeletePolicyVersion", "iam:DeletePolicyVersion", PolicyArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(arn, p, "PolicyArn");
           IAM_REQUIRE(version, p, "VersionId");
           IAM_TRY(iam_.DeletePolicyVersion(arn, version));
           return std::string();
         }});

  s.Add({"SetDefaultPolicyVersion", "iam:SetDefaultPolicyVersion", PolicyArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(arn, p, "PolicyArn");
           IAM_REQUIRE(version, p, "VersionId");
           IAM_TRY(iam_.SetDefaultPolicyVersion(arn, version));
           return std::string();
         }});
}

void IamApi::AddAttachments(aws::QueryService& s, Iam::Entity entity) {
  bool user = entity == Iam::Entity::kUser;
  std::string kind = user ? "User" : "Role";
  std::string name_param = kind + "Name";
  auto resource = [this, user, name_param](const QueryParams& p,
                                           const Call&) -> Outcome<std::string> {
    IAM_REQUIRE(name, p, name_param);
    return user ? UserResource(name, p) : RoleResource(name, p);
  };

  s.Add({"Attach" + kind + "Policy", "iam:Attach" + kind + "Policy", resource,
         [this, entity, name_param](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, name_param);
           IAM_REQUIRE(arn, p, "PolicyArn");
           IAM_TRY(iam_.AttachPolicy(entity, name, arn));
           return std::string();
         }});

  s.Add({"Detach" + kind + "Policy", "iam:Detach" + kind + "Policy", resource,
         [this, entity, name_param](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, name_param);
           IAM_REQUIRE(arn, p, "PolicyArn");
           IAM_TRY(iam_.DetachPolicy(entity, name, arn));
           return std::string();
         }});

  s.Add({"ListAttached" + kind + "Policies", "iam:ListAttached" + kind + "Policies", resource,
         [this, entity, name_param](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, name_param);
           auto page = PageParams(p);
           if (!page.ok()) return page.error();
           IAM_ASSIGN(auto attached, iam_.ListAttachedPolicies(entity, name, p.Get("PathPrefix")));
           auto slice =
               SliceList(std::move(attached), page.value(), [](const auto& a) { return a.second; });
           XmlWriter w;
           w.Open("AttachedPolicies");
           for (const auto& [policy_name, arn] : slice.items)
             w.Open("member").Element("PolicyName", policy_name).Element("PolicyArn", arn).Close();
           w.Close();
           TruncationXml(w, slice.truncated, slice.next_marker);
           return w.Finish();
         }});

  s.Add({"Put" + kind + "Policy", "iam:Put" + kind + "Policy", resource,
         [this, entity, name_param](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, name_param);
           IAM_REQUIRE(policy_name, p, "PolicyName");
           IAM_REQUIRE(doc, p, "PolicyDocument");
           IAM_TRY(iam_.PutInlinePolicy(entity, name, policy_name, doc));
           return std::string();
         }});

  s.Add({"Get" + kind + "Policy", "iam:Get" + kind + "Policy", resource,
         [this, entity, name_param](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, name_param);
           IAM_REQUIRE(policy_name, p, "PolicyName");
           IAM_ASSIGN(InlinePolicy ip, iam_.GetInlinePolicy(entity, name, policy_name));
           // The entity's name as stored (IAM names are case-insensitive on input).
           std::string stored = name;
           if (entity == Iam::Entity::kUser) {
             if (auto u = iam_.GetUser(name); u.ok()) stored = u->name;
           } else if (auto r = iam_.GetRole(name); r.ok()) {
             stored = r->name;
           }
           XmlWriter w;
           w.Element(name_param, stored)
               .Element("PolicyName", ip.name)
               .Element("PolicyDocument", EncodeDocument(ip.document));
           return w.Finish();
         }});

  s.Add({"List" + kind + "Policies", "iam:List" + kind + "Policies", resource,
         [this, entity, name_param](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, name_param);
           auto page = PageParams(p);
           if (!page.ok()) return page.error();
           IAM_ASSIGN(std::vector<std::string> names, iam_.ListInlinePolicies(entity, name));
           auto slice = SliceList(std::move(names), page.value(), [](const auto& n) { return n; });
           XmlWriter w;
           w.Open("PolicyNames");
           for (const auto& n : slice.items) w.Element("member", n);
           w.Close();
           TruncationXml(w, slice.truncated, slice.next_marker);
           return w.Finish();
         }});

  s.Add({"Delete" + kind + "Policy", "iam:Delete" + kind + "Policy", resource,
         [this, entity, name_param](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, name_param);
           IAM_REQUIRE(policy_name, p, "PolicyName");
           IAM_TRY(iam_.DeleteInlinePolicy(entity, name, policy_name));
           return std::string();
         }});
}

void IamApi::AddExtras(aws::QueryService& s) {
  // Who a managed policy is attached to (Terraform asks before deleting a policy).
  s.Add({"ListEntitiesForPolicy", "iam:ListEntitiesForPolicy", PolicyArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(arn, p, "PolicyArn");
           IAM_ASSIGN(ManagedPolicy mp, iam_.GetPolicy(arn));
           std::string filter = p.Get("EntityFilter");
           std::string prefix = p.Get("PathPrefix");
           PageRequest all{"", std::numeric_limits<int64_t>::max()};
           XmlWriter w;
           w.Open("PolicyGroups").Close();
           w.Open("PolicyUsers");
           if (filter.empty() || filter == "User") {
             IAM_ASSIGN(Page<User> users, iam_.ListUsers(prefix, all));
             for (const auto& u : users.items)
               if (std::find(u.attached.begin(), u.attached.end(), mp.arn) != u.attached.end())
                 w.Open("member").Element("UserName", u.name).Element("UserId", u.id).Close();
           }
           w.Close().Open("PolicyRoles");
           if (filter.empty() || filter == "Role") {
             IAM_ASSIGN(Page<Role> roles, iam_.ListRoles(prefix, all));
             for (const auto& r : roles.items)
               if (std::find(r.attached.begin(), r.attached.end(), mp.arn) != r.attached.end())
                 w.Open("member").Element("RoleName", r.name).Element("RoleId", r.id).Close();
           }
           w.Close();
           TruncationXml(w, false, "");
           return w.Finish();
         }});

  // No instance profiles here (no EC2); tools that list them before deleting a role get
  // an empty list.
  s.Add({"ListInstanceProfilesForRole", "iam:ListInstanceProfilesForRole", RoleArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "RoleName");
           IAM_ASSIGN(Role r, iam_.GetRole(name));
           (void)r;
           XmlWriter w;
           w.Open("InstanceProfiles").Close();
           TruncationXml(w, false, "");
           return w.Finish();
         }});

  s.Add({"UpdateRoleDescription", "iam:UpdateRoleDescription", RoleArnFn(),
         [this](const QueryParams& p, Call&) -> Outcome<std::string> {
           IAM_REQUIRE(name, p, "RoleName");
           IAM_REQUIRE(description, p, "Description");
           IAM_TRY(iam_.UpdateRole(name, description, 0));
           IAM_ASSIGN(Role r, iam_.GetRole(name));
           XmlWriter w;
           RoleXml(w, r, RoleView::kGet);
           return w.Finish();
         }});
}

std::unique_ptr<aws::QueryService> IamApi::Build() {
  auto s = std::make_unique<aws::QueryService>("iam", std::string(kXmlns), "2010-05-08");
  AddUsers(*s);
  AddAccessKeys(*s);
  AddRoles(*s);
  AddPolicies(*s);
  AddAttachments(*s, Iam::Entity::kUser);
  AddAttachments(*s, Iam::Entity::kRole);
  AddExtras(*s);
  return s;
}

// Owns the operation table's captured IamApi alongside the service.
class IamService : public aws::Service {
 public:
  explicit IamService(Iam& iam) : api_(std::make_unique<IamApi>(iam)), query_(api_->Build()) {}
  std::string_view signing_name() const override { return query_->signing_name(); }
  aws::Protocol protocol() const override { return aws::Protocol::kQuery; }
  void Handle(Call& call, http::Request&& request, http::Responder respond) override {
    query_->Handle(call, std::move(request), std::move(respond));
  }

 private:
  std::unique_ptr<IamApi> api_;
  std::unique_ptr<aws::QueryService> query_;
};

}  // namespace

std::unique_ptr<aws::Service> MakeIamService(Iam& iam) { return std::make_unique<IamService>(iam); }

}  // namespace iam
