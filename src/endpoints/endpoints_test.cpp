#include "endpoints/endpoints.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

namespace endpoints {
namespace {

std::string Query(const std::string& name, uint16_t type) {
  std::string q = std::string("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q += static_cast<char>(dot - start);
    q += name.substr(start, dot - start);
    start = dot + 1;
  }
  q += '\0';
  q += static_cast<char>(type >> 8);
  q += static_cast<char>(type & 0xff);
  q += std::string("\x00\x01", 2);
  return q;
}

int Rcode(const std::string& a) { return a[3] & 0xf; }
int Answers(const std::string& a) { return (static_cast<uint8_t>(a[6]) << 8) | static_cast<uint8_t>(a[7]); }

TEST(Dns, AwsNamesResolveToLoopbackOthersDoNot) {
  std::string a = DnsAnswer(Query("mybucket.s3.amazonaws.com", 1));
  ASSERT_GE(a.size(), 16u);
  EXPECT_EQ(a.substr(0, 2), "\x12\x34");
  EXPECT_TRUE(a[2] & 0x80);  // a response
  EXPECT_EQ(Rcode(a), 0);
  EXPECT_EQ(Answers(a), 1);
  EXPECT_EQ(a.substr(a.size() - 4), std::string("\x7f\x00\x00\x01", 4));
  EXPECT_EQ(Answers(DnsAnswer(Query("LAMBDA.us-east-1.AmazonAWS.com", 1))), 1);
  EXPECT_EQ(Answers(DnsAnswer(Query("sts.us-east-1.api.aws", 1))), 1);
  std::string aaaa = DnsAnswer(Query("sqs.us-east-1.amazonaws.com", 28));
  EXPECT_EQ(Rcode(aaaa), 0);
  EXPECT_EQ(Answers(aaaa), 0);
  EXPECT_EQ(Rcode(DnsAnswer(Query("example.com", 1))), 3);
  EXPECT_EQ(Rcode(DnsAnswer(Query("notamazonaws.com", 1))), 3);
  EXPECT_EQ(DnsAnswer("short"), "");
  std::string truncated = Query("a.amazonaws.com", 1);
  truncated.resize(20);
  EXPECT_EQ(Rcode(DnsAnswer(truncated)), 1);
  std::string bad_label = Query("a.amazonaws.com", 1);
  bad_label[12] = 100;
  EXPECT_EQ(Rcode(DnsAnswer(bad_label)), 1);
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/endpoints_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TlsTest, AuthorityIsKeptAndCertificatesNameAwsHosts) {
  auto a = LoadOrCreateAuthority(dir_ + "/ca", AwsHostNames("eu-west-1"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = LoadOrCreateAuthority(dir_ + "/ca", AwsHostNames("eu-west-1"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->ca_cert_pem, b->ca_cert_pem);  // the same CA
  EXPECT_NE(a->cert_pem, b->cert_pem);        // a fresh serving certificate
  EXPECT_EQ(std::filesystem::status(dir_ + "/ca/ca.key").permissions() &
                std::filesystem::perms::group_all,
            std::filesystem::perms::none);
  BIO* cb = BIO_new_mem_buf(a->cert_pem.data(), static_cast<int>(a->cert_pem.size()));
  X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
  BIO_free(cb);
  ASSERT_NE(cert, nullptr);
  for (const char* host : {"s3.amazonaws.com", "bucket.s3.amazonaws.com",
                           "bucket.s3.eu-west-1.amazonaws.com", "lambda.eu-west-1.amazonaws.com",
                           "sts.amazonaws.com"})
    EXPECT_EQ(X509_check_host(cert, host, 0, 0, nullptr), 1) << host;
  EXPECT_NE(X509_check_host(cert, "example.com", 0, 0, nullptr), 1);
  X509_free(cert);
  // A damaged CA is refused, not silently replaced.
  ASSERT_TRUE(base::WriteFileAtomic(dir_ + "/ca/ca.key", "garbage").ok());
  EXPECT_FALSE(LoadOrCreateAuthority(dir_ + "/ca", {"x"}).ok());
}

TEST_F(TlsTest, TerminatesTlsAndForwardsToUpstream) {
  // Upstream: answers "pong:" + what it got, once.
  int up = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(up, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(up, 4), 0);
  socklen_t len = sizeof addr;
  getsockname(up, reinterpret_cast<sockaddr*>(&addr), &len);
  uint16_t up_port = ntohs(addr.sin_port);
  std::thread upstream([up] {
    int c = accept(up, nullptr, nullptr);
    char buf[64];
    ssize_t n = read(c, buf, sizeof buf);
    std::string reply = "pong:" + std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
    (void)!write(c, reply.data(), reply.size());
    close(c);
  });

  auto authority = LoadOrCreateAuthority(dir_ + "/ca", AwsHostNames("us-east-1"));
  ASSERT_TRUE(authority.ok());
  auto ep = StartEndpoints(*authority, up_port);
  ASSERT_TRUE(ep.ok()) << ep.status().ToString();
  base::UniqueFd lst(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  addr.sin_port = 0;
  ASSERT_EQ(bind(lst.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(lst.get(), 4), 0);
  len = sizeof addr;
  getsockname(lst.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  auto served = (*ep)->Serve(std::move(lst), base::UniqueFd());
  ASSERT_TRUE(served.ok());

  // Client: verifies the chain against the CA and the host name.
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  BIO* cab = BIO_new_mem_buf(authority->ca_cert_pem.data(),
                             static_cast<int>(authority->ca_cert_pem.size()));
  X509* ca = PEM_read_bio_X509(cab, nullptr, nullptr, nullptr);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, c);
  SSL_set_tlsext_host_name(ssl, "sqs.us-east-1.amazonaws.com");
  SSL_set1_host(ssl, "sqs.us-east-1.amazonaws.com");
  ASSERT_EQ(SSL_connect(ssl), 1) << ERR_error_string(ERR_get_error(), nullptr);
  ASSERT_EQ(SSL_write(ssl, "ping", 4), 4);
  char buf[64];
  std::string got;
  for (int n; (n = SSL_read(ssl, buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(got, "pong:ping");
  SSL_free(ssl);
  close(c);
  X509_free(ca);
  BIO_free(cab);
  SSL_CTX_free(ctx);
  upstream.join();
  close(up);
  EXPECT_EQ((*ep)->stats().tls_connections, 1u);
  served->reset();
  (*ep)->Shutdown();
}

}  // namespace
}  // namespace endpoints
