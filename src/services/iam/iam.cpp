#include "services/iam/iam.h"

#include <algorithm>
#include <limits>
#include <map>

#include "base/strings.h"
#include "services/iam/access.h"
#include "services/iam/records.h"

namespace iam {

using internal::Decode;
using internal::Encode;

namespace {

constexpr int kMaxAttempts = 16;
constexpr size_t kMaxManagedPolicySize = 6144;
constexpr size_t kMaxTrustPolicySize = 2048;

base::Status Conflict() {
  return base::Aborted(
      "The request was rejected because multiple requests to change this "
      "object were submitted simultaneously. Wait a few minutes and submit "
      "your request again.");
}

base::Status NoSuchUser(std::string_view name) {
  return base::NotFound("The user with name " + std::string(name) + " cannot be found.");
}
base::Status NoSuchRole(std::string_view name) {
  return base::NotFound("The role with name " + std::string(name) + " cannot be found.");
}
base::Status InvalidArn() { return base::InvalidArgument("Invalid ARN:  Could not be parsed!"); }
base::Status PolicyNotFound(std::string_view arn) {
  return base::NotFound("Policy " + std::string(arn) + " was not found.");
}
base::Status PolicyNotAttachable(std::string_view arn) {
  return base::NotFound("Policy " + std::string(arn) + " does not exist or is not attachable.");
}

// IAM counts policy sizes without whitespace.
size_t PolicySize(std::string_view doc) {
  size_t n = 0;
  for (char c : doc)
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') ++n;
  return n;
}

std::string PathOrRoot(std::string_view path) { return path.empty() ? "/" : std::string(path); }

// "arn:aws:iam::ACCT:policy/path/name" → ("/path/", "name").
std::pair<std::string, std::string> PolicyPathAndName(std::string_view arn) {
  size_t slash = arn.find('/');
  size_t last = arn.rfind('/');
  if (slash == std::string_view::npos) return {"/", std::string(arn)};
  return {std::string(arn.substr(slash, last - slash + 1)), std::string(arn.substr(last + 1))};
}

void MergeTags(std::vector<Tag>& into, const std::vector<Tag>& tags) {
  for (const auto& t : tags) {
    auto it = std::find_if(into.begin(), into.end(), [&](const Tag& x) { return x.key == t.key; });
    if (it != into.end())
      it->value = t.value;
    else
      into.push_back(t);
  }
}

void RemoveTags(std::vector<Tag>& from, const std::vector<std::string>& keys) {
  std::erase_if(
      from, [&](const Tag& t) { return std::find(keys.begin(), keys.end(), t.key) != keys.end(); });
}

template <typename T>
Page<T> Paginate(std::vector<std::pair<std::string, T>> items, const PageRequest& page) {
  std::sort(items.begin(), items.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  Page<T> out;
  int64_t max = page.max_items <= 0 ? 100 : page.max_items;
  for (auto& [key, item] : items) {
    if (!page.marker.empty() && key <= page.marker) continue;
    if (static_cast<int64_t>(out.items.size()) == max) {
      out.truncated = true;
      break;
    }
    out.next_marker = key;
    out.items.push_back(std::move(item));
  }
  if (!out.truncated) out.next_marker.clear();
  return out;
}

// Per-entity-type wording and limits, so attach/inline logic is written once.
template <typename T>
struct Traits;
template <>
struct Traits<User> {
  static std::string Key(std::string_view n) { return internal::UserKey(n); }
  static base::Status Missing(std::string_view n) { return NoSuchUser(n); }
  static constexpr std::string_view kWord = "user";
  static constexpr std::string_view kQuota = "PoliciesPerUser";
  static constexpr size_t kInlineLimit = 2048;
};
template <>
struct Traits<Role> {
  static std::string Key(std::string_view n) { return internal::RoleKey(n); }
  static base::Status Missing(std::string_view n) { return NoSuchRole(n); }
  static constexpr std::string_view kWord = "role";
  static constexpr std::string_view kQuota = "PoliciesPerRole";
  static constexpr size_t kInlineLimit = 10240;
};
constexpr size_t kMaxAttachedPolicies = 10;

}  // namespace

Iam::Iam(store::Store* store, const Options& options)
    : options_(options),
      clock_(options.clock ? options.clock : &base::SystemClock()),
      store_(store),
      credentials_(std::make_unique<IamCredentials>(*this)),
      authorizer_(std::make_unique<IamAuthorizer>(*this)) {}

Iam::~Iam() {
  // Stop the watches before the caches they invalidate go away.
  iam_watch_.reset();
  sts_watch_.reset();
}

base::Result<std::unique_ptr<Iam>> OpenIam(store::Store* store, const Options& options) {
  if (store == nullptr) return base::InvalidArgument("OpenIam: no store");
  std::unique_ptr<Iam> iam(new Iam(store, options));
  RETURN_IF_ERROR(iam->InitAccount());
  RETURN_IF_ERROR(iam->StartWatches());
  return iam;
}

auth::CredentialProvider& Credentials(Iam& iam) { return iam.credentials(); }
aws::Authorizer& Authorizer(Iam& iam) { return iam.authorizer(); }

base::Status Iam::StartWatches() {
  ASSIGN_OR_RETURN(iam_watch_, store_->WatchPrefix(
                                   std::string(internal::kIamPrefix), 0,
                                   [this](const std::vector<store::Event>&) { InvalidateIam(); }));
  ASSIGN_OR_RETURN(sts_watch_, store_->WatchPrefix(std::string(internal::kSessionsPrefix), 0,
                                                   [this](const std::vector<store::Event>& events) {
                                                     for (const auto& e : events) {
                                                       std::string akid = e.kv.key.substr(
                                                           internal::kSessionsPrefix.size());
                                                       credentials_->InvalidateKey(akid);
                                                       authorizer_->InvalidateSession(akid);
                                                     }
                                                   }));
  return base::Status::Ok();
}

base::Status Iam::InitAccount() {
  const std::string key = std::string(internal::kIamPrefix) + "account";
  std::string now = std::to_string(base::EpochMillis(clock_->Now()));
  store::Txn txn;
  txn.compares.push_back(store::Compare::KeyMissing(key));
  txn.success.push_back(store::Op::Put(key, now));
  txn.failure.push_back(store::Op::Get(store::KeyRange::Exact(key)));
  ASSIGN_OR_RETURN(store::TxnResult result, store_->Commit(txn));
  std::string stored = now;
  if (!result.succeeded && !result.results.empty() && !result.results[0].kvs.empty())
    stored = result.results[0].kvs[0].value;
  int64_t ms = base::ParseInt(stored).value_or(0);
  account_created_ = base::SystemTime(
      std::chrono::duration_cast<base::SystemTime::duration>(std::chrono::milliseconds(ms)));
  return base::Status::Ok();
}

void Iam::InvalidateIam() {
  credentials_->InvalidateUsers();
  authorizer_->InvalidateAll();
}

template <typename T>
base::Result<std::optional<std::pair<T, store::Revision>>> Iam::Read(const std::string& key) {
  using Out = std::optional<std::pair<T, store::Revision>>;
  ASSIGN_OR_RETURN(std::optional<store::KeyValue> kv, store_->Get(key));
  if (!kv) return Out();
  T record;
  RETURN_IF_ERROR(Decode(kv->value, &record));
  return Out(std::make_pair(std::move(record), kv->mod_revision));
}

template <typename T, typename Fn>
base::Status Iam::Mutate(const std::string& key, const base::Status& missing, Fn mutate) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    ASSIGN_OR_RETURN(auto read, Read<T>(key));
    if (!read) return missing;
    T& record = read->first;
    store::Txn txn;
    txn.compares.push_back(store::Compare::ModRevisionIs(key, read->second));
    bool erase = false;
    RETURN_IF_ERROR(mutate(record, txn, erase));
    if (erase)
      txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(key)));
    else
      txn.success.push_back(store::Op::Put(key, Encode(record)));
    ASSIGN_OR_RETURN(store::TxnResult result, store_->Commit(txn));
    if (result.succeeded) {
      InvalidateIam();
      return base::Status::Ok();
    }
  }
  return Conflict();
}

