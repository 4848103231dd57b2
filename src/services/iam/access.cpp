#include "services/iam/access.h"

#include <chrono>

#include "base/strings.h"

namespace iam {

namespace {
// Caches are bounded by clearing them when they grow past this (rare: one entry per key
// or principal in use).
constexpr size_t kMaxCacheEntries = 100000;

std::string AssumedRoleArn(const std::string& account, const std::string& role,
                           const std::string& session) {
  return "arn:aws:sts::" + account + ":assumed-role/" + role + "/" + session;
}
}  // namespace

// ---- Credentials --------------------------------------------------------------------

base::Result<auth::Credential> IamCredentials::Lookup(const std::string& access_key_id) {
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(access_key_id);
    if (it != cache_.end()) {
      if (!it->second) return base::NotFound("unknown access key " + access_key_id);
      return *it->second;
    }
    generation = generation_;
  }
  auto loaded = Load(access_key_id);
  if (!loaded.ok() && loaded.status().code() != base::Code::kNotFound) return loaded;
  std::lock_guard<std::mutex> lock(mu_);
  // An invalidation while we read means what we read may be stale: do not keep it.
  if (generation == generation_) {
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    if (loaded.ok())
      cache_[access_key_id] = loaded.value();
    else
      cache_[access_key_id] = std::nullopt;
  }
  return loaded;
}

base::Result<auth::Credential> IamCredentials::Load(const std::string& access_key_id) {
  auth::Credential c;
  c.access_key_id = access_key_id;
  if (access_key_id.rfind("ASIA", 0) == 0) {
    ASSIGN_OR_RETURN(Session s, iam_.GetSession(access_key_id));
    c.secret_access_key = s.secret;
    c.session_token = s.token;
    c.expiration = s.expiration;
    c.principal.account_id = s.account_id;
    switch (s.kind) {
      case Session::Kind::kRole:
        c.principal.type = auth::PrincipalType::kAssumedRole;
        c.principal.arn = AssumedRoleArn(s.account_id, s.role_name, s.session_name);
        c.principal.user_id = s.role_id + ":" + s.session_name;
        c.principal.name = s.role_name;
        c.principal.session_name = s.session_name;
        c.principal.role_arn = s.role_arn;
        break;
      case Session::Kind::kUser:
        c.principal.type = auth::PrincipalType::kUser;
        c.principal.arn = s.role_arn;
        c.principal.user_id = s.role_id;
        c.principal.name = s.role_name;
        break;
      case Session::Kind::kRoot:
        c.principal.type = auth::PrincipalType::kRoot;
        c.principal.arn = "arn:aws:iam::" + s.account_id + ":root";
        c.principal.user_id = s.account_id;
        break;
    }
    return c;
  }
  if (access_key_id.rfind("AKIA", 0) != 0)
    return base::NotFound("unknown access key " + access_key_id);
  ASSIGN_OR_RETURN(User u, iam_.UserForAccessKey(access_key_id));
  for (const auto& k : u.keys) {
    if (k.id != access_key_id) continue;
    c.secret_access_key = k.secret;
    c.active = k.active;
    c.principal.type = auth::PrincipalType::kUser;
    c.principal.account_id = iam_.account_id();
    c.principal.arn = u.arn;
    c.principal.user_id = u.id;
    c.principal.name = u.name;
    return c;
  }
  return base::NotFound("unknown access key " + access_key_id);
}

void IamCredentials::InvalidateUsers() {
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  // Sessions do not depend on IAM records; keep them.
  std::erase_if(cache_, [](const auto& entry) { return entry.first.rfind("ASIA", 0) != 0; });
}

void IamCredentials::InvalidateKey(const std::string& akid) {
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  cache_.erase(akid);
}

// ---- Authorizer ---------------------------------------------------------------------

