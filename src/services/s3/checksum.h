// S3's additional checksums (x-amz-checksum-*): CRC32, CRC32C, CRC64NVME, SHA1, SHA256.
// Values travel base64-encoded over the raw big-endian digest, as S3 sends them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace s3 {

// Incremental checksum of one algorithm.
class Checksum {
 public:
  virtual ~Checksum() = default;
  virtual void Update(std::string_view data) = 0;
  virtual std::string Base64() = 0;  // of the digest so far (Update may not follow)
};

// "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256" (any case); null for anything else.
std::unique_ptr<Checksum> NewChecksum(std::string_view algorithm);

// Upper-case algorithm of an "x-amz-checksum-<alg>" header name ("" if not one we know).
std::string ChecksumAlgorithmOfHeader(std::string_view header_name);

std::string ChecksumBase64(std::string_view algorithm, std::string_view data);

}  // namespace s3
