#include "image/dockerfile.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

namespace image {
namespace {

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string Upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const std::set<std::string>& Keywords() {
  static const std::set<std::string> k = {
      "FROM", "COPY",   "ADD",        "RUN", "ENV",   "ARG",        "WORKDIR",
      "USER", "EXPOSE", "ENTRYPOINT", "CMD", "LABEL", "MAINTAINER", "STOPSIGNAL"};
  return k;
}

base::Status LineError(int line, const std::string& what) {
  return base::InvalidArgument("Dockerfile line " + std::to_string(line) + ": " + what);
}

}  // namespace

std::string Instruction::Text() const {
  std::string s = keyword;
  for (const auto& f : flags) s += " " + f;
  if (!args.empty()) s += " " + args;
  return s;
}

base::Result<Dockerfile> ParseDockerfile(std::string_view text) {
  // 1. Logical lines: join continuations, drop comments and blank lines.
  struct Logical {
    int line;
    std::string text;
  };
  std::vector<Logical> lines;
  std::string cur;
  int cur_line = 0, n = 0;
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string_view::npos) j = text.size();
    std::string raw(text.substr(i, j - i));
    ++n;
    i = j + 1;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    std::string t = Trim(raw);
    if (t.empty() || t[0] == '#') {
      if (j == text.size()) break;
      continue;  // comments may sit between continuation lines, as in Docker
    }
    if (cur.empty()) cur_line = n;
    bool cont = !t.empty() && t.back() == '\\';
    if (cont) t.pop_back();
    cur += (cur.empty() ? "" : " ") + Trim(t);
    if (!cont) {
      lines.push_back({cur_line, cur});
      cur.clear();
    }
    if (j == text.size()) break;
  }
  if (!cur.empty()) lines.push_back({cur_line, cur});

  // 2. Instructions, grouped by FROM.
  Dockerfile df;
  std::set<std::string> names;
  for (const auto& l : lines) {
    Instruction ins;
    ins.line = l.line;
    size_t sp = l.text.find_first_of(" \t");
    ins.keyword = Upper(l.text.substr(0, sp));
    std::string rest = sp == std::string::npos ? "" : Trim(l.text.substr(sp));
    if (Keywords().count(ins.keyword) == 0) {
      return LineError(l.line, "unknown or unsupported instruction '" + ins.keyword + "'");
    }
    // Leading --flag=value words (COPY --from=, FROM --platform=, RUN --mount is refused).
    while (rest.starts_with("--")) {
      size_t e = rest.find_first_of(" \t");
      std::string flag = rest.substr(0, e);
      rest = e == std::string::npos ? "" : Trim(rest.substr(e));
      ins.flags.push_back(flag);
    }
    ins.args = rest;
    if (!rest.empty() && rest[0] == '[' &&
        (ins.keyword == "RUN" || ins.keyword == "CMD" || ins.keyword == "ENTRYPOINT" ||
         ins.keyword == "COPY" || ins.keyword == "ADD")) {
      auto j = nlohmann::json::parse(rest, nullptr, false);
      if (j.is_array() &&
          std::all_of(j.begin(), j.end(), [](const auto& v) { return v.is_string(); })) {
        ins.exec_form = true;
        for (const auto& v : j) ins.exec.push_back(v.get<std::string>());
      }
    }
    for (const auto& f : ins.flags) {
      std::string name = f.substr(0, f.find('='));
      bool ok = (ins.keyword == "FROM" && name == "--platform") ||
                ((ins.keyword == "COPY" || ins.keyword == "ADD") &&
                 (name == "--from" || name == "--chown" || name == "--chmod"));
      if (ins.keyword == "ADD" && name == "--from") ok = false;
      if (!ok) return LineError(l.line, ins.keyword + " does not support " + name);
    }
    if (ins.keyword == "FROM") {
      auto words = SplitWords(rest);
      if (!words.ok()) return LineError(l.line, words.status().message());
      const auto& w = *words;
      Stage st;
      if (w.size() == 1) {
        st.base = w[0];
      } else if (w.size() == 3 && Upper(w[1]) == "AS") {
        st.base = w[0];
        st.name = Lower(w[2]);
        if (!names.insert(st.name).second) {
          return LineError(l.line, "duplicate stage name '" + st.name + "'");
        }
      } else {
        return LineError(l.line, "FROM takes IMAGE [AS NAME]");
      }
      st.from = ins;
      df.stages.push_back(std::move(st));
      continue;
    }
    if (df.stages.empty()) {
      if (ins.keyword != "ARG") return LineError(l.line, "the first instruction must be FROM");
      df.global_args.push_back(std::move(ins));
      continue;
    }
    if (rest.empty() && ins.keyword != "CMD" && ins.keyword != "ENTRYPOINT") {
      return LineError(l.line, ins.keyword + " needs arguments");
    }
    df.stages.back().steps.push_back(std::move(ins));
  }
  if (df.stages.empty()) return base::InvalidArgument("Dockerfile has no FROM");
  return df;
}

