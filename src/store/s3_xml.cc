// The small XML reader for S3 responses: enough of XML 1.0 for the bodies
// S3 and compatible servers send (declaration, comments, CDATA, attributes,
// entities), strict about well-formedness, and without DTDs (a DOCTYPE is
// rejected, so no entity expansion).

#include "core/text.h"
#include "store/s3_internal.h"

#include <fmt/format.h>

#include <charconv>
#include <functional>

namespace horizon::store::detail {
namespace {

constexpr std::size_t kMaxDepth = 32;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.' || c == ':' || static_cast<unsigned char>(c) >= 0x80;
}

// The local part of a qualified name ("s3:Key" -> "Key").
std::string_view local_name(std::string_view qname) {
  const auto colon = qname.rfind(':');
  return colon == std::string_view::npos ? qname : qname.substr(colon + 1);
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

using Path = std::vector<std::string>;
using OpenFn = std::function<void(const Path&)>;
using CloseFn = std::function<void(const Path&, const std::string& text)>;

Error malformed(std::size_t at, std::string_view why) {
  return Error::make(errc::corruption, fmt::format("S3 response is not well-formed XML at byte {}: {}", at, why));
}

// Walks the document: `on_open` after each start tag, `on_close` with the
// element's own text (entities resolved, CDATA included) before it closes.
Result<void> walk(std::string_view xml, const OpenFn& on_open, const CloseFn& on_close) {
  Path stack;
  std::vector<std::string> texts;
  bool root_done = false;
  std::size_t pos = 0;
  const std::size_t n = xml.size();
  if (xml.starts_with("\xEF\xBB\xBF")) pos = 3;  // UTF-8 BOM
  while (pos < n) {
    if (xml[pos] != '<') {
      auto end = xml.find('<', pos);
      if (end == std::string_view::npos) end = n;
      const auto chunk = xml.substr(pos, end - pos);
      if (stack.empty()) {
        for (char c : chunk) {
          if (!is_space(c)) return malformed(pos, "text outside the root element");
        }
      } else if (!xml_unescape(chunk, texts.back())) {
        return malformed(pos, "an unknown or malformed entity reference");
      }
      pos = end;
      continue;
    }
    const auto rest = xml.substr(pos);
    if (rest.starts_with("<?")) {
      const auto end = xml.find("?>", pos + 2);
      if (end == std::string_view::npos) return malformed(pos, "an unterminated processing instruction");
      pos = end + 2;
      continue;
    }
    if (rest.starts_with("<!--")) {
      const auto end = xml.find("-->", pos + 4);
      if (end == std::string_view::npos) return malformed(pos, "an unterminated comment");
      pos = end + 3;
      continue;
    }
    if (rest.starts_with("<![CDATA[")) {
      if (stack.empty()) return malformed(pos, "CDATA outside the root element");
      const auto end = xml.find("]]>", pos + 9);
      if (end == std::string_view::npos) return malformed(pos, "an unterminated CDATA section");
      texts.back() += xml.substr(pos + 9, end - pos - 9);
      pos = end + 3;
      continue;
    }
    if (rest.starts_with("<!")) return malformed(pos, "a DOCTYPE or other declaration (not allowed)");
    if (rest.starts_with("</")) {
      auto i = pos + 2;
      const auto name_start = i;
      while (i < n && is_name_char(xml[i])) ++i;
      const auto name = xml.substr(name_start, i - name_start);
      while (i < n && is_space(xml[i])) ++i;
      if (i >= n || xml[i] != '>') return malformed(pos, "a malformed end tag");
      if (stack.empty() || local_name(name) != stack.back()) return malformed(pos, "an end tag that does not match");
      on_close(stack, texts.back());
      stack.pop_back();
      texts.pop_back();
      if (stack.empty()) root_done = true;
      pos = i + 1;
      continue;
    }
    // A start tag: name, attributes, then '>' or "/>".
    auto i = pos + 1;
    const auto name_start = i;
    while (i < n && is_name_char(xml[i])) ++i;
    const auto name = xml.substr(name_start, i - name_start);
    if (name.empty()) return malformed(pos, "a '<' that starts no tag");
    bool self_closing = false;
    for (;;) {
      const auto before_space = i;
      while (i < n && is_space(xml[i])) ++i;
      if (i >= n) return malformed(pos, "an unterminated start tag");
      if (xml[i] == '>') {
        ++i;
        break;
      }
      if (xml[i] == '/') {
        if (i + 1 >= n || xml[i + 1] != '>') return malformed(i, "a '/' inside a start tag");
        self_closing = true;
        i += 2;
        break;
      }
      if (i == before_space) return malformed(i, "attributes must be separated by spaces");
      const auto attr_start = i;
      while (i < n && is_name_char(xml[i])) ++i;
      if (i == attr_start) return malformed(i, "a malformed attribute");
      while (i < n && is_space(xml[i])) ++i;
      if (i >= n || xml[i] != '=') return malformed(i, "an attribute without '='");
      ++i;
      while (i < n && is_space(xml[i])) ++i;
      if (i >= n || (xml[i] != '"' && xml[i] != '\'')) return malformed(i, "an unquoted attribute value");
      const auto close = xml.find(xml[i], i + 1);
      if (close == std::string_view::npos) return malformed(i, "an unterminated attribute value");
      i = close + 1;
    }
    if (root_done) return malformed(pos, "a second root element");
    if (stack.size() >= kMaxDepth) return malformed(pos, "elements nested too deeply");
    stack.emplace_back(local_name(name));
    texts.emplace_back();
    on_open(stack);
    if (self_closing) {
      on_close(stack, texts.back());
      stack.pop_back();
      texts.pop_back();
      if (stack.empty()) root_done = true;
    }
    pos = i;
  }
  if (!stack.empty()) return malformed(n, "the document ends inside an element (truncated)");
  if (!root_done) return malformed(n, "no root element");
  return {};
}

bool is(const Path& p, std::initializer_list<std::string_view> names) {
  if (p.size() != names.size()) return false;
  std::size_t i = 0;
  for (auto name : names) {
    if (p[i++] != name) return false;
  }
  return true;
}

std::string unquote_etag(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  std::string out(etag);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

bool xml_unescape(std::string_view in, std::string& out) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '&') {
      out.push_back(in[i]);
      continue;
    }
    const auto semi = in.find(';', i + 1);
    if (semi == std::string_view::npos || semi - i > 12) return false;
    const auto ref = in.substr(i + 1, semi - i - 1);
    if (ref == "amp") {
      out.push_back('&');
    } else if (ref == "lt") {
      out.push_back('<');
    } else if (ref == "gt") {
      out.push_back('>');
    } else if (ref == "quot") {
      out.push_back('"');
    } else if (ref == "apos") {
      out.push_back('\'');
    } else if (ref.size() >= 2 && ref[0] == '#') {
      const bool hex = ref[1] == 'x';
      const auto digits = ref.substr(hex ? 2 : 1);
      std::uint32_t cp = 0;
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
      if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) return false;
      if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
      append_utf8(out, cp);
    } else {
      return false;
    }
    i = semi;
  }
  return true;
}

