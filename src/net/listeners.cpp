#include "net/listeners.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/steering.hpp"

namespace preforkctl::net {

namespace {

Error socket_error(const std::string& what, int err = errno) { return errno_error(what, err, ExitCode::socket); }

socklen_t fill_address(const plan::ListenSpec& spec, std::uint16_t port, sockaddr_storage& storage) {
    if (spec.ipv6) {
        auto* addr = reinterpret_cast<sockaddr_in6*>(&storage);
        addr->sin6_family = AF_INET6;
        addr->sin6_port = htons(port);
        ::inet_pton(AF_INET6, spec.host.c_str(), &addr->sin6_addr);
        return sizeof(sockaddr_in6);
    }
    auto* addr = reinterpret_cast<sockaddr_in*>(&storage);
    addr->sin_family = AF_INET;
    addr->sin_port = htons(port);
    ::inet_pton(AF_INET, spec.host.c_str(), &addr->sin_addr);
    return sizeof(sockaddr_in);
}

Result<Listener> bind_tcp(const plan::ListenSpec& spec, std::uint16_t port, bool reuseport) {
    const std::string where = plan::format_address(spec, port);
    sys::Fd fd(::socket(spec.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
        return socket_error("cannot create a socket for " + where);
    }
    const int one = 1;
    // SO_REUSEADDR lets a restarted preforkctl bind while old connections sit in TIME_WAIT.
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        return socket_error("cannot set SO_REUSEPORT on " + where);
    }
    sockaddr_storage storage{};
    const socklen_t length = fill_address(spec, port, storage);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&storage), length) < 0) {
        return socket_error("cannot bind " + where);
    }
    if (::listen(fd.get(), spec.backlog) < 0) {
        return socket_error("cannot listen on " + where);
    }
    sockaddr_storage bound{};
    socklen_t bound_length = sizeof bound;
    std::uint16_t real_port = port;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_length) == 0) {
        real_port = spec.ipv6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                              : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    }
    return Listener{spec, std::move(fd), real_port};
}

// A socket file left by a dead server is removed; one that somebody still listens on is not.
Status remove_stale_socket_file(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) < 0 || !S_ISSOCK(st.st_mode)) {
        return Ok{};  // absent, or not a socket: bind() reports what is wrong
    }
    sys::Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
        return Error{"cannot bind unix:" + path + ": another process is listening on it", EADDRINUSE,
                     ExitCode::socket};
    }
    if (errno == ECONNREFUSED) {
        ::unlink(path.c_str());
    }
    return Ok{};
}

Result<Listener> bind_unix(const plan::ListenSpec& spec) {
    const std::string where = "unix:" + spec.path;
    if (auto stale = remove_stale_socket_file(spec.path); !stale) {
        return stale.error();
    }
    sys::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
        return socket_error("cannot create a socket for " + where);
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, spec.path.c_str(), spec.path.size() + 1);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0) {
        return socket_error("cannot bind " + where);
    }
    if (spec.mode && ::chmod(spec.path.c_str(), *spec.mode) < 0) {
        return socket_error("cannot chmod " + where);
    }
    if (::listen(fd.get(), spec.backlog) < 0) {
        return socket_error("cannot listen on " + where);
    }
    return Listener{spec, std::move(fd), 0};
}

Listener adopt(const plan::ListenSpec& spec) {
    // Keep it out of every exec except the workers', which get it at 3, 4, ... explicitly.
    ::fcntl(spec.inherited_fd, F_SETFD, FD_CLOEXEC);
    return Listener{spec, sys::Fd(spec.inherited_fd), spec.port};
}

// Slot numbers in the order their reuseport sockets are bound: by CPU with --steer cpu, else 0, 1, ...
std::vector<int> reuseport_join_order(const plan::Plan& plan) {
    std::vector<int> order;
    for (int slot = 0; slot < plan.workers; ++slot) order.push_back(slot);
    if (plan.steer != plan::SteerMode::cpu) return order;
    std::vector<int> slot_cpus;
    for (const int slot : order) {
        const auto index = static_cast<std::size_t>(slot);
        const bool pinned = index < plan.slots.size() && plan.slots[index].cpus.size() == 1;
        slot_cpus.push_back(pinned ? plan.slots[index].cpus.front() : -1);
    }
    return steering_join_order(slot_cpus);
}

}  // namespace

Result<Listener> bind_shared(const plan::ListenSpec& spec) {
    return spec.kind == plan::ListenSpec::Kind::unix_path ? bind_unix(spec) : bind_tcp(spec, spec.port, false);
}

