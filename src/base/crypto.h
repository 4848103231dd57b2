// Hashing and randomness (OpenSSL underneath). Thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace base {

// Raw 32-byte SHA-256 digest.
std::string Sha256(std::string_view data);
std::string Sha256Hex(std::string_view data);
// Raw 32-byte HMAC-SHA256.
std::string HmacSha256(std::string_view key, std::string_view data);

// Incremental SHA-256 for streams (blobs, layers). Move-only.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(Sha256Hasher&&) noexcept;
  Sha256Hasher& operator=(Sha256Hasher&&) noexcept;
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Update(std::string_view data);
  // Finishes and returns the lower-case hex digest; the hasher is then reset.
  std::string FinishHex();

 private:
  void* ctx_;  // EVP_MD_CTX*
};

// Cryptographically secure random bytes.
std::string RandomBytes(size_t n);
// Constant-time comparison of two strings (for signatures and secrets).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace base