base::Status Iam::CreateIfMissing(const std::string& key, const std::string& value,
                                  const base::Status& exists) {
  store::Txn txn;
  txn.compares.push_back(store::Compare::KeyMissing(key));
  txn.success.push_back(store::Op::Put(key, value));
  ASSIGN_OR_RETURN(store::TxnResult result, store_->Commit(txn));
  if (!result.succeeded) return exists;
  InvalidateIam();
  return base::Status::Ok();
}

std::string Iam::UserArn(std::string_view path, std::string_view name) const {
  return "arn:aws:iam::" + options_.account_id + ":user" + PathOrRoot(path) + std::string(name);
}
std::string Iam::RoleArn(std::string_view path, std::string_view name) const {
  return "arn:aws:iam::" + options_.account_id + ":role" + PathOrRoot(path) + std::string(name);
}

// ---- Users --------------------------------------------------------------------------

base::Result<User> Iam::CreateUser(std::string_view name, std::string_view path,
                                   std::vector<Tag> tags) {
  RETURN_IF_ERROR(internal::ValidateName(name, "userName", 64));
  std::string p = PathOrRoot(path);
  RETURN_IF_ERROR(internal::ValidatePath(p));
  RETURN_IF_ERROR(internal::ValidateTags(tags));
  User u;
  u.name = std::string(name);
  u.id = internal::NewUniqueId("AIDA");
  u.path = p;
  u.arn = UserArn(p, name);
  u.create_date = clock_->Now();
  u.tags = std::move(tags);
  RETURN_IF_ERROR(CreateIfMissing(
      internal::UserKey(name), Encode(u),
      base::AlreadyExists("User with name " + std::string(name) + " already exists.")));
  return u;
}

base::Result<User> Iam::GetUser(std::string_view name) {
  if (name.empty()) return NoSuchUser(name);
  ASSIGN_OR_RETURN(auto read, Read<User>(internal::UserKey(name)));
  if (!read) return NoSuchUser(name);
  return std::move(read->first);
}

base::Result<Page<User>> Iam::ListUsers(std::string_view path_prefix, const PageRequest& page) {
  ASSIGN_OR_RETURN(store::RangeResult range,
                   store_->Range(store::KeyRange::Prefix(std::string(internal::kUsersPrefix))));
  std::vector<std::pair<std::string, User>> items;
  for (const auto& kv : range.kvs) {
    User u;
    RETURN_IF_ERROR(Decode(kv.value, &u));
    if (!path_prefix.empty() && u.path.rfind(path_prefix, 0) != 0) continue;
    items.emplace_back(base::ToLower(u.name), std::move(u));
  }
  return Paginate(std::move(items), page);
}

