#pragma once
// Cursors (SPEC §3, v1-compatible): "<stream>:<chunk>:<offset>[:<server>]".
//
// `chunk` and `offset` are decimal integers >= 0 without sign, spaces, hex or
// leading zeros, at most INT64_MAX. The optional server hint never contains
// ':' and is ignored by equality and ordering; "?" means unknown. The special
// position "-1:-1" ("I don't know the app's position") is accepted only by
// `parse_offset_query` (push protocol, SPEC §8 step 2).
//
// Thread-safety: values; all functions are pure.

#include "core/errc.h"
#include "core/stream_name.h"

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace horizon {

inline constexpr std::string_view kUnknownServer = "?";

class Cursor {
 public:
  Cursor(StreamName stream, std::int64_t chunk, std::int64_t offset, std::string server = {});

  // Parses a position cursor; rejects "-1:-1".
  [[nodiscard]] static Result<Cursor> parse(std::string_view text);
  // Parses a cursor as found in a push protocol offset query: like `parse`,
  // but also accepts "<stream>:-1:-1[:server]" (see `is_offset_query`).
  [[nodiscard]] static Result<Cursor> parse_offset_query(std::string_view text);

  // "<stream>:0:0:?": where every stream begins.
  static Cursor beginning(const StreamName& stream);
  // "<stream>:-1:-1": the position-unknown query of SPEC §8 step 2.
  static Cursor offset_query(const StreamName& stream);

  const StreamName& stream() const { return stream_; }
  std::int64_t chunk() const { return chunk_; }
  std::int64_t offset() const { return offset_; }
  // Empty when the text had no fourth field.
  const std::string& server() const { return server_; }

  bool is_offset_query() const { return chunk_ == -1; }
  bool is_beginning() const { return chunk_ == 0 && offset_ == 0; }

  // The first position of the next chunk: "<stream>:<chunk+1>:0:<server>"
  // (the cursor after a Rotated line).
  Cursor next_chunk() const;
  // The same position with another server hint.
  Cursor with_server(std::string server) const;
  // The same chunk at another offset.
  Cursor with_offset(std::int64_t offset) const;

  // "<stream>:<chunk>:<offset>" plus ":<server>" when the hint is set.
  std::string to_string() const;
  // Appends to_string() to `out` (no temporary).
  void append_to(std::string& out) const;

  // Ordering inside one stream: by chunk, then offset. Fails with
  // invalid_cursor for cursors of different streams.
  [[nodiscard]] Result<std::strong_ordering> compare(const Cursor& other) const;

  // Same stream, chunk and offset (server hint ignored).
  friend bool operator==(const Cursor& a, const Cursor& b) {
    return a.chunk_ == b.chunk_ && a.offset_ == b.offset_ && a.stream_ == b.stream_;
  }

 private:
  static Result<Cursor> parse_impl(std::string_view text, bool allow_query);

  StreamName stream_;
  std::int64_t chunk_ = 0;
  std::int64_t offset_ = 0;
  std::string server_;
};

// Parses a decimal integer in [0, INT64_MAX]: digits only, no sign, no leading
// zero (except "0" itself). Used by the cursor parser and elsewhere.
[[nodiscard]] Result<std::int64_t> parse_non_negative(std::string_view text, std::string_view what);

}  // namespace horizon
