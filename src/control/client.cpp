#include "control/client.hpp"

#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "sys/control_socket.hpp"

namespace preforkctl::control {

namespace {

using Clock = std::chrono::steady_clock;

Error cannot_connect(std::string message) { return Error{std::move(message), 0, ExitCode::socket}; }

// Milliseconds left until `deadline` for poll(): -1 without one.
int poll_timeout(const std::optional<Clock::time_point>& deadline) {
    if (!deadline) return -1;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
}

// MSG_NOSIGNAL: preforkctl may have closed the connection already (a refused client), which is no reason to
// die of SIGPIPE: its answer is waiting to be read.
Status write_all(int fd, const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return errno_error("cannot send the request", errno, ExitCode::socket);
        done += static_cast<std::size_t>(n);
    }
    return Ok{};
}

}  // namespace

Result<std::string> find_only_socket(const std::string& directory) {
    DIR* dir = ::opendir(directory.c_str());
    if (dir == nullptr) {
        return cannot_connect("no preforkctl is running with a control socket here (" + directory +
                              " cannot be read: " + std::strerror(errno) + "); give --name or --socket");
    }
    std::vector<std::string> live;
    while (const dirent* entry = ::readdir(dir)) {
        const std::string name = entry->d_name;
        if (name.size() <= 5 || !name.ends_with(".sock")) continue;
        const std::string path = directory + "/" + name;
        if (sys::connect_control_socket(path)) live.push_back(path);  // a stale file of a dead one does not count
    }
    ::closedir(dir);
    std::sort(live.begin(), live.end());
    if (live.size() == 1) return live.front();
    if (live.empty()) return cannot_connect("no preforkctl is running with a control socket in " + directory);
    std::string names;
    for (const std::string& path : live) {
        const std::string file = path.substr(directory.size() + 1);
        names += (names.empty() ? "" : ", ") + file.substr(0, file.size() - 5);
    }
    return cannot_connect("several preforkctl are running (" + names + "): choose one with --name");
}

Result<Exchange> send_request(const std::string& path, const Request& request,
                              std::optional<std::chrono::milliseconds> timeout) {
    auto connection = sys::connect_control_socket(path);
    if (!connection) return cannot_connect(connection.error().message + " (is preforkctl running?)");
    // When sending fails, the reason is in the answer already sent (a refusal), or the read below says it.
    const Status sent = write_all(connection->get(), encode_request(request) + "\n");
    std::optional<Clock::time_point> deadline;
    if (timeout) deadline = Clock::now() + *timeout;
    std::string line;
    char buffer[65536];
    for (;;) {
        const auto newline = line.find('\n');
        if (newline != std::string::npos) {
            line.resize(newline);
            break;
        }
        pollfd ready{connection->get(), POLLIN, 0};
        const int polled = ::poll(&ready, 1, poll_timeout(deadline));
        if (polled < 0 && errno == EINTR) continue;
        if (polled == 0) {
            if (deadline && Clock::now() >= *deadline) return cannot_connect("no answer from " + path + " in time");
            continue;
        }
        const ssize_t n = ::read(connection->get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error("cannot read the answer from " + path, errno, ExitCode::socket);
        if (n == 0) {
            if (!sent) return sent.error();
            return cannot_connect("preforkctl closed the connection without an answer");
        }
        line.append(buffer, static_cast<std::size_t>(n));
    }
    auto reply = parse_reply(line);
    if (!reply) return Error{"cannot understand the answer: " + reply.error().message, 0, ExitCode::internal};
    return Exchange{std::move(*reply), std::move(*connection)};
}

bool wait_until_closed(const sys::Fd& connection, std::optional<std::chrono::milliseconds> timeout) {
    std::optional<Clock::time_point> deadline;
    if (timeout) deadline = Clock::now() + *timeout;
    char buffer[4096];
    for (;;) {
        pollfd ready{connection.get(), POLLIN, 0};
        const int polled = ::poll(&ready, 1, poll_timeout(deadline));
        if (polled < 0 && errno == EINTR) continue;
        if (polled == 0 && deadline && Clock::now() >= *deadline) return false;
        if (polled <= 0) continue;
        const ssize_t n = ::read(connection.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return true;
    }
}

}  // namespace preforkctl::control
