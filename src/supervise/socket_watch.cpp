#include "supervise/socket_watch.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <set>

namespace preforkctl::supervise {

namespace asio = boost::asio;

SocketWatch::SocketWatch(asio::io_context& io, net::ListenerSet& listeners) : listeners_(listeners), reader_(io) {}

SocketWatch::~SocketWatch() {
    if (reader_.is_open()) reader_.release();  // the epoll fd belongs to watch_
}

void SocketWatch::start() {
    auto watch = net::HangupWatch::create();
    if (!watch) {
        spdlog::warn("{}: a socket a worker shuts down is listened on again only when a worker exits",
                     watch.error().message);
        return;
    }
    watch_ = std::move(*watch);
    watch_shared();
    for (std::size_t slot = 0; slot < listeners_.per_slot.size(); ++slot) watch_slot(static_cast<int>(slot));
    boost::system::error_code error;
    reader_.assign(watch_->fd(), error);
    if (error) {
        spdlog::warn("cannot wait for shut-down listening sockets: {}", error.message());
        return;
    }
    wait();
}

void SocketWatch::watch_shared() {
    if (!watch_) return;
    for (std::size_t i = 0; i < listeners_.shared.size(); ++i) {
        if (auto watched = watch_->watch(listeners_.shared[i], {-1, i}); !watched) {
            spdlog::warn("{}", watched.error().message);
        }
    }
}

void SocketWatch::unwatch_shared() {
    if (!watch_) return;
    for (const net::Listener& listener : listeners_.shared) watch_->unwatch(listener);
}

void SocketWatch::watch_slot(int slot) {
    if (!watch_ || slot < 0 || static_cast<std::size_t>(slot) >= listeners_.per_slot.size()) return;
    const auto& sockets = listeners_.per_slot[static_cast<std::size_t>(slot)];
    for (std::size_t i = 0; i < sockets.size(); ++i) {
        if (auto watched = watch_->watch(sockets[i], {slot, i}); !watched) {
            spdlog::warn("slot {}: {}", slot, watched.error().message);
        }
    }
}

void SocketWatch::unwatch_slot(int slot) {
    if (!watch_ || slot < 0 || static_cast<std::size_t>(slot) >= listeners_.per_slot.size()) return;
    for (const net::Listener& listener : listeners_.per_slot[static_cast<std::size_t>(slot)]) {
        watch_->unwatch(listener);
    }
}

void SocketWatch::wait() {
    reader_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& error) {
        if (error) return;
        rearm_hung_up();
        wait();
    });
}

void SocketWatch::rearm_hung_up() {
    if (!watch_) {
        // No epoll set: look at every socket (SO_ACCEPTCONN), as when a worker exits.
        for (std::size_t i = 0; i < listeners_.shared.size(); ++i) rearm(listeners_.shared[i], {-1, i});
        for (std::size_t slot = 0; slot < listeners_.per_slot.size(); ++slot) {
            const auto& sockets = listeners_.per_slot[slot];
            for (std::size_t i = 0; i < sockets.size(); ++i) rearm(sockets[i], {static_cast<int>(slot), i});
        }
        return;
    }
    // The epoll fd is level-triggered inside and edge-triggered in Asio's reactor: it must be left with
    // nothing reported, or no new edge would wake us for the next shutdown. A socket that stays reported
    // although it listens, or that cannot listen again, is no longer watched.
    std::set<std::uint64_t> listening;
    for (int round = 0; round < 4; ++round) {
        const std::vector<net::SocketKey> keys = watch_->hung_up();
        if (keys.empty()) return;
        for (const net::SocketKey key : keys) {
            const net::Listener* listener = find(key);
            if (listener == nullptr) continue;
            if (round == 3 && listening.contains(net::encode(key))) {
                spdlog::debug("{} keeps reporting a hang-up while it listens; no longer watched", listener->address());
                watch_->unwatch(*listener);
                continue;
            }
            if (!rearm(*listener, key)) {
                watch_->unwatch(*listener);
            } else {
                listening.insert(net::encode(key));
            }
        }
    }
}

const net::Listener* SocketWatch::find(net::SocketKey key) const {
    const std::vector<net::Listener>* sockets = &listeners_.shared;
    if (key.slot >= 0) {
        if (static_cast<std::size_t>(key.slot) >= listeners_.per_slot.size()) return nullptr;
        sockets = &listeners_.per_slot[static_cast<std::size_t>(key.slot)];
    }
    return key.index < sockets->size() ? &(*sockets)[key.index] : nullptr;
}

bool SocketWatch::rearm(const net::Listener& listener, net::SocketKey key) {
    const net::Rearmed rearmed = net::rearm(listener);
    const std::string whose = key.slot < 0 ? "the shared socket " + listener.address()
                                           : "slot " + std::to_string(key.slot) + "'s socket " + listener.address();
    switch (rearmed.outcome) {
        case net::Rearmed::Outcome::was_listening: return true;
        case net::Rearmed::Outcome::listening_again:
            spdlog::warn("a worker shut down {}; listening on it again", whose);
            return true;
        case net::Rearmed::Outcome::impossible:
            spdlog::error("a worker shut down {}: a unix socket cannot listen again, so it refuses connections "
                          "until preforkctl is restarted", whose);
            return false;
        case net::Rearmed::Outcome::failed:
            spdlog::error("a worker shut down {}, and it cannot listen again: {}", whose, std::strerror(rearmed.error));
            return false;
    }
    return false;
}

}  // namespace preforkctl::supervise
