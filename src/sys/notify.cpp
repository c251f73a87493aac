#include "sys/notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>

namespace preforkctl::sys {

namespace {

// sockaddr_un for "/path" or "@abstract" (a leading NUL instead of '@'), with its exact length: an abstract
// name is every byte of the length, so no trailing NUL may be counted.
bool make_address(const std::string& address, sockaddr_un& addr, socklen_t& length) {
    addr = sockaddr_un{};
    addr.sun_family = AF_UNIX;
    if (address.empty() || address.size() >= sizeof addr.sun_path) return false;
    if (address.front() != '/' && address.front() != '@') return false;
    std::memcpy(addr.sun_path, address.data(), address.size());
    if (address.front() == '@') addr.sun_path[0] = '\0';
    length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() +
                                    (address.front() == '/' ? 1 : 0));
    return true;
}

}  // namespace

Result<NotifySocket> bind_notify_socket() {
    static std::atomic<unsigned> counter{0};
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) return Error{std::string("cannot create a notification socket: ") + std::strerror(errno)};
    const std::string address =
        "@preforkctl/" + std::to_string(::getpid()) + "/notify/" + std::to_string(counter.fetch_add(1));
    sockaddr_un addr{};
    socklen_t length = 0;
    make_address(address, addr, length);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), length) != 0) {
        return Error{"cannot bind notification socket " + address + ": " + std::strerror(errno)};
    }
    return NotifySocket{std::move(fd), address};
}

bool send_notify(const std::string& address, std::string_view message) {
    sockaddr_un addr{};
    socklen_t length = 0;
    if (!make_address(address, addr, length)) return false;
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return false;
    const ssize_t sent = ::sendto(fd.get(), message.data(), message.size(), MSG_NOSIGNAL,
                                  reinterpret_cast<const sockaddr*>(&addr), length);
    return sent == static_cast<ssize_t>(message.size());
}

std::vector<std::string> receive_notify_messages(int fd) {
    std::vector<std::string> messages;
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        messages.emplace_back(buffer, static_cast<std::size_t>(n));
    }
    return messages;
}

bool notify_message_has(std::string_view message, std::string_view assignment) {
    while (!message.empty()) {
        const std::size_t end = message.find('\n');
        if (message.substr(0, end) == assignment) return true;
        if (end == std::string_view::npos) break;
        message.remove_prefix(end + 1);
    }
    return false;
}

}  // namespace preforkctl::sys
