// lambda::Lambda — the Lambda control plane: functions, published versions, aliases,
// reserved concurrency and tags, kept in the Store, with function code in the BlobStore.
//
// The API layer (api.cpp) decodes and range-checks requests into the plain types below;
// this class checks everything that needs state (existence, revision ids, concurrency
// quota) and the code itself (zip integrity and limits), and commits each change as one
// Store Txn whose compares make it all-or-nothing: two concurrent creates of one name
// cannot both win, and a blob reference is added in the same Txn that names the blob.
//
// Store layout (values are JSON records private to this module):
//   /lambda/names/<name>                          index for ListFunctions (empty value)
//   /lambda/functions/<name>/latest               $LATEST configuration
//   /lambda/functions/<name>/versions/<%010d>     published versions (immutable)
//   /lambda/functions/<name>/aliases/<alias>      aliases
//   /lambda/functions/<name>/tags                 tags
//   /lambda/functions/<name>/eventinvoke/<qual>   event invoke config per qualifier
//   /lambda/account/concurrency                   reserved concurrency per function
//   /lambda/functions/<name>/url/<qual|_>         function URL config
//   /lambda/urls/<url id>                         → function name and qualifier
//   /lambda/functions/<name>/policy/<qual|_>      resource-based policy document
//   /lambda/layers/<name>/<%010d>                 layer versions (immutable)
//   /lambda/layer-next/<name>                     the next layer version number
// Layer blob references: owner "lambda-layer/<name>/<version>", and for each function
// version using it "lambda/<name>/<version>#layer".
// Blob references: owner "lambda/<name>/$LATEST" and "lambda/<name>/<version>".
//
// Errors (mapped to AWS codes in api.cpp): InvalidArgument = InvalidParameterValue,
// NotFound, AlreadyExists = ResourceConflict, FailedPrecondition = RevisionId mismatch,
// ResourceExhausted = zip over the size limit, Aborted = concurrent change kept winning.
//
// Threading: all methods are safe from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/time.h"
#include "store/blob_store.h"
#include "store/store.h"

namespace image {
class ImageStore;
}

namespace lambda {

struct Options {
  std::string account_id = "000000000000";
  std::string region = "us-east-1";
  base::Clock* clock = nullptr;  // nullptr = base::SystemClock()
  int64_t account_concurrency = 1000;
  int64_t min_unreserved_concurrency = 100;
  uint64_t max_zip_bytes = 50ull * 1024 * 1024;        // 52428800, as AWS
  uint64_t max_unzipped_bytes = 250ull * 1024 * 1024;  // 262144000, as AWS
  uint64_t max_environment_bytes = 4096;
  // Container-image functions (PackageType Image) resolve ImageUri here; null = refused.
  image::ImageStore* images = nullptr;
};

// ImageConfig of a container-image function: overrides of the image's own config.
struct ImageOverrides {
  std::optional<std::vector<std::string>> entry_point, command;
  std::optional<std::string> working_directory;
  bool empty() const { return !entry_point && !command && !working_directory; }
  bool operator==(const ImageOverrides&) const = default;
};

inline constexpr char kLatest[] = "$LATEST";

// A layer version a function uses (resolved from its ARN when the function was written).
struct LayerRef {
  std::string arn;     // arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION
  std::string digest;  // the layer zip in the BlobStore
  uint64_t size = 0;
  bool operator==(const LayerRef&) const = default;
};

// Configuration of one function version ($LATEST or a published number).
struct FunctionConfig {
  std::string name;
  std::string version = kLatest;
  std::string runtime, role, handler, description;
  int timeout = 3;
  int memory_size = 128;
  int ephemeral_storage = 512;
  std::map<std::string, std::string> environment;
  std::string code_digest;  // "sha256:<hex>" in the BlobStore (Image: the image manifest)
  uint64_t code_size = 0;
  // "Zip", or "Image": then code_digest is the resolved image manifest, image_uri what the
  // caller named (REGISTRY/REPO:TAG or @DIGEST), and image_repository its repository.
  std::string package_type = "Zip";
  std::string image_uri, image_repository;
  ImageOverrides image_config;
  std::string code_sha256;       // base64 of the raw SHA-256, as AWS reports it
  std::vector<LayerRef> layers;  // merged at /opt in this order (later ones on top)
  std::string dead_letter_arn;   // DeadLetterConfig.TargetArn: failed async events go there
  std::string last_modified;     // "2026-11-23T20:00:00.000+0000"
  std::string revision_id;
  // Lifecycle, as AWS's: a new function is Pending until its code is unpacked and ready
  // (then Active); an update sets LastUpdateStatus InProgress until then (Successful).
  // Failed (with a reason) when the code cannot be made ready. "" = omitted.
  std::string state = "Active";
  std::string state_reason, state_reason_code;
  std::string last_update_status = "Successful";
  std::string last_update_status_reason, last_update_status_reason_code;
};

// What UpdateFunctionConfiguration (and CreateFunction) may set; unset fields keep their
// value (or the default on create). Range checks are the caller's (api.cpp).
struct FunctionSettings {
  std::optional<std::string> runtime, role, handler, description;
  std::optional<int> timeout, memory_size, ephemeral_storage;
  std::optional<std::map<std::string, std::string>> environment;
  std::optional<std::vector<std::string>> layers;  // layer version ARNs
  std::optional<ImageOverrides> image_config;      // Image functions only
  std::optional<std::string> dead_letter_arn;      // "" removes it
};

// PublishLayerVersion's record.
struct LayerVersion {
  std::string name;
  int64_t version = 0;
  std::string description, license_info;
  std::vector<std::string> compatible_runtimes, compatible_architectures;
  std::string digest;  // the zip in the BlobStore
  uint64_t code_size = 0;
  std::string code_sha256;  // base64 of the raw SHA-256
  std::string created_date;

