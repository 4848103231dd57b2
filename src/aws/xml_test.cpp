#include "aws/xml.h"

#include <gtest/gtest.h>

namespace aws {
namespace {

TEST(ParseXml, ReadsElementsTextAndDropsNamespacesAndAttributes) {
  auto doc = ParseXml(
      "<?xml version=\"1.0\"?>\n<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/"
      "2006-03-01/\"><Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part>"
      "<Part a=\"b\"><PartNumber> 2 </PartNumber></Part></CompleteMultipartUpload>");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->name, "CompleteMultipartUpload");
  auto parts = doc->Children("Part");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0]->ChildText("ETag"), "\"a\"");
  EXPECT_EQ(parts[1]->ChildText("PartNumber"), "2");
  EXPECT_EQ(parts[1]->Child("ETag"), nullptr);
  auto prefixed = ParseXml("<s3:Delete xmlns:s3=\"x\"><s3:Quiet>true</s3:Quiet></s3:Delete>");
  ASSERT_TRUE(prefixed.ok());
  EXPECT_EQ(prefixed->ChildText("Quiet"), "true");
}

TEST(ParseXml, RefusesMalformedDeepAndDtdDocuments) {
  EXPECT_FALSE(ParseXml("<a><b></a>").ok());
  EXPECT_FALSE(ParseXml("").ok());
  EXPECT_FALSE(ParseXml("not xml").ok());
  EXPECT_FALSE(ParseXml("<a/><b/>").ok());
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "<a>";
  for (int i = 0; i < 40; ++i) deep += "</a>";
  EXPECT_FALSE(ParseXml(deep).ok());
  std::string deeper(200000, ' ');
  for (size_t i = 0; i + 3 <= deeper.size(); i += 3) deeper.replace(i, 3, "<a>");
  EXPECT_FALSE(ParseXml(deeper).ok());
  EXPECT_FALSE(ParseXml("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>").ok());
  EXPECT_FALSE(ParseXml(std::string(5 << 20, ' ')).ok());
}

}  // namespace
}  // namespace aws