Result<ListObjectsResult> parse_list_objects_v2(std::string_view xml) {
  ListObjectsResult out;
  std::vector<unsigned> seen;  // per object: 1 = Key, 2 = Size
  std::string root;
  std::optional<Error> field_error;
  std::string truncated_text;
  auto on_open = [&](const Path& p) {
    if (p.size() == 1) root = p[0];
    if (is(p, {"ListBucketResult", "Contents"})) {
      out.objects.emplace_back();
      seen.push_back(0);
    }
  };
  auto on_close = [&](const Path& p, const std::string& text) {
    if (p.size() == 3 && p[0] == "ListBucketResult" && p[1] == "Contents") {
      auto& obj = out.objects.back();
      if (p[2] == "Key") {
        obj.key = text;
        seen.back() |= 1;
      } else if (p[2] == "Size") {
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), obj.size);
        if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
          if (!field_error) {
            field_error = Error::make(
                errc::corruption, fmt::format("S3 listing: Size \"{}\" is not a number", printable_excerpt(text, 40)));
          }
        }
        seen.back() |= 2;
      } else if (p[2] == "ETag") {
        obj.etag = unquote_etag(text);
      }
    } else if (is(p, {"ListBucketResult", "IsTruncated"})) {
      truncated_text = text;
    } else if (is(p, {"ListBucketResult", "NextContinuationToken"})) {
      out.next_continuation_token = text;
    }
  };
  if (auto r = walk(xml, on_open, on_close); !r) return r.error();
  if (field_error) return *field_error;
  if (root != "ListBucketResult") {
    return Error::make(errc::corruption, fmt::format("S3 listing: the root element is <{}>, not <ListBucketResult>",
                                                     printable_excerpt(root, 40)));
  }
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (seen[i] != 3) {
      return Error::make(errc::corruption, fmt::format("S3 listing: entry {} lacks its Key or Size", i));
    }
  }
  if (truncated_text == "true") {
    out.is_truncated = true;
  } else if (truncated_text != "false" && !truncated_text.empty()) {
    return Error::make(errc::corruption,
                       fmt::format("S3 listing: IsTruncated is \"{}\"", printable_excerpt(truncated_text, 40)));
  }
  if (out.is_truncated && out.next_continuation_token.empty()) {
    return Error::make(errc::corruption, "S3 listing: IsTruncated is true but there is no NextContinuationToken");
  }
  return out;
}

S3ErrorBody parse_error_body(std::string_view xml) {
  S3ErrorBody out;
  auto on_close = [&](const Path& p, const std::string& text) {
    if (is(p, {"Error", "Code"})) out.code = text;
    if (is(p, {"Error", "Message"})) out.message = text;
  };
  if (!walk(
          xml, [](const Path&) {}, on_close))
    return {};
  return out;
}

}  // namespace horizon::store::detail
