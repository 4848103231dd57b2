// Identifiers: request ids, access key ids, resource ids. Thread-safe, from a CSPRNG.
#pragma once

#include <string>
#include <string_view>

namespace base {

// A random RFC 4122 version-4 UUID, lower case ("8f1c...-...").
std::string NewUuid();
// `n` characters drawn uniformly from `alphabet`.
std::string RandomString(size_t n, std::string_view alphabet);
inline constexpr std::string_view kUpperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
inline constexpr std::string_view kAlnum =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
inline constexpr std::string_view kLowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789";

}  // namespace base