std::map<std::string, std::vector<std::string>> IamAuthorizer::ConditionContext(
    const aws::Call& call, const std::map<std::string, std::vector<std::string>>& extra) {
  std::map<std::string, std::vector<std::string>> ctx;
  const auth::Principal& p = call.principal;
  ctx["aws:userid"] = {p.user_id};
  ctx["aws:principalaccount"] = {p.account_id};
  switch (p.type) {
    case auth::PrincipalType::kRoot:
      ctx["aws:principalarn"] = {p.arn};
      ctx["aws:principaltype"] = {"Account"};
      break;
    case auth::PrincipalType::kUser:
      ctx["aws:principalarn"] = {p.arn};
      ctx["aws:principaltype"] = {"User"};
      ctx["aws:username"] = {p.name};
      break;
    case auth::PrincipalType::kAssumedRole:
      ctx["aws:principalarn"] = {p.role_arn};
      ctx["aws:principaltype"] = {"AssumedRole"};
      break;
  }
  if (!call.remote_ip.empty()) ctx["aws:sourceip"] = {call.remote_ip};
  base::SystemTime now = call.now == base::SystemTime{} ? base::SystemClock().Now() : call.now;
  ctx["aws:currenttime"] = {base::FormatIso8601(now)};
  ctx["aws:epochtime"] = {std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count())};
  ctx["aws:securetransport"] = {call.secure ? "true" : "false"};
  if (!call.region.empty()) ctx["aws:requestedregion"] = {call.region};
  for (const auto& [k, v] : extra) ctx[base::ToLower(k)] = v;
  return ctx;
}

std::shared_ptr<const IamAuthorizer::PolicyList> IamAuthorizer::IdentityPolicies(
    Iam::Entity entity, const std::string& name) {
  std::string key = (entity == Iam::Entity::kUser ? "u:" : "r:") + base::ToLower(name);
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = identity_.find(key);
    if (it != identity_.end()) return it->second;
    generation = generation_;
  }
  auto docs = iam_.IdentityPolicyDocuments(entity, name);
  std::shared_ptr<const PolicyList> list;
  if (docs.ok()) {
    auto built = std::make_shared<PolicyList>();
    for (const auto& doc : *docs) {
      auto parsed = auth::ParsePolicy(doc);
      // Stored documents were validated when written; one that no longer parses grants
      // nothing.
      if (parsed.ok()) built->push_back(std::make_shared<const auth::Policy>(std::move(*parsed)));
    }
    list = std::move(built);
  } else if (docs.status().code() != base::Code::kNotFound) {
    return nullptr;  // store trouble: deny, and do not remember it
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (generation == generation_) {
    if (identity_.size() >= kMaxCacheEntries) identity_.clear();
    identity_[key] = list;
  }
  return list;
}

std::shared_ptr<const auth::Policy> IamAuthorizer::SessionPolicy(const std::string& akid,
                                                                 bool* found) {
  *found = true;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(akid);
    if (it != sessions_.end()) return it->second;
    generation = generation_;
  }
  auto session = iam_.GetSession(akid);
  if (!session.ok()) {
    *found = false;
    return nullptr;
  }
  std::shared_ptr<const auth::Policy> policy;
  if (!session->policy.empty()) {
    auto parsed = auth::ParsePolicy(session->policy);
    if (!parsed.ok()) {
      *found = false;  // validated at AssumeRole; treat a broken one as denying everything
      return nullptr;
    }
    policy = std::make_shared<const auth::Policy>(std::move(*parsed));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (generation == generation_) {
    if (sessions_.size() >= kMaxCacheEntries) sessions_.clear();
    sessions_[akid] = policy;
  }
  return policy;
}

