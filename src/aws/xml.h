// XmlWriter — builds the small XML documents the Query and S3 protocols answer with.
// Escapes text and attribute values; does not validate names (callers pass literals).
// ParseXml — reads the small request documents S3 takes (CompleteMultipartUpload, Delete,
// NotificationConfiguration, ...) into a tree.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

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

// An element: its local name (any "prefix:" removed), its text (trimmed), its child
// elements in document order. Attributes are dropped.
struct XmlNode {
  std::string name;
  std::string text;
  std::vector<XmlNode> children;

  const XmlNode* Child(std::string_view name) const;  // the first child so named, or null
  std::vector<const XmlNode*> Children(std::string_view name) const;
  std::string ChildText(std::string_view name, std::string_view fallback = {}) const;
};

// Parses a document (its root element). InvalidArgument on malformed XML, on more than
// `max_depth` nested elements or on a document over `max_bytes`. No DTDs, no entities beyond
// the predefined five and character references.
base::Result<XmlNode> ParseXml(std::string_view text, size_t max_bytes = 4 << 20,
                               int max_depth = 32);

}  // namespace aws
