#include "net/listeners.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace preforkctl::net {

namespace {

Error socket_error(const std::string& what, int err = errno) { return errno_error(what, err, ExitCode::socket); }

Result<Listener> bind_tcp(const plan::ListenSpec& spec) {
    const std::string where = plan::format_address(spec, spec.port);
    const int family = spec.ipv6 ? AF_INET6 : AF_INET;
    sys::Fd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
        return socket_error("cannot create a socket for " + where);
    }
    const int one = 1;
    // SO_REUSEADDR lets a restarted preforkctl bind while old connections sit in TIME_WAIT.
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);

    sockaddr_storage storage{};
    socklen_t length = 0;
    if (spec.ipv6) {
        auto* addr = reinterpret_cast<sockaddr_in6*>(&storage);
        addr->sin6_family = AF_INET6;
        addr->sin6_port = htons(spec.port);
        ::inet_pton(AF_INET6, spec.host.c_str(), &addr->sin6_addr);
        length = sizeof(sockaddr_in6);
    } else {
        auto* addr = reinterpret_cast<sockaddr_in*>(&storage);
        addr->sin_family = AF_INET;
        addr->sin_port = htons(spec.port);
        ::inet_pton(AF_INET, spec.host.c_str(), &addr->sin_addr);
        length = sizeof(sockaddr_in);
    }
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&storage), length) < 0) {
        return socket_error("cannot bind " + where);
    }
    if (::listen(fd.get(), spec.backlog) < 0) {
        return socket_error("cannot listen on " + where);
    }
    sockaddr_storage bound{};
    socklen_t bound_length = sizeof bound;
    std::uint16_t port = spec.port;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_length) == 0) {
        port = spec.ipv6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                         : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    }
    return Listener{spec, std::move(fd), port};
}

Result<Listener> bind_unix(const plan::ListenSpec& spec) {
    const std::string where = "unix:" + spec.path;
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

}  // namespace

Result<std::vector<Listener>> acquire_listeners(const std::vector<plan::ListenSpec>& specs) {
    std::vector<Listener> listeners;
    for (const plan::ListenSpec& spec : specs) {
        auto listener = spec.kind == plan::ListenSpec::Kind::unix_path ? bind_unix(spec) : bind_tcp(spec);
        if (!listener) {
            return listener.error();
        }
        listeners.push_back(std::move(*listener));
    }
    return listeners;
}

std::vector<int> listener_fds(const std::vector<Listener>& listeners) {
    std::vector<int> fds;
    fds.reserve(listeners.size());
    for (const Listener& listener : listeners) {
        fds.push_back(listener.fd.get());
    }
    return fds;
}

}  // namespace preforkctl::net
