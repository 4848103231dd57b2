#include "image/manifest.h"

#include <nlohmann/json.hpp>

#include "store/blob_store.h"

namespace image {
namespace {

using nlohmann::json;

bool IsLayerType(std::string_view t) {
  static constexpr std::string_view kTypes[] = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.diff.tar",
  };
  for (auto k : kTypes)
    if (t == k) return true;
  return false;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

base::Result<Descriptor> ParseDescriptor(const json& j, std::string_view what) {
  if (!j.is_object()) return base::InvalidArgument(std::string(what) + " is not an object");
  Descriptor d;
  d.media_type = Str(j, "mediaType");
  d.digest = Str(j, "digest");
  if (!store::IsValidDigest(d.digest)) {
    return base::InvalidArgument(std::string(what) + " has no valid sha256 digest");
  }
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_unsigned()) {
    return base::InvalidArgument(std::string(what) + " has no valid size");
  }
  d.size = size->get<uint64_t>();
  if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
    d.os = Str(*p, "os");
    d.architecture = Str(*p, "architecture");
    d.variant = Str(*p, "variant");
  }
  return d;
}

std::vector<std::string> StringList(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it)
    if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

}  // namespace

base::Result<ParsedManifest> ParseManifest(std::string_view bytes, std::string_view content_type) {
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return base::InvalidArgument("manifest: not a JSON object");
  ParsedManifest m;
  m.media_type = Str(j, "mediaType");
  if (m.media_type.empty()) m.media_type = std::string(content_type);
  if (m.media_type.empty()) {
    // OCI allows omitting mediaType: an index has "manifests", an image "layers".
    m.media_type = std::string(j.contains("manifests") ? kOciIndex : kOciManifest);
  }
  if (m.media_type == kOciIndex || m.media_type == kDockerList) {
    m.is_index = true;
    auto it = j.find("manifests");
    if (it == j.end() || !it->is_array()) return base::InvalidArgument("index: no manifests");
    for (const auto& e : *it) {
      ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(e, "index entry"));
      m.manifests.push_back(std::move(d));
    }
    return m;
  }
  if (m.media_type != kOciManifest && m.media_type != kDockerManifest) {
    return base::InvalidArgument("manifest: unsupported media type '" + m.media_type + "'");
  }
  auto cfg = j.find("config");
  if (cfg == j.end()) return base::InvalidArgument("manifest: no config");
  ASSIGN_OR_RETURN(m.config, ParseDescriptor(*cfg, "config"));
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) return base::InvalidArgument("manifest: no layers");
  for (const auto& e : *layers) {
    ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(e, "layer"));
    if (!IsLayerType(d.media_type)) {
      return base::InvalidArgument("manifest: layer " + d.digest + " has unsupported media type '" +
                                   d.media_type + "'");
    }
    m.layers.push_back(std::move(d));
  }
  return m;
}

base::Result<Descriptor> PickPlatform(const ParsedManifest& index, std::string_view os,
                                      std::string_view arch) {
  std::string offered;
  for (const auto& d : index.manifests) {
    if (d.os == os && d.architecture == arch) return d;
    if (!d.os.empty()) offered += (offered.empty() ? "" : ", ") + d.os + "/" + d.architecture;
  }
  return base::NotFound("image index has no " + std::string(os) + "/" + std::string(arch) +
                        " manifest (offers: " + (offered.empty() ? "none" : offered) + ")");
}

