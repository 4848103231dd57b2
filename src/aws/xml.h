// XmlWriter — builds the small XML documents the Query and S3 protocols answer with.
// Escapes text and attribute values; does not validate names (callers pass literals).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace aws {

std::string XmlEscape(std::string_view text);

class XmlWriter {
 public:
  XmlWriter& Declaration();  // <?xml version="1.0" encoding="UTF-8"?>
  XmlWriter& Open(std::string_view tag, std::string_view xmlns = {});
  XmlWriter& Close();  // closes the innermost open tag
  // <tag>escaped text</tag>
  XmlWriter& Element(std::string_view tag, std::string_view text);
  // Appends already-formed XML.
  XmlWriter& Raw(std::string_view xml);
  // Closes anything still open and returns the document.
  std::string Finish();

 private:
  std::string out_;
  std::vector<std::string> open_;
};

}  // namespace aws
