#include "auth/policy.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/strings.h"

namespace auth {

namespace {

using json = nlohmann::json;
using Context = std::map<std::string, std::vector<std::string>>;

constexpr size_t kMaxPolicyBytes = 128 * 1024;
constexpr int kMaxNesting = 32;  // real policies nest 4 deep
constexpr std::string_view kVersion2012 = "2012-10-17";
constexpr std::string_view kVersion2008 = "2008-10-17";
constexpr std::string_view kSyntaxError = "Syntax errors in policy.";
constexpr std::string_view kVendorPrefixError =
    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.";

base::Status Malformed(std::string_view message) {
  return base::InvalidArgument(std::string(message));
}

// ---------------------------------------------------------------------------------------------
// Parsing

// Rejects nesting deeper than kMaxNesting before the JSON parser sees the text.
bool NestingWithinLimit(std::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxNesting) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

// A string or an array of strings; anything else is a syntax error.
base::Result<std::vector<std::string>> StringOrArray(const json& v) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
    return out;
  }
  if (!v.is_array()) return Malformed(kSyntaxError);
  for (const json& item : v) {
    if (!item.is_string()) return Malformed(kSyntaxError);
    out.push_back(item.get<std::string>());
  }
  return out;
}

bool HasVendorPrefix(std::string_view s) {
  size_t colon = s.find(':');
  return colon != std::string_view::npos && colon > 0;
}

bool IsAccountId(std::string_view s) {
  return s.size() == 12 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

PolicyValue MakeValue(std::string text, bool variables_enabled) {
  bool vars = variables_enabled && text.find("${") != std::string::npos;
  return PolicyValue{std::move(text), vars};
}

struct OperatorInfo {
  std::string_view name;
  ConditionOp op;
};
constexpr OperatorInfo kOperators[] = {
    {"StringEquals", ConditionOp::kStringEquals},
    {"StringNotEquals", ConditionOp::kStringNotEquals},
    {"StringEqualsIgnoreCase", ConditionOp::kStringEqualsIgnoreCase},
    {"StringNotEqualsIgnoreCase", ConditionOp::kStringNotEqualsIgnoreCase},
    {"StringLike", ConditionOp::kStringLike},
    {"StringNotLike", ConditionOp::kStringNotLike},
    {"NumericEquals", ConditionOp::kNumericEquals},
    {"NumericNotEquals", ConditionOp::kNumericNotEquals},
    {"NumericLessThan", ConditionOp::kNumericLessThan},
    {"NumericLessThanEquals", ConditionOp::kNumericLessThanEquals},
    {"NumericGreaterThan", ConditionOp::kNumericGreaterThan},
    {"NumericGreaterThanEquals", ConditionOp::kNumericGreaterThanEquals},
    {"DateEquals", ConditionOp::kDateEquals},
    {"DateNotEquals", ConditionOp::kDateNotEquals},
    {"DateLessThan", ConditionOp::kDateLessThan},
    {"DateLessThanEquals", ConditionOp::kDateLessThanEquals},
    {"DateGreaterThan", ConditionOp::kDateGreaterThan},
    {"DateGreaterThanEquals", ConditionOp::kDateGreaterThanEquals},
    {"Bool", ConditionOp::kBool},
    {"IpAddress", ConditionOp::kIpAddress},
    {"NotIpAddress", ConditionOp::kNotIpAddress},
    {"ArnEquals", ConditionOp::kArnEquals},
    {"ArnLike", ConditionOp::kArnLike},
    {"ArnNotEquals", ConditionOp::kArnNotEquals},
    {"ArnNotLike", ConditionOp::kArnNotLike},
    {"Null", ConditionOp::kNull},
};

// "ForAnyValue:StringLikeIfExists" -> {kStringLike, kForAnyValue, if_exists}.
std::optional<Condition> ParseOperator(std::string_view name) {
  Condition c;
  constexpr std::string_view kAny = "ForAnyValue:", kAll = "ForAllValues:", kIfExists = "IfExists";
  if (name.size() >= kAny.size() && base::EqualsIgnoreCase(name.substr(0, kAny.size()), kAny)) {
    c.set = SetQualifier::kForAnyValue;
    name.remove_prefix(kAny.size());
  } else if (name.size() >= kAll.size() &&
             base::EqualsIgnoreCase(name.substr(0, kAll.size()), kAll)) {
    c.set = SetQualifier::kForAllValues;
    name.remove_prefix(kAll.size());
  }
  if (name.size() > kIfExists.size() &&
      base::EqualsIgnoreCase(name.substr(name.size() - kIfExists.size()), kIfExists)) {
    c.if_exists = true;
    name.remove_suffix(kIfExists.size());
  }
  for (const OperatorInfo& info : kOperators) {
    if (base::EqualsIgnoreCase(info.name, name)) {
      c.op = info.op;
      if (c.op == ConditionOp::kNull && (c.if_exists || c.set != SetQualifier::kNone)) {
        return std::nullopt;
      }
      return c;
    }
  }
  return std::nullopt;
}

base::Result<std::string> ConditionValueText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
  if (v.is_number_integer() || v.is_number_unsigned() || v.is_number_float()) return v.dump();
  return Malformed(kSyntaxError);
}

