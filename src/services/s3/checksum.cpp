#include "services/s3/checksum.h"

#include <openssl/evp.h>
#include <zlib.h>

#include <array>

#include "base/strings.h"

namespace s3 {

namespace {

std::string BigEndian(uint64_t v, int bytes) {
  std::string out(bytes, '\0');
  for (int i = bytes - 1; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

class Crc32 : public Checksum {
 public:
  void Update(std::string_view d) override {
    while (!d.empty()) {  // zlib takes uInt lengths
      uInt n = static_cast<uInt>(std::min<size_t>(d.size(), 1u << 30));
      crc_ = ::crc32(crc_, reinterpret_cast<const Bytef*>(d.data()), n);
      d.remove_prefix(n);
    }
  }
  std::string Base64() override { return base::Base64Encode(BigEndian(crc_, 4)); }

 private:
  uLong crc_ = ::crc32(0L, Z_NULL, 0);
};

// Reflected table-driven CRCs: CRC-32C (Castagnoli, iSCSI) and CRC-64/NVME, both with
// all-ones initial value and final xor.
template <typename T, T kPoly>
class ReflectedCrc : public Checksum {
 public:
  void Update(std::string_view d) override {
    const auto& table = Table();
    for (unsigned char c : d) crc_ = table[(crc_ ^ c) & 0xff] ^ (crc_ >> 8);
  }
  std::string Base64() override {
    return base::Base64Encode(BigEndian(static_cast<uint64_t>(~crc_), sizeof(T)));
  }

 private:
  static const std::array<T, 256>& Table() {
    static const std::array<T, 256> table = [] {
      std::array<T, 256> t{};
      for (unsigned i = 0; i < 256; ++i) {
        T c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
        t[i] = c;
      }
      return t;
    }();
    return table;
  }
  T crc_ = ~T{0};
};

using Crc32c = ReflectedCrc<uint32_t, 0x82F63B78u>;
using Crc64Nvme = ReflectedCrc<uint64_t, 0x9A6C9329AC4BC9B5ull>;

class Sha : public Checksum {
 public:
  explicit Sha(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, md, nullptr); }
  ~Sha() override { EVP_MD_CTX_free(ctx_); }
  Sha(const Sha&) = delete;
  Sha& operator=(const Sha&) = delete;
  void Update(std::string_view d) override { EVP_DigestUpdate(ctx_, d.data(), d.size()); }
  std::string Base64() override {
    EVP_MD_CTX* copy = EVP_MD_CTX_new();
    EVP_MD_CTX_copy_ex(copy, ctx_);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(copy, out, &len);
    EVP_MD_CTX_free(copy);
    return base::Base64Encode(std::string(reinterpret_cast<char*>(out), len));
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace

std::unique_ptr<Checksum> NewChecksum(std::string_view algorithm) {
  std::string a = base::ToUpper(algorithm);
  if (a == "CRC32") return std::make_unique<Crc32>();
  if (a == "CRC32C") return std::make_unique<Crc32c>();
  if (a == "CRC64NVME") return std::make_unique<Crc64Nvme>();
  if (a == "SHA1") return std::make_unique<Sha>(EVP_sha1());
  if (a == "SHA256") return std::make_unique<Sha>(EVP_sha256());
  return nullptr;
}

std::string ChecksumAlgorithmOfHeader(std::string_view name) {
  std::string n = base::ToLower(name);
  const std::string prefix = "x-amz-checksum-";
  if (n.rfind(prefix, 0) != 0) return "";
  std::string a = base::ToUpper(n.substr(prefix.size()));
  return NewChecksum(a) ? a : "";
}

std::string ChecksumBase64(std::string_view algorithm, std::string_view data) {
  auto c = NewChecksum(algorithm);
  if (!c) return "";
  c->Update(data);
  return c->Base64();
}

}  // namespace s3
