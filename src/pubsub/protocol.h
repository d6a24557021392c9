#pragma once
// The pub/sub line protocol (SPEC §6, src/pubsub/README.md): limits, the
// parser for client and server lines, and the formatters. Pure functions
// over bytes, no I/O, so that the fuzz target and both ends share one
// definition.
//
// Thread-safety: pure functions; safe to call concurrently.

#include "core/errc.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace horizon::pubsub {

// A line is at most this many bytes, not counting its '\n'. The reader
// closes a connection as soon as it holds a longer line.
inline constexpr std::size_t kMaxLineBytes = 2048;
// A topic is 1-256 bytes in 0x21-0x7E (printable ASCII, no space).
inline constexpr std::size_t kMaxTopicBytes = 256;
// A message is 0-1024 bytes of valid UTF-8 without control characters
// (no byte < 0x20, no 0x7F); it may contain spaces.
inline constexpr std::size_t kMaxMessageBytes = 1024;

[[nodiscard]] bool is_valid_topic(std::string_view topic) noexcept;
[[nodiscard]] bool is_valid_message(std::string_view message) noexcept;
// A token is 1 or more bytes in 0x21-0x7E (the line limit bounds it).
[[nodiscard]] bool is_valid_token(std::string_view token) noexcept;

// A command sent by a client. The views point into the parsed line.
struct ClientCommand {
  enum class Kind : std::uint8_t { kAuth, kPub, kSub, kBye };
  Kind kind = Kind::kBye;
  std::string_view token;    // kAuth
  std::string_view topic;    // kPub, kSub
  std::string_view message;  // kPub (may be empty)
};

// Parses one client line, without its '\n'. Commands are case-sensitive:
// `AUTH <token>`, `PUB <topic> <message>` (the message is everything after
// the second space, possibly empty), `SUB <topic>`, `BYE`. Anything else,
// including a line over kMaxLineBytes, is errc::invalid_argument; the error
// message names what was wrong and never contains the token.
[[nodiscard]] Result<ClientCommand> parse_client_line(std::string_view line);

// A line sent by the server.
struct ServerLine {
  enum class Kind : std::uint8_t { kOk, kNotify };
  Kind kind = Kind::kOk;
  std::string_view topic;    // kNotify
  std::string_view message;  // kNotify
};

// Parses one server line, without its '\n': `OK` or
// `NOTIFY <topic> <message>`. Anything else is errc::invalid_argument.
[[nodiscard]] Result<ServerLine> parse_server_line(std::string_view line);

// Formatters: append one line, with its '\n', to `out`. The caller passes
// valid fields (see the is_valid_* functions).
void append_notify(std::string& out, std::string_view topic, std::string_view message);
void append_ok(std::string& out);
void append_auth(std::string& out, std::string_view token);
void append_pub(std::string& out, std::string_view topic, std::string_view message);
void append_sub(std::string& out, std::string_view topic);
void append_bye(std::string& out);

}  // namespace horizon::pubsub
