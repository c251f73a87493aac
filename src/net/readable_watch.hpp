#pragma once
// Waiting for a connection on any listening socket without waking for the next ones (elastic workers, §12).

#include <vector>

#include "sys/fd.hpp"
#include "sys/result.hpp"

namespace preforkctl::net {

/// A new epoll set (close-on-exec) that becomes readable once one of `fds` (borrowed) has a connection
/// waiting. Each socket is registered EPOLLONESHOT: after the first connection, the next ones wake nobody
/// until a new set is made, so a busy listener costs preforkctl one wake-up per set. The set is thrown away
/// after use (closing it drops the registrations; the sockets themselves are untouched).
Result<sys::Fd> watch_readable(const std::vector<int>& fds);

/// Connections waiting on listening socket `fd` (borrowed): the accept queue of a TCP socket (TCP_INFO);
/// for others (unix sockets) 1 when one waits, else 0.
unsigned waiting_connections(int fd);

}  // namespace preforkctl::net
