// FilterPattern: the term subset of CloudWatch Logs filter pattern syntax.
#include "base/strings.h"
#include "services/logs/logs.h"

namespace logs {

base::Result<FilterPattern> FilterPattern::Parse(const std::string& pattern) {
  FilterPattern p;
  std::string_view s = base::Trim(pattern);
  if (!s.empty() && (s.front() == '{' || s.front() == '['))
    return base::InvalidArgument(
        "Invalid filter pattern: JSON and space-delimited filter patterns are not supported.");
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    if (i >= s.size()) break;
    char kind = 0;  // '?' any, '-' none, 0 all
    if (s[i] == '?' || s[i] == '-') kind = s[i++];
    std::string term;
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        if (s[i] == '\\' && i + 1 < s.size()) {
          term.push_back(s[i + 1]);
          i += 2;
          continue;
        }
        if (s[i] == '"') {
          closed = true;
          ++i;
          break;
        }
        term.push_back(s[i++]);
      }
      if (!closed) return base::InvalidArgument("Invalid filter pattern: unterminated quote.");
    } else {
      while (i < s.size() && s[i] != ' ') term.push_back(s[i++]);
    }
    if (term.empty()) continue;
    (kind == '?' ? p.any_ : kind == '-' ? p.none_ : p.all_).push_back(std::move(term));
  }
  return p;
}

bool FilterPattern::Matches(std::string_view message) const {
  for (const std::string& t : all_)
    if (message.find(t) == std::string_view::npos) return false;
  for (const std::string& t : none_)
    if (message.find(t) != std::string_view::npos) return false;
  if (any_.empty()) return true;
  for (const std::string& t : any_)
    if (message.find(t) != std::string_view::npos) return true;
  return false;
}

}  // namespace logs
