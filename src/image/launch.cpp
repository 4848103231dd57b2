#include "image/launch.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "base/fs.h"

namespace image {
namespace {

constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::optional<uint32_t> Numeric(const std::string& s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > 0xffffffffu) return std::nullopt;
  return static_cast<uint32_t>(v);
}

// The topmost copy of `path` in the stacked layers; nullopt when absent or whited out.
std::optional<std::string> ReadFromLayers(const std::vector<std::string>& layers,
                                          const std::string& path) {
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    struct stat st {};
    if (lstat((*it + path).c_str(), &st) != 0) continue;
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) return std::nullopt;
    auto r = base::ReadFile(*it + path);
    if (r.ok()) return *r;
    return std::nullopt;
  }
  return std::nullopt;
}

// The colon-separated fields of the line of `file` whose first field is `name`.
std::optional<std::vector<std::string>> FindEntry(const std::string& file,
                                                  const std::string& name) {
  size_t i = 0;
  while (i < file.size()) {
    size_t j = file.find('\n', i);
    if (j == std::string::npos) j = file.size();
    std::string line = file.substr(i, j - i);
    i = j + 1;
    std::vector<std::string> f;
    size_t a = 0;
    while (a <= line.size()) {
      size_t b = line.find(':', a);
      if (b == std::string::npos) b = line.size();
      f.push_back(line.substr(a, b - a));
      a = b + 1;
    }
    if (f.size() >= 3 && f[0] == name) return f;
  }
  return std::nullopt;
}

}  // namespace

base::Result<std::pair<uint32_t, uint32_t>> ResolveUser(const std::vector<std::string>& layers,
                                                        const std::string& spec) {
  std::string user = spec, group;
  if (size_t c = spec.find(':'); c != std::string::npos) {
    user = spec.substr(0, c);
    group = spec.substr(c + 1);
  }
  if (user.empty()) user = "root";
  // As runc: the passwd entry (by name, or by uid for a numeric user) gives the uid and the
  // primary group; a numeric user without an entry gets gid 0.
  uint32_t uid = 0, gid = 0;
  auto passwd = ReadFromLayers(layers, "/etc/passwd");
  std::optional<std::vector<std::string>> entry;
  if (passwd) {
    size_t i = 0;
    while (!entry && i < passwd->size()) {
      size_t j = passwd->find('\n', i);
      if (j == std::string::npos) j = passwd->size();
      std::string line = passwd->substr(i, j - i);
      i = j + 1;
      auto f = FindEntry(line, line.substr(0, line.find(':')));
      if (!f || f->size() < 4) continue;
      if ((*f)[0] == user || (Numeric(user) && Numeric((*f)[2]) == Numeric(user))) entry = f;
    }
  }
  if (auto n = Numeric(user)) {
    uid = *n;
  } else if (entry) {
    auto n = Numeric((*entry)[2]);
    if (!n) return base::InvalidArgument("bad uid for '" + user + "' in /etc/passwd");
    uid = *n;
  } else if (user != "root") {
    return base::NotFound("user '" + user + "' not found in the image's /etc/passwd");
  }
  if (entry) gid = Numeric((*entry)[3]).value_or(0);
  if (!group.empty()) {
    if (auto n = Numeric(group)) {
      gid = *n;
    } else {
      auto groups = ReadFromLayers(layers, "/etc/group");
      auto g = groups ? FindEntry(*groups, group) : std::nullopt;
      if (g) {
        auto n = Numeric((*g)[2]);
        if (!n) return base::InvalidArgument("bad gid for '" + group + "' in /etc/group");
        gid = *n;
      } else if (group == "root") {
        gid = 0;
      } else {
        return base::NotFound("group '" + group + "' not found in the image's /etc/group");
      }
    }
  }
  return std::make_pair(uid, gid);
}

base::Result<Launch> MakeLaunch(const ImageConfig& config, const std::vector<std::string>& layers,
                                const LaunchOverrides& o) {
  Launch l;
  std::vector<std::string> entrypoint = o.entrypoint.value_or(config.entrypoint);
  std::vector<std::string> cmd;
  if (o.command) {
    cmd = *o.command;
  } else if (!o.entrypoint) {
    cmd = config.cmd;
  }
  l.argv = entrypoint;
  l.argv.insert(l.argv.end(), cmd.begin(), cmd.end());
  if (l.argv.empty()) {
    return base::InvalidArgument(
        "the image has neither an Entrypoint nor a Cmd, and none was given");
  }
  l.env = config.env;
  for (const auto& kv : o.env) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return base::InvalidArgument("environment entry '" + kv + "' is not KEY=VALUE");
    }
    SetEnv(l.env, kv.substr(0, eq), kv.substr(eq + 1));
  }
  if (!GetEnv(l.env, "PATH")) SetEnv(l.env, "PATH", kDefaultPath);
  l.cwd = o.working_dir.value_or(config.working_dir);
  if (l.cwd.empty()) l.cwd = "/";
  if (l.cwd[0] != '/')
    return base::InvalidArgument("working directory '" + l.cwd + "' is not absolute");
  std::string user = o.user.value_or(config.user);
  if (!user.empty()) {
    ASSIGN_OR_RETURN(auto ids, ResolveUser(layers, user));
    l.uid = ids.first;
    l.gid = ids.second;
  }
  return l;
}

}  // namespace image