  bool operator==(const LayerVersion&) const = default;
};

struct CreateFunctionRequest {
  std::string name;
  FunctionSettings settings;
  std::string zip;        // raw bytes
  std::string image_uri;  // instead of `zip`: a container-image function
  bool publish = false;
  std::map<std::string, std::string> tags;
};

struct FunctionDetails {
  FunctionConfig config;
  // When the qualifier was an alias with a RoutingConfig: the additional version and the
  // share of invocations it takes (the invoker draws per invocation).
  std::map<std::string, double> alias_weights;
  std::map<std::string, std::string> tags;
  std::optional<int64_t> reserved_concurrency;
};

struct Alias {
  std::string name;
  std::string function_version;
  std::string description;
  std::map<std::string, double> additional_weights;  // RoutingConfig
  std::string revision_id;
};

struct AliasUpdate {
  std::optional<std::string> function_version, description;
  std::optional<std::map<std::string, double>> additional_weights;
  std::string revision_id;  // precondition, empty = none
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_marker;  // empty = last page
};

// PutFunctionEventInvokeConfig: how asynchronous invocations of one qualifier are retried
// and where their records go. Destinations are ARNs ("" = none); the API layer checks them.
struct EventInvokeConfig {
  std::string qualifier = kLatest;               // "$LATEST", a version number or an alias
  std::optional<int> maximum_retry_attempts;     // 0..2, unset = 2
  std::optional<int> maximum_event_age_seconds;  // 60..21600, unset = 21600
  std::string on_success, on_failure;
  double last_modified = 0;  // seconds since the epoch, as AWS reports it
};

// A function URL (CreateFunctionUrlConfig). One per qualifier ("" = the unqualified
// function, or an alias name).
struct UrlCors {
  bool allow_credentials = false;
  std::vector<std::string> allow_headers, allow_methods, allow_origins, expose_headers;
  std::optional<int> max_age;
  bool operator==(const UrlCors&) const = default;
};
struct FunctionUrlConfig {
  std::string function_name;
  std::string qualifier;  // "" or an alias
  std::string url_id;     // 32 lower-case letters and digits: <url_id>.lambda-url.<region>.…
  std::string auth_type = "AWS_IAM";  // AWS_IAM | NONE
  std::optional<UrlCors> cors;
  std::string invoke_mode = "BUFFERED";  // BUFFERED | RESPONSE_STREAM
  std::string creation_time, last_modified_time;
};

// One statement of a function's resource-based policy (AddPermission).
struct PermissionRequest {
  std::string statement_id;
  std::string action;     // "lambda:InvokeFunction", "lambda:InvokeFunctionUrl", ...
  std::string principal;  // "*", an account id, an ARN or a service ("s3.amazonaws.com")
  std::string source_arn, source_account, principal_org_id, function_url_auth_type;
  std::string qualifier;    // "" = the function
  std::string revision_id;  // precondition on the policy, "" = none
};

struct AccountSettings {
  int64_t concurrent_executions = 0;
  int64_t unreserved_concurrent_executions = 0;
  int64_t function_count = 0;
  uint64_t total_code_size = 0;
};

// The runtimes this build accepts, in the order error messages list them.
const std::vector<std::string>& SupportedRuntimes();

class Lambda {
 public:
  virtual ~Lambda() = default;

