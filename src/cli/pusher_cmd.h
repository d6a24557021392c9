#pragma once
// `horizon pusher --endpoint URL [--proxy ADDR] [--stop-on-stdin-eof]`:
// wires the Pusher to its reader (live from the Writer, sealed from the
// store), the pub/sub client (instant wake-ups) and the loopback writer
// proxy (SPEC §8), and runs until SIGINT/SIGTERM (or stdin EOF).

#include "cli/client.h"
#include "pubsub/client.h"

#include <optional>
#include <string>

namespace horizon::cli {

struct PusherCommand {
  std::string endpoint;
  std::string proxy = "127.0.0.1:9093";  // "" or "off": no proxy
  bool stop_on_stdin_eof = false;
};

// Returns the exit status.
int run_pusher(const ClientFlags& flags, const PusherCommand& command);

// The pub/sub server that `w` names, with its CAs; nullopt when pub/sub is
// off (or the address does not parse).
std::optional<pubsub::Target> pubsub_target(const WriterAddress& w);

}  // namespace horizon::cli
