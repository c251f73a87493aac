#pragma once
// Listening sockets (§5): shared (bound once, inherited by every worker), reuseport (one SO_REUSEPORT
// socket per slot, kept open across the slot's restarts) and adopted (from systemd socket activation).

#include <cstdint>
#include <string>
#include <vector>

#include "plan/plan.hpp"
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

/// Every socket preforkctl holds for its workers.
struct ListenerSet {
    std::vector<Listener> shared;                 // shared mode and adopted sockets
    std::vector<std::vector<Listener>> per_slot;  // reuseport mode: slot -> one socket per address
    std::vector<std::uint16_t> ports;             // real port of each planned listener, in order

    /// The fds slot `slot` gets as 3, 4, ... (borrowed).
    [[nodiscard]] std::vector<int> fds_for_slot(int slot) const;
};

/// Binds (or adopts) the plan's listeners. A failure gives "cannot bind ADDR: <errno text>" with exit
/// code `socket`; sockets already bound are closed. Child mode binds nothing.
Result<ListenerSet> acquire_listeners(const plan::Plan& plan);

/// Binds slot `slot`'s reuseport sockets on the known ports (used at start and when a slot is added).
Result<std::vector<Listener>> bind_reuseport_slot(const plan::Plan& plan, const std::vector<std::uint16_t>& ports);

/// True when the socket is no longer listening (a worker called shutdown() on it) and listen() re-armed it.
bool rearm_if_shut_down(const Listener& listener);

}  // namespace preforkctl::net
