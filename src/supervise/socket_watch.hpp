#pragma once
// Keeps every listening socket preforkctl holds listening (§5): when a worker shuts one down (shared, or a
// slot's reuseport socket), it is re-armed within a millisecond, not when that worker exits
// (research/servers.md, lesson 4).

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <optional>

#include "net/hangup_watch.hpp"
#include "net/listeners.hpp"

namespace preforkctl::supervise {

/// Watches the sockets of a ListenerSet through one epoll set of its own (never the sockets themselves, so
/// that preforkctl stays off the data path) and re-arms a socket that a worker shut down, with one warning.
class SocketWatch {
public:
    SocketWatch(boost::asio::io_context& io, net::ListenerSet& listeners);
    ~SocketWatch();
    SocketWatch(const SocketWatch&) = delete;
    SocketWatch& operator=(const SocketWatch&) = delete;

    /// Starts watching every socket of the set; without an epoll set, rearm_hung_up() still checks them all.
    void start();
    /// Watches slot `slot`'s reuseport sockets (after they were bound for a new slot).
    void watch_slot(int slot);
    /// Stops watching slot `slot`'s reuseport sockets; call it before they are closed.
    void unwatch_slot(int slot);
    /// Call before the shared sockets change (a reload adds or removes one): stops watching them.
    void unwatch_shared();
    /// Call after: watches every shared socket under its new index.
    void watch_shared();
    /// Re-arms every socket that is shut down now (also called when a worker is reaped).
    void rearm_hung_up();

private:
    void wait();
    [[nodiscard]] const net::Listener* find(net::SocketKey key) const;
    /// False when the socket should no longer be watched (it cannot be re-armed).
    bool rearm(const net::Listener& listener, net::SocketKey key);

    net::ListenerSet& listeners_;
    std::optional<net::HangupWatch> watch_;
    boost::asio::posix::stream_descriptor reader_;  // watch_'s epoll fd, borrowed
};

}  // namespace preforkctl::supervise
