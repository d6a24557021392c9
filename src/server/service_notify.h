#pragma once
// Readiness for a service manager (systemd's sd_notify protocol, without
// libsystemd): one datagram of "KEY=value" lines to the AF_UNIX socket named
// by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). The
// Writer sends READY=1 once every listener accepts connections and
// STOPPING=1 when it starts to shut down, so that a unit with Type=notify
// orders what depends on it (contrib/systemd, docs/operations.md).
//
// Thread-safety: any thread.
#include "core/errc.h"

#include <string_view>

namespace horizon::server {

// Sends `state` when $NOTIFY_SOCKET is set; nothing (and success) when it
// is not. Errors: the variable names no usable socket, or the send failed.
[[nodiscard]] Result<void> notify_service_manager(std::string_view state);

}  // namespace horizon::server