base::Status Iam::DeleteUser(std::string_view name) {
  return Mutate<User>(
      internal::UserKey(name), NoSuchUser(name),
      [](User& u, store::Txn&, bool& erase) -> base::Status {
        if (!u.keys.empty())
          return base::FailedPrecondition("Cannot delete entity, must delete access keys first.");
        if (!u.attached.empty())
          return base::FailedPrecondition("Cannot delete entity, must detach all policies first.");
        if (!u.inline_policies.empty())
          return base::FailedPrecondition("Cannot delete entity, must delete policies first.");
        erase = true;
        return base::Status::Ok();
      });
}

base::Status Iam::UpdateUser(std::string_view name, std::string_view new_name,
                             std::string_view new_path) {
  if (!new_name.empty()) RETURN_IF_ERROR(internal::ValidateName(new_name, "newUserName", 64));
  if (!new_path.empty()) RETURN_IF_ERROR(internal::ValidatePath(new_path, "newPath"));
  bool rename = !new_name.empty() && base::ToLower(new_name) != base::ToLower(name);
  std::string new_key = internal::UserKey(new_name);
  return Mutate<User>(
      internal::UserKey(name), NoSuchUser(name),
      [&](User& u, store::Txn& txn, bool& erase) -> base::Status {
        if (!new_name.empty()) u.name = std::string(new_name);
        if (!new_path.empty()) u.path = std::string(new_path);
        u.arn = UserArn(u.path, u.name);
        if (!rename) return base::Status::Ok();
        ASSIGN_OR_RETURN(std::optional<store::KeyValue> existing, store_->Get(new_key));
        if (existing)
          return base::AlreadyExists("User with name " + std::string(new_name) +
                                     " already exists.");
        txn.compares.push_back(store::Compare::KeyMissing(new_key));
        txn.success.push_back(store::Op::Put(new_key, Encode(u)));
        for (const auto& k : u.keys)
          txn.success.push_back(
              store::Op::Put(internal::AccessKeyIndexKey(k.id), base::ToLower(u.name)));
        erase = true;
        return base::Status::Ok();
      });
}

base::Status Iam::TagUser(std::string_view name, const std::vector<Tag>& tags) {
  RETURN_IF_ERROR(internal::ValidateTags(tags));
  return Mutate<User>(internal::UserKey(name), NoSuchUser(name),
                      [&](User& u, store::Txn&, bool&) -> base::Status {
                        MergeTags(u.tags, tags);
                        return internal::ValidateTags(u.tags);
                      });
}

base::Status Iam::UntagUser(std::string_view name, const std::vector<std::string>& keys) {
  return Mutate<User>(internal::UserKey(name), NoSuchUser(name),
                      [&](User& u, store::Txn&, bool&) -> base::Status {
                        RemoveTags(u.tags, keys);
                        return base::Status::Ok();
                      });
}

// ---- Access keys --------------------------------------------------------------------

base::Result<AccessKey> Iam::CreateAccessKey(std::string_view user_name) {
  AccessKey key;
  RETURN_IF_ERROR(Mutate<User>(
      internal::UserKey(user_name), NoSuchUser(user_name),
      [&](User& u, store::Txn& txn, bool&) -> base::Status {
        if (u.keys.size() >= kMaxAccessKeysPerUser)
          return base::ResourceExhausted("Cannot exceed quota for AccessKeysPerUser: " +
                                         std::to_string(kMaxAccessKeysPerUser));
        key.id = internal::NewAccessKeyId("AKIA");
        key.secret = internal::NewSecretKey();
        key.active = true;
        key.create_date = clock_->Now();
        u.keys.push_back(key);
        std::string index = internal::AccessKeyIndexKey(key.id);
        txn.compares.push_back(store::Compare::KeyMissing(index));
        txn.success.push_back(store::Op::Put(index, base::ToLower(u.name)));
        return base::Status::Ok();
      }));
  return key;
}

base::Result<std::vector<AccessKey>> Iam::ListAccessKeys(std::string_view user_name) {
  ASSIGN_OR_RETURN(User u, GetUser(user_name));
  return u.keys;
}

namespace {
base::Status NoSuchKey(std::string_view id) {
  return base::NotFound("The Access Key with id " + std::string(id) + " cannot be found.");
}
}  // namespace

base::Status Iam::DeleteAccessKey(std::string_view user_name, std::string_view key_id) {
  return Mutate<User>(
      internal::UserKey(user_name), NoSuchUser(user_name),
      [&](User& u, store::Txn& txn, bool&) -> base::Status {
        auto n = std::erase_if(u.keys, [&](const AccessKey& k) { return k.id == key_id; });
        if (n == 0) return NoSuchKey(key_id);
        txn.success.push_back(
            store::Op::Delete(store::KeyRange::Exact(internal::AccessKeyIndexKey(key_id))));
        return base::Status::Ok();
      });
}

base::Status Iam::UpdateAccessKey(std::string_view user_name, std::string_view key_id,
                                  bool active) {
  return Mutate<User>(internal::UserKey(user_name), NoSuchUser(user_name),
                      [&](User& u, store::Txn&, bool&) -> base::Status {
                        for (auto& k : u.keys)
                          if (k.id == key_id) {
                            k.active = active;
                            return base::Status::Ok();
                          }
                        return NoSuchKey(key_id);
                      });
}

base::Result<User> Iam::UserForAccessKey(std::string_view key_id) {
  ASSIGN_OR_RETURN(std::optional<store::KeyValue> index,
                   store_->Get(internal::AccessKeyIndexKey(key_id)));
  if (!index) return NoSuchKey(key_id);
  auto user = GetUser(index->value);
  if (!user.ok() && user.status().code() == base::Code::kNotFound) return NoSuchKey(key_id);
  return user;
}

