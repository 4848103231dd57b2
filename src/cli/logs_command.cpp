#include "cli/logs_command.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "auth/sigv4.h"
#include "base/crypto.h"
#include "base/strings.h"
#include "base/time.h"
#include "http/client.h"
#include "server/root_credentials.h"

namespace cli {

namespace {

using nlohmann::json;

struct Credentials {
  std::string key, secret, token;
};

base::Result<Credentials> FindCredentials(const LogsFlags& flags, const server::Config& config) {
  const char* key = std::getenv("AWS_ACCESS_KEY_ID");
  const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  if (!flags.data_dir_given && key && secret && *key && *secret) {
    const char* token = std::getenv("AWS_SESSION_TOKEN");
    return Credentials{key, secret, token ? token : ""};
  }
  auto root = server::LoadRootCredentials(config.data_dir);
  if (!root.ok())
    return base::NotFound(
        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
        "point --data-dir at the server's data directory (" +
        root.status().message() + ")");
  return Credentials{root->access_key_id, root->secret_access_key, ""};
}

// "10m" → milliseconds.
std::optional<int64_t> ParseSince(const std::string& s) {
  if (s.size() < 2) return std::nullopt;
  auto n = base::ParseInt(std::string_view(s).substr(0, s.size() - 1));
  if (!n || *n < 0) return std::nullopt;
  int64_t unit = 0;
  switch (s.back()) {
    case 's':
      unit = 1000;
      break;
    case 'm':
      unit = 60 * 1000;
      break;
    case 'h':
      unit = 3600 * 1000;
      break;
    case 'd':
      unit = 86400 * 1000;
      break;
    case 'w':
      unit = 7 * 86400 * 1000LL;
      break;
    default:
      return std::nullopt;
  }
  return *n * unit;
}

// 2026-11-23T22:41:00.123000+00:00, as `aws logs tail` prints it.
std::string FormatTimestamp(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03d000+00:00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

class LogsClient {
 public:
  LogsClient(http::Url url, Credentials creds, std::string region)
      : url_(std::move(url)),
        creds_(std::move(creds)),
        region_(std::move(region)),
        client_(url_.host, url_.port) {}

  // Calls Logs_20140328.<op>; an AWS error becomes a Status "Code: message".
  base::Result<json> Call(const std::string& op, const json& input) {
    http::Request req;
    req.method = "POST";
    req.path = url_.path;
    req.target = url_.path;
    req.body = input.dump();
    std::string host = url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host;
    std::string amz_date = base::FormatAmzDate(base::SystemClock().Now());
    req.headers = {{"Host", host + ":" + std::to_string(url_.port)},
                   {"X-Amz-Date", amz_date},
                   {"X-Amz-Target", "Logs_20140328." + op},
                   {"Content-Type", "application/x-amz-json-1.1"}};
    if (!creds_.token.empty()) req.headers.push_back({"X-Amz-Security-Token", creds_.token});
    std::vector<auth::Header> headers;
    for (const auto& h : req.headers) headers.push_back({h.name, h.value});
    auth::HttpRequestView view{req.method, req.path, "", &headers, req.body};
    req.headers.push_back({"Authorization", auth::SignAuthorizationHeader(
                                                view, creds_.key, creds_.secret, region_, "logs",
                                                amz_date, base::Sha256Hex(req.body))});
    ASSIGN_OR_RETURN(http::Response resp, client_.Send(req));
    json out = json::parse(resp.body, nullptr, /*allow_exceptions=*/false);
    if (resp.status != 200) {
      std::string code = "HTTP " + std::to_string(resp.status);
      if (const std::string* t = resp.Find("x-amzn-ErrorType")) code = *t;
      std::string message = resp.body;
      if (out.is_object() && out.contains("message") && out["message"].is_string())
        message = out["message"].get<std::string>();
      base::Code c = code == "ResourceNotFoundException" ? base::Code::kNotFound
                                                         : base::Code::kFailedPrecondition;
      return base::Status(c, code + ": " + message);
    }
    if (!out.is_object()) return base::Internal("unexpected response: " + resp.body);
    return out;
  }

 private:
  http::Url url_;
  Credentials creds_;
  std::string region_;
  http::Client client_;
};

}  // namespace

int RunLogs(const LogsFlags& flags, const server::Config& config) {
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "stratus logs: %s\n", m.c_str());
    return 1;
  };
  auto since = ParseSince(flags.since);
  if (!since) return fail("--since: expected a number and a unit (s, m, h, d, w), e.g. 10m");
  std::string endpoint = flags.endpoint_url;
  if (endpoint.empty())
    if (const char* e = std::getenv("AWS_ENDPOINT_URL"); e && *e) endpoint = e;
  if (endpoint.empty()) {
    auto hp = server::ParseListen(config.listen);
    if (!hp.ok()) return fail(hp.status().message());
    endpoint = server::EndpointUrl(*hp);
  }
  auto url = http::ParseUrl(endpoint);
  if (!url.ok()) return fail(url.status().message());
  auto creds = FindCredentials(flags, config);
  if (!creds.ok()) return fail(creds.status().message());
  std::string region = config.region;
  if (const char* r = std::getenv("AWS_DEFAULT_REGION"); r && *r) region = r;
  if (const char* r = std::getenv("AWS_REGION"); r && *r) region = r;
  if (flags.name.empty()) return fail("a function name is required");
  std::string group = flags.name.front() == '/' ? flags.name : "/aws/lambda/" + flags.name;

  LogsClient client(*url, *creds, region);
  const int64_t since_ms = base::EpochMillis(base::SystemClock().Now()) - *since;
  int64_t start = since_ms;
  int64_t newest = since_ms;
  std::set<std::pair<int64_t, std::string>> seen;  // (timestamp, eventId) at or after start
  for (;;) {
    std::string token;
    do {
      json in{{"logGroupName", group}, {"startTime", start}};
      if (!flags.filter_pattern.empty()) in["filterPattern"] = flags.filter_pattern;
      if (!token.empty()) in["nextToken"] = token;
      auto out = client.Call("FilterLogEvents", in);
      if (!out.ok()) {
        // Following a function that has not logged yet: wait for its group.
        if (flags.follow && out.status().code() == base::Code::kNotFound) break;
        return fail(out.status().message());
      }
      // json::value() throws on a wrong type; a malformed response must not abort us.
      try {
        const json& events = (*out)["events"];
        if (events.is_array()) {
          for (const json& e : events) {
            int64_t ts = e.value("timestamp", int64_t{0});
            std::string id = e.value("eventId", "");
            if (!seen.insert({ts, id}).second) continue;
            newest = std::max(newest, ts);
            std::string msg = e.value("message", "");
            if (!msg.empty() && msg.back() == '\n') msg.pop_back();
            std::printf("%s %s %s\n", FormatTimestamp(ts).c_str(),
                        e.value("logStreamName", "").c_str(), msg.c_str());
          }
        }
        token = out->value("nextToken", "");
      } catch (const json::exception& e) {
        return fail(std::string("unexpected FilterLogEvents response: ") + e.what());
      }
    } while (!token.empty());
    std::fflush(stdout);
    if (!flags.follow) return 0;
    // Keep polling from a little before the newest timestamp seen (events of other streams
    // may land slightly out of order); ids remember what was already printed.
    constexpr int64_t kLookbackMs = 5000;
    start = std::max(since_ms, newest - kLookbackMs);
    seen.erase(seen.begin(), seen.lower_bound({start, ""}));
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace cli
