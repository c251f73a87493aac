#pragma once
// The client side of the control socket, for `preforkctl ctl`: find the socket, send one request, read the
// answer. Blocking, with deadlines; used by app/ctl.cpp only.

#include <chrono>
#include <optional>
#include <string>

#include "control/protocol.hpp"
#include "control/reply.hpp"
#include "sys/fd.hpp"
#include "sys/result.hpp"

namespace preforkctl::control {

/// The socket of the only preforkctl running for this user (in plan::control_directory); an error (exit
/// status 4) when there is none, or several (naming them: choose one with --name).
Result<std::string> find_only_socket(const std::string& directory);

/// An answer and the connection it came on.
struct Exchange {
    Reply reply;
    sys::Fd connection;
};

/// Connects to `path`, sends `request` and reads the answer, waiting at most `timeout` for it (none: as long
/// as it takes — a rolling restart that is waited for). Cannot connect: an error with exit status 4.
Result<Exchange> send_request(const std::string& path, const Request& request,
                              std::optional<std::chrono::milliseconds> timeout);

/// Waits until the other end closes `connection` (preforkctl has exited after `stop`); false on timeout.
bool wait_until_closed(const sys::Fd& connection, std::optional<std::chrono::milliseconds> timeout);

}  // namespace preforkctl::control
