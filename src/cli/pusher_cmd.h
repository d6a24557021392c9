#pragma once
// `horizon pusher --endpoint URL [--proxy ADDR] [--stop-on-stdin-eof]`:
// wires the Pusher to its reader (live from the Writer, sealed from the
// store), the pub/sub client (instant wake-ups) and the loopback writer
// proxy (SPEC §8), and runs until SIGINT/SIGTERM (or stdin EOF).

#include "cli/client.h"

#include <string>

namespace horizon::cli {

struct PusherCommand {
  std::string endpoint;
  std::string proxy = "127.0.0.1:9093";  // "" or "off": no proxy
  bool stop_on_stdin_eof = false;
};

// Returns the exit status.
int run_pusher(const ClientFlags& flags, const PusherCommand& command);

}  // namespace horizon::cli
