#include "cli/import.h"

#include "core/raw_line.h"
#include "core/wire.h"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

namespace horizon::cli {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{2000};

// Whether reading has reached `end` (a cursor the Writer gave as the
// stream's end; the start of the next chunk after a rotation is the same
// place as the end of the chunk before).
bool reached(const Cursor& at, const Cursor& end) {
  return std::tuple(at.chunk(), at.offset()) >= std::tuple(end.chunk(), end.offset());
}

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

std::size_t json_string_size(std::string_view s) {
  std::size_t n = 2;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    n += (c == '"' || c == '\\') ? 2 : c < 0x20 ? 6 : 1;
  }
  return n;
}

std::string shell_word(const std::string& s) {
  const bool plain = !s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                        "0123456789_./:=+,@%-") == std::string::npos;
  if (plain) return s;
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string describe_stopped_import(const std::string& reason, const ImportProgress& p, std::uint64_t skip,
                                    const StreamName& stream, const std::string& file) {
  if (!p.end) return reason + "; nothing appended";
  const std::uint64_t through = skip + p.lines;
  std::string text = p.lines == 0 ? fmt::format("{}; nothing appended, stream end {}", reason, p.end->to_string())
                                  : fmt::format("{}; {} lines appended (input lines {}-{}), stream end {}", reason,
                                                p.lines, skip + 1, through, p.end->to_string());
  if (p.unsure > 0) {
    text += fmt::format("; the {} lines after them may be in the stream too (the answer was lost)", p.unsure);
  }
  text += fmt::format("; to go on exactly: horizon stream-appendfromfile --skip {} --after {} {} {}", through,
                      shell_word(p.end->to_string()), shell_word(stream.str()), shell_word(file));
  return text;
}

Importer::Importer(StreamName stream, ImportTarget& target, ImportOptions options)
    : stream_(std::move(stream)),
      target_(target),
      options_(std::move(options)),
      max_lines_(std::clamp<std::size_t>(options_.batch_lines, 1, kMaxLinesPerAppend)),
      // The body around the lines: {"Stream":..,"Lines":[..],"After":"<cursor>"},
      // the cursor being the stream's name and two numbers.
      envelope_(2 * json_string_size(stream_.str()) + 96) {
  resume_unsure_ = options_.after.has_value();
  progress_.end = options_.after;
}

Result<void> Importer::add(std::string line) {
  const std::size_t size = json_string_size(line) + 1;
  if (!batch_.empty() && envelope_ + batch_size_ + size > options_.batch_bytes) {
    if (auto f = flush(); !f) return f;
  }
  batch_.push_back(std::move(line));
  batch_size_ += size;
  if (batch_.size() >= max_lines_) return flush();
  return {};
}

Result<void> Importer::finish() {
  if (batch_.empty() && !progress_.end) return learn_end();
  return flush();
}

Result<void> Importer::learn_end() {
  bool lost = false;
  auto r = request(wire::to_json(wire::AppendRequest{stream_, {}, std::nullopt}), lost);
  if (!r) return r.error();
  if (r->status != 201) return Error::make(errc::invalid_argument, describe_error(*r));
  recovered();
  auto a = wire::parse_append_response(r->body);
  if (!a) return Error::make(errc::corruption, "the Writer's answer does not parse: " + a.error().message);
  progress_.end = a->offset;
  return {};
}

Result<void> Importer::flush() {
  if (batch_.empty()) return {};
  if (!progress_.end) {
    if (auto e = learn_end(); !e) return e;
  }
  std::size_t done = 0;  // lines of batch_ known to be in the stream
  bool lost = false;     // an attempt at progress_.end got no answer: the rest may be there
  while (done < batch_.size()) {
    const std::size_t rest = batch_.size() - done;
    const std::string body = wire::to_json(wire::AppendRequest{
        stream_, std::vector<std::string>(batch_.begin() + static_cast<std::ptrdiff_t>(done), batch_.end()),
        progress_.end});
    auto r = request(body, lost);
    if (lost) progress_.unsure = rest;
    if (!r) return r.error();
    if (r->status != 201 && r->status != 409) {
      return Error::make(errc::invalid_argument, "the Writer refused a batch: " + describe_error(*r));
    }
    auto answer = wire::parse_append_response(r->body);
    if (!answer) {
      // A 201 that does not parse was applied all the same.
      if (r->status == 201) progress_.unsure = rest;
      return Error::make(errc::corruption, "the Writer's answer does not parse: " + answer.error().message);
    }
    if (r->status == 201) {
      recovered();
      progress_.lines += rest;
      progress_.end = answer->offset;
      progress_.unsure = 0;
      resume_unsure_ = false;
      break;
    }
    ++progress_.conflicts;
    const Cursor current_end = answer->offset;
    if (!reached(current_end, *progress_.end)) {
      return cannot_follow(errc::invalid_cursor,
                           fmt::format("is past the end of {} ({})", stream_.str(), current_end.to_string()));
    }
    if (!lost && !resume_unsure_) {  // another writer appended: go on at the new end
      recovered();
      progress_.end = current_end;
      continue;
    }
    Cursor after_them = *progress_.end;
    auto matched = read_back(done, current_end, after_them);
    if (!matched) {
      // Only lines still on their way (or a Writer out of reach) are worth
      // waiting for; a cursor the stream refuses or damaged data are not.
      if (matched.error().code != errc::not_ready) {
        return cannot_follow(matched.error().code, "cannot be read back: " + matched.error().message);
      }
      if (auto w = wait_out("reading the stream back: " + matched.error().message); !w) return w;
      continue;
    }
    recovered();
    done += *matched;
    progress_.lines += *matched;
    progress_.unsure = lost ? batch_.size() - done : 0;
    if (*matched > 0) progress_.end = after_them;
    if (done == batch_.size()) break;
    // The rest is not where a lost request (or the run resumed) could have
    // put it, and it cannot get there any more: send it at the new end.
    lost = false;
    resume_unsure_ = false;
    progress_.unsure = 0;
    progress_.end = current_end;
  }
  progress_.unsure = 0;
  batch_.clear();
  batch_size_ = 0;
  return {};
}

