#include "endpoints/ca.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <memory>

#include "base/fs.h"

namespace endpoints {

namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

base::Status OpenSslError(const std::string& what) {
  return base::Internal("tls: " + what + " failed");
}

KeyPtr NewKey() { return KeyPtr(EVP_EC_gen("P-256")); }

std::string KeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

bool AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate for `key` named `cn`, signed by `issuer_key` (issuer null: self-signed).
base::Result<CertPtr> MakeCert(EVP_PKEY* key, const std::string& cn, X509* issuer,
                               EVP_PKEY* issuer_key, long days, bool ca,
                               const std::vector<std::string>& names) {
  CertPtr cert(X509_new());
  if (!cert) return OpenSslError("X509_new");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), days * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Stratus"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509* iss = issuer ? issuer : cert.get();
  bool ok = true;
  if (ca) {
    ok = ok && AddExt(cert.get(), iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    ok = ok && AddExt(cert.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    ok = ok && AddExt(cert.get(), iss, NID_subject_key_identifier, "hash");
  } else {
    std::string san;
    for (const auto& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
    ok = ok && AddExt(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    ok = ok && AddExt(cert.get(), iss, NID_key_usage, "critical,digitalSignature");
    ok = ok && AddExt(cert.get(), iss, NID_ext_key_usage, "serverAuth");
    ok = ok && AddExt(cert.get(), iss, NID_authority_key_identifier, "keyid:always");
    ok = ok && (san.empty() || AddExt(cert.get(), iss, NID_subject_alt_name, san));
  }
  if (!ok) return OpenSslError("adding certificate extensions");
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) return OpenSslError("X509_sign");
  return cert;
}

}  // namespace

std::vector<std::string> AwsHostNames(const std::string& region) {
  return {"amazonaws.com",
          "*.amazonaws.com",
          "*." + region + ".amazonaws.com",
          "*.s3.amazonaws.com",
          "*.s3." + region + ".amazonaws.com",
          "*.s3-" + region + ".amazonaws.com",
          "*.api.aws",
          "*." + region + ".api.aws"};
}

base::Result<Authority> LoadOrCreateAuthority(const std::string& dir,
                                              const std::vector<std::string>& names) {
  RETURN_IF_ERROR(base::MakeDirs(dir, 0700));
  Authority out;
  out.ca_cert_path = dir + "/ca.pem";
  std::string key_path = dir + "/ca.key";
  KeyPtr ca_key;
  CertPtr ca_cert;
  auto cert_text = base::ReadFile(out.ca_cert_path);
  auto key_text = base::ReadFile(key_path);
  if (cert_text.ok() && key_text.ok()) {
    BioPtr kb(BIO_new_mem_buf(key_text->data(), static_cast<int>(key_text->size())));
    BioPtr cb(BIO_new_mem_buf(cert_text->data(), static_cast<int>(cert_text->size())));
    ca_key.reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
    ca_cert.reset(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
    if (!ca_key || !ca_cert || X509_check_private_key(ca_cert.get(), ca_key.get()) != 1)
      return base::Corruption("tls: " + dir + " holds an unreadable or mismatched CA");
  } else {
    ca_key = NewKey();
    if (!ca_key) return OpenSslError("EC key generation");
    ASSIGN_OR_RETURN(ca_cert, MakeCert(ca_key.get(), "Stratus local CA", nullptr, ca_key.get(),
                                       3650, true, {}));
    RETURN_IF_ERROR(base::WriteFileAtomic(key_path, KeyPem(ca_key.get()), 0600));
    RETURN_IF_ERROR(base::WriteFileAtomic(out.ca_cert_path, CertPem(ca_cert.get()), 0644));
  }
  KeyPtr key = NewKey();
  if (!key) return OpenSslError("EC key generation");
  ASSIGN_OR_RETURN(CertPtr cert, MakeCert(key.get(), names.empty() ? "stratus" : names[0],
                                          ca_cert.get(), ca_key.get(), 30, false, names));
  out.ca_cert_pem = CertPem(ca_cert.get());
  out.cert_pem = CertPem(cert.get());
  out.key_pem = KeyPem(key.get());
  return out;
}

}  // namespace endpoints
