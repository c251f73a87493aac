#include "net/readable_watch.hpp"

#include <poll.h>
#include <sys/epoll.h>

#include <cerrno>

#include "sys/accept_queue.hpp"

namespace preforkctl::net {

Result<sys::Fd> watch_readable(const std::vector<int>& fds) {
    sys::Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll.valid()) return errno_error("cannot create an epoll set to watch the listening sockets", errno);
    for (const int fd : fds) {
        epoll_event event{};
        event.events = EPOLLIN | EPOLLONESHOT;
        event.data.fd = fd;
        if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &event) < 0) {
            return errno_error("cannot watch a listening socket for connections", errno);
        }
    }
    return epoll;
}

unsigned waiting_connections(int fd) {
    if (const auto queue = sys::read_accept_queue(fd)) return queue->queue;
    pollfd entry{fd, POLLIN, 0};
    int ready = 0;
    do {
        ready = ::poll(&entry, 1, 0);
    } while (ready < 0 && errno == EINTR);
    return ready > 0 && (entry.revents & POLLIN) != 0 ? 1U : 0U;
}

}  // namespace preforkctl::net
