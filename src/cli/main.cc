// horizon: the one binary of Event Horizon (SPEC §11).
//
// Every failure exits non-zero with a one-line reason on stderr. Commands of
// later issues say that they are not built yet and exit with status 2.

#include "cli/client.h"
#include "cli/import.h"
#include "cli/pusher_cmd.h"
#include "core/cursor.h"
#include "core/raw_line.h"
#include "core/wire.h"
#include "pubsub/client.h"
#include "reader/reader.h"
#include "server/bootstrap.h"
#include "server/writer_process.h"
#include "store/object_store.h"
#include "wal/fs.h"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <curl/curl.h>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace horizon;

[[noreturn]] void die(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "horizon %s: %s\n", command.c_str(), message.c_str());
  std::exit(1);
}

StreamName stream_arg(const std::string& command, const std::string& text) {
  auto n = StreamName::parse(text);
  if (!n) die(command, n.error().message);
  return *n;
}

cli::Client connect(const std::string& command, const cli::ClientFlags& flags) {
  auto cfg = cli::resolve_client_config(flags);
  if (!cfg) die(command, cfg.error().message);
  return cli::Client(std::move(*cfg));
}

// POSTs and returns the body of a 2xx answer; anything else ends the process.
std::string call(const std::string& command, cli::Client& client, const std::string& path, const std::string& body,
                 long* status = nullptr) {
  auto r = client.post(path, body);
  if (!r) die(command, r.error().message);
  if (status != nullptr) *status = r->status;
  if (r->status < 200 || r->status > 299) {
    if (status != nullptr && r->status == 409) return r->body;
    die(command, cli::describe_error(*r));
  }
  return r->body;
}

// --after CURSOR of an append to `stream`.
Cursor after_cursor(const std::string& command, const std::string& text, const StreamName& stream) {
  auto c = Cursor::parse(text);
  if (!c) die(command, "--after: " + c.error().message);
  if (!(c->stream() == stream)) die(command, fmt::format("--after names {}, not {}", c->stream().str(), stream.str()));
  return *c;
}

// The exit status of an append whose --after did not hold (nothing appended).
constexpr int kExitConflict = 3;

std::string offset_of(const std::string& body) {
  auto r = wire::parse_append_response(body);
  return r ? r->offset.to_string() : std::string("?");
}

// A Reader over the Writer's liveread and the store, as the CLI configures it.
// Movable: the Reader points at the others, each on the heap.
struct ReaderSetup {
  std::unique_ptr<cli::Client> client;
  std::unique_ptr<store::ObjectStore> store;
  std::unique_ptr<codec::MasterKey> key;
  std::unique_ptr<reader::Reader> reader;
};

ReaderSetup make_reader(const std::string& command, const cli::ClientFlags& flags) {
  ReaderSetup r;
  auto cfg = cli::resolve_client_config(flags);
  if (!cfg) die(command, cfg.error().message);
  auto st = store::open_store(cfg->store_url);
  if (!st) die(command, st.error().message);
  r.store = std::move(*st);
  if (!cfg->key.empty()) {
    auto key = codec::MasterKey::parse_hex(cfg->key);
    if (!key) die(command, "HORIZON_KEY: " + key.error().message);
    r.key = std::make_unique<codec::MasterKey>(std::move(*key));
  }
  r.client = std::make_unique<cli::Client>(std::move(*cfg));
  cli::Client* client = r.client.get();
  reader::ReaderOptions o;
  o.store = r.store.get();
  o.key = r.key.get();
  o.cache_dir = cli::reader_cache_dir();
  o.live = [client](const Cursor& from, std::size_t n) { return cli::live_read(*client, from, n); };
  r.reader = std::make_unique<reader::Reader>(std::move(o));
  return r;
}

struct ImportFlags {
  std::size_t batch_lines = 1000;
  double retry_for = 60;
  std::string after;  // --after CURSOR
  std::uint64_t skip = 0;
};

// The import's view of the Writer: appends through the CLI's client; reads
// back (only after a lost answer) through a Reader made when first needed.
class WriterImportTarget final : public cli::ImportTarget {
 public:
  WriterImportTarget(cli::Client& client, const cli::ClientFlags& flags) : client_(client), flags_(flags) {}
  Result<cli::HttpResult> append(const std::string& body) override { return client_.post("/writer/append", body); }
  Result<std::vector<reader::Line>> read(const Cursor& from, std::size_t n) override;
  void sleep(std::chrono::milliseconds d) override { std::this_thread::sleep_for(d); }
  std::chrono::steady_clock::time_point now() override { return std::chrono::steady_clock::now(); }

