#include "image/builder.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <optional>
#include <set>
#include <vector>

#include "base/crypto.h"
#include "base/fs.h"
#include "image/dockerfile.h"
#include "image/launch.h"
#include "image/layer_writer.h"
#include "image/unpack.h"
#include "sandbox/sandbox.h"

namespace image {
namespace {

struct Layer {
  Descriptor desc;
  std::string diff_id;
  std::string dir;        // unpacked (overlay form): a lower dir
  std::string blob_path;  // local tar+gzip (layers we built)
  std::string from_repo;  // where a base layer lives in the registry
};

struct StageState {
  std::vector<Layer> layers;
  ImageConfig config;
  std::map<std::string, std::string> args;  // ARGs in scope
  LayerLease lease;
};

std::string Now3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string JoinPath(const std::string& a, const std::string& b) {
  if (b.empty()) return a;
  if (a.empty() || a == "/") return "/" + (b[0] == '/' ? b.substr(1) : b);
  return a + (a.back() == '/' ? "" : "/") + (b[0] == '/' ? b.substr(1) : b);
}

// A path inside the image, made absolute against the working dir and cleaned.
std::string ImagePath(const std::string& workdir, const std::string& p) {
  std::string abs = p.starts_with("/") ? p : JoinPath(workdir.empty() ? "/" : workdir, p);
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= abs.size()) {
    size_t j = abs.find('/', i);
    if (j == std::string::npos) j = abs.size();
    std::string part = abs.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (const auto& p2 : parts) out += "/" + p2;
  return out.empty() ? "/" : out;
}

// The host path `rel` names under `root`, resolving symlinks as if `root` were `/`.
base::Result<std::string> ResolveInRoot(const std::string& root, const std::string& rel) {
  base::UniqueFd rfd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rfd.valid()) return base::ErrnoError("open " + root);
  std::string r = rel;
  while (r.starts_with("/")) r.erase(0, 1);
  if (r.empty()) r = ".";
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  base::UniqueFd fd(static_cast<int>(syscall(SYS_openat2, rfd.get(), r.c_str(), &how, sizeof how)));
  if (!fd.valid()) {
    if (errno == ENOENT) return base::NotFound("'" + rel + "' not found");
    return base::ErrnoError("resolve '" + rel + "'");
  }
  char buf[4096];
  std::string link = "/proc/self/fd/" + std::to_string(fd.get());
  ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
  if (n < 0) return base::ErrnoError("readlink " + link);
  return std::string(buf, static_cast<size_t>(n));
}

struct Owner {
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
};

base::Status CopyTree(const std::string& src, const std::string& dst, const Owner& owner,
                      std::optional<mode_t> chmod_to) {
  struct stat st {};
  if (lstat(src.c_str(), &st) < 0) return base::ErrnoError("stat " + src);
  uid_t uid = owner.uid.value_or(0);
  gid_t gid = owner.gid.value_or(0);
  mode_t mode = chmod_to.value_or(st.st_mode & 07777);
  if (S_ISDIR(st.st_mode)) {
    struct stat dst_st {};
    if (lstat(dst.c_str(), &dst_st) == 0 && !S_ISDIR(dst_st.st_mode)) {
      RETURN_IF_ERROR(RemoveTree(dst));
    }
    if (::mkdir(dst.c_str(), 0700) < 0 && errno != EEXIST) return base::ErrnoError("mkdir " + dst);
    DIR* d = opendir(src.c_str());
    if (d == nullptr) return base::ErrnoError("opendir " + src);
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
    for (const auto& n : names)
      RETURN_IF_ERROR(CopyTree(src + "/" + n, dst + "/" + n, owner, chmod_to));
    if (lchown(dst.c_str(), uid, gid) < 0 && geteuid() == 0)
      return base::ErrnoError("chown " + dst);
    if (::chmod(dst.c_str(), mode) < 0) return base::ErrnoError("chmod " + dst);
    return base::Status::Ok();
  }
  RETURN_IF_ERROR(RemoveTree(dst));
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = readlink(src.c_str(), target.data(), target.size());
    if (n < 0) return base::ErrnoError("readlink " + src);
    target.resize(static_cast<size_t>(n));
    if (symlink(target.c_str(), dst.c_str()) < 0) return base::ErrnoError("symlink " + dst);
    if (lchown(dst.c_str(), uid, gid) < 0 && geteuid() == 0)
      return base::ErrnoError("chown " + dst);
    return base::Status::Ok();
  }
  if (!S_ISREG(st.st_mode)) return base::Status::Ok();  // devices, sockets, whiteouts: skipped
  base::UniqueFd in(::open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in.valid()) return base::ErrnoError("open " + src);
  base::UniqueFd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) return base::ErrnoError("create " + dst);
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::ErrnoError("read " + src);
    if (n == 0) break;
    RETURN_IF_ERROR(base::WriteAll(out.get(), std::string_view(buf.data(), n), "write " + dst));
  }
  if (fchown(out.get(), uid, gid) < 0 && geteuid() == 0) return base::ErrnoError("chown " + dst);
  if (fchmod(out.get(), mode) < 0) return base::ErrnoError("chmod " + dst);
  timespec ts[2] = {st.st_atim, st.st_mtim};
  futimens(out.get(), ts);
  return base::Status::Ok();
}