  virtual const Options& options() const = 0;
  // Moves after every change this object commits: lets a cache of configurations see its
  // own process's writes at once (a store watch brings other servers' writes).
  virtual uint64_t generation() const = 0;
  // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
  virtual std::string FunctionArn(const std::string& name,
                                  const std::string& qualifier = "") const = 0;

  virtual base::Result<FunctionConfig> CreateFunction(const CreateFunctionRequest& req) = 0;
  // `qualifier`: "" or "$LATEST", a version number, or an alias name (resolved).
  virtual base::Result<FunctionDetails> GetFunction(const std::string& name,
                                                    const std::string& qualifier) = 0;
  virtual base::Result<Page<FunctionConfig>> ListFunctions(const std::string& marker,
                                                           int max_items) = 0;
  virtual base::Result<FunctionConfig> UpdateFunctionCode(const std::string& name,
                                                          const std::string& zip,
                                                          const std::string& revision_id,
                                                          bool publish) = 0;
  // UpdateFunctionCode with an ImageUri (Image functions only).
  virtual base::Result<FunctionConfig> UpdateFunctionImage(const std::string& name,
                                                           const std::string& image_uri,
                                                           const std::string& revision_id,
                                                           bool publish) = 0;
  virtual base::Result<FunctionConfig> UpdateFunctionConfiguration(
      const std::string& name, const FunctionSettings& settings,
      const std::string& revision_id) = 0;
  // Ends a Pending create or InProgress update of $LATEST at `revision_id` (a no-op when
  // the function has changed since): Active/Successful when `outcome` is ok, else Failed
  // with `outcome`'s message as the reason.
  virtual base::Status FinishUpdate(const std::string& name, const std::string& revision_id,
                                    const base::Status& outcome) = 0;
  // Deletes the function (qualifier empty) or one published version.
  virtual base::Status DeleteFunction(const std::string& name, const std::string& qualifier) = 0;

  // Publishes $LATEST as the next version; returns the last version when nothing changed
  // since it was published. `code_sha256`/`revision_id` are optional preconditions.
  virtual base::Result<FunctionConfig> PublishVersion(const std::string& name,
                                                      const std::string& description,
                                                      const std::string& code_sha256,
                                                      const std::string& revision_id) = 0;
  // $LATEST first, then versions in order. The marker is the last version returned.
  virtual base::Result<Page<FunctionConfig>> ListVersions(const std::string& name,
                                                          const std::string& marker,
                                                          int max_items) = 0;

  virtual base::Result<Alias> CreateAlias(const std::string& name, const Alias& alias) = 0;
  virtual base::Result<Alias> GetAlias(const std::string& name, const std::string& alias) = 0;
  // `function_version` filters when non-empty.
  virtual base::Result<Page<Alias>> ListAliases(const std::string& name,
                                                const std::string& function_version,
                                                const std::string& marker, int max_items) = 0;
  virtual base::Result<Alias> UpdateAlias(const std::string& name, const std::string& alias,
                                          const AliasUpdate& update) = 0;
  virtual base::Status DeleteAlias(const std::string& name, const std::string& alias) = 0;

  virtual base::Status PutFunctionConcurrency(const std::string& name, int64_t reserved) = 0;
  virtual base::Result<std::optional<int64_t>> GetFunctionConcurrency(const std::string& name) = 0;
  virtual base::Status DeleteFunctionConcurrency(const std::string& name) = 0;
  virtual base::Result<AccountSettings> GetAccountSettings() = 0;

  // Event invoke configs, one per qualifier. Put replaces (`merge` = Update: unset fields
  // keep their value, NotFound when there is none yet). NotFound names the function or
  // qualifier that does not exist ("function" in the message when the function is missing).
  virtual base::Result<EventInvokeConfig> PutEventInvokeConfig(const std::string& name,
                                                               const EventInvokeConfig& config,
                                                               bool merge) = 0;
  virtual base::Result<std::optional<EventInvokeConfig>> GetEventInvokeConfig(
      const std::string& name, const std::string& qualifier) = 0;
  // NotFound when there is no config for the qualifier.
  virtual base::Status DeleteEventInvokeConfig(const std::string& name,
                                               const std::string& qualifier) = 0;
  virtual base::Result<Page<EventInvokeConfig>> ListEventInvokeConfigs(const std::string& name,
                                                                       const std::string& marker,
                                                                       int max_items) = 0;

