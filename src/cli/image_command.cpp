#include "cli/image_command.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "auth/sigv4.h"
#include "base/crypto.h"
#include "base/fs.h"
#include "base/time.h"
#include "http/client.h"
#include "image/builder.h"
#include "image/image_store.h"
#include "image/unpack.h"
#include "server/root_credentials.h"

namespace cli {
namespace {

using nlohmann::json;

struct Credentials {
  std::string key, secret, token;
};

base::Result<Credentials> FindCredentials(const ImageFlags& flags, const server::Config& config) {
  const char* key = std::getenv("AWS_ACCESS_KEY_ID");
  const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  if (!flags.data_dir_given && key && secret && *key && *secret) {
    const char* token = std::getenv("AWS_SESSION_TOKEN");
    return Credentials{key, secret, token ? token : ""};
  }
  auto root = server::LoadRootCredentials(config.data_dir);
  if (!root.ok()) {
    return base::NotFound(
        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or point --data-dir "
        "at the server's data directory (" +
        root.status().message() + ")");
  }
  return Credentials{root->access_key_id, root->secret_access_key, ""};
}

// The registry's HTTP API (and ECR's CreateRepository), SigV4-signed.
class RegistryClient : public image::Source, public image::Pusher {
 public:
  RegistryClient(http::Url url, Credentials creds, std::string region, std::string scratch)
      : url_(std::move(url)),
        creds_(std::move(creds)),
        region_(std::move(region)),
        scratch_(std::move(scratch)),
        client_(url_.host, url_.port, Options()) {}

  static http::ClientOptions Options() {
    http::ClientOptions o;
    o.timeout = std::chrono::milliseconds(600000);
    o.max_body_bytes = 4ull << 30;
    return o;
  }

  base::Result<http::Response> Send(const std::string& method, const std::string& path,
                                    const std::string& query, std::string body,
                                    std::vector<http::Header> extra = {}) {
    http::Request req;
    req.method = method;
    req.path = path;
    req.target = query.empty() ? path : path + "?" + query;
    req.body = std::move(body);
    std::string host = url_.host + ":" + std::to_string(url_.port);
    std::string amz_date = base::FormatAmzDate(base::SystemClock().Now());
    std::string payload = base::Sha256Hex(req.body);
    req.headers = {{"Host", host}, {"X-Amz-Date", amz_date}, {"X-Amz-Content-Sha256", payload}};
    for (auto& h : extra) req.headers.push_back(std::move(h));
    if (!creds_.token.empty()) req.headers.push_back({"X-Amz-Security-Token", creds_.token});
    std::vector<auth::Header> headers;
    for (const auto& h : req.headers) headers.push_back({h.name, h.value});
    auth::HttpRequestView view{req.method, req.path, query, &headers, req.body};
    req.headers.push_back(
        {"Authorization", auth::SignAuthorizationHeader(view, creds_.key, creds_.secret, region_,
                                                        "ecr", amz_date, payload)});
    std::lock_guard lock(mu_);
    return client_.Send(req);
  }

  static base::Status Failure(const std::string& what, const http::Response& r) {
    std::string msg = r.body.substr(0, 500);
    auto j = json::parse(r.body, nullptr, false);
    if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty()) {
      const auto& e = j["errors"][0];
      msg = e.value("code", "") + ": " + e.value("message", "");
    } else if (j.is_object() && j.contains("message")) {
      msg = j["message"].is_string() ? j["message"].get<std::string>() : msg;
    }
    base::Code code = r.status == 404                      ? base::Code::kNotFound
                      : r.status == 401 || r.status == 403 ? base::Code::kPermissionDenied
                                                           : base::Code::kFailedPrecondition;
    return base::Status(code, what + ": HTTP " + std::to_string(r.status) + " " + msg);
  }