base::Result<ImageConfig> ParseImageConfig(std::string_view bytes) {
  json j = json::parse(bytes, nullptr, false);
  if (!j.is_object()) return base::InvalidArgument("image config: not a JSON object");
  ImageConfig c;
  c.os = Str(j, "os");
  c.architecture = Str(j, "architecture");
  c.created = Str(j, "created");
  if (auto it = j.find("config"); it != j.end() && it->is_object()) {
    const json& cc = *it;
    c.entrypoint = StringList(cc, "Entrypoint");
    c.cmd = StringList(cc, "Cmd");
    c.env = StringList(cc, "Env");
    c.working_dir = Str(cc, "WorkingDir");
    c.user = Str(cc, "User");
    c.stop_signal = Str(cc, "StopSignal");
    if (auto p = cc.find("ExposedPorts"); p != cc.end() && p->is_object()) {
      for (auto e = p->begin(); e != p->end(); ++e) c.exposed_ports.push_back(e.key());
    }
    if (auto l = cc.find("Labels"); l != cc.end() && l->is_object()) {
      for (auto e = l->begin(); e != l->end(); ++e)
        if (e->is_string()) c.labels[e.key()] = e->get<std::string>();
    }
  }
  if (auto r = j.find("rootfs"); r != j.end() && r->is_object()) {
    c.diff_ids = StringList(*r, "diff_ids");
    for (const auto& d : c.diff_ids)
      if (!store::IsValidDigest(d)) return base::InvalidArgument("image config: bad diff_id " + d);
  }
  if (auto h = j.find("history"); h != j.end() && h->is_array()) {
    for (const auto& e : *h) {
      if (!e.is_object()) continue;
      ImageConfig::History hist;
      hist.created = Str(e, "created");
      hist.created_by = Str(e, "created_by");
      hist.comment = Str(e, "comment");
      auto el = e.find("empty_layer");
      hist.empty_layer = el != e.end() && el->is_boolean() && el->get<bool>();
      c.history.push_back(std::move(hist));
    }
  }
  return c;
}

std::string SerializeImageConfig(const ImageConfig& c) {
  json cc = json::object();
  if (!c.entrypoint.empty()) cc["Entrypoint"] = c.entrypoint;
  if (!c.cmd.empty()) cc["Cmd"] = c.cmd;
  if (!c.env.empty()) cc["Env"] = c.env;
  if (!c.working_dir.empty()) cc["WorkingDir"] = c.working_dir;
  if (!c.user.empty()) cc["User"] = c.user;
  if (!c.stop_signal.empty()) cc["StopSignal"] = c.stop_signal;
  if (!c.exposed_ports.empty()) {
    json p = json::object();
    for (const auto& e : c.exposed_ports) p[e] = json::object();
    cc["ExposedPorts"] = p;
  }
  if (!c.labels.empty()) cc["Labels"] = c.labels;
  json j = json::object();
  if (!c.created.empty()) j["created"] = c.created;
  j["architecture"] = c.architecture.empty() ? "amd64" : c.architecture;
  j["os"] = c.os.empty() ? "linux" : c.os;
  j["config"] = cc;
  j["rootfs"] = {{"type", "layers"}, {"diff_ids", c.diff_ids}};
  json hist = json::array();
  for (const auto& h : c.history) {
    json e = json::object();
    if (!h.created.empty()) e["created"] = h.created;
    if (!h.created_by.empty()) e["created_by"] = h.created_by;
    if (!h.comment.empty()) e["comment"] = h.comment;
    if (h.empty_layer) e["empty_layer"] = true;
    hist.push_back(e);
  }
  if (!hist.empty()) j["history"] = hist;
  return j.dump();
}

std::string SerializeOciManifest(const Descriptor& config, const std::vector<Descriptor>& layers,
                                 const std::map<std::string, std::string>& annotations) {
  json j = {{"schemaVersion", 2}, {"mediaType", kOciManifest}};
  j["config"] = {{"mediaType", kOciConfig}, {"digest", config.digest}, {"size", config.size}};
  json ls = json::array();
  for (const auto& l : layers) {
    ls.push_back({{"mediaType", l.media_type.empty() ? std::string(kOciLayerGzip) : l.media_type},
                  {"digest", l.digest},
                  {"size", l.size}});
  }
  j["layers"] = ls;
  if (!annotations.empty()) j["annotations"] = annotations;
  return j.dump();
}

void SetEnv(std::vector<std::string>& env, const std::string& key, const std::string& value) {
  for (auto& e : env) {
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') {
      e = key + "=" + value;
      return;
    }
  }
  env.push_back(key + "=" + value);
}

std::optional<std::string> GetEnv(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& e : env) {
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') {
      return e.substr(key.size() + 1);
    }
  }
  return std::nullopt;
}

}  // namespace image
