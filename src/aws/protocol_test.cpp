#include "aws/protocol.h"

#include <gtest/gtest.h>

#include "aws/xml.h"

namespace aws {
namespace {

TEST(Xml, EscapesAndNests) {
  XmlWriter w;
  w.Open("A", "ns").Element("B", "x<y&\"z\"").Open("C").Element("D", "1");
  EXPECT_EQ(w.Finish(), "<A xmlns=\"ns\"><B>x&lt;y&amp;&quot;z&quot;</B><C><D>1</D></C></A>");
}

TEST(RenderError, QueryShape) {
  auto r = RenderError(Protocol::kQuery,
                       MakeError(404, "NoSuchEntity", "The user with name x cannot be found."),
                       "req-1", "https://iam.amazonaws.com/doc/2010-05-08/");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(
      r.body,
      "<ErrorResponse "
      "xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type>"
      "<Code>NoSuchEntity</Code><Message>The user with name x cannot be found.</Message></Error>"
      "<RequestId>req-1</RequestId></ErrorResponse>");
  ASSERT_NE(r.Find("x-amzn-RequestId"), nullptr);
  EXPECT_EQ(*r.Find("x-amzn-RequestId"), "req-1");
}

TEST(RenderError, JsonShapes) {
  auto j = RenderError(Protocol::kJson, MakeError(400, "ValidationException", "bad \"x\""), "r");
  EXPECT_EQ(*j.Find("x-amzn-ErrorType"), "ValidationException");
  EXPECT_EQ(j.body, R"({"__type":"ValidationException","message":"bad \"x\""})");
  auto rj =
      RenderError(Protocol::kRestJson, MakeError(404, "ResourceNotFoundException", "nope"), "r");
  EXPECT_EQ(rj.status, 404);
  EXPECT_EQ(*rj.Find("x-amzn-ErrorType"), "ResourceNotFoundException");
  EXPECT_EQ(rj.body, R"({"Message":"nope","Type":"User"})");
}

TEST(RenderError, RestXmlShape) {
  Error e = MakeError(404, "NoSuchKey", "The specified key does not exist.");
  e.extra.push_back({"Key", "a&b"});
  auto r = RenderError(Protocol::kRestXml, e, "rid");
  EXPECT_NE(r.body.find("<Error><Code>NoSuchKey</Code>"), std::string::npos);
  EXPECT_NE(r.body.find("<Key>a&amp;b</Key>"), std::string::npos);
  EXPECT_EQ(*r.Find("x-amz-request-id"), "rid");
}

struct AuthCase {
  Protocol protocol;
  auth::AuthError error;
  int status;
  const char* code;
};

TEST(AuthFailureError, MapsPerProtocol) {
  using auth::AuthError;
  const AuthCase cases[] = {
      {Protocol::kQuery, AuthError::kSignatureMismatch, 403, "SignatureDoesNotMatch"},
      {Protocol::kQuery, AuthError::kUnknownAccessKey, 403, "InvalidClientTokenId"},
      {Protocol::kQuery, AuthError::kExpiredToken, 403, "ExpiredToken"},
      {Protocol::kQuery, AuthError::kRequestTimeSkewed, 403, "SignatureDoesNotMatch"},
      {Protocol::kQuery, AuthError::kMissingAuthentication, 403, "MissingAuthenticationToken"},
      {Protocol::kQuery, AuthError::kIncompleteSignature, 400, "IncompleteSignature"},
      {Protocol::kJson, AuthError::kSignatureMismatch, 403, "InvalidSignatureException"},
      {Protocol::kJson, AuthError::kUnknownAccessKey, 403, "UnrecognizedClientException"},
      {Protocol::kJson, AuthError::kExpiredToken, 403, "ExpiredTokenException"},
      {Protocol::kRestJson, AuthError::kRequestTimeSkewed, 403, "InvalidSignatureException"},
      {Protocol::kRestXml, AuthError::kUnknownAccessKey, 403, "InvalidAccessKeyId"},
      {Protocol::kRestXml, AuthError::kRequestTimeSkewed, 403, "RequestTimeTooSkewed"},
      {Protocol::kRestXml, AuthError::kSignatureMismatch, 403, "SignatureDoesNotMatch"},
  };
  for (const auto& c : cases) {
    Error e = AuthFailureError(c.protocol, auth::AuthFailure{c.error, "detail"});
    EXPECT_EQ(e.status, c.status) << c.code;
    EXPECT_EQ(e.code, c.code);
  }
}

}  // namespace
}  // namespace aws