base::Status ParseConditions(const json& block, bool vars, std::vector<Condition>& out) {
  if (!block.is_object()) return Malformed(kSyntaxError);
  for (const auto& [op_name, keys] : block.items()) {
    std::optional<Condition> parsed = ParseOperator(op_name);
    if (!parsed) return Malformed("Invalid Condition type : " + op_name);
    if (!keys.is_object()) return Malformed(kSyntaxError);
    for (const auto& [key, values] : keys.items()) {
      if (!HasVendorPrefix(key)) return Malformed(kVendorPrefixError);
      Condition c = *parsed;
      c.key = base::ToLower(key);
      if (values.is_array()) {
        for (const json& v : values) {
          ASSIGN_OR_RETURN(std::string text, ConditionValueText(v));
          c.values.push_back(MakeValue(std::move(text), vars));
        }
      } else {
        ASSIGN_OR_RETURN(std::string text, ConditionValueText(values));
        c.values.push_back(MakeValue(std::move(text), vars));
      }
      if (c.op == ConditionOp::kNull || c.op == ConditionOp::kBool) {
        for (const PolicyValue& v : c.values) {
          if (!base::EqualsIgnoreCase(v.text, "true") && !base::EqualsIgnoreCase(v.text, "false"))
            return Malformed("Invalid value for a " + op_name + " condition: '" + v.text +
                             "'; expected true or false.");
        }
      }
      out.push_back(std::move(c));
    }
  }
  return base::Status::Ok();
}

bool ValidAwsPrincipal(std::string_view s) {
  if (s == "*" || IsAccountId(s) || s.rfind("arn:", 0) == 0) return true;
  // Unique ids (AIDA..., AROA...), which IAM leaves in policies whose principal was deleted.
  return s.size() >= 16 && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
         });
}

base::Result<PrincipalSpec> ParsePrincipal(const json& v) {
  PrincipalSpec spec;
  if (v.is_string()) {
    if (v.get<std::string>() != "*")
      return Malformed("Invalid principal in policy: \"" + v.get<std::string>() + "\"");
    spec.any = true;
    return spec;
  }
  if (!v.is_object() || v.empty()) return Malformed(kSyntaxError);
  for (const auto& [kind, values] : v.items()) {
    auto list = StringOrArray(values);
    if (!list.ok()) return list.status();
    if (kind == "AWS") {
      for (const std::string& p : *list) {
        if (!ValidAwsPrincipal(p)) {
          return Malformed("Invalid principal in policy: \"AWS\":\"" + p + "\"");
        }
        if (p == "*") spec.any = true;
        spec.aws.push_back(p);
      }
    } else if (kind == "Service") {
      spec.service = std::move(*list);
    } else if (kind == "Federated") {
      spec.federated = std::move(*list);
    } else if (kind == "CanonicalUser") {
      spec.canonical_user = std::move(*list);
    } else {
      return Malformed("Invalid principal in policy: \"" + kind + "\"");
    }
  }
  return spec;
}

