#include "server/root_credentials.h"

#include <sys/stat.h>

#include "base/fs.h"
#include "base/ids.h"
#include "base/strings.h"

namespace server {

std::string RootCredentialsPath(const std::string& data_dir) { return data_dir + "/credentials"; }

base::Result<RootCredentials> LoadRootCredentials(const std::string& data_dir) {
  std::string path = RootCredentialsPath(data_dir);
  ASSIGN_OR_RETURN(std::string text, base::ReadFile(path));
  RootCredentials c;
  for (std::string_view line : base::Split(text, '\n')) {
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = base::Trim(line.substr(0, eq));
    std::string_view value = base::Trim(line.substr(eq + 1));
    if (key == "aws_access_key_id") c.access_key_id = std::string(value);
    if (key == "aws_secret_access_key") c.secret_access_key = std::string(value);
  }
  if (c.access_key_id.empty() || c.secret_access_key.empty())
    return base::Corruption(path + " lacks aws_access_key_id or aws_secret_access_key");
  return c;
}

base::Result<RootCredentials> LoadOrCreateRootCredentials(const std::string& data_dir) {
  auto existing = LoadRootCredentials(data_dir);
  if (existing.ok() || existing.status().code() != base::Code::kNotFound) return existing;
  RETURN_IF_ERROR(base::MakeDirs(data_dir, 0700));
  RootCredentials c;
  c.access_key_id = "AKIA" + base::RandomString(16, base::kUpperAlnum);
  c.secret_access_key = base::RandomString(40, base::kAlnum);
  std::string text =
      "# Root credentials of this Stratus server. Keep secret.\n[default]\n"
      "aws_access_key_id = " +
      c.access_key_id + "\naws_secret_access_key = " + c.secret_access_key + "\n";
  RETURN_IF_ERROR(base::WriteFileAtomic(RootCredentialsPath(data_dir), text, 0600));
  return c;
}

}  // namespace server
