#include "auth/sigv4.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "base/crypto.h"
#include "base/strings.h"

namespace auth {

namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kTerminator = "aws4_request";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

// Bounds on what we are willing to parse; real clients stay far below them.
constexpr size_t kMaxAuthorizationBytes = 16 * 1024;
constexpr size_t kMaxSignedHeaders = 64;
constexpr size_t kMaxQueryBytes = 1024 * 1024;
constexpr size_t kMaxPathBytes = 64 * 1024;
constexpr int64_t kMaxPresignExpires = 7 * 24 * 3600;  // AWS: "less than a week"

constexpr std::string_view kMismatchMessage =
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details.";
constexpr std::string_view kInvalidTokenMessage =
    "The security token included in the request is invalid.";
constexpr std::string_view kExpiredTokenMessage =
    "The security token included in the request is expired";
constexpr std::string_view kPresignParamsMessage =
    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
    "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.";

AuthFailure Fail(AuthError error, std::string message) {
  return AuthFailure{error, std::move(message), {}, {}};
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

bool AllDigits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

const std::vector<Header>& HeadersOf(const HttpRequestView& req) {
  static const std::vector<Header> kNone;
  return req.headers != nullptr ? *req.headers : kNone;
}

// The first header called `name` (case-insensitive) or null; `count` gets how many there are.
const Header* FindHeader(const HttpRequestView& req, std::string_view name,
                         size_t* count = nullptr) {
  const Header* first = nullptr;
  size_t n = 0;
  for (const Header& h : HeadersOf(req)) {
    if (base::EqualsIgnoreCase(h.name, name)) {
      if (first == nullptr) first = &h;
      ++n;
    }
  }
  if (count != nullptr) *count = n;
  return first;
}

// Canonical header value: trimmed, inner whitespace runs collapsed to one space (botocore:
// ' '.join(value.split()), which also unfolds obsolete multi-line values).
void AppendTrimAll(std::string& out, std::string_view value) {
  bool gap = false, any = false;
  for (char c : value) {
    if (IsSpace(c)) {
      gap = any;
      continue;
    }
    if (gap) out.push_back(' ');
    gap = false;
    any = true;
    out.push_back(c);
  }
}

// botocore's remove_dot_segments: RFC 3986 §5.2.4 plus dropping empty segments.
std::string RemoveDotSegments(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> out;
  for (std::string_view seg : base::Split(path, '/')) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
    } else {
      out.push_back(seg);
    }
  }
  std::string result;
  if (path.front() == '/') result.push_back('/');
  for (size_t i = 0; i < out.size(); ++i) {
    if (i > 0) result.push_back('/');
    result.append(out[i]);
  }
  if (path.back() == '/' && !out.empty()) result.push_back('/');
  return result;
}

// The path as sent, except that bytes a client cannot have meant literally on the request
// line (spaces, raw UTF-8, ...) are encoded; '%XX' escapes are kept as they are.
std::string EncodeAsSent(std::string_view path) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size());
  for (char ch : path) {
    auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || c == '/' || c == '%') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 15]);
    }
  }
  return out;
}

std::string CanonicalUri(std::string_view raw_path, bool s3_path_encoding) {
  if (raw_path.empty()) return "/";
  if (s3_path_encoding) return EncodeAsSent(raw_path);
  return base::UriEncode(RemoveDotSegments(raw_path), /*keep_slash=*/true);
}

enum class PlusMeans { kSpace, kPlus };

// Decodes one query component; a malformed escape is taken literally (it is then re-encoded,
// '%' becoming %25), so canonicalization never fails.
std::string DecodeComponent(std::string_view s, PlusMeans plus) {
  auto decoded = base::UriDecode(s, plus == PlusMeans::kSpace);
  return decoded ? std::move(*decoded) : std::string(s);
}