// ---- Roles --------------------------------------------------------------------------

namespace {
base::Status ValidateMaxSession(int64_t seconds) {
  if (seconds < 3600 || seconds > 43200)
    return base::InvalidArgument(
        "1 validation error detected: Value '" + std::to_string(seconds) +
        "' at 'maxSessionDuration' failed to satisfy constraint: Member must have value " +
        (seconds < 3600 ? "greater than or equal to 3600" : "less than or equal to 43200"));
  return base::Status::Ok();
}
base::Status ValidateDescription(std::string_view d) {
  if (d.size() > 1000)
    return base::InvalidArgument("1 validation error detected: Value '" + std::string(d) +
                                 "' at 'description' failed to satisfy constraint: Member must "
                                 "have length less than or equal to 1000");
  return base::Status::Ok();
}
base::Status ValidateTrust(std::string_view doc) {
  RETURN_IF_ERROR(internal::ValidatePolicyDocument(doc, internal::DocumentKind::kTrust));
  if (PolicySize(doc) > kMaxTrustPolicySize)
    return base::ResourceExhausted("Cannot exceed quota for ACLSizePerRole: " +
                                   std::to_string(kMaxTrustPolicySize));
  return base::Status::Ok();
}
}  // namespace

base::Result<Role> Iam::CreateRole(std::string_view name, std::string_view path,
                                   std::string_view trust_policy, std::string_view description,
                                   int64_t max_session_duration, std::vector<Tag> tags) {
  RETURN_IF_ERROR(internal::ValidateName(name, "roleName", 64));
  std::string p = PathOrRoot(path);
  RETURN_IF_ERROR(internal::ValidatePath(p));
  RETURN_IF_ERROR(ValidateDescription(description));
  if (max_session_duration == 0) max_session_duration = 3600;
  RETURN_IF_ERROR(ValidateMaxSession(max_session_duration));
  RETURN_IF_ERROR(internal::ValidateTags(tags));
  RETURN_IF_ERROR(ValidateTrust(trust_policy));
  Role r;
  r.name = std::string(name);
  r.id = internal::NewUniqueId("AROA");
  r.path = p;
  r.arn = RoleArn(p, name);
  r.description = std::string(description);
  r.trust_policy = std::string(trust_policy);
  r.max_session_duration = max_session_duration;
  r.create_date = clock_->Now();
  r.tags = std::move(tags);
  RETURN_IF_ERROR(CreateIfMissing(
      internal::RoleKey(name), Encode(r),
      base::AlreadyExists("Role with name " + std::string(name) + " already exists.")));
  return r;
}

base::Result<Role> Iam::GetRole(std::string_view name) {
  if (name.empty()) return NoSuchRole(name);
  ASSIGN_OR_RETURN(auto read, Read<Role>(internal::RoleKey(name)));
  if (!read) return NoSuchRole(name);
  return std::move(read->first);
}

base::Result<Page<Role>> Iam::ListRoles(std::string_view path_prefix, const PageRequest& page) {
  ASSIGN_OR_RETURN(store::RangeResult range,
                   store_->Range(store::KeyRange::Prefix(std::string(internal::kRolesPrefix))));
  std::vector<std::pair<std::string, Role>> items;
  for (const auto& kv : range.kvs) {
    Role r;
    RETURN_IF_ERROR(Decode(kv.value, &r));
    if (!path_prefix.empty() && r.path.rfind(path_prefix, 0) != 0) continue;
    items.emplace_back(base::ToLower(r.name), std::move(r));
  }
  return Paginate(std::move(items), page);
}

base::Status Iam::DeleteRole(std::string_view name) {
  return Mutate<Role>(
      internal::RoleKey(name), NoSuchRole(name),
      [](Role& r, store::Txn&, bool& erase) -> base::Status {
        if (!r.attached.empty())
          return base::FailedPrecondition("Cannot delete entity, must detach all policies first.");
        if (!r.inline_policies.empty())
          return base::FailedPrecondition("Cannot delete entity, must delete policies first.");
        erase = true;
        return base::Status::Ok();
      });
}

base::Status Iam::UpdateAssumeRolePolicy(std::string_view name, std::string_view trust_policy) {
  RETURN_IF_ERROR(ValidateTrust(trust_policy));
  return Mutate<Role>(internal::RoleKey(name), NoSuchRole(name),
                      [&](Role& r, store::Txn&, bool&) -> base::Status {
                        r.trust_policy = std::string(trust_policy);
                        return base::Status::Ok();
                      });
}

base::Status Iam::UpdateRole(std::string_view name, std::optional<std::string> description,
                             int64_t max_session_duration) {
  if (description) RETURN_IF_ERROR(ValidateDescription(*description));
  if (max_session_duration != 0) RETURN_IF_ERROR(ValidateMaxSession(max_session_duration));
  return Mutate<Role>(internal::RoleKey(name), NoSuchRole(name),
                      [&](Role& r, store::Txn&, bool&) -> base::Status {
                        if (description) r.description = *description;
                        if (max_session_duration != 0)
                          r.max_session_duration = max_session_duration;
                        return base::Status::Ok();
                      });
}