base::Result<Statement> ParseStatement(const json& s, bool vars, PolicyKind kind) {
  if (!s.is_object()) return Malformed(kSyntaxError);
  Statement st;
  static constexpr std::string_view kKeys[] = {"Sid",       "Effect",       "Action",
                                               "NotAction", "Resource",     "NotResource",
                                               "Principal", "NotPrincipal", "Condition"};
  for (const auto& [key, value] : s.items()) {
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
      return Malformed(kSyntaxError);
    }
  }
  if (s.contains("Sid")) {
    if (!s["Sid"].is_string()) return Malformed(kSyntaxError);
    st.sid = s["Sid"].get<std::string>();
  }

  if (!s.contains("Effect")) return Malformed("Missing required field Effect");
  if (!s["Effect"].is_string()) return Malformed(kSyntaxError);
  const std::string effect = s["Effect"].get<std::string>();
  if (effect == "Allow") {
    st.effect = Effect::kAllow;
  } else if (effect == "Deny") {
    st.effect = Effect::kDeny;
  } else {
    return Malformed("Invalid effect: " + effect);
  }

  const bool has_action = s.contains("Action"), has_not_action = s.contains("NotAction");
  if (has_action && has_not_action) return Malformed(kSyntaxError);
  if (!has_action && !has_not_action) return Malformed("Policy statement must contain actions.");
  st.not_action = has_not_action;
  ASSIGN_OR_RETURN(st.actions, StringOrArray(s[has_action ? "Action" : "NotAction"]));
  if (st.actions.empty()) return Malformed("Policy statement must contain actions.");
  for (const std::string& a : st.actions) {
    if (a != "*" && !HasVendorPrefix(a)) return Malformed(kVendorPrefixError);
  }

  const bool has_resource = s.contains("Resource"), has_not_resource = s.contains("NotResource");
  if (has_resource && has_not_resource) return Malformed(kSyntaxError);
  if (has_resource || has_not_resource) {
    st.has_resource = true;
    st.not_resource = has_not_resource;
    ASSIGN_OR_RETURN(std::vector<std::string> resources,
                     StringOrArray(s[has_resource ? "Resource" : "NotResource"]));
    if (resources.empty()) return Malformed("Policy statement must contain resources.");
    for (std::string& r : resources) {
      if (r != "*" && r.rfind("arn:", 0) != 0) {
        return Malformed("Resource " + r + " must be in ARN format or \"*\".");
      }
      st.resources.push_back(MakeValue(std::move(r), vars));
    }
  } else if (kind == PolicyKind::kIdentity) {
    return Malformed("Policy statement must contain resources.");
  }

  const bool has_principal = s.contains("Principal"),
             has_not_principal = s.contains("NotPrincipal");
  if (has_principal && has_not_principal) return Malformed(kSyntaxError);
  if (has_principal || has_not_principal) {
    if (kind == PolicyKind::kIdentity) {
      return Malformed("Policy document should not specify a principal.");
    }
    ASSIGN_OR_RETURN(st.principal, ParsePrincipal(s[has_principal ? "Principal" : "NotPrincipal"]));
    st.not_principal = has_not_principal;
  } else if (kind == PolicyKind::kResource) {
    return Malformed("Missing required field Principal");
  }

  if (s.contains("Condition"))
    RETURN_IF_ERROR(ParseConditions(s["Condition"], vars, st.conditions));
  return st;
}

base::Result<Policy> ParseDocument(const json& doc, PolicyKind kind) {
  if (!doc.is_object()) return Malformed(kSyntaxError);
  for (const auto& [key, value] : doc.items()) {
    if (key != "Version" && key != "Id" && key != "Statement") return Malformed(kSyntaxError);
  }
  Policy policy;
  if (doc.contains("Version")) {
    const json& v = doc["Version"];
    if (!v.is_string() ||
        (v.get<std::string>() != kVersion2012 && v.get<std::string>() != kVersion2008)) {
      return Malformed("The policy failed legacy parsing");
    }
    policy.version = v.get<std::string>();
  }
  if (doc.contains("Id")) {
    if (!doc["Id"].is_string()) return Malformed(kSyntaxError);
    policy.id = doc["Id"].get<std::string>();
  }
  if (!doc.contains("Statement")) return Malformed(kSyntaxError);
  const bool vars = policy.version == kVersion2012;
  const json& statements = doc["Statement"];
  if (statements.is_object()) {
    ASSIGN_OR_RETURN(Statement st, ParseStatement(statements, vars, kind));
    policy.statements.push_back(std::move(st));
  } else if (statements.is_array()) {
    for (const json& s : statements) {
      ASSIGN_OR_RETURN(Statement st, ParseStatement(s, vars, kind));
      policy.statements.push_back(std::move(st));
    }
  } else {
    return Malformed(kSyntaxError);
  }
  std::vector<std::string_view> sids;
  for (const Statement& st : policy.statements)
    if (!st.sid.empty()) sids.push_back(st.sid);
  std::sort(sids.begin(), sids.end());
  if (std::adjacent_find(sids.begin(), sids.end()) != sids.end()) {
    return Malformed("Statement IDs (SID) in a single policy must be unique.");
  }
  return policy;
}

