#include "base/ids.h"

#include <cstdio>

#include "base/crypto.h"
#include "base/strings.h"

namespace base {

std::string NewUuid() {
  std::string b = RandomBytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  std::string h = HexEncode(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

std::string RandomString(size_t n, std::string_view alphabet) {
  std::string out;
  out.reserve(n);
  // Rejection sampling keeps the distribution uniform.
  const unsigned limit = 256 - (256 % alphabet.size());
  while (out.size() < n) {
    std::string bytes = RandomBytes(n * 2);
    for (char c : bytes) {
      auto v = static_cast<unsigned char>(c);
      if (v >= limit) continue;
      out.push_back(alphabet[v % alphabet.size()]);
      if (out.size() == n) break;
    }
  }
  return out;
}

}  // namespace base
