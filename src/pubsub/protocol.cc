#include "pubsub/protocol.h"

#include "core/text.h"

#include <fmt/format.h>

namespace horizon::pubsub {

namespace {

constexpr bool is_word_byte(unsigned char c) noexcept { return c >= 0x21 && c <= 0x7E; }

Error malformed(std::string message) { return Error::make(errc::invalid_argument, std::move(message)); }

// The first byte of `s` that is not a word byte, or npos.
std::size_t find_non_word(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!is_word_byte(static_cast<unsigned char>(s[i]))) return i;
  }
  return std::string_view::npos;
}

Result<void> check_topic(std::string_view command, std::string_view topic) {
  if (topic.empty()) return malformed(fmt::format("{}: empty topic", command));
  if (topic.size() > kMaxTopicBytes) {
    return malformed(fmt::format("{}: topic of {} bytes exceeds {}", command, topic.size(), kMaxTopicBytes));
  }
  if (const auto at = find_non_word(topic); at != std::string_view::npos) {
    return malformed(fmt::format("{}: topic byte {} is not printable ASCII without space (topic {})", command, at,
                                 printable_excerpt(topic)));
  }
  return {};
}

}  // namespace

bool is_valid_topic(std::string_view topic) noexcept {
  return !topic.empty() && topic.size() <= kMaxTopicBytes && find_non_word(topic) == std::string_view::npos;
}

bool is_valid_message(std::string_view message) noexcept {
  if (message.size() > kMaxMessageBytes) return false;
  bool ascii = true;
  for (const char ch : message) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) return false;
    if (c >= 0x80) ascii = false;
  }
  return ascii || is_valid_utf8(message);
}

bool is_valid_token(std::string_view token) noexcept {
  return !token.empty() && find_non_word(token) == std::string_view::npos;
}

Result<ClientCommand> parse_client_line(std::string_view line) {
  if (line.size() > kMaxLineBytes) {
    return malformed(fmt::format("line of {} bytes exceeds {}", line.size(), kMaxLineBytes));
  }
  const auto space = line.find(' ');
  const std::string_view verb = line.substr(0, space);
  const std::string_view rest = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  const bool has_argument = space != std::string_view::npos;
  ClientCommand cmd;
  if (verb == "AUTH") {
    // Never echo the token: it may be a near miss of the real one.
    if (!has_argument || rest.empty()) return malformed("AUTH: missing token");
    if (const auto at = find_non_word(rest); at != std::string_view::npos) {
      return malformed(fmt::format("AUTH: token byte {} is not printable ASCII without space", at));
    }
    cmd.kind = ClientCommand::Kind::kAuth;
    cmd.token = rest;
    return cmd;
  }
  if (verb == "SUB") {
    if (!has_argument) return malformed("SUB: missing topic");
    if (auto r = check_topic("SUB", rest); !r) return r.error();
    cmd.kind = ClientCommand::Kind::kSub;
    cmd.topic = rest;
    return cmd;
  }
  if (verb == "PUB") {
    if (!has_argument) return malformed("PUB: missing topic");
    const auto second = rest.find(' ');
    if (second == std::string_view::npos) return malformed("PUB: missing message (even an empty one needs its space)");
    const std::string_view topic = rest.substr(0, second);
    const std::string_view message = rest.substr(second + 1);
    if (auto r = check_topic("PUB", topic); !r) return r.error();
    if (message.size() > kMaxMessageBytes) {
      return malformed(fmt::format("PUB: message of {} bytes exceeds {}", message.size(), kMaxMessageBytes));
    }
    if (!is_valid_message(message)) {
      return malformed(
          fmt::format("PUB: message has a control character or invalid UTF-8 ({})", printable_excerpt(message)));
    }
    cmd.kind = ClientCommand::Kind::kPub;
    cmd.topic = topic;
    cmd.message = message;
    return cmd;
  }
  if (verb == "BYE") {
    if (has_argument) return malformed("BYE: takes no argument");
    cmd.kind = ClientCommand::Kind::kBye;
    return cmd;
  }
  return malformed(fmt::format("unknown command {}", printable_excerpt(verb, 16)));
}

Result<ServerLine> parse_server_line(std::string_view line) {
  if (line.size() > kMaxLineBytes) {
    return malformed(fmt::format("line of {} bytes exceeds {}", line.size(), kMaxLineBytes));
  }
  if (line == "OK") return ServerLine{ServerLine::Kind::kOk, {}, {}};
  constexpr std::string_view kNotify = "NOTIFY ";
  if (line.substr(0, kNotify.size()) != kNotify) {
    return malformed(fmt::format("unknown server line {}", printable_excerpt(line, 16)));
  }
  const std::string_view rest = line.substr(kNotify.size());
  const auto space = rest.find(' ');
  if (space == std::string_view::npos) return malformed("NOTIFY: missing message");
  const std::string_view topic = rest.substr(0, space);
  const std::string_view message = rest.substr(space + 1);
  if (auto r = check_topic("NOTIFY", topic); !r) return r.error();
  if (!is_valid_message(message)) {
    return malformed(fmt::format("NOTIFY: message is too long, has a control character or invalid UTF-8 ({})",
                                 printable_excerpt(message)));
  }
  return ServerLine{ServerLine::Kind::kNotify, topic, message};
}

void append_notify(std::string& out, std::string_view topic, std::string_view message) {
  out.append("NOTIFY ").append(topic).append(1, ' ').append(message).append(1, '\n');
}

void append_ok(std::string& out) { out.append("OK\n"); }

void append_auth(std::string& out, std::string_view token) { out.append("AUTH ").append(token).append(1, '\n'); }

void append_pub(std::string& out, std::string_view topic, std::string_view message) {
  out.append("PUB ").append(topic).append(1, ' ').append(message).append(1, '\n');
}

void append_sub(std::string& out, std::string_view topic) { out.append("SUB ").append(topic).append(1, '\n'); }

void append_bye(std::string& out) { out.append("BYE\n"); }

}  // namespace horizon::pubsub