// ---------------------------------------------------------------------------------------------
// Matching

// A pattern after policy-variable substitution. `literal` is empty when every '*'/'?' is a
// wildcard; otherwise literal[i] != 0 marks characters that came from a variable or from
// ${*} / ${?} / ${$} and must match exactly.
struct Pattern {
  std::string chars;
  std::string literal;
};

bool IsWild(const Pattern& p, size_t i, char w) {
  return p.chars[i] == w && (p.literal.empty() || p.literal[i] == 0);
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Glob match over [pb, pe) of `p` against `text`: '*' any run, '?' one character. Single
// backtrack point, so the cost is O(pattern * text) at worst, never exponential.
bool GlobRange(const Pattern& p, size_t pb, size_t pe, std::string_view text, bool ignore_case) {
  if (p.literal.empty()) {
    return base::GlobMatch(std::string_view(p.chars).substr(pb, pe - pb), text, ignore_case);
  }
  size_t pi = pb, t = 0, star = std::string::npos, mark = 0;
  auto eq = [&](char a, char b) { return ignore_case ? Lower(a) == Lower(b) : a == b; };
  while (t < text.size()) {
    if (pi < pe && (IsWild(p, pi, '?') || (!IsWild(p, pi, '*') && eq(p.chars[pi], text[t])))) {
      ++pi;
      ++t;
    } else if (pi < pe && IsWild(p, pi, '*')) {
      star = pi++;
      mark = t;
    } else if (star != std::string::npos) {
      pi = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (pi < pe && IsWild(p, pi, '*')) ++pi;
  return pi == pe;
}

bool Glob(const Pattern& p, std::string_view text, bool ignore_case = false) {
  return GlobRange(p, 0, p.chars.size(), text, ignore_case);
}

// Substitutes ${key}, ${key, 'default'}, ${*}, ${?} and ${$}. nullopt when a variable has no
// value and no default: AWS then treats the element as matching nothing.
std::optional<Pattern> Substitute(const PolicyValue& v, const Context& ctx) {
  if (!v.has_variables) return Pattern{v.text, {}};
  Pattern out;
  const std::string& s = v.text;
  auto append = [&](std::string_view text, bool literal) {
    out.chars.append(text);
    out.literal.append(text.size(), literal ? 1 : 0);
  };
  size_t i = 0;
  while (i < s.size()) {
    size_t open = s.find("${", i);
    if (open == std::string::npos) {
      append(std::string_view(s).substr(i), false);
      break;
    }
    size_t close = s.find('}', open + 2);
    if (close == std::string::npos) {
      append(std::string_view(s).substr(i), false);
      break;
    }
    append(std::string_view(s).substr(i, open - i), false);
    std::string_view inner = base::Trim(std::string_view(s).substr(open + 2, close - open - 2));
    if (inner == "*" || inner == "?" || inner == "$") {
      append(inner, true);
    } else {
      std::string_view key = inner, fallback;
      bool has_default = false;
      size_t comma = inner.find(',');
      if (comma != std::string_view::npos) {
        key = base::Trim(inner.substr(0, comma));
        std::string_view d = base::Trim(inner.substr(comma + 1));
        if (d.size() >= 2 && d.front() == '\'' && d.back() == '\'') {
          fallback = d.substr(1, d.size() - 2);
          has_default = true;
        }
      }
      auto it = ctx.find(base::ToLower(key));
      if (it != ctx.end() && !it->second.empty()) {
        append(it->second.front(), true);
      } else if (has_default) {
        append(fallback, true);
      } else {
        return std::nullopt;
      }
    }
    i = close + 1;
  }
  return out;
}

// ARN matching for ArnEquals/ArnLike: each of the six colon-separated parts is globbed
// separately, so a wildcard never spans parts. Texts that are not six-part ARNs fall back to
// a whole-string glob.
bool ArnMatch(const Pattern& p, std::string_view arn) {
  auto split6 = [](std::string_view s, std::array<size_t, 7>& cuts) {
    cuts[0] = 0;
    size_t pos = 0;
    for (int i = 1; i < 6; ++i) {
      size_t c = s.find(':', pos);
      if (c == std::string_view::npos) return false;
      cuts[i] = c + 1;
      pos = c + 1;
    }
    cuts[6] = s.size() + 1;
    return true;
  };
  std::array<size_t, 7> pc{}, tc{};
  if (!split6(p.chars, pc) || !split6(arn, tc)) return Glob(p, arn);
  for (int i = 0; i < 6; ++i) {
    std::string_view seg = arn.substr(tc[i], tc[i + 1] - 1 - tc[i]);
    if (!GlobRange(p, pc[i], pc[i + 1] - 1, seg, false)) return false;
  }
  return true;
}

std::optional<double> ParseNumber(std::string_view s) {
  s = base::Trim(s);
  if (s.empty()) return std::nullopt;
  if (s.front() == '+') s.remove_prefix(1);
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). Plain
// integer arithmetic, so far-future sentinels like 9999-12-31 work (std::chrono's nanosecond
// system clock does not reach them).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// Reads `n` digits at `pos`; nullopt if they are not all digits.
std::optional<int> Digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

// Milliseconds since the epoch from epoch seconds ("1700000000", "1700000000.5") or ISO 8601:
// "2024-01-02", "2024-01-02T03:04Z", "2024-01-02T03:04:05Z", "...05.123Z", "...05+02:00".
std::optional<int64_t> ParseDateMillis(std::string_view s) {
  s = base::Trim(s);
  if (s.empty()) return std::nullopt;
  if (s.find('-', 1) == std::string_view::npos) {
    auto seconds = ParseNumber(s);
    if (!seconds || *seconds > 1e13 || *seconds < -1e13) return std::nullopt;
    return static_cast<int64_t>(*seconds * 1000);
  }
  auto year = Digits(s, 0, 4), month = Digits(s, 5, 2), day = Digits(s, 8, 2);
  if (!year || !month || !day || s[4] != '-' || s[7] != '-' || *month < 1 || *month > 12 ||
      *day < 1 || *day > 31) {
    return std::nullopt;
  }
  int64_t ms = DaysFromCivil(*year, *month, *day) * 86400000;
  size_t pos = 10;
  if (pos == s.size()) return ms;
  if (s[pos] != 'T' && s[pos] != 't') return std::nullopt;
  auto hour = Digits(s, pos + 1, 2), minute = Digits(s, pos + 4, 2);
  if (!hour || !minute || s[pos + 3] != ':' || *hour > 23 || *minute > 59) return std::nullopt;
  ms += (*hour * 3600 + *minute * 60) * int64_t{1000};
  pos += 6;
  if (pos < s.size() && s[pos] == ':') {
    auto second = Digits(s, pos + 1, 2);
    if (!second || *second > 60) return std::nullopt;
    ms += *second * 1000;
    pos += 3;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      int scale = 100;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        ms += (s[pos] - '0') * scale;
        scale /= 10;
        ++pos;
      }
    }
  }
  std::string_view zone = s.substr(pos);
  if (zone.empty() || zone == "Z" || zone == "z") return ms;
  if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
    auto hh = Digits(zone, 1, 2), mm = Digits(zone, 4, 2);
    if (!hh || !mm || *hh > 23 || *mm > 59) return std::nullopt;
    int64_t offset = (*hh * 60 + *mm) * int64_t{60000};
    return zone[0] == '+' ? ms - offset : ms + offset;
  }
  return std::nullopt;
}

