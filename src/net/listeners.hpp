#pragma once
// Listening sockets (§5 shared mode): bound once by preforkctl, inherited by every worker.

#include <cstdint>
#include <string>
#include <vector>

#include "plan/listen_address.hpp"
#include "sys/fd.hpp"
#include "sys/result.hpp"

namespace preforkctl::net {

/// One bound, listening socket and the address it really has (port 0 resolved).
struct Listener {
    plan::ListenSpec spec;
    sys::Fd fd;
    std::uint16_t port = 0;  // the bound port (tcp)
    [[nodiscard]] std::string address() const { return plan::format_address(spec, port); }
};

/// Binds and listens on every spec, in order. A failure gives "cannot bind ADDR: <errno text>" with
/// exit code `socket`; sockets already bound are closed.
Result<std::vector<Listener>> acquire_listeners(const std::vector<plan::ListenSpec>& specs);

/// Borrowed fds of the listeners, in order (fd 3, 4, ... in the workers).
std::vector<int> listener_fds(const std::vector<Listener>& listeners);

}  // namespace preforkctl::net