// Whether `path` (absolute, in the image) is a directory in the stacked layers.
bool IsDirInLayers(const std::vector<Layer>& layers, const std::string& path) {
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    struct stat st {};
    if (stat((it->dir + path).c_str(), &st) == 0) {
      if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) return false;
      return S_ISDIR(st.st_mode);
    }
  }
  return false;
}

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

std::vector<std::string> LayerDirs(const std::vector<Layer>& layers) {
  std::vector<std::string> dirs;
  for (const auto& l : layers) dirs.push_back(l.dir);
  return dirs;
}

class Mount {
 public:
  Mount() = default;
  explicit Mount(std::string path) : path_(std::move(path)) {}
  Mount(Mount&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  Mount& operator=(Mount&& o) noexcept {
    std::swap(path_, o.path_);
    return *this;
  }
  ~Mount() {
    if (!path_.empty()) umount2(path_.c_str(), MNT_DETACH);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class Builder {
 public:
  Builder(const BuildOptions& o, ImageStore& images, Source& source, Pusher& pusher)
      : o_(o), images_(images), source_(source), pusher_(pusher) {}

  base::Result<BuildResult> Run() {
    ASSIGN_OR_RETURN(Dockerfile df, ParseDockerfile(o_.dockerfile));
    total_steps_ = 0;
    for (const auto& s : df.stages) total_steps_ += 1 + static_cast<int>(s.steps.size());
    // Mounts we make (merged views for COPY --from) stay private to this process.
    if (unshare(CLONE_NEWNS) == 0) mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
    empty_dir_ = o_.work_dir + "/empty";
    RETURN_IF_ERROR(base::MakeDirs(empty_dir_, 0755));
    for (const auto& a : df.global_args) {
      std::string name = a.args.substr(0, a.args.find('='));
      std::string def =
          a.args.find('=') == std::string::npos ? "" : a.args.substr(a.args.find('=') + 1);
      auto given = o_.build_args.find(name);
      global_args_[name] = given != o_.build_args.end() ? given->second : def;
    }
    for (size_t i = 0; i < df.stages.size(); ++i) {
      RETURN_IF_ERROR(RunStage(df.stages[i], static_cast<int>(i)));
    }
    return Push(stages_.back());
  }

 private:
  void Say(const std::string& line) {
    if (o_.progress) o_.progress(line);
  }
  base::Status StepError(const Instruction& ins, const base::Status& st) {
    return base::Status(st.code(), "step " + std::to_string(step_) + "/" +
                                       std::to_string(total_steps_) + " (line " +
                                       std::to_string(ins.line) + ") " + ins.keyword + ": " +
                                       st.message());
  }
  Lookup LookupIn(const StageState& s) {
    return [&s](const std::string& k) -> std::optional<std::string> {
      if (auto v = GetEnv(s.config.env, k)) return v;
      auto it = s.args.find(k);
      if (it != s.args.end()) return it->second;
      return std::nullopt;
    };
  }

  base::Status RunStage(const Stage& stage, int index) {
    ++step_;
    std::string base =
        ExpandVariables(stage.base, [this](const std::string& k) -> std::optional<std::string> {
          auto it = global_args_.find(k);
          if (it != global_args_.end()) return it->second;
          return std::nullopt;
        });
    Say("Step " + std::to_string(step_) + "/" + std::to_string(total_steps_) + " : FROM " + base +
        (stage.name.empty() ? "" : " AS " + stage.name));
    StageState st;
    auto named = stage_names_.find(base);
    if (base == "scratch") {
      Say(" ---> scratch (no layers)");
    } else if (named != stage_names_.end()) {
      const StageState& from = stages_[static_cast<size_t>(named->second)];
      st.layers = from.layers;
      st.config = from.config;
      Say(" ---> stage " + base);
    } else {
      auto ref = ParseReference(base);
      if (!ref.ok()) return StepError(stage.from, ref.status());
      auto prepared = images_.Prepare(ref->repository, ref->reference);
      if (!prepared.ok()) {
        return StepError(stage.from, base::Status(prepared.status().code(),
                                                  base + ": " + prepared.status().message()));
      }
      st.config = prepared->image.config;
      for (size_t i = 0; i < prepared->image.layers.size(); ++i) {
        Layer l;
        l.desc = prepared->image.layers[i];
        l.diff_id = i < st.config.diff_ids.size() ? st.config.diff_ids[i] : "";
        l.dir = prepared->lower_dirs[i];
        l.from_repo = ref->repository;
        st.layers.push_back(std::move(l));
      }
      st.lease = std::move(prepared->lease);
      Say(" ---> " + ref->repository + "@" + prepared->image.manifest_digest.substr(0, 19) + " (" +
          std::to_string(st.layers.size()) + " layers)");
    }
    // Config the new image does not inherit as such.
    st.config.created.clear();
    for (const auto& ins : stage.steps) {
      ++step_;
      Say("Step " + std::to_string(step_) + "/" + std::to_string(total_steps_) + " : " +
          ins.Text());
      base::Status s = Step(st, ins);
      if (!s.ok()) return StepError(ins, s);
    }
    if (!stage.name.empty()) stage_names_[stage.name] = index;
    stage_names_[std::to_string(index)] = index;
    stages_.push_back(std::move(st));
    return base::Status::Ok();
  }

  void History(StageState& st, const std::string& created_by, bool empty) {
    ImageConfig::History h;
    h.created = Now3339();
    h.created_by = created_by;
    h.comment = "stratus build";
    h.empty_layer = empty;
    st.config.history.push_back(std::move(h));
  }

  base::Status Step(StageState& st, const Instruction& ins) {
    const std::string& k = ins.keyword;
    Lookup lookup = LookupIn(st);
    if (k == "RUN") return RunStep(st, ins);
    if (k == "COPY" || k == "ADD") return CopyStep(st, ins);
    if (k == "ARG") {
      std::string a = ins.args;
      std::string name = a.substr(0, a.find('='));
      std::optional<std::string> def;
      if (a.find('=') != std::string::npos)
        def = ExpandVariables(a.substr(a.find('=') + 1), lookup);
      auto given = o_.build_args.find(name);
      if (given != o_.build_args.end()) {
        st.args[name] = given->second;
      } else if (def) {
        st.args[name] = *def;
      } else if (auto g = global_args_.find(name); g != global_args_.end()) {
        st.args[name] = g->second;
      } else {
        st.args[name] = "";
      }
      return base::Status::Ok();
    }
    std::string args = ExpandVariables(ins.args, lookup);
    if (k == "ENV") {
      ASSIGN_OR_RETURN(auto kv, ParseKeyValues(args, true));
      for (auto& [key, v] : kv) SetEnv(st.config.env, key, v);
    } else if (k == "LABEL") {
      ASSIGN_OR_RETURN(auto kv, ParseKeyValues(args, true));
      for (auto& [key, v] : kv) st.config.labels[key] = v;
    } else if (k == "MAINTAINER") {
      st.config.labels["maintainer"] = args;
    } else if (k == "WORKDIR") {
      st.config.working_dir = ImagePath(st.config.working_dir, args);
      if (!IsDirInLayers(st.layers, st.config.working_dir)) {
        // Docker creates the directory; so do we, as a small layer.
        std::string dir = NewDir("workdir");
        RETURN_IF_ERROR(base::MakeDirs(dir + st.config.working_dir, 0755));
        return AddLayer(st, dir, false, "WORKDIR " + st.config.working_dir);
      }
    } else if (k == "USER") {
      st.config.user = args;
    } else if (k == "EXPOSE") {
      ASSIGN_OR_RETURN(auto words, SplitWords(args));
      for (auto w : words) {
        if (w.find('/') == std::string::npos) w += "/tcp";
        std::string port = w.substr(0, w.find('/')), proto = w.substr(w.find('/') + 1);
        auto n = Numeric(port);
        if (!n || *n == 0 || *n > 65535 || (proto != "tcp" && proto != "udp")) {
          return base::InvalidArgument("EXPOSE '" + w + "' is not PORT[/tcp|/udp]");
        }
        if (std::find(st.config.exposed_ports.begin(), st.config.exposed_ports.end(), w) ==
            st.config.exposed_ports.end()) {
          st.config.exposed_ports.push_back(w);
        }
      }
    } else if (k == "ENTRYPOINT" || k == "CMD") {
      std::vector<std::string> v;
      if (ins.exec_form) {
        v = ins.exec;
      } else if (!ins.args.empty()) {
        v = {"/bin/sh", "-c", ins.args};
      }
      if (k == "ENTRYPOINT") {
        st.config.entrypoint = v;
        st.config.cmd.clear();  // Docker: ENTRYPOINT resets an inherited CMD
      } else {
        st.config.cmd = v;
      }
    } else if (k == "STOPSIGNAL") {
      st.config.stop_signal = args;
    }
    History(st, ins.Text(), true);
    return base::Status::Ok();
  }

  std::string NewDir(const std::string& what) {
    std::string d = o_.work_dir + "/" + what + "-" + std::to_string(++dirs_);
    (void)base::MakeDirs(d, 0755);
    return d;
  }

  // `dir` becomes the stage's next layer (and stays as its lower dir).
  base::Status AddLayer(StageState& st, const std::string& dir, bool overlay_upper,
                        const std::string& created_by) {
    std::string blob = o_.work_dir + "/layer-" + std::to_string(++dirs_) + ".tar.gz";
    LayerOptions lo;
    lo.from_overlay_upper = overlay_upper;
    ASSIGN_OR_RETURN(WrittenLayer w, WriteLayer(dir, blob, lo));
    if (w.entries == 0 && overlay_upper) {
      // A RUN that changed nothing adds no layer (as BuildKit does).
      (void)RemoveTree(blob);
      History(st, created_by, true);
      Say(" ---> no changes");
      return base::Status::Ok();
    }
    Layer l;
    l.desc.media_type = std::string(kOciLayerGzip);
    l.desc.digest = w.digest;
    l.desc.size = w.size;
    l.diff_id = w.diff_id;
    l.dir = dir;
    l.blob_path = blob;
    st.layers.push_back(std::move(l));
    st.config.diff_ids.clear();
    for (const auto& x : st.layers) st.config.diff_ids.push_back(x.diff_id);
    History(st, created_by, false);
    Say(" ---> layer " + w.digest.substr(7, 12) + " (" + HumanSize(w.size) + ", " +
        std::to_string(w.entries) + " entries)");
    return base::Status::Ok();
  }

  base::Status RunStep(StageState& st, const Instruction& ins) {
    if (geteuid() != 0) {
      return base::PermissionDenied(
          "RUN needs root (it runs in a sandbox); run stratus build as root");
    }
    std::vector<std::string> argv =
        ins.exec_form ? ins.exec : std::vector<std::string>{"/bin/sh", "-c", ins.args};
    if (argv.empty()) return base::InvalidArgument("RUN needs a command");
    sandbox::SandboxSpec spec;
    spec.root = sandbox::RootKind::kOverlay;
    for (const auto& l : st.layers) spec.overlay.lower_dirs.push_back(l.dir);
    if (spec.overlay.lower_dirs.empty()) spec.overlay.lower_dirs.push_back(empty_dir_);
    std::string writable = NewDir("run");
    spec.overlay.writable_dir = writable;
    spec.hostname = "build";
    uint32_t uid = 0, gid = 0;
    if (!st.config.user.empty()) {
      ASSIGN_OR_RETURN(auto ids, ResolveUser(LayerDirs(st.layers), st.config.user));
      uid = ids.first;
      gid = ids.second;
    }
    spec.uid = uid;
    spec.gid = gid;
    sandbox::ProcessSpec proc;
    proc.argv = argv;
    proc.env = st.config.env;
    for (const auto& [k, v] : st.args)
      if (!GetEnv(proc.env, k)) proc.env.push_back(k + "=" + v);
    if (!GetEnv(proc.env, "PATH")) {
      proc.env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    }
    proc.cwd = st.config.working_dir.empty() ? "/" : st.config.working_dir;
    proc.stdio = sandbox::StdioMode::kCapture;
    proc.sink = [this](sandbox::OutputStream, base::SystemTime, std::string_view line) {
      Say("  | " + std::string(line));
    };
    auto started = sandbox::Sandbox::CreateAndStart(spec, proc);
    if (!started.ok()) return base::Status(started.status().code(), started.status().message());
    auto status = started->process.Wait(std::chrono::milliseconds(o_.run_timeout));
    started->sandbox->Destroy().ok();
    if (!status.ok()) return status.status();
    if (status->timed_out) {
      return base::Status(base::Code::kDeadlineExceeded,
                          "'" + ins.args + "' did not finish within " +
                              std::to_string(o_.run_timeout.count()) + " s");
    }
    if (!status->exited || status->code != 0) {
      return base::FailedPrecondition(
          "'" + ins.args + "' returned a non-zero code: " + std::to_string(status->ShellCode()) +
          (status->oom_killed ? " (out of memory)" : ""));
    }
    std::string upper = writable + "/upper";
    // The overlay's work dir is not part of the layer; drop it now.
    (void)RemoveTree(writable + "/work");
    return AddLayer(st, upper, true, "RUN " + ins.args);
  }

  base::Status CopyStep(StageState& st, const Instruction& ins) {
    bool add = ins.keyword == "ADD";
    Lookup lookup = LookupIn(st);
    std::string from;
    Owner owner;
    std::optional<mode_t> chmod_to;
    for (const auto& f : ins.flags) {
      std::string name = f.substr(0, f.find('='));
      std::string value = f.find('=') == std::string::npos
                              ? ""
                              : ExpandVariables(f.substr(f.find('=') + 1), lookup);
      if (name == "--from") {
        from = value;
      } else if (name == "--chown") {
        ASSIGN_OR_RETURN(auto ids, ResolveUser(LayerDirs(st.layers), value));
        owner.uid = ids.first;
        owner.gid = ids.second;
      } else if (name == "--chmod") {
        unsigned m = 0;
        if (value.empty() || value.size() > 4 ||
            value.find_first_not_of("01234567") != std::string::npos) {
          return base::InvalidArgument("--chmod takes an octal mode");
        }
        m = static_cast<unsigned>(std::stoul(value, nullptr, 8));
        chmod_to = static_cast<mode_t>(m);
      }
    }
    std::vector<std::string> words;
    if (ins.exec_form) {
      for (const auto& w : ins.exec) words.push_back(ExpandVariables(w, lookup));
    } else {
      ASSIGN_OR_RETURN(words, SplitWords(ExpandVariables(ins.args, lookup)));
    }
    if (words.size() < 2) return base::InvalidArgument(ins.keyword + " needs SRC... DEST");
    std::string dest_raw = words.back();
    words.pop_back();

    // Where sources come from: the context, or another stage's merged view.
    std::string root = o_.context_dir;
    Mount merged;
    if (!from.empty()) {
      std::string key = from;
      for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto it = stage_names_.find(key);
      if (it == stage_names_.end()) {
        return base::NotFound("COPY --from=" + from +
                              ": no such earlier stage (images as "
                              "--from sources are not supported)");
      }
      const StageState& src = stages_[static_cast<size_t>(it->second)];
      std::string mnt = NewDir("from");
      std::string lower;
      for (auto l = src.layers.rbegin(); l != src.layers.rend(); ++l) lower += l->dir + ":";
      lower += empty_dir_;
      std::string opts = "lowerdir=" + lower;
      if (src.layers.size() == 0) {
        root = empty_dir_;
      } else {
        if (::mount("overlay", mnt.c_str(), "overlay", MS_RDONLY, opts.c_str()) < 0) {
          return base::ErrnoError("mount the layers of stage " + from);
        }
        merged = Mount(mnt);
        root = mnt;
      }
    }

    // Expand wildcards in the last path component.
    std::vector<std::pair<std::string, std::string>> sources;  // (host path, name)
    for (const auto& w : words) {
      if (add && (w.starts_with("http://") || w.starts_with("https://"))) {
        return base::Unimplemented("ADD from a URL is not supported (no network in builds)");
      }
      if (w.find_first_of("*?[") != std::string::npos) {
        std::string dir = w.find('/') == std::string::npos ? "." : w.substr(0, w.rfind('/'));
        std::string pat = w.substr(w.rfind('/') == std::string::npos ? 0 : w.rfind('/') + 1);
        ASSIGN_OR_RETURN(std::string host_dir, ResolveInRoot(root, dir));
        DIR* d = opendir(host_dir.c_str());
        if (d == nullptr) return base::ErrnoError("open " + dir);
        std::vector<std::string> names;
        while (dirent* e = readdir(d)) {
          std::string n = e->d_name;
          if (n != "." && n != ".." && fnmatch(pat.c_str(), n.c_str(), FNM_PERIOD) == 0)
            names.push_back(n);
        }
        closedir(d);
        std::sort(names.begin(), names.end());
        if (names.empty()) return base::NotFound("no source files match '" + w + "'");
        for (const auto& n : names) {
          ASSIGN_OR_RETURN(std::string p, ResolveInRoot(root, JoinPath(dir, n)));
          sources.emplace_back(p, n);
        }
        continue;
      }
      auto p = ResolveInRoot(root, w);
      if (!p.ok()) {
        return base::NotFound("'" + w + "' not found in " +
                              (from.empty() ? "the build context" : "stage " + from));
      }
      std::string name = w;
      while (name.size() > 1 && name.back() == '/') name.pop_back();
      name = name.substr(name.rfind('/') == std::string::npos ? 0 : name.rfind('/') + 1);
      sources.emplace_back(*p, name);
    }

    std::string dest = ImagePath(st.config.working_dir, dest_raw);
    bool dest_is_dir =
        dest_raw.ends_with("/") || sources.size() > 1 || IsDirInLayers(st.layers, dest);
    std::string layer = NewDir(add ? "add" : "copy");
    for (const auto& [path, name] : sources) {
      struct stat s {};
      if (stat(path.c_str(), &s) < 0) return base::ErrnoError("stat " + name);
      if (add && S_ISREG(s.st_mode) && from.empty() && IsTarArchive(path)) {
        std::string target = layer + dest;
        RETURN_IF_ERROR(base::MakeDirs(target, 0755));
        UnpackOptions uo;
        uo.overlay_whiteouts = false;
        uo.preserve_owner = geteuid() == 0;
        auto r = UnpackLayer(path, target, uo);
        if (!r.ok())
          return base::Status(r.status().code(), "ADD " + name + ": " + r.status().message());
        continue;
      }
      std::string target;
      if (S_ISDIR(s.st_mode)) {
        target = layer + dest;  // a directory's contents go into dest
      } else {
        target = dest_is_dir ? layer + JoinPath(dest, name) : layer + dest;
      }
      RETURN_IF_ERROR(base::MakeDirs(base::DirName(target), 0755));
      RETURN_IF_ERROR(CopyTree(path, target, owner, chmod_to));
    }
    return AddLayer(st, layer, false, ins.Text());
  }

  base::Result<BuildResult> Push(StageState& st) {
    const std::string& repo = o_.repository;
    BuildResult res;
    Say("Pushing " + repo + ":" + o_.tag);
    std::vector<Descriptor> layers;
    for (const auto& l : st.layers) {
      layers.push_back(l.desc);
      res.size += l.desc.size;
      ASSIGN_OR_RETURN(bool has, pusher_.HasBlob(repo, l.desc.digest));
      std::string how = "exists";
      if (!has && !l.from_repo.empty() && l.from_repo != repo) {
        ASSIGN_OR_RETURN(has, pusher_.MountBlob(repo, l.desc.digest, l.from_repo));
        if (has) how = "mounted from " + l.from_repo;
      }
      if (!has) {
        std::string path = l.blob_path;
        if (path.empty()) {
          ASSIGN_OR_RETURN(path, source_.BlobPath(l.from_repo, l.desc.digest));
        }
        RETURN_IF_ERROR(pusher_.PushBlob(repo, l.desc.digest, path));
        how = "pushed";
      }
      Say("  layer " + l.desc.digest.substr(7, 12) + " " + HumanSize(l.desc.size) + ": " + how);
    }
    st.config.created = Now3339();
    st.config.os = "linux";
    st.config.architecture = "amd64";
    std::string config = SerializeImageConfig(st.config);
    Descriptor cd;
    cd.digest = "sha256:" + base::Sha256Hex(config);
    cd.size = config.size();
    cd.media_type = std::string(kOciConfig);
    std::string cpath = o_.work_dir + "/config.json";
    RETURN_IF_ERROR(base::WriteFileAtomic(cpath, config));
    ASSIGN_OR_RETURN(bool has_cfg, pusher_.HasBlob(repo, cd.digest));
    if (!has_cfg) RETURN_IF_ERROR(pusher_.PushBlob(repo, cd.digest, cpath));
    std::string manifest = SerializeOciManifest(cd, layers);
    ASSIGN_OR_RETURN(res.manifest_digest,
                     pusher_.PutManifest(repo, o_.tag, manifest, kOciManifest));
    res.size += cd.size;
    res.layers = static_cast<int>(layers.size());
    Say("Pushed " + repo + ":" + o_.tag + " " + res.manifest_digest + " (" +
        std::to_string(res.layers) + " layers, " + HumanSize(res.size) + ")");
    return res;
  }

  const BuildOptions& o_;
  ImageStore& images_;
  Source& source_;
  Pusher& pusher_;
  int step_ = 0, total_steps_ = 0, dirs_ = 0;
  std::string empty_dir_;
  std::map<std::string, std::string> global_args_;
  std::vector<StageState> stages_;
  std::map<std::string, int> stage_names_;
};

}  // namespace

std::string HumanSize(uint64_t bytes) {
  char buf[32];
  if (bytes < 1000) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else if (bytes < 1000 * 1000) {
    std::snprintf(buf, sizeof buf, "%.1f kB", static_cast<double>(bytes) / 1e3);
  } else if (bytes < 1000ull * 1000 * 1000) {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f GB", static_cast<double>(bytes) / 1e9);
  }
  return buf;
}

base::Result<BuildResult> Build(const BuildOptions& options, ImageStore& images, Source& source,
                                Pusher& pusher) {
  if (options.repository.empty() || options.tag.empty()) {
    return base::InvalidArgument("build: a repository and a tag are required");
  }
  Builder b(options, images, source, pusher);
  return b.Run();
}

base::Result<BuildResult> ImportRootfs(const std::string& tarball, const std::string& repository,
                                       const std::string& tag, const ImageConfig& config,
                                       const std::string& work_dir, Pusher& pusher,
                                       const std::function<void(const std::string&)>& progress) {
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  // Unpack with every safety check, then write a clean OCI layer from the tree: what is
  // pushed is exactly what the image store will accept.
  std::string tree = work_dir + "/rootfs";
  RETURN_IF_ERROR(base::MakeDirs(tree, 0755));
  UnpackOptions uo;
  uo.overlay_whiteouts = false;
  uo.preserve_owner = geteuid() == 0;
  say("Unpacking " + tarball);
  ASSIGN_OR_RETURN(UnpackStats us, UnpackLayer(tarball, tree, uo));
  std::string blob = work_dir + "/layer.tar.gz";
  ASSIGN_OR_RETURN(WrittenLayer w, WriteLayer(tree, blob, LayerOptions{}));
  say(" ---> layer " + w.digest.substr(7, 12) + " (" + HumanSize(w.size) + ", " +
      std::to_string(us.entries) + " entries)");
  ImageConfig c = config;
  c.os = "linux";
  c.architecture = "amd64";
  c.created = Now3339();
  c.diff_ids = {w.diff_id};
  if (!GetEnv(c.env, "PATH")) {
    SetEnv(c.env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  }
  c.history = {{c.created, "stratus image import " + tarball, "", false}};
  std::string cfg = SerializeImageConfig(c);
  Descriptor cd;
  cd.digest = "sha256:" + base::Sha256Hex(cfg);
  cd.size = cfg.size();
  std::string cpath = work_dir + "/config.json";
  RETURN_IF_ERROR(base::WriteFileAtomic(cpath, cfg));
  ASSIGN_OR_RETURN(bool has_layer, pusher.HasBlob(repository, w.digest));
  if (!has_layer) RETURN_IF_ERROR(pusher.PushBlob(repository, w.digest, blob));
  ASSIGN_OR_RETURN(bool has_config, pusher.HasBlob(repository, cd.digest));
  if (!has_config) RETURN_IF_ERROR(pusher.PushBlob(repository, cd.digest, cpath));
  Descriptor ld;
  ld.media_type = std::string(kOciLayerGzip);
  ld.digest = w.digest;
  ld.size = w.size;
  std::string manifest = SerializeOciManifest(cd, {ld});
  BuildResult res;
  ASSIGN_OR_RETURN(res.manifest_digest,
                   pusher.PutManifest(repository, tag, manifest, kOciManifest));
  res.size = w.size + cd.size;
  res.layers = 1;
  say("Pushed " + repository + ":" + tag + " " + res.manifest_digest + " (" + HumanSize(res.size) +
      ")");
  return res;
}

}  // namespace image
