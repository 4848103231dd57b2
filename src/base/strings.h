// Small string helpers shared by every module. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace base {

std::string ToLower(std::string_view s);
std::string ToUpper(std::string_view s);  // ASCII only
std::string_view Trim(std::string_view s);
// Splits on `sep`; keeps empty pieces.
std::vector<std::string_view> Split(std::string_view s, char sep);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

std::string HexEncode(std::string_view bytes);
// Decodes lower- or upper-case hex; nullopt on odd length or a non-hex digit.
std::optional<std::string> HexDecode(std::string_view hex);

std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view b64);

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters
// (A-Z a-z 0-9 - _ . ~) stay, everything else becomes %XX (upper-case hex).
// With keep_slash, '/' also stays (for paths).
std::string UriEncode(std::string_view s, bool keep_slash = false);
// Percent-decoding. With plus_as_space, '+' decodes to ' ' (HTML forms).
// nullopt on a malformed escape.
std::optional<std::string> UriDecode(std::string_view s, bool plus_as_space = false);

// Parses "a=1&b=2" (application/x-www-form-urlencoded or a URL query) into
// pairs in order. nullopt on a malformed escape.
std::optional<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view q);

// Glob match with '*' (any run, including empty) and '?' (one character),
// as IAM uses for actions and resources. Case-sensitive unless ignore_case.
bool GlobMatch(std::string_view pattern, std::string_view text, bool ignore_case = false);

// Parses a base-10 integer that fills the whole string.
std::optional<int64_t> ParseInt(std::string_view s);

}  // namespace base