struct IpNet {
  bool v6 = false;
  std::array<unsigned char, 16> bytes{};
  int prefix = 0;
};

// "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128). IPv4-mapped IPv6
// addresses are read as IPv4 so that either form of a client address matches a v4 CIDR.
std::optional<IpNet> ParseIpNet(std::string_view s) {
  s = base::Trim(s);
  if (s.empty() || s.size() > 64) return std::nullopt;
  size_t slash = s.find('/');
  std::string addr(s.substr(0, slash));
  IpNet net;
  if (inet_pton(AF_INET, addr.c_str(), net.bytes.data()) == 1) {
    net.prefix = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), net.bytes.data()) == 1) {
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(net.bytes.data(), kMapped, 12) == 0) {
      std::memmove(net.bytes.data(), net.bytes.data() + 12, 4);
      std::fill(net.bytes.begin() + 4, net.bytes.end(), 0);
      net.prefix = 32;
      if (slash != std::string_view::npos) return std::nullopt;  // keep mapped CIDRs simple
    } else {
      net.v6 = true;
      net.prefix = 128;
    }
  } else {
    return std::nullopt;
  }
  if (slash != std::string_view::npos) {
    auto prefix = base::ParseInt(s.substr(slash + 1));
    if (!prefix || *prefix < 0 || *prefix > net.prefix) return std::nullopt;
    net.prefix = static_cast<int>(*prefix);
  }
  return net;
}

