#include "net/hangup_watch.hpp"

#include <sys/epoll.h>

#include <array>
#include <cerrno>

namespace preforkctl::net {

std::uint64_t encode(SocketKey key) {
    // slot + 1 in the high half, so that shared sockets (slot -1) have 0 there.
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(key.slot + 1)) << 32) |
           static_cast<std::uint32_t>(key.index);
}

SocketKey decode(std::uint64_t data) {
    return SocketKey{static_cast<int>(data >> 32) - 1, static_cast<std::size_t>(data & 0xffffffffU)};
}

Result<HangupWatch> HangupWatch::create() {
    sys::Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll.valid()) return errno_error("cannot create an epoll set to watch the listening sockets", errno);
    return HangupWatch(std::move(epoll));
}

Status HangupWatch::watch(const Listener& listener, SocketKey key) {
    epoll_event event{};
    event.events = 0;  // EPOLLHUP and EPOLLERR are always reported; nothing else is wanted
    event.data.u64 = encode(key);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener.fd.get(), &event) < 0) {
        return errno_error("cannot watch " + listener.address(), errno);
    }
    return Ok{};
}

void HangupWatch::unwatch(const Listener& listener) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, listener.fd.get(), nullptr);
}

std::vector<SocketKey> HangupWatch::hung_up() const {
    std::vector<SocketKey> keys;
    std::array<epoll_event, 64> events{};
    int count = 0;
    do {
        count = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), 0);
    } while (count < 0 && errno == EINTR);
    for (int i = 0; i < count; ++i) keys.push_back(decode(events[static_cast<std::size_t>(i)].data.u64));
    return keys;
}

}  // namespace preforkctl::net