base::Status Iam::TagRole(std::string_view name, const std::vector<Tag>& tags) {
  RETURN_IF_ERROR(internal::ValidateTags(tags));
  return Mutate<Role>(internal::RoleKey(name), NoSuchRole(name),
                      [&](Role& r, store::Txn&, bool&) -> base::Status {
                        MergeTags(r.tags, tags);
                        return internal::ValidateTags(r.tags);
                      });
}

base::Status Iam::UntagRole(std::string_view name, const std::vector<std::string>& keys) {
  return Mutate<Role>(internal::RoleKey(name), NoSuchRole(name),
                      [&](Role& r, store::Txn&, bool&) -> base::Status {
                        RemoveTags(r.tags, keys);
                        return base::Status::Ok();
                      });
}

// ---- Managed policies ---------------------------------------------------------------

namespace {
base::Status ValidateManagedDocument(std::string_view doc) {
  RETURN_IF_ERROR(internal::ValidatePolicyDocument(doc, internal::DocumentKind::kIdentity));
  if (PolicySize(doc) > kMaxManagedPolicySize)
    return base::ResourceExhausted("Cannot exceed quota for PolicySize: " +
                                   std::to_string(kMaxManagedPolicySize));
  return base::Status::Ok();
}
}  // namespace

base::Result<ManagedPolicy> Iam::CreatePolicy(std::string_view name, std::string_view path,
                                              std::string_view document,
                                              std::string_view description, std::vector<Tag> tags) {
  RETURN_IF_ERROR(internal::ValidateName(name, "policyName", 128));
  std::string p = PathOrRoot(path);
  RETURN_IF_ERROR(internal::ValidatePath(p));
  RETURN_IF_ERROR(ValidateDescription(description));
  RETURN_IF_ERROR(internal::ValidateTags(tags));
  RETURN_IF_ERROR(ValidateManagedDocument(document));
  ManagedPolicy mp;
  mp.name = std::string(name);
  mp.id = internal::NewUniqueId("ANPA");
  mp.path = p;
  mp.arn = "arn:aws:iam::" + options_.account_id + ":policy" + p + mp.name;
  mp.description = std::string(description);
  mp.create_date = mp.update_date = clock_->Now();
  mp.versions.push_back({"v1", std::string(document), mp.create_date});
  mp.tags = std::move(tags);
  RETURN_IF_ERROR(
      CreateIfMissing(internal::PolicyKey(name), Encode(mp),
                      base::AlreadyExists("A policy called " + std::string(name) +
                                          " already exists. Duplicate names are not allowed.")));
  return mp;
}

// Finds a policy by ARN. AWS-managed ones come from the built-in table (their
// attachment counts computed by scanning users and roles).
base::Result<ManagedPolicy> Iam::ResolvePolicyArn(std::string_view arn, bool for_attach,
                                                  store::Revision* revision) {
  auto parsed = internal::ParseArn(arn);
  if (!parsed || parsed->service != "iam" || parsed->resource.rfind("policy/", 0) != 0)
    return InvalidArn();
  base::Status missing = for_attach ? PolicyNotAttachable(arn) : PolicyNotFound(arn);
  if (parsed->account == "aws") {
    const ManagedPolicy* p = internal::FindAwsManagedPolicy(arn);
    if (p == nullptr) return missing;
    if (revision) *revision = 0;
    return *p;
  }
  if (parsed->account != options_.account_id) return missing;
  auto [path, name] = PolicyPathAndName(parsed->resource);
  if (name.empty()) return missing;
  ASSIGN_OR_RETURN(auto read, Read<ManagedPolicy>(internal::PolicyKey(name)));
  if (!read || read->first.arn != arn) return missing;
  if (revision) *revision = read->second;
  return std::move(read->first);
}

base::Result<std::map<std::string, int64_t>> Iam::AwsPolicyAttachments() {
  std::map<std::string, int64_t> counts;
  ASSIGN_OR_RETURN(auto users, ListUsers("", {"", std::numeric_limits<int64_t>::max()}));
  ASSIGN_OR_RETURN(auto roles, ListRoles("", {"", std::numeric_limits<int64_t>::max()}));
  auto add = [&](const std::vector<std::string>& arns) {
    for (const auto& arn : arns)
      if (arn.rfind("arn:aws:iam::aws:", 0) == 0) ++counts[arn];
  };
  for (const auto& u : users.items) add(u.attached);
  for (const auto& r : roles.items) add(r.attached);
  return counts;
}

base::Result<ManagedPolicy> Iam::GetPolicy(std::string_view arn) {
  ASSIGN_OR_RETURN(ManagedPolicy p, ResolvePolicyArn(arn, false, nullptr));
  if (p.aws_managed) {
    // Built-in policies have no record to count in; count on demand.
    ASSIGN_OR_RETURN(auto counts, AwsPolicyAttachments());
    p.attachment_count = counts[p.arn];
  }
  return p;
}

base::Result<Page<ManagedPolicy>> Iam::ListPolicies(Scope scope, bool only_attached,
                                                    std::string_view path_prefix,
                                                    const PageRequest& page) {
  std::vector<std::pair<std::string, ManagedPolicy>> items;
  auto keep = [&](const ManagedPolicy& p) {
    if (!path_prefix.empty() && p.path.rfind(path_prefix, 0) != 0) return false;
    if (only_attached && p.attachment_count == 0) return false;
    return true;
  };
  if (scope != Scope::kAws) {
    ASSIGN_OR_RETURN(
        store::RangeResult range,
        store_->Range(store::KeyRange::Prefix(std::string(internal::kPoliciesPrefix))));
    for (const auto& kv : range.kvs) {
      ManagedPolicy p;
      RETURN_IF_ERROR(Decode(kv.value, &p));
      if (keep(p)) items.emplace_back(p.arn, std::move(p));
    }
  }
  if (scope != Scope::kLocal) {
    ASSIGN_OR_RETURN(auto counts, AwsPolicyAttachments());
    for (ManagedPolicy p : internal::AwsManagedPolicies()) {
      p.attachment_count = counts[p.arn];
      if (keep(p)) items.emplace_back(p.arn, std::move(p));
    }
  }
  return Paginate(std::move(items), page);
}