bool IpInNet(const IpNet& ip, const IpNet& net) {
  if (ip.v6 != net.v6) return false;
  int bits = net.prefix;
  for (int i = 0; bits > 0; ++i, bits -= 8) {
    unsigned mask = bits >= 8 ? 0xffu : (0xffu << (8 - bits)) & 0xffu;
    if ((ip.bytes[i] & mask) != (net.bytes[i] & mask)) return false;
  }
  return true;
}

bool IsNegated(ConditionOp op) {
  switch (op) {
    case ConditionOp::kStringNotEquals:
    case ConditionOp::kStringNotEqualsIgnoreCase:
    case ConditionOp::kStringNotLike:
    case ConditionOp::kNumericNotEquals:
    case ConditionOp::kDateNotEquals:
    case ConditionOp::kNotIpAddress:
    case ConditionOp::kArnNotEquals:
    case ConditionOp::kArnNotLike:
      return true;
    default:
      return false;
  }
}

// The positive operator a negated one is the complement of.
ConditionOp Positive(ConditionOp op) {
  switch (op) {
    case ConditionOp::kStringNotEquals:
      return ConditionOp::kStringEquals;
    case ConditionOp::kStringNotEqualsIgnoreCase:
      return ConditionOp::kStringEqualsIgnoreCase;
    case ConditionOp::kStringNotLike:
      return ConditionOp::kStringLike;
    case ConditionOp::kNumericNotEquals:
      return ConditionOp::kNumericEquals;
    case ConditionOp::kDateNotEquals:
      return ConditionOp::kDateEquals;
    case ConditionOp::kNotIpAddress:
      return ConditionOp::kIpAddress;
    case ConditionOp::kArnNotEquals:
      return ConditionOp::kArnEquals;
    case ConditionOp::kArnNotLike:
      return ConditionOp::kArnLike;
    default:
      return op;
  }
}

template <typename T>
bool Compare(ConditionOp op, const T& a, const T& b) {
  switch (op) {
    case ConditionOp::kNumericEquals:
    case ConditionOp::kDateEquals:
      return a == b;
    case ConditionOp::kNumericLessThan:
    case ConditionOp::kDateLessThan:
      return a < b;
    case ConditionOp::kNumericLessThanEquals:
    case ConditionOp::kDateLessThanEquals:
      return a <= b;
    case ConditionOp::kNumericGreaterThan:
    case ConditionOp::kDateGreaterThan:
      return a > b;
    case ConditionOp::kNumericGreaterThanEquals:
    case ConditionOp::kDateGreaterThanEquals:
      return a >= b;
    default:
      return false;
  }
}