Error Importer::cannot_follow(errc code, const std::string& problem) {
  const std::string end = progress_.end->to_string();
  if (resume_unsure_) {
    // The end came from --after and nothing was appended yet: no command
    // can go on exactly from a cursor that is not a place in this stream.
    progress_.end.reset();
    progress_.unsure = 0;
    return Error::make(code, fmt::format("--after {} {}", end, problem));
  }
  // The Writer acknowledged lines up to this end, and the stream now ends
  // before it: acknowledged lines are gone.
  if (code == errc::invalid_cursor) code = errc::corruption;
  return Error::make(code, fmt::format("the end {} the Writer answered for this import's lines {}", end, problem));
}

Result<std::size_t> Importer::read_back(std::size_t from_line, const Cursor& current_end, Cursor& after_them) {
  ++progress_.read_backs;
  Cursor at = *progress_.end;
  std::size_t matched = 0;
  while (from_line + matched < batch_.size() && !reached(at, current_end)) {
    const std::size_t want = std::min<std::size_t>(batch_.size() - from_line - matched + 1, wire::kMaxLinesToRead);
    auto lines = target_.read(at, want);
    if (!lines) return lines.error();
    // The Writer counted these lines in the end it answered, so they are
    // coming (a lost request still being committed): not readable yet.
    if (lines->empty()) {
      return Error::make(errc::not_ready, fmt::format("the lines up to {} are not readable yet", current_end.to_string()));
    }
    for (const auto& l : *lines) {
      if (l.line.is_meta()) {
        // A rotation (Rotated, then the next chunk's Created) may come
        // between the old end and the batch; any other event is not it.
        if (l.line.meta_type != "Rotated" && l.line.meta_type != "Created") return matched;
        at = l.ptr_after;
        continue;
      }
      if (l.line.content != batch_[from_line + matched]) return matched;
      ++matched;
      at = l.ptr_after;
      after_them = at;
      if (from_line + matched == batch_.size()) return matched;
    }
  }
  return matched;
}

Result<HttpResult> Importer::request(const std::string& body, bool& lost) {
  for (;;) {
    ++progress_.requests;
    auto r = target_.append(body);
    std::string problem;
    if (!r) {
      problem = r.error().message;
    } else if (r->status >= 500) {
      problem = describe_error(*r);
    } else {
      return r;
    }
    lost = true;
    if (auto w = wait_out(problem); !w) return w.error();
    ++progress_.resent;
  }
}

void Importer::recovered() {
  if (!outage_since_) return;
  if (options_.notice) {
    options_.notice(
        fmt::format("the Writer answers again after {:.1f} s; going on", seconds(target_.now() - *outage_since_)));
  }
  outage_since_.reset();
}

Result<void> Importer::wait_out(const std::string& problem) {
  const auto now = target_.now();
  const double limit = seconds(options_.retry_for);
  if (!outage_since_) {
    outage_since_ = now;
    backoff_ = kFirstBackoff;
    if (options_.notice && options_.retry_for.count() > 0) {
      options_.notice(fmt::format("{}; retrying for up to {:g} s", problem, limit));
    }
  }
  if (now - *outage_since_ >= options_.retry_for) {
    return Error::make(errc::not_ready,
                       options_.retry_for.count() > 0 ? fmt::format("{} (retried for {:g} s)", problem, limit) : problem);
  }
  target_.sleep(backoff_);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  return {};
}

}  // namespace horizon::cli
