#include "aws/xml.h"

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <sstream>

namespace aws {

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\r':
        out += "&#13;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

XmlWriter& XmlWriter::Declaration() {
  out_ += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  return *this;
}

XmlWriter& XmlWriter::Open(std::string_view tag, std::string_view xmlns) {
  out_ += '<';
  out_ += tag;
  if (!xmlns.empty()) {
    out_ += " xmlns=\"";
    out_ += XmlEscape(xmlns);
    out_ += '"';
  }
  out_ += '>';
  open_.emplace_back(tag);
  return *this;
}

XmlWriter& XmlWriter::Close() {
  if (open_.empty()) return *this;
  out_ += "</";
  out_ += open_.back();
  out_ += '>';
  open_.pop_back();
  return *this;
}

XmlWriter& XmlWriter::Element(std::string_view tag, std::string_view text) {
  out_ += '<';
  out_ += tag;
  out_ += '>';
  out_ += XmlEscape(text);
  out_ += "</";
  out_ += tag;
  out_ += '>';
  return *this;
}

XmlWriter& XmlWriter::Raw(std::string_view xml) {
  out_ += xml;
  return *this;
}

std::string XmlWriter::Finish() {
  while (!open_.empty()) Close();
  return std::move(out_);
}

namespace {

// Rejects DTDs and nesting deeper than `max_depth` before the recursive parser sees them.
bool ShallowEnough(std::string_view t, int max_depth) {
  int depth = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] != '<' || i + 1 >= t.size()) continue;
    char n = t[i + 1];
    if (n == '!') {
      if (t.compare(i, 9, "<!DOCTYPE") == 0 || t.compare(i, 8, "<!ENTITY") == 0) return false;
      continue;
    }
    if (n == '?') continue;
    if (n == '/') {
      --depth;
      continue;
    }
    size_t close = t.find('>', i);
    if (close == std::string_view::npos) return true;  // malformed: the parser says so
    if (t[close - 1] == '/') continue;
    if (++depth > max_depth) return false;
  }
  return true;
}

std::string LocalName(const std::string& n) {
  size_t colon = n.find(':');
  return colon == std::string::npos ? n : n.substr(colon + 1);
}

void Convert(const std::string& name, const boost::property_tree::ptree& pt, XmlNode* out) {
  out->name = LocalName(name);
  out->text = pt.data();
  size_t b = out->text.find_first_not_of(" \t\r\n");
  size_t e = out->text.find_last_not_of(" \t\r\n");
  out->text = b == std::string::npos ? "" : out->text.substr(b, e - b + 1);
  for (const auto& [child_name, child] : pt) {
    if (!child_name.empty() && child_name[0] == '<') continue;  // <xmlattr>, <xmlcomment>
    out->children.emplace_back();
    Convert(child_name, child, &out->children.back());
  }
}

}  // namespace

const XmlNode* XmlNode::Child(std::string_view n) const {
  for (const auto& c : children)
    if (c.name == n) return &c;
  return nullptr;
}

std::vector<const XmlNode*> XmlNode::Children(std::string_view n) const {
  std::vector<const XmlNode*> out;
  for (const auto& c : children)
    if (c.name == n) out.push_back(&c);
  return out;
}

std::string XmlNode::ChildText(std::string_view n, std::string_view fallback) const {
  const XmlNode* c = Child(n);
  return c ? c->text : std::string(fallback);
}

base::Result<XmlNode> ParseXml(std::string_view text, size_t max_bytes, int max_depth) {
  if (text.size() > max_bytes) return base::InvalidArgument("XML document too large");
  if (!ShallowEnough(text, max_depth))
    return base::InvalidArgument("XML document nested too deeply or with a DTD");
  boost::property_tree::ptree pt;
  try {
    std::istringstream in{std::string(text)};
    boost::property_tree::read_xml(in, pt, boost::property_tree::xml_parser::no_comments);
  } catch (const std::exception& e) {
    return base::InvalidArgument(std::string("malformed XML: ") + e.what());
  }
  const boost::property_tree::ptree* root = nullptr;
  std::string root_name;
  for (const auto& [n, child] : pt) {
    if (!n.empty() && n[0] == '<') continue;
    if (root) return base::InvalidArgument("malformed XML: more than one root element");
    root = &child;
    root_name = n;
  }
  if (!root) return base::InvalidArgument("malformed XML: no root element");
  XmlNode out;
  Convert(root_name, *root, &out);
  return out;
}

}  // namespace aws
