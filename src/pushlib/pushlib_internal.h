#pragma once
// Private helpers of pushlib, exposed for its tests.
//
// Thread-safety: pure functions.

#include "pushlib/pushlib.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pushlib::detail {

// True for a numeric IPv4 address in 127.0.0.0/8 or the IPv6 "::1".
bool is_loopback_address(std::string_view address);

// The percent-decoded value of query parameter `name` in a request target
// ("/path?a=1&auth=x"); nullopt if absent or badly encoded.
std::optional<std::string> query_parameter(std::string_view target, std::string_view name);

// `s` with every byte outside [A-Za-z0-9-._~] as %XX.
std::string percent_encode(std::string_view s);

// The argv a PusherProcess runs for `options` (options.command if set).
// Errors: invalid_argument (no endpoint_url and no command).
[[nodiscard]] Result<std::vector<std::string>> pusher_command(const PusherProcessOptions& options);

}  // namespace pushlib::detail