// Whether context value `v` satisfies positive operator `op` against policy value `p`.
// nullopt when either side is not a valid value for the operator (a number, a date, an IP).
std::optional<bool> MatchOne(ConditionOp op, std::string_view v, const Pattern& p) {
  switch (op) {
    case ConditionOp::kStringEquals:
      return v == p.chars;
    case ConditionOp::kStringEqualsIgnoreCase:
      return base::EqualsIgnoreCase(v, p.chars);
    case ConditionOp::kStringLike:
      return Glob(p, v);
    case ConditionOp::kArnEquals:
    case ConditionOp::kArnLike:
      return ArnMatch(p, v);
    case ConditionOp::kBool:
      return base::EqualsIgnoreCase(base::Trim(v), base::Trim(p.chars));
    case ConditionOp::kIpAddress: {
      auto ip = ParseIpNet(v);
      auto net = ParseIpNet(p.chars);
      if (!ip || !net) return std::nullopt;
      return IpInNet(*ip, *net);
    }
    case ConditionOp::kNumericEquals:
    case ConditionOp::kNumericLessThan:
    case ConditionOp::kNumericLessThanEquals:
    case ConditionOp::kNumericGreaterThan:
    case ConditionOp::kNumericGreaterThanEquals: {
      auto a = ParseNumber(v), b = ParseNumber(p.chars);
      if (!a || !b) return std::nullopt;
      return Compare(op, *a, *b);
    }
    case ConditionOp::kDateEquals:
    case ConditionOp::kDateLessThan:
    case ConditionOp::kDateLessThanEquals:
    case ConditionOp::kDateGreaterThan:
    case ConditionOp::kDateGreaterThanEquals: {
      auto a = ParseDateMillis(v), b = ParseDateMillis(p.chars);
      if (!a || !b) return std::nullopt;
      return Compare(op, *a, *b);
    }
    default:
      return false;
  }
}

// Does one context value satisfy the (possibly negated) condition? Policy values are OR'ed;
// a negated operator holds when no policy value matches. An invalid value makes it false
// either way.
bool ValueSatisfies(const Condition& c, std::string_view v, const std::vector<Pattern>& patterns) {
  const ConditionOp positive = Positive(c.op);
  bool any = false, invalid = false;
  for (const Pattern& p : patterns) {
    std::optional<bool> m = MatchOne(positive, v, p);
    if (!m) {
      invalid = true;
    } else if (*m) {
      any = true;
      break;
    }
  }
  if (any) return !IsNegated(c.op);
  if (invalid) return false;
  return IsNegated(c.op);
}

bool ConditionHolds(const Condition& c, const Context& ctx) {
  auto it = ctx.find(c.key);
  const bool missing = it == ctx.end() || it->second.empty();
  if (c.op == ConditionOp::kNull) {
    for (const PolicyValue& v : c.values) {
      bool want_missing = base::EqualsIgnoreCase(v.text, "true");
      if (want_missing == missing) return true;
    }
    return false;
  }
  if (missing) {
    // AWS: IfExists and ForAllValues hold on a missing key; ForAnyValue does not; otherwise
    // a missing key never matches, so only the negated operators hold.
    if (c.if_exists || c.set == SetQualifier::kForAllValues) return true;
    if (c.set == SetQualifier::kForAnyValue) return false;
    return IsNegated(c.op);
  }
  std::vector<Pattern> patterns;
  patterns.reserve(c.values.size());
  for (const PolicyValue& v : c.values) {
    if (auto p = Substitute(v, ctx)) patterns.push_back(std::move(*p));
  }
  const std::vector<std::string>& values = it->second;
  switch (c.set) {
    case SetQualifier::kForAllValues:
      return std::all_of(values.begin(), values.end(),
                         [&](const std::string& v) { return ValueSatisfies(c, v, patterns); });
    case SetQualifier::kForAnyValue:
      return std::any_of(values.begin(), values.end(),
                         [&](const std::string& v) { return ValueSatisfies(c, v, patterns); });
    case SetQualifier::kNone:
      break;
  }
  // A plain operator on a multi-valued key: positive ones need some value to match, negated
  // ones need every value to stay clear of the listed values.
  if (IsNegated(c.op)) {
    return std::all_of(values.begin(), values.end(),
                       [&](const std::string& v) { return ValueSatisfies(c, v, patterns); });
  }
  return std::any_of(values.begin(), values.end(),
                     [&](const std::string& v) { return ValueSatisfies(c, v, patterns); });
}

bool ResourceMatches(const Statement& st, const AuthzRequest& req) {
  for (const PolicyValue& r : st.resources) {
    std::optional<Pattern> p = Substitute(r, req.context);
    if (p && Glob(*p, req.resource)) return true;
  }
  return false;
}

bool ContextHas(const Context& ctx, const std::string& key, std::string_view value) {
  auto it = ctx.find(key);
  if (it == ctx.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(),
                     [&](const std::string& v) { return base::EqualsIgnoreCase(v, value); });
}