 private:
  cli::Client& client_;
  const cli::ClientFlags& flags_;
  std::optional<ReaderSetup> reader_;
};

// Imports FILE (or stdin) into `stream`, each line exactly once; on a
// failure, says what is in the stream and how to go on exactly.
int append_from_file(const std::string& command, cli::Client& client, const cli::ClientFlags& flags,
                     const StreamName& stream, const std::string& file, const ImportFlags& f) {
  std::ifstream in_file;
  std::istream* in = &std::cin;
  if (file != "-") {
    in_file.open(file, std::ios::binary);
    if (!in_file) die(command, fmt::format("cannot open {}", file));
    in = &in_file;
  }
  cli::ImportOptions o;
  o.batch_lines = f.batch_lines;
  o.retry_for = std::chrono::milliseconds(static_cast<std::int64_t>(f.retry_for * 1000));
  if (!f.after.empty()) o.after = after_cursor(command, f.after, stream);
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  o.notice = [&command, tty](const std::string& s) {
    std::fprintf(stderr, "%shorizon %s: %s\n", tty ? "\n" : "", command.c_str(), s.c_str());
  };
  WriterImportTarget target(client, flags);
  cli::Importer importer(stream, target, std::move(o));

  const auto start = std::chrono::steady_clock::now();
  auto last_shown = start;
  std::uint64_t line_no = 0;
  // Ends the command after a failure: what is in the stream, and the
  // command that goes on from there without appending anything twice.
  auto stop = [&](const std::string& reason) {
    if (tty) std::fprintf(stderr, "\n");
    die(command, cli::describe_stopped_import(reason, importer.progress(), f.skip, stream, file));
  };
  std::string line;
  while (std::getline(*in, line)) {
    ++line_no;
    if (line_no <= f.skip) continue;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files
    if (auto ok = validate_line_content(line, line_no); !ok) {
      const std::string reason = fmt::format("{}: {}", file, ok.error().message);
      if (auto done = importer.finish(); !done) stop(done.error().message);
      stop(reason);
    }
    if (auto added = importer.add(std::move(line)); !added) stop(added.error().message);
    line.clear();
    if (tty && std::chrono::steady_clock::now() - last_shown > std::chrono::milliseconds(200)) {
      last_shown = std::chrono::steady_clock::now();
      const double s = std::chrono::duration<double>(last_shown - start).count();
      const auto n = importer.progress().lines;
      std::fprintf(stderr, "\r%llu lines appended, %.0f lines/s", static_cast<unsigned long long>(n),
                   s > 0 ? static_cast<double>(n) / s : 0.0);
    }
  }
  if (in->bad()) stop(fmt::format("reading {} failed", file));
  if (line_no < f.skip) {
    die(command, fmt::format("--skip {}: {} has only {} lines; nothing appended", f.skip, file, line_no));
  }
  if (auto done = importer.finish(); !done) stop(done.error().message);
  const auto& p = importer.progress();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (tty) std::fprintf(stderr, "\n");
  std::string extra;
  if (p.resent > 0 || p.read_backs > 0) {
    extra = fmt::format(" ({} requests sent again after lost answers, {} read back)", p.resent, p.read_backs);
  }
  std::printf("appended %llu lines to %s in %.2f s (%.0f lines/s); end %s%s\n",
              static_cast<unsigned long long>(p.lines), stream.str().c_str(), s,
              s > 0 ? static_cast<double>(p.lines) / s : 0.0, p.end->to_string().c_str(), extra.c_str());
  return 0;
}

Result<std::vector<reader::Line>> WriterImportTarget::read(const Cursor& from, std::size_t n) {
  if (!reader_) reader_.emplace(make_reader("stream-appendfromfile", flags_));
  return reader_->reader->read(from, n);
}