  // Layers. Versions count from 1 and are never reused, even after a delete. Deleting a
  // version leaves functions that use it working (they hold a reference to its code).
  virtual std::string LayerArn(const std::string& name, int64_t version = 0) const = 0;
  virtual base::Result<LayerVersion> PublishLayerVersion(const LayerVersion& layer,
                                                         const std::string& zip) = 0;
  virtual base::Result<LayerVersion> GetLayerVersion(const std::string& name, int64_t version) = 0;
  // Newest first; the marker is the last version number returned.
  virtual base::Result<Page<LayerVersion>> ListLayerVersions(const std::string& name,
                                                             const std::string& marker,
                                                             int max_items) = 0;
  // Each layer's newest version; the marker is the last layer name returned.
  virtual base::Result<Page<LayerVersion>> ListLayers(const std::string& marker, int max_items) = 0;
  virtual base::Status DeleteLayerVersion(const std::string& name, int64_t version) = 0;

  // Function URLs. Create: AlreadyExists when the qualifier has one; NotFound("function")
  // when the function or alias does not exist. Get/Delete: NotFound("config").
  virtual base::Result<FunctionUrlConfig> CreateFunctionUrlConfig(const FunctionUrlConfig& c) = 0;
  // Fields set in `update` replace (auth_type empty and cors/invoke_mode unset keep theirs).
  virtual base::Result<FunctionUrlConfig> UpdateFunctionUrlConfig(
      const std::string& name, const std::string& qualifier, const std::string& auth_type,
      const std::optional<UrlCors>& cors, const std::string& invoke_mode) = 0;
  virtual base::Result<FunctionUrlConfig> GetFunctionUrlConfig(const std::string& name,
                                                               const std::string& qualifier) = 0;
  virtual base::Status DeleteFunctionUrlConfig(const std::string& name,
                                               const std::string& qualifier) = 0;
  virtual base::Result<Page<FunctionUrlConfig>> ListFunctionUrlConfigs(const std::string& name,
                                                                       const std::string& marker,
                                                                       int max_items) = 0;
  // The URL with this id (NotFound if none).
  virtual base::Result<FunctionUrlConfig> ResolveFunctionUrl(const std::string& url_id) = 0;

  // Resource-based policy, per qualifier. AddPermission returns the statement added (JSON);
  // AlreadyExists when the statement id is taken. GetPolicy: the document and its revision
  // id, NotFound when there is none.
  virtual base::Result<std::string> AddPermission(const std::string& name,
                                                  const PermissionRequest& req) = 0;
  virtual base::Status RemovePermission(const std::string& name, const std::string& qualifier,
                                        const std::string& statement_id,
                                        const std::string& revision_id) = 0;
  virtual base::Result<std::pair<std::string, std::string>> GetPolicy(
      const std::string& name, const std::string& qualifier) = 0;

  virtual base::Result<std::map<std::string, std::string>> ListTags(const std::string& name) = 0;
  virtual base::Status TagResource(const std::string& name,
                                   const std::map<std::string, std::string>& tags) = 0;
  virtual base::Status UntagResource(const std::string& name,
                                     const std::vector<std::string>& keys) = 0;
};

// "arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]" → name, qualifier.
bool ParseFunctionArn(const std::string& arn, std::string* name, std::string* qualifier);

// Whether function `arn` exists and its resource-based policy lets the AWS service
// `service` ("s3.amazonaws.com") invoke it on behalf of `source_arn` in `source_account`
// (matched against aws:SourceArn / aws:SourceAccount conditions). NotFound when the function
// is missing, PermissionDenied when the policy does not allow it.
base::Status CheckServiceInvoke(Lambda& lambda, const std::string& arn,
                                const std::string& service, const std::string& source_arn,
                                const std::string& source_account);

// `store` and `blobs` must outlive the returned Lambda.
base::Result<std::unique_ptr<Lambda>> OpenLambda(store::Store* store, store::BlobStore* blobs,
                                                 const Options& options);

}  // namespace lambda