std::string CanonicalQuery(std::string_view raw_query, bool drop_signature_param, PlusMeans plus) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (std::string_view piece : base::Split(raw_query, '&')) {
    if (piece.empty()) continue;
    size_t eq = piece.find('=');
    std::string name = DecodeComponent(piece.substr(0, eq), plus);
    if (drop_signature_param && name == "X-Amz-Signature") continue;
    std::string value =
        eq == std::string_view::npos ? std::string() : DecodeComponent(piece.substr(eq + 1), plus);
    pairs.emplace_back(base::UriEncode(name), base::UriEncode(value));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

std::string CanonicalRequestImpl(const HttpRequestView& req,
                                 const std::vector<std::string>& signed_headers,
                                 std::string_view payload_hash, bool s3_path_encoding,
                                 bool drop_signature_param, PlusMeans plus) {
  std::string out;
  out.reserve(256 + req.raw_path.size() + req.raw_query.size());
  out.append(req.method);
  out.push_back('\n');
  out += CanonicalUri(req.raw_path, s3_path_encoding);
  out.push_back('\n');
  out += CanonicalQuery(req.raw_query, drop_signature_param, plus);
  out.push_back('\n');
  for (const std::string& name : signed_headers) {
    out += name;
    out.push_back(':');
    bool first = true;
    for (const Header& h : HeadersOf(req)) {
      if (!base::EqualsIgnoreCase(h.name, name)) continue;
      if (!first) out.push_back(',');
      first = false;
      AppendTrimAll(out, h.value);
    }
    out.push_back('\n');
  }
  out.push_back('\n');
  for (size_t i = 0; i < signed_headers.size(); ++i) {
    if (i > 0) out.push_back(';');
    out += signed_headers[i];
  }
  out.push_back('\n');
  out.append(payload_hash);
  return out;
}

std::string Scope(std::string_view date, std::string_view region, std::string_view service) {
  std::string s;
  s.append(date).append("/").append(region).append("/").append(service).append("/");
  s.append(kTerminator);
  return s;
}

std::string Sign(std::string_view secret, const ParsedSignature& sig,
                 const std::string& string_to_sign) {
  return base::HexEncode(
      base::HmacSha256(SigningKey(secret, sig.date, sig.region, sig.service), string_to_sign));
}

// base's date parsers overflow std::chrono's nanosecond clock for years outside ~1678..2262;
// no genuine request is dated outside this window.
bool PlausibleYear(std::string_view four_digits) {
  auto year = base::ParseInt(four_digits);
  return year && *year >= 1970 && *year <= 2200;
}

std::optional<base::SystemTime> ParseRequestDate(std::string_view amz_date) {
  if (amz_date.size() != 16 || !PlausibleYear(amz_date.substr(0, 4))) return std::nullopt;
  return base::ParseAmzDate(amz_date);
}

// "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 1123, the only Date format SigV4 clients send).
std::optional<base::SystemTime> ParseHttpDate(std::string_view s) {
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  s = base::Trim(s);
  if (s.size() != 29 || s[3] != ',' || s.substr(25) != " GMT") return std::nullopt;
  std::string_view day = s.substr(5, 2), mon = s.substr(8, 3), year = s.substr(12, 4),
                   clock = s.substr(17, 8);
  int month = 0;
  for (int i = 0; i < 12; ++i)
    if (kMonths[i] == mon) month = i + 1;
  if (month == 0 || !AllDigits(day) || !PlausibleYear(year)) return std::nullopt;
  std::string iso;
  iso.append(year).append("-");
  if (month < 10) iso.push_back('0');
  iso.append(std::to_string(month)).append("-").append(day).append("T").append(clock).append("Z");
  return base::ParseIso8601(iso);
}

// Fills access_key_id/date/region/service from "AKID/20150830/us-east-1/iam/aws4_request".
std::optional<AuthFailure> ParseCredentialScope(std::string_view credential, ParsedSignature& sig) {
  std::vector<std::string_view> parts = base::Split(credential, '/');
  if (parts.size() != 5 || parts[0].empty()) {
    return Fail(AuthError::kIncompleteSignature,
                "Credential should be of the form "
                "<access-key-id>/<YYYYMMDD>/<region>/<service>/aws4_request, not '" +
                    std::string(credential) + "'.");
  }
  if (parts[4] != kTerminator) {
    return Fail(AuthError::kIncompleteSignature,
                "Credential should be scoped with a valid terminator: 'aws4_request', not '" +
                    std::string(parts[4]) + "'.");
  }
  if (parts[1].size() != 8 || !AllDigits(parts[1])) {
    return Fail(
        AuthError::kIncompleteSignature,
        "Credential should be scoped to a valid date, not '" + std::string(parts[1]) + "'.");
  }
  if (parts[2].empty()) {
    return Fail(AuthError::kIncompleteSignature,
                "Credential should be scoped to a valid region, not ''.");
  }
  if (parts[3].empty()) {
    return Fail(AuthError::kIncompleteSignature,
                "Credential should be scoped to correct service: ''.");
  }
  sig.access_key_id = parts[0];
  sig.date = parts[1];
  sig.region = parts[2];
  sig.service = parts[3];
  return std::nullopt;
}

std::optional<AuthFailure> ParseSignedHeaders(std::string_view list, ParsedSignature& sig) {
  std::vector<std::string_view> names = base::Split(list, ';');
  if (names.size() > kMaxSignedHeaders) {
    return Fail(AuthError::kIncompleteSignature, "Too many headers in SignedHeaders.");
  }
  bool has_host = false;
  for (std::string_view name : names) {
    if (name.empty()) {
      return Fail(AuthError::kIncompleteSignature,
                  "SignedHeaders contains an empty header name: '" + std::string(list) + "'.");
    }
    sig.signed_headers.push_back(base::ToLower(name));
    if (sig.signed_headers.back() == "host") has_host = true;
  }
  if (!has_host) {
    return Fail(AuthError::kIncompleteSignature,
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }
  return std::nullopt;
}

// Checks X-Amz-Date's format and that the credential scope names the same day.
std::optional<AuthFailure> CheckDates(const ParsedSignature& sig) {
  if (!ParseRequestDate(sig.amz_date)) {
    return Fail(AuthError::kIncompleteSignature,
                "Date must be in ISO-8601 'basic format'. Got '" + sig.amz_date +
                    "'. See http://en.wikipedia.org/wiki/ISO_8601");
  }
  if (sig.amz_date.compare(0, 8, sig.date) != 0) {
    return Fail(AuthError::kIncompleteSignature,
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                "from HTTP: '" +
                    sig.date + "' != '" + sig.amz_date.substr(0, 8) + "', from '" + sig.amz_date +
                    "'.");
  }
  return std::nullopt;
}

std::variant<ParsedSignature, AuthFailure> ParseHeaderAuth(const HttpRequestView& req,
                                                           std::string_view value) {
  if (value.size() > kMaxAuthorizationBytes) {
    return Fail(AuthError::kIncompleteSignature, "Authorization header is too long.");
  }
  value = base::Trim(value);
  size_t sp = value.find_first_of(" \t");
  std::string_view algorithm = value.substr(0, sp);
  if (algorithm != kAlgorithm) {
    if (algorithm.empty()) {
      return Fail(AuthError::kIncompleteSignature, "Authorization header is empty.");
    }
    return Fail(AuthError::kUnsupportedAlgorithm, "Unsupported Authorization Type '" +
                                                      std::string(algorithm.substr(0, 64)) +
                                                      "'; only AWS4-HMAC-SHA256 is supported.");
  }
  std::string_view rest = sp == std::string_view::npos ? std::string_view() : value.substr(sp);
  std::optional<std::string_view> credential, signed_headers, signature;
  for (std::string_view part : base::Split(rest, ',')) {
    part = base::Trim(part);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      return Fail(AuthError::kIncompleteSignature,
                  "Authorization header requires each component to be of the form key=value. "
                  "Authorization=" +
                      std::string(value));
    }
    std::string_view key = base::Trim(part.substr(0, eq));
    std::string_view val = base::Trim(part.substr(eq + 1));
    std::optional<std::string_view>* slot = nullptr;
    if (key == "Credential") slot = &credential;
    if (key == "SignedHeaders") slot = &signed_headers;
    if (key == "Signature") slot = &signature;
    if (slot == nullptr) continue;  // unknown components are ignored, as AWS does
    if (slot->has_value()) {
      return Fail(AuthError::kIncompleteSignature,
                  "Authorization header has a duplicate '" + std::string(key) +
                      "' parameter. Authorization=" + std::string(value));
    }
    *slot = val;
  }
  std::string missing;
  if (!credential || credential->empty())
    missing += "Authorization header requires 'Credential' parameter. ";
  if (!signature || signature->empty())
    missing += "Authorization header requires 'Signature' parameter. ";
  if (!signed_headers || signed_headers->empty())
    missing += "Authorization header requires 'SignedHeaders' parameter. ";
  if (!missing.empty()) {
    return Fail(AuthError::kIncompleteSignature, missing + "Authorization=" + std::string(value));
  }

  ParsedSignature sig;
  if (auto f = ParseCredentialScope(*credential, sig)) return std::move(*f);
  if (auto f = ParseSignedHeaders(*signed_headers, sig)) return std::move(*f);
  sig.signature = *signature;

  if (const Header* h = FindHeader(req, "x-amz-date")) {
    sig.amz_date = base::Trim(h->value);
  } else if (const Header* d = FindHeader(req, "date")) {
    auto t = ParseHttpDate(d->value);
    if (!t) {
      return Fail(AuthError::kIncompleteSignature,
                  "Date must be in ISO-8601 'basic format'. Got '" + std::string(d->value) + "'.");
    }
    sig.amz_date = base::FormatAmzDate(*t);
  } else {
    return Fail(AuthError::kIncompleteSignature,
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                "header. Authorization=" +
                    std::string(value));
  }
  if (auto f = CheckDates(sig)) return std::move(*f);
  if (const Header* t = FindHeader(req, "x-amz-security-token")) {
    sig.session_token = base::Trim(t->value);
  }
  return sig;
}

std::variant<ParsedSignature, AuthFailure> ParseQueryAuth(const HttpRequestView& req) {
  std::optional<std::string> algorithm, credential, date, expires, signed_headers, signature, token;
  for (std::string_view piece : base::Split(req.raw_query, '&')) {
    size_t eq = piece.find('=');
    std::string name = DecodeComponent(piece.substr(0, eq), PlusMeans::kPlus);
    std::optional<std::string>* slot = nullptr;
    if (name == "X-Amz-Algorithm") slot = &algorithm;
    if (name == "X-Amz-Credential") slot = &credential;
    if (name == "X-Amz-Date") slot = &date;
    if (name == "X-Amz-Expires") slot = &expires;
    if (name == "X-Amz-SignedHeaders") slot = &signed_headers;
    if (name == "X-Amz-Signature") slot = &signature;
    if (name == "X-Amz-Security-Token") slot = &token;
    if (slot == nullptr) continue;
    if (slot->has_value()) {
      return Fail(AuthError::kIncompleteSignature, "Duplicate query parameter " + name + ".");
    }
    // Tokens are base64: a literal '+' there is a plus, never a space.
    *slot = eq == std::string_view::npos ? std::string()
                                         : DecodeComponent(piece.substr(eq + 1), PlusMeans::kPlus);
  }
  if (algorithm && *algorithm != kAlgorithm) {
    return Fail(AuthError::kUnsupportedAlgorithm,
                "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
  }
  if (!algorithm || !credential || !date || !expires || !signed_headers || !signature ||
      credential->empty() || signed_headers->empty() || signature->empty()) {
    return Fail(AuthError::kIncompleteSignature, std::string(kPresignParamsMessage));
  }
  ParsedSignature sig;
  sig.presigned = true;
  if (auto f = ParseCredentialScope(*credential, sig)) return std::move(*f);
  if (auto f = ParseSignedHeaders(*signed_headers, sig)) return std::move(*f);
  sig.signature = *signature;
  sig.amz_date = *date;
  if (auto f = CheckDates(sig)) return std::move(*f);
  std::optional<int64_t> seconds = base::ParseInt(*expires);
  if (!seconds || *seconds < 0) {
    return Fail(AuthError::kIncompleteSignature,
                "X-Amz-Expires should be a number of seconds between 1 and 604800, not '" +
                    expires->substr(0, 32) + "'.");
  }
  if (*seconds > kMaxPresignExpires) {
    return Fail(AuthError::kIncompleteSignature,
                "X-Amz-Expires must be less than a week (in seconds) that is 604800");
  }
  sig.expires_seconds = *seconds;
  if (token) {
    sig.session_token = std::move(*token);
  } else if (const Header* t = FindHeader(req, "x-amz-security-token")) {
    sig.session_token = base::Trim(t->value);
  }
  return sig;
}

bool HasQueryParam(std::string_view raw_query, std::string_view wanted) {
  for (std::string_view piece : base::Split(raw_query, '&')) {
    if (DecodeComponent(piece.substr(0, piece.find('=')), PlusMeans::kPlus) == wanted) return true;
  }
  return false;
}

bool IsHexDigest(std::string_view s) {
  if (s.size() != 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

// Header names a botocore-style signer leaves out.
bool IsUnsignedHeader(std::string_view lower_name) {
  return lower_name == "authorization" || lower_name == "user-agent" || lower_name == "expect" ||
         lower_name == "transfer-encoding" || lower_name == "x-amzn-trace-id";
}

std::vector<std::string> HeadersToSign(const HttpRequestView& req) {
  std::vector<std::string> names;
  for (const Header& h : HeadersOf(req)) {
    std::string lower = base::ToLower(base::Trim(h.name));
    if (!IsUnsignedHeader(lower)) names.push_back(std::move(lower));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::string Join(const std::vector<std::string>& v, char sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out.push_back(sep);
    out += v[i];
  }
  return out;
}

std::string SkewMinutes(std::chrono::seconds skew) {
  auto minutes = std::chrono::duration_cast<std::chrono::minutes>(skew).count();
  return std::to_string(minutes) + " min.";
}

}  // namespace

std::string CanonicalRequest(const HttpRequestView& req,
                             const std::vector<std::string>& signed_headers,
                             std::string_view payload_hash, bool s3_path_encoding,
                             bool drop_signature_param) {
  return CanonicalRequestImpl(req, signed_headers, payload_hash, s3_path_encoding,
                              drop_signature_param, PlusMeans::kSpace);
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  std::string out(kAlgorithm);
  out.push_back('\n');
  out.append(amz_date);
  out.push_back('\n');
  out.append(scope);
  out.push_back('\n');
  out += base::Sha256Hex(canonical_request);
  return out;
}

std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service) {
  std::string key = "AWS4";
  key.append(secret);
  std::string k_date = base::HmacSha256(key, date);
  std::string k_region = base::HmacSha256(k_date, region);
  std::string k_service = base::HmacSha256(k_region, service);
  return base::HmacSha256(k_service, kTerminator);
}

std::variant<ParsedSignature, AuthFailure> ParseSignature(const HttpRequestView& req) {
  if (req.raw_query.size() > kMaxQueryBytes || req.raw_path.size() > kMaxPathBytes) {
    return Fail(AuthError::kIncompleteSignature, "Request URI is too long to authenticate.");
  }
  size_t auth_count = 0;
  const Header* auth = FindHeader(req, "authorization", &auth_count);
  bool query_auth = HasQueryParam(req.raw_query, "X-Amz-Signature") ||
                    HasQueryParam(req.raw_query, "X-Amz-Algorithm") ||
                    HasQueryParam(req.raw_query, "X-Amz-Credential");
  if (auth_count > 1) {
    return Fail(AuthError::kIncompleteSignature, "Multiple Authorization headers.");
  }
  if (auth != nullptr && query_auth) {
    return Fail(AuthError::kIncompleteSignature,
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be "
                "specified");
  }
  if (auth != nullptr) return ParseHeaderAuth(req, auth->value);
  if (query_auth) return ParseQueryAuth(req);
  if (HasQueryParam(req.raw_query, "AWSAccessKeyId") && HasQueryParam(req.raw_query, "Signature")) {
    return Fail(AuthError::kUnsupportedAlgorithm,
                "Query-string authentication version 2 is not supported; use AWS4-HMAC-SHA256.");
  }
  return Fail(AuthError::kMissingAuthentication, "Request is missing Authentication Token");
}

std::variant<VerifiedRequest, AuthFailure> Verify(const HttpRequestView& req,
                                                  CredentialProvider& creds,
                                                  const base::Clock& clock,
                                                  const VerifyOptions& opts) {
  auto parsed = ParseSignature(req);
  if (auto* failure = std::get_if<AuthFailure>(&parsed)) return std::move(*failure);
  ParsedSignature sig = std::get<ParsedSignature>(std::move(parsed));

  base::Result<Credential> looked_up = creds.Lookup(sig.access_key_id);
  if (!looked_up.ok()) {
    if (looked_up.status().code() == base::Code::kNotFound) {
      return Fail(AuthError::kUnknownAccessKey,
                  "The security token included in the request is invalid.");
    }
    return Fail(AuthError::kCredentialLookupFailed,
                "Looking up the access key failed: " + looked_up.status().ToString());
  }
  Credential cred = std::move(looked_up).value();
  if (!cred.active) {
    return Fail(AuthError::kInactiveAccessKey,
                "The security token included in the request is invalid.");
  }

  const base::SystemTime now = clock.Now();
  if (!cred.session_token.empty()) {
    if (sig.session_token.empty() ||
        !base::ConstantTimeEquals(sig.session_token, cred.session_token)) {
      return Fail(AuthError::kInvalidToken, std::string(kInvalidTokenMessage));
    }
  } else if (!sig.session_token.empty()) {
    return Fail(AuthError::kInvalidToken, std::string(kInvalidTokenMessage));
  }
  if (cred.expiration && now >= *cred.expiration) {
    return Fail(AuthError::kExpiredToken, std::string(kExpiredTokenMessage));
  }

  const base::SystemTime signed_at = *ParseRequestDate(sig.amz_date);  // ParseSignature checked
  if (signed_at > now + opts.max_skew) {
    return Fail(AuthError::kRequestTimeSkewed,
                "Signature not yet current: " + sig.amz_date + " is still later than " +
                    base::FormatAmzDate(now + opts.max_skew) + " (" + base::FormatAmzDate(now) +
                    " + " + SkewMinutes(opts.max_skew) + ")");
  }
  if (sig.presigned) {
    if (now > signed_at + std::chrono::seconds(sig.expires_seconds)) {
      return Fail(AuthError::kPresignExpired, "Request has expired");
    }
  } else if (signed_at < now - opts.max_skew) {
    return Fail(AuthError::kRequestTimeSkewed,
                "Signature expired: " + sig.amz_date + " is now earlier than " +
                    base::FormatAmzDate(now - opts.max_skew) + " (" + base::FormatAmzDate(now) +
                    " - " + SkewMinutes(opts.max_skew) + ")");
  }

  if (opts.require_signed_amz_headers && !sig.presigned) {
    for (const Header& h : HeadersOf(req)) {
      std::string lower = base::ToLower(base::Trim(h.name));
      if (lower.rfind("x-amz-", 0) != 0) continue;
      if (std::find(sig.signed_headers.begin(), sig.signed_headers.end(), lower) ==
          sig.signed_headers.end()) {
        return Fail(AuthError::kIncompleteSignature,
                    "There were headers present in the request which were not signed: " + lower);
      }
    }
  }

  std::string payload_hash;
  if (const Header* h = FindHeader(req, "x-amz-content-sha256")) {
    payload_hash = base::Trim(h->value);
    if (opts.verify_payload_hash && IsHexDigest(payload_hash) &&
        base::ToLower(payload_hash) != base::Sha256Hex(req.body)) {
      return Fail(AuthError::kSignatureMismatch,
                  "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
  } else if (sig.presigned && sig.service == "s3") {
    payload_hash = kUnsignedPayload;
  } else {
    payload_hash = base::Sha256Hex(req.body);
  }

  const std::string scope = Scope(sig.date, sig.region, sig.service);
  std::string canonical =
      CanonicalRequestImpl(req, sig.signed_headers, payload_hash, opts.s3_path_encoding,
                           sig.presigned, PlusMeans::kSpace);
  std::string to_sign = StringToSign(sig.amz_date, scope, canonical);
  if (base::ConstantTimeEquals(Sign(cred.secret_access_key, sig, to_sign), sig.signature)) {
    return VerifiedRequest{std::move(sig), std::move(cred)};
  }
  // '+' is ambiguous in a query: form encoding (and botocore's GET params) mean a space, but
  // some signers (curl, hand-built URLs) sent a literal '+' and signed it as %2B.
  if (req.raw_query.find('+') != std::string_view::npos) {
    std::string alt = CanonicalRequestImpl(req, sig.signed_headers, payload_hash,
                                           opts.s3_path_encoding, sig.presigned, PlusMeans::kPlus);
    std::string alt_to_sign = StringToSign(sig.amz_date, scope, alt);
    if (base::ConstantTimeEquals(Sign(cred.secret_access_key, sig, alt_to_sign), sig.signature)) {
      return VerifiedRequest{std::move(sig), std::move(cred)};
    }
  }
  return AuthFailure{AuthError::kSignatureMismatch, std::string(kMismatchMessage),
                     std::move(canonical), std::move(to_sign)};
}

std::string SignAuthorizationHeader(const HttpRequestView& req, std::string_view access_key_id,
                                    std::string_view secret, std::string_view region,
                                    std::string_view service, std::string_view amz_date,
                                    std::string_view payload_hash) {
  std::vector<std::string> names = HeadersToSign(req);
  std::string date(amz_date.substr(0, 8));
  std::string scope = Scope(date, region, service);
  std::string canonical = CanonicalRequest(req, names, payload_hash, service == "s3", false);
  std::string signature = base::HexEncode(base::HmacSha256(
      SigningKey(secret, date, region, service), StringToSign(amz_date, scope, canonical)));
  std::string out(kAlgorithm);
  out.append(" Credential=").append(access_key_id).append("/").append(scope);
  out.append(", SignedHeaders=").append(Join(names, ';'));
  out.append(", Signature=").append(signature);
  return out;
}

std::string PresignQuery(const HttpRequestView& req, std::string_view access_key_id,
                         std::string_view secret, std::string_view session_token,
                         std::string_view region, std::string_view service,
                         std::string_view amz_date, int64_t expires_seconds) {
  std::vector<std::string> names = HeadersToSign(req);
  std::string date(amz_date.substr(0, 8));
  std::string scope = Scope(date, region, service);
  std::string query(req.raw_query);
  if (!query.empty()) query.push_back('&');
  query.append("X-Amz-Algorithm=").append(kAlgorithm);
  query.append("&X-Amz-Credential=")
      .append(base::UriEncode(std::string(access_key_id) + "/" + scope));
  query.append("&X-Amz-Date=").append(base::UriEncode(amz_date));
  query.append("&X-Amz-Expires=").append(std::to_string(expires_seconds));
  query.append("&X-Amz-SignedHeaders=").append(base::UriEncode(Join(names, ';')));
  if (!session_token.empty()) {
    query.append("&X-Amz-Security-Token=").append(base::UriEncode(session_token));
  }
  HttpRequestView signed_view = req;
  signed_view.raw_query = query;
  std::string payload_hash =
      service == "s3" ? std::string(kUnsignedPayload) : base::Sha256Hex(req.body);
  std::string canonical =
      CanonicalRequest(signed_view, names, payload_hash, service == "s3", /*drop=*/true);
  std::string signature = base::HexEncode(base::HmacSha256(
      SigningKey(secret, date, region, service), StringToSign(amz_date, scope, canonical)));
  query.append("&X-Amz-Signature=").append(signature);
  return query;
}

}  // namespace auth
