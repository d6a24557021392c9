// horizon: the one binary of Event Horizon (SPEC §11).
//
// Subcommands that are not built yet say so and exit with status 2, so that
// scripts never mistake them for success.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

struct Planned {
  const char* name;
  const char* help;
};

// SPEC §11, in its order.
constexpr Planned kCommands[] = {
    {"writer", "run the Writer (and pub/sub) until SIGINT/SIGTERM"},
    {"pusher", "run a Pusher for one application"},
    {"stream-create", "create a stream: stream-create STREAM"},
    {"stream-append", "append one line: stream-append STREAM LINE"},
    {"stream-appendfromfile", "import a file, one line per event: stream-appendfromfile STREAM FILE"},
    {"stream-subscribe", "subscribe: stream-subscribe STREAM SUBSCRIPTION"},
    {"stream-unsubscribe", "unsubscribe: stream-unsubscribe STREAM SUBSCRIPTION"},
    {"stream-liveread", "raw lines from the Writer: stream-liveread CURSOR N"},
    {"reader-read", "up to N lines from a cursor, wherever stored: reader-read CURSOR N"},
    {"stream-tail", "print a stream and follow new lines: stream-tail STREAM [--from CURSOR]"},
    {"pubsub-subscribe", "print notifications of a topic: pubsub-subscribe TOPIC"},
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Event Horizon: a log-based event store.\n"
               "Streams of lines, durable appends, unlimited storage in S3 or a directory,\n"
               "exactly-once push delivery to applications."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "horizon 0.1.0");
  std::vector<std::string> rest;
  for (const auto& c : kCommands) {
    auto* sub = app.add_subcommand(c.name, c.help);
    sub->allow_extras();
    sub->callback([name = c.name] {
      std::fprintf(stderr, "horizon %s: not implemented yet in this build\n", name);
      std::exit(2);
    });
  }
  CLI11_PARSE(app, argc, argv);
  return 0;
}