  // ECR's CreateRepository; an existing repository is fine.
  base::Status EnsureRepository(const std::string& name, bool* created) {
    json in = {{"repositoryName", name}};
    ASSIGN_OR_RETURN(
        http::Response r,
        Send("POST", "/", "", in.dump(),
             {{"X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.CreateRepository"},
              {"Content-Type", "application/x-amz-json-1.1"}}));
    *created = r.status == 200;
    if (r.status == 200) return base::Status::Ok();
    const std::string* type = r.Find("x-amzn-ErrorType");
    if (r.status == 400 && r.body.find("RepositoryAlreadyExistsException") != std::string::npos) {
      return base::Status::Ok();
    }
    if (type != nullptr && type->find("RepositoryAlreadyExists") != std::string::npos) {
      return base::Status::Ok();
    }
    return Failure("create repository " + name, r);
  }

  // ---- image::Source ----
  base::Result<image::ManifestBlob> GetManifest(const std::string& repo,
                                                const std::string& ref) override {
    ASSIGN_OR_RETURN(
        http::Response r,
        Send("GET", "/v2/" + repo + "/manifests/" + ref, "", "",
             {{"Accept", std::string(image::kOciManifest) + ", " + std::string(image::kOciIndex) +
                             ", " + std::string(image::kDockerManifest) + ", " +
                             std::string(image::kDockerList)}}));
    if (r.status != 200) return Failure("manifest " + repo + ":" + ref, r);
    image::ManifestBlob b;
    if (const std::string* ct = r.Find("Content-Type")) b.media_type = *ct;
    b.digest = "sha256:" + base::Sha256Hex(r.body);
    b.bytes = std::move(r.body);
    return b;
  }
  base::Result<std::string> ReadBlob(const std::string& repo, const std::string& digest) override {
    ASSIGN_OR_RETURN(http::Response r, Send("GET", "/v2/" + repo + "/blobs/" + digest, "", ""));
    if (r.status != 200) return Failure("blob " + digest, r);
    return std::move(r.body);
  }
  base::Result<std::string> BlobPath(const std::string& repo, const std::string& digest) override {
    ASSIGN_OR_RETURN(std::string bytes, ReadBlob(repo, digest));
    std::string path = scratch_ + "/blob-" + digest.substr(7);
    RETURN_IF_ERROR(base::WriteFileAtomic(path, bytes));
    return path;
  }

  // ---- image::Pusher ----
  base::Result<bool> HasBlob(const std::string& repo, const std::string& digest) override {
    ASSIGN_OR_RETURN(http::Response r, Send("HEAD", "/v2/" + repo + "/blobs/" + digest, "", ""));
    if (r.status == 200) return true;
    if (r.status == 404) return false;
    return Failure("check blob " + digest, r);
  }
  base::Result<bool> MountBlob(const std::string& repo, const std::string& digest,
                               const std::string& from) override {
    ASSIGN_OR_RETURN(http::Response r, Send("POST", "/v2/" + repo + "/blobs/uploads/",
                                            "from=" + from + "&mount=" + digest, ""));
    if (r.status == 201) return true;
    if (r.status == 202) {
      // A session was opened instead; drop it.
      if (const std::string* loc = r.Find("Location")) {
        std::string l = *loc;
        size_t q = l.find('?');
        std::string path = l.substr(0, q);
        if (path.starts_with("http")) path = path.substr(path.find('/', 8));
        (void)Send("DELETE", path, "", "");
      }
      return false;
    }
    return Failure("mount blob " + digest, r);
  }
  base::Status PushBlob(const std::string& repo, const std::string& digest,
                        const std::string& path) override {
    ASSIGN_OR_RETURN(std::string bytes, base::ReadFile(path));
    ASSIGN_OR_RETURN(http::Response r,
                     Send("POST", "/v2/" + repo + "/blobs/uploads/", "digest=" + digest,
                          std::move(bytes), {{"Content-Type", "application/octet-stream"}}));
    if (r.status != 201) return Failure("push blob " + digest, r);
    return base::Status::Ok();
  }
  base::Result<std::string> PutManifest(const std::string& repo, const std::string& tag,
                                        const std::string& bytes,
                                        std::string_view media_type) override {
    ASSIGN_OR_RETURN(http::Response r, Send("PUT", "/v2/" + repo + "/manifests/" + tag, "", bytes,
                                            {{"Content-Type", std::string(media_type)}}));
    if (r.status != 201) return Failure("push manifest " + repo + ":" + tag, r);
    if (const std::string* d = r.Find("Docker-Content-Digest")) return *d;
    return "sha256:" + base::Sha256Hex(bytes);
  }