std::string ExpandVariables(std::string_view s, const Lookup& lookup) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\' && i + 1 < s.size() && s[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    if (c != '$' || i + 1 >= s.size()) {
      out.push_back(c);
      continue;
    }
    if (s[i + 1] == '{') {
      size_t close = s.find('}', i + 2);
      if (close == std::string_view::npos) {
        out.append(s.substr(i));
        break;
      }
      std::string body(s.substr(i + 2, close - i - 2));
      std::string name = body, word;
      char op = 0;
      if (size_t p = body.find(":-"); p != std::string::npos) {
        name = body.substr(0, p), word = body.substr(p + 2), op = '-';
      } else if (size_t q = body.find(":+"); q != std::string::npos) {
        name = body.substr(0, q), word = body.substr(q + 2), op = '+';
      }
      auto v = lookup(name);
      bool set = v.has_value() && !v->empty();
      if (op == '-')
        out += set ? *v : word;
      else if (op == '+')
        out += set ? word : "";
      else
        out += v.value_or("");
      i = close;
      continue;
    }
    size_t j = i + 1;
    while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
    if (j == i + 1) {
      out.push_back('$');
      continue;
    }
    out += lookup(std::string(s.substr(i + 1, j - i - 1))).value_or("");
    i = j - 1;
  }
  return out;
}

base::Result<std::vector<std::string>> SplitWords(std::string_view s) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < s.size() &&
                 (s[i + 1] == '"' || s[i + 1] == '\\')) {
        cur.push_back(s[++i]);
      } else {
        cur.push_back(c);
      }
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(std::move(cur)), cur.clear(), in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '\\' && i + 1 < s.size()) {
      cur.push_back(s[++i]);
    } else {
      cur.push_back(c);
    }
  }
  if (quote != 0) return base::InvalidArgument("unterminated quote in '" + std::string(s) + "'");
  if (in_word) words.push_back(std::move(cur));
  return words;
}

base::Result<std::vector<std::pair<std::string, std::string>>> ParseKeyValues(std::string_view text,
                                                                              bool allow_legacy) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string t = Trim(text);
  size_t sp = t.find_first_of(" \t");
  size_t eq = t.find('=');
  if (allow_legacy && (eq == std::string::npos || (sp != std::string::npos && sp < eq))) {
    // Legacy "KEY value with spaces".
    if (sp == std::string::npos) return base::InvalidArgument("'" + t + "' needs KEY=VALUE");
    out.emplace_back(t.substr(0, sp), Trim(t.substr(sp)));
    return out;
  }
  ASSIGN_OR_RETURN(auto words, SplitWords(t));
  for (const auto& w : words) {
    size_t e = w.find('=');
    if (e == std::string::npos || e == 0) {
      return base::InvalidArgument("'" + w + "' is not KEY=VALUE");
    }
    out.emplace_back(w.substr(0, e), w.substr(e + 1));
  }
  return out;
}

}  // namespace image