namespace {
// Splits a customer-managed policy ARN into its store key; InvalidArn / not found.
base::Result<std::string> LocalPolicyKey(std::string_view arn, const std::string& account,
                                         bool* aws_managed) {
  auto parsed = internal::ParseArn(arn);
  if (!parsed || parsed->service != "iam" || parsed->resource.rfind("policy/", 0) != 0)
    return InvalidArn();
  *aws_managed = parsed->account == "aws";
  if (parsed->account != account) return PolicyNotFound(arn);
  auto [path, name] = PolicyPathAndName(parsed->resource);
  if (name.empty()) return PolicyNotFound(arn);
  return internal::PolicyKey(name);
}
}  // namespace

base::Status Iam::DeletePolicy(std::string_view arn) {
  bool aws_managed = false;
  auto key = LocalPolicyKey(arn, options_.account_id, &aws_managed);
  if (aws_managed)
    return base::PermissionDenied("AWS managed policies cannot be deleted: " + std::string(arn));
  if (!key.ok()) return key.status();
  return Mutate<ManagedPolicy>(
      *key, PolicyNotFound(arn), [&](ManagedPolicy& p, store::Txn&, bool& erase) -> base::Status {
        if (p.arn != arn) return PolicyNotFound(arn);
        if (p.attachment_count > 0)
          return base::FailedPrecondition("Cannot delete a policy attached to entities.");
        if (p.versions.size() > 1)
          return base::FailedPrecondition(
              "This policy has more than one version. Before you delete a policy, you must "
              "delete the policy's versions. The default version is deleted with the policy.");
        erase = true;
        return base::Status::Ok();
      });
}

namespace {
base::Status NoSuchVersion(std::string_view arn, std::string_view version) {
  return base::NotFound("Policy " + std::string(arn) + " version " + std::string(version) +
                        " does not exist or is not attachable.");
}
base::Status ValidateVersionId(std::string_view v) {
  bool ok = v.size() >= 2 && v[0] == 'v' && base::ParseInt(v.substr(1)).has_value();
  if (!ok)
    return base::InvalidArgument(
        "1 validation error detected: Value '" + std::string(v) +
        "' at 'versionId' failed to satisfy constraint: Member must satisfy regular expression "
        "pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?");
  return base::Status::Ok();
}
}  // namespace

base::Result<PolicyVersion> Iam::CreatePolicyVersion(std::string_view arn,
                                                     std::string_view document,
                                                     bool set_as_default) {
  bool aws_managed = false;
  auto key = LocalPolicyKey(arn, options_.account_id, &aws_managed);
  if (aws_managed)
    return base::PermissionDenied("AWS managed policies cannot be changed: " + std::string(arn));
  if (!key.ok()) return key.status();
  RETURN_IF_ERROR(ValidateManagedDocument(document));
  PolicyVersion version;
  RETURN_IF_ERROR(Mutate<ManagedPolicy>(
      *key, PolicyNotFound(arn), [&](ManagedPolicy& p, store::Txn&, bool&) -> base::Status {
        if (p.arn != arn) return PolicyNotFound(arn);
        if (p.versions.size() >= kMaxPolicyVersions)
          return base::ResourceExhausted(
              "A managed policy can have up to " + std::to_string(kMaxPolicyVersions) +
              " versions. Before you create a new version, you must delete an existing "
              "version.");
        version = {"v" + std::to_string(p.next_version++), std::string(document), clock_->Now()};
        p.versions.push_back(version);
        if (set_as_default) p.default_version = version.id;
        p.update_date = version.create_date;
        return base::Status::Ok();
      }));
  return version;
}

base::Result<PolicyVersion> Iam::GetPolicyVersion(std::string_view arn,
                                                  std::string_view version_id) {
  RETURN_IF_ERROR(ValidateVersionId(version_id));
  ASSIGN_OR_RETURN(ManagedPolicy p, ResolvePolicyArn(arn, false, nullptr));
  for (auto& v : p.versions)
    if (v.id == version_id) return std::move(v);
  return NoSuchVersion(arn, version_id);
}

base::Status Iam::DeletePolicyVersion(std::string_view arn, std::string_view version_id) {
  RETURN_IF_ERROR(ValidateVersionId(version_id));
  bool aws_managed = false;
  auto key = LocalPolicyKey(arn, options_.account_id, &aws_managed);
  if (aws_managed)
    return base::PermissionDenied("AWS managed policies cannot be changed: " + std::string(arn));
  if (!key.ok()) return key.status();
  return Mutate<ManagedPolicy>(
      *key, PolicyNotFound(arn), [&](ManagedPolicy& p, store::Txn&, bool&) -> base::Status {
        if (p.arn != arn) return PolicyNotFound(arn);
        if (p.default_version == version_id)
          return base::FailedPrecondition("Cannot delete the default version of a policy.");
        auto n =
            std::erase_if(p.versions, [&](const PolicyVersion& v) { return v.id == version_id; });
        if (n == 0) return NoSuchVersion(arn, version_id);
        return base::Status::Ok();
      });
}

