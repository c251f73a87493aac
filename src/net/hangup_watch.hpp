#pragma once
// Noticing at once that a worker shut a listening socket down, without waking for its connections.

#include <cstdint>
#include <vector>

#include "net/listeners.hpp"
#include "sys/fd.hpp"
#include "sys/result.hpp"

namespace preforkctl::net {

/// Where a watched socket is in the ListenerSet: shared (slot -1) or one of slot `slot`'s reuseport sockets.
struct SocketKey {
    int slot = -1;
    std::size_t index = 0;
    friend bool operator==(const SocketKey&, const SocketKey&) = default;
};

/// The epoll data word of `key`, and back (pure).
std::uint64_t encode(SocketKey key);
SocketKey decode(std::uint64_t data);

/// An epoll set of preforkctl's own holding listening sockets with no events at all: the kernel still
/// reports EPOLLHUP (readable epoll fd) as soon as a worker shuts one down, and clears it once the socket
/// listens again, while incoming connections wake nobody. Unwatch a socket before closing it: the workers'
/// copies would keep its registration alive.
class HangupWatch {
public:
    /// A new, empty set (close-on-exec).
    static Result<HangupWatch> create();

    /// The epoll fd: readable while a watched socket is hung up.
    [[nodiscard]] int fd() const { return epoll_.get(); }
    Status watch(const Listener& listener, SocketKey key);
    void unwatch(const Listener& listener);
    /// The sockets hung up right now (does not wait).
    [[nodiscard]] std::vector<SocketKey> hung_up() const;

private:
    explicit HangupWatch(sys::Fd epoll) : epoll_(std::move(epoll)) {}
    sys::Fd epoll_;
};

}  // namespace preforkctl::net