std::vector<int> ListenerSet::fds_for_slot(int slot) const {
    const std::vector<Listener>& listeners =
        per_slot.empty() ? shared : per_slot.at(static_cast<std::size_t>(slot));
    std::vector<int> fds;
    fds.reserve(listeners.size());
    for (const Listener& listener : listeners) {
        fds.push_back(listener.fd.get());
    }
    return fds;
}

Result<std::vector<Listener>> bind_reuseport_slot(const plan::Plan& plan, const std::vector<std::uint16_t>& ports) {
    std::vector<Listener> sockets;
    for (std::size_t i = 0; i < plan.listeners.size(); ++i) {
        auto listener = bind_tcp(plan.listeners[i], ports.at(i), true);
        if (!listener) return listener.error();
        sockets.push_back(std::move(*listener));
    }
    return sockets;
}

Result<ListenerSet> acquire_listeners(const plan::Plan& plan) {
    ListenerSet set;
    switch (plan.socket_mode) {
        case plan::SocketMode::child:
            for (const plan::ListenSpec& spec : plan.listeners) set.ports.push_back(spec.port);
            return set;
        case plan::SocketMode::reuseport: {
            // The first slot's sockets settle any port 0; the other slots join the same ports. A socket's
            // index in its group is its place in the order of binding, which steering chooses.
            for (const plan::ListenSpec& spec : plan.listeners) set.ports.push_back(spec.port);
            set.per_slot.resize(static_cast<std::size_t>(plan.workers));
            for (const int slot : reuseport_join_order(plan)) {
                auto sockets = bind_reuseport_slot(plan, set.ports);
                if (!sockets) return sockets.error();
                for (std::size_t i = 0; i < sockets->size(); ++i) set.ports[i] = (*sockets)[i].port;
                set.per_slot[static_cast<std::size_t>(slot)] = std::move(*sockets);
            }
            if (plan.steer == plan::SteerMode::cpu) {
                if (auto steered = attach_cpu_steering(set); !steered) return steered.error();
            }
            return set;
        }
        case plan::SocketMode::shared:
            break;
    }
    for (const plan::ListenSpec& spec : plan.listeners) {
        Result<Listener> listener = spec.kind == plan::ListenSpec::Kind::inherited ? Result<Listener>(adopt(spec))
                                    : spec.kind == plan::ListenSpec::Kind::unix_path ? bind_unix(spec)
                                                                                     : bind_tcp(spec, spec.port, false);
        if (!listener) {
            return listener.error();
        }
        set.ports.push_back(listener->port);
        set.shared.push_back(std::move(*listener));
    }
    return set;
}

RearmAction rearm_action(bool unix_socket, bool accepting, bool hung_up) {
    if (unix_socket) return hung_up ? RearmAction::impossible : RearmAction::none;
    return accepting ? RearmAction::none : RearmAction::bind_and_listen;
}

Rearmed rearm(const Listener& listener) {
    const int fd = listener.fd.get();
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    int accepting = 1;
    socklen_t accepting_length = sizeof accepting;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) < 0 ||
        ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &accepting_length) < 0) {
        return {Rearmed::Outcome::failed, errno};
    }
    // A unix socket still says it accepts after a shutdown; only epoll's EPOLLHUP tells.
    pollfd probe{fd, 0, 0};
    const bool hung_up = ::poll(&probe, 1, 0) == 1 && (probe.revents & POLLHUP) != 0;
    switch (rearm_action(address.ss_family == AF_UNIX, accepting != 0, hung_up)) {
        case RearmAction::none: return {Rearmed::Outcome::was_listening, 0};
        case RearmAction::impossible: return {Rearmed::Outcome::impossible, 0};
        case RearmAction::bind_and_listen: break;
    }
    // getsockname still names the port after the shutdown; the recorded one is what the workers were told.
    if (address.ss_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&address)->sin6_port = htons(listener.port);
    } else {
        reinterpret_cast<sockaddr_in*>(&address)->sin_port = htons(listener.port);
    }
    // EINVAL: the socket still holds its port (it was bound to it explicitly), so listen() alone does.
    // SO_REUSEADDR and SO_REUSEPORT survive the shutdown, so a reuseport socket joins its group again.
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), length) < 0 && errno != EINVAL) {
        return {Rearmed::Outcome::failed, errno};
    }
    if (::listen(fd, listener.spec.backlog) < 0) return {Rearmed::Outcome::failed, errno};
    return {Rearmed::Outcome::listening_again, 0};
}

}  // namespace preforkctl::net
