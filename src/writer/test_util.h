#pragma once
// Helpers shared by the writer tests: read a whole stream back through the
// engine, following Rotated lines across chunks.

#include "core/meta.h"
#include "core/raw_line.h"
#include "writer/engine.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace horizon::writer::testing {

struct ReadLine {
  RawLine line;
  Cursor after;  // the cursor just past this line (next chunk's start after Rotated)
};

// Whole sealed chunks that are no longer held by the engine (a stand-in for
// the store): (stream, chunk) -> bytes.
using ShippedChunks = std::map<std::pair<StreamName, std::int64_t>, std::string>;

// Reads every committed line of `stream` (chunks the engine no longer holds
// come from `shipped`). Returns an error on unparsable lines or read errors.
inline Result<std::vector<ReadLine>> read_stream(const Engine& engine, const StreamName& stream,
                                                 const ShippedChunks* shipped = nullptr) {
  std::vector<ReadLine> out;
  Cursor at = Cursor(stream, 0, 0);
  for (;;) {
    auto r = engine.read(at, 1000);
    if (!r && r.error().code == errc::chunk_not_found && shipped != nullptr) {
      auto it = shipped->find({stream, at.chunk()});
      if (it != shipped->end()) {
        r = LiveRead{it->second.substr(static_cast<std::size_t>(at.offset())), at, 1};
        r->next = Cursor(stream, at.chunk(), static_cast<std::int64_t>(it->second.size()));
      }
    }
    if (!r) return r.error();
    if (r->lines == 0) return out;
    RawLineSplitter split(r->bytes);
    std::int64_t base = at.offset();
    bool rotated = false;
    while (auto l = split.next()) {
      auto parsed = parse_raw_line(*l);
      if (!parsed) return parsed.error();
      Cursor after(stream, at.chunk(), base + static_cast<std::int64_t>(split.consumed()));
      if (parsed->meta_type == "Rotated") {
        after = Cursor(stream, at.chunk() + 1, 0);
        rotated = true;
      }
      out.push_back(ReadLine{std::move(*parsed), after});
    }
    at = rotated ? out.back().after : r->next;
  }
}

inline wire::AppendRequest append_req(const StreamName& s, std::vector<std::string> lines,
                                      std::optional<Cursor> after = std::nullopt) {
  return wire::AppendRequest{s, std::move(lines), std::move(after)};
}

inline StreamName sn(const char* s) { return StreamName::parse(s).value(); }

}  // namespace horizon::writer::testing