base::Status Iam::SetDefaultPolicyVersion(std::string_view arn, std::string_view version_id) {
  RETURN_IF_ERROR(ValidateVersionId(version_id));
  bool aws_managed = false;
  auto key = LocalPolicyKey(arn, options_.account_id, &aws_managed);
  if (aws_managed)
    return base::PermissionDenied("AWS managed policies cannot be changed: " + std::string(arn));
  if (!key.ok()) return key.status();
  return Mutate<ManagedPolicy>(*key, PolicyNotFound(arn),
                               [&](ManagedPolicy& p, store::Txn&, bool&) -> base::Status {
                                 if (p.arn != arn) return PolicyNotFound(arn);
                                 for (const auto& v : p.versions)
                                   if (v.id == version_id) {
                                     p.default_version = v.id;
                                     p.update_date = clock_->Now();
                                     return base::Status::Ok();
                                   }
                                 return NoSuchVersion(arn, version_id);
                               });
}

// ---- Attachments and inline policies -------------------------------------------------

template <typename T>
base::Status Iam::Attach(std::string_view name, std::string_view policy_arn, bool attach) {
  // Validate the ARN before looking at the entity, as IAM does.
  {
    auto parsed = internal::ParseArn(policy_arn);
    if (!parsed || parsed->service != "iam" || parsed->resource.rfind("policy/", 0) != 0)
      return InvalidArn();
  }
  std::string arn(policy_arn);
  return Mutate<T>(Traits<T>::Key(name), Traits<T>::Missing(name),
                   [&](T& entity, store::Txn& txn, bool&) -> base::Status {
                     auto it = std::find(entity.attached.begin(), entity.attached.end(), arn);
                     bool present = it != entity.attached.end();
                     if (attach && present) return base::Status::Ok();  // idempotent, like IAM
                     if (!attach && !present) return PolicyNotFound(arn);
                     store::Revision rev = 0;
                     auto policy = ResolvePolicyArn(arn, attach, &rev);
                     if (!policy.ok()) {
                       // A detach of a policy deleted meanwhile still removes the reference.
                       if (attach || policy.status().code() != base::Code::kNotFound)
                         return policy.status();
                     } else if (!policy->aws_managed) {
                       std::string pkey = internal::PolicyKey(policy->name);
                       policy->attachment_count += attach ? 1 : -1;
                       if (policy->attachment_count < 0) policy->attachment_count = 0;
                       txn.compares.push_back(store::Compare::ModRevisionIs(pkey, rev));
                       txn.success.push_back(store::Op::Put(pkey, Encode(*policy)));
                     }
                     if (attach) {
                       if (entity.attached.size() >= kMaxAttachedPolicies)
                         return base::ResourceExhausted("Cannot exceed quota for " +
                                                        std::string(Traits<T>::kQuota) + ": " +
                                                        std::to_string(kMaxAttachedPolicies));
                       entity.attached.push_back(arn);
                     } else {
                       entity.attached.erase(it);
                     }
                     return base::Status::Ok();
                   });
}

base::Status Iam::AttachPolicy(Entity entity, std::string_view name, std::string_view arn) {
  return entity == Entity::kUser ? Attach<User>(name, arn, true) : Attach<Role>(name, arn, true);
}

base::Status Iam::DetachPolicy(Entity entity, std::string_view name, std::string_view arn) {
  return entity == Entity::kUser ? Attach<User>(name, arn, false) : Attach<Role>(name, arn, false);
}

namespace {
template <typename T>
std::vector<std::pair<std::string, std::string>> AttachedOf(const T& entity,
                                                            std::string_view path_prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& arn : entity.attached) {
    auto parsed = internal::ParseArn(arn);
    if (!parsed) continue;
    auto [path, name] = PolicyPathAndName(parsed->resource);
    if (!path_prefix.empty() && path.rfind(path_prefix, 0) != 0) continue;
    out.emplace_back(name, arn);
  }
  return out;
}
}  // namespace

base::Result<std::vector<std::pair<std::string, std::string>>> Iam::ListAttachedPolicies(
    Entity entity, std::string_view name, std::string_view path_prefix) {
  if (entity == Entity::kUser) {
    ASSIGN_OR_RETURN(User u, GetUser(name));
    return AttachedOf(u, path_prefix);
  }
  ASSIGN_OR_RETURN(Role r, GetRole(name));
  return AttachedOf(r, path_prefix);
}

template <typename T>
base::Status Iam::PutInline(std::string_view name, std::string_view policy_name,
                            std::string_view document) {
  RETURN_IF_ERROR(internal::ValidateName(policy_name, "policyName", 128));
  RETURN_IF_ERROR(internal::ValidatePolicyDocument(document, internal::DocumentKind::kIdentity));
  return Mutate<T>(
      Traits<T>::Key(name), Traits<T>::Missing(name),
      [&](T& entity, store::Txn&, bool&) -> base::Status {
        auto& list = entity.inline_policies;
        auto it = std::find_if(list.begin(), list.end(),
                               [&](const InlinePolicy& p) { return p.name == policy_name; });
        if (it != list.end())
          it->document = std::string(document);
        else
          list.push_back({std::string(policy_name), std::string(document)});
        size_t total = 0;
        for (const auto& p : list) total += PolicySize(p.document);
        if (total > Traits<T>::kInlineLimit)
          return base::ResourceExhausted(
              "Maximum policy size of " + std::to_string(Traits<T>::kInlineLimit) +
              " bytes exceeded for " + std::string(Traits<T>::kWord) + " " + entity.name);
        return base::Status::Ok();
      });
}

