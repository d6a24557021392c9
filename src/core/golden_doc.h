#pragma once
// For golden tests (test code only): a document of the source tree and the
// parts of it marked "<!-- golden:NAME -->" (docs/style.md, "Formats and
// protocols"). Needs HORIZON_SOURCE_DIR, which horizon_test defines.
//
// Thread-safety: pure functions.

#include <fstream>
#include <sstream>
#include <string>

namespace horizon::golden {

// The whole file at `relative` (from the source tree's root), or "" when it
// cannot be read.
inline std::string read_source_file(const std::string& relative) {
  std::ifstream in(std::string(HORIZON_SOURCE_DIR) + "/" + relative, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The text after "<!-- golden:NAME -->": the body of the ``` block that
// follows it, or the lines up to the next empty line (a table's rows). ""
// when the marker is missing.
inline std::string section(const std::string& doc, const std::string& name) {
  const auto marker = doc.find("<!-- golden:" + name + " -->");
  if (marker == std::string::npos) return {};
  auto start = doc.find('\n', marker) + 1;
  if (doc.compare(start, 4, "```\n") == 0) {
    start += 4;
    const auto end = doc.find("```\n", start);
    return doc.substr(start, end - start);
  }
  const auto end = doc.find("\n\n", start);
  return doc.substr(start, end - start);
}

}  // namespace horizon::golden