 private:
  http::Url url_;
  Credentials creds_;
  std::string region_;
  std::string scratch_;
  std::mutex mu_;
  http::Client client_;
};

// A scratch directory removed on exit.
class Scratch {
 public:
  explicit Scratch(const std::string& base) {
    std::string tmpl = base + "/stratus-build.XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~Scratch() {
    if (!path_.empty()) (void)image::RemoveTree(path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

int Fail(const char* cmd, const std::string& msg) {
  std::fprintf(stderr, "stratus %s: %s\n", cmd, msg.c_str());
  return 1;
}

struct Session {
  std::unique_ptr<Scratch> scratch;
  std::unique_ptr<RegistryClient> client;
};

base::Result<Session> Connect(const ImageFlags& flags, const server::Config& config) {
  std::string endpoint = flags.endpoint_url;
  if (endpoint.empty())
    if (const char* e = std::getenv("AWS_ENDPOINT_URL"); e && *e) endpoint = e;
  if (endpoint.empty()) {
    ASSIGN_OR_RETURN(auto hp, server::ParseListen(config.listen));
    endpoint = server::EndpointUrl(hp);
  }
  ASSIGN_OR_RETURN(http::Url url, http::ParseUrl(endpoint));
  ASSIGN_OR_RETURN(Credentials creds, FindCredentials(flags, config));
  std::string region = config.region;
  if (const char* r = std::getenv("AWS_DEFAULT_REGION"); r && *r) region = r;
  if (const char* r = std::getenv("AWS_REGION"); r && *r) region = r;
  Session s;
  const char* tmp = std::getenv("TMPDIR");
  s.scratch = std::make_unique<Scratch>(tmp && *tmp ? tmp : "/var/tmp");
  if (s.scratch->path().empty()) return base::ErrnoError("create a scratch directory");
  s.client = std::make_unique<RegistryClient>(url, creds, region, s.scratch->path());
  return s;
}

void Progress(const std::string& line) {
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace

int RunBuild(const ImageFlags& flags, const server::Config& config) {
  auto ref = image::ParseReference(flags.tag);
  if (!ref.ok()) return Fail("build", ref.status().message());
  if (ref->reference.starts_with("sha256:")) return Fail("build", "-t needs REPO:TAG");
  std::string dockerfile =
      flags.dockerfile.empty() ? flags.context + "/Dockerfile" : flags.dockerfile;
  auto text = base::ReadFile(dockerfile);
  if (!text.ok()) return Fail("build", "read " + dockerfile + ": " + text.status().message());
  char real[PATH_MAX];
  if (realpath(flags.context.c_str(), real) == nullptr) {
    return Fail("build", "context " + flags.context + " not found");
  }
  image::BuildOptions o;
  o.context_dir = real;
  o.dockerfile = *text;
  o.repository = ref->repository;
  o.tag = ref->reference;
  for (const auto& kv : flags.build_args) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return Fail("build", "--build-arg takes KEY=VALUE");
    o.build_args[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto session = Connect(flags, config);
  if (!session.ok()) return Fail("build", session.status().message());
  o.work_dir = session->scratch->path();
  o.progress = Progress;
  // Layers are cached beside the server's, in the same layout (<data>/image/layers).
  auto store = image::ImageStore::Open(config.data_dir + "/image", session->client.get());
  if (!store.ok()) return Fail("build", store.status().ToString());
  bool created = false;
  base::Status st = session->client->EnsureRepository(o.repository, &created);
  if (!st.ok()) return Fail("build", st.message());
  if (created) Progress("Created repository " + o.repository);
  auto res = image::Build(o, **store, *session->client, *session->client);
  if (!res.ok()) return Fail("build", res.status().message());
  return 0;
}

int RunImageImport(const ImageFlags& flags, const server::Config& config) {
  auto ref = image::ParseReference(flags.reference);
  if (!ref.ok()) return Fail("image import", ref.status().message());
  if (ref->reference.starts_with("sha256:")) return Fail("image import", "needs REPO:TAG");
  auto session = Connect(flags, config);
  if (!session.ok()) return Fail("image import", session.status().message());
  bool created = false;
  base::Status st = session->client->EnsureRepository(ref->repository, &created);
  if (!st.ok()) return Fail("image import", st.message());
  if (created) Progress("Created repository " + ref->repository);
  image::ImageConfig c;
  c.cmd = flags.cmd.empty() ? std::vector<std::string>{"/bin/sh"} : flags.cmd;
  auto res = image::ImportRootfs(flags.tarball, ref->repository, ref->reference, c,
                                 session->scratch->path(), *session->client, Progress);
  if (!res.ok()) return Fail("image import", res.status().message());
  return 0;
}

int RunImageList(const ImageFlags& flags, const server::Config& config) {
  auto session = Connect(flags, config);
  if (!session.ok()) return Fail("image ls", session.status().message());
  auto& c = *session->client;
  auto cat = c.Send("GET", "/v2/_catalog", "n=1000", "");
  if (!cat.ok()) return Fail("image ls", cat.status().message());
  if (cat->status != 200)
    return Fail("image ls", RegistryClient::Failure("catalog", *cat).message());
  auto j = json::parse(cat->body, nullptr, false);
  std::printf("%-40s %-20s %s\n", "REPOSITORY", "TAG", "DIGEST");
  if (!j.is_object() || !j.contains("repositories")) return 0;
  for (const auto& r : j["repositories"]) {
    std::string repo = r.get<std::string>();
    auto tags = c.Send("GET", "/v2/" + repo + "/tags/list", "n=1000", "");
    if (!tags.ok() || tags->status != 200) continue;
    auto t = json::parse(tags->body, nullptr, false);
    if (!t.is_object() || !t.contains("tags") || !t["tags"].is_array()) continue;
    for (const auto& tag : t["tags"]) {
      auto m = c.GetManifest(repo, tag.get<std::string>());
      std::printf("%-40s %-20s %s\n", repo.c_str(), tag.get<std::string>().c_str(),
                  m.ok() ? m->digest.c_str() : "?");
    }
  }
  return 0;
}

int RunImageInspect(const ImageFlags& flags, const server::Config& config) {
  auto ref = image::ParseReference(flags.reference);
  if (!ref.ok()) return Fail("image inspect", ref.status().message());
  auto session = Connect(flags, config);
  if (!session.ok()) return Fail("image inspect", session.status().message());
  // Resolve without unpacking: a store rooted in the scratch dir is never written to.
  auto store = image::ImageStore::Open(session->scratch->path() + "/store", session->client.get());
  if (!store.ok()) return Fail("image inspect", store.status().ToString());
  auto img = (*store)->Resolve(ref->repository, ref->reference);
  if (!img.ok()) return Fail("image inspect", img.status().message());
  const auto& cfg = img->config;
  json out = {{"Repository", img->repository},
              {"Digest", img->manifest_digest},
              {"MediaType", img->media_type},
              {"Os", cfg.os},
              {"Architecture", cfg.architecture},
              {"Created", cfg.created},
              {"Entrypoint", cfg.entrypoint},
              {"Cmd", cfg.cmd},
              {"Env", cfg.env},
              {"WorkingDir", cfg.working_dir},
              {"User", cfg.user},
              {"ExposedPorts", cfg.exposed_ports},
              {"Labels", cfg.labels}};
  json layers = json::array();
  for (const auto& l : img->layers) {
    layers.push_back({{"Digest", l.digest}, {"Size", l.size}, {"MediaType", l.media_type}});
  }
  out["Layers"] = layers;
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace cli