base::Status Iam::PutInlinePolicy(Entity entity, std::string_view name,
                                  std::string_view policy_name, std::string_view document) {
  return entity == Entity::kUser ? PutInline<User>(name, policy_name, document)
                                 : PutInline<Role>(name, policy_name, document);
}

namespace {
base::Status NoSuchInline(Iam::Entity entity, std::string_view policy_name) {
  return base::NotFound(std::string("The ") + (entity == Iam::Entity::kUser ? "user" : "role") +
                        " policy with name " + std::string(policy_name) + " cannot be found.");
}
}  // namespace

base::Result<InlinePolicy> Iam::GetInlinePolicy(Entity entity, std::string_view name,
                                                std::string_view policy_name) {
  std::vector<InlinePolicy> list;
  if (entity == Entity::kUser) {
    ASSIGN_OR_RETURN(User u, GetUser(name));
    list = std::move(u.inline_policies);
  } else {
    ASSIGN_OR_RETURN(Role r, GetRole(name));
    list = std::move(r.inline_policies);
  }
  for (auto& p : list)
    if (p.name == policy_name) return std::move(p);
  return NoSuchInline(entity, policy_name);
}

base::Result<std::vector<std::string>> Iam::ListInlinePolicies(Entity entity,
                                                               std::string_view name) {
  std::vector<InlinePolicy> list;
  if (entity == Entity::kUser) {
    ASSIGN_OR_RETURN(User u, GetUser(name));
    list = std::move(u.inline_policies);
  } else {
    ASSIGN_OR_RETURN(Role r, GetRole(name));
    list = std::move(r.inline_policies);
  }
  std::vector<std::string> names;
  for (const auto& p : list) names.push_back(p.name);
  std::sort(names.begin(), names.end());
  return names;
}

template <typename T>
base::Status Iam::DeleteInline(std::string_view name, std::string_view policy_name, Entity entity) {
  return Mutate<T>(Traits<T>::Key(name), Traits<T>::Missing(name),
                   [&](T& e, store::Txn&, bool&) -> base::Status {
                     auto n = std::erase_if(e.inline_policies, [&](const InlinePolicy& p) {
                       return p.name == policy_name;
                     });
                     if (n == 0) return NoSuchInline(entity, policy_name);
                     return base::Status::Ok();
                   });
}

base::Status Iam::DeleteInlinePolicy(Entity entity, std::string_view name,
                                     std::string_view policy_name) {
  return entity == Entity::kUser ? DeleteInline<User>(name, policy_name, entity)
                                 : DeleteInline<Role>(name, policy_name, entity);
}

base::Result<std::vector<std::string>> Iam::IdentityPolicyDocuments(Entity entity,
                                                                    std::string_view name) {
  std::vector<std::string> attached;
  std::vector<InlinePolicy> inline_policies;
  if (entity == Entity::kUser) {
    ASSIGN_OR_RETURN(User u, GetUser(name));
    attached = std::move(u.attached);
    inline_policies = std::move(u.inline_policies);
  } else {
    ASSIGN_OR_RETURN(Role r, GetRole(name));
    attached = std::move(r.attached);
    inline_policies = std::move(r.inline_policies);
  }
  std::vector<std::string> docs;
  for (const auto& arn : attached) {
    auto p = ResolvePolicyArn(arn, false, nullptr);
    if (!p.ok()) {
      if (p.status().code() == base::Code::kNotFound) continue;
      return p.status();
    }
    if (const PolicyVersion* v = p->DefaultVersion()) docs.push_back(v->document);
  }
  for (auto& p : inline_policies) docs.push_back(std::move(p.document));
  return docs;
}

// ---- STS sessions -------------------------------------------------------------------

base::Result<Session> Iam::CreateSession(Session session, std::chrono::seconds duration) {
  if (duration.count() <= 0) return base::InvalidArgument("session duration must be positive");
  ASSIGN_OR_RETURN(store::LeaseId lease, store_->GrantLease(duration + options_.session_grace));
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    session.access_key_id = internal::NewAccessKeyId("ASIA");
    session.secret = internal::NewSecretKey();
    session.token = internal::NewSessionToken();
    session.expiration =
        std::chrono::time_point_cast<std::chrono::seconds>(clock_->Now()) + duration;
    if (session.account_id.empty()) session.account_id = options_.account_id;
    std::string key = internal::SessionKey(session.access_key_id);
    store::Txn txn;
    txn.compares.push_back(store::Compare::KeyMissing(key));
    txn.success.push_back(store::Op::Put(key, Encode(session), lease));
    ASSIGN_OR_RETURN(store::TxnResult result, store_->Commit(txn));
    if (result.succeeded) {
      credentials_->InvalidateKey(session.access_key_id);
      return session;
    }
  }
  store_->RevokeLease(lease).IgnoreError();
  return Conflict();
}

base::Result<Session> Iam::GetSession(std::string_view access_key_id) {
  ASSIGN_OR_RETURN(std::optional<store::KeyValue> kv,
                   store_->Get(internal::SessionKey(access_key_id)));
  if (!kv) return base::NotFound("no session " + std::string(access_key_id));
  Session s;
  RETURN_IF_ERROR(Decode(kv->value, &s));
  return s;
}

}  // namespace iam
