#pragma once
// How full a listening TCP socket's accept queue is, read with TCP_INFO: what `ctl status`, the metrics and
// elastic scaling (SPEC §12) look at.

#include <cstdint>
#include <optional>

namespace preforkctl::sys {

/// A listener's accept queue: connections established and waiting for accept(), and the most it holds.
struct AcceptQueue {
    std::uint32_t queue = 0;
    std::uint32_t backlog = 0;
};

/// The accept queue of the listening TCP socket `fd` (borrowed, not closed); nullopt for a socket that is
/// not TCP or not listening (a unix socket, say), or when the kernel refuses.
std::optional<AcceptQueue> read_accept_queue(int fd);

}  // namespace preforkctl::sys
