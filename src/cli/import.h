#pragma once
// The engine of `horizon stream-appendfromfile`: appends a sequence of lines
// to one stream in batches, each batch exactly once, across lost answers,
// Writer restarts and other writers of the same stream
// (docs/protocol/http-api.md, "Retrying an append exactly").
//
// Every batch is conditional on the stream's end as last seen (`After`).
// A request whose outcome is unknown (no answer, or a 5xx) is sent again
// with the same `After` until the Writer answers, for at most `retry_for`
// per outage. A 409 then says the stream moved on, and the lines after the
// old end are read back: if they are this batch, the lost request was
// applied and the import goes on after them; if not, it was not applied
// (and never can be: the end it named is gone) and the batch is sent at
// the new end. Without a lost answer, a 409 is another writer's append and
// the batch is simply sent at the new end.
//
// Batches are bounded by lines (at most kMaxLinesPerAppend) and by the size
// of their JSON body, so that long lines never make a request the Writer
// refuses (413).
//
// Thread-safety: one thread.

#include "cli/client.h"
#include "core/cursor.h"
#include "core/errc.h"
#include "core/stream_name.h"
#include "reader/reader.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace horizon::cli {

// The Writer as an import sees it (a fake in unit tests).
class ImportTarget {
 public:
  virtual ~ImportTarget() = default;
  // POST /writer/append with this body. A transport failure is an error.
  virtual Result<HttpResult> append(const std::string& json_body) = 0;
  // Up to `n` lines after `from`, wherever they are stored.
  virtual Result<std::vector<reader::Line>> read(const Cursor& from, std::size_t n) = 0;
  virtual void sleep(std::chrono::milliseconds d) = 0;
  virtual std::chrono::steady_clock::time_point now() = 0;
};

struct ImportOptions {
  std::size_t batch_lines = 1000;               // 1..kMaxLinesPerAppend
  std::size_t batch_bytes = 8u << 20;           // the JSON body of one request, at most (one line may exceed it)
  std::chrono::milliseconds retry_for{60'000};  // per outage; 0: give up at the first lost answer
  // Resuming an import that stopped: the stream's end it reported. The
  // first lines may then be in the stream already (the last batch of that
  // run may have been applied without an answer); they are read back.
  std::optional<Cursor> after;
  std::function<void(const std::string&)> notice;  // one line for the user (an outage, its end)
};

// Where an import stands: what a summary, a progress line and a resume
// command need.
struct ImportProgress {
  std::uint64_t lines = 0;    // lines given to add() known to be in the stream
  std::optional<Cursor> end;  // the stream's end just after them, once known
  std::uint64_t unsure = 0;   // lines after those whose append's answer was lost
  std::uint64_t requests = 0, resent = 0, conflicts = 0, read_backs = 0;
};

// The size of `s` as a JSON string (quotes included), at most: an upper
// bound of what boost::json writes for it.
std::size_t json_string_size(std::string_view s);

// The message of an import that stopped: `reason`, what the stream holds,
// and the command that goes on exactly from there (`skip`: the input lines
// that run skipped). Its form is in docs/protocol/http-api.md.
std::string describe_stopped_import(const std::string& reason, const ImportProgress& progress, std::uint64_t skip,
                                    const StreamName& stream, const std::string& file);

// `s` as one POSIX shell word (quoted when it needs to be).
std::string shell_word(const std::string& s);

class Importer {
 public:
  Importer(StreamName stream, ImportTarget& target, ImportOptions options);

  // Queues a line (already checked by the caller); sends a batch when one
  // is full. Errors: the Writer refused a batch (4xx), or an outage outlasted
  // retry_for; progress() then tells what is in the stream.
  [[nodiscard]] Result<void> add(std::string line);
  // Sends what is queued; also learns the stream's end when nothing was.
  [[nodiscard]] Result<void> finish();
  const ImportProgress& progress() const { return progress_; }

 private:
  Result<void> flush();
  Result<void> learn_end();
  // One request, sent again through an outage: an answer below 500, or an
  // error once the outage outlasted retry_for. `lost`: some attempt's
  // outcome is unknown.
  Result<HttpResult> request(const std::string& body, bool& lost);
  // An outage goes on: waits before the next attempt, or gives up. An
  // outage ends (recovered) only when the import makes progress, not at
  // any answer: a 409 followed by a failing read-back is still one.
  Result<void> wait_out(const std::string& problem);
  void recovered();
  // The end the batch was sent after cannot be followed (past the stream's
  // end, or refused when read back): from --after, a bad cursor and
  // nothing appended; else the stream lost what the Writer acknowledged.
  Error cannot_follow(errc code, const std::string& problem);
  // After a 409 when the batch may be in the stream: how many of its first
  // lines follow the old end.
  Result<std::size_t> read_back(std::size_t from_line, const Cursor& current_end, Cursor& after_them);

  const StreamName stream_;
  ImportTarget& target_;
  const ImportOptions options_;
  const std::size_t max_lines_;  // batch_lines within 1..kMaxLinesPerAppend
  const std::size_t envelope_;   // JSON bytes of a request besides its lines, at most
  ImportProgress progress_;
  std::vector<std::string> batch_;
  std::size_t batch_size_ = 0;  // JSON bytes of batch_
  bool resume_unsure_;          // resuming: the first lines may be in the stream already
  std::optional<std::chrono::steady_clock::time_point> outage_since_;
  std::chrono::milliseconds backoff_{0};
};

}  // namespace horizon::cli