auth::Decision IamAuthorizer::Decide(
    const aws::Call& call, std::string_view action, std::string_view resource,
    const std::map<std::string, std::vector<std::string>>& extra_context) {
  const auth::Principal& p = call.principal;
  if (call.anonymous) return auth::Decision::kImplicitDeny;
  if (p.type == auth::PrincipalType::kRoot) return auth::Decision::kAllow;
  // Anyone with valid credentials may ask who they are, even under an explicit deny.
  if (action == "sts:GetCallerIdentity") return auth::Decision::kAllow;

  std::shared_ptr<const PolicyList> identity;
  std::shared_ptr<const auth::Policy> session;
  bool session_ok = true;
  if (p.type == auth::PrincipalType::kUser) {
    identity = IdentityPolicies(Iam::Entity::kUser, p.name);
  } else {
    std::string role = p.name;
    if (role.empty()) role = p.role_arn.substr(p.role_arn.rfind('/') + 1);
    identity = IdentityPolicies(Iam::Entity::kRole, role);
    if (!call.access_key_id.empty()) session = SessionPolicy(call.access_key_id, &session_ok);
  }
  if (!identity || !session_ok) return auth::Decision::kImplicitDeny;

  auth::AuthzRequest request;
  request.action = std::string(action);
  request.resource = std::string(resource);
  request.context = ConditionContext(call, extra_context);
  request.principal = &p;
  std::vector<const auth::Policy*> policies;
  for (const auto& policy : *identity) policies.push_back(policy.get());
  auth::Decision decision = auth::Evaluate(policies, request);
  if (session && decision != auth::Decision::kExplicitDeny) {
    // A session policy can only narrow what the role allows.
    auth::Decision bound = auth::Evaluate({session.get()}, request);
    if (bound != auth::Decision::kAllow) decision = bound;
  }
  return decision;
}

std::optional<aws::Error> IamAuthorizer::Authorize(
    const aws::Call& call, std::string_view action, std::string_view resource,
    const std::map<std::string, std::vector<std::string>>& extra_context) {
  auth::Decision decision = Decide(call, action, resource, extra_context);
  if (decision == auth::Decision::kAllow) return std::nullopt;
  bool json = call.protocol == aws::Protocol::kJson || call.protocol == aws::Protocol::kRestJson;
  std::string message;
  if (action == "sts:AssumeRole") {
    // STS words this one without the reason.
    message = "User: " + call.principal.arn + " is not authorized to perform: sts:AssumeRole " +
              "on resource: " + std::string(resource);
  } else {
    message =
        aws::AccessDeniedMessage(call, action, resource, decision == auth::Decision::kExplicitDeny);
  }
  return aws::MakeError(403, json ? "AccessDeniedException" : "AccessDenied", std::move(message));
}

std::optional<aws::Error> IamAuthorizer::AuthorizeWith(
    const aws::Call& call, const auth::Policy& resource_policy, std::string_view action,
    std::string_view resource,
    const std::map<std::string, std::vector<std::string>>& extra_context) {
  auth::Decision identity = Decide(call, action, resource, extra_context);
  auth::AuthzRequest request;
  request.action = std::string(action);
  request.resource = std::string(resource);
  request.context = ConditionContext(call, extra_context);
  if (call.anonymous) {
    for (const char* k : {"aws:userid", "aws:principalaccount", "aws:principalarn",
                          "aws:principaltype"})
      request.context.erase(k);
  }
  request.principal = call.anonymous ? nullptr : &call.principal;
  auth::Decision resource_decision = auth::EvaluateResourcePolicy(resource_policy, request);
  // The account root may always manage the policy itself, so it cannot lock itself out.
  bool policy_admin = call.principal.type == auth::PrincipalType::kRoot && !call.anonymous &&
                      (action == "s3:GetBucketPolicy" || action == "s3:PutBucketPolicy" ||
                       action == "s3:DeleteBucketPolicy");
  bool explicit_deny = identity == auth::Decision::kExplicitDeny ||
                       (resource_decision == auth::Decision::kExplicitDeny && !policy_admin);
  if (!explicit_deny &&
      (identity == auth::Decision::kAllow || resource_decision == auth::Decision::kAllow))
    return std::nullopt;
  bool json = call.protocol == aws::Protocol::kJson || call.protocol == aws::Protocol::kRestJson;
  std::string message = "Access Denied";
  if (!call.anonymous && call.protocol != aws::Protocol::kRestXml)
    message = aws::AccessDeniedMessage(call, action, resource, explicit_deny);
  return aws::MakeError(403, json ? "AccessDeniedException" : "AccessDenied", std::move(message));
}

void IamAuthorizer::InvalidateAll() {
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  identity_.clear();
}

void IamAuthorizer::InvalidateSession(const std::string& akid) {
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  sessions_.erase(akid);
}

}  // namespace iam
