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

/// Binds one shared listener (a reload's new --listen): TCP or unix, as acquire_listeners would.
Result<Listener> bind_shared(const plan::ListenSpec& spec);

/// Binds slot `slot`'s reuseport sockets on the known ports (used at start and when a slot is added).
Result<std::vector<Listener>> bind_reuseport_slot(const plan::Plan& plan, const std::vector<std::uint16_t>& ports);

/// What brings back a listening socket that a worker may have shut down (pure; see rearm()).
enum class RearmAction {
    none,             // it still listens: nothing to do
    bind_and_listen,  // TCP: bind the recorded address again (the shutdown may have released the port), listen
    impossible,       // unix: the kernel keeps a shut-down unix socket refusing connections, listen() or not
};

/// The action for a socket that is (`accepting`) or is not in LISTEN; `hung_up`: epoll reported EPOLLHUP.
RearmAction rearm_action(bool unix_socket, bool accepting, bool hung_up);

/// Outcome of rearm(): the socket listened all along, listens again, or cannot (errno in `error`).
struct Rearmed {
    enum class Outcome { was_listening, listening_again, impossible, failed } outcome;
    int error = 0;
};

/// Puts a listening socket that a worker shut down back into LISTEN on the address it had (its recorded
/// port too, which a shutdown releases when it came from port 0), with its backlog.
Rearmed rearm(const Listener& listener);

}  // namespace preforkctl::net