void print_line(const reader::Line& l, bool json) {
  if (!json) {
    const std::string text = l.line.is_meta() ? "/" + l.line.meta_type + " " + l.line.content : l.line.content;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    return;
  }
  const auto push = wire::PushLine::from_raw(l.line, l.ptr_after);
  boost::json::object o;
  o["PtrAfter"] = push.ptr_after.to_string();
  o["Content"] = push.content;
  o["MetaType"] = push.meta_type;
  o["MetaPayload"] = push.meta_payload ? *push.meta_payload : boost::json::value(nullptr);
  const std::string text = boost::json::serialize(o);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
}

}  // namespace

int main(int argc, char** argv) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  // Logs go to stderr: stdout is a command's output (pubsub-subscribe's
  // notifications, reader-read's lines). The writer and the pusher set
  // their own loggers, also on stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("horizon"));
  CLI::App app{"Event Horizon: a log-based event store.\n"
               "Streams of lines, durable appends, unlimited storage in S3 or a directory,\n"
               "exactly-once push delivery to applications."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "horizon 0.1.0");
  cli::ClientFlags flags;
  auto client_options = [&flags](CLI::App* sub) {
    sub->add_option("--store", flags.store, "store URL (default: $STORE, else the local data directory's client.env)");
    sub->add_option("--token", flags.token, "API token (default: $HORIZON_TOKEN, else client.env)");
    sub->add_option("--data", flags.data, "data directory whose client.env to use (default: the Writer's default)");
  };

  server::WriterOptions wo;
  auto* writer = app.add_subcommand("writer", "run the Writer (and pub/sub) until SIGINT/SIGTERM");
  writer->add_option("--data", wo.data_dir, "data directory (default: $HORIZON_DATA or ~/.local/share/event-horizon)");
  writer->add_option("--store", wo.store_url, "store URL (default: $STORE, else file://<data>/store)");
  writer->add_option("--api", wo.api, "Writer API address (HTTPS)")->capture_default_str();
  writer->add_option("--pubsub", wo.pubsub, "pub/sub address (TLS), or \"off\" (Pushers then rely on polling)")
      ->capture_default_str();
  writer->add_option("--metrics", wo.metrics, "metrics address (plain HTTP, GET /metrics)")->capture_default_str();
  writer->add_option("--advertise", wo.advertise, "host clients use to reach this Writer (in its certificate)")
      ->capture_default_str();
  writer->add_option("--chunk-size", wo.chunk_size, "rotation threshold in bytes")->capture_default_str();
  writer->add_option("--checkpoint-bytes", wo.checkpoint_bytes,
                     "WAL bytes between checkpoints (bounds the WAL and the replay at the next start; at least 65536)")
      ->capture_default_str();
  writer->add_option("--activity-interval", wo.activity_interval_seconds,
                     "seconds between subscription activity rounds")
      ->capture_default_str();
  writer->add_option("--commit-on", wo.commit_on,
                     "who runs a group commit: \"io\" (the API thread that received the append, when the WAL is "
                     "free; fewer thread hand-offs) or \"thread\" (always the commit thread)")
      ->check(CLI::IsMember({"io", "thread"}))
      ->capture_default_str();
  writer->add_option("--io-threads", wo.io_threads,
                     "API I/O threads (TLS, HTTP, JSON); at least 2: with one, an append committed on its "
                     "thread would leave that thread's other connections unread during the sync")
      ->check(CLI::Range(2, 256))
      ->capture_default_str();
  writer->add_option("--sync-pacing", wo.sync_pacing,
                     "under concurrent appends, start a WAL sync no sooner than this many times the recent sync "
                     "duration after the previous one (larger group commits, less CPU per append); 0: off")
      ->capture_default_str();
  writer->add_option("--ship-backoff-max", wo.ship_backoff_max_seconds,
                     "cap in seconds of the wait between attempts to ship sealed chunks while the store fails "
                     "(exponential from 0.2 s, full jitter)")
      ->capture_default_str();

  std::string stream_text, line, file, cursor_text, sub_text;
  std::int64_t count = 0;
  auto* create = app.add_subcommand("stream-create", "create a stream");
  create->add_option("STREAM", stream_text, "stream name, e.g. /tenants/acme")->required();
  client_options(create);
  auto* append = app.add_subcommand("stream-append", "append one line; prints the cursor after it");
  append->add_option("STREAM", stream_text, "stream name, e.g. /tenants/acme")->required();
  append->add_option("LINE", line, "the event: one line of UTF-8 text (no newline, CR or NUL)")->required();
  std::string append_after;
  append->add_option("--after", append_after,
                     "append only if the stream ends at this cursor (the cursor a previous append printed): "
                     "otherwise nothing is appended and the command exits 3, printing the stream's end");
  client_options(append);
  auto* from_file = app.add_subcommand("stream-appendfromfile",
                                       "import a file (or - for stdin), one line per event, in batches");
  from_file->add_option("STREAM", stream_text, "stream name, e.g. /tenants/acme")->required();
  from_file->add_option("FILE", file, "one event per line (LF or CRLF); - for stdin")->required();
  ImportFlags import_flags;
  from_file->add_option("--batch", import_flags.batch_lines,
                        "lines per append request (one durable commit each; fewer when they would make a body "
                        "over 8 MiB)")
      ->check(CLI::Range(std::size_t{1}, kMaxLinesPerAppend))
      ->capture_default_str();
  from_file->add_option("--retry-for", import_flags.retry_for,
                        "seconds to keep retrying while the Writer does not answer (a restart, a lost answer); "
                        "every line is still appended once; 0: give up at once")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  from_file->add_option("--skip", import_flags.skip,
                        "skip the first N lines of FILE (to go on after a stopped import: its message says N)");
  from_file->add_option("--after", import_flags.after,
                        "the stream's end a stopped import reported; lines already there are not appended again");
  client_options(from_file);
  auto* subscribe = app.add_subcommand("stream-subscribe", "subscribe a subscription stream to a stream");
  subscribe->add_option("STREAM", stream_text, "the stream whose lines the subscription receives")->required();
  subscribe->add_option("SUBSCRIPTION", sub_text, "a stream under /_sub/")->required();
  client_options(subscribe);
  auto* unsubscribe = app.add_subcommand("stream-unsubscribe", "remove a subscription from a stream");
  unsubscribe->add_option("STREAM", stream_text, "the subscribed stream")->required();
  unsubscribe->add_option("SUBSCRIPTION", sub_text, "a stream under /_sub/")->required();
  client_options(unsubscribe);
  auto* liveread = app.add_subcommand("stream-liveread", "print up to N raw lines the Writer holds, from CURSOR");
  liveread->add_option("CURSOR", cursor_text)->required();
  liveread->add_option("N", count)->required()->check(CLI::Range(std::int64_t{1}, wire::kMaxLinesToRead));
  client_options(liveread);

  bool json = false;
  auto* rread = app.add_subcommand("reader-read",
                                   "print up to N lines from CURSOR, wherever they are stored (Writer or store); "
                                   "meta lines as /Type {json}");
  rread->add_option("CURSOR", cursor_text)->required();
  rread->add_option("N", count)->required()->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000}));
  rread->add_flag("--json", json, "JSON Lines: PtrAfter, Content, MetaType, MetaPayload (as in the push protocol)");
  client_options(rread);
  std::string from_text;
  double poll_seconds = 0.5;
  auto* tail = app.add_subcommand(
      "stream-tail",
      "print a stream and keep following new lines until Ctrl-C (waiting for a Writer that restarts or moves)");
  tail->add_option("STREAM", stream_text, "stream name, e.g. /tenants/acme")->required();
  tail->add_option("--from", from_text, "start at this cursor (default: the stream's beginning)");
  tail->add_flag("--json", json, "JSON Lines output");
  tail->add_option("--poll", poll_seconds,
                   "seconds between looks at the end of the stream (while the Writer does not answer: from this "
                   "up to 2 s)")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  client_options(tail);

  cli::PusherCommand pc;
  auto* pusher = app.add_subcommand("pusher", "run a Pusher for one application (SPEC §8)");
  pusher->add_option("--endpoint", pc.endpoint, "the application's push URL, e.g. http://127.0.0.1:8080/_eventhorizon_push")
      ->required();
  pusher->add_option("--proxy", pc.proxy, "writer proxy address (loopback; \"off\" to disable)")->capture_default_str();
  pusher->add_flag("--stop-on-stdin-eof", pc.stop_on_stdin_eof, "exit when stdin closes (the parent died)");
  client_options(pusher);
  std::string topic;
  auto* psub = app.add_subcommand("pubsub-subscribe",
                                  "print the Writer's notifications of TOPIC (e.g. sub:/_sub/app) until Ctrl-C");
  psub->add_option("TOPIC", topic)->required();
  client_options(psub);

  std::string rotate_step, rotate_data;
  auto* rotate = app.add_subcommand(
      "ca-rotate",
      "replace the Writer's internal CA, with the Writer stopped, in two steps: \"prepare\" makes a successor that "
      "clients trust from then on (running Pushers follow; replace copies of ca.pem); \"finish\" makes the "
      "successor sign (docs/format/data-dir.md)");
  rotate->add_option("STEP", rotate_step, "prepare | finish")->required()->check(CLI::IsMember({"prepare", "finish"}));
  rotate->add_option("--data", rotate_data, "the Writer's data directory (default: $HORIZON_DATA or "
                                            "~/.local/share/event-horizon)");

  CLI11_PARSE(app, argc, argv);

  if (writer->parsed()) return server::run_writer(wo);
  if (rotate->parsed()) {
    const std::string dir = rotate_data.empty() ? server::default_data_dir() : rotate_data;
    if (!std::filesystem::exists(std::filesystem::path(dir) / "identity.json")) {
      die("ca-rotate", dir + " is not a Writer's data directory (no identity.json)");
    }
    auto lock = wal::DirLock::acquire(dir);
    if (!lock) die("ca-rotate", lock.error().message + "; stop the Writer first");
    const std::time_t now = std::time(nullptr);
    auto done = rotate_step == "prepare" ? server::prepare_ca_rotation(dir, now) : server::finish_ca_rotation(dir, now);
    if (!done) die("ca-rotate", done.error().message);
    std::printf("%s\n", done->c_str());
    return 0;
  }
  if (pusher->parsed()) return cli::run_pusher(flags, pc);
  if (create->parsed()) {
    const auto name = stream_arg("stream-create", stream_text);
    auto client = connect("stream-create", flags);
    call("stream-create", client, "/writer/create_stream", wire::to_json(wire::CreateStreamRequest{name}));
    std::printf("created %s\n", name.str().c_str());
    return 0;
  }
  if (append->parsed()) {
    const auto name = stream_arg("stream-append", stream_text);
    if (auto ok = validate_line_content(line, 0); !ok) die("stream-append", ok.error().message);
    std::optional<Cursor> after;
    if (!append_after.empty()) after = after_cursor("stream-append", append_after, name);
    auto client = connect("stream-append", flags);
    auto r = client.post("/writer/append", wire::to_json(wire::AppendRequest{name, {line}, after}));
    if (!r && after) {
      die("stream-append", r.error().message + fmt::format("; the same command again appends the line only if {} "
                                                           "still ends at {}",
                                                           name.str(), after->to_string()));
    }
    if (!r) die("stream-append", r.error().message);
    if (r->status == 409 && after) {
      std::fprintf(stderr, "horizon stream-append: %s ends at %s, not at %s; nothing appended\n", name.str().c_str(),
                   offset_of(r->body).c_str(), after->to_string().c_str());
      return kExitConflict;
    }
    if (r->status != 201) die("stream-append", cli::describe_error(*r));
    std::printf("%s\n", offset_of(r->body).c_str());
    return 0;
  }
  if (from_file->parsed()) {
    const auto name = stream_arg("stream-appendfromfile", stream_text);
    auto client = connect("stream-appendfromfile", flags);
    return append_from_file("stream-appendfromfile", client, flags, name, file, import_flags);
  }
  if (subscribe->parsed() || unsubscribe->parsed()) {
    const std::string cmd = subscribe->parsed() ? "stream-subscribe" : "stream-unsubscribe";
    const auto name = stream_arg(cmd, stream_text);
    const auto sub = stream_arg(cmd, sub_text);
    auto client = connect(cmd, flags);
    call(cmd, client, subscribe->parsed() ? "/writer/subscribe" : "/writer/unsubscribe",
         wire::to_json(wire::SubscriptionRequest{name, sub}));
    std::printf("%s %s %s %s\n", name.str().c_str(), subscribe->parsed() ? "subscribed to" : "unsubscribed from",
                sub.str().c_str(), "(idempotent)");
    return 0;
  }
  if (rread->parsed()) {
    auto c = Cursor::parse(cursor_text);
    if (!c) die("reader-read", c.error().message);
    auto setup = make_reader("reader-read", flags);
    std::size_t left = static_cast<std::size_t>(count);
    Cursor at = *c;
    while (left > 0) {
      auto lines = setup.reader->read(at, std::min<std::size_t>(left, 10'000));
      if (!lines) die("reader-read", lines.error().message);
      if (lines->empty()) break;
      for (const auto& l : *lines) print_line(l, json);
      left -= lines->size();
      at = lines->back().ptr_after;
    }
    return 0;
  }
  if (tail->parsed()) {
    const auto name = stream_arg("stream-tail", stream_text);
    Cursor at = Cursor::beginning(name);
    if (!from_text.empty()) {
      auto c = Cursor::parse(from_text);
      if (!c) die("stream-tail", c.error().message);
      if (!(c->stream() == name)) die("stream-tail", "--from names another stream");
      at = *c;
    }
    auto setup = make_reader("stream-tail", flags);
    // A Writer that does not answer (a restart, a move to other ports: the
    // client reads the discovery record again) is waited for, like tail -F
    // waits for its file; anything else ends the command.
    const auto poll = std::chrono::duration<double>(poll_seconds);
    std::optional<std::chrono::steady_clock::time_point> waiting_since;
    auto wait = poll;
    for (;;) {
      auto lines = setup.reader->read(at, 1000);
      if (!lines) {
        if (lines.error().code != errc::not_ready) die("stream-tail", lines.error().message);
        if (!waiting_since) {
          waiting_since = std::chrono::steady_clock::now();
          wait = poll;
          std::fprintf(stderr, "horizon stream-tail: %s; waiting for the Writer (Ctrl-C to stop)\n",
                       lines.error().message.c_str());
        }
        std::this_thread::sleep_for(wait);
        wait = std::min(std::max(wait * 2, poll), std::chrono::duration<double>(2.0));
        continue;
      }
      if (waiting_since) {
        std::fprintf(stderr, "horizon stream-tail: the Writer answers again after %.1f s; following\n",
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - *waiting_since).count());
        waiting_since.reset();
      }
      for (const auto& l : *lines) print_line(l, json);
      std::fflush(stdout);
      if (!lines->empty()) {
        at = lines->back().ptr_after;
        continue;
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(poll_seconds));
    }
  }
  if (psub->parsed()) {
    auto cfg = cli::resolve_client_config(flags);
    if (!cfg) die("pubsub-subscribe", cfg.error().message);
    auto locator = cfg->locator;
    auto first = cli::pubsub_target(locator->current());
    if (!first) die("pubsub-subscribe", "the store's discovery record names no pub/sub address");
    pubsub::ClientOptions co;
    co.host = first->host;
    co.port = first->port;
    co.ca_pem = first->ca_pem;
    co.token = cfg->token;
    // Follows the Writer: a lost connection has the discovery record read
    // again (at most every 2 s, off the client's thread, which must not
    // block); the client reconnects wherever the record named it last.
    co.retarget = [locator] { return cli::pubsub_target(locator->current()); };
    cli::LocatorRefresher refresher(locator);
    pubsub::ClientCallbacks cb;
    cb.on_notify = [](std::string t, std::string m) {
      std::printf("%s %s\n", t.c_str(), m.c_str());
      std::fflush(stdout);
    };
    cb.on_state = [&refresher](bool connected) {
      std::fprintf(stderr, "horizon pubsub-subscribe: %s\n", connected ? "connected" : "disconnected, retrying");
      if (!connected) refresher.poke();
    };
    auto client = pubsub::Client::start(co, cb);
    if (!client) die("pubsub-subscribe", client.error().message);
    if (auto r = (*client)->subscribe(topic); !r) die("pubsub-subscribe", r.error().message);
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));  // until Ctrl-C
  }
  if (liveread->parsed()) {
    auto c = Cursor::parse(cursor_text);
    if (!c) die("stream-liveread", c.error().message);
    auto client = connect("stream-liveread", flags);
    const auto body = call("stream-liveread", client, "/writer/liveread", wire::to_json(wire::LiveReadRequest{*c, count}));
    std::fwrite(body.data(), 1, body.size(), stdout);
    return 0;
  }
  return 0;
}