// The account of arn:PARTITION:iam::ACCOUNT:root, or empty when `s` is not such an ARN.
std::string_view RootArnAccount(std::string_view s) {
  std::vector<std::string_view> parts = base::Split(s, ':');
  if (parts.size() != 6 || parts[0] != "arn" || parts[2] != "iam" || !parts[3].empty() ||
      parts[5] != "root") {
    return {};
  }
  return parts[4];
}

bool AwsPrincipalMatches(std::string_view entry, const Principal* p) {
  if (entry == "*") return true;
  if (p == nullptr) return false;
  if (IsAccountId(entry)) return entry == p->account_id;
  std::string_view root_account = RootArnAccount(entry);
  if (!root_account.empty()) return root_account == p->account_id;
  if (!p->arn.empty() && entry == p->arn) return true;
  if (p->type == PrincipalType::kAssumedRole && !p->role_arn.empty() && entry == p->role_arn) {
    return true;
  }
  // Unique ids: a user's AIDA..., or a role's AROA... (user_id is "AROA...:session").
  if (!p->user_id.empty()) {
    std::string_view uid = p->user_id;
    if (entry == uid) return true;
    if (p->type == PrincipalType::kAssumedRole && entry == uid.substr(0, uid.find(':'))) {
      return true;
    }
  }
  return false;
}

bool StatementMatches(const Statement& st, const AuthzRequest& req, bool check_principal) {
  const bool action_hit = std::any_of(
      st.actions.begin(), st.actions.end(),
      [&](const std::string& a) { return base::GlobMatch(a, req.action, /*ignore_case=*/true); });
  if (action_hit == st.not_action) return false;
  if (st.has_resource && ResourceMatches(st, req) == st.not_resource) return false;
  if (check_principal) {
    if (!st.principal) return false;
    if (PrincipalMatches(*st.principal, req.principal, req.context) == st.not_principal) {
      return false;
    }
  }
  return std::all_of(st.conditions.begin(), st.conditions.end(),
                     [&](const Condition& c) { return ConditionHolds(c, req.context); });
}

// Deny wins over Allow wins over nothing.
void Accumulate(const Policy& policy, const AuthzRequest& req, bool check_principal, bool& allowed,
                bool& denied) {
  for (const Statement& st : policy.statements) {
    if (!StatementMatches(st, req, check_principal)) continue;
    if (st.effect == Effect::kDeny) {
      denied = true;
      return;
    }
    allowed = true;
  }
}

}  // namespace

base::Result<Policy> ParsePolicy(std::string_view json_text, PolicyKind kind) {
  if (json_text.size() > kMaxPolicyBytes) {
    return Malformed("Policy document exceeds the maximum size of " +
                     std::to_string(kMaxPolicyBytes) + " bytes.");
  }
  if (!NestingWithinLimit(json_text)) return Malformed(kSyntaxError);
  try {
    json doc = json::parse(json_text, /*cb=*/nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return Malformed(kSyntaxError);
    return ParseDocument(doc, kind);
  } catch (const std::exception&) {
    // nlohmann throws on type mismatches we failed to anticipate; never let it escape.
    return Malformed(kSyntaxError);
  }
}

bool PrincipalMatches(const PrincipalSpec& spec, const Principal* principal,
                      const Context& context) {
  if (spec.any) return true;
  for (const std::string& entry : spec.aws) {
    if (AwsPrincipalMatches(entry, principal)) return true;
  }
  for (const std::string& service : spec.service) {
    if (ContextHas(context, "aws:principalservicename", service)) return true;
  }
  for (const std::string& provider : spec.federated) {
    if (ContextHas(context, "aws:federatedprovider", provider)) return true;
  }
  return false;
}

Decision Evaluate(const std::vector<const Policy*>& policies, const AuthzRequest& req) {
  bool allowed = false, denied = false;
  for (const Policy* policy : policies) {
    if (policy == nullptr) continue;
    Accumulate(*policy, req, /*check_principal=*/false, allowed, denied);
    if (denied) return Decision::kExplicitDeny;
  }
  return allowed ? Decision::kAllow : Decision::kImplicitDeny;
}

Decision EvaluateResourcePolicy(const Policy& policy, const AuthzRequest& req) {
  bool allowed = false, denied = false;
  Accumulate(policy, req, /*check_principal=*/true, allowed, denied);
  if (denied) return Decision::kExplicitDeny;
  return allowed ? Decision::kAllow : Decision::kImplicitDeny;
}

}  // namespace auth
